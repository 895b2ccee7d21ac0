//! Parameterizations on layer networks (crates/train/src/network.rs):
//!
//! - a network written as dense + act layers gets exactly the MLP's parameterization
//!   under SP, NTK, μP, mean-field γ (centred and not) and νP: the same initial weights
//!   (both draw stream 2l / 2l+1 of the model seed, then scale by σ_l), per-layer lr
//!   scales, global lr factor (mean-field: N · η₀) and centring, and the same f64
//!   training run (loss, gradient norm, lr and sharpness at every step) within 1e-12;
//! - mean-field on a CNN follows eos-param's mean-field rows on the pseudo-widths with
//!   fan_in = in·k·k (Atanasov et al., arXiv 2410.04642; Richness_Sweep's `StdConv2d`,
//!   `FinalLinear`, `/ gamma0`, `CenteredModel`): multipliers 1/√fan_in and
//!   1/(γ fan_in), stored weights N(0, 1), lr = N · η₀ with N the readout's fan-in,
//!   and f − f₀ = 0 at step 0 (loss ½‖y‖² per sample);
//! - νP (SP init, per-group normalised updates) on a dense network is the MLP's too;
//! - a symmetric pair under νP or μP, and mean-field on a network whose output is not
//!   its dense readout, are refused with errors naming the key and the tensor/layer.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use eos_model::net::LayerKind;
use eos_model::Model;
use eos_train::model::TrainModel;
use eos_train::network::{build_train_model, TrainSetup};
use eos_train::{train, Config, Status, TrainArgs};

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("eos-paramnet-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write config");
    p
}

fn setup(cfg: &Path, set: &[String]) -> TrainSetup {
    let cfg = Config::load(cfg, set).expect("config");
    let data = eos_train::data::build_data(&cfg).expect("data");
    let n = data.train.len();
    build_train_model(&cfg, &data.train, n, &Device::Cpu).expect("model")
}

fn flat(m: &TrainModel) -> Vec<f64> {
    m.params()
        .tensors()
        .flat_map(|t| t.flatten_all().unwrap().to_vec1::<f64>().unwrap())
        .collect()
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / a.abs().max(b.abs()).max(1e-300)
}

