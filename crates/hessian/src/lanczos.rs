//! Lanczos with full reorthogonalisation: extreme eigenpairs of a symmetric operator
//! from a few products `A v`.
//!
//! From a unit `q₁`, the Lanczos recurrence builds an orthonormal basis
//! `Q_m = [q₁ … q_m]` of the Krylov space `span{q₁, A q₁, …, A^{m−1} q₁}` and the
//! tridiagonal `T_m = Q_mᵀ A Q_m` (diagonal `α_j`, off-diagonal `β_j`):
//!
//! ```text
//! w = A q_j − α_j q_j − β_{j−1} q_{j−1},   α_j = q_jᵀ A q_j,
//! β_j = ‖w‖,   q_{j+1} = w / β_j,
//! A Q_m = Q_m T_m + β_m q_{m+1} e_mᵀ            (the Lanczos relation)
//! ```
//!
//! In floating point the `q_j` lose orthogonality as Ritz values converge, so every
//! `w` is orthogonalised against the whole basis (full reorthogonalisation): after the
//! three-term recurrence, one pass of classical Gram–Schmidt, `w ← w − Q_m(Q_mᵀ w)`
//! (a pair of matrix-vector products over the contiguous basis), and a second pass
//! when the first cancelled more than 1 − 1/√2 of ‖w‖ (DGKS; Golub & Van Loan,
//! *Matrix Computations*, 4th ed., §10.1 and §10.3.1; "twice is enough": Giraud,
//! Langou & Rozložník 2005). The passes' coefficients on `q_j` correct `α_j`.
//!
//! With `T_m = S Θ Sᵀ`, the Ritz pairs `(θ_i, y_i = Q_m s_i)` satisfy, by the Lanczos
//! relation, `‖A y_i − θ_i y_i‖ = β_m |s_{m,i}|`: residuals cost no product (Parlett,
//! *The Symmetric Eigenvalue Problem*, §13.2). We stop once every wanted pair has
//! `β_m |s_{m,i}| ≤ tol · max(|θ_i|, ε^{2/3} ‖T_m‖)` (ARPACK's `dsconv` test, its
//! floor scaled by `‖T_m‖` so that `θ_i ≈ 0` can converge whatever the units of `A`),
//! at `max_iter` products, or when `β_m ≈ 0`: the
//! Krylov space is invariant and its Ritz pairs are exact, which always happens by
//! `m = P`. Single-vector Lanczos sees one copy of each repeated eigenvalue.
//!
//! Warm start (for curvature tracked during training): start from the sum of the
//! previous Ritz vectors plus a small seeded Gaussian perturbation, so that a slightly
//! changed operator needs fewer products; centralflows warm-starts its eigensolver for
//! the same reason (THEORY.md §8).
//!
//! Memory: the basis is `m × P` f64 values.

use eos_model::rng::{box_muller_vec, rng as seeded_rng, Generator};
use serde::{Deserialize, Serialize};

use crate::eigen::{tridiagonal_eigen, tridiagonal_eigen_rows};
use crate::vector::{
    apply_checked, axpy, check_vector, dot, dot_and_sq, norm, par_pieces, par_pieces_mut, scale,
};
use crate::{Error, LinearOperator, Result};

/// Which end of the spectrum is wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Which {
    /// The k largest (algebraically); returned in descending order.
    Largest,
    /// The k smallest (algebraically); returned in ascending order.
    Smallest,
    /// The k largest in absolute value; returned by descending `|θ|`.
    LargestMagnitude,
}

/// Settings of [`lanczos`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LanczosConfig {
    /// Number of wanted eigenpairs (1 ≤ k ≤ dim).
    pub k: usize,
    pub which: Which,
    /// Maximum number of Lanczos steps = operator applications (≥ k; capped at dim).
    pub max_iter: usize,
    /// Relative residual tolerance; 0 runs to `max_iter` or an invariant subspace.
    pub tol: f64,
    /// Seed of the random start vector (and of the warm-start perturbation).
    pub seed: u64,
}

impl Default for LanczosConfig {
    fn default() -> Self {
        Self {
            k: 1,
            which: Which::Largest,
            max_iter: 100,
            tol: 1e-8,
            seed: 0,
        }
    }
}

