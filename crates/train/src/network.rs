//! Layer networks from `[model]`: an explicit `layers` list (the eos-net/1 layer
//! objects, parsed by `eos_model::net::parse_layers`) or a preset `kind` (cnn, resnet,
//! transformer), and their parameterization.
//!
//! Presets (k = the data's classes or vocabulary, `width` = w, `depth` = D):
//!
//! ```text
//! cnn          D × [conv2d{w, 3, padding 1}, act, avgpool2d{2}] → flatten → dense{k}
//! resnet       conv2d{w, 3, padding 1}, act, D × residual{[conv2d{w,3,1}, act,
//!              conv2d{w,3,1}]}, act, avgpool2d{H} (global, H = W) → flatten → dense{k}
//! transformer  embedding{V, w}, pos_embedding{T, w}, D × [residual{[layernorm,
//!              attention{heads, causal}]}, residual{[layernorm, dense{4w}, act,
//!              dense{w}]}] → layernorm → dense{V}            (pre-LN, GPT-2 order)
//! ```
//! `act` is `model.activation`. A cnn stops pooling once the side is below 2.
//!
//! Roles (Tensor Programs V, Yang et al. 2022, arXiv 2203.03466, §J / Table 3): the
//! `dense` and `conv2d` layers form the chain the parameterization scales, in flat
//! order: the first is the input layer, the last `dense` the readout, the others
//! hidden; fan_in = in for dense and in·k·k for conv2d. eos-param's table is applied to
//! the pseudo-widths `[fan_in_0, …, fan_in_{L−1}, fan_out_{L−1}]`, so every σ and
//! multiplier built from a layer's fan-in is exact; μP's input multiplier √n₁ reads
//! n₁ = fan_in_1 (= out_0·k·k after a conv), a width-independent factor away from
//! out_0 (**inferred**). Embeddings are input layers and layernorm gains are
//! vector-like (TP V): both keep N(0, 1) and 1 + N(0, bias_std²) with multiplier 1 and
//! lr scale 1. Supported: SP on every network; NTK, μP, mean-field (γ) and νP on
//! networks whose parameters are dense, conv2d and layernorm tensors only. νP
//! (**inferred**, eos-param's `nup`) is SP's init with per-group normalised updates:
//! every optimizer group (a layer's weight with its bias, layernorm gain with its
//! bias) steps by η ‖W‖/‖g_W‖, so η is each group's relative change per step.
//! SP uses each layer's default init (σ = 1/√fan_in) times the gain of the first
//! `act` layer's function for the chain's non-readout layers, as eos-param's SP.
//!
//! Mean-field (Atanasov et al., arXiv 2410.04642; Richness_Sweep's `StdLinear`,
//! `StdConv2d`, `FinalLinear`, `/ gamma0`, `CenteredModel`, `lr = N · η₀`) takes
//! eos-param's rows on the same pseudo-widths: stored weights N(0, gain²) (LeCun: 1),
//! multipliers 1/√fan_in (input, hidden) and 1/(γ · fan_in) for the readout (the
//! output scale 1/γ folded in), lr = N · η₀ with N = the readout's fan-in, each layer's
//! lr scale and bias lr scale as for the MLP, and the centred model f − f₀ when
//! `center`. It needs the readout to be a top-level `dense` layer that is the
//! network's last layer (so that scaling it scales the output). Richness_Sweep's
//! `StdConv2d` divides by √C_in, not √(C_in·k·k): a width-independent factor k apart
//! (ours follows the issue's fan_in = in·k·k, **inferred** for convolutions), and
//! its N is the hidden width, ours the readout's fan-in (= the last hidden width for
//! an MLP; for a CNN whose readout reads a flattened map, C·H·W, **inferred**). A
//! network of dense + act layers gets exactly the MLP's table, weights and training
//! (crates/train/tests/param_net.rs).

use candle_core::{Device, Tensor};
use eos_data::Dataset;
use eos_model::net::{parse_layers, LayerKind};
use eos_model::rng::derive_seed;
use eos_model::{Activation, Network};
use eos_optim::{BuildContext, LayerLrScales};
use eos_param::{Parameterization, Scalings};
use serde_json::{json, Value};

use crate::build::{activation_gain, streams};
use crate::config::{Config, ModelConfig, NetKind};
use crate::error::Error;
use crate::model::TrainModel;

/// A network's model and its optimizer context (per-group lr scales).
#[derive(Debug)]
pub struct NetSetup {
    pub model: TrainModel,
    pub context: BuildContext,
    /// Centred model (mean-field with `center`): outputs offset by f(θ₀).
    pub center: bool,
    /// Global lr = schedule lr × this (mean-field: N, the readout's fan-in).
    pub lr_factor: f64,
}

