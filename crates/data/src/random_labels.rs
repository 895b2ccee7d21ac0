//! Random labels: Gaussian inputs with labels independent of them (the memorisation
//! task of Zhang, Bengio, Hardt, Recht, Vinyals 2017, "Understanding deep learning
//! requires rethinking generalization", with Gaussian instead of image inputs).
//!
//! ```text
//! x ~ N(0, s² I_d),   c ~ Unif{0, …, k−1}   independently
//! ```
//!
//! Random labels on a real dataset are [`crate::transforms::label_noise`] with
//! fraction 1.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::dataset::Dataset;
use crate::error::{DataError, Result};
use crate::generator::{gaussian, Generator};
use crate::targets::Targets;

/// Gaussian inputs with uniformly random labels; a [`Generator`]. As config keys
/// (`[data] kind = "random_labels"`) each one defaults to [`RandomLabels::default`]
/// (`d = 20`, `k = 2`, `s = 1`, one-hot) and unknown keys are rejected by name.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RandomLabels {
    /// Input dimension `d`.
    pub dim: usize,
    /// Number of classes `k`.
    pub num_classes: usize,
    /// Standard deviation `s` of each input coordinate.
    pub input_std: f64,
    /// Target encoding.
    pub targets: Targets,
}

impl Default for RandomLabels {
    fn default() -> Self {
        RandomLabels {
            dim: 20,
            num_classes: 2,
            input_std: 1.0,
            targets: Targets::OneHot,
        }
    }
}

impl Generator for RandomLabels {
    fn sample(&self, n: usize, rng: &mut ChaCha8Rng) -> Result<Dataset> {
        if self.dim == 0 || self.num_classes == 0 {
            return Err(DataError::Invalid(format!(
                "random labels need dim >= 1 and >= 1 class, got {} and {}",
                self.dim, self.num_classes
            )));
        }
        let labels = (0..n)
            .map(|_| rng.random_range(0..self.num_classes as u32))
            .collect();
        let x = gaussian(rng, n * self.dim, self.input_std);
        let name = format!("random-labels(d={}, k={})", self.dim, self.num_classes);
        Dataset::classification(x, self.dim, labels, self.num_classes, self.targets, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_uniform_over_classes() {
        let g = RandomLabels {
            dim: 3,
            num_classes: 4,
            input_std: 1.0,
            targets: Targets::OneHot,
        };
        let ds = g.dataset(8000, 0).expect("valid");
        let mut counts = [0usize; 4];
        ds.labels
            .expect("labels")
            .iter()
            .for_each(|&l| counts[l as usize] += 1);
        // Each count ~ Binomial(8000, 1/4): std 38.7; 5 std = 194.
        assert!(
            counts.iter().all(|&c| (c as f64 - 2000.0).abs() < 194.0),
            "{counts:?}"
        );
    }
}
