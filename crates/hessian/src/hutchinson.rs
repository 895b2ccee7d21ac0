//! The trace of a symmetric operator: Hutchinson's stochastic estimate and the exact
//! sum over unit vectors.
//!
//! For `z` with independent Rademacher entries (±1 with probability ½),
//! `E[zᵀAz] = tr A` and `Var[zᵀAz] = 2 Σ_{i≠j} a_ij² = 2(‖A‖_F² − Σ_i a_ii²)`
//! (Hutchinson, "A stochastic estimator of the trace of the influence matrix for
//! Laplacian smoothing splines", 1990; Avron & Toledo, J. ACM 2011, Lemma 1). With `m`
//! probes
//!
//! ```text
//! tr A ≈ t̂ = (1/m) Σ_k z_kᵀ A z_k,   stderr = s / √m,
//! s² = (1/(m−1)) Σ_k (z_kᵀ A z_k − t̂)².
//! ```
//!
//! The exact trace is `Σ_i e_iᵀ A e_i`: `P` products, affordable for small models and
//! the reference for the estimate. Both apply the operator to blocks of vectors
//! ([`LinearOperator::apply_block`]) so that a Hessian operator can share its forward
//! pass across the block; the results do not depend on the block size.

use serde::{Deserialize, Serialize};

use eos_model::rng::{rademacher_draws, rng as seeded_rng};

use crate::vector::{apply_block_checked, dot};
use crate::{Error, LinearOperator, Result};

/// A Monte-Carlo estimate of a trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceEstimate {
    /// The sample mean, the estimate of `tr A`.
    pub mean: f64,
    /// Standard error of the mean: sample standard deviation / √m.
    pub stderr: f64,
    /// The individual samples `z_kᵀ A z_k`.
    pub samples: Vec<f64>,
}

impl TraceEstimate {
    /// Mean and standard error of at least two samples.
    pub fn from_samples(samples: Vec<f64>) -> Result<Self> {
        let m = samples.len();
        if m < 2 {
            return Err(Error::Invalid {
                what: "trace estimate: number of samples".into(),
                found: m.to_string(),
                expected: "at least 2 (for a standard error)".into(),
            });
        }
        let mean = samples.iter().sum::<f64>() / m as f64;
        let var = samples.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (m - 1) as f64;
        Ok(Self {
            mean,
            stderr: (var / m as f64).sqrt(),
            samples,
        })
    }
}

/// Hutchinson's estimate of `tr A` from `num_samples ≥ 2` Rademacher probes drawn from
/// `seed`, applied `block` at a time.
pub fn hutchinson<A: LinearOperator + ?Sized>(
    op: &A,
    num_samples: usize,
    block: usize,
    seed: u64,
) -> Result<TraceEstimate> {
    let dim = op.dim();
    if dim == 0 {
        return Err(Error::EmptyOperator { what: "hutchinson" });
    }
    if block == 0 {
        return Err(Error::Invalid {
            what: "hutchinson: block".into(),
            found: "0".into(),
            expected: "a block size ≥ 1".into(),
        });
    }
    if num_samples < 2 {
        return Err(Error::Invalid {
            what: "hutchinson: num_samples".into(),
            found: num_samples.to_string(),
            expected: "at least 2 (for a standard error)".into(),
        });
    }
    let mut rng = seeded_rng(seed);
    let mut samples = Vec::with_capacity(num_samples);
    while samples.len() < num_samples {
        let b = block.min(num_samples - samples.len());
        let zs: Vec<Vec<f64>> = (0..b).map(|_| rademacher_draws(&mut rng, dim)).collect();
        let azs = apply_block_checked(op, &zs, "hutchinson")?;
        samples.extend(zs.iter().zip(&azs).map(|(z, az)| dot(z, az)));
    }
    TraceEstimate::from_samples(samples)
}