/// `model.layers` as layers; errors name `model.layers[i]` and the field.
fn from_list(list: &[toml::Value]) -> crate::Result<Vec<LayerKind>> {
    let mut out = Vec::with_capacity(list.len());
    for (i, v) in list.iter().enumerate() {
        let key = format!("model.layers[{i}]");
        let j = serde_json::to_value(v).map_err(|e| Error::config(&key, format!("{e}")))?;
        let mut l = parse_layers(&Value::Array(vec![j]).to_string()).map_err(|e| {
            let msg = e.to_string().replace("layers.0", &key);
            Error::config(&key, msg)
        })?;
        out.append(&mut l);
    }
    Ok(out)
}

/// The preset's layer objects for inputs of shape `input` and `k` outputs.
fn preset(m: &ModelConfig, kind: NetKind, input: &[usize], k: usize) -> crate::Result<Value> {
    let (w, d) = (m.width.unwrap_or(1), m.depth.unwrap_or(2));
    let act = json!({"type": "act", "fn": m.activation});
    let conv = |out: usize| json!({"type": "conv2d", "out": out, "kernel": 3, "padding": 1});
    let side = || -> crate::Result<usize> {
        match input {
            [_, h, w] if h == w => Ok(*h),
            _ => Err(Error::config(
                "model.kind",
                format!("{kind:?} needs square images [C, H, H]; the data give {input:?}"),
            )),
        }
    };
    let mut l = Vec::new();
    match kind {
        NetKind::Mlp => {
            return Err(Error::config(
                "model.kind",
                "mlp is built from model.widths / model.depth",
            ))
        }
        NetKind::Cnn => {
            let mut s = side()?;
            for _ in 0..d {
                l.extend([conv(w), act.clone()]);
                if s >= 2 {
                    l.push(json!({"type": "avgpool2d", "kernel": 2}));
                    s /= 2;
                }
            }
            l.extend([
                json!({"type": "flatten"}),
                json!({"type": "dense", "out": k}),
            ]);
        }
        NetKind::Resnet => {
            let s = side()?;
            l.extend([conv(w), act.clone()]);
            for _ in 0..d {
                let body = json!([conv(w), act.clone(), conv(w)]);
                l.push(json!({"type": "residual", "body": body}));
            }
            l.extend([act, json!({"type": "avgpool2d", "kernel": s})]);
            l.extend([
                json!({"type": "flatten"}),
                json!({"type": "dense", "out": k}),
            ]);
        }
        NetKind::Transformer => {
            let [t] = input else {
                return Err(Error::config(
                    "model.kind",
                    format!("transformer needs token ids [n, T]; the data give {input:?}"),
                ));
            };
            let h = m.heads.unwrap_or(1);
            l.push(json!({"type": "embedding", "vocab": k, "dim": w}));
            l.push(json!({"type": "pos_embedding", "len": t, "dim": w}));
            for _ in 0..d {
                let att = json!([{"type": "layernorm"}, {"type": "attention", "heads": h}]);
                let mlp = json!([{"type": "layernorm"}, {"type": "dense", "out": 4 * w},
                                 act.clone(), {"type": "dense", "out": w}]);
                l.push(json!({"type": "residual", "body": att}));
                l.push(json!({"type": "residual", "body": mlp}));
            }
            l.extend([
                json!({"type": "layernorm"}),
                json!({"type": "dense", "out": k}),
            ]);
        }
    }
    Ok(Value::Array(l))
}

/// The layers `[model]` describes for the data set `train`.
pub fn layers(m: &ModelConfig, train: &Dataset) -> crate::Result<Vec<LayerKind>> {
    if let Some(list) = &m.layers {
        return from_list(list);
    }
    let kind = m.kind.unwrap_or(NetKind::Mlp);
    let v = preset(m, kind, train.sample_shape(), train.target_dim())?;
    parse_layers(&v.to_string()).map_err(|e| Error::config("model.kind", format!("{e}")))
}

/// The model a run trains (an MLP or a layer network, then `model.init_from`'s
/// weights when given), with what the optimizer and the loop need from its
/// parameterization.
#[derive(Debug)]
pub struct TrainSetup {
    pub model: TrainModel,
    /// Centred model (outputs offset by f(θ₀); mean-field).
    pub center: bool,
    /// Global lr = schedule lr × this.
    pub lr_factor: f64,
    /// Per-layer (per-group) lr scales and widths for the optimizer.
    pub context: BuildContext,
}

