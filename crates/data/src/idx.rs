//! IDX files: the format of MNIST and Fashion-MNIST (LeCun, Cortes, Burges,
//! <http://yann.lecun.com/exdb/mnist/>, section "FILE FORMATS FOR THE MNIST DATABASE";
//! Fashion-MNIST, Xiao, Rasul, Vollgraf 2017, ships the same format).
//!
//! ```text
//! bytes 0-1   0x00 0x00
//! byte  2     element type: 0x08 = unsigned byte (the only one MNIST uses)
//! byte  3     number of dimensions r
//! 4 … 4+4r    each dimension as a big-endian u32
//! then        the data, row-major (last index fastest)
//! ```
//!
//! So images have magic `0x00000803` (`[n, rows, cols]`) and labels `0x00000801`
//! (`[n]`). Files may be gzip-compressed as distributed (`*.gz`); see [`crate::read`].
//! Pixels are scaled to `[0, 1]` by `p / 255` and each image is flattened row-major to
//! `rows · cols` features.

use std::path::Path;

use crate::dataset::Dataset;
use crate::error::{DataError, Result};
use crate::read::read_maybe_gzip;
use crate::targets::Targets;

/// IDX element type code for unsigned bytes.
const IDX_U8: u8 = 0x08;

/// The element type codes the IDX format defines (u8, i8, i16, i32, f32, f64).
const IDX_TYPES: [(u8, &str); 6] = [
    (0x08, "u8"),
    (0x09, "i8"),
    (0x0B, "i16"),
    (0x0C, "i32"),
    (0x0D, "f32"),
    (0x0E, "f64"),
];

/// A u8 IDX array: its dimensions and row-major data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// The dimensions, e.g. `[60000, 28, 28]`.
    pub dims: Vec<usize>,
    /// The elements, row-major.
    pub data: Vec<u8>,
}

/// Reads a u8 IDX file of rank `rank` (gzip or plain).
pub fn read_idx(path: &Path, rank: u8) -> Result<IdxArray> {
    parse_idx(&read_maybe_gzip(path)?, path, rank)
}

/// Parses the (decompressed) bytes of a u8 IDX file of rank `rank`; `path` only names
/// the file in errors.
pub fn parse_idx(bytes: &[u8], path: &Path, rank: u8) -> Result<IdxArray> {
    let expected_magic = u32::from_be_bytes([0, 0, IDX_U8, rank]);
    let format = match rank {
        1 => "IDX labels: u8, 1 dimension",
        3 => "IDX images: u8, 3 dimensions",
        _ => "IDX array: u8",
    };
    if bytes.len() < 4 {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            expected: 4,
            found: bytes.len() as u64,
            what: "the 4-byte IDX magic number".into(),
        });
    }
    let magic = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    if magic != expected_magic {
        let known_type = IDX_TYPES.iter().find(|(code, _)| *code == bytes[2]);
        if let (0, 0, Some((_, type_name)), true) =
            (bytes[0], bytes[1], known_type, bytes[3] == rank)
        {
            return Err(DataError::UnsupportedDtype {
                path: path.to_path_buf(),
                tensor: "idx".into(),
                found: (*type_name).into(),
                expected: "u8 (IDX type 0x08)",
            });
        }
        return Err(DataError::BadMagic {
            path: path.to_path_buf(),
            found: format!("{magic:#010x}"),
            expected: format!("{expected_magic:#010x}"),
            format,
        });
    }
    let header = 4 + 4 * rank as usize;
    if bytes.len() < header {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            expected: header as u64,
            found: bytes.len() as u64,
            what: format!("IDX header with {rank} dimensions"),
        });
    }
    let dims: Vec<usize> = bytes[4..header]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let count = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| DataError::header(path, format!("dimensions {dims:?} overflow")))?;
    let what = format!("header + {} u8 elements of shape {dims:?}", count);
    let expected = (header + count) as u64;
    let found = bytes.len() as u64;
    if found < expected {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            expected,
            found,
            what,
        });
    }
    if found > expected {
        return Err(DataError::TrailingBytes {
            path: path.to_path_buf(),
            expected,
            found,
            what,
        });
    }
    Ok(IdxArray {
        dims,
        data: bytes[header..].to_vec(),
    })
}

/// Reads an IDX image file (`0x00000803`, `[n, rows, cols]`).
pub fn read_idx_images(path: &Path) -> Result<IdxArray> {
    read_idx(path, 3)
}

/// Reads an IDX label file (`0x00000801`, `[n]`).
pub fn read_idx_labels(path: &Path) -> Result<Vec<u8>> {
    Ok(read_idx(path, 1)?.data)
}

