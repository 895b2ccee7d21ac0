//! From a pair of stored arrays (`x`, `y`) to a [`Dataset`]: the rules shared by the
//! `.npy` and safetensors loaders.
//!
//! ```text
//! x  [n, …]            flattened row-major to [n, d]; [n] becomes [n, 1];
//!                      values as stored (no implicit pixel scaling), must be finite
//! y  integer [n]/[n,1] class labels 0..k−1, k = max + 1, targets encoded as asked
//! y  float   [n]/[n,k] targets as stored ([n] becomes [n, 1]), must be finite;
//!                      rows that are all exactly one-hot (k ≥ 2) or all ±1 (k = 1)
//!                      also give labels (argmax, or +1 → 1 / −1 → 0)
//! ```

use std::path::Path;

use crate::dataset::{matrix, Dataset};
use crate::error::{DataError, Result};
use crate::read::check_finite;
use crate::targets::Targets;

/// The most classes integer labels may name: labels are `0..MAX_CLASSES`. One-hot
/// targets take `n · (max label + 1) · 8` bytes, so without a cap a single stored
/// label of 2³¹ asks for 16 GiB per sample (a fuzz finding).
pub const MAX_CLASSES: usize = 1 << 16;

/// A stored array converted to f64, with its shape and whether it held integers.
#[derive(Debug, Clone)]
pub(crate) struct RawArray {
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its elements, row-major, as f64.
    pub values: Vec<f64>,
    /// Whether the stored dtype was an integer type.
    pub integer: bool,
}

/// Builds a dataset from stored `x` and `y` arrays of `path` (see the module docs).
pub(crate) fn dataset_from_arrays(
    x: RawArray,
    x_src: (&Path, &str),
    y: RawArray,
    y_src: (&Path, &str),
    targets: Targets,
    name: &str,
) -> Result<Dataset> {
    let (n, d) = rows_cols(&x.shape, x_src)?;
    let (ny, k) = rows_cols(&y.shape, y_src)?;
    if n != ny {
        return Err(DataError::CountMismatch {
            inputs: format!("{} `{}`", x_src.0.display(), x_src.1),
            n_inputs: n,
            labels: format!("{} `{}`", y_src.0.display(), y_src.1),
            n_labels: ny,
        });
    }
    check_finite(&x.values, x_src.0, x_src.1)?;
    if y.integer {
        if k != 1 {
            return Err(DataError::header(
                y_src.0,
                format!(
                    "integer `{}` of shape {:?}: expected class labels of shape [n] or [n, 1]",
                    y_src.1, y.shape
                ),
            ));
        }
        let mut labels = Vec::with_capacity(n);
        for (index, &v) in y.values.iter().enumerate() {
            if v < 0.0 || v >= MAX_CLASSES as f64 {
                return Err(DataError::BadLabel {
                    source_name: format!("{} `{}`", y_src.0.display(), y_src.1),
                    index,
                    label: v as i64,
                    num_classes: MAX_CLASSES,
                });
            }
            labels.push(v as u32);
        }
        let num_classes = labels.iter().max().map_or(0, |&m| m as usize + 1);
        return Dataset::classification(x.values, d, labels, num_classes, targets, name);
    }
    check_finite(&y.values, y_src.0, y_src.1)?;
    if k == 0 {
        return Err(DataError::header(
            y_src.0,
            format!(
                "`{}` of shape {:?} has no target columns; expected [n] or [n, k] with k ≥ 1",
                y_src.1, y.shape
            ),
        ));
    }
    let inferred = infer_labels(&y.values, n, k);
    let xt = matrix(x.values, n, d, name, "x")?;
    let yt = matrix(y.values, n, k, name, "y")?;
    match inferred {
        Some((labels, classes)) => Dataset::new(xt, yt, Some(labels), Some(classes), name),
        None => Dataset::new(xt, yt, None, None, name),
    }
}

/// `(rows, columns)` of an array read as `[n, …]` flattened to a matrix.
fn rows_cols(shape: &[usize], src: (&Path, &str)) -> Result<(usize, usize)> {
    match shape {
        [] => Err(DataError::header(
            src.0,
            format!("`{}` is a scalar; expected an array of shape [n, …]", src.1),
        )),
        [n] => Ok((*n, 1)),
        // An empty array may have any trailing shape: the product must not overflow.
        [n, rest @ ..] => rest
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .map(|d| (*n, d))
            .ok_or_else(|| {
                DataError::header(
                    src.0,
                    format!(
                        "`{}` of shape {shape:?}: its rows hold more values than any file can",
                        src.1
                    ),
                )
            }),
    }
}

