//! The input shape of an image dataset: flat rows `[n, C·H·W]` (for MLPs, the default)
//! or images `[n, C, H, W]` (NCHW, for convolutional networks).
//!
//! Both loaders store pixels channel-major (`c·H·W + row·W + col`: IDX is one channel,
//! CIFAR-10 binary is `R · G · B` planes), so the image form is a pure reshape of the
//! flat one, row-major, no copy of values:
//!
//! ```text
//! flat[i, c·H·W + h·W + w] = image[i, c, h, w]
//! ```

use serde::{Deserialize, Serialize};

use crate::dataset::Dataset;
use crate::error::{DataError, Result};

/// How an image dataset's `x` is shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputShape {
    /// `[n, C·H·W]`: one flat row per image (today's layout, for MLPs).
    #[default]
    Flat,
    /// `[n, C, H, W]` (NCHW), for `conv2d`.
    Image,
}

/// `ds` with `x` shaped as `shape`: unchanged for [`InputShape::Flat`], reshaped to
/// `[n, c, h, w]` for [`InputShape::Image`]. Fails if `x` does not hold `c·h·w` values
/// per sample.
pub fn shape_images(ds: Dataset, shape: InputShape, chw: [usize; 3]) -> Result<Dataset> {
    match shape {
        InputShape::Flat => Ok(ds),
        InputShape::Image => {
            let [c, h, w] = chw;
            if ds.input_dim() != c * h * w {
                return Err(DataError::Invalid(format!(
                    "{}: {} values per sample cannot be shaped as a {c}x{h}x{w} image",
                    ds.name,
                    ds.input_dim()
                )));
            }
            let x = ds.x.reshape((ds.len(), c, h, w))?;
            Dataset::new(x, ds.y, ds.labels, ds.num_classes, ds.name)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::Targets;

    #[test]
    fn image_shape_is_a_row_major_reshape() {
        let x: Vec<f64> = (0..24).map(f64::from).collect();
        let ds = Dataset::classification(x, 12, vec![0, 1], 2, Targets::OneHot, "i")
            .expect("consistent");
        let flat = shape_images(ds.clone(), InputShape::Flat, [3, 2, 2]).expect("flat");
        assert_eq!(flat.x.dims(), &[2, 12]);
        let img = shape_images(ds.clone(), InputShape::Image, [3, 2, 2]).expect("12 = 3·2·2");
        assert_eq!(img.x.dims(), &[2, 3, 2, 2]);
        assert_eq!(img.sample_shape(), &[3, 2, 2]);
        assert_eq!((img.input_dim(), img.target_dim()), (12, 2));
        // image[1, 2, 1, 0] = flat[1, 2·4 + 1·2 + 0] = 12 + 10.
        let e = img
            .x
            .get(1)
            .and_then(|t| t.get(2))
            .and_then(|t| t.get(1))
            .and_then(|t| t.get(0))
            .and_then(|t| t.to_scalar::<f64>())
            .expect("in range");
        assert_eq!(e, 22.0);
        assert!(shape_images(ds, InputShape::Image, [1, 2, 2]).is_err());
    }

    #[test]
    fn transforms_and_samplers_keep_image_rows_whole() {
        use crate::sampler::{Sampler, Sampling};
        use crate::transforms::{class_subset, label_noise};
        // Image i holds the values 100·i + p, p = 0..4, as a 1x2x2 image; label i mod 3.
        let x: Vec<f64> = (0..6)
            .flat_map(|i| (0..4).map(move |p| f64::from(100 * i + p)))
            .collect();
        let labels = (0..6).map(|i| i % 3).collect();
        let ds = Dataset::classification(x, 4, labels, 3, Targets::OneHot, "img")
            .and_then(|d| shape_images(d, InputShape::Image, [1, 2, 2]))
            .expect("consistent");
        let sub = class_subset(&ds, &[2, 0], Targets::OneHot).expect("classes exist");
        assert_eq!(sub.x.dims(), &[4, 1, 2, 2]);
        let firsts: Vec<f64> = sub
            .x_vec()
            .expect("f64")
            .iter()
            .step_by(4)
            .copied()
            .collect();
        assert_eq!(firsts, vec![0.0, 200.0, 300.0, 500.0]);
        assert_eq!(sub.labels.as_deref(), Some(&[1, 0, 1, 0][..]));
        let noisy = label_noise(&ds, 0.5, 1, Targets::OneHot).expect("valid");
        assert_eq!(noisy.x_vec().expect("f64"), ds.x_vec().expect("f64"));
        assert_eq!(noisy.x.dims(), &[6, 1, 2, 2]);
        let sampler =
            Sampler::new(6, Sampling::WithReplacement { batch_size: 3 }, 9).expect("valid");
        let idx = sampler.batch(0);
        let batch = ds.subset(&idx).expect("in range");
        assert_eq!(batch.x.dims(), &[3, 1, 2, 2]);
        let v = batch.x_vec().expect("f64");
        for (b, &i) in idx.iter().enumerate() {
            let want: Vec<f64> = (0..4).map(|p| (100 * i + p) as f64).collect();
            assert_eq!(v[4 * b..4 * b + 4], want[..], "row {b} = image {i}");
        }
    }
}
