//! νP, the normalised-update parameterization (Terjék, "MLPs at the EOC: Dynamics of
//! Feature Learning", arXiv 2502.13110 v1; THEORY.md §6): every rule of it, in one
//! place. All of it is **(inferred)** from the abstract (the paper's formulas are not
//! public in a form we could read).
//!
//! ```text
//! init:    SP's table with the activation's gain (the edge of chaos):
//!          W_l ~ N(0, g²/n_l) (layer l = 0 … L−1 maps n_l → n_{l+1}; He, g² = 2,
//!          for ReLU), readout W_{L−1} ~ N(0, 1/n_{L−1}),
//!          m_l = 1, λ_l = 1, biases 0 with bias lr scale 1
//! update:  W_l ← W_l − η λ_l s_l g_l,   s_l = ‖W_l‖_F / ‖g_{W_l}‖_F   (every step)
//!          ⇒ ‖ΔW_l‖_F = η ‖W_l‖_F: η is the relative change per step (LrRule::RelativeChange)
//! widths:  quadratic hidden widths n_k = round(n₁ k²), k = 1 … L−1, when the config
//!          names no pattern
//! ```
//!
//! Where the rules act: [`crate::Parameterization::NuP`] builds the table (SP's, with
//! [`LR_RULE`] and `normalized_updates = true` in [`crate::Scalings`]) and asks for
//! [`WIDTH_PATTERN`]; the optimizer side is `eos_optim::nup`, which turns
//! [`gradient_scaling`]'s choice into per-layer normalised steps computed with
//! [`normalized_factor`] (the bias of a layer is scaled by its weight's factor,
//! **(inferred)**: the paper's networks have no biases), and refuses Adam (its
//! per-coordinate normalisation is a different scheme).

use crate::depthwise_scaling::DepthwiseScaling;
use crate::scalings::LrRule;
use crate::widths::WidthPattern;
use crate::{invalid, Result};

/// νP's default width pattern: quadratic (**inferred**, THEORY.md §6: "p = 2 default").
pub const WIDTH_PATTERN: WidthPattern = WidthPattern::Quadratic {};

/// νP's learning rate is the relative change per step.
pub const LR_RULE: LrRule = LrRule::RelativeChange;

/// `s_l = ‖W_l‖_F / ‖g_l‖_F`, the per-layer normalised factor; 0 when the gradient is
/// zero (the step is zero whatever the factor), so no division by zero reaches the
/// update.
pub fn normalized_factor(weight_norm: f64, grad_norm: f64) -> f64 {
    if grad_norm > 0.0 {
        weight_norm / grad_norm
    } else {
        0.0
    }
}

/// The depthwise scaling νP runs with, given the configured one: `none` and
/// `per_layer_normalized` become `per_layer_normalized`; any other scaling would fight
/// the normalisation and is an error naming `optimizer.gradient_scaling`.
pub fn gradient_scaling(configured: &DepthwiseScaling) -> Result<DepthwiseScaling> {
    match configured {
        DepthwiseScaling::None {} | DepthwiseScaling::PerLayerNormalized {} => {
            Ok(DepthwiseScaling::PerLayerNormalized {})
        }
        s => invalid(
            "optimizer.gradient_scaling",
            format!("{s:?}"),
            "none or per_layer_normalized (the parameterization asks for normalised updates)",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factor_and_scaling_rule() {
        assert_eq!(normalized_factor(3.0, 1.5), 2.0);
        assert_eq!(normalized_factor(3.0, 0.0), 0.0);
        for s in [
            DepthwiseScaling::None {},
            DepthwiseScaling::PerLayerNormalized {},
        ] {
            assert_eq!(
                gradient_scaling(&s).unwrap(),
                DepthwiseScaling::PerLayerNormalized {}
            );
        }
        let e = gradient_scaling(&DepthwiseScaling::WidthPower { q: 1.0 })
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("optimizer.gradient_scaling: got WidthPower"),
            "{e}"
        );
        assert_eq!(WIDTH_PATTERN.exponent(), Some(2.0));
    }
}
