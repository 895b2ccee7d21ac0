//! From a [`Config`] to the objects a run needs: the initial network with its
//! parameterization, the optimizer, the schedule and the sampler (the data:
//! [`crate::data`]).
//!
//! Seeds: every random choice is a pure function of `train.seed` (and `data.seed` for
//! the task), through [`eos_model::rng::derive_seed`] with the stream numbers below,
//! so a resumed run rebuilds exactly the same objects.

use crate::error::Error;
use candle_core::Device;
use eos_data::{Sampler, Sampling};
use eos_model::rng::derive_seed;
use eos_model::{Activation, Mlp, MlpSpec};
use eos_optim::{BuildContext, Optimizer, Schedule};
use eos_param::{ParamError, Scalings};

use crate::config::{Config, SamplingName};

/// Seed streams derived from `train.seed`: each random draw of a run comes from
/// `derive_seed(derive_seed(seed, STREAM), step)` (eos_model::rng). The numbers are
/// frozen: changing one changes every run's metrics.
pub mod streams {
    pub const MODEL: u64 = 1;
    pub const SAMPLER: u64 = 2;
    pub const PROBE_SUBSET: u64 = 3;
    pub const LANCZOS: u64 = 4;
    pub const HUTCHINSON: u64 = 5;
    pub const BATCH_SHARPNESS: u64 = 6;
    /// The Lanczos start of the S_eos probe (Gauss–Newton top eigenvalues).
    pub const S_EOS: u64 = 7;
    /// Derived from the task seed (`data.seed`, default `train.seed`).
    pub const DATA_TRAIN: u64 = 11;
    pub const DATA_TEST: u64 = 12;
    pub const DATA_STREAM: u64 = 13;
}

/// The initial network and its resolved scalings.
#[derive(Debug)]
pub struct ModelSetup {
    pub mlp: Mlp,
    /// The parameterization's table in the form the model runs (output scale folded).
    pub scalings: Scalings,
    /// Global lr = schedule lr × this (N for mean-field's `lr = N η₀`, else 1).
    pub lr_factor: f64,
}

/// The activation's init gain (eos-param's table; 1 for gelu/silu, **inferred**).
pub fn activation_gain(a: Activation) -> f64 {
    match a {
        Activation::Relu => eos_param::gain::RELU,
        Activation::LeakyRelu(s) => eos_param::gain::leaky_relu(s),
        Activation::Tanh => eos_param::gain::TANH,
        Activation::Identity | Activation::Gelu | Activation::Silu => eos_param::gain::LINEAR,
    }
}

/// The widths `[n₀, …, n_L]` for the data's input and output dimensions.
pub fn widths(cfg: &Config, input_dim: usize, output_dim: usize) -> crate::Result<Vec<usize>> {
    let m = &cfg.model;
    if let Some(w) = &m.widths {
        let (first, last) = (w[0], w[w.len() - 1]);
        if first != input_dim || last != output_dim {
            return Err(Error::config(
                "model.widths",
                format!(
                    "{w:?} maps {first} → {last}, but the data has {input_dim} input \
                 features and {output_dim} target columns"
                ),
            ));
        }
        return Ok(w.clone());
    }
    let depth = m
        .depth
        .ok_or_else(|| Error::config("model.depth", "missing"))?;
    eos_param::widths(
        input_dim,
        output_dim,
        depth,
        m.base_width.unwrap_or(1),
        &m.pattern,
    )
    .map_err(|e| {
        // eos-param names the width keys `widths.<key>` (its table); here they live
        // directly under [model].
        param_err(e, |k| match k.strip_prefix("widths.") {
            Some(rest) => format!("model.{rest}"),
            None => format!("model.{k}"),
        })
    })
}

/// Builds the initial network (seeded by `train.seed`) on `device` in `dtype`.
pub fn build_model(
    cfg: &Config,
    input_dim: usize,
    output_dim: usize,
    device: &Device,
) -> crate::Result<ModelSetup> {
    let activation = cfg.activation()?;
    let widths = widths(cfg, input_dim, output_dim)?;
    let scalings = cfg
        .model
        .parameterization
        .scalings(&widths, 1.0, activation_gain(activation))
        .map_err(|e| param_err(e, |k| format!("model.{k}")))?
        .fold_output_scale();
    let spec = MlpSpec {
        widths: widths.clone(),
        activation,
        bias: cfg.model.bias,
        multipliers: Some(scalings.multipliers()),
        init_std: Some(scalings.init_stds()),
        bias_std: scalings
            .layers
            .iter()
            .map(|l| l.bias_init_std)
            .fold(0.0, f64::max),
    };
    let seed = derive_seed(cfg.train.seed, streams::MODEL);
    let mut mlp = Mlp::random(&spec, seed, cfg.train.dtype.dtype(), device)?;
    if let Some(c) = cfg.model.chunk_size {
        mlp.chunk_size = c;
    }
    Ok(ModelSetup {
        mlp,
        lr_factor: scalings.lr,
        scalings,
    })
}

/// The optimizer, with the parameterization's per-layer lr scales.
pub fn build_optimizer(cfg: &Config, scalings: &Scalings) -> crate::Result<Box<dyn Optimizer>> {
    cfg.optim
        .build(&BuildContext::from_scalings(scalings))
        .map_err(optim_err)
}

/// An eos-param error as a config error, its key placed by `key_of` (eos-param names
/// keys relative to the table it reads, e.g. `parameterization.gamma`).
fn param_err(e: ParamError, key_of: impl Fn(&str) -> String) -> Error {
    match e {
        ParamError::Invalid {
            key,
            found,
            expected,
        } => Error::config(key_of(&key), format!("got {found}; expected {expected}")),
        #[allow(unreachable_patterns)]
        other => other.into(),
    }
}

/// An eos-optim build error as a config error: eos-optim names its keys under its own
/// table name (`optimizer.momentum`), the config's table is `[optim]`.
pub(crate) fn optim_err(e: eos_optim::Error) -> Error {
    match e {
        eos_optim::Error::Invalid {
            key,
            found,
            expected,
        } => {
            let rest = key.strip_prefix("optimizer.").unwrap_or(&key);
            Error::config(
                format!("optim.{rest}"),
                format!("got {found}; expected {expected}"),
            )
        }
        other => Error::Context {
            context: "optim".into(),
            inner: Box::new(other.into()),
        },
    }
}

/// The learning-rate schedule.
pub fn build_schedule(cfg: &Config) -> crate::Result<Box<dyn Schedule>> {
    Ok(cfg.schedule.build()?)
}

/// The minibatch sampler over `n` training samples.
pub fn build_sampler(cfg: &Config, n: usize) -> crate::Result<Sampler> {
    let t = &cfg.train;
    let sampling = match (t.batch_size, t.sampling) {
        (None, _) => Sampling::FullBatch,
        (Some(b), SamplingName::WithReplacement) => Sampling::WithReplacement { batch_size: b },
        (Some(b), SamplingName::WithoutReplacement) => Sampling::WithoutReplacement {
            batch_size: b,
            drop_last: t.drop_last,
        },
    };
    Sampler::new(n, sampling, derive_seed(t.seed, streams::SAMPLER))
        .map_err(|e| Error::config("train.batch_size", format!("{e}")))
}

/// Total steps: `train.steps`, or `train.epochs` × steps per epoch.
pub fn total_steps(cfg: &Config, steps_per_epoch: u64) -> u64 {
    match (cfg.train.steps, cfg.train.epochs) {
        (Some(s), _) => s,
        (None, Some(e)) => e * steps_per_epoch,
        (None, None) => 0,
    }
}
