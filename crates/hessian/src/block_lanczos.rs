//! Block Lanczos with full reorthogonalisation: the extreme eigenpairs of a symmetric
//! operator from products with `p` vectors at a time ([`LinearOperator::apply_block`]:
//! one R-operator pass for p Hessian-vector products on an MLP, issue 15 goal 4).
//!
//! From an orthonormal start block `Q_1 = [q_1 … q_p]` (warm-start vectors, then seeded
//! Gaussian vectors), step j computes `W = A Q_j`, orthogonalises it against the whole
//! basis `Q = [Q_1 … Q_j]` by classical Gram–Schmidt, twice where the first pass cancelled
//! more than 1 − 1/√2 of a column (DGKS, as in `lanczos.rs`), then QR-factors the remainder
//! by modified Gram–Schmidt within the block, `W − Q H = Q_{j+1} R_j`:
//!
//! ```text
//! A Q_m = Q_m T_m + Q_{m+1} R_m E_mᵀ,      T_m = Q_mᵀ A Q_m  (block tridiagonal, m·p × m·p)
//! ```
//!
//! (Golub & Van Loan, *Matrix Computations*, 4th ed., §10.3.6; Saad, *Numerical Methods
//! for Large Eigenvalue Problems*, 2nd ed., §6.7). `T_m` is assembled from the projection
//! coefficients `H` and `R` of every step (symmetrised, `(T + Tᵀ)/2`) and diagonalised
//! densely (`symmetric_eigen`). With `T_m s = θ s`, the Ritz pair `(θ, y = Q_m s)` has
//! `‖A y − θ y‖ = ‖R_m s_last‖` (`s_last`: the last p entries of s), so residuals cost no
//! product; the stopping test is `lanczos.rs`'s (`‖R_m s_last‖ ≤ tol · max(|θ|, ε^{2/3} ‖T_m‖)`
//! for every wanted pair). A column of W that vanishes (an invariant subspace, or a
//! repeated eigenvalue seen from fewer directions) gets `R` entry 0 and a random unit
//! vector orthogonal to the basis in its place, as single-vector Lanczos restarts.
//!
//! Unlike single-vector Lanczos, a block of p ≥ the multiplicity sees every copy of a
//! repeated eigenvalue, and a warm start from the previous top-p Ritz vectors (training
//! changes the Hessian a little per step) starts the whole wanted subspace close to its
//! target instead of one sum of it. Products are counted per vector: m blocks are m·p.
//!
//! Memory: the basis is `m·p × P` f64 values.

use eos_model::rng::{box_muller_vec, rng as seeded_rng, Generator};

use crate::eigen::symmetric_eigen;
use crate::lanczos::{combine_basis, gram_schmidt_pass, select, validate};
use crate::vector::{apply_block_checked, axpy, check_vector, dot, norm, scale};
use crate::{Error, LanczosConfig, LanczosResult, LinearOperator, Result};

/// An upper triangular `R` by columns: `r[c][i]` = row i, column c, i ≤ c.
type Upper = Vec<Vec<f64>>;

/// A column whose norm after orthogonalisation is below this fraction of `‖A‖` (or of
/// its norm before, for start vectors) counts as dependent.
const DEFLATE_RTOL: f64 = 1e-12;

/// The state of the block recurrence: the basis `Q` (row-major, `basis.len() / dim`
/// vectors), the columns of `T` seen so far (`tcols[c]` = coefficients of `A q_c` on
/// `q_0 …`), the newest block's `R` and the unnormalised next block.
struct BlockKrylov {
    dim: usize,
    /// Vectors in the newest block.
    p: usize,
    basis: Vec<f64>,
    tcols: Vec<Vec<f64>>,
    /// `R_m` of the newest step, `r[c][i]` = row i, column c (upper triangular).
    r: Vec<Vec<f64>>,
    /// `max ‖A q_c‖ ≤ ‖A‖`.
    anorm: f64,
}

