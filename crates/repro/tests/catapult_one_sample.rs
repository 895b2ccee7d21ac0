//! The catapult reproduction's one-sample rule checked against the trainer's own runs
//! (issue 14; docs/reproductions.md, catapult, "y ≠ 0, one sample").
//!
//! For f = vᵀu/√m — a width-m two-layer linear network in the NTK parameterization
//! (gain 1) on one input x = 1 with target y and loss ½(f − y)² — one GD step changes
//! the kernel λ = ‖∇_θ f‖² = (|u|² + |v|²)/m by (ηr/m)(ηλr − 4f), r = f − y, so the
//! kernel grows iff ηλ > 4f/(f − y) (`catapult::one_sample_threshold`); Lewkowycz et
//! al. 2020's ηλ > 4 is the y = 0 case. Each case here is a 2-step `eos_train::train`
//! run (the code behind `eos train`): λ₀ and λ₁ come from the `ntk_trace` probe at
//! steps 0 and 1, f₀ from the step-0 losses of two targets (the initialisation
//! depends on the seed only). Asserted for y = 0, −f₀ and f₀/2 (thresholds 4, 2, 8)
//! at ηλ₀ = 0.9, 0.97, 1.03, 1.1 × the threshold: λ grows exactly on the upper side,
//! and λ₁ and the step-1 loss match `catapult::one_sample_step` to 1e-9.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use eos_repro::catapult::{one_sample_step, one_sample_threshold};
use eos_train::{train, TrainArgs};

/// The hidden width m.
const M: usize = 64;
const WIDTH: f64 = M as f64;

/// A scratch directory for this test, emptied.
fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("eos-catapult-one-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// The config of one sample x = 1 with target `y` (data file and config in `dir`).
fn config(dir: &Path, tag: &str, y: f64) -> PathBuf {
    let data = dir.join(format!("{tag}.safetensors"));
    let x = Tensor::from_vec(vec![1.0f64], (1, 1), &Device::Cpu).expect("x");
    let yt = Tensor::from_vec(vec![y], (1, 1), &Device::Cpu).expect("y");
    let tensors = [("x".to_string(), x), ("y".to_string(), yt)];
    candle_core::safetensors::save(&tensors.into_iter().collect(), &data).expect("data file");
    let text = format!(
        r#"
loss = "mse"
[model]
widths = [1, {M}, 1]
activation = "identity"
bias = false
parameterization = {{ kind = "ntk" }}
[data]
kind = "file"
path = "{}"
[optim]
kind = "sgd"
lr = 0.01
[train]
steps = 2
seed = 3
log_every = 1
dtype = "f64"
[probes]
ntk_trace = {{ every = 1 }}
"#,
        data.display()
    );
    let path = dir.join(format!("{tag}.toml"));
    std::fs::write(&path, text).expect("config");
    path
}

/// (loss, ntk_trace) at steps 0 and 1 of a 2-step run of `config` at lr `eta`.
fn two_steps(config: &Path, out: &Path, eta: f64) -> [(f64, f64); 2] {
    let args = TrainArgs {
        config: config.to_path_buf(),
        set: vec![format!("optim.lr={eta:?}")],
        out: Some(out.to_path_buf()),
        device: "cpu".into(),
        ..Default::default()
    };
    train(&args).expect("training runs");
    let text = std::fs::read_to_string(out.join("metrics.jsonl")).expect("metrics");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let at = |step: u64| {
        let line = lines
            .iter()
            .find(|v| v["step"].as_u64() == Some(step))
            .expect("a line per step");
        let get = |k: &str| line[k].as_f64().unwrap_or_else(|| panic!("{k} at {step}"));
        (get("loss"), get("ntk_trace"))
    };
    [at(0), at(1)]
}

#[test]
fn kernel_grows_iff_eta_lambda_exceeds_four_f_over_f_minus_y() {
    let dir = scratch();
    // f₀ from ½f₀² (y = 0) and ½(f₀ − a)² (y = a): f₀ = (2L_A − 2L_B + a²)/(2a).
    let a = 0.5;
    let [(l_a, lambda0), _] = two_steps(&config(&dir, "y0", 0.0), &dir.join("fa"), 1e-3);
    let [(l_b, lambda_b), _] = two_steps(&config(&dir, "ya", a), &dir.join("fb"), 1e-3);
    let f0 = (2.0 * l_a - 2.0 * l_b + a * a) / (2.0 * a);
    assert_eq!(lambda0, lambda_b, "the init must not depend on the target");
    assert!(f0.abs() > 0.05, "f₀ = {f0} too small to test the rule");
    for (k, y) in [0.0, -f0, 0.5 * f0].into_iter().enumerate() {
        let c = one_sample_threshold(f0, y);
        let cfg = config(&dir, &format!("case{k}"), y);
        for ratio in [0.9, 0.97, 1.03, 1.1] {
            let eta = ratio * c / lambda0;
            let out = dir.join(format!("case{k}-{ratio}"));
            let [(l0, l0_kernel), (l1, lambda1)] = two_steps(&cfg, &out, eta);
            assert!((l0 - 0.5 * (f0 - y).powi(2)).abs() <= 1e-12 * (1.0 + l0));
            assert_eq!(l0_kernel, lambda0);
            let (f1, lambda_pred) = one_sample_step(f0, y, lambda0, eta, WIDTH);
            assert_eq!(
                lambda1 > lambda0,
                ratio > 1.0,
                "y = {y}, threshold {c}, ηλ₀/threshold = {ratio}: λ {lambda0} → {lambda1}"
            );
            assert!(
                (lambda1 - lambda_pred).abs() <= 1e-9 * lambda0,
                "λ₁ = {lambda1}, predicted {lambda_pred}"
            );
            let l1_pred = 0.5 * (f1 - y).powi(2);
            assert!(
                (l1 - l1_pred).abs() <= 1e-9 * (1.0 + l1_pred),
                "loss₁ {l1} vs {l1_pred}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
