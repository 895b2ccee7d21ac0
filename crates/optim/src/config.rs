//! Optimizer configuration as data (TOML), and the builder.
//!
//! ```toml
//! [optimizer]
//! kind = "momentum"          # sgd | momentum | nesterov | adam | adamw
//! momentum = 0.9             # momentum, nesterov (default 0.9)
//! weight_decay = 5e-4        # default 0 (adamw: 0.01)
//! decoupled_weight_decay = false   # sgd, momentum, nesterov (adam: L2, adamw: decoupled)
//! clip_grad_norm = 1.0       # optional, every kind
//! gradient_scaling = { kind = "width_power", q = 1.0 }   # sgd, momentum, nesterov
//! # adam, adamw: beta1 = 0.9, beta2 = 0.999, eps = 1e-8
//! ```
//!
//! Unknown keys are errors that name the key (`unknown field `momentun``). The per-layer
//! lr scales, the widths (for `width_power`) and νP's normalised updates come from the
//! parameterization, through [`BuildContext`], not from this table.

use eos_param::{DepthwiseScaling, Scalings};
use serde::{Deserialize, Serialize};

use crate::adam::{Adam, AdamParams};
use crate::gradient_scaling::GradientScaling;
use crate::lr_scales::LayerLrScales;
use crate::nup::{nup_gradient_scaling, nup_refuses_adam};
use crate::optimizer::{CommonOptions, Optimizer};
use crate::sgd::{Momentum, Sgd};
use crate::weight_decay::WeightDecay;
use crate::Result;

/// Which optimizer, with its hyperparameters. Deserialised from a table with a `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum OptimizerConfig {
    /// Plain SGD.
    Sgd(SgdConfig),
    /// Heavy-ball momentum.
    Momentum(MomentumConfig),
    /// Nesterov momentum.
    Nesterov(MomentumConfig),
    /// Adam (weight decay as an L2 term).
    Adam(AdamConfig),
    /// AdamW (decoupled weight decay).
    #[serde(rename = "adamw")]
    AdamW(AdamWConfig),
}

impl Default for OptimizerConfig {
    /// Plain SGD without options.
    fn default() -> Self {
        OptimizerConfig::Sgd(SgdConfig::default())
    }
}

/// Hyperparameters of `kind = "sgd"`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SgdConfig {
    /// Weight decay coefficient `w` (default 0).
    #[serde(default)]
    pub weight_decay: f64,
    /// Decoupled (`true`) or L2 (`false`, default) weight decay.
    #[serde(default)]
    pub decoupled_weight_decay: bool,
    /// Clip the gradient to this global norm (default: no clipping).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip_grad_norm: Option<f64>,
    /// Terjék's depthwise gradient scaling (default none).
    #[serde(default)]
    pub gradient_scaling: DepthwiseScaling,
}

/// Hyperparameters of `kind = "momentum"` and `kind = "nesterov"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MomentumConfig {
    /// μ ∈ [0, 1) (default 0.9).
    #[serde(default = "default_momentum")]
    pub momentum: f64,
    /// Weight decay coefficient `w` (default 0).
    #[serde(default)]
    pub weight_decay: f64,
    /// Decoupled (`true`) or L2 (`false`, default) weight decay.
    #[serde(default)]
    pub decoupled_weight_decay: bool,
    /// Clip the gradient to this global norm (default: no clipping).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip_grad_norm: Option<f64>,
    /// Terjék's depthwise gradient scaling (default none).
    #[serde(default)]
    pub gradient_scaling: DepthwiseScaling,
}

impl Default for MomentumConfig {
    fn default() -> Self {
        Self {
            momentum: default_momentum(),
            weight_decay: 0.0,
            decoupled_weight_decay: false,
            clip_grad_norm: None,
            gradient_scaling: DepthwiseScaling::default(),
        }
    }
}

/// Hyperparameters of `kind = "adam"` (L2 weight decay, PyTorch's `Adam`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdamConfig {
    /// β₁ (default 0.9).
    #[serde(default = "default_beta1")]
    pub beta1: f64,
    /// β₂ (default 0.999).
    #[serde(default = "default_beta2")]
    pub beta2: f64,
    /// ε (default 1e-8).
    #[serde(default = "default_eps")]
    pub eps: f64,
    /// L2 coefficient added to the gradient (default 0).
    #[serde(default)]
    pub weight_decay: f64,
    /// Clip the gradient to this global norm (default: no clipping).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip_grad_norm: Option<f64>,
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self {
            beta1: default_beta1(),
            beta2: default_beta2(),
            eps: default_eps(),
            weight_decay: 0.0,
            clip_grad_norm: None,
        }
    }
}

