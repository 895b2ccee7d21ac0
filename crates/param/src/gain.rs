//! Initialisation gains: the `g` in `std = g / √fan_in`.
//!
//! A gain keeps the second moment of the pre-activations constant through depth at
//! initialisation: for `z = W h`, `W_ij ~ N(0, g²/n)`, `E[z²] = g² E[φ(z_prev)²]`, so
//! `g² = E[u²] / E[φ(u)²]` for a centred Gaussian `u` when φ is positively
//! homogeneous. Values (PyTorch `torch.nn.init.calculate_gain`; He et al. 2015 for
//! ReLU, LeCun et al. 1998 for linear):
//!
//! | activation | gain |
//! |---|---|
//! | identity / linear | 1 |
//! | relu | √2 (He / Kaiming; the edge of chaos of a ReLU net) |
//! | leaky_relu with slope a | √(2 / (1 + a²)) |
//! | tanh | 5/3 |
//!
//! eos-param does not know the model's activation (it depends on no tensor crate),
//! so callers pass the activation's gain, e.g. [`RELU`], and a [`Gain`] in the
//! configuration says whether to use it (`activation`, the default of most schemes),
//! a fixed value (`he`, `lecun`) or an explicit number.
//!
//! The gain applies to the layers followed by the activation (`l < L−1`, 0-based);
//! the readout `l = L−1` is linear and always uses gain 1 (THEORY.md §6: "output layer
//! N(0, 1/n_{L−1})").

use serde::{Deserialize, Serialize};

use crate::{positive, Result};

/// Gain of the identity (and of LeCun initialisation).
pub const LINEAR: f64 = 1.0;
/// Gain of ReLU: √2 (He et al. 2015).
pub const RELU: f64 = std::f64::consts::SQRT_2;
/// Gain of tanh: 5/3 (PyTorch's `calculate_gain("tanh")`).
pub const TANH: f64 = 5.0 / 3.0;

/// Gain of a leaky ReLU with negative slope `a`: √(2 / (1 + a²)).
pub fn leaky_relu(a: f64) -> f64 {
    (2.0 / (1.0 + a * a)).sqrt()
}

/// Which gain a parameterization's hidden-feeding layers use.
///
/// TOML: `gain = "activation"`, `gain = "he"`, `gain = "lecun"` or
/// `gain = { value = 1.2 }`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gain {
    /// The activation's gain, passed in by the caller (√2 for ReLU, i.e. He).
    #[default]
    Activation,
    /// √2 whatever the activation (He et al. 2015).
    He,
    /// 1 whatever the activation (LeCun et al. 1998).
    Lecun,
    /// An explicit gain (finite, > 0).
    Value(f64),
}

impl Gain {
    /// The number, given the activation's gain. `key` names the config field in errors.
    pub fn resolve(&self, activation_gain: f64, key: &str) -> Result<f64> {
        match *self {
            Gain::Activation => positive("activation_gain", activation_gain),
            Gain::He => Ok(RELU),
            Gain::Lecun => Ok(LINEAR),
            Gain::Value(g) => positive(key, g),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        // f64 tolerance 1e-15 (exact constants, one rounding each).
        assert!((RELU * RELU - 2.0).abs() < 1e-15);
        assert!((leaky_relu(0.0) - RELU).abs() < 1e-15);
        assert!((leaky_relu(1.0) - 1.0).abs() < 1e-15);
        assert_eq!(Gain::He.resolve(1.0, "g").unwrap(), RELU);
        assert_eq!(Gain::Lecun.resolve(RELU, "g").unwrap(), 1.0);
        assert_eq!(Gain::Activation.resolve(TANH, "g").unwrap(), TANH);
        assert_eq!(Gain::Value(0.5).resolve(RELU, "g").unwrap(), 0.5);
        assert!(Gain::Value(-1.0).resolve(RELU, "p.gain").is_err());
        assert!(Gain::Activation.resolve(f64::NAN, "g").is_err());
    }

    #[test]
    fn toml_forms() {
        #[derive(Deserialize)]
        struct T {
            gain: Gain,
        }
        let g = |s: &str| toml::from_str::<T>(s).map(|t| t.gain);
        assert_eq!(g("gain = \"he\"").unwrap(), Gain::He);
        assert_eq!(g("gain = \"lecun\"").unwrap(), Gain::Lecun);
        assert_eq!(g("gain = \"activation\"").unwrap(), Gain::Activation);
        assert_eq!(g("gain = { value = 1.5 }").unwrap(), Gain::Value(1.5));
        assert!(g("gain = \"kaiming\"")
            .unwrap_err()
            .to_string()
            .contains("kaiming"));
    }
}
