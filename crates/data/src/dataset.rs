//! `Dataset`: a supervised dataset as two candle tensors plus optional class labels.
//!
//! ```text
//! x       [n, d]  inputs, one sample per row            (f64 on the CPU as built here)
//!         [n, C, H, W] images (NCHW), [n, T] token ids  (any [n, …] of rank ≥ 2)
//! y       [n, k]  targets the loss compares f(x) with   (same dtype/device as x)
//!         [n, T, V] per-position one-hot targets        (any [n, …] of rank ≥ 2)
//! labels  n       class of each sample, when classification
//! ```
//!
//! Every operation here (subsets, casts, samplers' index selection) acts on the leading
//! sample axis only, so it works for any rank; [`Dataset::input_dim`] is the number of
//! values per sample and [`Dataset::sample_shape`] the shape of one sample.
//!
//! Everything in this crate builds datasets in f64 on the CPU (the reference precision
//! of DESIGN.md); the runner casts once with [`Dataset::to`] to its dtype and device.
//! Subsets keep `num_classes` and the name, so a first-N subset of a 10-class set is
//! still a 10-class set even if some class is absent from it.

use candle_core::{DType, Device, Tensor};

use crate::error::{DataError, Result};
use crate::targets::{check_labels, Targets};

/// Which part of a dataset that ships as a train/test pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// The training set.
    Train,
    /// The test set.
    Test,
}

/// A supervised dataset: inputs `x [n, …]`, targets `y [n, …]`, optional class labels.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Inputs, `[n, d]` (or `[n, C, H, W]`, `[n, T]`, …).
    pub x: Tensor,
    /// Targets, `[n, k]` (one-hot, ±1 or regression values; or `[n, T, V]`, …).
    pub y: Tensor,
    /// The class of each sample, for classification data.
    pub labels: Option<Vec<u32>>,
    /// The number of classes, for classification data.
    pub num_classes: Option<usize>,
    /// A short human-readable name, e.g. `fashion-mnist/train`.
    pub name: String,
}

impl Dataset {
    /// Builds a dataset from tensors, checking that `x` and `y` have rank ≥ 2 and the
    /// same number of samples (leading axis), and that labels (if any) agree with them.
    pub fn new(
        x: Tensor,
        y: Tensor,
        labels: Option<Vec<u32>>,
        num_classes: Option<usize>,
        name: impl Into<String>,
    ) -> Result<Self> {
        let name = name.into();
        let nx = samples(&x, &name, "x", "[n, d] or [n, …]")?;
        let ny = samples(&y, &name, "y", "[n, k] or [n, …]")?;
        if nx != ny {
            return Err(DataError::CountMismatch {
                inputs: format!("{name}/x"),
                n_inputs: nx,
                labels: format!("{name}/y"),
                n_labels: ny,
            });
        }
        if let Some(l) = &labels {
            if l.len() != nx {
                return Err(DataError::CountMismatch {
                    inputs: format!("{name}/x"),
                    n_inputs: nx,
                    labels: format!("{name}/labels"),
                    n_labels: l.len(),
                });
            }
            if let Some(k) = num_classes {
                check_labels(l, k, &name)?;
            }
        }
        Ok(Dataset {
            x,
            y,
            labels,
            num_classes,
            name,
        })
    }

    /// A classification dataset from row-major inputs (`d` features per row) and class
    /// labels, with targets encoded by `targets`. f64 on the CPU.
    pub fn classification(
        x: Vec<f64>,
        d: usize,
        labels: Vec<u32>,
        num_classes: usize,
        targets: Targets,
        name: impl Into<String>,
    ) -> Result<Self> {
        let name = name.into();
        let n = labels.len();
        let x = matrix(x, n, d, &name, "x")?;
        let k = targets.width(num_classes);
        let y = targets.encode(&labels, num_classes, &name)?;
        let y = matrix(y, n, k, &name, "y")?;
        Dataset::new(x, y, Some(labels), Some(num_classes), name)
    }

