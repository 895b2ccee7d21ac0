//! The sparse-coding data model of Ahn, Bubeck, Chewi, Lee, Suarez, Zhang,
//! "Learning threshold neurons via the edge of stability" (arXiv 2212.07469,
//! NeurIPS 2023); THEORY.md §5.
//!
//! ```text
//! j ~ Unif{0, …, d−1},  y ~ Unif{−1, +1},  ξ ~ N(0, σ² I_d)
//! x = λ y e_j + ξ
//! ```
//!
//! Each sample has one active feature `j` carrying the label with signal `λ`, plus
//! isotropic noise. Defaults: `d = 200`, `n = 300` ([`SparseCoding::DEFAULT_N`]),
//! `λ = 3`, `σ² = 1/d`, so the noise has norm ≈ 1 while the signal has norm 3. Only
//! the model's form comes from the abstract; the default values (and `σ² = 1/d`) are
//! **(inferred)** as stated in THEORY.md, each configurable.
//!
//! Labels are `1` for `y = +1` and `0` for `y = −1`; the default targets are the `±1`
//! of the logistic loss ([`Targets::Signed`]).

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::dataset::Dataset;
use crate::error::{DataError, Result};
use crate::generator::{gaussian, Generator};
use crate::targets::Targets;

/// Parameters of the sparse-coding model.
///
/// Its serde form is the `[data] kind = "sparse_coding"` table of a config
/// ([`SparseCodingKeys`]: `noise_var` left out means `1/dim`); unknown keys are
/// rejected by name.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(from = "SparseCodingKeys", into = "SparseCodingKeys")]
pub struct SparseCoding {
    /// Dimension `d` (default 200).
    pub dim: usize,
    /// Signal strength `λ` (default 3).
    pub signal: f64,
    /// Per-coordinate noise variance `σ²` (default `1/d`).
    pub noise_var: f64,
    /// Target encoding (default `±1`).
    pub targets: Targets,
}

impl SparseCoding {
    /// The default number of training samples, `n = 300` **(inferred)**.
    pub const DEFAULT_N: usize = 300;

    /// The default model in dimension `dim`: `λ = 3`, `σ² = 1/dim`, `±1` targets.
    pub fn with_dim(dim: usize) -> Self {
        SparseCoding {
            dim,
            signal: 3.0,
            noise_var: 1.0 / dim.max(1) as f64,
            targets: Targets::Signed,
        }
    }

    /// `n` samples and the active feature `j` of each.
    pub fn sample_with_features(
        &self,
        n: usize,
        rng: &mut ChaCha8Rng,
    ) -> Result<(Dataset, Vec<usize>)> {
        if self.dim == 0 || self.noise_var.is_nan() || self.noise_var < 0.0 {
            return Err(DataError::Invalid(format!(
                "sparse coding needs dim >= 1 and noise_var >= 0, got {} and {}",
                self.dim, self.noise_var
            )));
        }
        let d = self.dim;
        let mut features = Vec::with_capacity(n);
        let mut labels = Vec::with_capacity(n);
        for _ in 0..n {
            features.push(rng.random_range(0..d));
            labels.push(u32::from(rng.random::<bool>()));
        }
        let mut x = gaussian(rng, n * d, self.noise_var.sqrt());
        for (i, (&j, &l)) in features.iter().zip(&labels).enumerate() {
            let y = if l == 1 { 1.0 } else { -1.0 };
            x[i * d + j] += self.signal * y;
        }
        let name = format!("sparse-coding(d={d}, lambda={})", self.signal);
        let ds = Dataset::classification(x, d, labels, 2, self.targets, name)?;
        Ok((ds, features))
    }
}

/// The keys of a sparse-coding config, as a config file spells them (the serde form of
/// [`SparseCoding`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SparseCodingKeys {
    /// Dimension `d` (default 200).
    #[serde(default = "two_hundred")]
    pub dim: usize,
    /// Signal strength `λ` (default 3).
    #[serde(default = "three")]
    pub signal: f64,
    /// Noise variance per coordinate (default `1/dim`; written only when it differs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise_var: Option<f64>,
    /// Target encoding (default `±1`).
    #[serde(default = "signed")]
    pub targets: Targets,
}

fn two_hundred() -> usize {
    200
}
fn three() -> f64 {
    3.0
}
fn signed() -> Targets {
    Targets::Signed
}