/// Ritz pairs returned by [`lanczos`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LanczosResult {
    /// The k wanted Ritz values, ordered as documented on [`Which`].
    pub eigenvalues: Vec<f64>,
    /// Unit-norm Ritz vectors (length dim), one per eigenvalue.
    pub eigenvectors: Vec<Vec<f64>>,
    /// `‖A y − θ y‖` per pair, from the Lanczos relation (`β_m |s_{m,i}|`).
    pub residuals: Vec<f64>,
    /// Number of operator applications.
    pub iterations: usize,
    /// All wanted residuals met the tolerance, or the Krylov space became invariant.
    pub converged: bool,
}

/// The Lanczos tridiagonal `T_m` and basis `Q_m` from a given start vector.
#[derive(Debug, Clone, PartialEq)]
pub struct LanczosTridiag {
    /// Diagonal `α_1..α_m` of `T_m`.
    pub alphas: Vec<f64>,
    /// Off-diagonal `β_1..β_{m−1}` of `T_m`.
    pub betas: Vec<f64>,
    /// `β_m = ‖A q_m − Q_m T_m e_m‖`, the norm of the remainder of the recurrence.
    pub residual_norm: f64,
    /// `Q_m` row-major: `q_j` is `basis[j·dim..(j+1)·dim]`.
    pub basis: Vec<f64>,
    /// The operator dimension `P`.
    pub dim: usize,
    /// The recurrence stopped early because the Krylov space is invariant (`β_m ≈ 0`).
    pub invariant: bool,
}

impl LanczosTridiag {
    /// Number of steps `m` taken.
    pub fn steps(&self) -> usize {
        self.alphas.len()
    }

    /// Basis vector `q_{j+1}` (0-based `j`).
    pub fn basis_vector(&self, j: usize) -> &[f64] {
        &self.basis[j * self.dim..(j + 1) * self.dim]
    }
}

/// `β_m ≤ BREAKDOWN_RTOL · ‖A‖` counts as an invariant subspace (`‖A‖` estimated by
/// `max_j ‖A q_j‖`); rounding leaves `β ≈ √m · ε ‖A‖` there.
const BREAKDOWN_RTOL: f64 = 1e-12;
/// Relative size of the random perturbation added to a warm start.
const WARM_START_NOISE: f64 = 1e-3;

/// Runs up to `steps` Lanczos steps (at most `dim`) from `start` (normalised), with
/// full reorthogonalisation, stopping early on an invariant subspace. This is the
/// recurrence shared by [`lanczos`] and stochastic Lanczos quadrature.
pub fn lanczos_tridiag<A: LinearOperator + ?Sized>(
    op: &A,
    start: &[f64],
    steps: usize,
) -> Result<LanczosTridiag> {
    let dim = op.dim();
    if dim == 0 {
        return Err(Error::EmptyOperator {
            what: "lanczos_tridiag",
        });
    }
    if steps == 0 {
        return Err(Error::Invalid {
            what: "lanczos_tridiag: steps".into(),
            found: "0".into(),
            expected: "at least 1".into(),
        });
    }
    check_vector(start, dim, "lanczos_tridiag start")?;
    let mut q = start.to_vec();
    let nq = norm(&q);
    if nq == 0.0 {
        return Err(Error::ZeroStart {
            what: "lanczos_tridiag",
        });
    }
    scale(1.0 / nq, &mut q);
    let steps = steps.min(dim);
    let mut kr = Krylov::new(dim, q, steps);
    let invariant = loop {
        kr.step(op)?;
        if kr.breakdown() {
            break true;
        }
        if kr.steps() == steps {
            break false;
        }
        kr.advance();
    };
    let m = kr.steps();
    Ok(LanczosTridiag {
        residual_norm: kr.betas[m - 1],
        betas: kr.betas[..m - 1].to_vec(),
        alphas: kr.alphas,
        basis: kr.basis,
        dim,
        invariant,
    })
}