impl BlockKrylov {
    fn size(&self) -> usize {
        self.basis.len() / self.dim
    }

    /// Orthogonalises `w` against the basis and returns its coefficients on the basis
    /// and its remaining norm: first against the last two blocks (the block three-term
    /// recurrence, which removes the large components), then one full CGS pass, and a
    /// second only when that one cancelled more than 1 − 1/√2 of what was left (DGKS).
    fn project(&self, w: &mut [f64]) -> (Vec<f64>, f64) {
        let (dim, s) = (self.dim, self.size());
        let lo = s.saturating_sub(2 * self.p);
        let mut local = vec![0.0; s];
        for (c, hc) in local.iter_mut().enumerate().skip(lo) {
            let q = &self.basis[c * dim..(c + 1) * dim];
            *hc = dot(q, w);
            axpy(-*hc, q, w);
        }
        let before = norm(w);
        let (mut h, mut after) = gram_schmidt_pass(&self.basis, dim, w);
        h.iter_mut().zip(&local).for_each(|(x, y)| *x += y);
        if after < std::f64::consts::FRAC_1_SQRT_2 * before {
            let (h2, a) = gram_schmidt_pass(&self.basis, self.dim, w);
            h.iter_mut().zip(h2).for_each(|(x, y)| *x += y);
            after = a;
        }
        (h, after)
    }

    /// A random unit vector orthogonal to the basis and to `extra` (orthonormal).
    fn random_orthogonal(&self, rng: &mut Generator, extra: &[Vec<f64>]) -> Result<Vec<f64>> {
        for _attempt in 0..3 {
            let mut v = box_muller_vec(rng, self.dim);
            let before = norm(&v);
            for _pass in 0..2 {
                gram_schmidt_pass(&self.basis, self.dim, &mut v);
                for e in extra {
                    axpy(-dot(e, &v), e, &mut v);
                }
            }
            let after = norm(&v);
            if after > 1e-8 * before {
                scale(1.0 / after, &mut v);
                return Ok(v);
            }
        }
        Err(Error::KrylovExhausted {
            found: self.size() + extra.len(),
            dim: self.dim,
        })
    }

    /// QR of the (already basis-orthogonal) block by modified Gram–Schmidt, twice per
    /// column; dependent columns are replaced by random orthogonal vectors with a zero
    /// `R` entry. Returns the orthonormal block and `R` (`r[c][i]`, i ≤ c).
    fn qr(
        &self,
        ws: Vec<Vec<f64>>,
        scale_ref: &[f64],
        rng: &mut Generator,
    ) -> Result<(Vec<Vec<f64>>, Upper)> {
        let mut qs: Vec<Vec<f64>> = Vec::with_capacity(ws.len());
        let mut r = Vec::with_capacity(ws.len());
        for (c, mut w) in ws.into_iter().enumerate() {
            let mut rc = vec![0.0; c + 1];
            for _pass in 0..2 {
                for (i, q) in qs.iter().enumerate() {
                    let a = dot(q, &w);
                    axpy(-a, q, &mut w);
                    rc[i] += a;
                }
            }
            let nw = norm(&w);
            if nw <= DEFLATE_RTOL * scale_ref[c] || nw == 0.0 {
                rc[c] = 0.0;
                // The basis spans the whole space: the column is 0 (never appended).
                let fresh = if self.size() + qs.len() >= self.dim {
                    vec![0.0; self.dim]
                } else {
                    self.random_orthogonal(rng, &qs)?
                };
                qs.push(fresh);
            } else {
                rc[c] = nw;
                scale(1.0 / nw, &mut w);
                qs.push(w);
            }
            r.push(rc);
        }
        Ok((qs, r))
    }

