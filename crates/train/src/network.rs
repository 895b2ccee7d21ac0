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
//!
//! `act` is `model.activation`. A cnn stops pooling once the side is below 2. The
//! transformer's attention logit scale is `model.attention_scale` ("sqrt": 1/√(d/H),
//! default; "mup": 1/(d/H), μP's attention, Tensor Programs V §J.2).
//!
//! **Parameterization** (SP, NTK, μP, mean-field γ, νP on every layer type). Every
//! parameter group (a weight with its bias; groups as in `eos_model::net::groups`)
//! gets one row `(role, fan_in, fan_out, gain)` and eos-param's table
//! ([`eos_param::Parameterization::scalings_of`], the one owner of the table) gives its
//! `(σ, m, λ, bias λ)`. Roles follow Tensor Programs V (Yang et al. 2022, arXiv
//! 2203.03466, Table 3 and §J: "input weights & all biases", hidden, output weights):
//!
//! | layer | tensor | role | fan_in, fan_out | gain | form |
//! |---|---|---|---|---|---|
//! | dense, conv2d | weight (+ bias) | chain: input / hidden / readout | in (·k·k), next chain fan_in | activation's | multiplier |
//! | symmetric_pair | weight (+ shared bias) | chain, as dense | in, next chain fan_in | 1 | effective |
//! | embedding, pos_embedding | weight | input | 1, dim | 1 | effective |
//! | attention | qkv.weight, proj.weight | hidden | d, 3d / d | 1 | effective |
//! | layernorm | weight + bias | input (vector-like) | 1, d | 1 | lr only |
//! | coord_pair | shared bias | — (SP only) | | | |
//!
//! The chain is the dense, conv2d and symmetric_pair weights in flat order: the last is
//! the readout, the first the input layer unless an `embedding` precedes it (then it is
//! hidden: it reads the width-d residual stream), the others hidden. Fan-ins are
//! in for dense/symmetric_pair and in·k·k for conv2d; a non-readout chain weight's
//! fan-out is the next chain weight's fan-in (the pseudo-widths `[fan_in_0, …,
//! fan_in_{L−1}, fan_out_{L−1}]`, so a dense-only network gets exactly the MLP's
//! table); μP's input multiplier √n₁ and mean-field's input λ read that n₁ (= out_0·k·k
//! after a conv), a width-independent factor away from out_0 (**inferred**). One-hot
//! ids have norm 1, hence fan_in 1 for embeddings (TP V: entries of order 1); the
//! layernorm gain and bias are vector-like ("all biases"). The activation's gain goes
//! to dense/conv2d chain layers only, as eos-param's SP; the other rows use gain 1
//! (resolved through the configured `gain`: `he` or a value still applies), so SP keeps
//! every layer's default init (embeddings N(0, 1), attention and symmetric_pair
//! 1/√fan_in).
//!
//! Forms. *Multiplier*: the layer's `multiplier` field is m, the stored weight is drawn
//! with σ, its lr scale is λ (dense, conv2d; exactly the MLP). *Effective* (layers
//! without a multiplier field): eos-param's effective form, stored weight N(0, (m σ)²)
//! and lr scale m² λ, the same SGD/GD trajectory in function space (exact with or
//! without momentum; [`eos_param::Scalings::effective_form`]); the parameter-space
//! Hessian of such a block is the multiplier form's / m² and its lr × m², so the
//! preconditioned sharpness is the same, the raw one is not. With Adam the two forms
//! differ (as TP V's Table 3 has a separate Adam column, which eos-param does not
//! implement for any model). *Lr only* (layernorm): init untouched (gain 1 +
//! N(0, bias_std²)), lr m² λ on the gain and the row's bias λ on the bias. Resulting
//! examples (d = width): μP gives embeddings and layernorm lr × d (TP V: SGD lr
//! fan_out), attention SP's init and lr 1; NTK gives attention std 1/√d and lr 1/d;
//! mean-field gives attention lr 1/N (times the global N η₀). A symmetric pair's ONE
//! bias is shared by its fan_out units, so its gradient is the sum of fan_out per-unit
//! gradients: NTK, μP and mean-field give it the per-unit bias λ / fan_out (the step of
//! per-unit biases tied together; **inferred**), SP and νP keep 1.
//!
//! νP (**inferred**, eos-param's `nup`) is SP's init with per-group normalised updates
//! on every group, embeddings, attention (qkv and proj are separate groups), layernorm
//! and symmetric_pair included, as for dense: every group steps by η ‖W‖/‖g_W‖, so η
//! is each group's relative change per step.
//!
//! Mean-field (Atanasov et al., arXiv 2410.04642; Richness_Sweep's `StdLinear`,
//! `StdConv2d`, `FinalLinear`, `/ gamma0`, `CenteredModel`, `lr = N · η₀`) takes
//! eos-param's rows: stored weights N(0, gain²) (LeCun: 1), multipliers 1/√fan_in
//! (input, hidden) and 1/(γ · fan_in) for the readout (the output scale 1/γ folded in),
//! lr = N · η₀ with N = the readout's fan-in, each group's lr scale and bias lr scale
//! as for the MLP, and the centred model f − f₀ when `center`. It needs the readout to
//! be a top-level `dense` layer that is the network's last layer (so that scaling it
//! scales the output). Richness_Sweep's `StdConv2d` divides by √C_in, not
//! √(C_in·k·k): a width-independent factor k apart (ours follows the issue's fan_in =
//! in·k·k, **inferred** for convolutions), and its N is the hidden width, ours the
//! readout's fan-in (= the last hidden width for an MLP; for a CNN whose readout reads
//! a flattened map, C·H·W, **inferred**). A network of dense + act layers gets exactly
//! the MLP's table, weights and training; hand values for every scheme on a
//! transformer and a symmetric pair, and a μP coordinate check:
//! crates/train/tests/param_net.rs.
//!
//! μP's attention logit scale 1/(d/H) (TP V §J.2) is the attention layer's `scale =
//! "mup"` option, not implied by `parameterization = mup`: a config chooses it
//! (`model.attention_scale` for the preset).

