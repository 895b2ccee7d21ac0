//! Fashion-MNIST, offline (Xiao, Rasul, Vollgraf 2017, arXiv 1708.07747;
//! zalandoresearch/fashion-mnist): 60 000 training and 10 000 test 28×28 grey images of
//! 10 clothing classes, as IDX files (see [`crate::idx`]).
//!
//! eos uses it in place of CIFAR-10 for the EoS protocol of Cohen et al. because it is
//! available without a network: the Debian/Ubuntu package `dataset-fashion-mnist`
//! installs the four gzip files in `/usr/share/datasets/fashion-mnist/`. The directory
//! is looked up in this order:
//!
//! 1. `$EOS_DATA_DIR/fashion-mnist` (e.g. filled by `cargo xtask data`),
//! 2. `/usr/share/datasets/fashion-mnist` (the Debian package),
//! 3. `/usr/local/share/datasets/fashion-mnist`.
//!
//! A directory counts when it holds `train-images-idx3-ubyte` (plain or `.gz`).
//!
//! `x` is `[n, 784]` by default, or `[n, 1, 28, 28]` (NCHW) with
//! [`InputShape::Image`] ([`load_fashion_mnist_shaped`]; see [`crate::shape`]).

use std::path::{Path, PathBuf};

use crate::dataset::{Dataset, Split};
use crate::error::{DataError, Result};
use crate::idx::load_idx;
use crate::shape::{shape_images, InputShape};
use crate::targets::Targets;

/// Environment variable naming the root of eos's data directory.
pub const DATA_DIR_ENV: &str = "EOS_DATA_DIR";
/// Directories where system packages install Fashion-MNIST.
pub const SYSTEM_DIRS: [&str; 2] = [
    "/usr/share/datasets/fashion-mnist",
    "/usr/local/share/datasets/fashion-mnist",
];
/// Number of Fashion-MNIST classes.
pub const FASHION_MNIST_CLASSES: usize = 10;
/// Channels, height and width of a Fashion-MNIST image.
pub const FASHION_MNIST_CHW: [usize; 3] = [1, 28, 28];

/// The directory holding the Fashion-MNIST IDX files, or an error that lists the
/// places searched and says how to install the data.
pub fn fashion_mnist_dir() -> Result<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(root) = std::env::var_os(DATA_DIR_ENV) {
        candidates.push(PathBuf::from(root).join("fashion-mnist"));
    }
    candidates.extend(SYSTEM_DIRS.iter().map(PathBuf::from));
    candidates
        .iter()
        .find(|dir| find_file(dir, "train-images-idx3-ubyte").is_some())
        .cloned()
        .ok_or_else(|| {
            DataError::not_found(
                "Fashion-MNIST (train-images-idx3-ubyte[.gz])",
                &candidates,
                "Install it with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or \
                 run `cargo xtask data`, or put the four IDX files in $EOS_DATA_DIR/fashion-mnist.",
            )
        })
}

/// Loads a split of Fashion-MNIST from [`fashion_mnist_dir`]: `x [n, 784]` in `[0, 1]`,
/// labels `0..9`, targets encoded by `targets`.
pub fn load_fashion_mnist(split: Split, targets: Targets) -> Result<Dataset> {
    load_fashion_mnist_from(&fashion_mnist_dir()?, split, targets)
}

/// Loads a split of Fashion-MNIST from the IDX files in `dir`.
pub fn load_fashion_mnist_from(dir: &Path, split: Split, targets: Targets) -> Result<Dataset> {
    let (stem, name) = match split {
        Split::Train => ("train", "fashion-mnist/train"),
        Split::Test => ("t10k", "fashion-mnist/test"),
    };
    let images = require(dir, &format!("{stem}-images-idx3-ubyte"))?;
    let labels = require(dir, &format!("{stem}-labels-idx1-ubyte"))?;
    load_idx(&images, &labels, FASHION_MNIST_CLASSES, targets, name)
}

