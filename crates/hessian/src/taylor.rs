//! Taylor coefficients of the loss along a direction (THEORY.md §6, §8):
//!
//! ```text
//! L(θ + t v) = c0 + c1 t + c2 t² + c3 t³ + O(t⁴),   c_j = (1/j!) dʲ/dtʲ L(θ + t v)|₀
//! ```
//!
//! so c1 = ⟨∇L, v⟩, c2 = ½ vᵀHv, c3 = (1/6) ∇³L[v, v, v]. Along an SGD update
//! Δθ = −η u, Terjék's coefficients are these with v = Δθ (t = 1). Computed in one
//! Taylor-mode (jet) pass of eos-model, never by finite differences.

use eos_model::{Batch, Loss, Model, ParamSpace};

use crate::Result;

/// The coefficients and derived quantities along one direction.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Taylor {
    /// `[c0, c1, c2, c3]`.
    pub c: [f64; 4],
    /// vᵀHv / ‖v‖² (the curvature along v; = 2 c2 / ‖v‖²).
    pub directional_sharpness: f64,
}

impl Taylor {
    /// The predicted loss at t: c0 + c1 t + c2 t² + c3 t³.
    pub fn predict(&self, t: f64) -> f64 {
        let c = self.c;
        c[0] + t * (c[1] + t * (c[2] + t * c[3]))
    }
}

/// Taylor coefficients of `mlp`'s loss on `batch` along `v`.
pub fn taylor<M: Model>(mlp: &M, batch: &Batch, loss: Loss, v: &M::Params) -> Result<Taylor> {
    let c = mlp.taylor(batch, loss, v)?;
    let vv = v.dot(v)?;
    Ok(Taylor {
        c,
        directional_sharpness: if vv > 0.0 { 2.0 * c[2] / vv } else { 0.0 },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::DType;
    use eos_model::testing::tiny_case;
    use eos_model::Activation;

    #[test]
    fn prediction_error_falls_like_t_to_the_fourth() {
        // The validation of the probe in THEORY.md §6 item 2: the error of
        // c0 + c1 + c2 + c3 against L(θ + tv) shrinks by ≈ 2⁴ when t halves.
        let (mlp, batch) = tiny_case(
            &[4, 6, 3],
            Activation::Tanh,
            Loss::CrossEntropy,
            true,
            8,
            3,
            DType::F64,
        )
        .unwrap();
        let v = mlp.params.randn_like(5).unwrap();
        let tay = taylor(&mlp, &batch, Loss::CrossEntropy, &v).unwrap();
        let err = |t: f64| {
            let m = mlp.with_params(mlp.params.axpy(t, &v).unwrap()).unwrap();
            (m.loss(&batch, Loss::CrossEntropy).unwrap() - tay.predict(t)).abs()
        };
        let (e1, e2) = (err(0.04), err(0.02));
        let ratio = e1 / e2;
        assert!(
            (12.0..20.0).contains(&ratio),
            "error ratio {ratio} (expected ≈ 16)"
        );
        let vhv = v
            .dot(&mlp.hvp(&batch, Loss::CrossEntropy, &v).unwrap())
            .unwrap();
        let vv = v.dot(&v).unwrap();
        assert!((tay.directional_sharpness - vhv / vv).abs() < 1e-10 * (vhv / vv).abs());
    }
}