use candle_core::{Device, Tensor};
use eos_data::Dataset;
use eos_model::net::{parse_layers, AttentionScale, Init, LayerKind};
use eos_model::rng::derive_seed;
use eos_model::{Activation, Network};
use eos_optim::{BuildContext, LayerLrScales};
use eos_param::{LayerRole, Parameterization, Row, Scalings};
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
        NetKind::Transformer => l = transformer(m, input, k, act)?,
    }
    Ok(Value::Array(l))
}

/// The transformer preset's layer objects (module docs) for ids `[T]` and vocabulary k.
fn transformer(
    m: &ModelConfig,
    input: &[usize],
    k: usize,
    act: Value,
) -> crate::Result<Vec<Value>> {
    let (w, d) = (m.width.unwrap_or(1), m.depth.unwrap_or(2));
    let [t] = input else {
        return Err(Error::config(
            "model.kind",
            format!("transformer needs token ids [n, T]; the data give {input:?}"),
        ));
    };
    let h = m.heads.unwrap_or(1);
    let scale = m.attention_scale.as_deref().unwrap_or("sqrt");
    if AttentionScale::parse(scale).is_none() {
        return Err(Error::config(
            "model.attention_scale",
            format!("\"{scale}\", expected \"sqrt\" or \"mup\""),
        ));
    }
    let mut l = vec![
        json!({"type": "embedding", "vocab": k, "dim": w}),
        json!({"type": "pos_embedding", "len": t, "dim": w}),
    ];
    for _ in 0..d {
        let a = json!({"type": "attention", "heads": h, "scale": scale});
        let att = json!([{"type": "layernorm"}, a]);
        let mlp = json!([{"type": "layernorm"}, {"type": "dense", "out": 4 * w},
                         act.clone(), {"type": "dense", "out": w}]);
        l.push(json!({"type": "residual", "body": att}));
        l.push(json!({"type": "residual", "body": mlp}));
    }
    l.extend([
        json!({"type": "layernorm"}),
        json!({"type": "dense", "out": k}),
    ]);
    Ok(l)
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
    let slots = Slots::of(&probe, gain(&layers));
    let p = &cfg.model.parameterization;
    let sc = slots.scalings(p)?;
    set_multipliers(&mut layers, &mut slots.multipliers(&sc).into_iter());
    let bias_std = sc
        .layers
        .iter()
        .map(|l| l.bias_init_std)
        .fold(0.0, f64::max);
    let seed = derive_seed(cfg.train.seed, streams::MODEL);
    let dtype = cfg.train.dtype.dtype();
    let mut net = Network::random(layers, &input, seed, bias_std, dtype, device)?;
    slots.rescale_init(&mut net, &sc)?;
    if let Some(c) = cfg.model.chunk_size {
        net.chunk_size = c;
    }
    let lr_scales = slots.lr_scales(&net, &sc, p)?;
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

/// How a slot's table entry `(σ, m, λ)` reaches the network (module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Form {
    /// The layer's `multiplier` field (dense, conv2d): stored σ, multiplier m, lr λ.
    Multiplier,
    /// No multiplier field (embedding, pos_embedding, attention, symmetric_pair):
    /// eos-param's effective form, stored N(0, (m σ)²), lr m² λ (exact for SGD).
    Effective,
    /// Layernorm gain and bias: init untouched, lr m² λ (gain) and the row's bias lr.
    LrOnly,
}

