//! Test matrices with a known spectrum, shared by this crate's tests (and benches).
//!
//! `A = Q diag(λ) Qᵀ` with `Q` orthogonal: the columns of a seeded Gaussian matrix
//! orthonormalised by modified Gram–Schmidt, run twice ("twice is enough", Giraud,
//! Langou & Rozložník 2005), so `QᵀQ = I` to ≈ 1e-15 and the eigenvalues of `A` are
//! the given `λ` up to ≈ n·ε·max|λ| (Weyl's inequality).

use eos_model::rng::{box_muller_vec, rng as seeded_rng};

use crate::vector::{axpy, dot, norm, scale};
use crate::DenseOperator;

/// An `n × n` orthogonal matrix, returned as its `n` orthonormal columns.
pub fn random_orthonormal_columns(n: usize, seed: u64) -> Vec<Vec<f64>> {
    let mut rng = seeded_rng(seed);
    let mut cols: Vec<Vec<f64>> = Vec::with_capacity(n);
    for _ in 0..n {
        let mut v = box_muller_vec(&mut rng, n);
        for _pass in 0..2 {
            for q in &cols {
                let h = dot(q, &v);
                axpy(-h, q, &mut v);
            }
        }
        let nv = norm(&v);
        scale(1.0 / nv, &mut v);
        cols.push(v);
    }
    cols
}

/// A dense symmetric matrix with eigenvalues `eigenvalues` (in the given order) and
/// eigenvectors: column `i` of the returned list belongs to `eigenvalues[i]`.
pub fn symmetric_with_spectrum(eigenvalues: &[f64], seed: u64) -> (DenseOperator, Vec<Vec<f64>>) {
    let n = eigenvalues.len();
    let q = random_orthonormal_columns(n, seed);
    let mut a = vec![0.0; n * n];
    for i in 0..n {
        for j in i..n {
            let s: f64 = (0..n).map(|k| q[k][i] * eigenvalues[k] * q[k][j]).sum();
            a[i * n + j] = s;
            a[j * n + i] = s;
        }
    }
    (DenseOperator::new(n, a), q)
}

/// `max |λ|`, the spectral norm of a symmetric matrix with these eigenvalues.
pub fn spectral_norm(eigenvalues: &[f64]) -> f64 {
    eigenvalues.iter().fold(0.0, |m, l| m.max(l.abs()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LinearOperator;

    #[test]
    fn columns_are_orthonormal_and_spectrum_is_reproduced() {
        let q = random_orthonormal_columns(60, 1);
        for i in 0..60 {
            for j in 0..60 {
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((dot(&q[i], &q[j]) - want).abs() < 1e-13);
            }
        }
        let lambda: Vec<f64> = (0..60).map(|i| i as f64 - 20.0).collect();
        let (a, v) = symmetric_with_spectrum(&lambda, 2);
        for i in 0..60 {
            let av = a.apply(&v[i]).expect("dense apply");
            let r: f64 = av
                .iter()
                .zip(&v[i])
                .map(|(x, y)| (x - lambda[i] * y).powi(2))
                .sum::<f64>()
                .sqrt();
            // Backward error of the construction: a few ε·n·max|λ|.
            assert!(r < 1e-12 * 40.0, "residual {r}");
        }
    }
}
