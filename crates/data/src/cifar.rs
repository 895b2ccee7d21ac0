//! CIFAR-10 binary batches (Krizhevsky 2009; format described at
//! <https://www.cs.toronto.edu/~kriz/cifar.html>, "Binary version").
//!
//! ```text
//! file    = record*                       (10 000 records per batch file)
//! record  = label: u8 (0..9) · pixels: 3072 × u8
//! pixels  = 1024 red · 1024 green · 1024 blue, each 32×32 row-major
//! ```
//!
//! Features keep the file's channel-major order (`c·1024 + row·32 + col`, PyTorch's
//! CHW flatten) and are scaled to `[0, 1]` by `p / 255`. Cohen et al. flatten
//! torchvision's HWC array instead; for a fully connected network with i.i.d.
//! initialisation the two orders are a fixed permutation of the inputs and give the
//! same training dynamics in distribution.
//!
//! With [`InputShape::Image`] ([`load_cifar10_shaped`]) `x` is `[n, 3, 32, 32]`
//! (NCHW): the stored channel-major record reshaped, no reordering.
//!
//! The training set is `data_batch_1.bin … data_batch_5.bin` (50 000 images) and the
//! test set `test_batch.bin`, in the directory `cifar-10-batches-bin/` of the archive.

use std::path::{Path, PathBuf};

use crate::dataset::{Dataset, Split};
use crate::error::{DataError, Result};
use crate::read::read_maybe_gzip;
use crate::shape::{shape_images, InputShape};
use crate::targets::Targets;

/// Bytes per CIFAR-10 record: one label byte and 3 × 32 × 32 pixels.
pub const CIFAR10_RECORD: usize = 1 + CIFAR10_PIXELS;
/// Pixels (features) per CIFAR-10 image.
pub const CIFAR10_PIXELS: usize = 3 * 32 * 32;
/// Number of CIFAR-10 classes.
pub const CIFAR10_CLASSES: usize = 10;
/// Channels, height and width of a CIFAR-10 image.
pub const CIFAR10_CHW: [usize; 3] = [3, 32, 32];

/// The batch files of `split` inside a `cifar-10-batches-bin` directory.
pub fn cifar10_files(dir: &Path, split: Split) -> Vec<PathBuf> {
    match split {
        Split::Train => (1..=5)
            .map(|i| dir.join(format!("data_batch_{i}.bin")))
            .collect(),
        Split::Test => vec![dir.join("test_batch.bin")],
    }
}

/// Loads and concatenates CIFAR-10 binary batch files, in the order given:
/// `x [n, 3072]` in `[0, 1]`, labels `0..9`, targets encoded by `targets`.
pub fn load_cifar10(paths: &[PathBuf], targets: Targets, name: &str) -> Result<Dataset> {
    let mut x = Vec::new();
    let mut labels = Vec::new();
    for path in paths {
        let (bx, bl) = read_cifar10_batch(path)?;
        x.extend(bx);
        labels.extend(bl);
    }
    Dataset::classification(x, CIFAR10_PIXELS, labels, CIFAR10_CLASSES, targets, name)
}

/// Like [`load_cifar10`], with `x` shaped as `shape`: `[n, 3072]`
/// ([`InputShape::Flat`]) or `[n, 3, 32, 32]` ([`InputShape::Image`]).
pub fn load_cifar10_shaped(
    paths: &[PathBuf],
    targets: Targets,
    name: &str,
    shape: InputShape,
) -> Result<Dataset> {
    shape_images(load_cifar10(paths, targets, name)?, shape, CIFAR10_CHW)
}

/// Reads one batch file: pixels scaled to `[0, 1]` (row-major `[n, 3072]`) and labels.
pub fn read_cifar10_batch(path: &Path) -> Result<(Vec<f64>, Vec<u32>)> {
    parse_cifar10_batch(&read_maybe_gzip(path)?, path)
}

