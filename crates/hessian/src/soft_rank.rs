//! Soft rank of a feature matrix (THEORY.md §6; Terjék, arXiv 2502.13110).
//!
//! For the features `h` (`[n, d]`: n samples of one hidden layer of width d) with
//! singular values `σ_1 ≥ σ_2 ≥ … ≥ 0`, three "effective ranks":
//!
//! ```text
//! participation ratio   PR(h) = (Σ σ_k²)² / Σ σ_k⁴ = ‖h‖_F⁴ / ‖hᵀh‖_F²      (default)
//! stable rank           SR(h) = Σ σ_k² / σ_1²      = ‖h‖_F² / ‖h‖₂²
//! entropy effective rank ER(h) = exp(−Σ p_k ln p_k), p_k = σ_k / Σ σ_j
//!                        (Roy & Vetterli 2007, "The effective rank")
//! ```
//!
//! All three lie in `[1, rank h]` and equal r for r equal nonzero singular values.
//! The participation ratio is the default because it is the "soft" rank that appears
//! in second-order Taylor terms, `(tr K)² / tr K²` for the feature kernel `K = h hᵀ`
//! (THEORY.md §6, **inferred**), and it needs no eigendecomposition: only the Gram
//! matrix `G = hᵀh` (or `h hᵀ`, whichever is smaller; both have the spectrum `σ_k²`
//! and the same Frobenius norm).
//!
//! Cost: the Gram matrix is one `min(n,d)²·max(n,d)` matmul on the model's device;
//! the stable rank adds a power iteration on `G` (f64, on the host) and the entropy
//! rank a cyclic Jacobi eigendecomposition of `G` ([`symmetric_eigen`], O(m³) per
//! sweep, m = min(n, d)), so keep `m` in the hundreds for it. The features are not centred (the definition
//! above); a zero feature matrix has soft rank 0.

use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};

use crate::eigen::symmetric_eigen;
use crate::{Error, Result};

/// Which effective rank.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SoftRankKind {
    /// `‖h‖_F⁴ / ‖hᵀh‖_F²` (the default).
    #[default]
    ParticipationRatio,
    /// `‖h‖_F² / ‖h‖₂²`.
    Stable,
    /// `exp(H(σ / ‖σ‖₁))` (Roy & Vetterli 2007).
    Entropy,
}

/// The Gram matrix of the smaller side of `h` (`hᵀh` if `d ≤ n`, else `h hᵀ`) in f64,
/// row-major, with its size m.
pub fn gram(h: &Tensor) -> Result<(Vec<f64>, usize)> {
    let (n, d) = h.dims2()?;
    let h = h.to_dtype(DType::F64)?;
    let g = if d <= n {
        h.t()?.matmul(&h)?
    } else {
        h.matmul(&h.t()?)?
    };
    let m = n.min(d);
    Ok((g.flatten_all()?.to_vec1::<f64>()?, m))
}

/// The soft rank of the features `h` (`[n, d]`).
pub fn soft_rank(h: &Tensor, kind: SoftRankKind) -> Result<f64> {
    let (g, m) = gram(h)?;
    soft_rank_of_gram(&g, m, kind)
}

/// The soft rank from a symmetric PSD Gram matrix `g` (`m × m`, row-major) whose
/// eigenvalues are the squared singular values `σ_k²`.
pub fn soft_rank_of_gram(g: &[f64], m: usize, kind: SoftRankKind) -> Result<f64> {
    if g.len() != m * m {
        return Err(Error::Length {
            what: format!("soft_rank: Gram matrix entries for m = {m}"),
            found: g.len(),
            expected: m * m,
        });
    }
    let trace: f64 = (0..m).map(|i| g[i * m + i]).sum();
    if trace <= 0.0 || !trace.is_finite() {
        return Ok(if trace == 0.0 { 0.0 } else { f64::NAN });
    }
    Ok(match kind {
        SoftRankKind::ParticipationRatio => {
            let fro2: f64 = g.iter().map(|v| v * v).sum();
            trace * trace / fro2
        }
        SoftRankKind::Stable => trace / top_eigenvalue(g, m),
        SoftRankKind::Entropy => {
            // Eigenvalues of G below m·ε·λ_max are rounding noise of zero singular
            // values (the numerical-rank cutoff); the square root would inflate them.
            let values = symmetric_eigen(g, m)?.values;
            let top = values.iter().copied().fold(0.0, f64::max);
            let cutoff = top * m as f64 * f64::EPSILON;
            let sigma: Vec<f64> = values
                .into_iter()
                .map(|l| if l > cutoff { l.sqrt() } else { 0.0 })
                .collect();
            entropy_rank(&sigma)
        }
    })
}

/// `exp(−Σ p_k ln p_k)` with `p = σ / ‖σ‖₁` (zero entries contribute 0).
pub fn entropy_rank(sigma: &[f64]) -> f64 {
    let s: f64 = sigma.iter().sum();
    if s <= 0.0 {
        return 0.0;
    }
    let h: f64 = sigma
        .iter()
        .filter(|&&x| x > 0.0)
        .map(|&x| {
            let p = x / s;
            -p * p.ln()
        })
        .sum();
    h.exp()
}