/// The `cfg.k` wanted eigenpairs of `op` by Lanczos with full reorthogonalisation,
/// started from `warm_start` (previous Ritz vectors; may be empty for a random start).
pub fn lanczos<A: LinearOperator + ?Sized>(
    op: &A,
    cfg: &LanczosConfig,
    warm_start: &[Vec<f64>],
) -> Result<LanczosResult> {
    let dim = op.dim();
    validate(cfg, dim)?;
    let mut rng = seeded_rng(cfg.seed);
    let start = start_vector(&mut rng, dim, warm_start)?;
    // Restart vectors (after an early invariant subspace) come from their own stream.
    let mut restart_rng = seeded_rng(cfg.seed);
    restart_rng.set_stream(1);

    let max_steps = cfg.max_iter.min(dim);
    let mut kr = Krylov::new(dim, start, max_steps);
    let mut converged = false;
    loop {
        kr.step(op)?;
        let m = kr.steps();
        let invariant = kr.breakdown();
        if m >= cfg.k {
            if invariant || m == dim || ritz_converged(&kr, cfg)? {
                converged = true;
                break;
            }
            if m >= max_steps {
                break;
            }
        }
        if invariant {
            // Fewer than k Ritz pairs so far: continue in the orthogonal complement.
            kr.restart(&mut restart_rng)?;
        } else {
            kr.advance();
        }
    }

    let m = kr.steps();
    let eig = tridiagonal_eigen(&kr.alphas, &kr.betas[..m - 1])?;
    let beta_m = kr.betas[m - 1];
    let wanted = select(&eig.values, cfg.which, cfg.k);
    let mut eigenvalues = Vec::with_capacity(cfg.k);
    let mut eigenvectors = Vec::with_capacity(cfg.k);
    let mut residuals = Vec::with_capacity(cfg.k);
    // y_i = Q_m s_i for all wanted i in one sweep over the basis, block by block (each
    // basis vector is read once instead of once per Ritz vector).
    let coefs: Vec<&[f64]> = wanted.iter().map(|&i| &eig.vectors[i][..m]).collect();
    let ys = combine_basis(&kr.basis[..m * dim], dim, &coefs);
    for (&i, mut y) in wanted.iter().zip(ys) {
        let s = &eig.vectors[i];
        let ny = norm(&y);
        scale(1.0 / ny, &mut y);
        eigenvalues.push(eig.values[i]);
        eigenvectors.push(y);
        residuals.push(beta_m * s[m - 1].abs());
    }
    Ok(LanczosResult {
        eigenvalues,
        eigenvectors,
        residuals,
        iterations: m,
        converged,
    })
}

/// Elements per block of the blocked basis sweeps (16 KiB of f64: a block of `w` stays
/// in L1 while the basis streams past it).
const BLOCK: usize = 2048;

/// `y_i = Σ_j coefs[i][j] q_j` for the row-major basis `q_j = basis[j·dim..]`, blocked
/// so that each basis vector is read once for all i.
pub(crate) fn combine_basis(basis: &[f64], dim: usize, coefs: &[&[f64]]) -> Vec<Vec<f64>> {
    let parts = par_pieces(dim, |r| {
        let mut ys = vec![vec![0.0; r.len()]; coefs.len()];
        for lo in (r.start..r.end).step_by(BLOCK) {
            let hi = (lo + BLOCK).min(r.end);
            for (j, q) in basis.chunks_exact(dim).enumerate() {
                let qb = &q[lo..hi];
                for (y, c) in ys.iter_mut().zip(coefs) {
                    axpy(c[j], qb, &mut y[lo - r.start..hi - r.start]);
                }
            }
        }
        ys
    });
    let mut ys: Vec<Vec<f64>> = (0..coefs.len()).map(|_| Vec::with_capacity(dim)).collect();
    for part in parts {
        for (y, p) in ys.iter_mut().zip(part) {
            y.extend_from_slice(&p);
        }
    }
    ys
}

pub(crate) fn validate(cfg: &LanczosConfig, dim: usize) -> Result<()> {
    if dim == 0 {
        return Err(Error::EmptyOperator { what: "lanczos" });
    }
    if cfg.k == 0 || cfg.k > dim {
        return Err(Error::Invalid {
            what: "lanczos: k (wanted eigenpairs)".into(),
            found: cfg.k.to_string(),
            expected: format!("1 ≤ k ≤ dim = {dim}"),
        });
    }
    if cfg.max_iter < cfg.k {
        return Err(Error::Invalid {
            what: "lanczos: max_iter".into(),
            found: cfg.max_iter.to_string(),
            expected: format!("at least k = {} (k Ritz pairs need k steps)", cfg.k),
        });
    }
    if !(cfg.tol >= 0.0 && cfg.tol.is_finite()) {
        return Err(Error::Invalid {
            what: "lanczos: tol".into(),
            found: cfg.tol.to_string(),
            expected: "a finite number ≥ 0".into(),
        });
    }
    Ok(())
}

