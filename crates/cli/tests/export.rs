//! `eos train --init-from` and `eos export` (issue 12): a run started from an eos-net/1
//! file's weights, exported at a checkpoint, and probed: `eos probe` on the export
//! gives the loss of the run's metrics line at that step (full batch, f64), for a CNN
//! and for an MLP; a file whose tensors do not fit the config is refused naming the
//! tensor.

use std::path::{Path, PathBuf};
use std::process::Command;

fn eos() -> Command {
    Command::new(env!("CARGO_BIN_EXE_eos"))
}

fn tmp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("eos-export-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The committed eos-net/1 file of the JAX comparison (x, y and a small CNN).
fn ref_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../train/tests/data/train_ref_init.safetensors")
}

const CNN: &str = r#"
loss = "mse"
[model]
layers = [
  { type = "conv2d", out = 3, kernel = 3, padding = 1 },
  { type = "act", fn = "tanh" },
  { type = "avgpool2d", kernel = 2 },
  { type = "flatten" },
  { type = "dense", out = 3 },
]
[optim]
lr = 0.5
[train]
steps = 4
checkpoint_every = 2
dtype = "f64"
"#;

const MLP: &str = r#"
loss = "mse"
[model]
widths = [4, 8, 2]
activation = "tanh"
[data]
kind = "teacher"
n = 16
input_dim = 4
output_dim = 2
[optim]
lr = 0.1
[train]
steps = 4
checkpoint_every = 2
dtype = "f64"
"#;

fn train(dir: &Path, config: &str, extra: &[&str]) -> std::process::Output {
    let cfg = dir.join("exp.toml");
    std::fs::write(&cfg, config).unwrap();
    eos()
        .arg("train")
        .arg(&cfg)
        .args(["--device", "cpu", "--out"])
        .arg(dir.join("run"))
        .args(extra)
        .output()
        .unwrap()
}

/// Exports step 2 and probes it: the probe's loss and metrics line 2's.
fn export_and_probe(dir: &Path) -> (f64, f64) {
    let out = dir.join("export.safetensors");
    let st = eos()
        .arg("export")
        .arg(dir.join("run"))
        .arg(&out)
        .args(["--step", "2"])
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let p = eos()
        .arg("probe")
        .arg(&out)
        .args(["--json", "--k", "1"])
        .output()
        .unwrap();
    assert!(p.status.success(), "{}", String::from_utf8_lossy(&p.stderr));
    let j: serde_json::Value = serde_json::from_slice(&p.stdout).unwrap();
    let text = std::fs::read_to_string(dir.join("run/metrics.jsonl")).unwrap();
    let line: serde_json::Value = serde_json::from_str(text.lines().nth(2).unwrap()).unwrap();
    assert_eq!(line["step"], 2);
    (j["loss"].as_f64().unwrap(), line["loss"].as_f64().unwrap())
}

#[test]
fn a_cnn_run_from_a_file_exports_a_checkpoint_that_probes_to_the_runs_loss() {
    let dir = tmp_dir("cnn");
    let file = ref_file();
    let cfg = format!(
        "{CNN}[data]\nkind = \"file\"\npath = {:?}\n",
        file.display().to_string()
    );
    let o = train(&dir, &cfg, &["--init-from", file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (probed, logged) = export_and_probe(&dir);
    assert!(
        (probed - logged).abs() <= 1e-12 * logged,
        "{probed} vs {logged}"
    );
    // Step 0 starts from the file's weights: the JAX reference's initial loss.
    let text = std::fs::read_to_string(dir.join("run/metrics.jsonl")).unwrap();
    let l0: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let jax0 = 0.4326503705536845;
    assert!((l0["loss"].as_f64().unwrap() - jax0).abs() < 1e-12, "{l0}");
    // A config whose first conv has 4 channels does not fit the file's weights.
    let bad = tmp_dir("cnn-bad");
    let cfg4 = cfg.replace("out = 3, kernel", "out = 4, kernel");
    let o = train(&bad, &cfg4, &["--init-from", file.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("layers.0.weight") && err.contains("[4, 1, 3, 3]"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
    std::fs::remove_dir_all(&bad).ok();
}

#[test]
fn an_mlp_run_exports_as_dense_and_act_layers() {
    let dir = tmp_dir("mlp");
    let o = train(&dir, MLP, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (probed, logged) = export_and_probe(&dir);
    assert!(
        (probed - logged).abs() <= 1e-12 * logged,
        "{probed} vs {logged}"
    );
    // The export starts an MLP run again (eos-net/1 names of Network::from_mlp).
    let again = tmp_dir("mlp-again");
    let f = dir.join("export.safetensors");
    let o = train(&again, MLP, &["--init-from", f.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(again.join("run/metrics.jsonl")).unwrap();
    let l0: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert!((l0["loss"].as_f64().unwrap() - logged).abs() <= 1e-12 * logged);
    std::fs::remove_dir_all(&dir).ok();
    std::fs::remove_dir_all(&again).ok();
}