/// The [`TrainSetup`] of `cfg` for the training set `train`, on `device`. MLPs are
/// sized before they are allocated (crate::memory) with `rows` rows per pass.
pub fn build_train_model(
    cfg: &Config,
    train: &eos_data::Dataset,
    rows: usize,
    device: &Device,
) -> crate::Result<TrainSetup> {
    let mut s = if cfg.model.is_network() {
        let s = build(cfg, train, device)?;
        TrainSetup {
            model: s.model,
            center: s.center,
            lr_factor: s.lr_factor,
            context: s.context,
        }
    } else {
        let (d_in, d_out) = (train.input_dim(), train.target_dim());
        let widths = crate::build::widths(cfg, d_in, d_out)?;
        crate::memory::check(&widths, rows, cfg.train.dtype.dtype().size_in_bytes())?;
        let setup = crate::build::build_model(cfg, d_in, d_out, device)?;
        TrainSetup {
            model: TrainModel::Mlp(setup.mlp),
            center: setup.scalings.center,
            lr_factor: setup.lr_factor,
            context: BuildContext::from_scalings(&setup.scalings),
        }
    };
    if let Some(p) = &cfg.model.init_from {
        s.model = s.model.init_from(p)?;
    }
    Ok(s)
}

/// Builds the network of `cfg` for `train` (seeded by `train.seed`).
pub fn build(cfg: &Config, train: &Dataset, device: &Device) -> crate::Result<NetSetup> {
    let mut layers = layers(&cfg.model, train)?;
    let input = train.sample_shape().to_vec();
    let probe = Network::random(
        layers.clone(),
        &input,
        0,
        0.0,
        cfg.train.dtype.dtype(),
        device,
    )
    .map_err(|e| Error::config("model.layers", format!("{e}")))?;
    let out = probe.output_shape()?;
    if out.as_slice() != train.y.dims().get(1..).unwrap_or(&[]) {
        return Err(Error::config(
            "model.layers",
            format!(
                "the network maps inputs {input:?} to outputs {out:?}, but the data's \
                 targets are {:?} per sample",
                &train.y.dims()[1..]
            ),
        ));
    }
    let chain = Chain::of(&probe);
    let sc = chain.scalings(&cfg.model.parameterization, gain(&layers))?;
    set_multipliers(&mut layers, &mut sc.multipliers().into_iter());
    let bias_std = sc
        .layers
        .iter()
        .map(|l| l.bias_init_std)
        .fold(0.0, f64::max);
    let seed = derive_seed(cfg.train.seed, streams::MODEL);
    let dtype = cfg.train.dtype.dtype();
    let mut net = Network::random(layers, &input, seed, bias_std, dtype, device)?;
    chain.rescale_init(&mut net, &sc)?;
    if let Some(c) = cfg.model.chunk_size {
        net.chunk_size = c;
    }
    let lr_scales = chain.lr_scales(&net, &sc)?;
    let model = TrainModel::net(net);
    Ok(NetSetup {
        model,
        context: BuildContext {
            widths: Vec::new(),
            lr_scales: Some(lr_scales),
            normalized_updates: sc.normalized_updates,
        },
        center: sc.center,
        lr_factor: sc.lr,
    })
}

/// The init gain: the first `act` layer's function (1 without one).
fn gain(layers: &[LayerKind]) -> f64 {
    fn first(layers: &[LayerKind]) -> Option<Activation> {
        layers.iter().find_map(|l| match l {
            LayerKind::Act(a) => Some(a.f),
            LayerKind::Residual(r) => first(&r.body),
            _ => None,
        })
    }
    first(layers).map_or(1.0, activation_gain)
}

/// Sets the multiplier of every dense/conv2d layer, in flat order.
fn set_multipliers(layers: &mut [LayerKind], m: &mut impl Iterator<Item = f64>) {
    for l in layers {
        match l {
            LayerKind::Dense(d) => d.multiplier = m.next().unwrap_or(d.multiplier),
            LayerKind::Conv2d(c) => c.multiplier = m.next().unwrap_or(c.multiplier),
            LayerKind::Residual(r) => set_multipliers(&mut r.body, m),
            _ => {}
        }
    }
}

/// The dense/conv2d weights of a network: the chain the parameterization scales.
struct Chain {
    /// `(name of the weight, fan_in, fan_out)` in flat order.
    weights: Vec<(String, usize, usize)>,
    /// Other parameter groups that NTK/μP/mean-field cannot scale (names).
    others: Vec<String>,
    /// Why the last chain weight is not a readout whose output is the network's
    /// (None: it is a top-level `dense` layer, the last layer); mean-field needs one.
    readout_not_output: Option<String>,
}

