//! Effective (preconditioned) sharpness: the top eigenvalues of `P^{−½} H P^{−½}`.
//!
//! An update with a diagonal preconditioner `P`,
//!
//! ```text
//! θ ← θ − η P⁻¹ g,       P⁻¹ = diag(m),  m_i > 0 the per-coordinate lr multiplier
//! ```
//!
//! (per-layer lr scales, depthwise gradient scaling, νP's normalisation, Adam's
//! `1/(√v̂ + ε)`), is, on a quadratic `½ θᵀHθ`, the iteration `θ ← (I − η P⁻¹H) θ`.
//! `P⁻¹H` is similar to the symmetric `S = P^{−½} H P^{−½} = D H D` with
//! `D = diag(d)`, `d = P^{−½} = √m`, so the update is stable iff
//! `η · λ_max(D H D) ≤ 2`, not `η · λ_max(H) ≤ 2`. This is the "preconditioned
//! sharpness" of Cohen et al. 2022, "Adaptive Gradient Methods at the Edge of
//! Stability" (arXiv 2207.14484, §3: `λ₁(P_t⁻¹ H_t)`, whose equilibrium is `2/η`
//! for a frozen `P_t`), and the quantity the central flows of Cohen et al. 2024
//! ("Understanding Optimization in Deep Learning with Central Flows", arXiv
//! 2410.24206) track for RMSProp-type optimizers.
//!
//! [`Preconditioned`] wraps any [`LinearOperator`] `A` as `v ↦ d ⊙ A(d ⊙ v)`
//! (symmetric when `A` is), so power iteration, Lanczos, Hutchinson and SLQ apply
//! unchanged; [`effective_sharpness`] runs the crate's Lanczos on it. With `d = 1`
//! it is `A` itself (the plain sharpness, bit for bit).
//!
//! Momentum is not a preconditioner: heavy-ball with coefficient `β` moves the
//! threshold itself, to `η λ ≤ 2(1 + β)` (Cohen et al. 2021, "Gradient Descent on
//! Neural Networks Typically Occurs at the Edge of Stability", §A), which callers
//! compare against; it is not folded into `d`.

use crate::lanczos::{lanczos, LanczosConfig, LanczosResult};
use crate::{Error, LinearOperator, Result};

/// The operator `D A D` with `D = diag(d)`, `d = P^{−½}`.
#[derive(Debug, Clone)]
pub struct Preconditioned<'a, A: LinearOperator + ?Sized> {
    inner: &'a A,
    d: Vec<f64>,
}

impl<'a, A: LinearOperator + ?Sized> Preconditioned<'a, A> {
    /// `D A D` from `d = P^{−½}` (one finite entry ≥ 0 per coordinate of `A`).
    pub fn new(inner: &'a A, d: Vec<f64>) -> Result<Self> {
        check_diagonal(&d, inner.dim(), "preconditioner diagonal d = P^-1/2")?;
        Ok(Self { inner, d })
    }

    /// `D A D` from the lr multiplier `m = P⁻¹` (as the optimizers report it):
    /// `d = √m`.
    pub fn from_multiplier(inner: &'a A, m: &[f64]) -> Result<Self> {
        check_diagonal(m, inner.dim(), "lr multiplier m = P^-1")?;
        Self::new(inner, m.iter().map(|x| x.sqrt()).collect())
    }

    /// The diagonal `d = P^{−½}`.
    pub fn diagonal(&self) -> &[f64] {
        &self.d
    }

    fn scaled(&self, v: &[f64]) -> Result<Vec<f64>> {
        if v.len() != self.d.len() {
            return Err(Error::Length {
                what: "preconditioned operator: input vector".into(),
                found: v.len(),
                expected: self.d.len(),
            });
        }
        Ok(v.iter().zip(&self.d).map(|(x, d)| x * d).collect())
    }

    fn unscale(&self, mut w: Vec<f64>) -> Result<Vec<f64>> {
        if w.len() != self.d.len() {
            return Err(Error::Length {
                what: "preconditioned operator: inner operator output".into(),
                found: w.len(),
                expected: self.d.len(),
            });
        }
        for (x, d) in w.iter_mut().zip(&self.d) {
            *x *= d;
        }
        Ok(w)
    }
}