impl From<SparseCodingKeys> for SparseCoding {
    fn from(k: SparseCodingKeys) -> Self {
        SparseCoding {
            noise_var: k.noise_var.unwrap_or(1.0 / k.dim.max(1) as f64),
            signal: k.signal,
            targets: k.targets,
            ..SparseCoding::with_dim(k.dim)
        }
    }
}

impl From<SparseCoding> for SparseCodingKeys {
    fn from(s: SparseCoding) -> Self {
        let default_var = 1.0 / s.dim.max(1) as f64;
        SparseCodingKeys {
            dim: s.dim,
            signal: s.signal,
            noise_var: (s.noise_var != default_var).then_some(s.noise_var),
            targets: s.targets,
        }
    }
}

impl Default for SparseCoding {
    fn default() -> Self {
        SparseCoding::with_dim(200)
    }
}

impl Generator for SparseCoding {
    fn sample(&self, n: usize, rng: &mut ChaCha8Rng) -> Result<Dataset> {
        Ok(self.sample_with_features(n, rng)?.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eos_model::rng::{derived_rng, Purpose};

    #[test]
    fn config_keys_default_the_noise_to_one_over_dim() {
        let s: SparseCoding = serde_json::from_str(r#"{"dim": 8}"#).expect("valid keys");
        assert_eq!(s, SparseCoding::with_dim(8));
        assert_eq!(
            serde_json::to_string(&s).expect("ok"),
            r#"{"dim":8,"signal":3.0,"targets":"signed"}"#
        );
        let t: SparseCoding = serde_json::from_str(r#"{"noise_var": 0.5}"#).expect("valid keys");
        assert_eq!((t.dim, t.noise_var), (200, 0.5));
        let back: SparseCoding =
            serde_json::from_str(&serde_json::to_string(&t).expect("ok")).expect("round trip");
        assert_eq!(back, t);
        let e = serde_json::from_str::<SparseCoding>(r#"{"signa": 1}"#).expect_err("a typo");
        assert!(e.to_string().contains("unknown field `signa`"), "{e}");
    }

    #[test]
    fn one_large_coordinate_equal_to_lambda_y_and_balanced_labels() {
        let model = SparseCoding::default();
        let n = 4000;
        let mut rng = derived_rng(42, Purpose::Dataset, 0);
        let (ds, features) = model.sample_with_features(n, &mut rng).expect("valid");
        assert_eq!((ds.len(), ds.input_dim(), ds.target_dim()), (n, 200, 1));
        let x = ds.x_vec().expect("f64");
        let y = ds.y_vec().expect("f64");
        for (i, row) in x.chunks_exact(200).enumerate() {
            let j = features[i];
            // Noise coordinates ~ N(0, 1/200), std 0.071: |ξ| < 1 is a 14-std event.
            let large: Vec<usize> = (0..200).filter(|&k| row[k].abs() > 1.5).collect();
            assert_eq!(large, vec![j], "sample {i}");
            assert!((row[j] - 3.0 * y[i]).abs() < 0.5, "x_j = λ y + ξ_j");
        }
        // Labels ~ Bernoulli(1/2): std of the mean 0.0079 at n = 4000; 5 std.
        let pos = y.iter().filter(|&&v| v == 1.0).count() as f64 / n as f64;
        assert!((pos - 0.5).abs() < 0.04, "{pos}");
        // Noise variance per coordinate ≈ 1/d (off the active coordinate).
        let (mut s, mut m) = (0.0, 0usize);
        for (i, row) in x.chunks_exact(200).enumerate() {
            for (k, v) in row.iter().enumerate() {
                if k != features[i] {
                    s += v * v;
                    m += 1;
                }
            }
        }
        assert!((s / m as f64 * 200.0 - 1.0).abs() < 0.01); // 796 000 draws: rel. std 0.0016
                                                            // Every active index in 0..d appears (4000 draws over 200 bins).
        let mut seen = [false; 200];
        features.iter().for_each(|&j| seen[j] = true);
        assert!(seen.iter().all(|&b| b));
    }

    #[test]
    fn fixed_dataset_is_reproducible() {
        let m = SparseCoding::default();
        let a = m.dataset(SparseCoding::DEFAULT_N, 1).expect("valid");
        let b = m.dataset(SparseCoding::DEFAULT_N, 1).expect("valid");
        assert_eq!(a.x_vec().expect("f64"), b.x_vec().expect("f64"));
        assert_eq!(a.len(), 300);
    }
}