/// One parameter group the parameterization scales: its weight tensor (whose name is
/// the group's), eos-param row and form.
#[derive(Debug)]
struct Slot {
    name: String,
    /// Index of the weight in the flat parameter list.
    index: usize,
    row: Row,
    form: Form,
    /// The layer's default init std of the weight (`Init::Normal`; 1 otherwise).
    default_std: f64,
    /// The group's bias is one scalar shared by the `fan_out` units (symmetric_pair).
    shared_bias: bool,
}

/// Every scaled parameter group of a network, in flat order.
struct Slots {
    slots: Vec<Slot>,
    /// Groups no parameterization but SP scales (coord_pair's shared bias).
    others: Vec<String>,
    /// Why the readout is not a top-level `dense` layer that is the network's last
    /// (None: it is); mean-field needs one.
    readout_not_output: Option<String>,
}

/// `(path, layer)` of every leaf layer (residual bodies flattened).
fn leaves<'a>(layers: &'a [LayerKind], prefix: &str, out: &mut Vec<(String, &'a LayerKind)>) {
    for (i, l) in layers.iter().enumerate() {
        let path = format!("{prefix}{i}");
        match l {
            LayerKind::Residual(r) => leaves(&r.body, &format!("{path}.body."), out),
            _ => out.push((path, l)),
        }
    }
}

/// `(role, fan_in, fan_out, form)` of a non-chain weight `local` of `l` with `dims`
/// (TP V roles; module docs), None for a tensor that is not a group's weight.
fn fixed_row(
    l: &LayerKind,
    local: &str,
    dims: &[usize],
) -> Option<(LayerRole, usize, usize, Form)> {
    let d = *dims.last()?;
    match (l, local) {
        (LayerKind::Embedding(_) | LayerKind::PosEmbedding(_), "weight") => {
            Some((LayerRole::Input, 1, d, Form::Effective))
        }
        (LayerKind::LayerNorm(_), "weight") => Some((LayerRole::Input, 1, d, Form::LrOnly)),
        (LayerKind::Attention(_), "qkv.weight" | "proj.weight") => {
            Some((LayerRole::Hidden, d, dims[0], Form::Effective))
        }
        _ => None,
    }
}

