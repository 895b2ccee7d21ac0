//! NTK trace and the stochastic edge-of-stability criterion (THEORY.md §4).
//!
//! `tr G = (1/n) Σᵢ Σₖ ‖∂f_ik/∂θ‖²` is the trace of the normalised NTK Gram matrix
//! Θ/n (for mse, the trace of the Gauss-Newton matrix). Agarwala & Pennington (arXiv
//! 2404.19261) place a stochastic EoS where a noise kernel norm reaches 1; its formula
//! here is **inferred** (THEORY.md §4, default; the paper's exact definition is not
//! in the abstract): with λᵢ the eigenvalues of G,
//!
//! ```text
//! K(η, B) = (1/B − 1/n) Σᵢ ηλᵢ / (2 − ηλᵢ),   valid while ηλ_max < 2,
//! K ≈ (1/B − 1/n) η tr(G) / 2               for small ηλᵢ.
//! ```

use candle_core::Tensor;
use eos_model::Model;

use crate::{Error, Result};

/// `(1/n) Σᵢ Σₖ ‖∂f_ik/∂θ‖²`, exact.
pub fn ntk_trace<M: Model>(mlp: &M, x: &Tensor) -> Result<f64> {
    Ok(mlp.ntk_trace(x)?)
}

/// The noise kernel norm K(η, B) from (some of) G's eigenvalues; eigenvalues not
/// given contribute through `rest_trace` (their sum) in the small-ηλ approximation.
/// Returns +∞ when ηλ_max ≥ 2 (the deterministic EoS is crossed first).
pub fn s_eos_k(
    eigenvalues: &[f64],
    rest_trace: f64,
    lr: f64,
    batch: usize,
    n: usize,
) -> Result<f64> {
    if batch == 0 || n == 0 || batch > n {
        return Err(Error::Invalid {
            what: "s_eos_k: batch size".into(),
            found: batch.to_string(),
            expected: format!("1..={n} (the number of samples)"),
        });
    }
    let noise = 1.0 / batch as f64 - 1.0 / n as f64;
    let mut k = 0.0;
    for &l in eigenvalues {
        let el = lr * l.max(0.0);
        if el >= 2.0 {
            return Ok(f64::INFINITY);
        }
        k += el / (2.0 - el);
    }
    k += lr * rest_trace.max(0.0) / 2.0;
    Ok(noise * k)
}

/// The small-ηλ form: K ≈ (1/B − 1/n) η tr(G) / 2.
pub fn s_eos_k_from_trace(trace: f64, lr: f64, batch: usize, n: usize) -> Result<f64> {
    s_eos_k(&[], trace, lr, batch, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_kernel_norm_values() {
        // One eigenvalue λ = 1, η = 1: ηλ/(2 − ηλ) = 1; B = 1 of n = 2: noise ½.
        assert!((s_eos_k(&[1.0], 0.0, 1.0, 1, 2).unwrap() - 0.5).abs() < 1e-15);
        // Full batch: no noise.
        assert_eq!(s_eos_k(&[1.0, 0.5], 0.0, 1.0, 10, 10).unwrap(), 0.0);
        // Beyond the deterministic EoS.
        assert!(s_eos_k(&[3.0], 0.0, 1.0, 1, 10).unwrap().is_infinite());
        // Small-ηλ limit agrees with the trace form: λᵢ = 1e-3 × 100, η = 1, B = 4.
        let eig = vec![1e-3; 100];
        let exact = s_eos_k(&eig, 0.0, 1.0, 4, 1_000_000).unwrap();
        let approx = s_eos_k_from_trace(0.1, 1.0, 4, 1_000_000).unwrap();
        assert!(
            (exact - approx).abs() < 1e-3 * approx,
            "{exact} vs {approx}"
        );
        assert!(s_eos_k(&[1.0], 0.0, 1.0, 0, 2).is_err());
    }
}