impl<A: LinearOperator + ?Sized> LinearOperator for Preconditioned<'_, A> {
    fn dim(&self) -> usize {
        self.inner.dim()
    }

    fn apply(&self, v: &[f64]) -> Result<Vec<f64>> {
        let w = self.inner.apply(&self.scaled(v)?)?;
        self.unscale(w)
    }

    fn apply_block(&self, vs: &[Vec<f64>]) -> Result<Vec<Vec<f64>>> {
        let scaled = vs
            .iter()
            .map(|v| self.scaled(v))
            .collect::<Result<Vec<_>>>()?;
        let ws = self.inner.apply_block(&scaled)?;
        if ws.len() != vs.len() {
            return Err(Error::Length {
                what: "preconditioned operator: inner apply_block output count".into(),
                found: ws.len(),
                expected: vs.len(),
            });
        }
        ws.into_iter().map(|w| self.unscale(w)).collect()
    }
}

/// The `cfg.k` wanted eigenpairs of `P^{−½} A P^{−½}` by [`lanczos`], from the lr
/// multiplier `m = P⁻¹` (one entry ≥ 0 per coordinate; `None` = identity, i.e. the
/// plain spectrum of `A`). With `cfg.which = Largest` and `k = 1` the eigenvalue is
/// the effective sharpness `λ_eff`; the update is stable while `η λ_eff ≤ 2`.
/// Ritz vectors are in the scaled coordinates `u = P^{½} x` (warm starts too).
pub fn effective_sharpness<A: LinearOperator + ?Sized>(
    op: &A,
    multiplier: Option<&[f64]>,
    cfg: &LanczosConfig,
    warm_start: &[Vec<f64>],
) -> Result<LanczosResult> {
    match multiplier {
        None => lanczos(op, cfg, warm_start),
        Some(m) => lanczos(&Preconditioned::from_multiplier(op, m)?, cfg, warm_start),
    }
}