    /// A regression dataset from row-major inputs (`d` features) and targets (`k`
    /// outputs). f64 on the CPU.
    pub fn regression(
        x: Vec<f64>,
        d: usize,
        y: Vec<f64>,
        k: usize,
        name: impl Into<String>,
    ) -> Result<Self> {
        let name = name.into();
        let n = y.len().checked_div(k).unwrap_or(0);
        let x = matrix(x, n, d, &name, "x")?;
        let y = matrix(y, n, k, &name, "y")?;
        Dataset::new(x, y, None, None, name)
    }

    /// Number of samples `n`.
    pub fn len(&self) -> usize {
        self.x.dims().first().copied().unwrap_or(0)
    }

    /// Whether the dataset has no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of input values per sample: `d` for `[n, d]`, `C·H·W` for
    /// `[n, C, H, W]`, `T` for `[n, T]`.
    pub fn input_dim(&self) -> usize {
        self.x.dims().iter().skip(1).product()
    }

    /// The shape of one input sample: `x`'s dims without the leading `n`.
    pub fn sample_shape(&self) -> &[usize] {
        self.x.dims().get(1..).unwrap_or(&[])
    }

    /// Number of target columns: the size of `y`'s last axis (`k` for `[n, k]`, `V` for
    /// `[n, T, V]`).
    pub fn target_dim(&self) -> usize {
        if self.y.rank() < 2 {
            return 0;
        }
        self.y.dims().last().copied().unwrap_or(0)
    }

    /// The same dataset with `x` and `y` cast to `dtype` and moved to `device`.
    pub fn to(&self, dtype: DType, device: &Device) -> Result<Self> {
        Ok(Dataset {
            x: self.x.to_dtype(dtype)?.to_device(device)?,
            y: self.y.to_dtype(dtype)?.to_device(device)?,
            labels: self.labels.clone(),
            num_classes: self.num_classes,
            name: self.name.clone(),
        })
    }

    /// The samples at `indices`, in that order (repeats allowed).
    pub fn subset(&self, indices: &[usize]) -> Result<Self> {
        let n = self.len();
        if let Some(&bad) = indices.iter().find(|&&i| i >= n) {
            return Err(DataError::Invalid(format!(
                "{}: subset index {bad} out of range for {n} samples",
                self.name
            )));
        }
        let idx: Vec<u32> = indices
            .iter()
            .map(|&i| u32::try_from(i).expect("index < n, and n fits a tensor dimension"))
            .collect();
        let idx = Tensor::from_vec(idx, indices.len(), self.x.device())?;
        Ok(Dataset {
            x: self.x.index_select(&idx, 0)?,
            y: self.y.index_select(&idx, 0)?,
            labels: self
                .labels
                .as_ref()
                .map(|l| indices.iter().map(|&i| l[i]).collect()),
            num_classes: self.num_classes,
            name: self.name.clone(),
        })
    }

    /// The first `n` samples (Cohen et al. train on the first 5 000 CIFAR-10 images:
    /// `take_first` in locuslab/edge-of-stability `src/data.py`). Fails if `n > len()`.
    pub fn first_n(&self, n: usize) -> Result<Self> {
        if n > self.len() {
            return Err(DataError::Invalid(format!(
                "{}: first_n({n}) of a dataset with {} samples",
                self.name,
                self.len()
            )));
        }
        Ok(Dataset {
            x: self.x.narrow(0, 0, n)?,
            y: self.y.narrow(0, 0, n)?,
            labels: self.labels.as_ref().map(|l| l[..n].to_vec()),
            num_classes: self.num_classes,
            name: self.name.clone(),
        })
    }

    /// The same samples with `y` re-encoded from the labels. Fails for a dataset
    /// without labels.
    pub fn with_targets(&self, targets: Targets) -> Result<Self> {
        let (labels, k) = self.class_labels()?;
        let y = targets.encode(labels, k, &self.name)?;
        let y = matrix(y, self.len(), targets.width(k), &self.name, "y")?
            .to_dtype(self.y.dtype())?
            .to_device(self.y.device())?;
        Dataset::new(
            self.x.clone(),
            y,
            self.labels.clone(),
            self.num_classes,
            self.name.clone(),
        )
    }

