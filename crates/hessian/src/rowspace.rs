//! The Hessian of an MLP restricted to the first layer's row space of its batch
//! (eos-model `rowspace`: with fewer rows n than inputs d, every Hessian column's W₀
//! block is `C X`, so S = {W₀ ∈ rowspace(X)} × (all other parameters) is invariant,
//! contains the range, and H = 0 on S^⊥). On S, with an orthonormal basis B of
//! rowspace(X) (pivoted Cholesky of X Xᵀ, rank r), a W₀ block is D `[out₀, r]` ↔
//! V₀ = D Bᵀ, and
//!
//! ```text
//! H_S = Qᵀ H Q,   Q = diag(B ⊗ I_{out₀}, I)   (QᵀQ = I, Q Qᵀ H = H),
//! ```
//!
//! so H's nonzero eigenpairs are exactly (θ, Q s) for H_S's eigenpairs (θ, s) with θ ≠ 0,
//! and `‖H Q s − θ Q s‖ = ‖H_S s − θ s‖`. [`RowspaceOperator`] is H_S as a
//! [`LinearOperator`] of dimension P − out₀ (d − r); its products are the R-operator's
//! tangent passes with the first layer's n·d·out₀ products replaced by n·r·out₀ ones
//! (`Mlp::hvp_rowspace`). [`lanczos_rowspace`] runs Lanczos on it and returns
//! eigenvectors embedded back into the full parameter space. The operator holds the
//! Hessian of the loss alone (as [`ModelOperator`] does): a weight-decay term λ‖θ‖²/2
//! inside the Hessian would give S^⊥ the eigenvalue λ instead of 0 and is not offered.

use std::borrow::Cow;
use std::cell::Cell;

use eos_model::{Batch, Loss, Mlp, ParamVec, RowBasis};

use crate::{
    lanczos, Error, LanczosConfig, LanczosResult, LinearOperator, ModelOperator, Result, Which,
};

/// H_S: the Hessian of `mlp`'s loss on `batch` in the first layer's row-space
/// coordinates (flat reduced vectors: the reduced W₀ block D first, then every other
/// parameter in `ParamVec::to_f64_vec` order).
#[derive(Debug)]
pub struct RowspaceOperator<'a> {
    /// The full Hessian operator; its cached primal pass serves both.
    pub full: ModelOperator<'a, Mlp>,
    basis: Cow<'a, RowBasis>,
    template: ParamVec,
    out0: usize,
    applications: Cell<usize>,
}

/// Why the reduction does not apply to `mlp` on `batch`, or `None` when it does (the
/// batch has fewer rows than the model has inputs).
pub fn rowspace_declines(mlp: &Mlp, batch: &Batch) -> Option<String> {
    let (n, d) = (batch.len(), mlp.widths()[0]);
    (n >= d).then(|| {
        format!(
            "the row-space reduction needs fewer rows than inputs: the batch has n = {n} \
             rows and the first layer d = {d} inputs (n ≥ d: no reduction)"
        )
    })
}

impl<'a> RowspaceOperator<'a> {
    /// H_S of `mlp`'s loss on `batch`, its basis from `batch.x` with pivot tolerance
    /// [`eos_model::rowspace::ROW_TOL`]; an error when n ≥ d ([`rowspace_declines`]).
    pub fn hessian(mlp: &'a Mlp, batch: &'a Batch, loss: Loss) -> Result<Self> {
        if let Some(why) = rowspace_declines(mlp, batch) {
            return Err(invalid(
                "RowspaceOperator",
                format!("n = {}", batch.len()),
                why,
            ));
        }
        let basis = RowBasis::new(&batch.x, eos_model::rowspace::ROW_TOL)?;
        Self::build(mlp, batch, loss, Cow::Owned(basis))
    }

    /// As [`RowspaceOperator::hessian`] with a basis computed before (it depends on
    /// `batch.x` only, so a fixed probe set computes it once).
    pub fn with_basis(
        mlp: &'a Mlp,
        batch: &'a Batch,
        loss: Loss,
        basis: &'a RowBasis,
    ) -> Result<Self> {
        Self::build(mlp, batch, loss, Cow::Borrowed(basis))
    }

    fn build(mlp: &'a Mlp, batch: &'a Batch, loss: Loss, basis: Cow<'a, RowBasis>) -> Result<Self> {
        if basis.rows() != batch.len() || basis.input_dim() != mlp.widths()[0] {
            return Err(invalid(
                "RowspaceOperator: basis",
                format!("[{}, {}]", basis.rows(), basis.input_dim()),
                format!(
                    "a basis of this batch's rows [{}, {}]",
                    batch.len(),
                    mlp.widths()[0]
                ),
            ));
        }
        let template = basis.reduced_zeros(&mlp.params)?;
        Ok(Self {
            full: ModelOperator::hessian(mlp, batch, loss),
            out0: mlp.widths()[1],
            basis,
            template,
            applications: Cell::new(0),
        })
    }

