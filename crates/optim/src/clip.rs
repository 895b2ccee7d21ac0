//! Gradient clipping by global norm (Pascanu, Mikolov & Bengio 2013, "On the
//! difficulty of training recurrent neural networks", Algorithm 1; PyTorch's
//! `clip_grad_norm_`).
//!
//! ```text
//! ‖g‖ = sqrt(Σ_l ‖g_l‖_F²)          (all weights and biases together)
//! ĝ   = g · min(1, c / ‖g‖)
//! ```
//!
//! Unlike PyTorch no `1e-6` is added to `‖g‖`, so a clipped gradient has norm `c` up
//! to rounding. A non-finite norm leaves the gradient unchanged (the run's
//! divergence check sees the non-finite loss).

use eos_model::ParamVec;

use crate::Result;

/// Returns `(ĝ, ‖g‖)`: the gradient scaled to global norm at most `max_norm`, and
/// its norm before clipping.
pub fn clip_global_norm(grad: &ParamVec, max_norm: f64) -> Result<(ParamVec, f64)> {
    let norm = grad.norm()?;
    if norm > max_norm && norm.is_finite() {
        Ok((grad.scale(max_norm / norm)?, norm))
    } else {
        Ok((grad.clone(), norm))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{flat, pv1};

    #[test]
    fn caps_the_global_norm_and_keeps_small_gradients() {
        // g = (3, 4), ‖g‖ = 5: clipped to norm 1 it is (0.6, 0.8).
        let g = pv1(&[3.0, 4.0]);
        let (c, n) = clip_global_norm(&g, 1.0).unwrap();
        assert_eq!(n, 5.0);
        let c = flat(&c);
        assert!(
            (c[0] - 0.6).abs() < 1e-15 && (c[1] - 0.8).abs() < 1e-15,
            "{c:?}"
        );
        // below the cap: unchanged, bit for bit
        let (c, n) = clip_global_norm(&g, 10.0).unwrap();
        assert_eq!((flat(&c), n), (vec![3.0, 4.0], 5.0));
    }
}
