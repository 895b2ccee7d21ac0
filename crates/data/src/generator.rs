//! The `Generator` trait: a synthetic data distribution that draws `n` fresh samples
//! from a random number generator.
//!
//! A generator's *fixed* parameters (a teacher network's weights, a mixture's means)
//! are drawn once, from their own seed, when it is built; [`Generator::sample`] draws
//! only the per-sample randomness (inputs, classes, noise). So one generator yields a
//! fixed training set ([`Generator::dataset`]), an independent test set (another
//! seed) and an online stream ([`crate::stream::Stream`]) of the same task.
//!
//! Sampling is sequential in f64 with ChaCha8 ([`eos_model::rng`]): the numbers are the
//! same on every run, platform and thread count.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use crate::dataset::Dataset;
use crate::error::Result;
use eos_model::rng::{derived_rng, Purpose};

/// A synthetic data distribution.
pub trait Generator {
    /// `n` fresh samples drawn with `rng`.
    fn sample(&self, n: usize, rng: &mut ChaCha8Rng) -> Result<Dataset>;

    /// A fixed dataset of `n` samples: a pure function of `seed`.
    fn dataset(&self, n: usize, seed: u64) -> Result<Dataset> {
        self.sample(n, &mut derived_rng(seed, Purpose::Dataset, 0))
    }
}

impl<G: Generator + ?Sized> Generator for Box<G> {
    fn sample(&self, n: usize, rng: &mut ChaCha8Rng) -> Result<Dataset> {
        (**self).sample(n, rng)
    }
}

/// `len` i.i.d. draws from `N(0, std²)`.
pub(crate) fn gaussian(rng: &mut ChaCha8Rng, len: usize, std: f64) -> Vec<f64> {
    (0..len)
        .map(|_| std * rng.sample::<f64, _>(StandardNormal))
        .collect()
}

/// With probability `p`, a class other than `label` drawn uniformly from the other
/// `k − 1` classes; otherwise `label`. (`k ≥ 2`.)
pub(crate) fn maybe_flip(rng: &mut ChaCha8Rng, label: u32, k: usize, p: f64) -> u32 {
    if p > 0.0 && rng.random::<f64>() < p {
        let r = rng.random_range(0..k as u32 - 1);
        if r >= label {
            r + 1
        } else {
            r
        }
    } else {
        label
    }
}