impl Chain {
    fn of(net: &Network) -> Chain {
        let (mut weights, mut others) = (Vec::new(), Vec::new());
        let mut kinds = Vec::new();
        leaf_kinds(&net.layers, "layers.", &mut kinds);
        for (name, t) in net.params.names.iter().zip(&net.params.tensors) {
            let path = name.rsplit_once('.').map_or("", |p| p.0);
            let kind = kinds.iter().find(|(p, _)| p == path).map(|p| p.1);
            match (kind, name.ends_with(".weight")) {
                (Some("dense" | "conv2d"), true) => {
                    let d = t.dims();
                    weights.push((name.clone(), d[1..].iter().product(), d[0]));
                }
                (Some("dense" | "conv2d"), false) => {}
                (Some("layernorm"), _) => {}
                _ => others.push(name.clone()),
            }
        }
        let last = format!("layers.{}.weight", net.layers.len().saturating_sub(1));
        let readout_not_output = match (weights.last(), net.layers.last()) {
            (Some(w), Some(LayerKind::Dense(_))) if w.0 == last => None,
            (Some(w), _) => Some(format!(
                "the last scaled weight is `{}`, the last layer `layers.{}` ({})",
                w.0,
                net.layers.len().saturating_sub(1),
                net.layers.last().map_or("none", |l| l.layer().kind())
            )),
            (None, _) => Some("there is no dense layer".into()),
        };
        Chain {
            weights,
            others,
            readout_not_output,
        }
    }

    /// eos-param's table on the pseudo-widths (module docs).
    fn scalings(&self, p: &Parameterization, g: f64) -> crate::Result<Scalings> {
        let key = "model.parameterization.kind";
        let name = match p {
            Parameterization::Sp { .. } => None,
            Parameterization::Ntk { .. } | Parameterization::MuP { .. } => Some("ntk and mup"),
            Parameterization::MeanField { .. } => Some("mean_field"),
            Parameterization::NuP { .. } => Some("nup"),
        };
        if let (Some(n), Some(o)) = (name, self.others.first()) {
            return Err(Error::config(
                key,
                format!(
                    "{n} scale dense, conv2d and layernorm parameters only; `{o}` \
                     (embedding, attention, symmetric_pair) needs sp"
                ),
            ));
        }
        if let (Parameterization::MeanField { .. }, Some(r)) = (p, &self.readout_not_output) {
            return Err(Error::config(
                key,
                format!(
                    "mean_field scales the network's output by 1/γ through its readout, \
                     which must be a dense layer whose output is the network's: {r}"
                ),
            ));
        }
        let mut widths: Vec<usize> = self.weights.iter().map(|w| w.1).collect();
        match self.weights.last() {
            Some(w) => widths.push(w.2),
            None => {
                return Err(Error::config(
                    "model.layers",
                    "no dense or conv2d layer; a network needs a readout (dense)",
                ))
            }
        }
        let sc = p
            .scalings(&widths, 1.0, g)
            .map_err(|e| Error::config("model.parameterization", format!("{e}")))?;
        Ok(sc.fold_output_scale())
    }

    /// Rescales each chain weight from its default N(0, 1/fan_in) draw to σ_l.
    fn rescale_init(&self, net: &mut Network, sc: &Scalings) -> crate::Result<()> {
        for ((name, fan_in, _), l) in self.weights.iter().zip(&sc.layers) {
            let i = net.params.names.iter().position(|n| n == name);
            let Some(i) = i else { continue };
            let f = l.init_std * (*fan_in as f64).sqrt();
            if f != 1.0 {
                let t: &Tensor = &net.params.tensors[i];
                net.params.tensors[i] = t.affine(f, 0.0)?;
            }
        }
        Ok(())
    }

    /// Per-group lr scales: the chain's λ_l and bias scales, 1 for other groups.
    fn lr_scales(&self, net: &Network, sc: &Scalings) -> crate::Result<LayerLrScales> {
        let (mut w, mut b) = (Vec::new(), Vec::new());
        for g in net.params.group_names() {
            let l = self.weights.iter().position(|c| c.0 == g);
            let l = l.and_then(|l| sc.layers.get(l));
            w.push(l.map_or(1.0, |l| l.lr_scale));
            b.push(l.map_or(1.0, |l| l.bias_lr_scale));
        }
        LayerLrScales::new(w, b)
            .map_err(|e| Error::config("model.parameterization", format!("{e}")))
    }
}

/// `(path, type)` of every leaf layer (residual bodies flattened).
fn leaf_kinds(layers: &[LayerKind], prefix: &str, out: &mut Vec<(String, &'static str)>) {
    for (i, l) in layers.iter().enumerate() {
        let path = format!("{prefix}{i}");
        match l {
            LayerKind::Residual(r) => leaf_kinds(&r.body, &format!("{path}.body."), out),
            _ => out.push((path, l.layer().kind())),
        }
    }
}
