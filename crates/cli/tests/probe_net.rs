//! `eos probe` on eos-net/1 files and `eos example --net` (issue 12): the same JSON
//! keys as for MLP files, finite values, and the top eigenvalue of a tiny network equal
//! to its dense Hessian's.

use std::path::Path;
use std::process::Command;

use candle_core::{DType, Device};
use eos_hessian::symmetric_eigen;
use eos_model::net::{load_net, parse_layers, save_net};
use eos_model::testing::{net_dense_hessian, net_tiny_case};
use eos_model::Loss;

fn eos() -> Command {
    Command::new(env!("CARGO_BIN_EXE_eos"))
}

fn probe_json(file: &Path, extra: &[&str]) -> serde_json::Value {
    let out = eos()
        .arg("probe")
        .arg(file)
        .args(["--json", "--k", "3", "--seed", "2"])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn tmp_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("eos-probe-net-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn probe_reads_both_example_networks() {
    let dir = tmp_dir("examples");
    for kind in ["cnn", "transformer"] {
        let file = dir.join(format!("{kind}.safetensors"));
        let st = eos()
            .args(["example", "--net", kind])
            .arg(&file)
            .status()
            .unwrap();
        assert!(st.success());
        let j = probe_json(&file, &[]);
        for key in [
            "loss",
            "grad_norm",
            "vhv",
            "hvp_norm",
            "top_eigenvalues",
            "hessian_trace",
            "taylor",
            "ntk_trace",
            "n_params",
            "dtype",
            "device",
        ] {
            assert!(j.get(key).is_some(), "{kind}: missing key {key}");
        }
        let mut nums: Vec<f64> = ["loss", "grad_norm", "vhv", "hvp_norm", "hessian_trace"]
            .iter()
            .map(|k| j[k].as_f64().unwrap())
            .collect();
        nums.push(j["ntk_trace"].as_f64().unwrap());
        let eig: Vec<f64> = serde_json::from_value(j["top_eigenvalues"].clone()).unwrap();
        let taylor: Vec<f64> = serde_json::from_value(j["taylor"].clone()).unwrap();
        nums.extend(&eig);
        nums.extend(&taylor);
        assert!(nums.iter().all(|x| x.is_finite()), "{kind}: {j}");
        assert_eq!(eig.len(), 3);
        assert!(eig[0] >= eig[1] && eig[1] >= eig[2]);
        // The file's loss through the library.
        let case = load_net(&file, None, &Device::Cpu).unwrap();
        let loss = case
            .net
            .loss(case.batch.as_ref().unwrap(), case.loss.unwrap())
            .unwrap();
        assert!((j["loss"].as_f64().unwrap() - loss).abs() < 1e-12 * loss);
        assert_eq!(
            j["n_params"].as_u64().unwrap() as usize,
            case.net.params.numel()
        );
        assert!((taylor[2] - 0.5 * j["vhv"].as_f64().unwrap()).abs() < 1e-9 * taylor[2].abs());
    }
}

#[test]
fn probe_top_eigenvalue_of_a_tiny_network_matches_dense() {
    let dir = tmp_dir("tiny");
    let layers = parse_layers(
        r#"[{"type": "conv2d", "out": 2, "kernel": 3, "padding": 1},
        {"type": "act", "fn": "tanh"}, {"type": "flatten"},
        {"type": "layernorm"}, {"type": "dense", "out": 3}]"#,
    )
    .unwrap();
    let (net, batch) =
        net_tiny_case(layers, &[1, 3, 3], Loss::CrossEntropy, 5, 9, DType::F64).unwrap();
    let file = dir.join("tiny.safetensors");
    save_net(&file, &net, Loss::CrossEntropy, &batch, None).unwrap();
    let j = probe_json(&file, &[]);
    let p = net.params.numel();
    let h = net_dense_hessian(&net, &batch, Loss::CrossEntropy).unwrap();
    let mut eigs = symmetric_eigen(&h, p).unwrap().values;
    eigs.sort_by(|a, b| b.partial_cmp(a).unwrap());
    let top = j["top_eigenvalues"][0].as_f64().unwrap();
    assert!(
        (top - eigs[0]).abs() <= 1e-8 * eigs[0].abs(),
        "probe {top} vs dense {}",
        eigs[0]
    );
    let trace: f64 = (0..p).map(|i| h[i * p + i]).sum();
    let t = j["hessian_trace"].as_f64().unwrap();
    assert!((t - trace).abs() <= 1e-10 * trace.abs().max(1.0));
    assert_eq!(j["hessian_trace_method"], "exact");
}
