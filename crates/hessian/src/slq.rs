//! Stochastic Lanczos quadrature (SLQ): the spectral density of a symmetric operator.
//!
//! The spectral density `φ(t) = (1/P) Σ_i δ(t − λ_i)` satisfies, for a unit vector
//! `q = z/√P` with Rademacher `z`, `E[qᵀ f(A) q] = (1/P) Σ_i f(λ_i) = ∫ f φ`. For one
//! probe, `qᵀ f(A) q = Σ_i f(λ_i)(u_iᵀq)²` is an integral against a discrete measure,
//! which `m` Lanczos steps from `q` approximate by the `m`-node Gauss quadrature rule
//! (Golub & Welsch 1969; Golub & Meurant, *Matrices, Moments and Quadrature*, 2010,
//! ch. 6): with `T_m = S Θ Sᵀ`,
//!
//! ```text
//! qᵀ f(A) q ≈ Σ_k w_k f(θ_k),   nodes θ_k (Ritz values),   weights w_k = s_{1k}²,
//! ```
//!
//! exact for polynomials of degree ≤ 2m − 1. Averaging over probes and smoothing each
//! node with a Gaussian kernel gives the density (Ubaru, Chen & Saad, SIAM J. Matrix
//! Anal. Appl. 2017; Ghorbani, Krishnan & Xiao, ICML 2019; PyHessian, Yao et al. 2020):
//!
//! ```text
//! φ_σ(t) = (1/n_v) Σ_probes Σ_k w_k N(t; θ_k, σ²),       ∫ φ_σ = 1.
//! ```
//!
//! With `f(t) = t`: `P Σ_k w_k θ_k = P (T_m)_{11} = zᵀAz`, so each probe also gives a
//! Hutchinson sample of `tr A` (the same samples as [`crate::hutchinson()`] with the
//! same seed, up to rounding).
//!
//! Probes run one after the other (memory: one `m × P` Lanczos basis at a time).

use serde::{Deserialize, Serialize};

use crate::eigen::tridiagonal_eigen_rows;
use crate::hutchinson::TraceEstimate;
use crate::lanczos::lanczos_tridiag;
use eos_model::rng::{rademacher_draws, rng as seeded_rng};

use crate::{Error, LinearOperator, Result};

/// Gauss quadrature nodes and weights, one rule per probe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpectralDensity {
    /// The operator dimension `P`.
    pub dim: usize,
    /// `nodes[p]`: Ritz values of probe `p`, ascending.
    pub nodes: Vec<Vec<f64>>,
    /// `weights[p][k]`: squared first component of the eigenvector of `nodes[p][k]`;
    /// each probe's weights sum to 1.
    pub weights: Vec<Vec<f64>>,
}

/// SLQ with `num_probes` Rademacher probes drawn from `seed` and `lanczos_steps` Lanczos
/// steps each (at most `P`; fewer if the Krylov space becomes invariant, in which case
/// the rule is exact for every `f`).
pub fn slq<A: LinearOperator + ?Sized>(
    op: &A,
    num_probes: usize,
    lanczos_steps: usize,
    seed: u64,
) -> Result<SpectralDensity> {
    let dim = op.dim();
    if dim == 0 {
        return Err(Error::EmptyOperator { what: "slq" });
    }
    if num_probes == 0 || lanczos_steps == 0 {
        return Err(Error::Invalid {
            what: "slq: (num_probes, lanczos_steps)".into(),
            found: format!("({num_probes}, {lanczos_steps})"),
            expected: "both at least 1".into(),
        });
    }
    let mut rng = seeded_rng(seed);
    let mut nodes = Vec::with_capacity(num_probes);
    let mut weights = Vec::with_capacity(num_probes);
    for _ in 0..num_probes {
        // lanczos_tridiag normalises the start: q = z/√P.
        let z = rademacher_draws(&mut rng, dim);
        let t = lanczos_tridiag(op, &z, lanczos_steps)?;
        let rule = tridiagonal_eigen_rows(&t.alphas, &t.betas, &[0])?;
        weights.push(rule.rows[0].iter().map(|s| s * s).collect());
        nodes.push(rule.values);
    }
    Ok(SpectralDensity {
        dim,
        nodes,
        weights,
    })
}

