//! Gaussian-mixture classification: `k` isotropic Gaussian clusters, one per class.
//!
//! ```text
//! μ_c = r · u_c,  u_c = g_c / ‖g_c‖,  g_c ~ N(0, I_d)    (drawn once, from the seed)
//! c ~ Unif{0, …, k−1},  x = μ_c + σ ξ,  ξ ~ N(0, I_d)
//! ```
//!
//! `r` is the `separation` (each mean's distance from the origin) and `σ` the
//! `noise_std`. Used as a synthetic online stream for the richness sweep (THEORY.md
//! §3); the defaults `d = 20, k = 2, r = 3, σ = 1` are **(inferred)** project
//! defaults, not values from a paper.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::dataset::Dataset;
use crate::error::{DataError, Result};
use crate::generator::{gaussian, Generator};
use crate::targets::Targets;
use eos_model::rng::{derived_rng, Purpose};

/// Parameters of a Gaussian mixture; as config keys (`[data] kind = "mixture"`) each
/// one defaults to [`MixtureConfig::default`] and unknown keys are rejected by name.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MixtureConfig {
    /// Input dimension `d`.
    pub dim: usize,
    /// Number of classes (clusters) `k`.
    pub num_classes: usize,
    /// Norm `r` of each cluster mean.
    pub separation: f64,
    /// Per-coordinate noise standard deviation `σ`.
    pub noise_std: f64,
    /// Target encoding.
    pub targets: Targets,
}

impl Default for MixtureConfig {
    fn default() -> Self {
        MixtureConfig {
            dim: 20,
            num_classes: 2,
            separation: 3.0,
            noise_std: 1.0,
            targets: Targets::OneHot,
        }
    }
}

/// A Gaussian mixture with its means fixed; a [`Generator`].
#[derive(Debug, Clone, PartialEq)]
pub struct GaussianMixture {
    config: MixtureConfig,
    /// Cluster means, `[k, d]` row-major.
    means: Vec<f64>,
}

impl GaussianMixture {
    /// Draws the cluster means from `seed`.
    pub fn new(config: MixtureConfig, seed: u64) -> Result<Self> {
        if config.dim == 0 || config.num_classes < 2 {
            return Err(DataError::Invalid(format!(
                "Gaussian mixture needs dim >= 1 and >= 2 classes, got dim {} and {} classes",
                config.dim, config.num_classes
            )));
        }
        let mut rng = derived_rng(seed, Purpose::Teacher, 0);
        let mut means = gaussian(&mut rng, config.num_classes * config.dim, 1.0);
        for mu in means.chunks_exact_mut(config.dim) {
            let norm = mu.iter().map(|v| v * v).sum::<f64>().sqrt();
            mu.iter_mut()
                .for_each(|v| *v *= config.separation / norm.max(f64::MIN_POSITIVE));
        }
        Ok(GaussianMixture { config, means })
    }

    /// The configuration.
    pub fn config(&self) -> &MixtureConfig {
        &self.config
    }

    /// The cluster means, `[k, d]` row-major.
    pub fn means(&self) -> &[f64] {
        &self.means
    }
}

impl Generator for GaussianMixture {
    fn sample(&self, n: usize, rng: &mut ChaCha8Rng) -> Result<Dataset> {
        let c = &self.config;
        let labels: Vec<u32> = (0..n)
            .map(|_| rng.random_range(0..c.num_classes as u32))
            .collect();
        let mut x = gaussian(rng, n * c.dim, c.noise_std);
        for (row, &l) in x.chunks_exact_mut(c.dim).zip(&labels) {
            let mu = &self.means[l as usize * c.dim..(l as usize + 1) * c.dim];
            row.iter_mut().zip(mu).for_each(|(v, m)| *v += m);
        }
        let name = format!("gaussian-mixture(d={}, k={})", c.dim, c.num_classes);
        Dataset::classification(x, c.dim, labels, c.num_classes, c.targets, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_keys_default_each_and_reject_unknowns() {
        let c: MixtureConfig = serde_json::from_str(r#"{"num_classes": 3}"#).expect("valid keys");
        assert_eq!(
            c,
            MixtureConfig {
                num_classes: 3,
                ..MixtureConfig::default()
            }
        );
        let e = serde_json::from_str::<MixtureConfig>(r#"{"classes": 3}"#).expect_err("a typo");
        assert!(e.to_string().contains("unknown field `classes`"), "{e}");
    }

    #[test]
    fn class_means_match_the_cluster_means() {
        let cfg = MixtureConfig {
            num_classes: 3,
            ..MixtureConfig::default()
        };
        let g = GaussianMixture::new(cfg, 5).expect("valid");
        for mu in g.means().chunks_exact(cfg.dim) {
            let norm = mu.iter().map(|v| v * v).sum::<f64>().sqrt();
            assert!((norm - 3.0).abs() < 1e-12);
        }
        let n = 6000;
        let ds = g.dataset(n, 1).expect("valid");
        let (x, labels) = (ds.x_vec().expect("f64"), ds.labels.expect("labels"));
        for c in 0..3u32 {
            let rows: Vec<&[f64]> = x
                .chunks_exact(cfg.dim)
                .zip(&labels)
                .filter(|(_, &l)| l == c)
                .map(|(r, _)| r)
                .collect();
            // ~2000 samples per class: mean error std 1/sqrt(2000) = 0.022; 6 std.
            assert!((rows.len() as f64 - 2000.0).abs() < 200.0);
            for j in 0..cfg.dim {
                let m = rows.iter().map(|r| r[j]).sum::<f64>() / rows.len() as f64;
                assert!((m - g.means()[c as usize * cfg.dim + j]).abs() < 0.14);
            }
        }
    }
}