    /// The labels and class count, or an error naming the dataset if it has none.
    pub fn class_labels(&self) -> Result<(&[u32], usize)> {
        match (&self.labels, self.num_classes) {
            (Some(l), Some(k)) => Ok((l, k)),
            _ => Err(DataError::Invalid(format!(
                "{}: needs class labels, but this dataset has regression targets only",
                self.name
            ))),
        }
    }

    /// The inputs as a row-major f64 buffer (copied to the CPU).
    pub fn x_vec(&self) -> Result<Vec<f64>> {
        to_vec(&self.x)
    }

    /// The targets as a row-major f64 buffer (copied to the CPU).
    pub fn y_vec(&self) -> Result<Vec<f64>> {
        to_vec(&self.y)
    }
}

/// A `[rows, cols]` f64 CPU tensor from a row-major buffer, checking its length.
pub(crate) fn matrix(
    data: Vec<f64>,
    rows: usize,
    cols: usize,
    name: &str,
    what: &str,
) -> Result<Tensor> {
    if data.len() != rows * cols {
        return Err(DataError::Invalid(format!(
            "{name}: {what} has {} values, expected {rows} x {cols} = {}",
            data.len(),
            rows * cols
        )));
    }
    Ok(Tensor::from_vec(data, (rows, cols), &Device::Cpu)?)
}

/// The leading-axis length of `t`, or an error if its rank is below 2.
fn samples(t: &Tensor, name: &str, what: &str, expected: &str) -> Result<usize> {
    match t.dims() {
        [n, _, ..] => Ok(*n),
        dims => Err(DataError::Invalid(format!(
            "{name}: {what} must be {expected} (rank ≥ 2), got {dims:?}"
        ))),
    }
}

/// A tensor flattened to a row-major f64 buffer on the CPU.
fn to_vec(t: &Tensor) -> Result<Vec<f64>> {
    Ok(t.to_device(&Device::Cpu)?
        .to_dtype(DType::F64)?
        .flatten_all()?
        .to_vec1::<f64>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Dataset {
        let x = vec![0., 1., 10., 11., 20., 21., 30., 31.];
        Dataset::classification(x, 2, vec![0, 1, 2, 1], 3, Targets::OneHot, "tiny")
            .expect("consistent sizes")
    }

    #[test]
    fn subset_and_first_n_select_rows_and_labels() {
        let ds = tiny();
        assert_eq!((ds.len(), ds.input_dim(), ds.target_dim()), (4, 2, 3));
        let s = ds.subset(&[3, 0, 3]).expect("indices in range");
        assert_eq!(s.x_vec().expect("f64"), vec![30., 31., 0., 1., 30., 31.]);
        assert_eq!(s.labels.as_deref(), Some(&[1, 0, 1][..]));
        assert_eq!(s.y_vec().expect("f64")[..3], [0., 1., 0.]);
        let f = ds.first_n(2).expect("2 <= 4");
        assert_eq!(f.x_vec().expect("f64"), vec![0., 1., 10., 11.]);
        assert_eq!(f.num_classes, Some(3));
        assert!(ds.subset(&[4]).is_err());
        assert!(ds.first_n(5).is_err());
    }

    #[test]
    fn to_casts_and_with_targets_reencodes() {
        let ds = tiny().to(DType::F32, &Device::Cpu).expect("cast");
        assert_eq!(ds.x.dtype(), DType::F32);
        let c = ds
            .with_targets(Targets::CenteredOneHot)
            .expect("has labels");
        assert_eq!(c.y.dtype(), DType::F32);
        let row0 = c.y_vec().expect("f64");
        assert!((row0[0] - 2.0 / 3.0).abs() < 1e-7 && (row0[1] + 1.0 / 3.0).abs() < 1e-7);
    }

    #[test]
    fn mismatched_rows_are_rejected() {
        let x = Tensor::zeros((3, 2), DType::F64, &Device::Cpu).expect("alloc");
        let y = Tensor::zeros((2, 1), DType::F64, &Device::Cpu).expect("alloc");
        assert!(matches!(
            Dataset::new(x, y, None, None, "m"),
            Err(DataError::CountMismatch {
                n_inputs: 3,
                n_labels: 2,
                ..
            })
        ));
    }
}
