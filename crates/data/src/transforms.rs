//! Dataset transforms: per-feature (flat) or per-channel (image) standardisation, flattening, class subsets and
//! label noise.
//!
//! **Standardisation** (Cohen et al. ICLR 2021, locuslab/edge-of-stability
//! `src/cifar.py`, `center` then `standardize`): with the *training* statistics
//!
//! ```text
//! μ_j = (1/n) Σ_i x_ij,   σ_j = sqrt((1/n) Σ_i (x_ij − μ_j)²)   (numpy std, ddof = 0)
//! x'_ij = (x_ij − μ_j) / σ_j                                     (train and test alike)
//! ```
//!
//! For `x [n, d]` the statistics are **per feature** `j` as above. For image inputs
//! `x [n, C, H, W]` (any rank ≥ 3) they are **per channel** `c`, over samples and
//! positions — what CNN pipelines do (torchvision `Normalize(mean, std)` per channel):
//!
//! ```text
//! μ_c = (1/(n·H·W)) Σ_{i,h,w} x_ichw,   σ_c² = (1/(n·H·W)) Σ_{i,h,w} (x_ichw − μ_c)²
//! ```
//!
//! `[n, T]` token ids must not be standardised (they are rank 2 and would be treated
//! as features; the runner should skip standardisation for id inputs).
//!
//! A constant feature (σ_j = 0, e.g. an always-black border pixel) is only centred
//! (σ_j := 1), where numpy would divide by zero. Cohen et al. fit the statistics on
//! the full 50 000-image training set and then take the first 5 000 images; to match,
//! fit on the full set and call [`Dataset::first_n`] afterwards.
//!
//! **Label noise** (the corrupted-label experiments of Zhang et al. 2017, "Understanding
//! deep learning requires rethinking generalization"): exactly `round(p · n)` samples,
//! chosen uniformly without replacement, get a label drawn uniformly from the *other*
//! `k − 1` classes, so exactly that fraction is wrong. `p = 1` gives random labels.

use candle_core::Tensor;
use rand::seq::index::sample;
use rand::Rng;

use crate::dataset::{matrix, Dataset};
use crate::error::{DataError, Result};
use crate::targets::Targets;
use eos_model::rng::{derived_rng, Purpose};

/// Per-feature (rank-2 `x`) or per-channel (rank ≥ 3 `x`) mean and standard deviation
/// fitted on a training set.
#[derive(Debug, Clone, PartialEq)]
pub struct Standardizer {
    /// Mean of each feature (flat `x`) or channel (image `x`).
    pub mean: Vec<f64>,
    /// Standard deviation of each feature or channel (ddof = 0); constant ones store 1.
    pub std: Vec<f64>,
    /// Consecutive values of a sample that share one statistic: 1 per feature, `H·W`
    /// per channel.
    pub group: usize,
}

impl Standardizer {
    /// Fits the statistics of `train.x` (two passes, in f64): per feature for
    /// `[n, d]`, per channel (axis 1) for `[n, C, …]`.
    pub fn fit(train: &Dataset) -> Result<Self> {
        let (n, d) = (train.len(), train.input_dim());
        if n == 0 || d == 0 {
            return Err(DataError::Invalid(format!(
                "{}: cannot standardise with an empty training set",
                train.name
            )));
        }
        let group = if train.x.rank() >= 3 {
            train.x.dims()[2..].iter().product()
        } else {
            1
        };
        let k = d / group;
        let count = (n * group) as f64;
        let x = train.x_vec()?;
        let mut mean = vec![0.0; k];
        for row in x.chunks_exact(d) {
            for (j, v) in row.iter().enumerate() {
                mean[j / group] += v;
            }
        }
        mean.iter_mut().for_each(|m| *m /= count);
        let mut var = vec![0.0; k];
        for row in x.chunks_exact(d) {
            for (j, v) in row.iter().enumerate() {
                let m = mean[j / group];
                var[j / group] += (v - m) * (v - m);
            }
        }
        let std = var
            .iter()
            .map(|s| {
                let sd = (s / count).sqrt();
                if sd > 0.0 {
                    sd
                } else {
                    1.0
                }
            })
            .collect();
        Ok(Standardizer { mean, std, group })
    }

    /// `(x − μ) / σ` feature- or channel-wise; shape, `y`, labels and name are kept.
    pub fn apply(&self, ds: &Dataset) -> Result<Dataset> {
        let d = ds.input_dim();
        let group = if ds.x.rank() >= 3 {
            ds.x.dims()[2..].iter().product()
        } else {
            1
        };
        if group != self.group || d != self.mean.len() * self.group {
            return Err(DataError::Invalid(format!(
                "{}: x of shape {:?} does not match the standardiser, fitted on {} groups \
                 of {} values",
                ds.name,
                ds.x.dims(),
                self.mean.len(),
                self.group
            )));
        }
        let mut x = ds.x_vec()?;
        for row in x.chunks_exact_mut(d) {
            for (j, v) in row.iter_mut().enumerate() {
                *v = (*v - self.mean[j / group]) / self.std[j / group];
            }
        }
        let x = Tensor::from_vec(x, ds.x.dims(), &candle_core::Device::Cpu)?
            .to_dtype(ds.x.dtype())?
            .to_device(ds.x.device())?;
        Dataset::new(
            x,
            ds.y.clone(),
            ds.labels.clone(),
            ds.num_classes,
            ds.name.clone(),
        )
    }
}