/// What a parameter tensor is to the parameterization.
enum Part {
    /// A group's weight; `true` for a chain weight (dense, conv2d, symmetric_pair),
    /// whose role is set once the chain is known (`Hidden` until then).
    Scaled(Slot, bool),
    /// A group's bias, scaled with its weight.
    Bias,
    /// A tensor only SP takes (coord_pair's shared bias).
    SpOnly,
}

/// The [`Part`] of the tensor `local` of layer `l` (shape `dims`); `g` is the chain's
/// gain.
fn part_of(l: &LayerKind, local: &str, dims: &[usize], g: f64) -> Part {
    let default_std = match l.layer().init(local, dims) {
        Init::Normal(s) => s,
        _ => 1.0,
    };
    let slot = |role, fan_in, fan_out, activation_gain, form| Slot {
        name: String::new(),
        index: 0,
        row: Row {
            role,
            fan_in,
            fan_out,
            activation_gain,
        },
        form,
        default_std,
        shared_bias: matches!(l, LayerKind::SymmetricPair(_)),
    };
    let chain = match l {
        LayerKind::Dense(_) | LayerKind::Conv2d(_) => Some((Form::Multiplier, g)),
        LayerKind::SymmetricPair(_) => Some((Form::Effective, 1.0)),
        _ => None,
    };
    if let (Some((form, gain)), "weight") = (chain, local) {
        let fan_in = dims[1..].iter().product();
        return Part::Scaled(slot(LayerRole::Hidden, fan_in, dims[0], gain, form), true);
    }
    if let Some((role, fan_in, fan_out, form)) = fixed_row(l, local, dims) {
        return Part::Scaled(slot(role, fan_in, fan_out, 1.0, form), false);
    }
    if local == "bias" && !matches!(l, LayerKind::CoordPair(_)) {
        return Part::Bias;
    }
    Part::SpOnly
}

/// Why `readout` (the last chain weight) is not a top-level `dense` layer that is the
/// network's last layer; None when it is.
fn readout_check(net: &Network, readout: Option<&str>) -> Option<String> {
    let n = net.layers.len().saturating_sub(1);
    let last = format!("layers.{n}.weight");
    match (readout, net.layers.last()) {
        (Some(w), Some(LayerKind::Dense(_))) if w == last => None,
        (Some(w), _) => Some(format!(
            "the readout is `{w}`, the last layer `layers.{n}` ({})",
            net.layers.last().map_or("none", |l| l.layer().kind())
        )),
        (None, _) => Some("there is no dense layer".into()),
    }
}

impl Slots {
    /// The slots of `net` with the chain's gain `g` (first `act` layer's).
    fn of(net: &Network, g: f64) -> Slots {
        let mut leaf = Vec::new();
        leaves(&net.layers, "layers.", &mut leaf);
        let (mut slots, mut others, mut chain) = (Vec::new(), Vec::new(), Vec::new());
        let mut embedded = false;
        let named = net.params.names.iter().zip(&net.params.tensors);
        for (index, (name, t)) in named.enumerate() {
            let found = leaf.iter().find_map(|(p, l)| {
                let local = name.strip_prefix(p.as_str())?.strip_prefix('.')?;
                Some((*l, local))
            });
            let Some((l, local)) = found else { continue };
            embedded |= matches!(l, LayerKind::Embedding(_));
            match part_of(l, local, t.dims(), g) {
                Part::Scaled(s, in_chain) => {
                    if in_chain {
                        chain.push((slots.len(), embedded));
                    }
                    let (name, index) = (name.clone(), index);
                    slots.push(Slot { name, index, ..s });
                }
                Part::Bias => {}
                Part::SpOnly => others.push(name.clone()),
            }
        }
        for (k, &(i, after_embedding)) in chain.iter().enumerate() {
            // Pseudo-widths: a chain weight's fan-out is the next one's fan-in.
            if let Some(&(next, _)) = chain.get(k + 1) {
                slots[i].row.fan_out = slots[next].row.fan_in;
            }
            slots[i].row.role = if k + 1 == chain.len() {
                LayerRole::Output
            } else if k == 0 && !after_embedding {
                LayerRole::Input
            } else {
                LayerRole::Hidden
            };
        }
        let readout = chain.last().map(|&(i, _)| slots[i].name.as_str());
        Slots {
            readout_not_output: readout_check(net, readout),
            slots,
            others,
        }
    }

