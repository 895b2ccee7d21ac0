//! Experiment configuration: the TOML schema of `eos train` (reference:
//! `docs/config.md`).
//!
//! ```toml
//! loss = "mse"                                  # mse | mse_mean_all | cross_entropy | logistic
//! [model]                                       # widths = [n0, …, nL], or depth + base_width + pattern
//! depth = 3
//! base_width = 64
//! activation = "tanh"
//! [data]
//! kind = "teacher"                              # teacher | mixture | sparse_coding | random_labels | fashion_mnist
//! n = 512
//! input_dim = 16
//! [optim]
//! kind = "sgd"
//! lr = 0.05                                     # shorthand for [schedule] kind = "constant"
//! [train]
//! steps = 2000
//! [probes.sharpness]
//! every = 10
//! ```
//!
//! Every table rejects unknown keys; loading ([`Config::load`]) applies `--set a.b=v`
//! overrides to the TOML tree first, then deserialises and validates, and every error
//! names the file, the dotted key and what was expected.

use std::path::Path;

use crate::error::{Context, Error};
use eos_model::{Activation, Loss};
use eos_optim::{OptimizerConfig, ScheduleConfig};
use eos_param::{Parameterization, WidthPattern};
use serde::{Deserialize, Serialize};

pub mod data;
pub mod overrides;
pub mod probes;

pub use data::{
    Cifar10Data, DataConfig, FashionMnistData, Generated, ImageKeys, MixtureData, RandomLabelsData,
    SortData, SparseCodingData, TeacherData,
};
pub use probes::{
    BatchSharpnessProbe, EveryProbe, HessianTraceProbe, ProbesConfig, RowspaceMode, SharpnessProbe,
    SoftRankProbe, SubsetProbe,
};

/// A whole experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The loss (default `mse`, ½‖f − y‖² as in Cohen et al.).
    #[serde(default)]
    pub loss: LossName,
    pub model: ModelConfig,
    pub data: DataConfig,
    /// The optimizer (eos-optim's table, default plain SGD); `optim.lr` is a shorthand
    /// for a constant `[schedule]`.
    #[serde(default, alias = "optimizer")]
    pub optim: OptimizerConfig,
    /// The learning-rate schedule (its `lr` is the base rate η₀).
    pub schedule: ScheduleConfig,
    pub train: TrainConfig,
    #[serde(default)]
    pub probes: ProbesConfig,
}

/// The loss by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossName {
    #[default]
    Mse,
    MseMeanAll,
    CrossEntropy,
    Logistic,
}

impl LossName {
    pub fn loss(self) -> Loss {
        match self {
            LossName::Mse => Loss::Mse,
            LossName::MseMeanAll => Loss::MseMeanAll,
            LossName::CrossEntropy => Loss::CrossEntropy,
            LossName::Logistic => Loss::Logistic,
        }
    }
}

/// `[model]`: the MLP's shape, activation and parameterization.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// All widths `[n₀, …, n_L]` (n₀, n_L must match the data); or leave out and give
    /// `depth` + `base_width` (+ `pattern`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub widths: Option<Vec<usize>>,
    /// Number of weight layers L.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depth: Option<usize>,
    /// First hidden width n₁.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_width: Option<usize>,
    /// Hidden widths `n_l = round(n₁ l^p)` (default constant).
    #[serde(default)]
    pub pattern: WidthPattern,
    /// relu | leaky_relu (`leaky_relu:a`) | tanh | identity | gelu | silu (default relu).
    #[serde(default = "default_activation")]
    pub activation: String,
    /// Biases (default true).
    #[serde(default = "yes")]
    pub bias: bool,
    /// sp | ntk | mup | mean_field { gamma, center } | nup (default sp).
    #[serde(default)]
    pub parameterization: Parameterization,
    /// Rows per chunk in every pass (bounds memory; default eos-model's 2048).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk_size: Option<usize>,
    /// A layer network instead of an MLP: the eos-net/1 layer objects
    /// (`{type = "conv2d", out = 16, kernel = 3, padding = 1}`, …; [`crate::network`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers: Option<Vec<toml::Value>>,
    /// A preset network: mlp (default: `widths`/`depth`) | cnn | resnet | transformer,
    /// shaped by `width`, `depth`, `heads` ([`crate::network`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<NetKind>,
    /// Preset width: channels (cnn, resnet) or model dimension d (transformer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<usize>,
    /// Attention heads of the transformer preset (default 1; must divide `width`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heads: Option<usize>,
    /// Attention logit scale of the transformer preset: "sqrt" (1/√(d/H), default) or
    /// "mup" (1/(d/H), μP's attention; Tensor Programs V §J.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention_scale: Option<String>,
    /// Start from the weights of this safetensors file (MLP interchange format or
    /// eos-net/1; shapes checked against the model; `eos train --init-from`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_from: Option<std::path::PathBuf>,
}