/// Hyperparameters of `kind = "adamw"` (decoupled weight decay, PyTorch's `AdamW`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdamWConfig {
    /// β₁ (default 0.9).
    #[serde(default = "default_beta1")]
    pub beta1: f64,
    /// β₂ (default 0.999).
    #[serde(default = "default_beta2")]
    pub beta2: f64,
    /// ε (default 1e-8).
    #[serde(default = "default_eps")]
    pub eps: f64,
    /// Decoupled decay coefficient (default 0.01, PyTorch's).
    #[serde(default = "default_adamw_decay")]
    pub weight_decay: f64,
    /// Clip the gradient to this global norm (default: no clipping).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip_grad_norm: Option<f64>,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self {
            beta1: default_beta1(),
            beta2: default_beta2(),
            eps: default_eps(),
            weight_decay: default_adamw_decay(),
            clip_grad_norm: None,
        }
    }
}

fn default_momentum() -> f64 {
    0.9
}
fn default_beta1() -> f64 {
    0.9
}
fn default_beta2() -> f64 {
    0.999
}
fn default_eps() -> f64 {
    1e-8
}
fn default_adamw_decay() -> f64 {
    0.01
}

/// What the optimizer needs to know about the model it will train.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BuildContext {
    /// `[n₀, …, n_L]` (needed by `gradient_scaling = width_power`).
    pub widths: Vec<usize>,
    /// Per-layer lr factors (`None`: 1 everywhere).
    pub lr_scales: Option<LayerLrScales>,
    /// νP: per-layer normalised updates requested by the parameterization. An SGD
    /// family optimizer then uses `per_layer_normalized` scaling (a configured
    /// `width_power` is an error); Adam is an error (see [`crate::nup`]).
    pub normalized_updates: bool,
}

impl BuildContext {
    /// A context with the model's widths only.
    pub fn new(widths: &[usize]) -> Self {
        Self {
            widths: widths.to_vec(),
            ..Default::default()
        }
    }

    /// Widths, lr scales and νP flag of a parameterization (pass the form the model
    /// runs, after [`Scalings::fold_output_scale`]).
    pub fn from_scalings(scalings: &Scalings) -> Self {
        Self {
            widths: scalings.widths(),
            lr_scales: Some(LayerLrScales::from_scalings(scalings)),
            normalized_updates: scalings.normalized_updates,
        }
    }
}

impl OptimizerConfig {
    /// The `kind` name.
    pub fn kind(&self) -> &'static str {
        match self {
            OptimizerConfig::Sgd(_) => "sgd",
            OptimizerConfig::Momentum(_) => "momentum",
            OptimizerConfig::Nesterov(_) => "nesterov",
            OptimizerConfig::Adam(_) => "adam",
            OptimizerConfig::AdamW(_) => "adamw",
        }
    }

    /// Builds the optimizer for a model described by `ctx`. Errors name the
    /// configuration key (`optimizer.momentum`, …) and what was expected.
    pub fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Optimizer>> {
        let common =
            |weight_decay: f64, decoupled: bool, clip_grad_norm: Option<f64>| CommonOptions {
                lr_scales: ctx.lr_scales.clone(),
                clip_grad_norm,
                weight_decay: WeightDecay::new(weight_decay, decoupled),
            };
        let scaling = |s: &DepthwiseScaling| -> Result<GradientScaling> {
            nup_gradient_scaling(ctx.normalized_updates, s, &ctx.widths)
        };
        let adam = |kind: &str,
                    (beta1, beta2, eps): (f64, f64, f64),
                    common: CommonOptions|
         -> Result<Box<dyn Optimizer>> {
            nup_refuses_adam(ctx.normalized_updates, kind)?;
            Ok(Box::new(Adam::new(
                AdamParams { beta1, beta2, eps },
                common,
            )?))
        };
        Ok(match self {
            OptimizerConfig::Sgd(c) => Box::new(Sgd::new(
                Momentum::None,
                common(c.weight_decay, c.decoupled_weight_decay, c.clip_grad_norm),
                scaling(&c.gradient_scaling)?,
            )?),
            OptimizerConfig::Momentum(c) | OptimizerConfig::Nesterov(c) => {
                let momentum = match self {
                    OptimizerConfig::Nesterov(_) => Momentum::Nesterov { beta: c.momentum },
                    _ => Momentum::HeavyBall { beta: c.momentum },
                };
                Box::new(Sgd::new(
                    momentum,
                    common(c.weight_decay, c.decoupled_weight_decay, c.clip_grad_norm),
                    scaling(&c.gradient_scaling)?,
                )?)
            }
            OptimizerConfig::Adam(c) => adam(
                "adam",
                (c.beta1, c.beta2, c.eps),
                common(c.weight_decay, false, c.clip_grad_norm),
            )?,
            OptimizerConfig::AdamW(c) => adam(
                "adamw",
                (c.beta1, c.beta2, c.eps),
                common(c.weight_decay, true, c.clip_grad_norm),
            )?,
        })
    }
}

