//! A training run compared step by step with an independent program: full-batch GD
//! on a small CNN in f64, started from the weights and data of
//! `tests/data/train_ref_init.safetensors` (`model.init_from`, `[data] kind = "file"`),
//! against JAX float64's loss and sharpness (dense Hessian, eigvalsh) at every step,
//! written by `tests/data/gen_train_reference.py` (committed with its outputs).

use std::path::{Path, PathBuf};

use candle_core::Device;
use eos_train::{train, Status, TrainArgs};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

#[test]
fn full_batch_gd_on_a_cnn_matches_jax_float64_step_by_step() {
    let init = data("train_ref_init.safetensors");
    let dir = std::env::temp_dir().join(format!("eos-train-ref-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("ref.toml");
    let text = format!(
        r#"
loss = "mse"
[model]
layers = [
  {{ type = "conv2d", out = 3, kernel = 3, padding = 1 }},
  {{ type = "act", fn = "tanh" }},
  {{ type = "avgpool2d", kernel = 2 }},
  {{ type = "flatten" }},
  {{ type = "dense", out = 3 }},
]
init_from = "{p}"
[data]
kind = "file"
path = "{p}"
[optim]
lr = 0.5
[train]
steps = 30
dtype = "f64"
[probes]
sharpness = {{ every = 1, k = 1, max_iter = 69, tol = 1e-12 }}
"#,
        p = init.display()
    );
    std::fs::write(&cfg, text).unwrap();
    let out = dir.join("run");
    let s = train(&TrainArgs {
        config: cfg,
        out: Some(out.clone()),
        device: "cpu".into(),
        ..Default::default()
    })
    .expect("the reference run trains");
    assert_eq!(s.status, Status::Finished, "{}", s.reason);
    let m = eos_train::metrics::read::Metrics::read(&out.join("metrics.jsonl")).unwrap();
    let refs = candle_core::safetensors::load(data("train_ref_values.safetensors"), &Device::Cpu)
        .expect("reference values");
    let want = |k: &str| refs[k].to_vec1::<f64>().unwrap();
    let (loss, sharp) = (m.losses(), m.scalar("sharpness"));
    let (ref_loss, ref_sharp) = (want("loss"), want("sharpness"));
    assert_eq!((loss.len(), sharp.len()), (30, 30));
    for t in 0..30 {
        let rel = |a: f64, b: f64| (a - b).abs() / b.abs();
        assert!(
            rel(loss[t], ref_loss[t]) < 1e-10,
            "step {t}: loss {} vs JAX {}",
            loss[t],
            ref_loss[t]
        );
        assert!(
            rel(sharp[t].1, ref_sharp[t]) < 1e-8,
            "step {t}: sharpness {} vs JAX {}",
            sharp[t].1,
            ref_sharp[t]
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}