    /// One block step on the newest block: `W = A Q_j`, projected and QR-factored; the
    /// `T` columns of the block are recorded, the next block is returned unappended.
    fn step<A: LinearOperator + ?Sized>(
        &mut self,
        op: &A,
        rng: &mut Generator,
    ) -> Result<Vec<Vec<f64>>> {
        let (dim, s) = (self.dim, self.size());
        let block: Vec<Vec<f64>> = (s - self.p..s)
            .map(|c| self.basis[c * dim..(c + 1) * dim].to_vec())
            .collect();
        let mut ws = apply_block_checked(op, &block, "block_lanczos")?;
        let mut heads = Vec::with_capacity(self.p);
        for w in &mut ws {
            let nw = norm(w);
            self.anorm = self.anorm.max(nw);
            let (h, _) = self.project(w);
            heads.push(h);
        }
        let refs = vec![self.anorm; self.p];
        let (next, r) = self.qr(ws, &refs, rng)?;
        for (h, rc) in heads.into_iter().zip(&r) {
            let mut col = h;
            col.extend(rc.iter().copied());
            col.resize(s + self.p, 0.0);
            self.tcols.push(col);
        }
        self.r = r;
        Ok(next)
    }

    /// `T_m` (`s × s`, symmetrised) of the current basis.
    fn tmatrix(&self) -> Vec<f64> {
        let s = self.size();
        let mut t = vec![0.0; s * s];
        for (c, col) in self.tcols.iter().enumerate().take(s) {
            for (i, &v) in col.iter().enumerate().take(s) {
                t[i * s + c] += 0.5 * v;
                t[c * s + i] += 0.5 * v;
            }
        }
        t
    }

    /// `‖R_m s_last‖` for a Ritz vector `s` of `T_m`.
    fn residual(&self, s: &[f64]) -> f64 {
        let last = &s[s.len() - self.p..];
        let mut out = vec![0.0; self.p];
        for (c, rc) in self.r.iter().enumerate() {
            for (i, &v) in rc.iter().enumerate() {
                out[i] += v * last[c];
            }
        }
        norm(&out)
    }
}

/// The orthonormal start block: the warm-start vectors (at most `p`), then seeded
/// Gaussian vectors, orthonormalised; dependent vectors are replaced by random ones.
fn start_block(dim: usize, p: usize, warm: &[Vec<f64>], rng: &mut Generator) -> Result<Vec<f64>> {
    for (i, v) in warm.iter().enumerate() {
        check_vector(v, dim, &format!("block_lanczos warm start vector {i}"))?;
    }
    let mut cols: Vec<Vec<f64>> = warm.iter().take(p).cloned().collect();
    while cols.len() < p {
        cols.push(box_muller_vec(rng, dim));
    }
    let empty = BlockKrylov {
        dim,
        p,
        basis: Vec::new(),
        tcols: Vec::new(),
        r: Vec::new(),
        anorm: 0.0,
    };
    let refs: Vec<f64> = cols.iter().map(|c| norm(c)).collect();
    let (qs, _) = empty.qr(cols, &refs, rng)?;
    Ok(qs.concat())
}

/// The `cfg.k` wanted eigenpairs of `op` by block Lanczos with blocks of `block`
/// vectors (`k ≤ block` is typical; at most `dim`), started from `warm_start` (e.g. the
/// previous Ritz vectors; may be empty). `cfg.max_iter` bounds the products (at least
/// one block; the last block is cut to the products, or the dimensions, left);
/// `iterations` in the result counts products.
pub fn block_lanczos<A: LinearOperator + ?Sized>(
    op: &A,
    cfg: &LanczosConfig,
    block: usize,
    warm_start: &[Vec<f64>],
) -> Result<LanczosResult> {
    let dim = op.dim();
    validate(cfg, dim)?;
    if block == 0 {
        return Err(Error::Invalid {
            what: "block_lanczos: block (vectors per product block)".into(),
            found: "0".into(),
            expected: "at least 1".into(),
        });
    }
    let p = block.min(dim);
    let mut rng = seeded_rng(cfg.seed);
    let basis = start_block(dim, p, warm_start, &mut rng)?;
    let mut kr = BlockKrylov {
        dim,
        p,
        basis,
        tcols: Vec::new(),
        r: Vec::new(),
        anorm: 0.0,
    };
    // Products allowed; the last block is cut to what is left of them and of the space.
    let cap = cfg.max_iter.min(dim).max(p);
    loop {
        let next = kr.step(op, &mut rng)?;
        let s = kr.size();
        let done = s >= cfg.k && (s == dim || converged(&kr, cfg)?);
        let room = cap.saturating_sub(s);
        if done || room == 0 {
            return ritz(&kr, cfg, done);
        }
        kr.p = room.min(next.len());
        for q in next.into_iter().take(kr.p) {
            kr.basis.extend(q);
        }
    }
}