/// Parses the (decompressed) bytes of one batch file; `path` only names the file in
/// errors.
pub fn parse_cifar10_batch(bytes: &[u8], path: &Path) -> Result<(Vec<f64>, Vec<u32>)> {
    if bytes.is_empty() || bytes.len() % CIFAR10_RECORD != 0 {
        return Err(DataError::RecordSize {
            path: path.to_path_buf(),
            size: bytes.len() as u64,
            record: CIFAR10_RECORD as u64,
            format: "CIFAR-10 binary (1 label byte + 3072 pixel bytes)",
        });
    }
    let n = bytes.len() / CIFAR10_RECORD;
    let mut x = Vec::with_capacity(n * CIFAR10_PIXELS);
    let mut labels = Vec::with_capacity(n);
    for (index, rec) in bytes.chunks_exact(CIFAR10_RECORD).enumerate() {
        if rec[0] as usize >= CIFAR10_CLASSES {
            return Err(DataError::BadLabel {
                source_name: path.display().to_string(),
                index,
                label: i64::from(rec[0]),
                num_classes: CIFAR10_CLASSES,
            });
        }
        labels.push(u32::from(rec[0]));
        x.extend(rec[1..].iter().map(|&p| f64::from(p) / 255.0));
    }
    Ok((x, labels))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{cifar_bytes, TempDir};

    #[test]
    fn roundtrip_exact_pixels_labels_and_concatenation() {
        let dir = TempDir::new("cifar");
        // Pixel p of image i is (i + p) mod 256: values 0..=255 all occur.
        let a = dir.write("a.bin", &cifar_bytes(&[3, 9], |i, p| ((i + p) % 256) as u8));
        let b = dir.write("b.bin", &cifar_bytes(&[0], |_, p| (p % 2 * 255) as u8));
        let ds = load_cifar10(&[a, b], Targets::OneHot, "c").expect("valid batches");
        assert_eq!((ds.len(), ds.input_dim(), ds.target_dim()), (3, 3072, 10));
        assert_eq!(ds.labels.as_deref(), Some(&[3, 9, 0][..]));
        let x = ds.x_vec().expect("f64");
        assert_eq!(x[0], 0.0);
        assert_eq!(x[255], 1.0);
        assert_eq!(x[256], 0.0); // wraps to 0
        assert_eq!(x[3072], 1.0 / 255.0); // image 1, pixel 0 = 1
        assert_eq!(x[3072 * 2..3072 * 2 + 2], [0.0, 1.0]);
    }

    #[test]
    fn image_shape_keeps_channel_planes() {
        let dir = TempDir::new("cifar-img");
        // Pixel p of image 0 is its channel index p / 1024 times 100.
        let a = dir.write("a.bin", &cifar_bytes(&[7], |_, p| (p / 1024 * 100) as u8));
        let ds = load_cifar10_shaped(&[a], Targets::OneHot, "c", InputShape::Image)
            .expect("valid batch");
        assert_eq!(ds.x.dims(), &[1, 3, 32, 32]);
        let img =
            ds.x.get(0)
                .and_then(|t| t.to_vec3::<f64>())
                .expect("rank 3");
        for (c, plane) in img.iter().enumerate() {
            let want = (c * 100) as f64 / 255.0;
            assert!(plane.iter().flatten().all(|&v| v == want), "channel {c}");
        }
    }

    #[test]
    fn size_not_a_multiple_of_3073_is_rejected() {
        let dir = TempDir::new("cifar-size");
        let mut bytes = cifar_bytes(&[1, 2], |_, _| 0);
        bytes.pop();
        let p = dir.write("bad.bin", &bytes);
        let err = load_cifar10(&[p], Targets::OneHot, "c").expect_err("6145 bytes");
        let msg = err.to_string();
        assert!(
            matches!(
                err,
                DataError::RecordSize {
                    size: 6145,
                    record: 3073,
                    ..
                }
            ),
            "{msg}"
        );
        assert!(msg.contains("bad.bin") && msg.contains("3073"), "{msg}");
    }

    #[test]
    fn bytes_in_memory_parse_like_files() {
        let bytes = cifar_bytes(&[4], |_, p| (p % 2) as u8 * 255);
        let (x, labels) = parse_cifar10_batch(&bytes, Path::new("mem.bin")).expect("valid");
        assert_eq!((labels, x.len(), x[0], x[1]), (vec![4], 3072, 0.0, 1.0));
        let err = parse_cifar10_batch(&bytes[1..], Path::new("mem.bin")).expect_err("short");
        assert!(err.to_string().contains("mem.bin"), "{err}");
    }

    #[test]
    fn label_above_9_is_rejected() {
        let dir = TempDir::new("cifar-label");
        let p = dir.write("l.bin", &cifar_bytes(&[1, 10], |_, _| 0));
        assert!(matches!(
            read_cifar10_batch(&p),
            Err(DataError::BadLabel {
                index: 1,
                label: 10,
                ..
            })
        ));
    }
}