/// `model.kind`: which network a preset builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetKind {
    Mlp,
    Cnn,
    Resnet,
    Transformer,
}

impl ModelConfig {
    /// Whether the model is a layer network (`layers` or a non-MLP preset).
    pub fn is_network(&self) -> bool {
        self.layers.is_some() || !matches!(self.kind, None | Some(NetKind::Mlp))
    }

    /// Checks the `[model]` keys of a layer network (the MLP keys must be absent).
    pub fn validate_network(&self) -> crate::Result<()> {
        let m = self;
        if m.widths.is_some() || m.base_width.is_some() {
            return Err(Error::config(
                "model.widths",
                "an MLP key; a layer network (model.layers or model.kind) takes width/depth/heads",
            ));
        }
        if let (Some(_), Some(k)) = (&m.layers, m.kind) {
            return Err(Error::config(
                "model.kind",
                format!("{k:?} given together with model.layers; give one of them"),
            ));
        }
        if matches!(&m.layers, Some(l) if l.is_empty()) {
            return Err(Error::config(
                "model.layers",
                "empty; expected a list of layer objects",
            ));
        }
        if m.kind.is_some() {
            if m.width.is_none_or(|w| w == 0) {
                return Err(Error::config("model.width", "missing or 0; expected ≥ 1"));
            }
            if m.depth == Some(0) {
                return Err(Error::config("model.depth", "got 0; expected ≥ 1 blocks"));
            }
            let (w, h) = (m.width.unwrap_or(1), m.heads.unwrap_or(1));
            if h == 0 || w % h != 0 {
                return Err(Error::config(
                    "model.heads",
                    format!("got {h}; expected ≥ 1 dividing model.width = {w}"),
                ));
            }
        }
        Ok(())
    }

    /// Whether image data should keep their `[n, C, H, W]` shape for this model.
    pub fn wants_images(&self) -> bool {
        let m = self;
        match (&m.layers, m.kind) {
            (Some(l), _) => {
                l.first()
                    .and_then(|v| v.get("type"))
                    .and_then(|t| t.as_str())
                    == Some("conv2d")
            }
            (None, Some(k)) => matches!(k, NetKind::Cnn | NetKind::Resnet),
            _ => false,
        }
    }
}

fn default_activation() -> String {
    "relu".into()
}
fn yes() -> bool {
    true
}

/// `[train]`: length, batches, seed, precision, logging, checkpoints, divergence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Number of optimizer steps (give `steps` or `epochs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<u64>,
    /// Number of epochs (steps = epochs × steps per epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epochs: Option<u64>,
    /// Minibatch size (default: full batch, i.e. gradient descent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<usize>,
    /// Minibatch sampling: without_replacement (default) | with_replacement.
    #[serde(default)]
    pub sampling: SamplingName,
    /// Drop the last, smaller batch of each epoch (without replacement).
    #[serde(default)]
    pub drop_last: bool,
    /// Seed of everything random (init, batches, probes; data unless `data.seed`).
    #[serde(default)]
    pub seed: u64,
    /// f32 (default) | f64.
    #[serde(default)]
    pub dtype: DTypeName,
    /// Write a metrics line every this many steps (probe steps are always written).
    #[serde(default = "one_u64")]
    pub log_every: u64,
    /// Checkpoint every this many steps (0: only at the end).
    #[serde(default)]
    pub checkpoint_every: u64,
    /// The run ends `diverged` when the loss exceeds this (or is not finite).
    #[serde(default = "default_divergence")]
    pub divergence_threshold: f64,
}

fn one_u64() -> u64 {
    1
}
fn default_divergence() -> f64 {
    1e6
}

/// How minibatches are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SamplingName {
    #[default]
    WithoutReplacement,
    WithReplacement,
}

/// The compute precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DTypeName {
    #[default]
    F32,
    F64,
}