/// `tr A = Σ_i e_iᵀ A e_i`, from `dim` products applied `block` at a time.
pub fn exact_trace<A: LinearOperator + ?Sized>(op: &A, block: usize) -> Result<f64> {
    let dim = op.dim();
    if block == 0 {
        return Err(Error::Invalid {
            what: "exact_trace: block".into(),
            found: "0".into(),
            expected: "a block size ≥ 1".into(),
        });
    }
    let mut trace = 0.0;
    for first in (0..dim).step_by(block) {
        let idx: Vec<usize> = (first..(first + block).min(dim)).collect();
        let es: Vec<Vec<f64>> = idx
            .iter()
            .map(|&i| {
                let mut e = vec![0.0; dim];
                e[i] = 1.0;
                e
            })
            .collect();
        let aes = apply_block_checked(op, &es, "exact_trace")?;
        // One running sum, so the result does not depend on the block size.
        for (&i, ae) in idx.iter().zip(&aes) {
            trace += ae[i];
        }
    }
    Ok(trace)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::symmetric_with_spectrum;
    use crate::DenseOperator;

    /// n = 60, eigenvalues in [−3, 9] with a negative cluster.
    fn matrix() -> (DenseOperator, f64) {
        let mut lambda: Vec<f64> = (0..50).map(|i| -1.0 + 10.0 * i as f64 / 49.0).collect();
        lambda.extend((0..10).map(|i| -3.0 + 0.01 * i as f64));
        let trace = lambda.iter().sum();
        (symmetric_with_spectrum(&lambda, 12).0, trace)
    }

    #[test]
    fn exact_trace_is_exact() {
        let (a, trace) = matrix();
        // e_iᵀ A e_i reads the diagonal entry exactly, so the sum is bit-identical to
        // summing the diagonal in the same order.
        let diag: f64 = (0..a.n).map(|i| a.get(i, i)).sum();
        for block in [1, 7, 60, 100] {
            assert_eq!(exact_trace(&a, block).expect("exact trace"), diag);
        }
        // And equals Σλ up to the construction's rounding.
        assert!((diag - trace).abs() < 1e-12 * 60.0 * 9.0);
    }

    #[test]
    fn hutchinson_is_unbiased_with_the_right_variance() {
        let (a, trace) = matrix();
        let est = hutchinson(&a, 2000, 16, 5).expect("hutchinson");
        assert_eq!(est.samples.len(), 2000);
        assert!(
            (est.mean - trace).abs() < 4.0 * est.stderr,
            "{} vs {trace} ± {}",
            est.mean,
            est.stderr
        );
        // Var[zᵀAz] = 2(‖A‖_F² − Σ a_ii²) (Avron & Toledo 2011, Lemma 1). The sample
        // variance of 2000 draws has relative sd ≈ √((κ − 1)/m) ≈ 0.04 (kurtosis
        // κ ≈ 3–4 for this near-Gaussian sum), so 0.15 is ≈ 4 sd.
        let fro2: f64 = a.a.iter().map(|x| x * x).sum();
        let diag2: f64 = (0..a.n).map(|i| a.get(i, i).powi(2)).sum();
        let var_theory = 2.0 * (fro2 - diag2);
        let var_sample = est.stderr.powi(2) * 2000.0;
        assert!(
            (var_sample / var_theory - 1.0).abs() < 0.15,
            "{var_sample} vs {var_theory}"
        );
    }

    #[test]
    fn same_seed_bit_identical_for_any_block_size() {
        let (a, _) = matrix();
        let r1 = hutchinson(&a, 37, 1, 9).expect("hutchinson");
        let r2 = hutchinson(&a, 37, 8, 9).expect("hutchinson");
        let r3 = hutchinson(&a, 37, 100, 9).expect("hutchinson");
        assert_eq!(r1, r2);
        assert_eq!(r1, r3);
        assert_ne!(
            r1.samples,
            hutchinson(&a, 37, 8, 10).expect("hutchinson").samples
        );
    }

    #[test]
    fn bad_inputs_are_errors() {
        let (a, _) = matrix();
        assert!(hutchinson(&a, 1, 4, 0).is_err());
        assert!(hutchinson(&a, 10, 0, 0).is_err());
        assert!(exact_trace(&a, 0).is_err());
        assert!(hutchinson(&DenseOperator::new(0, vec![]), 10, 4, 0).is_err());
        assert!(TraceEstimate::from_samples(vec![1.0]).is_err());
        let t = TraceEstimate::from_samples(vec![1.0, 3.0]).expect("two samples");
        // mean 2, sample sd √2, stderr √2/√2 = 1.
        assert_eq!((t.mean, t.stderr), (2.0, 1.0));
    }
}
