//! Learning-rate schedules: `η_t = lr(t)`, a pure function of the step and of the
//! schedule's explicit state.
//!
//! | schedule | file | `η_t` |
//! |---|---|---|
//! | constant | [`constant`] | `η` |
//! | linear warmup (wraps another) | [`warmup`] | `min(1, (t+1)/W) · inner(t)` |
//! | cosine decay | [`cosine`] | `η_min + ½(η − η_min)(1 + cos(π min(t,T)/T))` |
//! | step decay | [`step_decay`] | `η · f^{⌊t/k⌋}` |
//! | exponential | [`exponential`] | `η · γᵗ` |
//! | `c/λ₀` (Kalra & Barkeshli 2023) | [`c_over_lambda0`] | `c / λ₀` |
//! | geometry-aware catapult (Terjék v1) | [`geometry_aware`] | `clamp(c / EMA(λ), η_min, η_max)` |
//!
//! Curvature-reactive schedules read the probes only through
//! [`Schedule::observe`]; `lr` never changes state. A schedule that cannot give a
//! rate yet (`c/λ₀` before it has seen λ₀) returns **NaN** from `lr` and `true` from
//! [`Schedule::needs_observation`]; an optimizer refuses a NaN lr with an error, so a
//! missing observation can never train silently. The runner's order per step `t`:
//! probes at `θ_t` → `observe(Observation { step: t, … })` → `lr(t)` → optimizer step.
//!
//! State for resume is a serde value, [`ScheduleState`] (`state` / `load_state`);
//! floats survive TOML and safetensors metadata written with `serde_json`'s
//! `float_roundtrip` feature bit for bit.

pub mod c_over_lambda0;
pub mod config;
pub mod constant;
pub mod cosine;
pub mod exponential;
pub mod geometry_aware;
pub mod step_decay;
pub mod warmup;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

pub use c_over_lambda0::COverLambda0;
pub use config::{build, ScheduleConfig};
pub use constant::Constant;
pub use cosine::Cosine;
pub use exponential::Exponential;
pub use geometry_aware::GeometryAware;
pub use step_decay::StepDecay;
pub use warmup::Warmup;

/// What the probes measured at a step, for curvature-reactive schedules.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// The step at which the quantities were measured (at `θ_step`, before its update).
    pub step: u64,
    /// λ_max of the Hessian (Lanczos or power iteration).
    pub sharpness: Option<f64>,
    /// `uᵀHu / ‖u‖²` along the update direction `u` (from the Taylor coefficient c₂).
    pub directional_sharpness: Option<f64>,
    /// The loss.
    pub loss: Option<f64>,
    /// The Gauss–Newton spectrum of the `s_eos` probe, for K(η, B).
    pub noise_kernel: Option<NoiseKernelSpectrum>,
}

/// What K(η, B) = (1/B − 1/n) Σᵢ ηλᵢ/(2 − ηλᵢ) needs ([`eos_hessian::s_eos_k`],
/// THEORY.md §4, inferred): G's computed top eigenvalues, the rest of tr G (small-ηλ
/// form), the batch size and the number of samples.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NoiseKernelSpectrum {
    /// G's top eigenvalues (exact, Lanczos).
    pub top: Vec<f64>,
    /// tr G minus the sum of `top`.
    pub rest_trace: f64,
    /// The training batch size B.
    pub batch: usize,
    /// The number of samples n (`usize::MAX` for an online stream: 1/n → 0).
    pub n: usize,
}

impl NoiseKernelSpectrum {
    /// The curvature scale c/η_K with η_K = the largest η ≤ `lr_max` with
    /// K(η, B) ≤ `c` ([`eos_hessian::s_eos_lr`]); `c/λ̄ = η_K` holds K at `c`.
    /// None when η_K is not > 0 or the spectrum is invalid.
    pub fn curvature(&self, c: f64, lr_max: f64) -> Option<f64> {
        let lr = eos_hessian::s_eos_lr(&self.top, self.rest_trace, lr_max, self.batch, self.n, c)
            .ok()?;
        (lr > 0.0).then(|| c / lr)
    }
}

impl Observation {
    /// An empty observation at `step`.
    pub fn at(step: u64) -> Self {
        Self {
            step,
            ..Default::default()
        }
    }

    /// With the sharpness λ_max.
    pub fn with_sharpness(mut self, lambda: f64) -> Self {
        self.sharpness = Some(lambda);
        self
    }

    /// With the directional sharpness.
    pub fn with_directional_sharpness(mut self, lambda: f64) -> Self {
        self.directional_sharpness = Some(lambda);
        self
    }

    /// With the loss.
    pub fn with_loss(mut self, loss: f64) -> Self {
        self.loss = Some(loss);
        self
    }

    /// With the Gauss–Newton spectrum for K(η, B).
    pub fn with_noise_kernel(mut self, spectrum: NoiseKernelSpectrum) -> Self {
        self.noise_kernel = Some(spectrum);
        self
    }
}

/// Which curvature measurement a reactive schedule reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SharpnessSource {
    /// λ_max (default).
    #[default]
    Sharpness,
    /// The directional sharpness along the update.
    DirectionalSharpness,
    /// Whichever an observation carries (λ_max when it has both).
    Latest,
    /// The noise kernel norm: the schedule's target `c` is a K(η, B), not an ηλ
    /// ([`NoiseKernelSpectrum::curvature`]; Agarwala & Pennington 2024, inferred).
    NoiseKernel,
}