/// The largest eigenvalue of a symmetric PSD matrix by power iteration (relative
/// change below 1e-12, at most 10 000 iterations) from a fixed start.
fn top_eigenvalue(g: &[f64], m: usize) -> f64 {
    // A deterministic start with a component along every coordinate.
    let mut v: Vec<f64> = (0..m).map(|i| 1.0 + 0.01 * (i as f64).sin()).collect();
    let mut lambda = 0.0;
    for _ in 0..10_000 {
        let w: Vec<f64> = (0..m)
            .map(|i| {
                g[i * m..(i + 1) * m]
                    .iter()
                    .zip(&v)
                    .map(|(a, b)| a * b)
                    .sum()
            })
            .collect();
        let vw: f64 = v.iter().zip(&w).map(|(a, b)| a * b).sum();
        let vv: f64 = v.iter().map(|a| a * a).sum();
        let next = vw / vv;
        let nrm = w.iter().map(|a| a * a).sum::<f64>().sqrt();
        if nrm == 0.0 {
            return 0.0;
        }
        v = w.into_iter().map(|a| a / nrm).collect();
        if (next - lambda).abs() <= 1e-12 * next.abs() {
            return next;
        }
        lambda = next;
    }
    lambda
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// `h = U diag(σ) Vᵀ` with orthonormal columns: 4 samples, 3 features, σ = (3, 2, 1)
    /// (U = a 4×3 block of the 4×4 Hadamard matrix / 2, V = a permutation).
    fn features(dtype: DType) -> Tensor {
        let u = [
            [0.5, 0.5, 0.5],
            [0.5, -0.5, 0.5],
            [0.5, 0.5, -0.5],
            [0.5, -0.5, -0.5],
        ];
        let sigma = [3.0, 2.0, 1.0];
        let perm = [2, 0, 1]; // feature j carries singular direction perm[j]
        let mut x = Vec::new();
        for row in u {
            for &k in &perm {
                x.push(row[k] * sigma[k]);
            }
        }
        Tensor::from_vec(x, (4, 3), &Device::Cpu)
            .unwrap()
            .to_dtype(dtype)
            .unwrap()
    }

    #[test]
    fn values_for_known_singular_values() {
        // σ = (3, 2, 1): Σσ² = 14, Σσ⁴ = 98, so PR = 196/98 = 2 and SR = 14/9;
        // p = (1/2, 1/3, 1/6), ER = exp(½ ln 2 + ⅓ ln 3 + ⅙ ln 6) = 2.7495… (by hand).
        let h = features(DType::F64);
        let pr = soft_rank(&h, SoftRankKind::ParticipationRatio).unwrap();
        assert!((pr - 2.0).abs() < 1e-12, "{pr}");
        let sr = soft_rank(&h, SoftRankKind::Stable).unwrap();
        assert!((sr - 14.0 / 9.0).abs() < 1e-10, "{sr}");
        let er = soft_rank(&h, SoftRankKind::Entropy).unwrap();
        let expect = (0.5 * 2f64.ln() + 3f64.ln() / 3.0 + 6f64.ln() / 6.0).exp();
        assert!((er - expect).abs() < 1e-10, "{er} vs {expect}");
        // hᵀ (3 × 4: more features than samples) has the same singular values.
        let ht = h.t().unwrap().contiguous().unwrap();
        let pr_t = soft_rank(&ht, SoftRankKind::ParticipationRatio).unwrap();
        assert!((pr_t - 2.0).abs() < 1e-12, "{pr_t}");
        // f32 features: f32 tolerance.
        let pr32 = soft_rank(&features(DType::F32), SoftRankKind::ParticipationRatio).unwrap();
        assert!((pr32 - 2.0).abs() < 1e-5, "{pr32}");
    }

    #[test]
    fn equal_singular_values_give_the_rank_and_zero_gives_zero() {
        // 5 × 5 scaled identity: 5 equal singular values → every rank is 5.
        let eye = (Tensor::eye(5, DType::F64, &Device::Cpu).unwrap() * 0.7).unwrap();
        for kind in [
            SoftRankKind::ParticipationRatio,
            SoftRankKind::Stable,
            SoftRankKind::Entropy,
        ] {
            let r = soft_rank(&eye, kind).unwrap();
            assert!((r - 5.0).abs() < 1e-10, "{kind:?}: {r}");
        }
        // Rank one: 1.
        let ones = Tensor::ones((6, 4), DType::F64, &Device::Cpu).unwrap();
        for kind in [
            SoftRankKind::ParticipationRatio,
            SoftRankKind::Stable,
            SoftRankKind::Entropy,
        ] {
            let r = soft_rank(&ones, kind).unwrap();
            assert!((r - 1.0).abs() < 1e-10, "{kind:?}: {r}");
        }
        let zeros = Tensor::zeros((3, 2), DType::F64, &Device::Cpu).unwrap();
        assert_eq!(
            soft_rank(&zeros, SoftRankKind::ParticipationRatio).unwrap(),
            0.0
        );
        assert!(soft_rank_of_gram(&[1.0, 0.0], 2, SoftRankKind::Stable).is_err());
    }

    #[test]
    fn entropy_rank_of_explicit_values() {
        // Two equal nonzero singular values and a zero: exp(ln 2) = 2.
        assert!((entropy_rank(&[1.0, 1.0, 0.0]) - 2.0).abs() < 1e-14);
        assert_eq!(entropy_rank(&[0.0, 0.0]), 0.0);
    }
}