impl DTypeName {
    pub fn dtype(self) -> candle_core::DType {
        match self {
            DTypeName::F32 => candle_core::DType::F32,
            DTypeName::F64 => candle_core::DType::F64,
        }
    }
}

impl Config {
    /// Reads `path`, applies the `key=value` overrides and validates. Errors name
    /// the file, the key and what was expected.
    pub fn load(path: &Path, overrides: &[String]) -> crate::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read the config file", path.display()))?;
        Self::from_toml(&text, overrides, &path.display().to_string())
    }

    /// [`Config::load`] from a string; `origin` names it in errors.
    pub fn from_toml(text: &str, overrides: &[String], origin: &str) -> crate::Result<Config> {
        let mut table = overrides::parse(text, origin)?;
        for set in overrides {
            overrides::apply(&mut table, set)?;
        }
        optim_alias(&mut table).map_err(|e| e.in_config(origin))?;
        lr_shorthand(&mut table).map_err(|e| e.in_config(origin))?;
        let config: Config = overrides::from_table(&table, origin)?;
        config.validate().map_err(|e| e.in_config(origin))?;
        Ok(config)
    }

    /// The resolved config (every default spelled out) as TOML.
    pub fn to_toml(&self) -> crate::Result<String> {
        toml::to_string(self).context("cannot serialise the resolved config")
    }

    /// The activation (validated by [`Config::validate`]).
    pub fn activation(&self) -> crate::Result<Activation> {
        Activation::parse(&self.model.activation)
            .map_err(|e| Error::config("model.activation", format!("{e}")))
    }

    /// Checks values serde cannot: one of steps/epochs, positive sizes, the
    /// activation, a model shape.
    pub fn validate(&self) -> crate::Result<()> {
        self.activation()?;
        let t = &self.train;
        match (t.steps, t.epochs) {
            (Some(_), Some(_)) => {
                return Err(Error::config(
                    "train.steps and train.epochs",
                    "give one of them, not both",
                ))
            }
            (None, None) => {
                return Err(Error::config(
                    "train",
                    "missing `steps` (or `epochs`): how long to train",
                ))
            }
            _ => {}
        }
        if t.batch_size == Some(0) {
            return Err(Error::config(
                "train.batch_size",
                "got 0; expected ≥ 1 (or leave it out for full batch)",
            ));
        }
        if t.log_every == 0 {
            return Err(Error::config("train.log_every", "got 0; expected ≥ 1"));
        }
        if t.divergence_threshold.is_nan() || t.divergence_threshold <= 0.0 {
            return Err(Error::config(
                "train.divergence_threshold",
                format!("got {}; expected a number > 0", t.divergence_threshold),
            ));
        }
        let m = &self.model;
        if m.is_network() {
            m.validate_network()?;
        } else {
            validate_mlp(m)?;
        }
        if m.chunk_size == Some(0) {
            return Err(Error::config("model.chunk_size", "got 0; expected ≥ 1"));
        }
        let online = match &self.data {
            DataConfig::Teacher(d) => d.online,
            DataConfig::Mixture(d) => d.online,
            DataConfig::SparseCoding(d) => d.online,
            DataConfig::RandomLabels(d) => d.online,
            DataConfig::Sort(d) => d.online,
            DataConfig::FashionMnist(_) | DataConfig::Cifar10(_) | DataConfig::File(_) => false,
        };
        if online && t.batch_size.is_none() {
            return Err(Error::config(
                "train.batch_size",
                "missing; online data (data.online = true) needs a batch size",
            ));
        }
        let p = &self.probes;
        validate_eigen_probes(p)?;
        if p.hessian_trace.samples < 2 && !p.hessian_trace.exact {
            return Err(Error::config(
                "probes.hessian_trace.samples",
                format!("got {}; expected ≥ 2", p.hessian_trace.samples),
            ));
        }
        if p.batch_sharpness.batches == 0 {
            return Err(Error::config(
                "probes.batch_sharpness.batches",
                "got 0; expected ≥ 1",
            ));
        }
        Ok(())
    }
}