    /// eos-param's table on the slots' rows (module docs), output scale folded.
    fn scalings(&self, p: &Parameterization) -> crate::Result<Scalings> {
        let key = "model.parameterization.kind";
        if let (false, Some(o)) = (
            matches!(p, Parameterization::Sp { .. }),
            self.others.first(),
        ) {
            return Err(Error::config(
                key,
                format!(
                    "{} scales dense, conv2d, symmetric_pair, embedding, pos_embedding, \
                     attention and layernorm parameters; `{o}` (coord_pair's shared bias) \
                     needs sp",
                    p.name()
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
        if !self.slots.iter().any(|s| s.row.role == LayerRole::Output) {
            return Err(Error::config(
                "model.layers",
                "no dense, conv2d or symmetric_pair layer; a network needs a readout (dense)",
            ));
        }
        let rows: Vec<Row> = self.slots.iter().map(|s| s.row).collect();
        let sc = p
            .scalings_of(&rows, 1.0)
            .map_err(|e| Error::config("model.parameterization", format!("{e}")))?;
        Ok(sc.fold_output_scale())
    }

    /// The multipliers of the dense/conv2d layers, in flat order.
    fn multipliers(&self, sc: &Scalings) -> Vec<f64> {
        self.slots
            .iter()
            .zip(&sc.layers)
            .filter(|(s, _)| s.form == Form::Multiplier)
            .map(|(_, l)| l.multiplier)
            .collect()
    }

    /// Rescales each scaled weight from its layer's default draw N(0, default_std²) to
    /// σ (multiplier form) or m σ (effective form).
    fn rescale_init(&self, net: &mut Network, sc: &Scalings) -> crate::Result<()> {
        for (s, l) in self.slots.iter().zip(&sc.layers) {
            let std = match s.form {
                Form::Multiplier => l.init_std,
                Form::Effective => l.effective_init_std(),
                Form::LrOnly => continue,
            };
            let f = std / s.default_std;
            if f != 1.0 {
                let t: &Tensor = &net.params.tensors[s.index];
                net.params.tensors[s.index] = t.affine(f, 0.0)?;
            }
        }
        Ok(())
    }

    /// Per-group lr scales `(weight, bias)`: λ (multiplier form) or m² λ, the row's bias
    /// scale (divided by fan_out for a shared scalar bias, except SP and νP); 1 for
    /// other groups.
    fn lr_scales(
        &self,
        net: &Network,
        sc: &Scalings,
        p: &Parameterization,
    ) -> crate::Result<LayerLrScales> {
        let keep = matches!(
            p,
            Parameterization::Sp { .. } | Parameterization::NuP { .. }
        );
        let (mut w, mut b) = (Vec::new(), Vec::new());
        for g in net.params.group_names() {
            let slot = self.slots.iter().zip(&sc.layers).find(|(s, _)| s.name == g);
            let (lw, lb) = match slot {
                None => (1.0, 1.0),
                Some((s, l)) => {
                    let lw = match s.form {
                        Form::Multiplier => l.lr_scale,
                        Form::Effective | Form::LrOnly => l.effective_lr_scale(),
                    };
                    let tied = if s.shared_bias && !keep {
                        s.row.fan_out as f64
                    } else {
                        1.0
                    };
                    (lw, l.bias_lr_scale / tied)
                }
            };
            w.push(lw);
            b.push(lb);
        }
        LayerLrScales::new(w, b)
            .map_err(|e| Error::config("model.parameterization", format!("{e}")))
    }
}
