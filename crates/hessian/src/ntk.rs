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
//!
//! The inverse used to *control* the S-EOS (the abstract: "controlling the stochastic
//! edge of stability can help optimization"): [`s_eos_lr`] = the largest η ≤ η_max with
//! K(η, B) ≤ K_target, by bisection on the same K (K is increasing in η).

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

/// The largest η ≤ `lr_max` with K(η, B) ≤ `target` ([`s_eos_k`] with the same
/// `eigenvalues` and `rest_trace`): `lr_max` itself when K(η_max) ≤ target, else a
/// bisection on [0, η_max] (60 halvings; K is increasing in η, +∞ once ηλ_max ≥ 2).
/// Errors as [`s_eos_k`] (batch size), or when `target` or `lr_max` is not finite
/// and > 0.
pub fn s_eos_lr(
    eigenvalues: &[f64],
    rest_trace: f64,
    lr_max: f64,
    batch: usize,
    n: usize,
    target: f64,
) -> Result<f64> {
    for (what, x) in [("target K", target), ("η_max", lr_max)] {
        if !(x.is_finite() && x > 0.0) {
            return Err(Error::Invalid {
                what: format!("s_eos_lr: {what}"),
                found: x.to_string(),
                expected: "a finite number > 0".into(),
            });
        }
    }
    let k = |lr: f64| s_eos_k(eigenvalues, rest_trace, lr, batch, n);
    if k(lr_max)? <= target {
        return Ok(lr_max);
    }
    let (mut lo, mut hi) = (0.0, lr_max);
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if k(mid)? <= target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(lo)
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

    #[test]
    fn s_eos_lr_inverts_k() {
        // Small-ηλ form only: K = (1/4 − 1/100)·η·20/2 = 2.4 η → K = 0.5 at η = 5/24.
        let lr = s_eos_lr(&[], 20.0, 1.0, 4, 100, 0.5).unwrap();
        assert!((lr - 5.0 / 24.0).abs() < 1e-12, "{lr}");
        // λ₁ = 1 exact, rest 20, B = 4, n = 100: K(1) = 0.24·(1 + 10) = 2.64 > 0.5.
        let lr = s_eos_lr(&[1.0], 20.0, 1.0, 4, 100, 0.5).unwrap();
        let k = s_eos_k(&[1.0], 20.0, lr, 4, 100).unwrap();
        assert!((k - 0.5).abs() < 1e-9 && lr < 1.0, "{lr} {k}");
        // K below the target at η_max: η_max itself.
        assert_eq!(s_eos_lr(&[1.0], 20.0, 0.01, 4, 100, 0.5).unwrap(), 0.01);
        // η_max beyond 2/λ₁ (K = ∞ there): the answer stays below 2/λ₁ = 0.2.
        let lr = s_eos_lr(&[10.0], 0.0, 1.0, 1, 2, 0.5).unwrap();
        // noise ½: ½·10η/(2 − 10η) = ½ at η = 0.1.
        assert!((lr - 0.1).abs() < 1e-12, "{lr}");
        assert!(s_eos_lr(&[1.0], 0.0, 1.0, 4, 100, 0.0).is_err());
        assert!(s_eos_lr(&[1.0], 0.0, f64::NAN, 4, 100, 0.5).is_err());
        assert!(s_eos_lr(&[1.0], 0.0, 1.0, 0, 100, 0.5).is_err());
    }
}