/// The MLP's shape: `widths`, or `depth` (+ `base_width`).
/// The Lanczos settings of the sharpness and effective-sharpness probes.
fn validate_eigen_probes(p: &ProbesConfig) -> crate::Result<()> {
    if p.sharpness.k == 0 {
        return Err(Error::config("probes.sharpness.k", "got 0; expected ≥ 1"));
    }
    if p.effective_sharpness.block != 0 {
        return Err(Error::config(
            "probes.effective_sharpness.block",
            format!(
                "got {}; expected 0 (block Lanczos is offered for probes.sharpness only)",
                p.effective_sharpness.block
            ),
        ));
    }
    if !p.effective_sharpness.rowspace.is_off() {
        return Err(Error::config(
            "probes.effective_sharpness.rowspace",
            "got \"auto\"; expected \"off\" (the row-space reduction is offered for \
             probes.sharpness only)",
        ));
    }
    if !p.sharpness.rowspace.is_off() && p.sharpness.block != 0 {
        return Err(Error::config(
            "probes.sharpness.rowspace",
            format!(
                "got \"auto\" with block = {}; expected block = 0 (the row-space \
                 reduction runs single-vector Lanczos)",
                p.sharpness.block
            ),
        ));
    }
    if p.effective_sharpness.k == 0 {
        return Err(Error::config(
            "probes.effective_sharpness.k",
            "got 0; expected ≥ 1",
        ));
    }
    Ok(())
}

fn validate_mlp(m: &ModelConfig) -> crate::Result<()> {
    match (&m.widths, m.depth, m.base_width) {
        (Some(w), None, None) if w.len() >= 2 && !w.contains(&0) => {}
        (Some(w), None, None) => {
            return Err(Error::config(
                "model.widths",
                format!("got {w:?}; expected [n0, …, nL] with ≥ 2 widths ≥ 1"),
            ))
        }
        (Some(_), _, _) => {
            return Err(Error::config(
                "model.widths",
                "give either widths or depth + base_width, not both",
            ))
        }
        (None, Some(d), b) if d >= 1 && (d == 1 || b.is_some_and(|b| b >= 1)) => {}
        (None, Some(0), _) => {
            return Err(Error::config(
                "model.depth",
                "0; expected the number of weight layers, at least 1",
            ))
        }
        (None, Some(_), _) => {
            return Err(Error::config(
                "model.base_width",
                "missing or 0; expected the first hidden width ≥ 1",
            ))
        }
        (None, None, _) => {
            return Err(Error::config(
                "model",
                "missing `depth` (with `base_width`) or `widths`",
            ))
        }
    }
    Ok(())
}

/// `[optimizer]` is an old spelling of `[optim]`: it is renamed in the TOML tree before
/// anything reads it, so that every message names `optim.…` (the serde alias on
/// [`Config::optim`] only serves code that deserialises a [`Config`] directly).
fn optim_alias(table: &mut toml::Table) -> crate::Result<()> {
    if let Some(v) = table.remove("optimizer") {
        if table.contains_key("optim") {
            return Err(Error::config(
                "optim",
                "given twice (as [optim] and as its alias [optimizer]); keep [optim]",
            ));
        }
        table.insert("optim".into(), v);
    }
    Ok(())
}

/// `[optim]` without `kind` is plain SGD, and `optim.lr = η` is a shorthand for
/// `[schedule] kind = "constant", lr = η`. A
/// `[schedule]` without `kind` (e.g. made by `--set schedule.lr=…`) becomes constant;
/// one with a `kind` conflicts with `optim.lr`.
fn lr_shorthand(table: &mut toml::Table) -> crate::Result<()> {
    let mut lr = None;
    if let Some(toml::Value::Table(t)) = table.get_mut("optim") {
        lr = t.remove("lr");
        t.entry("kind").or_insert_with(|| "sgd".into());
    }
    let Some(lr) = lr else {
        if !table.contains_key("schedule") {
            return Err(Error::config(
                "optim.lr",
                "missing: no learning rate; give `lr` in [optim] or a [schedule] table",
            ));
        }
        return Ok(());
    };
    let schedule = table
        .entry("schedule")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    let Some(s) = schedule.as_table_mut() else {
        return Err(Error::config(
            "schedule",
            r#"expected a table like { kind = "constant", lr = 0.1 }"#,
        ));
    };
    if let Some(kind) = s.get("kind") {
        return Err(Error::config(
            "optim.lr",
            format!(
                "the config also has a [schedule] (kind = {kind}); give the learning rate there \
                 (schedule.lr) instead"
            ),
        ));
    }
    s.insert("kind".into(), toml::Value::String("constant".into()));
    s.entry("lr").or_insert(lr);
    Ok(())
}
