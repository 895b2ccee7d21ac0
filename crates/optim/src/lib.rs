//! eos-optim: optimizers and learning-rate schedules over [`eos_model::ParamVec`].
//!
//! An optimizer turns `(θ, g, η)` into the next parameters and the update it applied
//! (`θ' = θ + Δθ`; the update is what the Taylor and update-cosine probes need). A
//! schedule gives `η_t`; schedules that react to curvature read the probes only
//! through an explicit [`Schedule::observe`] call.
//!
//! | concept | file | formula |
//! |---|---|---|
//! | the optimizer interface, the shared step pipeline | [`optimizer`] | `θ' = θ − η λ_l (d + w θ)` |
//! | the diagonal preconditioner as an lr multiplier ([`Optimizer::preconditioner`]) | [`optimizer`] | `m = P⁻¹`, `θ' = θ − η m ⊙ g` |
//! | SGD, heavy-ball momentum, Nesterov | [`sgd`] | `v ← μ v + g` |
//! | Adam / AdamW (bias-corrected) | [`adam`] | `m̂ / (√v̂ + ε)` |
//! | L2 and decoupled weight decay | [`weight_decay`] | `g + w θ` / `−η w θ` |
//! | clipping by global norm | [`clip`] | `g · min(1, c/‖g‖)` |
//! | per-layer lr scales from the parameterization | [`lr_scales`] | `η_l = η λ_l` |
//! | Terjék's depthwise gradient scaling | [`gradient_scaling`] | `g_l ← s_l g_l` |
//! | νP's optimizer side: per-layer normalised updates, Adam refused | [`nup`] | `s_l = ‖W_l‖/‖g_l‖` |
//! | saving/loading optimizer state as named tensors | [`state`] | — |
//! | TOML configuration, builder | [`config`] | — |
//! | schedules: constant, warmup, cosine, step, exponential, `c/λ₀`, geometry-aware | [`schedule`] | `η_t` |
//!
//! Order of one step (every optimizer): clip the raw gradient by its global norm →
//! add the L2 term `w θ` → depthwise scaling `s_l` (SGD family) → the optimizer's
//! direction `d` (momentum buffer, Adam ratio) → `Δθ = −η λ_l (d + w_dec θ)` with the
//! per-layer lr scale `λ_l` and the decoupled decay `w_dec` → `θ' = θ + Δθ`.
//!
//! Defaults that are our reading of a source rather than its text are marked
//! **(inferred)** (THEORY.md §6).
//!
//! One plain SGD step on a model's gradient: `θ' = θ − η g`, and the update it reports.
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use eos_model::{Activation, Batch, Loss, Mlp, MlpSpec};
//! use eos_optim::{Optimizer, Sgd};
//!
//! let dev = Device::Cpu;
//! let mlp = Mlp::random(&MlpSpec::new(&[3, 8, 1], Activation::Tanh, true), 0, DType::F64, &dev)?;
//! let batch = Batch::new(Tensor::randn(0.0, 1.0, (16, 3), &dev)?, Tensor::randn(0.0, 1.0, (16, 1), &dev)?);
//! let g = mlp.grad(&batch, Loss::Mse)?;
//! let mut sgd = Sgd::plain();
//! let step = sgd.step(&mlp.params, &g, 0.1)?;
//! assert!(step.update.sub(&g.scale(-0.1)?)?.norm()? < 1e-15);
//! assert!(step.params.sub(&mlp.params.add(&step.update)?)?.norm()? < 1e-15);
//! assert_eq!(sgd.steps_taken(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod adam;
pub mod clip;
pub mod config;
pub mod gradient_scaling;
pub mod lr_scales;
pub mod nup;
pub mod optimizer;
pub mod schedule;
pub mod sgd;
pub mod state;
pub mod weight_decay;

#[cfg(test)]
mod testing;

pub use adam::{Adam, AdamParams};
pub use config::{
    AdamConfig, AdamWConfig, BuildContext, MomentumConfig, OptimizerConfig, SgdConfig,
};
pub use gradient_scaling::GradientScaling;
pub use lr_scales::LayerLrScales;
pub use optimizer::{CommonOptions, Optimizer, Step};
pub use schedule::{
    NoiseKernelSpectrum, Observation, Schedule, ScheduleConfig, ScheduleState, SharpnessSource,
};
pub use sgd::{Momentum, Sgd};
pub use weight_decay::WeightDecay;

/// Errors of the optimizer crate. Messages say what was wrong, where (the
/// configuration key or the state tensor's name) and what was expected.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tensor operation failed (shapes, devices, dtypes).
    #[error(transparent)]
    Model(#[from] eos_model::Error),
    /// A candle error outside a `ParamVec` operation.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// The parameterization could not resolve its factors.
    #[error(transparent)]
    Param(#[from] eos_param::ParamError),
    /// A configuration value or argument outside its domain.
    #[error("{key}: got {found}; expected {expected}")]
    Invalid {
        /// The configuration key or argument (e.g. `optimizer.momentum`).
        key: String,
        /// The offending value, formatted.
        found: String,
        /// What would have been accepted.
        expected: String,
    },
    /// Saved optimizer or schedule state that does not fit this optimizer.
    #[error("optimizer state: {0}")]
    State(String),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Shorthand for an [`Error::Invalid`].
pub(crate) fn invalid<T>(
    key: impl Into<String>,
    found: impl std::fmt::Display,
    expected: impl Into<String>,
) -> Result<T> {
    Err(Error::Invalid {
        key: key.into(),
        found: found.to_string(),
        expected: expected.into(),
    })
}
