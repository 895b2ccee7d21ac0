//! eos-param: how an MLP is scaled with its width, as data.
//!
//! Pure Rust, no tensors. Everything here turns a small configuration (TOML-ready enums)
//! into numbers the model and the optimizer consume:
//!
//! | concept | file | output |
//! |---|---|---|
//! | hidden-width patterns `n_l = round(n₁ · l^p)` | [`mod@widths`] | `[n₀, n₁, …, n_L]` |
//! | initialisation gains (He, LeCun, the activation's) | [`gain`] | a number |
//! | abc-parametrizations `W = n^{−a} w`, `w ~ N(0, n^{−2b})`, lr `η n^{−c}` | [`abc`] | exponents per layer role |
//! | SP, NTK, μP, mean-field (γ), νP | [`parameterization`] | a [`Scalings`] table (of widths, or of explicit [`Row`]s for layer networks) |
//! | the resolved per-layer table, its exact reparametrisations | [`scalings`] | `init_std`, `multiplier`, `lr_scale` per layer |
//! | depthwise gradient scaling (Terjék) | [`depthwise_scaling`] | static factors `s_l` or a marker |
//! | νP: every rule of the normalised-update parameterization | [`nup`] | `s_l = ‖W_l‖/‖g_l‖`, lr = relative change |
//!
//! Conventions (THEORY.md): an MLP with `L` weight layers (`depth = L`), widths
//! `n₀` (input), `n₁ … n_{L−1}` (hidden), `n_L` (output).
//!
//! **Layers count from 0, as everywhere in eos** (eos-model's `params.layers[l]`,
//! eos-optim's per-layer tables, every `Vec` here): layer `l = 0 … L−1` maps
//! `n_l → n_{l+1}` and computes `z_l = m_l · h_l W_lᵀ + b_l` (`h₀ = x`,
//! `h_{l+1} = φ(z_l)`), with `W_l` stored `[n_{l+1}, n_l]`, drawn `N(0, init_std²)`,
//! and updated by SGD with step `lr · lr_scale_l`. Layer 0 is the input layer, layer
//! `L−1` the readout. Widths keep their own index (`n_k` is entry `k` of the width
//! vector, so layer `l`'s fan-in is `n_l`). The network output is
//! `f = output_scale · z_{L−1}` (mean-field's `1/γ`), optionally centred `f − f₀`. This
//! is exactly the form `eos-model`'s `Mlp` computes (after
//! [`Scalings::fold_output_scale`]). Papers cited here (Tensor Programs IV/V, Terjék)
//! count layers from 1; where their formulas are quoted, that is said.
//!
//! Defaults that are our reading of a source rather than its text are marked
//! **(inferred)** in the docs of the item that holds them (THEORY.md §6).
//!
//! μP's per-layer table for a 3-layer ReLU MLP of width 256 (TP V Table 3): the
//! readout's applied weights start with std 1/fan_in instead of SP's 1/√fan_in:
//!
//! ```
//! use eos_param::{gain, widths, Gain, Parameterization, WidthPattern};
//!
//! let w = widths(784, 10, 3, 256, &WidthPattern::Constant {})?;
//! assert_eq!(w, vec![784, 256, 256, 10]);
//! let mup = Parameterization::MuP { gain: Gain::Activation };
//! let s = mup.scalings(&w, 0.1, gain::RELU)?;
//! assert_eq!(s.depth(), 3);
//! let readout = &s.layers[2];
//! assert!((readout.effective_init_std() - 1.0 / 256.0).abs() < 1e-12);
//! # Ok::<(), eos_param::ParamError>(())
//! ```

pub mod abc;
pub mod depthwise_scaling;
pub mod gain;
pub mod nup;
pub mod parameterization;
pub mod scalings;
pub mod widths;

#[cfg(test)]
mod testing;

pub use abc::{Abc, LayerRole};
pub use depthwise_scaling::{DepthwiseScaling, LayerFactors};
pub use gain::Gain;
pub use parameterization::{Parameterization, Row};
pub use scalings::{LayerScaling, LrRule, Scalings};
pub use widths::{widths, WidthConfig, WidthPattern};

/// Errors of the parameterization crate: a value that is out of range, named by its
/// configuration key, with what was found and what was expected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParamError {
    /// A configuration value or argument outside its domain.
    #[error("{key}: got {found}; expected {expected}")]
    Invalid {
        /// The configuration key or argument name (e.g. `parameterization.gamma`).
        key: String,
        /// The offending value, formatted.
        found: String,
        /// What would have been accepted.
        expected: String,
    },
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, ParamError>;

/// Shorthand for a [`ParamError::Invalid`].
pub(crate) fn invalid<T>(
    key: impl Into<String>,
    found: impl std::fmt::Display,
    expected: impl Into<String>,
) -> Result<T> {
    Err(ParamError::Invalid {
        key: key.into(),
        found: found.to_string(),
        expected: expected.into(),
    })
}

/// `Ok(x)` when `x` is finite and strictly positive, an error naming `key` otherwise.
pub(crate) fn positive(key: &str, x: f64) -> Result<f64> {
    if x.is_finite() && x > 0.0 {
        Ok(x)
    } else {
        invalid(key, x, "a finite number > 0")
    }
}
