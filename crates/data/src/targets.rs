//! Target encodings: how class labels become the regression targets `y` a loss sees.
//!
//! For labels `c_i ∈ {0, …, k−1}`:
//!
//! ```text
//! OneHot          y_i = e_{c_i}                  [n, k]   mse, cross_entropy
//! CenteredOneHot  y_i = e_{c_i} − (1/k) 1        [n, k]   mse with zero-mean targets
//! Signed          y_i = +1 if c_i = 1 else −1    [n, 1]   logistic (k = 2 only)
//! ```
//!
//! One-hot is the default and is what Cohen et al. (ICLR 2021) use for MSE
//! (`make_labels` in locuslab/edge-of-stability `src/cifar.py`); `Signed` is the
//! `y ∈ {−1, +1}` convention of the logistic loss in DESIGN.md's interchange format.
//! Regression targets (teachers) are not encoded: they are `y` itself.

use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};

/// How class labels are turned into targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Targets {
    /// `e_c`, shape `[n, k]` (the default).
    #[default]
    OneHot,
    /// `e_c − 1/k`, shape `[n, k]`: each row sums to zero.
    CenteredOneHot,
    /// `±1`, shape `[n, 1]`: class 1 is `+1`, class 0 is `−1`. Needs `k = 2`.
    Signed,
}

impl Targets {
    /// Number of target columns for `num_classes` classes.
    pub fn width(self, num_classes: usize) -> usize {
        match self {
            Targets::OneHot | Targets::CenteredOneHot => num_classes,
            Targets::Signed => 1,
        }
    }

    /// Encodes `labels` as a row-major `[n, width]` buffer.
    ///
    /// Fails when a label is `>= num_classes`, or for `Signed` when `num_classes != 2`.
    pub fn encode(self, labels: &[u32], num_classes: usize, name: &str) -> Result<Vec<f64>> {
        if num_classes == 0 {
            return Err(DataError::Invalid(format!(
                "{name}: cannot encode targets with 0 classes"
            )));
        }
        if self == Targets::Signed && num_classes != 2 {
            return Err(DataError::Invalid(format!(
                "{name}: signed (±1) targets need exactly 2 classes, found {num_classes}"
            )));
        }
        check_labels(labels, num_classes, name)?;
        let w = self.width(num_classes);
        let mut y = vec![0.0; labels.len() * w];
        let shift = match self {
            Targets::CenteredOneHot => 1.0 / num_classes as f64,
            _ => 0.0,
        };
        for (row, &c) in y.chunks_exact_mut(w).zip(labels) {
            match self {
                Targets::OneHot | Targets::CenteredOneHot => {
                    row.iter_mut().for_each(|v| *v = -shift);
                    row[c as usize] += 1.0;
                }
                Targets::Signed => row[0] = if c == 1 { 1.0 } else { -1.0 },
            }
        }
        Ok(y)
    }
}

/// Row-major one-hot encoding `[n, k]` of `labels` (shorthand for
/// [`Targets::OneHot`]`.encode`).
pub fn one_hot(labels: &[u32], num_classes: usize) -> Result<Vec<f64>> {
    Targets::OneHot.encode(labels, num_classes, "one_hot")
}

/// Fails with [`DataError::BadLabel`] on the first label `>= num_classes`.
pub(crate) fn check_labels(labels: &[u32], num_classes: usize, name: &str) -> Result<()> {
    match labels.iter().position(|&c| c as usize >= num_classes) {
        None => Ok(()),
        Some(index) => Err(DataError::BadLabel {
            source_name: name.to_string(),
            index,
            label: i64::from(labels[index]),
            num_classes,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_have_the_documented_values() {
        let labels = [2, 0, 1];
        assert_eq!(
            one_hot(&labels, 3).expect("valid labels"),
            vec![0., 0., 1., 1., 0., 0., 0., 1., 0.]
        );
        let c = Targets::CenteredOneHot
            .encode(&labels, 4, "t")
            .expect("valid labels");
        assert_eq!(&c[..4], &[-0.25, -0.25, 0.75, -0.25]);
        let s = Targets::Signed
            .encode(&[1, 0, 1], 2, "t")
            .expect("valid labels");
        assert_eq!(s, vec![1., -1., 1.]);
    }

    #[test]
    fn bad_labels_and_signed_with_many_classes_fail() {
        let err = one_hot(&[0, 3], 3).expect_err("label 3 of 3 classes");
        assert!(matches!(
            err,
            DataError::BadLabel {
                index: 1,
                label: 3,
                ..
            }
        ));
        assert!(matches!(
            Targets::Signed.encode(&[0, 1, 2], 3, "t"),
            Err(DataError::Invalid(_))
        ));
    }
}