/// The Gaussian-smoothed density `φ_σ` at each point of `grid` (`σ > 0`).
pub fn density_on_grid(density: &SpectralDensity, grid: &[f64], sigma: f64) -> Result<Vec<f64>> {
    if !(sigma > 0.0 && sigma.is_finite()) {
        return Err(Error::Invalid {
            what: "density_on_grid: sigma".into(),
            found: sigma.to_string(),
            expected: "a finite number > 0".into(),
        });
    }
    if density.nodes.is_empty() {
        return Err(Error::Invalid {
            what: "density_on_grid: density.nodes".into(),
            found: "no probes".into(),
            expected: "at least one probe".into(),
        });
    }
    let norm = 1.0 / (sigma * (2.0 * std::f64::consts::PI).sqrt() * density.nodes.len() as f64);
    Ok(grid
        .iter()
        .map(|&t| {
            let sum: f64 = density
                .nodes
                .iter()
                .zip(&density.weights)
                .flat_map(|(ns, ws)| ns.iter().zip(ws))
                .map(|(theta, w)| w * (-0.5 * ((t - theta) / sigma).powi(2)).exp())
                .sum();
            norm * sum
        })
        .collect())
}

/// The trace estimate `P Σ_k w_k θ_k` per probe (Hutchinson samples; at least two
/// probes are needed for the standard error).
pub fn slq_trace(density: &SpectralDensity) -> Result<TraceEstimate> {
    let p = density.dim as f64;
    TraceEstimate::from_samples(
        density
            .nodes
            .iter()
            .zip(&density.weights)
            .map(|(ns, ws)| p * ns.iter().zip(ws).map(|(t, w)| t * w).sum::<f64>())
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hutchinson::hutchinson;
    use crate::testing::symmetric_with_spectrum;
    use crate::vector::{dot, norm};

    /// Trapezoid rule on a uniform grid.
    fn integral(grid: &[f64], f: &[f64]) -> f64 {
        let h = grid[1] - grid[0];
        h * (f.iter().sum::<f64>() - 0.5 * (f[0] + f[f.len() - 1]))
    }

    /// n = 100, eigenvalues spread over [−4, 6].
    fn spread() -> (crate::DenseOperator, Vec<f64>) {
        let lambda: Vec<f64> = (0..100)
            .map(|i| -4.0 + 10.0 * (i as f64 / 99.0).powi(2))
            .collect();
        (symmetric_with_spectrum(&lambda, 31).0, lambda)
    }

    #[test]
    fn weights_sum_to_one_and_nodes_lie_in_the_spectrum() {
        let (a, _) = spread();
        let d = slq(&a, 10, 20, 1).expect("slq");
        assert_eq!((d.nodes.len(), d.weights.len()), (10, 10));
        for (ns, ws) in d.nodes.iter().zip(&d.weights) {
            assert_eq!(ns.len(), 20);
            assert!((ws.iter().sum::<f64>() - 1.0).abs() < 1e-13);
            assert!(ws.iter().all(|w| *w >= 0.0));
            // Ritz values lie in [λ_min, λ_max] (Cauchy interlacing), up to rounding.
            assert!(ns.iter().all(|t| *t > -4.0 - 1e-12 && *t < 6.0 + 1e-12));
        }
    }

    #[test]
    fn gauss_quadrature_is_exact_to_degree_2m_minus_1() {
        // The m-node Gauss rule from T_m integrates polynomials of degree ≤ 2m − 1
        // exactly (Golub & Meurant 2010, ch. 6): Σ w θ^j = qᵀ A^j q.
        let (a, _) = spread();
        let m = 6;
        let d = slq(&a, 1, m, 4).expect("slq");
        let z = rademacher_draws(&mut seeded_rng(4), 100);
        let q: Vec<f64> = z.iter().map(|x| x / 10.0).collect();
        let mut ajq = q.clone();
        for j in 0..2 * m {
            let exact = dot(&q, &ajq);
            let gauss: f64 = d.nodes[0]
                .iter()
                .zip(&d.weights[0])
                .map(|(t, w)| w * t.powi(j as i32))
                .sum();
            // Relative to ‖A‖^j = 6^j: f64 rounding of the recurrence.
            assert!(
                (gauss - exact).abs() < 1e-12 * 6f64.powi(j as i32),
                "j = {j}: {gauss} vs {exact}"
            );
            ajq = a.apply(&ajq).expect("apply");
        }
        // Degree 2m is not: the remainder f^(2m)(η)/(2m)! ∫ Π_k (t − θ_k)² dμ is > 0
        // for f = t^(2m) (Golub & Meurant 2010, ch. 6).
        let exact = dot(&q, &ajq);
        let gauss: f64 = d.nodes[0]
            .iter()
            .zip(&d.weights[0])
            .map(|(t, w)| w * t.powi(12))
            .sum();
        assert!(exact - gauss > 1e-6 * exact, "{gauss} vs {exact}");
    }

    #[test]
    fn trace_matches_hutchinson_and_the_true_trace() {
        let (a, lambda) = spread();
        let trace: f64 = lambda.iter().sum();
        let d = slq(&a, 30, 10, 7).expect("slq");
        let est = slq_trace(&d).expect("30 probes");
        // P Σ w θ = P (T_m)₁₁ = zᵀAz: the same samples as Hutchinson with this seed.
        let h = hutchinson(&a, 30, 5, 7).expect("hutchinson");
        for (s, h) in est.samples.iter().zip(&h.samples) {
            assert!((s - h).abs() < 1e-12 * h.abs().max(100.0), "{s} vs {h}");
        }
        assert!(
            (est.mean - trace).abs() < 4.0 * est.stderr,
            "{} vs {trace} ± {}",
            est.mean,
            est.stderr
        );
    }

    #[test]
    fn full_dimension_recovers_every_eigenvalue() {
        // m = P: the nodes are the eigenvalues and w_i = (u_iᵀq)².
        let lambda: Vec<f64> = (0..40).map(|i| -2.0 + 0.25 * i as f64).collect();
        let (a, u) = symmetric_with_spectrum(&lambda, 2);
        let d = slq(&a, 1, 100, 3).expect("slq");
        assert_eq!(d.nodes[0].len(), 40);
        let z = rademacher_draws(&mut seeded_rng(3), 40);
        let nz = norm(&z);
        for i in 0..40 {
            assert!((d.nodes[0][i] - lambda[i]).abs() < 1e-12 * 8.0);
            let w = (dot(&u[i], &z) / nz).powi(2);
            assert!(
                (d.weights[0][i] - w).abs() < 1e-10,
                "{} vs {w}",
                d.weights[0][i]
            );
        }
    }

    #[test]
    fn two_clusters_put_their_mass_near_both() {
        // 150 eigenvalues in [−2.1, −1.9] and 50 in [4.9, 5.1], n = 200: the density
        // has mass 0.75 and 0.25 there (in expectation over probes; each probe's mass
        // on a cluster of c eigenvalues has sd ≈ √(2c)/P ≈ 0.06, over 20 probes 0.014).
        let mut lambda: Vec<f64> = (0..150).map(|i| -2.1 + 0.2 * i as f64 / 149.0).collect();
        lambda.extend((0..50).map(|i| 4.9 + 0.2 * i as f64 / 49.0));
        let (a, _) = symmetric_with_spectrum(&lambda, 17);
        let d = slq(&a, 20, 25, 5).expect("slq");
        let grid: Vec<f64> = (0..=1500).map(|i| -6.0 + 0.01 * i as f64).collect();
        let phi = density_on_grid(&d, &grid, 0.1).expect("density");
        let mass = |lo: f64, hi: f64| {
            let (g, f): (Vec<f64>, Vec<f64>) = grid
                .iter()
                .zip(&phi)
                .filter(|(t, _)| **t >= lo - 1e-9 && **t <= hi + 1e-9)
                .map(|(t, f)| (*t, *f))
                .unzip();
            integral(&g, &f)
        };
        // The kernel integrates to 1; the grid covers ±39σ around every node.
        assert!((mass(-6.0, 9.0) - 1.0).abs() < 1e-6);
        let (left, right, gap) = (mass(-3.0, -1.0), mass(4.0, 6.0), mass(-0.5, 3.5));
        assert!((left - 0.75).abs() < 0.07, "left cluster mass {left}");
        assert!((right - 0.25).abs() < 0.07, "right cluster mass {right}");
        assert!(gap < 1e-3, "mass in the gap {gap}");
        // The peaks sit on the clusters: φ(−2) and φ(5) ≫ φ(1.5).
        let at = |t: f64| phi[((t + 6.0) / 0.01).round() as usize];
        assert!(at(-2.0) > 1.0 && at(5.0) > 0.3 && at(1.5) < 1e-6);
    }

    #[test]
    fn same_seed_bit_identical_and_errors() {
        let (a, _) = spread();
        let d1 = slq(&a, 3, 8, 11).expect("slq");
        assert_eq!(d1, slq(&a, 3, 8, 11).expect("slq"));
        assert_ne!(d1, slq(&a, 3, 8, 12).expect("slq"));
        assert!(slq(&a, 0, 8, 0).is_err());
        assert!(slq(&a, 3, 0, 0).is_err());
        assert!(density_on_grid(&d1, &[0.0], 0.0).is_err());
        assert!(density_on_grid(&d1, &[0.0], f64::NAN).is_err());
        assert!(slq_trace(&slq(&a, 1, 8, 0).expect("slq")).is_err());
    }
}