/// Errors unless `d` has length `dim` and finite entries ≥ 0.
fn check_diagonal(d: &[f64], dim: usize, what: &str) -> Result<()> {
    if d.len() != dim {
        return Err(Error::Length {
            what: what.into(),
            found: d.len(),
            expected: dim,
        });
    }
    match d.iter().position(|x| !(x.is_finite() && *x >= 0.0)) {
        None => Ok(()),
        Some(index) => Err(Error::Entry {
            what: what.into(),
            index,
            value: d[index],
            expected: "a finite number >= 0",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eigen::symmetric_eigen;
    use crate::lanczos::Which;
    use crate::testing::symmetric_with_spectrum;
    use crate::DenseOperator;

    fn cfg(k: usize, which: Which) -> LanczosConfig {
        LanczosConfig {
            k,
            which,
            max_iter: 200,
            tol: 1e-12,
            seed: 3,
        }
    }

    /// Dense `D H D` (row-major) for the reference solver.
    fn dense_dhd(h: &DenseOperator, d: &[f64]) -> Vec<f64> {
        let n = h.n;
        (0..n * n)
            .map(|k| d[k / n] * h.get(k / n, k % n) * d[k % n])
            .collect()
    }

    #[test]
    fn diagonal_hessian_gives_h_over_p() {
        // H = diag(h), P = diag(p): eigenvalues of P^-1/2 H P^-1/2 are h_i / p_i.
        let h = [4.0, 1.0, 9.0, -2.0, 0.5];
        let p = [2.0, 0.25, 36.0, 1.0, 0.1];
        let mut a = vec![0.0; 25];
        for i in 0..5 {
            a[i * 6] = h[i];
        }
        let op = DenseOperator::new(5, a);
        let m: Vec<f64> = p.iter().map(|p| 1.0 / p).collect();
        let r = effective_sharpness(&op, Some(&m), &cfg(5, Which::Largest), &[]).unwrap();
        // h/p = (2, 4, 0.25, −2, 5), descending:
        let want = [5.0, 4.0, 2.0, 0.25, -2.0];
        for (got, want) in r.eigenvalues.iter().zip(want) {
            assert!((got - want).abs() < 1e-12 * 5.0, "{got} vs {want}");
        }
    }

    #[test]
    fn two_by_two_closed_form() {
        // H = [[2, 1], [1, 2]], m = (1, 4), d = (1, 2): D H D = [[2, 2], [2, 8]],
        // eigenvalues 5 ± √13.
        let op = DenseOperator::new(2, vec![2.0, 1.0, 1.0, 2.0]);
        let r = effective_sharpness(&op, Some(&[1.0, 4.0]), &cfg(2, Which::Largest), &[]).unwrap();
        let s13 = 13f64.sqrt();
        assert!((r.eigenvalues[0] - (5.0 + s13)).abs() < 1e-13 * 9.0);
        assert!((r.eigenvalues[1] - (5.0 - s13)).abs() < 1e-13 * 9.0);
    }

    #[test]
    fn dense_non_diagonal_agrees_with_jacobi() {
        // A 5×5 H with spread spectrum, P with entries over four decades.
        let (h, _) = symmetric_with_spectrum(&[10.0, 3.0, 1.0, -0.5, 0.01], 11);
        let m = [1e-2, 3.0, 0.7, 25.0, 1.0];
        let d: Vec<f64> = m.iter().map(|x: &f64| x.sqrt()).collect();
        let reference = symmetric_eigen(&dense_dhd(&h, &d), 5).unwrap();
        let r = effective_sharpness(&h, Some(&m), &cfg(5, Which::Largest), &[]).unwrap();
        let scale = reference.values.iter().fold(0.0f64, |a, x| a.max(x.abs()));
        for (got, want) in r.eigenvalues.iter().zip(reference.values.iter().rev()) {
            // Lanczos to 1e-12 relative, Jacobi to a few ε‖A‖.
            assert!((got - want).abs() < 1e-10 * scale, "{got} vs {want}");
        }
        // the wrapper's product is D H D exactly as the dense matrix applies it
        let pc = Preconditioned::from_multiplier(&h, &m).unwrap();
        let v = [0.3, -1.0, 2.0, 0.5, -0.25];
        let dense = DenseOperator::new(5, dense_dhd(&h, &d));
        let (a, b) = (pc.apply(&v).unwrap(), dense.apply(&v).unwrap());
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-13 * 30.0, "{x} vs {y}");
        }
        let block = pc.apply_block(&[v.to_vec(), v.to_vec()]).unwrap();
        assert_eq!(block[0], a);
        assert_eq!(block[1], a);
    }

    #[test]
    fn identity_preconditioner_is_plain_sharpness() {
        let (h, _) = symmetric_with_spectrum(&[7.0, 2.0, 1.0, 0.0, -3.0, 0.5], 5);
        let c = cfg(2, Which::Largest);
        let plain = lanczos(&h, &c, &[]).unwrap();
        let none = effective_sharpness(&h, None, &c, &[]).unwrap();
        let ones = effective_sharpness(&h, Some(&[1.0; 6]), &c, &[]).unwrap();
        assert_eq!(plain, none);
        // d = √1 = 1 exactly, so every product and hence every Ritz value is the same
        assert_eq!(plain.eigenvalues, ones.eigenvalues);
        assert!((plain.eigenvalues[0] - 7.0).abs() < 1e-12 * 7.0);
    }

    #[test]
    fn bad_diagonals_are_typed_errors() {
        let op = DenseOperator::new(2, vec![1.0, 0.0, 0.0, 1.0]);
        let e = Preconditioned::from_multiplier(&op, &[1.0]).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Length {
                    found: 1,
                    expected: 2,
                    ..
                }
            ),
            "{e}"
        );
        let e = Preconditioned::from_multiplier(&op, &[1.0, -1.0]).unwrap_err();
        assert!(matches!(e, Error::Entry { index: 1, .. }), "{e}");
        assert!(e
            .to_string()
            .contains("lr multiplier m = P^-1: entry 1 is -1"));
        let pc = Preconditioned::new(&op, vec![1.0, 2.0]).unwrap();
        assert!(matches!(
            pc.apply(&[1.0]).unwrap_err(),
            Error::Length { found: 1, .. }
        ));
    }
}
