//! The curvature operators of a model on a fixed batch, as [`LinearOperator`]s:
//!
//! - [`HessianOp`]: `v ↦ H v` with `H = ∇²L(θ)` of the loss on the batch (the full
//!   training set or a fixed minibatch), exact by the R-operator (eos-model `hvp`);
//! - [`GaussNewtonOp`]: `v ↦ G v`, `G = (1/n) Σᵢ Jᵢᵀ ∇²_f ℓᵢ Jᵢ` (Schraudolph 2002),
//!   positive semi-definite for convex losses; for mse its nonzero spectrum is that of
//!   the normalised NTK Gram matrix Θ/n (THEORY.md §4).
//!
//! Vectors cross the boundary as flat f64 (`ParamVec::to_f64_vec` order), so the
//! Lanczos recurrences run in f64 whatever the model's dtype.

use eos_model::{Batch, Loss, Mlp, ParamVec};

use crate::{LinearOperator, Result};

/// Which curvature matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curvature {
    Hessian,
    GaussNewton,
}

/// A curvature matrix of `mlp`'s loss on `batch`.
#[derive(Debug)]
pub struct ModelOperator<'a> {
    pub mlp: &'a Mlp,
    pub batch: &'a Batch,
    pub loss: Loss,
    pub kind: Curvature,
    applications: std::cell::Cell<usize>,
}

/// `v ↦ H v`.
pub type HessianOp<'a> = ModelOperator<'a>;
/// `v ↦ G v`.
pub type GaussNewtonOp<'a> = ModelOperator<'a>;

impl<'a> ModelOperator<'a> {
    pub fn hessian(mlp: &'a Mlp, batch: &'a Batch, loss: Loss) -> Self {
        Self::new(mlp, batch, loss, Curvature::Hessian)
    }

    pub fn gauss_newton(mlp: &'a Mlp, batch: &'a Batch, loss: Loss) -> Self {
        Self::new(mlp, batch, loss, Curvature::GaussNewton)
    }

    pub fn new(mlp: &'a Mlp, batch: &'a Batch, loss: Loss, kind: Curvature) -> Self {
        Self {
            mlp,
            batch,
            loss,
            kind,
            applications: std::cell::Cell::new(0),
        }
    }

    /// How many matrix-vector products this operator has computed.
    pub fn applications(&self) -> usize {
        self.applications.get()
    }

    /// The product on a [`ParamVec`] (no f64 round trip).
    pub fn apply_params(&self, v: &ParamVec) -> Result<ParamVec> {
        self.applications.set(self.applications.get() + 1);
        Ok(match self.kind {
            Curvature::Hessian => self.mlp.hvp(self.batch, self.loss, v)?,
            Curvature::GaussNewton => self.mlp.gnvp(self.batch, self.loss, v)?,
        })
    }
}

impl LinearOperator for ModelOperator<'_> {
    fn dim(&self) -> usize {
        self.mlp.params.numel()
    }

    fn apply(&self, v: &[f64]) -> Result<Vec<f64>> {
        let v = ParamVec::from_f64_slice(&self.mlp.params, v)?;
        Ok(self.apply_params(&v)?.to_f64_vec()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::DType;
    use eos_model::testing::{dense_hessian, rel_err, tiny_case};
    use eos_model::Activation;

    #[test]
    fn operators_agree_with_model_products() {
        let (mlp, batch) = tiny_case(
            &[3, 4, 2],
            Activation::Tanh,
            Loss::Mse,
            true,
            6,
            4,
            DType::F64,
        )
        .unwrap();
        let h = ModelOperator::hessian(&mlp, &batch, Loss::Mse);
        let p = h.dim();
        assert_eq!(p, 3 * 4 + 4 + 4 * 2 + 2);
        let dense = dense_hessian(&mlp, &batch, Loss::Mse).unwrap();
        let v: Vec<f64> = (0..p).map(|i| (i as f64 * 0.37).sin()).collect();
        let hv = h.apply(&v).unwrap();
        let expect: Vec<f64> = (0..p)
            .map(|i| (0..p).map(|j| dense[i * p + j] * v[j]).sum())
            .collect();
        assert!(rel_err(&hv, &expect) < 1e-12);
        assert_eq!(h.applications(), 1);
        let g = ModelOperator::gauss_newton(&mlp, &batch, Loss::Mse);
        let gv = g.apply(&v).unwrap();
        let vgv: f64 = v.iter().zip(&gv).map(|(a, b)| a * b).sum();
        assert!(vgv > 0.0, "Gauss-Newton is PSD for mse");
    }
}