/// Labels from float targets that are exactly one-hot rows or exactly ±1 scalars.
pub(crate) fn infer_labels(y: &[f64], n: usize, k: usize) -> Option<(Vec<u32>, usize)> {
    if n == 0 || k == 0 {
        return None;
    }
    if k == 1 {
        let labels: Option<Vec<u32>> = y
            .iter()
            .map(|&v| {
                if v == 1.0 {
                    Some(1)
                } else if v == -1.0 {
                    Some(0)
                } else {
                    None
                }
            })
            .collect();
        return labels.map(|l| (l, 2));
    }
    let labels: Option<Vec<u32>> = y
        .chunks_exact(k)
        .map(|row| {
            let ones = row.iter().filter(|&&v| v == 1.0).count();
            let zeros = row.iter().filter(|&&v| v == 0.0).count();
            (ones == 1 && zeros == k - 1)
                .then(|| row.iter().position(|&v| v == 1.0).map(|c| c as u32))
                .flatten()
        })
        .collect();
    labels.map(|l| (l, k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_hot_and_signed_float_targets_give_labels() {
        assert_eq!(infer_labels(&[0., 1., 1., 0.], 2, 2), Some((vec![1, 0], 2)));
        assert_eq!(infer_labels(&[-1., 1., 1.], 3, 1), Some((vec![0, 1, 1], 2)));
        assert_eq!(infer_labels(&[0.5, 0.5], 1, 2), None);
        assert_eq!(infer_labels(&[0.3], 1, 1), None);
    }

    /// Fuzz finding: integer labels up to u32::MAX were accepted, so a file with the
    /// single label 2³¹ made the one-hot encoder allocate 16 GiB.
    #[test]
    fn labels_beyond_max_classes_are_rejected_before_encoding() {
        let p = Path::new("big-label.npz");
        let x = || RawArray {
            shape: vec![2, 1],
            values: vec![0.5, 1.5],
            integer: false,
        };
        let y = |top: f64| RawArray {
            shape: vec![2],
            values: vec![0.0, top],
            integer: true,
        };
        let err = dataset_from_arrays(
            x(),
            (p, "x"),
            y(2_147_483_648.0),
            (p, "y"),
            Targets::OneHot,
            "t",
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                DataError::BadLabel {
                    index: 1,
                    label: 2_147_483_648,
                    num_classes: MAX_CLASSES,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("big-label.npz `y`"), "{err}");
        let top = (MAX_CLASSES - 1) as f64;
        let ds =
            dataset_from_arrays(x(), (p, "x"), y(top), (p, "y"), Targets::OneHot, "t").unwrap();
        assert_eq!(
            (ds.target_dim(), ds.labels.as_deref()),
            (MAX_CLASSES, Some(&[0, 65_535][..]))
        );
    }

    /// Fuzz finding (eos-fuzz npz, seed 20261207, input 10993 and 11 more): a float `y`
    /// of shape `[n, 0]` panicked in the label inference ("chunk size must be
    /// non-zero").
    #[test]
    fn float_targets_without_columns_are_rejected() {
        assert_eq!(infer_labels(&[], 2, 0), None);
        let p = Path::new("nocols.npz");
        let x = RawArray {
            shape: vec![2, 1],
            values: vec![0.5, 1.5],
            integer: false,
        };
        let y = RawArray {
            shape: vec![2, 0],
            values: vec![],
            integer: false,
        };
        let err = dataset_from_arrays(x, (p, "x"), y, (p, "y"), Targets::OneHot, "t").unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, DataError::BadHeader { .. }), "{msg}");
        assert!(
            msg.contains("nocols.npz") && msg.contains("`y` of shape [2, 0]"),
            "{msg}"
        );
    }

    /// Fuzz finding (eos-fuzz npz, seed 1, input 20497): an empty `x` of shape
    /// `[0, 2³², 2³²]` (a valid npy: 0 elements) overflowed the row length.
    #[test]
    fn empty_arrays_with_overflowing_rows_are_rejected() {
        let p = Path::new("empty.npz");
        let x = RawArray {
            shape: vec![0, 1 << 32, 1 << 32],
            values: vec![],
            integer: false,
        };
        let y = RawArray {
            shape: vec![0],
            values: vec![],
            integer: true,
        };
        let err = dataset_from_arrays(x, (p, "x"), y, (p, "y"), Targets::OneHot, "t").unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, DataError::BadHeader { .. }), "{msg}");
        assert!(
            msg.contains("empty.npz") && msg.contains("`x` of shape [0, 4294967296, 4294967296]"),
            "{msg}"
        );
    }
}
