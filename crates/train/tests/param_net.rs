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
//! - every scheme on a transformer preset (embeddings, attention, layernorm, dense) and
//!   on a symmetric pair: the init std of every random tensor, the dense multipliers
//!   and the lr scale of every group against hand-computed values (TP V Table 3 roles,
//!   eos-param's rows; network.rs), and one `eos train` step with the sharpness probe;
//! - a coordinate check: under μP one GD step changes the readout features and the
//!   outputs by amounts that vary < 2× over widths 16–64, while under SP the output
//!   change grows ≥ 2.5×;
//! - coord_pair's shared bias under νP or μP, and mean-field on a network whose output
//!   is not its dense readout, are refused with errors naming the key and the tensor.

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
fn coord_pair_and_a_readout_that_is_not_the_output_are_refused() {
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
    let pair = r#"model.layers=[{type = "flatten"}, {type = "coord_pair"},
        {type = "dense", out = 3}]"#;
    for scheme in ["nup", "mup"] {
        let p = format!("model.parameterization={{kind = \"{scheme}\"}}");
        let e = bad(&[pair, &p]);
        let named = e.contains("model.parameterization.kind") && e.contains("layers.1.bias");
        assert!(named && e.contains(scheme), "{e}");
    }
    let layers = r#"model.layers=[{type = "flatten"}, {type = "dense", out = 3},
        {type = "act", fn = "tanh"}]"#;
    let e = bad(&[layers]);
    assert!(e.contains("readout") && e.contains("layers.2"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

/// What a scheme gives each random-init weight tensor and each parameter group.
struct Want {
    /// Init std of each random-init weight, in flat order.
    std: Vec<f64>,
    /// Multipliers of the dense layers, in flat order.
    mult: Vec<f64>,
    /// Weight lr scale of every group.
    lr: Vec<f64>,
    /// `(group, bias lr scale)` of every group with a bias.
    bias_lr: Vec<(usize, f64)>,
    lr_factor: f64,
}

fn net_of(s: &TrainSetup) -> &eos_model::Network {
    match &s.model {
        TrainModel::Net(g) => &g.net,
        TrainModel::Mlp(_) => panic!("a network"),
    }
}

/// Checks `scheme`'s setup of `cfg` against `want`: every random-init weight is the
/// default draw (SP with LeCun gain: each layer's default init, the same seed)
/// times `want.std / default`, to 1e-12.
fn check_scheme(cfg: &Path, scheme: &str, defaults: &[f64], want: &Want) {
    let set = |p: &str| vec![format!("model.parameterization={p}")];
    let raw = setup(cfg, &set(r#"{ kind = "sp", gain = "lecun" }"#));
    let s = setup(cfg, &set(scheme));
    let (rn, sn) = (net_of(&raw), net_of(&s));
    let mut k = 0;
    for ((name, a), b) in rn
        .params
        .names
        .iter()
        .zip(&rn.params.tensors)
        .zip(&sn.params.tensors)
    {
        let (a, b) = (flat_t(a), flat_t(b));
        let random = name.ends_with("weight") && !a.iter().all(|v| *v == 1.0);
        let f = if random {
            k += 1;
            want.std[k - 1] / defaults[k - 1]
        } else {
            1.0
        };
        for (x, y) in a.iter().zip(&b) {
            assert!(
                (x * f - y).abs() <= 1e-12 * x.abs().max(1e-300),
                "{scheme} {name}: {y} vs {x}·{f}"
            );
        }
    }
    assert_eq!(k, want.std.len(), "{scheme}: random-init weights");
    let mult: Vec<f64> = dense_multipliers(&sn.layers);
    assert_eq!(mult.len(), want.mult.len());
    for (m, w) in mult.iter().zip(&want.mult) {
        assert!(
            rel(*m, *w) < 1e-12,
            "{scheme}: multipliers {mult:?}, want {:?}",
            want.mult
        );
    }
    let sc = s.context.lr_scales.as_ref().expect("lr scales");
    assert_eq!(sc.weights.len(), want.lr.len(), "{scheme}: groups");
    for (x, w) in sc.weights.iter().zip(&want.lr) {
        assert!(
            rel(*x, *w) < 1e-12,
            "{scheme}: lr scales {:?}, want {:?}",
            sc.weights,
            want.lr
        );
    }
    for &(g, w) in &want.bias_lr {
        assert!(
            rel(sc.biases[g], w) < 1e-12,
            "{scheme}: bias lr scales {:?}",
            sc.biases
        );
    }
    assert_eq!(s.lr_factor, want.lr_factor, "{scheme}");
    assert_eq!(s.center, scheme.contains("mean_field"), "{scheme}");
    assert_eq!(
        s.context.normalized_updates,
        scheme.contains("nup"),
        "{scheme}"
    );
}

fn flat_t(t: &Tensor) -> Vec<f64> {
    t.flatten_all().unwrap().to_vec1::<f64>().unwrap()
}

fn dense_multipliers(layers: &[LayerKind]) -> Vec<f64> {
    let mut out = Vec::new();
    for l in layers {
        match l {
            LayerKind::Dense(d) => out.push(d.multiplier),
            LayerKind::Residual(r) => out.extend(dense_multipliers(&r.body)),
            _ => {}
        }
    }
    out
}

/// A 1-block transformer preset (d = `w`, 2 heads, ReLU) on the sort task (T = 4,
/// V = 5), f64, one step with the sharpness probe.
fn transformer_config(dir: &Path, w: usize, extra: &str) -> PathBuf {
    let text = format!(
        r#"loss = "cross_entropy"
[model]
kind = "transformer"
width = {w}
depth = 1
heads = 2
activation = "relu"
{extra}
[data]
kind = "sort"
n = 16
test_n = 0
len = 4
vocab = 5
[optim]
lr = 0.1
[train]
steps = 1
dtype = "f64"
[probes]
sharpness = {{ every = 1, k = 1, max_iter = 10 }}
"#
    );
    write(dir, &format!("transformer{w}.toml"), &text)
}

const PAIR: &str = r#"loss = "mse"
[model]
layers = [{ type = "symmetric_pair", out = 16 }, { type = "dense", out = 1 }]
[data]
kind = "teacher"
n = 24
input_dim = 4
hidden = [5]
output_dim = 1
[optim]
lr = 0.05
[train]
steps = 1
dtype = "f64"
[probes]
sharpness = { every = 1, k = 1 }
"#;

#[test]
fn every_scheme_scales_embeddings_attention_and_symmetric_pairs_by_hand() {
    let dir = scratch("layers");
    let (r, s8, s32) = (2f64.sqrt(), 8f64.sqrt(), 32f64.sqrt());
    // Transformer, d = 8: groups emb, pos, ln, qkv, proj, ln, dense 8→32, dense 32→8,
    // ln, readout 8→5. Random weights: emb, pos, qkv, proj, the three dense; their
    // default draws N(0, 1), N(0, 1), 1/√8, 1/√8, 1/√8, 1/√32, 1/√8.
    let cfg = transformer_config(&dir, 8, "");
    let defaults = [1.0, 1.0, 1.0 / s8, 1.0 / s8, 1.0 / s8, 1.0 / s32, 1.0 / s8];
    let sp_std = vec![1.0, 1.0, 1.0 / s8, 1.0 / s8, r / s8, r / s32, 1.0 / s8];
    let biased = |b: [f64; 6]| {
        vec![
            (2, b[0]),
            (5, b[1]),
            (6, b[2]),
            (7, b[3]),
            (8, b[4]),
            (9, b[5]),
        ]
    };
    let sp = Want {
        std: sp_std.clone(),
        mult: vec![1.0; 3],
        lr: vec![1.0; 10],
        bias_lr: biased([1.0; 6]),
        lr_factor: 1.0,
    };
    // NTK: m = g/√fan_in on the dense layers (stored N(0, 1)); attention in the
    // effective form: std 1/√8, lr 1/8; embeddings and layernorm fan_in 1: unchanged.
    let ntk = Want {
        std: vec![1.0, 1.0, 1.0 / s8, 1.0 / s8, 1.0, 1.0, 1.0],
        mult: vec![r / s8, r / s32, 1.0 / s8],
        lr: vec![1.0, 1.0, 1.0, 0.125, 0.125, 1.0, 1.0, 1.0, 1.0, 1.0],
        bias_lr: biased([1.0; 6]),
        lr_factor: 1.0,
    };
    // μP (TP V Table 3, SGD): input-like (embeddings, layernorm) lr fan_out = 8;
    // hidden (attention, MLP) as SP; readout m = σ = 1/√8; biases lr fan_out.
    let mup = Want {
        std: sp_std.clone(),
        mult: vec![1.0, 1.0, 1.0 / s8],
        lr: vec![8.0, 8.0, 8.0, 1.0, 1.0, 8.0, 1.0, 1.0, 8.0, 1.0],
        bias_lr: biased([8.0, 8.0, 32.0, 8.0, 8.0, 5.0]),
        lr_factor: 1.0,
    };
    // Mean-field γ = 0.5 (gain 1): N = 8 (readout fan-in), lr = 8 η₀. Embeddings and
    // layernorm: m = 1, λ = 8/8; attention m = 1/√8 (effective std 1/√8, lr 1/8);
    // dense 8→32: m = 1/√8, λ = 8/8; 32→8: m = 1/√32, λ = 32/8; readout m = 2/8.
    let mf = Want {
        std: vec![1.0, 1.0, 1.0 / s8, 1.0 / s8, 1.0, 1.0, 1.0],
        mult: vec![1.0 / s8, 1.0 / s32, 0.25],
        lr: vec![1.0, 1.0, 1.0, 0.125, 0.125, 1.0, 1.0, 4.0, 1.0, 1.0],
        bias_lr: biased([1.0, 1.0, 0.125, 0.125, 1.0, 1.0 / 16.0]),
        lr_factor: 8.0,
    };
    let nup = Want { std: sp_std, ..sp };
    let mf_s = r#"{ kind = "mean_field", gamma = 0.5 }"#;
    let schemes = [
        (r#"{ kind = "sp" }"#, &nup),
        (r#"{ kind = "ntk" }"#, &ntk),
        (r#"{ kind = "mup" }"#, &mup),
        (mf_s, &mf),
        (r#"{ kind = "nup" }"#, &nup),
    ];
    for (scheme, want) in schemes {
        check_scheme(&cfg, scheme, &defaults, want);
    }
    // Symmetric pair 4 → 16 (input layer, effective form, gain 1; its one shared bias
    // gets the per-unit bias lr / 16 but under SP and νP) and a dense readout 16 → 1.
    let cfg = write(&dir, "pair.toml", PAIR);
    let d = [0.5, 0.25];
    let w = |std: [f64; 2], mult: f64, lr: [f64; 2], b: [f64; 2], lr_factor: f64| Want {
        std: std.to_vec(),
        mult: vec![mult],
        lr: lr.to_vec(),
        bias_lr: vec![(0, b[0]), (1, b[1])],
        lr_factor,
    };
    let pair = [
        (r#"{ kind = "sp" }"#, w(d, 1.0, [1.0; 2], [1.0; 2], 1.0)),
        (r#"{ kind = "nup" }"#, w(d, 1.0, [1.0; 2], [1.0; 2], 1.0)),
        (
            r#"{ kind = "ntk" }"#,
            w([0.5, 1.0], 0.25, [0.25, 1.0], [1.0 / 16.0, 1.0], 1.0),
        ),
        (
            r#"{ kind = "mup" }"#,
            w(d, 0.25, [16.0, 1.0], [1.0, 1.0], 1.0),
        ),
        (
            mf_s,
            w(
                [0.5, 1.0],
                0.125,
                [0.25, 1.0],
                [1.0 / 64.0, 1.0 / 64.0],
                16.0,
            ),
        ),
    ];
    for (scheme, want) in &pair {
        check_scheme(&cfg, scheme, &d, want);
    }
    // One `eos train` step (with the sharpness probe) under every scheme, both nets,
    // and the transformer with μP's attention scale.
    let tf_mup = transformer_config(&dir, 8, "attention_scale = \"mup\"");
    for (k, (scheme, _)) in schemes.iter().enumerate() {
        for (j, c) in [&transformer_config(&dir, 8, ""), &cfg, &tf_mup]
            .iter()
            .enumerate()
        {
            let set = vec![format!("model.parameterization={scheme}")];
            let m = run(c, &dir.join(format!("run{k}-{j}")), &set);
            let (loss, sharp) = (&m[0]["loss"], &m[0]["sharpness"]);
            assert!(
                loss.as_f64().is_some_and(f64::is_finite),
                "{scheme} {j}: {loss}"
            );
            assert!(
                sharp.as_f64().is_some_and(|x| x.is_finite() && x > 0.0),
                "{scheme} {j}: {sharp}"
            );
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// RMS change of the readout features and of the outputs after one full-batch GD step
/// (θ ← θ − η · lr_factor · λ_group ∇L, the optimizer's per-group SGD step written out).
fn update_sizes(cfg: &Path, scheme: &str) -> (f64, f64) {
    let set = vec![format!("model.parameterization={scheme}")];
    let c = Config::load(cfg, &set).expect("config");
    let data = eos_train::data::build_data(&c).expect("data");
    let s = setup(cfg, &set);
    let net = net_of(&s);
    let batch = eos_train::data::to_batch(&data.train, candle_core::DType::F64, &Device::Cpu)
        .expect("batch");
    let g = net
        .grad(&batch, eos_model::Loss::CrossEntropy)
        .expect("grad");
    let sc = s.context.lr_scales.as_ref().expect("lr scales");
    let lr = 0.1 * s.lr_factor; // the configs' optim.lr
    let mut tensors = net.params.tensors.clone();
    let groups = eos_model::net::groups::group_indices(&net.params.names);
    for (k, (w, b)) in groups.into_iter().enumerate() {
        for (i, l) in [(Some(w), sc.weights[k]), (b, sc.biases[k])] {
            if let Some(i) = i {
                tensors[i] = (&tensors[i] - g.tensors[i].affine(lr * l, 0.0).unwrap()).unwrap();
            }
        }
    }
    let names = net.params.names.clone();
    let next = net
        .with_params(eos_model::NetParams::new(names, tensors).unwrap())
        .unwrap();
    let rms = |a: Tensor, b: Tensor| -> f64 {
        let d = flat_t(&(a - b).unwrap());
        (d.iter().map(|v| v * v).sum::<f64>() / d.len() as f64).sqrt()
    };
    let feat = |n: &eos_model::Network| n.readout_features(&batch.x).unwrap().expect("a readout");
    let dh = rms(feat(&next), feat(net));
    let df = rms(
        next.forward(&batch.x).unwrap(),
        net.forward(&batch.x).unwrap(),
    );
    (dh, df)
}

#[test]
fn mup_update_sizes_stay_order_one_as_the_transformer_widens() {
    // Coordinate check (TP V §5): one GD step at widths 16, 32, 64. Tolerances, set
    // before the run: under μP (with its attention scale 1/(d/H)) the RMS change of the
    // readout features and of the outputs vary by less than 2× over the 4× width
    // range; under SP (control) the output change grows by ≥ 2.5× (∝ width ideally:
    // the readout's update moves f by η ‖h‖² ∝ d).
    let dir = scratch("coord");
    let widths = [16, 32, 64];
    let sizes = |scheme: &str| -> Vec<(f64, f64)> {
        widths
            .iter()
            .map(|&w| {
                update_sizes(
                    &transformer_config(&dir, w, "attention_scale = \"mup\""),
                    scheme,
                )
            })
            .collect()
    };
    let spread = |v: &[f64]| {
        v.iter().cloned().fold(0.0, f64::max) / v.iter().cloned().fold(f64::MAX, f64::min)
    };
    let mup = sizes(r#"{ kind = "mup" }"#);
    let (dh, df): (Vec<f64>, Vec<f64>) = mup.iter().cloned().unzip();
    assert!(spread(&dh) < 2.0, "μP feature updates {dh:?}");
    assert!(spread(&df) < 2.0, "μP output updates {df:?}");
    let sp = sizes(r#"{ kind = "sp" }"#);
    assert!(sp[2].1 / sp[0].1 >= 2.5, "SP output updates {sp:?}");
    eprintln!("coordinate check: μP (Δh, Δf) {mup:?}; SP {sp:?}");
    std::fs::remove_dir_all(&dir).ok();
}
