//! `eos train` on layer networks end to end: a tiny CNN (images `[n, C, H, W]` from a
//! data file) and a tiny causal transformer (the sort task) trained for a few steps
//! with every probe on; resume is bit-identical; checkpoints hold the eos-net/1
//! names; config errors name `model.layers[i]`.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use eos_train::testing::{args, metrics, TinyCase};
use eos_train::{train, Status};

const PROBES: &str = r#"
[probes]
sharpness = { every = 2, k = 2 }
effective_sharpness = { every = 2, k = 2 }
taylor = { every = 1 }
batch_sharpness = { every = 3, batches = 2, batch_size = 8 }
ntk_trace = { every = 3 }
hessian_trace = { every = 3, samples = 4 }
s_eos = { every = 3, k = 1 }
soft_rank = { every = 3 }
update_cosine = { every = 1 }
norms = { every = 2 }
eval = { every = 3 }
"#;

/// 16 images 1×6×6 in 3 classes (one-hot), written as a safetensors data file.
fn image_file(dir: &Path) -> PathBuf {
    let n = 16;
    let x: Vec<f32> = (0..n * 36)
        .map(|k| ((k * 37 % 101) as f32 / 50.0) - 1.0)
        .collect();
    let mut y = vec![0f32; n * 3];
    for i in 0..n {
        y[i * 3 + i % 3] = 1.0;
    }
    let x = Tensor::from_vec(x, (n, 1, 6, 6), &Device::Cpu).unwrap();
    let y = Tensor::from_vec(y, (n, 3), &Device::Cpu).unwrap();
    let p = dir.join("images.safetensors");
    candle_core::safetensors::save(
        &[("x".to_string(), x), ("y".to_string(), y)]
            .into_iter()
            .collect(),
        &p,
    )
    .unwrap();
    p
}

fn cnn_config(dir: &Path) -> PathBuf {
    let data = image_file(dir);
    let text = format!(
        r#"
loss = "cross_entropy"
[model]
layers = [
  {{ type = "conv2d", out = 4, kernel = 3, padding = 1 }},
  {{ type = "act", fn = "tanh" }},
  {{ type = "avgpool2d", kernel = 2 }},
  {{ type = "residual", body = [{{ type = "conv2d", out = 4, kernel = 3, padding = 1 }}] }},
  {{ type = "flatten" }},
  {{ type = "dense", out = 3 }},
]
[data]
kind = "file"
path = "{}"
[optim]
kind = "momentum"
momentum = 0.5
lr = 0.05
[train]
steps = 6
checkpoint_every = 3
dtype = "f64"
{PROBES}"#,
        data.display()
    );
    let p = dir.join("cnn.toml");
    std::fs::write(&p, text).unwrap();
    p
}

const TRANSFORMER: &str = r#"
loss = "cross_entropy"
[model]
kind = "transformer"
width = 8
depth = 1
heads = 2
activation = "gelu"
[data]
kind = "sort"
n = 12
test_n = 4
len = 4
vocab = 5
[optim]
lr = 0.1
[train]
steps = 6
checkpoint_every = 3
"#;

fn check_every_probe(lines: &[serde_json::Value]) {
    assert_eq!(lines.len(), 6);
    let l0 = &lines[0];
    for k in [
        "sharpness",
        "effective_sharpness",
        "batch_sharpness",
        "ntk_trace",
        "hessian_trace",
        "gn_trace",
        "soft_rank",
        "weight_norms",
        "update_norms",
        "taylor",
    ] {
        assert!(l0.get(k).is_some(), "step 0 lacks {k}: {l0}");
    }
    let s = l0["sharpness"].as_f64().expect("sharpness");
    assert!(s.is_finite() && s > 0.0, "sharpness {s}");
    // No preconditioner: the effective sharpness is the sharpness, bit for bit.
    assert_eq!(l0["effective_sharpness"], l0["sharpness"]);
    assert_eq!(l0["soft_rank"].as_array().map(|a| a.len()), Some(1));
    assert!(lines[1]["update_cosine"].is_f64());
    let loss: Vec<f64> = lines.iter().map(|l| l["loss"].as_f64().unwrap()).collect();
    assert!(loss[5] < loss[0], "the loss decreases: {loss:?}");
}

#[test]
fn a_tiny_cnn_trains_with_every_probe_and_resumes_bit_for_bit() {
    let dir = TinyCase::new("trainnet-cnn").dir;
    let cfg = cnn_config(&dir);
    let (a, b) = (dir.join("a"), dir.join("b"));
    let s = train(&args(&cfg, &a, &[])).expect("cnn trains");
    assert_eq!(s.status, Status::Finished, "{}", s.reason);
    let lines = metrics(&a);
    check_every_probe(&lines);
    // conv, conv bias, conv (body), bias, dense, bias: 3 groups.
    assert_eq!(
        lines[0]["weight_norms"].as_array().map(|a| a.len()),
        Some(3)
    );
    let mut stop = args(&cfg, &b, &[]);
    stop.stop_after = Some(3);
    assert_eq!(train(&stop).unwrap().status, Status::Interrupted);
    let mut resume = args(&cfg, &b, &[]);
    resume.resume = true;
    assert_eq!(train(&resume).unwrap().status, Status::Finished);
    assert_eq!(metrics(&b), lines, "stop + resume = uninterrupted");
    let ck = std::fs::read(a.join("ckpt/step-6.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&ck).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&ck).unwrap();
    let meta = header.metadata().clone().unwrap();
    assert_eq!(meta["format"], "eos-net/1");
    for name in [
        "layers.0.weight",
        "layers.3.body.0.bias",
        "layers.5.weight",
        "theta0.layers.3.body.0.weight",
    ] {
        assert!(st.tensor(name).is_ok(), "checkpoint lacks {name}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_tiny_transformer_trains_on_the_sort_task_with_every_probe() {
    let dir = TinyCase::new("trainnet-tf").dir;
    let cfg = dir.join("tf.toml");
    std::fs::write(&cfg, format!("{TRANSFORMER}{PROBES}")).unwrap();
    let out = dir.join("run");
    let s = train(&args(&cfg, &out, &[])).expect("transformer trains");
    assert_eq!(s.status, Status::Finished, "{}", s.reason);
    let lines = metrics(&out);
    check_every_probe(&lines);
    // embedding, pos, ln, qkv, proj, ln, dense, dense, ln, readout
    assert_eq!(
        lines[0]["weight_norms"].as_array().map(|a| a.len()),
        Some(10)
    );
    assert!(lines[0].get("test_loss").is_some());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn network_config_errors_name_the_layer_and_the_key() {
    let dir = TinyCase::new("trainnet-errors").dir;
    let cfg = cnn_config(&dir);
    let bad = |set: &[&str]| -> String {
        let e = train(&args(&cfg, &dir.join("x"), set)).expect_err("refused");
        format!("{e}")
    };
    let e = bad(&[r#"model.layers=[{type = "conv2d", out = 4}]"#]);
    assert!(e.contains("model.layers[0]") && e.contains("kernel"), "{e}");
    let e = bad(&[r#"model.layers=[{type = "flatten"}, {type = "dense", out = 3, outt = 1}]"#]);
    assert!(e.contains("model.layers[1]") && e.contains("outt"), "{e}");
    let e = bad(&[r#"model.layers=[{type = "flatten"}, {type = "dense", out = 4}]"#]);
    assert!(e.contains("model.layers") && e.contains("targets"), "{e}");
    let e = bad(&["model.widths=[36, 3]"]);
    assert!(e.contains("model.widths"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}