/// Builds the optimizer a configuration describes (same as [`OptimizerConfig::build`]).
pub fn build(config: &OptimizerConfig, ctx: &BuildContext) -> Result<Box<dyn Optimizer>> {
    config.build(ctx)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::testing::{flat, layered};
    use eos_param::{Gain, Parameterization};

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Experiment {
        optimizer: OptimizerConfig,
    }

    fn parse(s: &str) -> std::result::Result<OptimizerConfig, toml::de::Error> {
        toml::from_str::<Experiment>(s).map(|e| e.optimizer)
    }

    #[test]
    fn toml_forms_of_every_kind() {
        assert_eq!(
            parse("[optimizer]\nkind = \"sgd\"\n").unwrap(),
            OptimizerConfig::default()
        );
        assert_eq!(
            parse("[optimizer]\nkind = \"momentum\"\n").unwrap(),
            OptimizerConfig::Momentum(MomentumConfig::default())
        );
        let c = parse(
            "[optimizer]\nkind = \"nesterov\"\nmomentum = 0.95\nweight_decay = 5e-4\n\
             decoupled_weight_decay = true\nclip_grad_norm = 1\n\
             gradient_scaling = { kind = \"width_power\", q = 2 }\n",
        )
        .unwrap();
        assert_eq!(
            c,
            OptimizerConfig::Nesterov(MomentumConfig {
                momentum: 0.95,
                weight_decay: 5e-4,
                decoupled_weight_decay: true,
                clip_grad_norm: Some(1.0),
                gradient_scaling: DepthwiseScaling::WidthPower { q: 2.0 },
            })
        );
        assert_eq!(
            parse("[optimizer]\nkind = \"adam\"\neps = 1e-6\n").unwrap(),
            OptimizerConfig::Adam(AdamConfig {
                eps: 1e-6,
                ..Default::default()
            })
        );
        let c = parse("optimizer = { kind = \"adamw\", beta2 = 0.98 }").unwrap();
        assert_eq!(
            c,
            OptimizerConfig::AdamW(AdamWConfig {
                beta2: 0.98,
                weight_decay: 0.01,
                ..Default::default()
            })
        );
        // the resolved config serialises back to the same value
        for c in [c, OptimizerConfig::Nesterov(MomentumConfig::default())] {
            let text = toml::to_string(&Experiment2 {
                optimizer: c.clone(),
            })
            .unwrap();
            assert_eq!(parse(&text).unwrap(), c, "{text}");
        }
    }

    #[derive(Serialize)]
    struct Experiment2 {
        optimizer: OptimizerConfig,
    }

    #[test]
    fn misspelled_keys_and_bad_values_are_named() {
        let e = parse("[optimizer]\nkind = \"momentum\"\nmomentun = 0.9\n").unwrap_err();
        assert!(e.to_string().contains("unknown field `momentun`"), "{e}");
        let e = parse("[optimizer]\nkind = \"sgd\"\nmomentum = 0.9\n").unwrap_err();
        assert!(e.to_string().contains("unknown field `momentum`"), "{e}");
        let e = parse("[optimizer]\nkind = \"adam\"\nbeta_1 = 0.9\n").unwrap_err();
        assert!(e.to_string().contains("unknown field `beta_1`"), "{e}");
        let e = parse("[optimizer]\nkind = \"rmsprop\"\n").unwrap_err();
        assert!(e.to_string().contains("unknown variant `rmsprop`"), "{e}");
        let c = parse("[optimizer]\nkind = \"momentum\"\nmomentum = 1.5\n").unwrap();
        let e = c
            .build(&BuildContext::new(&[2, 3, 1]))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "optimizer.momentum: got 1.5; expected a number in [0, 1)"
        );
        let c = parse("[optimizer]\nkind = \"sgd\"\nclip_grad_norm = -1\n").unwrap();
        let e = c
            .build(&BuildContext::new(&[2, 3, 1]))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("optimizer.clip_grad_norm: got -1"), "{e}");
    }

    #[test]
    fn builder_uses_the_parameterization() {
        // μP on widths [2, 4, 1]: per-layer lr scales from the table.
        let widths = [2, 4, 1];
        let scalings = Parameterization::MuP {
            gain: Gain::Activation,
        }
        .scalings(&widths, 0.1, eos_param::gain::RELU)
        .unwrap()
        .fold_output_scale();
        let ctx = BuildContext::from_scalings(&scalings);
        assert_eq!(
            ctx.lr_scales.as_ref().unwrap().weights,
            scalings.lr_scales()
        );
        let shapes = [((4, 2), true), ((1, 4), true)];
        let theta = layered(&shapes, &[0.0; 17]);
        let g = layered(&shapes, &[1.0; 17]);
        let mut opt = OptimizerConfig::default().build(&ctx).unwrap();
        assert_eq!(opt.name(), "sgd");
        let u = flat(&opt.step(&theta, &g, 0.5).unwrap().update);
        let (s, b) = (scalings.lr_scales(), scalings.layers[1].bias_lr_scale);
        assert_eq!(u[0], -0.5 * s[0]);
        assert_eq!(u[12], -0.5 * s[1]);
        assert_eq!(u[16], -0.5 * b);

        // νP: normalised updates, whatever the config says (none), and Adam refused
        let nup = Parameterization::NuP {
            gain: Gain::Activation,
        }
        .scalings(&widths, 0.1, eos_param::gain::RELU)
        .unwrap();
        let ctx = BuildContext::from_scalings(&nup);
        assert!(ctx.normalized_updates);
        let theta = layered(
            &shapes,
            &(0..17).map(|i| i as f64 - 3.0).collect::<Vec<_>>(),
        );
        let step = OptimizerConfig::default()
            .build(&ctx)
            .unwrap()
            .step(&theta, &g, 0.1)
            .unwrap();
        assert!(step.scale_factors.is_some());
        let e = OptimizerConfig::Adam(AdamConfig::default())
            .build(&ctx)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("optimizer.kind: got adam"), "{e}");
        let c = OptimizerConfig::Sgd(SgdConfig {
            gradient_scaling: DepthwiseScaling::WidthPower { q: 1.0 },
            ..Default::default()
        });
        let e = c.build(&ctx).unwrap_err().to_string();
        assert!(e.starts_with("optimizer.gradient_scaling"), "{e}");
    }

    /// Runs 5 steps straight, and 3 + save/load into a fresh optimizer + 2: the
    /// parameters must agree bit for bit.
    fn resume_is_bit_identical(config: &OptimizerConfig) {
        let shapes = [((3, 2), true), ((1, 3), false)];
        let ctx = BuildContext::new(&[2, 3, 1]);
        let theta0 = layered(
            &shapes,
            &[
                0.3, -0.2, 0.5, 0.1, -0.4, 0.25, 0.0, 0.0, 0.0, 0.7, -0.6, 0.2,
            ],
        );
        let grad = |k: usize| {
            let v: Vec<f64> = (0..12)
                .map(|i| ((i * 7 + k * 3) % 11) as f64 / 5.0 - 1.0)
                .collect();
            layered(&shapes, &v)
        };
        let lr = |k: usize| 0.1 / (1.0 + k as f64);
        let mut straight = config.build(&ctx).unwrap();
        let mut theta = theta0.clone();
        for k in 0..5 {
            theta = straight.step(&theta, &grad(k), lr(k)).unwrap().params;
        }
        let mut first = config.build(&ctx).unwrap();
        let mut resumed = theta0;
        for k in 0..3 {
            resumed = first.step(&resumed, &grad(k), lr(k)).unwrap().params;
        }
        let saved: HashMap<_, _> = first.state().into_iter().collect();
        let mut second = config.build(&ctx).unwrap();
        second.load_state(&saved).unwrap();
        assert_eq!(second.steps_taken(), 3);
        for k in 3..5 {
            resumed = second.step(&resumed, &grad(k), lr(k)).unwrap().params;
        }
        assert_eq!(flat(&theta), flat(&resumed), "{}", config.kind());
    }

    #[test]
    fn f32_parameters_follow_the_f64_trajectory() {
        let shapes = [((3, 2), true), ((1, 3), false)];
        let ctx = BuildContext::new(&[2, 3, 1]);
        let theta = layered(
            &shapes,
            &[
                0.3, -0.2, 0.5, 0.1, -0.4, 0.25, 0.1, 0.0, -0.1, 0.7, -0.6, 0.2,
            ],
        );
        let grad = layered(
            &shapes,
            &[
                1.0, -0.5, 0.25, 2.0, -1.5, 0.75, 0.1, 0.2, 0.3, -0.4, 0.5, -0.6,
            ],
        );
        for c in [
            OptimizerConfig::Momentum(MomentumConfig {
                weight_decay: 0.1,
                clip_grad_norm: Some(1.0),
                ..Default::default()
            }),
            OptimizerConfig::Nesterov(MomentumConfig {
                gradient_scaling: DepthwiseScaling::PerLayerNormalized {},
                ..Default::default()
            }),
            OptimizerConfig::AdamW(AdamWConfig::default()),
        ] {
            let run = |dtype| {
                let mut opt = c.build(&ctx).unwrap();
                let (mut t, g) = (
                    theta.to_dtype(dtype).unwrap(),
                    grad.to_dtype(dtype).unwrap(),
                );
                for _ in 0..3 {
                    t = opt.step(&t, &g, 0.05).unwrap().params;
                }
                assert_eq!(t.dtype(), dtype);
                flat(&t)
            };
            let (a, b) = (run(candle_core::DType::F64), run(candle_core::DType::F32));
            for (x, y) in a.iter().zip(&b) {
                // f32: 1e-4 relative (STYLE.md), on values of order 1
                assert!(
                    (x - y).abs() < 1e-4 * (1.0 + x.abs()),
                    "{}: {a:?} vs {b:?}",
                    c.kind()
                );
            }
        }
    }

    #[test]
    fn a_failed_step_keeps_the_state() {
        let ctx = BuildContext {
            lr_scales: Some(LayerLrScales::uniform(2)),
            ..BuildContext::new(&[2, 1])
        };
        let theta = layered(&[((1, 2), false)], &[1.0, 2.0]);
        for c in [
            OptimizerConfig::Momentum(MomentumConfig::default()),
            OptimizerConfig::Adam(AdamConfig::default()),
        ] {
            let mut opt = c.build(&ctx).unwrap();
            // one layer, but lr scales for two: the step fails after the direction
            assert!(opt.step(&theta, &theta, 0.1).is_err());
            assert_eq!(opt.steps_taken(), 0);
            assert_eq!(opt.state().len(), 1, "{}: only the step counter", c.kind());
        }
    }

    #[test]
    fn state_save_load_continues_bit_identically() {
        for c in [
            OptimizerConfig::default(),
            OptimizerConfig::Momentum(MomentumConfig {
                weight_decay: 0.1,
                clip_grad_norm: Some(0.5),
                ..Default::default()
            }),
            OptimizerConfig::Nesterov(MomentumConfig {
                gradient_scaling: DepthwiseScaling::PerLayerNormalized {},
                ..Default::default()
            }),
            OptimizerConfig::Adam(AdamConfig::default()),
            OptimizerConfig::AdamW(AdamWConfig::default()),
        ] {
            resume_is_bit_identical(&c);
        }
        // momentum state missing from a checkpoint taken after some steps
        let mut sgd_opt = OptimizerConfig::default()
            .build(&BuildContext::new(&[2, 1]))
            .unwrap();
        let theta = layered(&[((1, 2), false)], &[1.0, 2.0]);
        sgd_opt.step(&theta, &theta, 0.1).unwrap();
        let saved: HashMap<_, _> = sgd_opt.state().into_iter().collect();
        let mut m = OptimizerConfig::Momentum(MomentumConfig::default())
            .build(&BuildContext::new(&[2, 1]))
            .unwrap();
        let e = m.load_state(&saved).unwrap_err().to_string();
        assert!(
            e.contains("`optim.momentum.layers.0.weight` is missing"),
            "{e}"
        );
    }
}