    /// The row basis (its rank r is the reduced first-layer width).
    pub fn basis(&self) -> &RowBasis {
        &self.basis
    }

    /// How many reduced products this operator has computed.
    pub fn applications(&self) -> usize {
        self.applications.get()
    }

    /// Flat reduced vectors as flat full ones (Q s).
    pub fn embed(&self, vs: &[Vec<f64>]) -> Result<Vec<Vec<f64>>> {
        Ok(self.basis.embed_flat(vs, self.out0)?)
    }

    /// Flat full vectors as the reduced coordinates of their projections onto S (Qᵀ v).
    pub fn project(&self, vs: &[Vec<f64>]) -> Result<Vec<Vec<f64>>> {
        Ok(self.basis.project_flat(vs, self.out0)?)
    }
}

fn invalid(what: &str, found: String, expected: String) -> Error {
    Error::Invalid {
        what: what.into(),
        found,
        expected,
    }
}

impl LinearOperator for RowspaceOperator<'_> {
    fn dim(&self) -> usize {
        self.template.numel()
    }

    fn apply(&self, v: &[f64]) -> Result<Vec<f64>> {
        let v = ParamVec::from_f64_slice(&self.template, v)?;
        let (mlp, batch) = (self.full.model, self.full.batch);
        self.applications.set(self.applications.get() + 1);
        let hv = self.full.with_primal(|p| match p {
            Some(p) => Ok(mlp.hvp_rowspace(p, batch, &self.basis, &v)?),
            None => {
                let p = mlp.hvp_primal(batch, self.full.loss)?;
                Ok(mlp.hvp_rowspace(&p, batch, &self.basis, &v)?)
            }
        })?;
        Ok(hv.to_f64_vec()?)
    }
}

