//! Minibatch sampling: which sample indices make up the batch of step `t`.
//!
//! ```text
//! FullBatch              B_t = {0, …, n−1}                      (GD)
//! WithReplacement(B)     B_t = B i.i.d. draws from Unif{0..n−1}, rng(seed, t)
//! WithoutReplacement(B)  epoch e = t / S, slot s = t mod S,
//!                        π_e = uniform permutation of 0..n−1, rng(seed, e)
//!                        B_t = π_e[s·B .. min((s+1)·B, n)]
//!                        S = ⌈n/B⌉ (last batch smaller) or ⌊n/B⌋ with drop_last
//! ```
//!
//! The batch of step `t` is a pure function of `(seed, t)` (see [`eos_model::rng`]), so a
//! run resumed at step `t` draws exactly the batches the uninterrupted run would have.
//! Without replacement, each epoch visits every index once (all but the last `n mod B`
//! of them with `drop_last`). The cost is one permutation of `n` indices per call;
//! use [`Sampler::epoch_permutation`] to slice many steps of one epoch at once.

use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use eos_model::rng::{derived_rng, Purpose};

/// How minibatches are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Sampling {
    /// Every step uses the whole dataset (gradient descent).
    FullBatch,
    /// `batch_size` indices drawn independently and uniformly (repeats possible).
    WithReplacement {
        /// Samples per batch.
        batch_size: usize,
    },
    /// Epoch-wise shuffling: each epoch is a fresh permutation cut into batches.
    WithoutReplacement {
        /// Samples per batch.
        batch_size: usize,
        /// Drop the last, smaller batch of each epoch when `batch_size ∤ n`.
        drop_last: bool,
    },
}

/// A seeded minibatch sampler over `n` samples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sampler {
    n: usize,
    sampling: Sampling,
    seed: u64,
}

impl Sampler {
    /// A sampler for a dataset of `n` samples. Fails for `n = 0`, a batch size of 0,
    /// or a batch larger than `n` without replacement.
    pub fn new(n: usize, sampling: Sampling, seed: u64) -> Result<Self> {
        if n == 0 {
            return Err(DataError::Invalid("sampler over an empty dataset".into()));
        }
        match sampling {
            Sampling::WithReplacement { batch_size: 0 }
            | Sampling::WithoutReplacement { batch_size: 0, .. } => {
                return Err(DataError::Invalid("batch_size must be at least 1".into()))
            }
            Sampling::WithoutReplacement { batch_size, .. } if batch_size > n => {
                return Err(DataError::Invalid(format!(
                    "batch_size {batch_size} exceeds the {n} samples (without replacement)"
                )))
            }
            _ => {}
        }
        Ok(Sampler { n, sampling, seed })
    }

    /// The number of samples.
    pub fn n(&self) -> usize {
        self.n
    }

    /// The sampling mode.
    pub fn sampling(&self) -> Sampling {
        self.sampling
    }

    /// Steps per epoch: 1 for full batch, `⌈n/B⌉` (or `⌊n/B⌋` with `drop_last`)
    /// without replacement, `⌈n/B⌉` with replacement (a nominal epoch).
    pub fn steps_per_epoch(&self) -> u64 {
        let s = match self.sampling {
            Sampling::FullBatch => 1,
            Sampling::WithReplacement { batch_size } => self.n.div_ceil(batch_size),
            Sampling::WithoutReplacement {
                batch_size,
                drop_last: true,
            } => self.n / batch_size,
            Sampling::WithoutReplacement { batch_size, .. } => self.n.div_ceil(batch_size),
        };
        s as u64
    }

    /// The epoch that step `step` belongs to.
    pub fn epoch_of(&self, step: u64) -> u64 {
        step / self.steps_per_epoch()
    }

    /// The indices of the batch of step `step`; a pure function of `(seed, step)`.
    pub fn batch(&self, step: u64) -> Vec<usize> {
        match self.sampling {
            Sampling::FullBatch => (0..self.n).collect(),
            Sampling::WithReplacement { batch_size } => {
                let mut rng = derived_rng(self.seed, Purpose::SampleWithReplacement, step);
                (0..batch_size)
                    .map(|_| rng.random_range(0..self.n))
                    .collect()
            }
            Sampling::WithoutReplacement { batch_size, .. } => {
                let spe = self.steps_per_epoch();
                let slot = (step % spe) as usize;
                let perm = self.epoch_permutation(step / spe);
                let start = slot * batch_size;
                perm[start..(start + batch_size).min(self.n)].to_vec()
            }
        }
    }

    /// The permutation of `0..n` that epoch `epoch` is cut from (without
    /// replacement); a pure function of `(seed, epoch)`.
    pub fn epoch_permutation(&self, epoch: u64) -> Vec<usize> {
        let mut perm: Vec<usize> = (0..self.n).collect();
        perm.shuffle(&mut derived_rng(
            self.seed,
            Purpose::EpochPermutation,
            epoch,
        ));
        perm
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_batches_and_resume_is_exact() {
        let mode = Sampling::WithReplacement { batch_size: 8 };
        let a = Sampler::new(100, mode, 3).expect("valid");
        let b = Sampler::new(100, mode, 3).expect("valid");
        let c = Sampler::new(100, mode, 4).expect("valid");
        // b is "resumed" at step 50: it never computed steps 0..50.
        assert_eq!(a.batch(50), b.batch(50));
        assert_ne!(a.batch(50), c.batch(50));
        assert_ne!(a.batch(50), a.batch(51));
        assert!(a.batch(7).iter().all(|&i| i < 100));
        assert_eq!(a.batch(7).len(), 8);
    }

    #[test]
    fn without_replacement_covers_each_index_once_per_epoch() {
        let mode = Sampling::WithoutReplacement {
            batch_size: 7,
            drop_last: false,
        };
        let s = Sampler::new(30, mode, 11).expect("valid");
        assert_eq!(s.steps_per_epoch(), 5);
        for epoch in 0..3u64 {
            let mut seen: Vec<usize> = (epoch * 5..epoch * 5 + 5)
                .flat_map(|t| s.batch(t))
                .collect();
            assert_eq!(s.batch(epoch * 5 + 4).len(), 2); // 30 = 4·7 + 2
            seen.sort_unstable();
            assert_eq!(seen, (0..30).collect::<Vec<_>>(), "epoch {epoch}");
        }
        assert_ne!(s.epoch_permutation(0), s.epoch_permutation(1));
        let same = Sampler::new(30, mode, 11).expect("valid");
        assert_eq!(s.batch(12), same.batch(12));
    }

    #[test]
    fn drop_last_and_full_batch() {
        let s = Sampler::new(
            10,
            Sampling::WithoutReplacement {
                batch_size: 3,
                drop_last: true,
            },
            0,
        )
        .expect("valid");
        assert_eq!((s.steps_per_epoch(), s.epoch_of(3)), (3, 1));
        let mut seen: Vec<usize> = (0..3).flat_map(|t| s.batch(t)).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 9);
        let g = Sampler::new(4, Sampling::FullBatch, 0).expect("valid");
        assert_eq!(g.batch(123), vec![0, 1, 2, 3]);
        assert!(Sampler::new(4, Sampling::WithReplacement { batch_size: 0 }, 0).is_err());
        assert!(Sampler::new(
            4,
            Sampling::WithoutReplacement {
                batch_size: 5,
                drop_last: false
            },
            0
        )
        .is_err());
    }
}