/// Unit start: normalised sum of the warm-start vectors plus `WARM_START_NOISE` times a
/// unit Gaussian vector, or a unit Gaussian vector without warm start.
fn start_vector(rng: &mut Generator, dim: usize, warm_start: &[Vec<f64>]) -> Result<Vec<f64>> {
    let mut sum = vec![0.0; dim];
    for (i, v) in warm_start.iter().enumerate() {
        check_vector(v, dim, &format!("lanczos warm start vector {i}"))?;
        axpy(1.0, v, &mut sum);
    }
    let mut g = box_muller_vec(rng, dim);
    let ng = norm(&g);
    scale(1.0 / ng, &mut g);
    let ns = norm(&sum);
    if ns == 0.0 {
        return Ok(g);
    }
    scale(1.0 / ns, &mut sum);
    axpy(WARM_START_NOISE, &g, &mut sum);
    let ns = norm(&sum);
    scale(1.0 / ns, &mut sum);
    Ok(sum)
}

/// Indices into ascending `values` of the `k` wanted ones, in output order.
pub(crate) fn select(values: &[f64], which: Which, k: usize) -> Vec<usize> {
    let n = values.len();
    match which {
        Which::Largest => (0..n).rev().take(k).collect(),
        Which::Smallest => (0..n).take(k).collect(),
        Which::LargestMagnitude => {
            let mut idx: Vec<usize> = (0..n).rev().collect();
            idx.sort_by(|&i, &j| values[j].abs().total_cmp(&values[i].abs()));
            idx.truncate(k);
            idx
        }
    }
}

/// Whether every wanted Ritz pair of the current `T_m` meets the tolerance
/// (eigenvalues and last eigenvector components only: O(m²)).
fn ritz_converged(kr: &Krylov, cfg: &LanczosConfig) -> Result<bool> {
    let m = kr.steps();
    let t = tridiagonal_eigen_rows(&kr.alphas, &kr.betas[..m - 1], &[m - 1])?;
    let beta_m = kr.betas[m - 1];
    let tnorm = t.values.iter().fold(0.0f64, |a, x| a.max(x.abs()));
    let floor = f64::EPSILON.powf(2.0 / 3.0) * tnorm;
    Ok(select(&t.values, cfg.which, cfg.k)
        .into_iter()
        .all(|i| beta_m * t.rows[0][i].abs() <= cfg.tol * t.values[i].abs().max(floor)))
}

/// One classical Gram–Schmidt pass over the row-major basis `Q` (`q_j = basis[j·dim..]`):
/// `h = Q w`, `w ← w − Qᵀ h`; returns `h` and the
/// new `‖w‖`. Both sweeps go block by block, so that a block of `w` stays in cache
/// while the basis streams past it: each basis vector is read once per sweep and `w`
/// once, instead of once per basis vector.
pub(crate) fn gram_schmidt_pass(basis: &[f64], dim: usize, w: &mut [f64]) -> (Vec<f64>, f64) {
    let m = basis.len() / dim;
    let wr: &[f64] = w;
    let parts = par_pieces(dim, |r| {
        let mut h = vec![0.0; m];
        for lo in (r.start..r.end).step_by(BLOCK) {
            let hi = (lo + BLOCK).min(r.end);
            let wb = &wr[lo..hi];
            for (hj, q) in h.iter_mut().zip(basis.chunks_exact(dim)) {
                *hj += dot(&q[lo..hi], wb);
            }
        }
        h
    });
    let mut h = vec![0.0; m];
    for p in parts {
        for (a, b) in h.iter_mut().zip(p) {
            *a += b;
        }
    }
    let h_ref = &h;
    let sqs = par_pieces_mut(w, |off, piece| {
        let mut sq = 0.0;
        for (k, wb) in piece.chunks_mut(BLOCK).enumerate() {
            let lo = off + k * BLOCK;
            let hi = lo + wb.len();
            for (hj, q) in h_ref.iter().zip(basis.chunks_exact(dim)) {
                axpy(-hj, &q[lo..hi], wb);
            }
            sq += dot(wb, wb);
        }
        sq
    });
    (h, sqs.iter().sum::<f64>().sqrt())
}