/// Standardises `train` and `test` with the statistics of `train` (Cohen et al.).
pub fn standardize(train: &Dataset, test: &Dataset) -> Result<(Dataset, Dataset)> {
    let s = Standardizer::fit(train)?;
    Ok((s.apply(train)?, s.apply(test)?))
}

/// `[n, d1, d2, …]` → `[n, d1·d2·…]` (row-major, like numpy's `reshape(n, -1)`).
pub fn flatten(t: &Tensor) -> Result<Tensor> {
    Ok(t.flatten_from(1)?)
}

/// The samples whose label is in `classes`, relabelled `classes[i] → i` (so
/// `[3, 5]` makes 3 → 0 and 5 → 1), with targets re-encoded by `targets` over
/// `classes.len()` classes. E.g. `class_subset(ds, &[0, 1], Targets::Signed)` makes a
/// binary ±1 task.
pub fn class_subset(ds: &Dataset, classes: &[u32], targets: Targets) -> Result<Dataset> {
    let (labels, k) = ds.class_labels()?;
    if let Some(&c) = classes.iter().find(|&&c| c as usize >= k) {
        return Err(DataError::Invalid(format!(
            "{}: class {c} requested but the dataset has {k} classes",
            ds.name
        )));
    }
    for (i, c) in classes.iter().enumerate() {
        if classes[..i].contains(c) {
            return Err(DataError::Invalid(format!(
                "{}: class {c} listed twice in the class subset",
                ds.name
            )));
        }
    }
    let mut keep = Vec::new();
    let mut new_labels = Vec::new();
    for (i, l) in labels.iter().enumerate() {
        if let Some(pos) = classes.iter().position(|c| c == l) {
            keep.push(i);
            new_labels.push(pos as u32);
        }
    }
    let sub = ds.subset(&keep)?;
    relabel(&sub, new_labels, classes.len(), targets)
}

/// Replaces the labels of exactly `round(fraction · n)` samples (chosen with `seed`)
/// by a different class drawn uniformly, and re-encodes the targets.
pub fn label_noise(ds: &Dataset, fraction: f64, seed: u64, targets: Targets) -> Result<Dataset> {
    if !(0.0..=1.0).contains(&fraction) {
        return Err(DataError::Invalid(format!(
            "{}: label-noise fraction {fraction} outside [0, 1]",
            ds.name
        )));
    }
    let (labels, k) = ds.class_labels()?;
    if k < 2 {
        return Err(DataError::Invalid(format!(
            "{}: label noise needs at least 2 classes, found {k}",
            ds.name
        )));
    }
    let mut new_labels = labels.to_vec();
    let n = new_labels.len();
    let m = (fraction * n as f64).round() as usize;
    let mut rng = derived_rng(seed, Purpose::LabelNoise, 0);
    let mut chosen = sample(&mut rng, n, m).into_vec();
    chosen.sort_unstable();
    for i in chosen {
        // Uniform over the k − 1 other classes: draw from 0..k−1, skip the true one.
        let r = rng.random_range(0..k as u32 - 1);
        new_labels[i] = if r >= new_labels[i] { r + 1 } else { r };
    }
    relabel(ds, new_labels, k, targets)
}