fn metrics(dir: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(dir.join("metrics.jsonl")).expect("metrics.jsonl");
    text.lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

fn run(cfg: &Path, out: &Path, set: &[String]) -> Vec<serde_json::Value> {
    let args = TrainArgs {
        config: cfg.to_path_buf(),
        set: set.to_vec(),
        out: Some(out.to_path_buf()),
        device: "cpu".into(),
        ..Default::default()
    };
    let s = train(&args).expect("train");
    assert_eq!(s.status, Status::Finished, "{}", s.reason);
    metrics(out)
}

const COMMON: &str = r#"
[data]
kind = "teacher"
n = 24
input_dim = 4
hidden = [5]
output_dim = 3
[optim]
lr = 0.05
[train]
steps = 4
dtype = "f64"
[probes]
sharpness = { every = 2, k = 1 }
"#;

const MLP: &str = "loss = \"mse\"\n[model]\nwidths = [4, 6, 5, 3]\nactivation = \"tanh\"\n";
const DENSE: &str = r#"loss = "mse"
[model]
layers = [
  { type = "dense", out = 6 }, { type = "act", fn = "tanh" },
  { type = "dense", out = 5 }, { type = "act", fn = "tanh" },
  { type = "dense", out = 3 },
]
"#;

const SCHEMES: [&str; 6] = [
    r#"{ kind = "sp" }"#,
    r#"{ kind = "nup" }"#,
    r#"{ kind = "ntk" }"#,
    r#"{ kind = "mup" }"#,
    r#"{ kind = "mean_field", gamma = 0.5 }"#,
    r#"{ kind = "mean_field", gamma = 3.0, center = false }"#,
];

#[test]
fn a_dense_network_is_parameterized_and_trained_as_the_mlp() {
    let dir = scratch("dense");
    let mlp = write(&dir, "mlp.toml", &format!("{MLP}{COMMON}"));
    let net = write(&dir, "net.toml", &format!("{DENSE}{COMMON}"));
    for (k, scheme) in SCHEMES.iter().enumerate() {
        let set = vec![format!("model.parameterization={scheme}")];
        let (a, b) = (setup(&mlp, &set), setup(&net, &set));
        assert!(matches!(b.model, TrainModel::Net(_)), "{scheme}");
        assert_eq!((a.center, a.lr_factor), (b.center, b.lr_factor), "{scheme}");
        let (sa, sb) = (a.context.lr_scales.unwrap(), b.context.lr_scales.unwrap());
        for (x, y) in sa
            .weights
            .iter()
            .chain(&sa.biases)
            .zip(sb.weights.iter().chain(&sb.biases))
        {
            assert!(rel(*x, *y) < 1e-12, "{scheme}: lr scale {x} vs {y}");
        }
        let (pa, pb) = (flat(&a.model), flat(&b.model));
        assert_eq!(pa.len(), pb.len());
        let worst = pa
            .iter()
            .zip(&pb)
            .map(|(x, y)| rel(*x, *y))
            .fold(0.0, f64::max);
        assert!(
            worst < 1e-12,
            "{scheme}: initial weights differ by {worst:e}"
        );
        if scheme.contains("mean_field") {
            // lr = N η₀ with N = 5, the last hidden width.
            assert_eq!(a.lr_factor, 5.0, "{scheme}");
        }
        let ma = run(&mlp, &dir.join(format!("mlp{k}")), &set);
        let mb = run(&net, &dir.join(format!("net{k}")), &set);
        assert_eq!(ma.len(), mb.len());
        for (la, lb) in ma.iter().zip(&mb) {
            for key in ["loss", "grad_norm", "lr", "sharpness"] {
                let (x, y) = (&la[key], &lb[key]);
                assert_eq!(x.is_null(), y.is_null(), "{scheme} {key}");
                if let (Some(x), Some(y)) = (x.as_f64(), y.as_f64()) {
                    assert!(
                        rel(x, y) < 1e-12,
                        "{scheme} step {}: {key} {x} vs {y}",
                        la["step"]
                    );
                }
            }
        }
        assert!(ma.iter().filter(|l| l["sharpness"].is_number()).count() >= 2);
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// 12 images 1×6×6 in 3 classes (one-hot) as a safetensors data file.
fn image_file(dir: &Path) -> PathBuf {
    let n = 12;
    let x: Vec<f64> = (0..n * 36)
        .map(|k| ((k * 37 % 101) as f64 / 50.0) - 1.0)
        .collect();
    let mut y = vec![0f64; n * 3];
    for i in 0..n {
        y[i * 3 + i % 3] = 1.0;
    }
    let x = Tensor::from_vec(x, (n, 1, 6, 6), &Device::Cpu).unwrap();
    let y = Tensor::from_vec(y, (n, 3), &Device::Cpu).unwrap();
    let p = dir.join("images.safetensors");
    let map = [("x".to_string(), x), ("y".to_string(), y)]
        .into_iter()
        .collect();
    candle_core::safetensors::save(&map, &p).unwrap();
    p
}

const CNN: &str = r#"
loss = "mse"
[model]
layers = [
  { type = "conv2d", out = 4, kernel = 3, padding = 1 }, { type = "act", fn = "relu" },
  { type = "avgpool2d", kernel = 2 },
  { type = "conv2d", out = 5, kernel = 3, padding = 1 }, { type = "act", fn = "relu" },
  { type = "flatten" },
  { type = "dense", out = 3 },
]
parameterization = { kind = "mean_field", gamma = 2.0 }
[optim]
lr = 0.5
[train]
steps = 3
dtype = "f64"
[probes]
sharpness = { every = 1, k = 1 }
"#;

fn cnn_config(dir: &Path) -> PathBuf {
    let data = image_file(dir);
    let text = format!(
        "{CNN}[data]\nkind = \"file\"\npath = \"{}\"\n",
        data.display()
    );
    write(dir, "cnn.toml", &text)
}

#[test]
fn mean_field_on_a_cnn_follows_the_mean_field_rows_with_conv_fan_in() {
    let dir = scratch("cnn");
    let cfg = cnn_config(&dir);
    let s = setup(&cfg, &[]);
    // Pseudo-widths [1·3·3, 4·3·3, 5·3·3·3, 3] = [9, 36, 45, 3]; readout fan-in 45.
    assert!(s.center);
    assert_eq!(s.lr_factor, 45.0);
    let TrainModel::Net(g) = &s.model else {
        panic!("a network")
    };
    let mult: Vec<f64> = g
        .net
        .layers
        .iter()
        .filter_map(|l| match l {
            LayerKind::Conv2d(c) => Some(c.multiplier),
            LayerKind::Dense(d) => Some(d.multiplier),
            _ => None,
        })
        .collect();
    let want = [1.0 / 3.0, 1.0 / 6.0, 1.0 / (2.0 * 45.0)];
    for (m, w) in mult.iter().zip(want) {
        assert!(
            rel(*m, w) < 1e-15,
            "multipliers {mult:?}, expected {want:?}"
        );
    }
    // Stored weights N(0, 1) (LeCun gain): the 36 + 180 + 135 conv/dense weights.
    let names = &g.net.params.names;
    let mut w = Vec::new();
    for (n, t) in names.iter().zip(&g.net.params.tensors) {
        if n.ends_with(".weight") {
            w.extend(t.flatten_all().unwrap().to_vec1::<f64>().unwrap());
        }
    }
    assert_eq!(w.len(), 36 + 180 + 135);
    let var = w.iter().map(|v| v * v).sum::<f64>() / w.len() as f64;
    assert!((0.8..1.25).contains(&var), "weight variance {var}");
    // lr scales: n_l^{abc}/N per layer (input: its fan-out, the pseudo-width 36; hidden: fan-in 36; readout 45).
    let sc = s.context.lr_scales.expect("lr scales");
    let want = [36.0 / 45.0, 36.0 / 45.0, 1.0];
    for (x, w) in sc.weights.iter().zip(want) {
        assert!(
            rel(*x, w) < 1e-12,
            "lr scales {:?}, expected {want:?}",
            sc.weights
        );
    }
    // Centred: f − f₀ = 0 at step 0, so the loss is ½‖y‖² = ½ per one-hot sample.
    let m = run(&cfg, &dir.join("run"), &[]);
    assert!(
        rel(m[0]["loss"].as_f64().unwrap(), 0.5) < 1e-14,
        "{}",
        m[0]["loss"]
    );
    assert_eq!(m[0]["lr"].as_f64(), Some(0.5 * 45.0));
    let last = m.last().unwrap()["loss"].as_f64().unwrap();
    assert!(last < 0.5, "the loss did not fall: {last}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn unscalable_layers_and_a_readout_that_is_not_the_output_are_refused() {
    let dir = scratch("refused");
    let cfg = cnn_config(&dir);
    let bad = |set: &[&str]| -> String {
        let set: Vec<String> = set.iter().map(|s| s.to_string()).collect();
        let e = train(&TrainArgs {
            config: cfg.clone(),
            set,
            out: Some(dir.join("x")),
            device: "cpu".into(),
            ..Default::default()
        })
        .expect_err("refused");
        format!("{e}")
    };
    let pair = r#"model.layers=[{type = "flatten"}, {type = "symmetric_pair", out = 4},
        {type = "dense", out = 3}]"#;
    for scheme in ["nup", "mup"] {
        let p = format!("model.parameterization={{kind = \"{scheme}\"}}");
        let e = bad(&[pair, &p]);
        let named = e.contains("model.parameterization.kind") && e.contains("layers.1.weight");
        assert!(named && e.contains(scheme), "{e}");
    }
    let layers = r#"model.layers=[{type = "flatten"}, {type = "dense", out = 3},
        {type = "act", fn = "tanh"}]"#;
    let e = bad(&[layers]);
    assert!(e.contains("readout") && e.contains("layers.2"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}