/// Whether every wanted Ritz pair of the current `T_m` meets the tolerance.
fn converged(kr: &BlockKrylov, cfg: &LanczosConfig) -> Result<bool> {
    let s = kr.size();
    let eig = symmetric_eigen(&kr.tmatrix(), s)?;
    let tnorm = eig.values.iter().fold(0.0f64, |a, x| a.max(x.abs()));
    let floor = f64::EPSILON.powf(2.0 / 3.0) * tnorm;
    Ok(select(&eig.values, cfg.which, cfg.k)
        .into_iter()
        .all(|i| kr.residual(&eig.vectors[i]) <= cfg.tol * eig.values[i].abs().max(floor)))
}

/// The wanted Ritz pairs of the current basis.
fn ritz(kr: &BlockKrylov, cfg: &LanczosConfig, converged: bool) -> Result<LanczosResult> {
    let s = kr.size();
    let eig = symmetric_eigen(&kr.tmatrix(), s)?;
    let wanted = select(&eig.values, cfg.which, cfg.k.min(s));
    let coefs: Vec<&[f64]> = wanted.iter().map(|&i| &eig.vectors[i][..s]).collect();
    let ys = combine_basis(&kr.basis, kr.dim, &coefs);
    let mut out = LanczosResult {
        eigenvalues: Vec::new(),
        eigenvectors: Vec::new(),
        residuals: Vec::new(),
        iterations: s,
        converged,
    };
    for (&i, mut y) in wanted.iter().zip(ys) {
        let ny = norm(&y);
        scale(1.0 / ny, &mut y);
        out.eigenvalues.push(eig.values[i]);
        out.eigenvectors.push(y);
        out.residuals.push(kr.residual(&eig.vectors[i]));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::symmetric_with_spectrum;
    use crate::{symmetric_eigen, DenseOperator, ModelOperator, Which};
    use candle_core::DType;
    use eos_model::testing::{dense_hessian, tiny_case};
    use eos_model::{Activation, Loss};

    /// n = 200: top 10, 9.5, 9.02, 9.0 (a cluster), 8, then 195 values in [−3, 3].
    fn spectrum() -> Vec<f64> {
        let mut l = vec![10.0, 9.5, 9.02, 9.0, 8.0];
        l.extend((0..195).map(|i| -3.0 + 6.0 * i as f64 / 194.0));
        l
    }

    fn cfg(k: usize, which: Which, tol: f64) -> LanczosConfig {
        LanczosConfig {
            k,
            which,
            max_iter: 200,
            tol,
            seed: 42,
        }
    }

    fn residual(op: &DenseOperator, theta: f64, y: &[f64]) -> f64 {
        let ay = op.apply(y).expect("dense apply");
        ay.iter()
            .zip(y)
            .map(|(a, b)| (a - theta * b).powi(2))
            .sum::<f64>()
            .sqrt()
    }

    #[test]
    fn top_and_bottom_k_match_the_known_spectrum() {
        let (a, q) = symmetric_with_spectrum(&spectrum(), 3);
        let top = block_lanczos(&a, &cfg(5, Which::Largest, 1e-10), 5, &[]).expect("top");
        assert!(top.converged);
        assert_eq!(top.iterations % 5, 0);
        assert!(top.iterations < 200, "{}", top.iterations);
        for (got, want) in top.eigenvalues.iter().zip([10.0, 9.5, 9.02, 9.0, 8.0]) {
            assert!((got - want).abs() < 1e-8 * want, "{got} vs {want}");
        }
        for ((theta, y), (res, u)) in top
            .eigenvalues
            .iter()
            .zip(&top.eigenvectors)
            .zip(top.residuals.iter().zip(&q))
        {
            assert!((norm(y) - 1.0).abs() < 1e-13);
            assert!((dot(y, u).abs() - 1.0).abs() < 1e-8);
            // The residual from R_m equals the direct ‖A y − θ y‖ (to rounding).
            let direct = residual(&a, *theta, y);
            assert!(*res <= 1e-10 * theta.abs(), "{res}");
            assert!((direct - res).abs() < 1e-12 * 10.0, "{direct} vs {res}");
        }
        let bottom = block_lanczos(&a, &cfg(2, Which::Smallest, 1e-10), 3, &[]).expect("bottom");
        assert!(bottom.converged);
        assert!((bottom.eigenvalues[0] + 3.0).abs() < 1e-8);
    }

    /// Before convergence the residuals from R_m are still the true ones.
    #[test]
    fn residual_estimate_matches_direct_residual_before_convergence() {
        let (a, _) = symmetric_with_spectrum(&spectrum(), 5);
        let c = LanczosConfig {
            max_iter: 12,
            ..cfg(3, Which::Largest, 0.0)
        };
        let r = block_lanczos(&a, &c, 4, &[]).expect("block lanczos");
        assert!(!r.converged);
        assert_eq!(r.iterations, 12);
        for ((theta, y), res) in r.eigenvalues.iter().zip(&r.eigenvectors).zip(&r.residuals) {
            let direct = residual(&a, *theta, y);
            assert!(*res > 1e-3, "{res}");
            assert!((direct - res).abs() < 1e-10 * res, "{direct} vs {res}");
        }
    }

    /// A triple top eigenvalue: a block of 3 finds every copy (single-vector Lanczos
    /// sees one), with orthonormal Ritz vectors.
    #[test]
    fn a_block_sees_repeated_eigenvalues() {
        let mut l = vec![7.0, 7.0, 7.0, 5.0];
        l.extend((0..96).map(|i| -2.0 + 4.0 * i as f64 / 95.0));
        let (a, _) = symmetric_with_spectrum(&l, 9);
        let r = block_lanczos(&a, &cfg(4, Which::Largest, 1e-10), 4, &[]).expect("block");
        assert!(r.converged);
        for (got, want) in r.eigenvalues.iter().zip([7.0, 7.0, 7.0, 5.0]) {
            assert!((got - want).abs() < 1e-9, "{got} vs {want}");
        }
        for i in 0..4 {
            for j in 0..i {
                assert!(dot(&r.eigenvectors[i], &r.eigenvectors[j]).abs() < 1e-9);
            }
        }
    }

    /// The whole space: the exact spectrum, even when the block does not divide dim.
    #[test]
    fn invariant_subspaces_and_full_dimension() {
        // Three distinct eigenvalues, each repeated 20 times: the block Krylov space of
        // a block of 2 stops growing at 6 vectors; dependent columns are replaced.
        let l: Vec<f64> = (0..60).map(|i| (i % 3) as f64 - 1.0).collect();
        let (a, _) = symmetric_with_spectrum(&l, 6);
        let r = block_lanczos(&a, &cfg(2, Which::Largest, 1e-12), 2, &[]).expect("block");
        assert!(r.converged);
        assert!((r.eigenvalues[0] - 1.0).abs() < 1e-12 && (r.eigenvalues[1] - 1.0).abs() < 1e-12);
        // dim = 8 with blocks of 3: the last block is cut to 2 vectors.
        let l: Vec<f64> = (0..8).map(|i| i as f64 * 0.5 - 1.0).collect();
        let (a, _) = symmetric_with_spectrum(&l, 2);
        let c = LanczosConfig {
            max_iter: 100,
            ..cfg(8, Which::Smallest, 0.0)
        };
        let r = block_lanczos(&a, &c, 3, &[]).expect("full");
        assert!(r.converged);
        assert_eq!(r.iterations, 8);
        for (got, want) in r.eigenvalues.iter().zip(&l) {
            assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        }
    }

    /// On a tiny network's Hessian (indefinite: tanh, cross-entropy) through the model
    /// operator's block products, against the dense Hessian's eigendecomposition.
    #[test]
    fn tiny_network_hessian_matches_the_dense_eigendecomposition() {
        let (mut mlp, batch) = tiny_case(
            &[3, 5, 4, 2],
            Activation::Tanh,
            Loss::CrossEntropy,
            true,
            7,
            11,
            DType::F64,
        )
        .expect("tiny case");
        mlp.chunk_size = 4;
        let op = ModelOperator::hessian(&mlp, &batch, Loss::CrossEntropy);
        let p = op.dim();
        let dense = dense_hessian(&mlp, &batch, Loss::CrossEntropy).expect("dense");
        let eig = symmetric_eigen(&dense, p).expect("eigen");
        let top = block_lanczos(&op, &cfg(3, Which::Largest, 1e-10), 3, &[]).expect("top");
        let bottom = block_lanczos(&op, &cfg(2, Which::Smallest, 1e-10), 3, &[]).expect("bottom");
        assert!(top.converged && bottom.converged);
        for (i, got) in top.eigenvalues.iter().enumerate() {
            let want = eig.values[p - 1 - i];
            assert!(
                (got - want).abs() < 1e-9 * eig.values[p - 1],
                "{got} vs {want}"
            );
        }
        for (i, got) in bottom.eigenvalues.iter().enumerate() {
            assert!((got - eig.values[i]).abs() < 1e-9 * eig.values[p - 1]);
        }
        assert!(eig.values[0] < 0.0, "indefinite");
    }

    #[test]
    fn warm_start_needs_fewer_products() {
        let (a1, _) = symmetric_with_spectrum(&spectrum(), 3);
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
        let c = cfg(3, Which::Largest, 1e-8);
        let before = block_lanczos(&a1, &c, 3, &[]).expect("A1");
        let cold = block_lanczos(&a2, &c, 3, &[]).expect("cold A2");
        let warm = block_lanczos(&a2, &c, 3, &before.eigenvectors).expect("warm A2");
        assert!(cold.converged && warm.converged);
        for (w, c) in warm.eigenvalues.iter().zip(&cold.eigenvalues) {
            assert!((w - c).abs() < 1e-7, "{w} vs {c}");
        }
        assert!(
            warm.iterations + 6 <= cold.iterations,
            "warm {} vs cold {}",
            warm.iterations,
            cold.iterations
        );
    }

    #[test]
    fn same_seed_bit_identical_and_bad_inputs() {
        let (a, _) = symmetric_with_spectrum(&spectrum(), 3);
        let c = cfg(3, Which::Largest, 1e-8);
        let r1 = block_lanczos(&a, &c, 3, &[]).expect("run");
        assert_eq!(r1, block_lanczos(&a, &c, 3, &[]).expect("rerun"));
        let e = block_lanczos(&a, &c, 0, &[]).unwrap_err().to_string();
        assert!(e.contains("block"), "{e}");
        assert!(block_lanczos(&a, &c, 3, &[vec![1.0; 5]]).is_err());
        assert!(block_lanczos(&a, &cfg(0, Which::Largest, 1e-8), 3, &[]).is_err());
    }
}