/// Loads an image/label pair of IDX files as a classification dataset: `x [n, rows·cols]`
/// with pixels in `[0, 1]`, labels checked to lie in `0..num_classes`, targets encoded by
/// `targets`.
pub fn load_idx(
    images: &Path,
    labels: &Path,
    num_classes: usize,
    targets: Targets,
    name: &str,
) -> Result<Dataset> {
    let img = read_idx_images(images)?;
    let lab = read_idx_labels(labels)?;
    let n = img.dims[0];
    if n != lab.len() {
        return Err(DataError::CountMismatch {
            inputs: images.display().to_string(),
            n_inputs: n,
            labels: labels.display().to_string(),
            n_labels: lab.len(),
        });
    }
    let d = img.dims[1] * img.dims[2];
    let x: Vec<f64> = img.data.iter().map(|&p| f64::from(p) / 255.0).collect();
    let labels_u32: Vec<u32> = lab.iter().map(|&c| u32::from(c)).collect();
    if let Some(index) = labels_u32.iter().position(|&c| c as usize >= num_classes) {
        return Err(DataError::BadLabel {
            source_name: labels.display().to_string(),
            index,
            label: i64::from(labels_u32[index]),
            num_classes,
        });
    }
    Dataset::classification(x, d, labels_u32, num_classes, targets, name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{idx_bytes, TempDir};
    use std::io::Write;

    /// Two 2x3 images with pixels 0, 51, …, 255 and labels 7, 2.
    fn write_pair(dir: &TempDir) -> (std::path::PathBuf, std::path::PathBuf) {
        let pixels = [0u8, 51, 102, 153, 204, 255, 255, 0, 255, 0, 255, 0];
        let img = dir.write("img.idx", &idx_bytes(&[2, 2, 3], &pixels));
        let lab = dir.write("lab.idx", &idx_bytes(&[2], &[7, 2]));
        (img, lab)
    }

    #[test]
    fn roundtrip_exact_pixels_and_labels() {
        let dir = TempDir::new("idx");
        let (img, lab) = write_pair(&dir);
        let ds = load_idx(&img, &lab, 10, Targets::OneHot, "t").expect("valid files");
        assert_eq!((ds.len(), ds.input_dim(), ds.target_dim()), (2, 6, 10));
        assert_eq!(
            ds.x_vec().expect("f64"),
            vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0]
        );
        assert_eq!(ds.labels.as_deref(), Some(&[7, 2][..]));
        let y = ds.y_vec().expect("f64");
        assert_eq!((y[7], y[10 + 2], y.iter().sum::<f64>()), (1.0, 1.0, 2.0));
    }

    #[test]
    fn gzip_files_load_the_same() {
        let dir = TempDir::new("idx-gz");
        let bytes = idx_bytes(&[3], &[1, 2, 3]);
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&bytes).expect("in-memory write");
        let p = dir.write("lab.idx.gz", &enc.finish().expect("in-memory gzip"));
        assert_eq!(read_idx_labels(&p).expect("valid gzip"), vec![1, 2, 3]);
    }

    #[test]
    fn bytes_in_memory_parse_like_files() {
        let bytes = idx_bytes(&[1, 2, 2], &[9, 8, 7, 6]);
        let a = parse_idx(&bytes, Path::new("mem.idx"), 3).expect("valid bytes");
        assert_eq!((a.dims, a.data), (vec![1, 2, 2], vec![9, 8, 7, 6]));
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&bytes).expect("in-memory write");
        let gz = enc.finish().expect("in-memory gzip");
        let plain = crate::read::gunzip_if_gzip(gz, Path::new("mem.gz")).expect("valid gzip");
        assert_eq!(plain, bytes);
        let err = parse_idx(&bytes[..10], Path::new("mem.idx"), 3).expect_err("short");
        assert!(err.to_string().contains("mem.idx"), "{err}");
    }

    #[test]
    fn wrong_magic_is_reported_with_both_values() {
        let dir = TempDir::new("idx-magic");
        let (_, lab) = write_pair(&dir);
        // Label file passed as images: magic 0x00000801, expected 0x00000803.
        let err = read_idx_images(&lab).expect_err("labels are not images");
        let msg = err.to_string();
        assert!(matches!(err, DataError::BadMagic { .. }), "{msg}");
        assert!(
            msg.contains("0x00000801") && msg.contains("0x00000803"),
            "{msg}"
        );
        assert!(msg.contains("lab.idx"), "{msg}");
        let junk = dir.write("junk", b"PK\x03\x04rest");
        assert!(matches!(
            read_idx_images(&junk),
            Err(DataError::BadMagic { .. })
        ));
        let f32_file = dir.write("f.idx", &[0, 0, 0x0D, 1, 0, 0, 0, 0]);
        assert!(matches!(
            read_idx_labels(&f32_file),
            Err(DataError::UnsupportedDtype { .. })
        ));
    }

    #[test]
    fn truncated_and_trailing_files_are_rejected() {
        let dir = TempDir::new("idx-trunc");
        let mut bytes = idx_bytes(&[2, 2, 3], &[0; 12]);
        bytes.truncate(bytes.len() - 1);
        let p = dir.write("short.idx", &bytes);
        match read_idx_images(&p) {
            Err(DataError::Truncated {
                expected, found, ..
            }) => assert_eq!((expected, found), (16 + 12, 16 + 11)),
            other => panic!("expected Truncated, got {other:?}"),
        }
        let p = dir.write("hdr.idx", &[0, 0, 8, 3, 0, 0]);
        assert!(matches!(
            read_idx_images(&p),
            Err(DataError::Truncated { .. })
        ));
        let p = dir.write("long.idx", &idx_bytes(&[2], &[1, 2, 3]));
        assert!(matches!(
            read_idx_labels(&p),
            Err(DataError::TrailingBytes { .. })
        ));
    }

    #[test]
    fn count_mismatch_and_bad_label() {
        let dir = TempDir::new("idx-count");
        let (img, _) = write_pair(&dir);
        let lab3 = dir.write("lab3.idx", &idx_bytes(&[3], &[0, 1, 2]));
        let err = load_idx(&img, &lab3, 10, Targets::OneHot, "t").expect_err("2 vs 3");
        assert!(matches!(
            err,
            DataError::CountMismatch {
                n_inputs: 2,
                n_labels: 3,
                ..
            }
        ));
        assert!(err.to_string().contains("lab3.idx"));
        let lab_bad = dir.write("labbad.idx", &idx_bytes(&[2], &[0, 10]));
        assert!(matches!(
            load_idx(&img, &lab_bad, 10, Targets::OneHot, "t"),
            Err(DataError::BadLabel { label: 10, .. })
        ));
    }
}