/// The top-k eigenpairs of H by Lanczos on H_S ([`RowspaceOperator`]), eigenvectors
/// embedded into the full parameter space; `warm_start` vectors are full ones
/// (projected onto S). Only `Which::Largest` (else an error); when a returned eigenvalue is
/// negative: `None` (H's k-th largest is then the 0 of S^⊥, which H_S does not hold:
/// use full Lanczos). The
/// residuals are H_S's, equal to the full operator's since Q is an isometry that H
/// commutes with (module docs).
pub fn lanczos_rowspace(
    op: &RowspaceOperator<'_>,
    cfg: &LanczosConfig,
    warm_start: &[Vec<f64>],
) -> Result<Option<LanczosResult>> {
    if cfg.which != Which::Largest {
        return Err(invalid(
            "lanczos_rowspace: which",
            format!("{:?}", cfg.which),
            "Which::Largest (the reduction drops the zero eigenvalues of S^⊥)".into(),
        ));
    }
    let warm = op.project(warm_start)?;
    let mut r = lanczos(op, cfg, &warm)?;
    if r.eigenvalues.iter().any(|&t| t < 0.0) {
        return Ok(None);
    }
    r.eigenvectors = op.embed(&r.eigenvectors)?;
    Ok(Some(r))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::symmetric_eigen;
    use candle_core::DType;
    use eos_model::testing::{dense_hessian, tiny_case};
    use eos_model::Activation;

    fn top_dense(mlp: &Mlp, batch: &Batch, loss: Loss, k: usize) -> Vec<f64> {
        let p = mlp.params.numel();
        let e = symmetric_eigen(&dense_hessian(mlp, batch, loss).unwrap(), p).unwrap();
        e.values.iter().rev().take(k).copied().collect()
    }

    /// Top-k of H by `lanczos_rowspace` (full Krylov space) against the dense Hessian's,
    /// with the embedded eigenvectors' residuals under the full operator.
    fn check_top(mlp: &Mlp, batch: &Batch, loss: Loss, k: usize, rank: usize) {
        let op = RowspaceOperator::hessian(mlp, batch, loss).unwrap();
        assert_eq!(op.basis().rank(), rank);
        let out0 = mlp.widths()[1];
        assert_eq!(
            op.dim(),
            mlp.params.numel() - out0 * (mlp.widths()[0] - rank)
        );
        let cfg = LanczosConfig {
            k,
            which: Which::Largest,
            max_iter: op.dim(),
            tol: 1e-13,
            seed: 5,
        };
        let r = lanczos_rowspace(&op, &cfg, &[]).unwrap().unwrap();
        let want = top_dense(mlp, batch, loss, k);
        assert!(want[k - 1] > 1e-3, "a nonzero top-{k}: {want:?}");
        for (got, w) in r.eigenvalues.iter().zip(&want) {
            assert!((got - w).abs() <= 1e-9 * want[0], "{got} vs {w}");
        }
        for (t, y) in r.eigenvalues.iter().zip(&r.eigenvectors) {
            assert_eq!(y.len(), mlp.params.numel());
            let hy = op.full.apply(y).unwrap();
            let res = hy
                .iter()
                .zip(y)
                .map(|(a, b)| (a - t * b).powi(2))
                .sum::<f64>();
            let norm = y.iter().map(|v| v * v).sum::<f64>().sqrt();
            assert!((norm - 1.0).abs() < 1e-12, "unit eigenvectors: {norm}");
            assert!(
                res.sqrt() <= 1e-9 * t.abs(),
                "residual {} at θ = {t}",
                res.sqrt()
            );
        }
    }

    #[test]
    fn top_eigenvalues_equal_the_dense_hessians() {
        let (mlp, batch) = tiny_case(
            &[12, 6, 3],
            Activation::Tanh,
            Loss::Mse,
            true,
            5,
            1,
            DType::F64,
        )
        .unwrap();
        check_top(&mlp, &batch, Loss::Mse, 4, 5);
        let (mlp, batch) = tiny_case(
            &[12, 6, 3],
            Activation::Relu,
            Loss::Mse,
            false,
            5,
            2,
            DType::F64,
        )
        .unwrap();
        check_top(&mlp, &batch, Loss::Mse, 3, 5);
    }

    #[test]
    fn a_rank_deficient_batch_keeps_the_eigenvalues() {
        let (mlp, batch) = tiny_case(
            &[12, 6, 3],
            Activation::Tanh,
            Loss::Mse,
            true,
            5,
            3,
            DType::F64,
        )
        .unwrap();
        let dup = batch.select(&[0, 1, 2, 0, 3, 1, 4]).unwrap();
        check_top(&mlp, &dup, Loss::Mse, 4, 5);
    }

    #[test]
    fn the_reduced_spectrum_is_the_nonzero_spectrum() {
        let (mlp, batch) = tiny_case(
            &[12, 6, 3],
            Activation::Tanh,
            Loss::Mse,
            true,
            5,
            7,
            DType::F64,
        )
        .unwrap();
        let op = RowspaceOperator::hessian(&mlp, &batch, Loss::Mse).unwrap();
        let m = op.dim();
        let mut hs = vec![0.0; m * m];
        for j in 0..m {
            let mut e = vec![0.0; m];
            e[j] = 1.0;
            for (i, v) in op.apply(&e).unwrap().into_iter().enumerate() {
                hs[i * m + j] = v;
            }
        }
        let red = symmetric_eigen(&hs, m).unwrap().values;
        let p = mlp.params.numel();
        let full = symmetric_eigen(&dense_hessian(&mlp, &batch, Loss::Mse).unwrap(), p)
            .unwrap()
            .values;
        let scale = full[p - 1].abs().max(full[0].abs());
        // The full spectrum is the reduced one plus p − m zeros: compare both ends.
        for i in 0..3 {
            assert!(
                (red[i] - full[i]).abs() < 1e-10 * scale,
                "{} {}",
                red[i],
                full[i]
            );
            let (a, b) = (red[m - 1 - i], full[p - 1 - i]);
            assert!((a - b).abs() < 1e-10 * scale, "{a} {b}");
        }
        assert!(
            full[0] < -1e-6,
            "tanh's Hessian has negative eigenvalues: {}",
            full[0]
        );
    }

    #[test]
    fn n_at_least_d_and_other_settings_are_refused() {
        let (mlp, batch) = tiny_case(
            &[4, 6, 3],
            Activation::Tanh,
            Loss::Mse,
            true,
            5,
            1,
            DType::F64,
        )
        .unwrap();
        let err = RowspaceOperator::hessian(&mlp, &batch, Loss::Mse).unwrap_err();
        assert!(err.to_string().contains("n = 5 rows"), "{err}");
        assert!(rowspace_declines(&mlp, &batch).is_some());
        let (mlp, batch) = tiny_case(
            &[12, 6, 3],
            Activation::Tanh,
            Loss::Mse,
            true,
            5,
            1,
            DType::F64,
        )
        .unwrap();
        assert!(rowspace_declines(&mlp, &batch).is_none());
        let op = RowspaceOperator::hessian(&mlp, &batch, Loss::Mse).unwrap();
        let cfg = LanczosConfig {
            k: 2,
            which: Which::Smallest,
            ..Default::default()
        };
        assert!(lanczos_rowspace(&op, &cfg, &[]).is_err());
        let other = RowBasis::new(&batch.x.narrow(0, 0, 3).unwrap(), 1e-12).unwrap();
        assert!(RowspaceOperator::with_basis(&mlp, &batch, Loss::Mse, &other).is_err());
        // More wanted pairs than positive eigenvalues: declined, not wrong.
        let cfg = LanczosConfig {
            k: op.dim(),
            which: Which::Largest,
            max_iter: op.dim(),
            tol: 0.0,
            seed: 1,
        };
        assert!(lanczos_rowspace(&op, &cfg, &[]).unwrap().is_none());
    }
}
