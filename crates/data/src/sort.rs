//! The sorting task: a sequence of `T` tokens from a vocabulary of `V`, to be output
//! in ascending order — a generated sequence-to-sequence task for transformers (the
//! "sort" task of minGPT / Karpathy's `demo.ipynb`, here without a prompt half: every
//! position predicts the token of the sorted sequence at that position).
//!
//! ```text
//! s_t ~ Unif{0, …, V−1}  i.i.d., t = 0..T−1
//! x[i, t]    = s_t                         ids as whole numbers in x's float dtype
//!                                          (what `embedding` reads: net/embedding.rs)
//! y[i, t, v] = 1[v = sort(s)_t]            one-hot [n, T, V]: cross-entropy at every
//!                                          position (mean over n and T)
//! ```
//!
//! A [`Generator`]: a fixed dataset is a pure function of its seed
//! ([`SortConfig::dataset`], purpose `Dataset`), and [`crate::Stream`] gives the online
//! variant (purpose `Stream`, batch `t` from `(seed, t)` alone). The task has no fixed
//! parameters, so the seed only picks the sequences. There are no per-sample class
//! labels (`labels = None`): the targets are per position.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use candle_core::{Device, Tensor};

use crate::dataset::Dataset;
use crate::error::{DataError, Result};
use crate::generator::Generator;

/// The sorting task's sequence length and vocabulary; a [`Generator`]. As config keys
/// (`[data] kind = "sort"`, both required) it is checked by [`SortTask::new`] when built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SortTask {
    /// Sequence length `T` (≥ 1).
    pub len: usize,
    /// Vocabulary size `V` (≥ 2).
    pub vocab: usize,
}

/// Configuration of a fixed sorting dataset (`[data] kind = "sort"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SortConfig {
    /// Number of sequences `n`.
    pub n: usize,
    /// Sequence length `T`, in tokens (≥ 1).
    pub len: usize,
    /// Vocabulary size `V`: tokens are ids `0..V` (≥ 2).
    pub vocab: usize,
    /// Seed of the sequences (derived stream `(seed, Dataset, 0)`).
    pub seed: u64,
}

impl SortConfig {
    /// The generator of this configuration (checked).
    pub fn task(&self) -> Result<SortTask> {
        SortTask::new(self.len, self.vocab)
    }

    /// The `n` sequences of this configuration: a pure function of `(len, vocab, seed)`.
    pub fn dataset(&self) -> Result<Dataset> {
        self.task()?.dataset(self.n, self.seed)
    }
}

impl SortTask {
    /// A sorting task of `len` tokens over `vocab` ids. Fails for `len = 0` or
    /// `vocab < 2`.
    pub fn new(len: usize, vocab: usize) -> Result<Self> {
        if len == 0 || vocab < 2 {
            return Err(DataError::Invalid(format!(
                "sort task needs len >= 1 and vocab >= 2, got len {len} and vocab {vocab}"
            )));
        }
        Ok(SortTask { len, vocab })
    }
}

impl Generator for SortTask {
    fn sample(&self, n: usize, rng: &mut ChaCha8Rng) -> Result<Dataset> {
        let SortTask { len, vocab } = SortTask::new(self.len, self.vocab)?;
        let vocab_u32 = u32::try_from(vocab).map_err(|_| {
            DataError::Invalid(format!("sort task vocab {vocab} does not fit u32 ids"))
        })?;
        let mut x = Vec::with_capacity(n * len);
        let mut y = vec![0.0; n * len * vocab];
        let mut seq = vec![0u32; len];
        for y_i in y.chunks_exact_mut(len * vocab) {
            seq.iter_mut()
                .for_each(|s| *s = rng.random_range(0..vocab_u32));
            x.extend(seq.iter().map(|&s| f64::from(s)));
            seq.sort_unstable();
            for (t, &s) in seq.iter().enumerate() {
                y_i[t * vocab + s as usize] = 1.0;
            }
        }
        let name = format!("sort(T={len}, V={vocab})");
        let x = Tensor::from_vec(x, (n, len), &Device::Cpu)?;
        let y = Tensor::from_vec(y, (n, len, vocab), &Device::Cpu)?;
        Dataset::new(x, y, None, None, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::Stream;

    fn cfg(seed: u64) -> SortConfig {
        SortConfig {
            n: 50,
            len: 6,
            vocab: 5,
            seed,
        }
    }

    /// The ids of each row of `x [n, T]` and the argmax of each position of `y`.
    fn rows(ds: &Dataset) -> (Vec<Vec<f64>>, Vec<Vec<Vec<f64>>>) {
        (
            ds.x.to_vec2::<f64>().expect("rank 2"),
            ds.y.to_vec3::<f64>().expect("rank 3"),
        )
    }

    #[test]
    fn y_is_the_one_hot_sorted_x() {
        let ds = cfg(3).dataset().expect("valid");
        assert_eq!((ds.x.dims(), ds.y.dims()), (&[50, 6][..], &[50, 6, 5][..]));
        assert_eq!((ds.input_dim(), ds.target_dim()), (6, 5));
        let (x, y) = rows(&ds);
        let mut seen = [false; 5];
        for (xi, yi) in x.iter().zip(&y) {
            let mut sorted: Vec<f64> = xi.clone();
            sorted.sort_by(f64::total_cmp);
            for (t, pos) in yi.iter().enumerate() {
                let ones: Vec<usize> = (0..5).filter(|&v| pos[v] == 1.0).collect();
                assert_eq!(ones, vec![sorted[t] as usize], "position {t}");
                assert_eq!(pos.iter().sum::<f64>(), 1.0);
            }
            for &v in xi {
                assert!(v.fract() == 0.0 && (0.0..5.0).contains(&v), "id {v}");
                seen[v as usize] = true;
            }
        }
        assert!(seen.iter().all(|&s| s), "300 draws cover all 5 ids");
        assert_eq!(ds.labels, None);
    }

    #[test]
    fn deterministic_per_seed_and_seeds_differ() {
        let a = cfg(3).dataset().expect("valid");
        let b = cfg(3).dataset().expect("valid");
        let c = cfg(4).dataset().expect("valid");
        assert_eq!(a.x_vec().expect("f64"), b.x_vec().expect("f64"));
        assert_eq!(a.y_vec().expect("f64"), b.y_vec().expect("f64"));
        assert_ne!(a.x_vec().expect("f64"), c.x_vec().expect("f64"));
    }

    #[test]
    fn stream_batches_are_seekable_and_bad_sizes_rejected() {
        let task = cfg(0).task().expect("valid");
        let s = Stream::new(task, 8, 11).expect("valid");
        let b3 = s.batch(3).expect("valid");
        assert_eq!(b3.x.dims(), &[8, 6]);
        assert_eq!(
            b3.x_vec().expect("f64"),
            Stream::new(task, 8, 11)
                .and_then(|s| s.batch(3))
                .and_then(|b| b.x_vec())
                .expect("valid")
        );
        assert_ne!(
            b3.x_vec().expect("f64"),
            s.batch(4).and_then(|b| b.x_vec()).expect("valid")
        );
        assert!(SortTask::new(0, 5).is_err());
        assert!(SortTask::new(4, 1).is_err());
        let ok: SortConfig = serde_json::from_str(r#"{"n": 1, "len": 2, "vocab": 3, "seed": 0}"#)
            .expect("all fields");
        assert_eq!(ok.len, 2);
        let bad = serde_json::from_str::<SortConfig>(
            r#"{"n": 1, "len": 2, "vocab": 3, "seed": 0, "extra": 1}"#,
        );
        assert!(bad.is_err());
    }
}