impl SharpnessSource {
    /// The curvature this source reads from `obs`, if present: a sharpness, or for
    /// [`SharpnessSource::NoiseKernel`] c/η_K (target K = `c`, η_K ≤ `lr_max`).
    pub fn pick(&self, obs: &Observation, c: f64, lr_max: f64) -> Option<f64> {
        match self {
            SharpnessSource::Sharpness => obs.sharpness,
            SharpnessSource::DirectionalSharpness => obs.directional_sharpness,
            SharpnessSource::Latest => obs.sharpness.or(obs.directional_sharpness),
            SharpnessSource::NoiseKernel => obs.noise_kernel.as_ref()?.curvature(c, lr_max),
        }
    }
}

/// A schedule's state, for checkpoints (serde: a table with a `kind`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ScheduleState {
    /// A schedule that depends on the step only.
    Stateless {},
    /// [`COverLambda0`]: λ₀ once observed.
    COverLambda0 {
        /// λ₀.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lambda0: Option<f64>,
    },
    /// [`GeometryAware`]: the smoothed curvature and the number of observations used.
    GeometryAware {
        /// EMA of the observed curvature.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lambda: Option<f64>,
        /// Observations folded into `lambda`.
        observations: u64,
    },
    /// [`Warmup`]: the wrapped schedule's state.
    Warmup {
        /// State of the schedule after the warmup.
        then: Box<ScheduleState>,
    },
}

impl ScheduleState {
    fn kind(&self) -> &'static str {
        match self {
            ScheduleState::Stateless {} => "stateless",
            ScheduleState::COverLambda0 { .. } => "c_over_lambda0",
            ScheduleState::GeometryAware { .. } => "geometry_aware",
            ScheduleState::Warmup { .. } => "warmup",
        }
    }
}

/// The error for a state of the wrong kind.
pub(crate) fn wrong_state<T>(expected: &str, got: &ScheduleState) -> Result<T> {
    Err(Error::State(format!(
        "schedule state of kind `{}`; expected `{expected}` (a checkpoint of another schedule?)",
        got.kind()
    )))
}

/// A learning-rate schedule.
pub trait Schedule: Send + std::fmt::Debug {
    /// The learning rate for step `step`; pure (no state changes). NaN while
    /// [`Schedule::needs_observation`] is true.
    fn lr(&self, step: u64) -> f64;

    /// Feeds the probes measured at `obs.step`; ignored by schedules that do not
    /// react to curvature.
    fn observe(&mut self, _obs: &Observation) {}

    /// True while the schedule cannot give a rate without a (further) observation.
    fn needs_observation(&self) -> bool {
        false
    }

    /// The state to save in a checkpoint.
    fn state(&self) -> ScheduleState {
        ScheduleState::Stateless {}
    }

    /// Restores a state written by [`Schedule::state`].
    fn load_state(&mut self, state: &ScheduleState) -> Result<()> {
        match state {
            ScheduleState::Stateless {} => Ok(()),
            s => wrong_state("stateless", s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_pick_the_right_field() {
        let o = Observation::at(3)
            .with_directional_sharpness(2.0)
            .with_loss(0.5);
        let pick = |s: SharpnessSource, o: &Observation| s.pick(o, 0.5, 1.0);
        assert_eq!(pick(SharpnessSource::Sharpness, &o), None);
        assert_eq!(pick(SharpnessSource::DirectionalSharpness, &o), Some(2.0));
        assert_eq!(pick(SharpnessSource::Latest, &o), Some(2.0));
        assert_eq!(pick(SharpnessSource::NoiseKernel, &o), None);
        let o = o.with_sharpness(7.0);
        assert_eq!(pick(SharpnessSource::Latest, &o), Some(7.0));
        // K = (1/4 − 1/100)·η·20/2 = 2.4 η: K = 0.5 at η_K = 5/24, curvature c/η_K = 2.4.
        let spectrum = NoiseKernelSpectrum {
            top: vec![],
            rest_trace: 20.0,
            batch: 4,
            n: 100,
        };
        let o = o.with_noise_kernel(spectrum.clone());
        let x = pick(SharpnessSource::NoiseKernel, &o).unwrap();
        assert!((x - 2.4).abs() < 1e-10, "{x}");
        // η_max = 0.1 < η_K: η_max, curvature c/η_max = 5.
        assert_eq!(SharpnessSource::NoiseKernel.pick(&o, 0.5, 0.1), Some(5.0));
        // A batch larger than n is not a spectrum K is defined for.
        let bad = NoiseKernelSpectrum {
            batch: 200,
            ..spectrum
        };
        assert_eq!(bad.curvature(0.5, 1.0), None);
    }

    #[test]
    fn stateless_schedules_refuse_foreign_state() {
        let mut c = Constant::new(0.1).unwrap();
        assert!(c.load_state(&ScheduleState::Stateless {}).is_ok());
        let e = c
            .load_state(&ScheduleState::COverLambda0 { lambda0: Some(1.0) })
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("kind `c_over_lambda0`; expected `stateless`"),
            "{e}"
        );
    }
}