/// `w ← w − α q − β p` (p = q_{j−1} when given) and the new `‖w‖`, in one pass.
fn three_term(w: &mut [f64], alpha: f64, q: &[f64], prev: Option<(&[f64], f64)>) -> f64 {
    let sqs = par_pieces_mut(w, |off, piece| {
        let mut sq = 0.0;
        for (k, wb) in piece.chunks_mut(BLOCK).enumerate() {
            let lo = off + k * BLOCK;
            let hi = lo + wb.len();
            axpy(-alpha, &q[lo..hi], wb);
            if let Some((p, beta)) = prev {
                axpy(-beta, &p[lo..hi], wb);
            }
            sq += dot(wb, wb);
        }
        sq
    });
    sqs.iter().sum::<f64>().sqrt()
}

/// The state of the recurrence: `basis` holds `q_1..q_m` (plus `q_{m+1}` between
/// `advance`/`restart` and the next `step`), `alphas`/`betas` have length `m`
/// (`betas[m−1]` is the current `β_m`), `next` is the unnormalised `β_m q_{m+1}`.
struct Krylov {
    dim: usize,
    basis: Vec<f64>,
    alphas: Vec<f64>,
    betas: Vec<f64>,
    next: Vec<f64>,
    /// `max_j ‖A q_j‖ ≤ ‖A‖`, the scale for the breakdown test.
    anorm: f64,
}

impl Krylov {
    /// `steps`: the expected number of steps, to reserve the basis once (best effort).
    fn new(dim: usize, q1: Vec<f64>, steps: usize) -> Self {
        let mut basis = q1;
        let _ = basis.try_reserve_exact(steps.saturating_sub(1).saturating_mul(dim));
        Self {
            dim,
            basis,
            alphas: vec![],
            betas: vec![],
            next: vec![],
            anorm: 0.0,
        }
    }

    fn steps(&self) -> usize {
        self.alphas.len()
    }

    /// One Lanczos step on the newest basis vector `q_m`: `w = A q_m`, reorthogonalised.
    fn step<A: LinearOperator + ?Sized>(&mut self, op: &A) -> Result<()> {
        let j = self.alphas.len();
        let q = &self.basis[j * self.dim..(j + 1) * self.dim];
        let mut w = apply_checked(op, q, "lanczos")?;
        // The three-term recurrence first (cheap), then one full classical
        // Gram–Schmidt pass, and a second one only when the first cancelled much of
        // w (the DGKS criterion, Daniel, Gragg, Kaufman & Stewart 1976, η = 1/√2).
        let (mut alpha, ww) = dot_and_sq(q, &w);
        self.anorm = self.anorm.max(ww.sqrt());
        let prev = (j > 0).then(|| {
            (
                &self.basis[(j - 1) * self.dim..j * self.dim],
                self.betas[j - 1],
            )
        });
        let before = three_term(&mut w, alpha, q, prev);
        let (h, mut after) = self.gram_schmidt_pass(&mut w);
        alpha += h[j];
        if after < std::f64::consts::FRAC_1_SQRT_2 * before {
            let (h, a) = self.gram_schmidt_pass(&mut w);
            alpha += h[j];
            after = a;
        }
        self.alphas.push(alpha);
        self.betas.push(after);
        self.next = w;
        Ok(())
    }

    fn gram_schmidt_pass(&self, w: &mut [f64]) -> (Vec<f64>, f64) {
        gram_schmidt_pass(&self.basis, self.dim, w)
    }

    fn breakdown(&self) -> bool {
        self.betas
            .last()
            .is_some_and(|&b| b <= BREAKDOWN_RTOL * self.anorm)
    }

    /// Appends `q_{m+1} = w / β_m`.
    fn advance(&mut self) {
        let beta = self.betas[self.betas.len() - 1];
        let next = std::mem::take(&mut self.next);
        self.basis.extend(next.iter().map(|x| x / beta));
    }