/// Loads a split of Fashion-MNIST from [`fashion_mnist_dir`] with `x` shaped as
/// `shape`: `[n, 784]` ([`InputShape::Flat`]) or `[n, 1, 28, 28]` ([`InputShape::Image`]).
pub fn load_fashion_mnist_shaped(
    split: Split,
    targets: Targets,
    shape: InputShape,
) -> Result<Dataset> {
    load_fashion_mnist_from_shaped(&fashion_mnist_dir()?, split, targets, shape)
}

/// Loads a split of Fashion-MNIST from the IDX files in `dir`, `x` shaped as `shape`.
pub fn load_fashion_mnist_from_shaped(
    dir: &Path,
    split: Split,
    targets: Targets,
    shape: InputShape,
) -> Result<Dataset> {
    let ds = load_fashion_mnist_from(dir, split, targets)?;
    shape_images(ds, shape, FASHION_MNIST_CHW)
}

/// `dir/stem` or `dir/stem.gz`, whichever exists.
fn find_file(dir: &Path, stem: &str) -> Option<PathBuf> {
    [dir.join(stem), dir.join(format!("{stem}.gz"))]
        .into_iter()
        .find(|p| p.is_file())
}

/// Like [`find_file`], with an error naming both candidates when neither exists.
fn require(dir: &Path, stem: &str) -> Result<PathBuf> {
    find_file(dir, stem).ok_or_else(|| {
        DataError::not_found(
            &format!("Fashion-MNIST file {stem}[.gz]"),
            &[dir.join(stem), dir.join(format!("{stem}.gz"))],
            "The directory must hold the four IDX files of the Fashion-MNIST release.",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{idx_bytes, TempDir};

    #[test]
    fn loads_from_a_directory_with_plain_files() {
        let dir = TempDir::new("fmnist");
        dir.write(
            "t10k-images-idx3-ubyte",
            &idx_bytes(&[1, 28, 28], &[255; 784]),
        );
        dir.write("t10k-labels-idx1-ubyte", &idx_bytes(&[1], &[4]));
        let ds = load_fashion_mnist_from(dir.path(), Split::Test, Targets::OneHot)
            .expect("complete test split");
        assert_eq!(
            (ds.len(), ds.input_dim(), ds.labels.as_deref()),
            (1, 784, Some(&[4][..]))
        );
        let err = load_fashion_mnist_from(dir.path(), Split::Train, Targets::OneHot)
            .expect_err("no train files");
        let msg = err.to_string();
        assert!(msg.contains("train-images-idx3-ubyte"), "{msg}");
    }

    #[test]
    fn image_shape_gives_nchw_with_the_same_pixels() {
        let dir = TempDir::new("fmnist-img");
        let pixels: Vec<u8> = (0..2 * 784).map(|p| (p % 256) as u8).collect();
        dir.write("t10k-images-idx3-ubyte", &idx_bytes(&[2, 28, 28], &pixels));
        dir.write("t10k-labels-idx1-ubyte", &idx_bytes(&[2], &[4, 9]));
        let ds = load_fashion_mnist_from_shaped(
            dir.path(),
            Split::Test,
            Targets::OneHot,
            InputShape::Image,
        )
        .expect("complete test split");
        assert_eq!(ds.x.dims(), &[2, 1, 28, 28]);
        assert_eq!((ds.input_dim(), ds.target_dim()), (784, 10));
        // Image 1, row 3, column 5 is pixel 784 + 3·28 + 5 = 873 → 873 mod 256 = 105.
        let v =
            ds.x.get(1)
                .and_then(|t| t.get(0))
                .and_then(|t| t.to_vec2::<f64>());
        assert_eq!(v.expect("in range")[3][5], 105.0 / 255.0);
        assert_eq!(ds.labels.as_deref(), Some(&[4, 9][..]));
    }
}
