//! νP's optimizer side (Terjék, arXiv 2502.13110 v1; the rules and their source are in
//! [`eos_param::nup`]): when the parameterization asks for normalised updates
//! ([`eos_param::Scalings::normalized_updates`], carried by
//! [`crate::BuildContext::normalized_updates`]), every SGD-family step is
//!
//! ```text
//! W_l ← W_l − η λ_l s_l d_l,   s_l = ‖W_l‖_F / ‖g_{W_l}‖_F     ⇒ ‖ΔW_l‖_F = η λ_l ‖W_l‖_F
//! ```
//!
//! applied by [`GradientScaling::PerLayerNormalized`] (which computes `s_l` with
//! [`eos_param::nup::normalized_factor`]); a configured `width_power` scaling is an
//! error, and so is Adam (its per-coordinate normalisation is another scheme).

use eos_param::DepthwiseScaling;

use crate::gradient_scaling::GradientScaling;
use crate::{invalid, Result};

/// The gradient scaling an SGD-family optimizer uses: νP's per-layer normalisation
/// when `nup`, the configured scaling for `widths` otherwise.
pub fn nup_gradient_scaling(
    nup: bool,
    configured: &DepthwiseScaling,
    widths: &[usize],
) -> Result<GradientScaling> {
    if nup {
        GradientScaling::resolve(&eos_param::nup::gradient_scaling(configured)?, widths)
    } else {
        GradientScaling::resolve(configured, widths)
    }
}

/// Errors (naming `optimizer.kind`) when νP is asked for with the optimizer `kind`
/// that cannot run it (Adam, AdamW).
pub fn nup_refuses_adam(nup: bool, kind: &str) -> Result<()> {
    if nup {
        return invalid(
            "optimizer.kind",
            kind.to_string(),
            "sgd, momentum or nesterov (the parameterization asks for per-layer normalised updates)",
        );
    }
    Ok(())
}
