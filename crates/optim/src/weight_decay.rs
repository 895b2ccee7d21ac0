//! Weight decay, coupled (L2) or decoupled (Loshchilov & Hutter 2019, "Decoupled
//! Weight Decay Regularization", ICLR; PyTorch's `SGD(weight_decay)` /
//! `Adam(weight_decay)` vs `AdamW`).
//!
//! ```text
//! L2:         ĝ = g + w θ                 (the gradient of L + (w/2)‖θ‖²; enters the
//!                                          momentum buffer and Adam's moments)
//! decoupled:  Δθ = −η λ_l (d + w θ)        (shrinks θ outside the optimizer's direction d)
//! ```
//!
//! For plain SGD the two are the same step; with momentum the L2 term is accumulated
//! in the buffer, and with Adam it is divided by `√v̂`, so they differ. Both decay
//! every parameter, biases included (PyTorch's default). The decoupled decay is
//! multiplied by the (scheduled, per-layer) lr, as in PyTorch's `AdamW`.

use eos_model::ParamVec;

use crate::{invalid, Result};

/// Which weight decay an optimizer applies.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub enum WeightDecay {
    /// No decay.
    #[default]
    None,
    /// Add `w θ` to the gradient (coupled).
    L2(f64),
    /// Subtract `η λ_l w θ` from the parameters (decoupled).
    Decoupled(f64),
}

impl WeightDecay {
    /// `L2(w)` or `Decoupled(w)` by a flag; `w = 0` gives `None`.
    pub fn new(coeff: f64, decoupled: bool) -> Self {
        match (coeff == 0.0, decoupled) {
            (true, _) => WeightDecay::None,
            (false, false) => WeightDecay::L2(coeff),
            (false, true) => WeightDecay::Decoupled(coeff),
        }
    }

    /// Errors unless the coefficient is finite and ≥ 0.
    pub fn validate(&self) -> Result<()> {
        match *self {
            WeightDecay::None => Ok(()),
            WeightDecay::L2(w) | WeightDecay::Decoupled(w) => {
                if w.is_finite() && w >= 0.0 {
                    Ok(())
                } else {
                    invalid("optimizer.weight_decay", w, "a finite number ≥ 0")
                }
            }
        }
    }

    /// The decoupled coefficient (0 unless [`WeightDecay::Decoupled`]).
    pub fn decoupled_coeff(&self) -> f64 {
        match *self {
            WeightDecay::Decoupled(w) => w,
            _ => 0.0,
        }
    }

    /// `g + w θ` for [`WeightDecay::L2`], `g` otherwise.
    pub fn add_l2(&self, params: &ParamVec, grad: &ParamVec) -> Result<ParamVec> {
        match *self {
            WeightDecay::L2(w) if w != 0.0 => Ok(grad.axpy(w, params)?),
            _ => Ok(grad.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructor_and_validation() {
        assert_eq!(WeightDecay::new(0.0, true), WeightDecay::None);
        assert_eq!(WeightDecay::new(0.1, false), WeightDecay::L2(0.1));
        assert_eq!(WeightDecay::new(0.1, true), WeightDecay::Decoupled(0.1));
        assert_eq!(WeightDecay::Decoupled(0.1).decoupled_coeff(), 0.1);
        assert_eq!(WeightDecay::L2(0.1).decoupled_coeff(), 0.0);
        let e = WeightDecay::L2(-1.0).validate().unwrap_err().to_string();
        assert!(e.contains("optimizer.weight_decay: got -1"), "{e}");
    }
}