    /// After an invariant subspace: `β_m ← 0` and appends a random unit vector
    /// orthogonal to the basis (the tridiagonal splits into blocks).
    fn restart(&mut self, rng: &mut Generator) -> Result<()> {
        let m = self.betas.len();
        self.betas[m - 1] = 0.0;
        for _attempt in 0..3 {
            let mut v = box_muller_vec(rng, self.dim);
            let before = norm(&v);
            self.gram_schmidt_pass(&mut v);
            let (_, after) = self.gram_schmidt_pass(&mut v);
            if after > 1e-8 * before {
                self.basis.extend(v.iter().map(|x| x / after));
                return Ok(());
            }
        }
        Err(Error::KrylovExhausted {
            found: m,
            dim: self.dim,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{spectral_norm, symmetric_with_spectrum};
    use crate::DenseOperator;

    /// n = 200: top 10, 9.5, 9.02, 9.0 (a cluster), 8; bottom −6, −5.5, −5.49, −5;
    /// 191 bulk eigenvalues in [−3, 3] with a repeated value.
    fn test_spectrum() -> Vec<f64> {
        let mut l = vec![10.0, 9.5, 9.02, 9.0, 8.0, -6.0, -5.5, -5.49, -5.0];
        l.extend((0..185).map(|i| -3.0 + 6.0 * i as f64 / 184.0));
        l.extend([0.5; 6]);
        l
    }

    fn residual(op: &DenseOperator, theta: f64, y: &[f64]) -> f64 {
        let ay = op.apply(y).expect("dense apply");
        ay.iter()
            .zip(y)
            .map(|(a, b)| (a - theta * b).powi(2))
            .sum::<f64>()
            .sqrt()
    }

    fn cfg(k: usize, which: Which) -> LanczosConfig {
        LanczosConfig {
            k,
            which,
            max_iter: 200,
            tol: 1e-10,
            seed: 42,
        }
    }

    #[test]
    fn top_and_bottom_k_match_the_known_spectrum() {
        let lambda = test_spectrum();
        let anorm = spectral_norm(&lambda);
        let (a, q) = symmetric_with_spectrum(&lambda, 3);
        let top = lanczos(&a, &cfg(5, Which::Largest), &[]).expect("lanczos");
        let bottom = lanczos(&a, &cfg(4, Which::Smallest), &[]).expect("lanczos");
        assert!(top.converged && bottom.converged);
        assert!(top.iterations < 200, "{} iterations", top.iterations);
        // Largest descending, smallest ascending; 1e-8 relative as asked, the Ritz
        // value error being ≤ residual²/gap ≈ (1e-10·10)²/0.02 ≪ 1e-8.
        for (got, want) in top.eigenvalues.iter().zip([10.0, 9.5, 9.02, 9.0, 8.0]) {
            assert!((got - want).abs() < 1e-8 * want.abs(), "{got} vs {want}");
        }
        for (got, want) in bottom.eigenvalues.iter().zip([-6.0, -5.5, -5.49, -5.0]) {
            assert!((got - want).abs() < 1e-8 * want.abs(), "{got} vs {want}");
        }
        // Ritz vectors: unit norm, aligned with the true eigenvectors (well separated
        // ones: sin∠ ≤ residual/gap).
        for (y, u) in top.eigenvectors.iter().zip(&q) {
            assert!((norm(y) - 1.0).abs() < 1e-13);
            assert!((dot(y, u).abs() - 1.0).abs() < 1e-8);
        }
        // Reported residuals are the true ones, down to rounding (~ε‖A‖·√n).
        for r in [&top, &bottom] {
            for ((theta, y), res) in r.eigenvalues.iter().zip(&r.eigenvectors).zip(&r.residuals) {
                let direct = residual(&a, *theta, y);
                assert!(*res <= 1e-10 * theta.abs(), "{res}");
                assert!((direct - res).abs() < 1e-12 * anorm, "{direct} vs {res}");
            }
        }
    }

    #[test]
    fn residual_estimate_matches_direct_residual_before_convergence() {
        let lambda = test_spectrum();
        let (a, _) = symmetric_with_spectrum(&lambda, 3);
        let c = LanczosConfig {
            k: 3,
            which: Which::Largest,
            max_iter: 12,
            tol: 0.0,
            seed: 1,
        };
        let r = lanczos(&a, &c, &[]).expect("lanczos");
        assert!(!r.converged);
        assert_eq!(r.iterations, 12);
        for ((theta, y), res) in r.eigenvalues.iter().zip(&r.eigenvectors).zip(&r.residuals) {
            let direct = residual(&a, *theta, y);
            // Far from converged (residuals 0.1..1.5 after 12 steps): the Lanczos
            // relation holds to rounding, so the two agree to ~1e-12 relative.
            assert!(*res > 1e-2, "{res}");
            assert!((direct - res).abs() < 1e-10 * res, "{direct} vs {res}");
        }
    }

    #[test]
    fn largest_magnitude() {
        let mut lambda = vec![-12.0, 10.0, 9.0];
        lambda.extend((0..97).map(|i| -4.0 + 8.0 * i as f64 / 96.0));
        let (a, _) = symmetric_with_spectrum(&lambda, 8);
        let r = lanczos(&a, &cfg(2, Which::LargestMagnitude), &[]).expect("lanczos");
        assert!(r.converged);
        assert!((r.eigenvalues[0] + 12.0).abs() < 1e-10 * 12.0);
        assert!((r.eigenvalues[1] - 10.0).abs() < 1e-10 * 10.0);
    }

    #[test]
    fn full_dimension_gives_the_exact_spectrum() {
        // P = 50 with tol = 0: only m = P (or an invariant subspace) can stop it.
        let lambda: Vec<f64> = (0..50).map(|i| (i as f64 - 20.0) * 0.37).collect();
        let (a, _) = symmetric_with_spectrum(&lambda, 5);
        let c = LanczosConfig {
            k: 50,
            which: Which::Smallest,
            max_iter: 500,
            tol: 0.0,
            seed: 2,
        };
        let r = lanczos(&a, &c, &[]).expect("lanczos");
        assert!(r.converged);
        assert_eq!(r.iterations, 50);
        let mut want = lambda.clone();
        want.sort_by(f64::total_cmp);
        for (got, want) in r.eigenvalues.iter().zip(&want) {
            assert!((got - want).abs() < 1e-10 * 11.1, "{got} vs {want}");
        }
        // The Ritz vectors are then an orthonormal eigenbasis.
        for i in 0..50 {
            assert!(residual(&a, r.eigenvalues[i], &r.eigenvectors[i]) < 1e-11);
            for j in 0..i {
                assert!(dot(&r.eigenvectors[i], &r.eigenvectors[j]).abs() < 1e-11);
            }
        }
    }

    #[test]
    fn invariant_subspaces_stop_or_restart() {
        // Three distinct eigenvalues, each repeated: the Krylov space of any start
        // is 3-dimensional, so Lanczos stops after 3 products with exact values.
        let lambda: Vec<f64> = (0..60).map(|i| (i % 3) as f64 - 1.0).collect();
        let (a, _) = symmetric_with_spectrum(&lambda, 6);
        let r = lanczos(&a, &cfg(2, Which::Largest), &[]).expect("lanczos");
        assert!(r.converged);
        assert_eq!(r.iterations, 3);
        assert!((r.eigenvalues[0] - 1.0).abs() < 1e-13 && r.eigenvalues[1].abs() < 1e-13);
        // The identity with k = 3: breaks down at every step, restarts until m = k.
        let eye = DenseOperator::new(
            20,
            (0..400)
                .map(|i| if i % 21 == 0 { 1.0 } else { 0.0 })
                .collect(),
        );
        let r = lanczos(&eye, &cfg(3, Which::Smallest), &[]).expect("lanczos");
        assert!(r.converged);
        assert_eq!(r.iterations, 3);
        assert_eq!(r.eigenvalues.len(), 3);
        for (l, y) in r.eigenvalues.iter().zip(&r.eigenvectors) {
            assert!((l - 1.0).abs() < 1e-14);
            assert!((norm(y) - 1.0).abs() < 1e-14);
        }
        assert!(dot(&r.eigenvectors[0], &r.eigenvectors[1]).abs() < 1e-14);
    }

    #[test]
    fn warm_start_needs_fewer_products() {
        let lambda = test_spectrum();
        let (a1, _) = symmetric_with_spectrum(&lambda, 3);
        // A2 = A1 + 1e-3·E, E symmetric with entries ~ 1/√n (‖E‖ ≈ 2): one step of
        // training's worth of change to the Hessian.
        let (e, _) = symmetric_with_spectrum(
            &(0..200)
                .map(|i| ((i * 13) % 17) as f64 / 8.0 - 1.0)
                .collect::<Vec<_>>(),
            77,
        );
        let a2 = DenseOperator::new(
            200,
            a1.a.iter().zip(&e.a).map(|(x, y)| x + 1e-3 * y).collect(),
        );
        let c = cfg(3, Which::Largest);
        let before = lanczos(&a1, &c, &[]).expect("lanczos on A1");
        let cold = lanczos(&a2, &c, &[]).expect("cold lanczos on A2");
        let warm = lanczos(&a2, &c, &before.eigenvectors).expect("warm lanczos on A2");
        assert!(cold.converged && warm.converged);
        for (w, c) in warm.eigenvalues.iter().zip(&cold.eigenvalues) {
            assert!((w - c).abs() < 1e-9, "{w} vs {c}");
        }
        // The start's error is then ≈ max(change, WARM_START_NOISE) = 1e-3 instead of
        // O(1), which saves ≈ ln(1e3)/ln(convergence rate per step) ≈ 6 of the 30
        // products here (measured: 24 vs 30).
        assert!(
            warm.iterations + 4 <= cold.iterations,
            "warm {} vs cold {} iterations",
            warm.iterations,
            cold.iterations
        );
    }

    #[test]
    fn same_seed_bit_identical() {
        let (a, _) = symmetric_with_spectrum(&test_spectrum(), 3);
        let c = cfg(3, Which::Largest);
        let r1 = lanczos(&a, &c, &[]).expect("lanczos");
        assert_eq!(r1, lanczos(&a, &c, &[]).expect("lanczos"));
        let r3 = lanczos(&a, &LanczosConfig { seed: 43, ..c }, &[]).expect("lanczos");
        assert_ne!(r1.eigenvectors, r3.eigenvectors);
    }

    #[test]
    fn tridiag_relation_and_orthonormal_basis() {
        let (a, _) = symmetric_with_spectrum(&test_spectrum(), 3);
        let start: Vec<f64> = (0..200).map(|i| ((i * 7) % 5) as f64 - 2.0).collect();
        let t = lanczos_tridiag(&a, &start, 30).expect("lanczos_tridiag");
        assert_eq!(
            (t.steps(), t.betas.len(), t.basis.len()),
            (30, 29, 30 * 200)
        );
        assert!(!t.invariant);
        // Q_mᵀ Q_m = I and Q_mᵀ A Q_m = T_m.
        for i in 0..30 {
            let aq = a.apply(t.basis_vector(i)).expect("apply");
            for j in 0..30 {
                let want_q = if i == j { 1.0 } else { 0.0 };
                assert!((dot(t.basis_vector(i), t.basis_vector(j)) - want_q).abs() < 1e-14);
                let want_t = if i == j {
                    t.alphas[i]
                } else if i + 1 == j {
                    t.betas[i]
                } else if j + 1 == i {
                    t.betas[j]
                } else {
                    0.0
                };
                assert!((dot(t.basis_vector(j), &aq) - want_t).abs() < 1e-12);
            }
        }
        // q₁ is the normalised start.
        let ns = norm(&start);
        assert!((dot(t.basis_vector(0), &start) - ns).abs() < 1e-12);
        // steps > dim is capped at dim, and an invariant start stops at once.
        let small = DenseOperator::new(2, vec![2.0, 0.0, 0.0, 3.0]);
        assert_eq!(
            lanczos_tridiag(&small, &[1.0, 1.0], 10)
                .expect("2x2")
                .steps(),
            2
        );
        let t = lanczos_tridiag(&small, &[1.0, 0.0], 10).expect("2x2");
        assert!(t.invariant);
        assert_eq!((t.alphas.clone(), t.residual_norm), (vec![2.0], 0.0));
    }

    #[test]
    fn bad_inputs_are_errors() {
        let (a, _) = symmetric_with_spectrum(&[1.0, 2.0, 3.0], 1);
        let base = cfg(1, Which::Largest);
        for bad in [
            LanczosConfig {
                k: 0,
                ..base.clone()
            },
            LanczosConfig {
                k: 4,
                ..base.clone()
            },
            LanczosConfig {
                k: 2,
                max_iter: 1,
                ..base.clone()
            },
            LanczosConfig {
                tol: -1.0,
                ..base.clone()
            },
            LanczosConfig {
                tol: f64::NAN,
                ..base.clone()
            },
        ] {
            assert!(lanczos(&a, &bad, &[]).is_err(), "{bad:?}");
        }
        assert!(lanczos(&a, &base, &[vec![1.0, 0.0]]).is_err());
        assert!(lanczos(&a, &base, &[vec![1.0, f64::NAN, 0.0]]).is_err());
        assert!(lanczos_tridiag(&a, &[0.0; 3], 2).is_err());
        assert!(lanczos_tridiag(&a, &[1.0; 3], 0).is_err());
        // An operator that returns a wrong-length vector is reported, not a panic.
        struct Broken;
        impl LinearOperator for Broken {
            fn dim(&self) -> usize {
                4
            }
            fn apply(&self, _: &[f64]) -> Result<Vec<f64>> {
                Ok(vec![0.0; 3])
            }
        }
        let err = lanczos(&Broken, &base, &[]).expect_err("wrong output length");
        assert!(err.to_string().contains("length 3"), "{err}");
    }
}