/// `ds` with new labels over `k` classes and targets re-encoded.
fn relabel(ds: &Dataset, labels: Vec<u32>, k: usize, targets: Targets) -> Result<Dataset> {
    let y = targets.encode(&labels, k, &ds.name)?;
    let y = matrix(y, labels.len(), targets.width(k), &ds.name, "y")?
        .to_dtype(ds.y.dtype())?
        .to_device(ds.y.device())?;
    Dataset::new(ds.x.clone(), y, Some(labels), Some(k), ds.name.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    /// Feature 0: 1..=5 (mean 3, std √2); feature 1: constant 7; feature 2: powers of 10.
    fn data() -> Dataset {
        let mut x = Vec::new();
        for i in 0..5 {
            x.extend([1.0 + i as f64, 7.0, 10f64.powi(i)]);
        }
        Dataset::classification(x, 3, vec![0, 1, 2, 1, 0], 3, Targets::OneHot, "s")
            .expect("consistent")
    }

    #[test]
    fn standardised_train_features_have_mean_0_std_1() {
        let ds = data();
        let s = Standardizer::fit(&ds).expect("non-empty");
        assert!((s.mean[0] - 3.0).abs() < 1e-15 && (s.std[0] - 2f64.sqrt()).abs() < 1e-15);
        assert_eq!((s.mean[1], s.std[1]), (7.0, 1.0)); // constant: centred only
        let z = s.apply(&ds).expect("same width").x_vec().expect("f64");
        for j in [0, 2] {
            let col: Vec<f64> = z.iter().skip(j).step_by(3).copied().collect();
            let m = col.iter().sum::<f64>() / 5.0;
            let v = col.iter().map(|c| (c - m) * (c - m)).sum::<f64>() / 5.0;
            // f64 round-off of a 5-sample two-pass computation: 1e-12 absolute.
            assert!(
                m.abs() < 1e-12 && (v - 1.0).abs() < 1e-12,
                "feature {j}: {m} {v}"
            );
        }
        assert!(z.iter().skip(1).step_by(3).all(|&c| c == 0.0));
    }

    #[test]
    fn image_inputs_are_standardised_per_channel() {
        // 2 images of 2 channels of 2x1 pixels: channel 0 holds 1, 3 | 5, 7
        // (mean 4, std √5), channel 1 is constant 2 (centred only).
        let x = Tensor::from_vec(
            vec![1.0, 3.0, 2.0, 2.0, 5.0, 7.0, 2.0, 2.0],
            (2, 2, 2, 1),
            &Device::Cpu,
        )
        .expect("8 values");
        let y = Tensor::zeros((2, 1), DType::F64, &Device::Cpu).expect("alloc");
        let ds = Dataset::new(x, y, None, None, "img").expect("consistent");
        let s = Standardizer::fit(&ds).expect("non-empty");
        assert_eq!((s.mean.clone(), s.group), (vec![4.0, 2.0], 2));
        assert!((s.std[0] - 5f64.sqrt()).abs() < 1e-15 && s.std[1] == 1.0);
        let z = s.apply(&ds).expect("same shape");
        assert_eq!(z.x.dims(), &[2, 2, 2, 1]);
        let r5 = 5f64.sqrt();
        let want = [-3.0 / r5, -1.0 / r5, 0.0, 0.0, 1.0 / r5, 3.0 / r5, 0.0, 0.0];
        let got = z.x_vec().expect("f64");
        assert!(
            got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-15),
            "{got:?}"
        );
        // A flat set of the same width does not match a per-channel standardiser.
        let flat = Dataset::regression(vec![0.0; 4], 4, vec![0.0], 1, "f").expect("ok");
        assert!(s.apply(&flat).is_err());
    }

    #[test]
    fn test_set_uses_training_statistics() {
        let train = data();
        let test =
            Dataset::regression(vec![3.0, 8.0, 0.0], 3, vec![0.0], 1, "t").expect("consistent");
        let (_, t) = standardize(&train, &test).expect("same width");
        let s = Standardizer::fit(&train).expect("non-empty");
        let z = t.x_vec().expect("f64");
        assert_eq!(z[0], 0.0); // 3 is the training mean
        assert_eq!(z[1], 1.0); // (8 − 7) / 1
        assert!((z[2] + s.mean[2] / s.std[2]).abs() < 1e-15);
    }

    #[test]
    fn flatten_merges_trailing_dims() {
        let t = Tensor::arange(0f64, 24.0, &Device::Cpu)
            .and_then(|t| t.reshape((2, 3, 4)))
            .expect("24 elements");
        assert_eq!(flatten(&t).expect("rank 3").dims(), &[2, 12]);
    }

    #[test]
    fn class_subset_relabels_in_the_given_order() {
        let ds = data();
        let b = class_subset(&ds, &[2, 0], Targets::Signed).expect("classes exist");
        assert_eq!(b.labels.as_deref(), Some(&[1, 0, 1][..]));
        assert_eq!(b.y_vec().expect("f64"), vec![1.0, -1.0, 1.0]);
        assert_eq!(b.x_vec().expect("f64")[..3], [1.0, 7.0, 1.0]);
        assert_eq!(b.num_classes, Some(2));
        assert!(class_subset(&ds, &[3], Targets::OneHot).is_err());
        assert!(class_subset(&ds, &[1, 1], Targets::OneHot).is_err());
    }

    #[test]
    fn label_noise_changes_exactly_the_fraction_and_is_seeded() {
        let labels: Vec<u32> = (0..1000).map(|i| i % 10).collect();
        let ds =
            Dataset::classification(vec![0.0; 1000], 1, labels.clone(), 10, Targets::OneHot, "n")
                .expect("consistent");
        let a = label_noise(&ds, 0.3, 5, Targets::OneHot).expect("valid fraction");
        let b = label_noise(&ds, 0.3, 5, Targets::OneHot).expect("valid fraction");
        let c = label_noise(&ds, 0.3, 6, Targets::OneHot).expect("valid fraction");
        let la = a.labels.clone().expect("labels");
        let changed = la.iter().zip(&labels).filter(|(x, y)| x != y).count();
        assert_eq!(changed, 300);
        assert!(la.iter().all(|&l| l < 10));
        assert_eq!(a.labels, b.labels);
        assert_ne!(a.labels, c.labels);
        assert_eq!(a.y.dtype(), DType::F64);
        assert!(label_noise(&ds, 1.5, 0, Targets::OneHot).is_err());
    }
}
