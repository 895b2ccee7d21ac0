//! NumPy `.npy` files (format spec: numpy `lib/format.py`, "NEP 1 — A simple file
//! format for NumPy arrays").
//!
//! ```text
//! bytes 0-5   \x93NUMPY
//! bytes 6-7   major, minor version (1.0, 2.0 or 3.0)
//! header len  u16 LE (v1) | u32 LE (v2, v3)
//! header      Python dict literal, e.g. {'descr': '<f8', 'fortran_order': False,
//!             'shape': (60000, 784), }  padded with spaces, ended by '\n'
//! data        the elements, C (row-major) order
//! ```
//!
//! Supported element types: little-endian `<f4`, `<f8`, `<i4`, `<i8` and bytes `|u1`;
//! C order only. Big-endian, Fortran-order, structured and object arrays are rejected
//! with an error naming the file.

use std::path::Path;

use crate::arrays::{dataset_from_arrays, RawArray};
use crate::dataset::Dataset;
use crate::error::{DataError, Result};
use crate::targets::Targets;

/// The six magic bytes of every `.npy` file.
const NPY_MAGIC: &[u8; 6] = b"\x93NUMPY";

/// The element types this reader supports, as printed in errors.
const SUPPORTED: &str = "<f4, <f8, |u1, <i4, <i8 (little-endian, C order)";

/// The elements of a `.npy` array in their stored type.
#[derive(Debug, Clone, PartialEq)]
pub enum NpyData {
    /// `<f4`
    F32(Vec<f32>),
    /// `<f8`
    F64(Vec<f64>),
    /// `|u1`
    U8(Vec<u8>),
    /// `<i4`
    I32(Vec<i32>),
    /// `<i8`
    I64(Vec<i64>),
}

/// A `.npy` array: its shape and its elements.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    /// The shape (empty for a scalar).
    pub shape: Vec<usize>,
    /// The elements, row-major.
    pub data: NpyData,
}

impl NpyArray {
    /// The elements converted to f64 (exact except for `i64` beyond 2^53).
    pub fn to_f64(&self) -> Vec<f64> {
        match &self.data {
            NpyData::F32(v) => v.iter().map(|&a| f64::from(a)).collect(),
            NpyData::F64(v) => v.clone(),
            NpyData::U8(v) => v.iter().map(|&a| f64::from(a)).collect(),
            NpyData::I32(v) => v.iter().map(|&a| f64::from(a)).collect(),
            NpyData::I64(v) => v.iter().map(|&a| a as f64).collect(),
        }
    }

    /// Whether the stored type is an integer type.
    pub fn is_integer(&self) -> bool {
        matches!(
            self.data,
            NpyData::U8(_) | NpyData::I32(_) | NpyData::I64(_)
        )
    }

    pub(crate) fn into_raw(self) -> RawArray {
        RawArray {
            values: self.to_f64(),
            integer: self.is_integer(),
            shape: self.shape,
        }
    }
}

/// Reads a `.npy` file.
pub fn read_npy(path: &Path) -> Result<NpyArray> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    parse_npy(&bytes, path)
}

/// Parses the bytes of a `.npy` file; `path` only names the file in errors.
pub fn parse_npy(bytes: &[u8], path: &Path) -> Result<NpyArray> {
    let (start, end) = header_span(bytes, path)?;
    let header = std::str::from_utf8(&bytes[start..end])
        .map_err(|_| DataError::header(path, "npy header is not UTF-8 text"))?;
    let (descr, shape) = parse_header(header, path)?;
    let body = &bytes[end..];
    let width = match descr {
        "<f4" | "<i4" => 4,
        "<f8" | "<i8" => 8,
        "|u1" | "<u1" => 1,
        other => {
            return Err(DataError::UnsupportedDtype {
                path: path.to_path_buf(),
                tensor: "npy".into(),
                found: other.to_string(),
                expected: SUPPORTED,
            })
        }
    };
    // A corrupt header may announce any shape: the byte count must not overflow.
    let expected = shape
        .iter()
        .try_fold(width, |acc: usize, &d| acc.checked_mul(d))
        .ok_or_else(|| {
            DataError::header(
                path,
                format!("shape {shape:?} of {descr} holds more bytes than any file can"),
            )
        })?;
    let count = expected / width;
    let expected = expected as u64;
    let what = format!("{count} elements of {descr}, shape {shape:?}");
    if (body.len() as u64) < expected {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            expected: (end as u64).saturating_add(expected),
            found: bytes.len() as u64,
            what,
        });
    }
    if (body.len() as u64) > expected {
        return Err(DataError::TrailingBytes {
            path: path.to_path_buf(),
            expected: (end as u64).saturating_add(expected),
            found: bytes.len() as u64,
            what,
        });
    }
    let data = match descr {
        "<f4" => NpyData::F32(le_chunks(body, f32::from_le_bytes)),
        "<f8" => NpyData::F64(le_chunks(body, f64::from_le_bytes)),
        "<i4" => NpyData::I32(le_chunks(body, i32::from_le_bytes)),
        "<i8" => NpyData::I64(le_chunks(body, i64::from_le_bytes)),
        _ => NpyData::U8(body.to_vec()),
    };
    Ok(NpyArray { shape, data })
}

/// The header of `.npy` bytes as `(start, end)`: checks the magic, reads the
/// version's header length and checks that the bytes hold the whole header.
fn header_span(bytes: &[u8], path: &Path) -> Result<(usize, usize)> {
    if bytes.len() < 10 || &bytes[..6] != NPY_MAGIC {
        let n = bytes.len().min(6);
        return Err(DataError::BadMagic {
            path: path.to_path_buf(),
            found: hex(&bytes[..n]),
            expected: hex(NPY_MAGIC),
            format: ".npy (\\x93NUMPY)",
        });
    }
    let (header_len, start) = match bytes[6] {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => {
            return Err(DataError::header(
                path,
                format!("npy version {v}.{}; expected 1.0, 2.0 or 3.0", bytes[7]),
            ))
        }
    };
    let end = start + header_len;
    if bytes.len() < end {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            expected: end as u64,
            found: bytes.len() as u64,
            what: "the npy header".into(),
        });
    }
    Ok((start, end))
}

/// The `descr` and `shape` of a C-order `.npy` header dict.
fn parse_header<'h>(header: &'h str, path: &Path) -> Result<(&'h str, Vec<usize>)> {
    let descr = dict_str(header, "descr")
        .ok_or_else(|| DataError::header(path, format!("no 'descr' string in {header:?}")))?;
    let fortran = dict_value(header, "fortran_order")
        .ok_or_else(|| DataError::header(path, format!("no 'fortran_order' in {header:?}")))?;
    if fortran.starts_with("True") {
        return Err(DataError::header(
            path,
            "fortran_order is True; expected a C-order array (use np.ascontiguousarray)",
        ));
    }
    let shape = dict_shape(header).ok_or_else(|| {
        DataError::header(path, format!("no integer tuple 'shape' in {header:?}"))
    })?;
    Ok((descr, shape))
}

/// Writes a little-endian f64 `.npy` file (version 1.0, C order).
pub fn write_npy_f64(path: &Path, shape: &[usize], data: &[f64]) -> Result<()> {
    let count: usize = shape.iter().product();
    if count != data.len() {
        return Err(DataError::Invalid(format!(
            "{}: shape {shape:?} holds {count} values, got {}",
            path.display(),
            data.len()
        )));
    }
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let tuple = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut header = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': {tuple}, }}");
    // Pad so that magic + version + len + header is a multiple of 64, ending in '\n'.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let header_len = u16::try_from(header.len())
        .map_err(|_| DataError::Invalid(format!("{}: npy header too long", path.display())))?;
    let mut out = Vec::with_capacity(10 + header.len() + 8 * data.len());
    out.extend_from_slice(NPY_MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&header_len.to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(path, out).map_err(|e| DataError::io(path, e))
}

/// Loads `x` and `y` from two `.npy` files (rules in [`crate::arrays`]'s docs: `x`
/// flattened to `[n, d]`; integer `y` = class labels encoded by `targets`; float `y` =
/// targets as stored).
pub fn load_npy_dataset(
    x_path: &Path,
    y_path: &Path,
    targets: Targets,
    name: &str,
) -> Result<Dataset> {
    let x = read_npy(x_path)?.into_raw();
    let y = read_npy(y_path)?.into_raw();
    dataset_from_arrays(x, (x_path, "x"), y, (y_path, "y"), targets, name)
}

/// Elements decoded from consecutive little-endian `N`-byte chunks.
fn le_chunks<T, const N: usize>(body: &[u8], f: fn([u8; N]) -> T) -> Vec<T> {
    body.chunks_exact(N)
        .map(|c| f(c.try_into().expect("chunks_exact yields N bytes")))
        .collect()
}

/// The raw text after `'key':` in a Python dict literal.
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let pat_single = format!("'{key}':");
    let pat_double = format!("\"{key}\":");
    let at = header
        .find(&pat_single)
        .map(|i| i + pat_single.len())
        .or_else(|| header.find(&pat_double).map(|i| i + pat_double.len()))?;
    Some(header[at..].trim_start())
}

/// A quoted string value of the dict.
fn dict_str<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let v = dict_value(header, key)?;
    let quote = v.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let rest = &v[1..];
    rest.find(quote).map(|end| &rest[..end])
}

/// The `shape` tuple of the dict.
fn dict_shape(header: &str) -> Option<Vec<usize>> {
    let v = dict_value(header, "shape")?.strip_prefix('(')?;
    let inner = &v[..v.find(')')?];
    inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('L').parse().ok())
        .collect()
}

/// Bytes as space-separated hex, for error messages.
fn hex(bytes: &[u8]) -> String {
    let parts: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempDir;

    /// A `.npy` file with the given descr, shape text and body (version 1.0).
    fn npy_bytes(descr: &str, shape: &str, body: &[u8]) -> Vec<u8> {
        let header =
            format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}\n");
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn f64_roundtrip_through_the_writer() {
        let dir = TempDir::new("npy");
        let p = dir.path().join("x.npy");
        let data = [1.5, -2.0, 0.25, 1e300, -0.0, 3.0];
        write_npy_f64(&p, &[2, 3], &data).expect("writable");
        let bytes = std::fs::read(&p).expect("just written");
        assert_eq!((bytes.len() - 48) % 64, 0); // header block 64-aligned, 48 data bytes
        let a = read_npy(&p).expect("valid npy");
        assert_eq!(a.shape, vec![2, 3]);
        assert_eq!(a.data, NpyData::F64(data.to_vec()));
    }

    #[test]
    fn every_supported_dtype_decodes_exactly() {
        let dir = TempDir::new("npy-dtypes");
        let f4: Vec<u8> = [0.5f32, -3.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let i4: Vec<u8> = [7i32, -1].iter().flat_map(|v| v.to_le_bytes()).collect();
        let i8: Vec<u8> = [1i64 << 40, 2]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let cases = [
            ("<f4", f4, NpyData::F32(vec![0.5, -3.0])),
            ("<i4", i4, NpyData::I32(vec![7, -1])),
            ("<i8", i8, NpyData::I64(vec![1 << 40, 2])),
            ("|u1", vec![0, 255], NpyData::U8(vec![0, 255])),
        ];
        for (descr, body, want) in cases {
            let p = dir.write("a.npy", &npy_bytes(descr, "(2,)", &body));
            let a = read_npy(&p).expect("valid npy");
            assert_eq!((a.shape.clone(), a.data), (vec![2], want), "{descr}");
        }
    }

    #[test]
    fn unsupported_dtype_fortran_magic_and_truncation() {
        let dir = TempDir::new("npy-bad");
        let p = dir.write("be.npy", &npy_bytes(">f8", "(1,)", &[0; 8]));
        let err = read_npy(&p).expect_err("big-endian");
        assert!(
            matches!(&err, DataError::UnsupportedDtype { found, .. } if found == ">f8"),
            "{err}"
        );
        assert!(err.to_string().contains("be.npy"));
        let f = b"{'descr': '<f8', 'fortran_order': True, 'shape': (1,), }\n";
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend_from_slice(&(f.len() as u16).to_le_bytes());
        bytes.extend_from_slice(f);
        bytes.extend_from_slice(&[0; 8]);
        let p = dir.write("f.npy", &bytes);
        assert!(matches!(read_npy(&p), Err(DataError::BadHeader { .. })));
        let p = dir.write("m.npy", b"NUMPY\x93\x01\x00\x00\x00");
        assert!(matches!(read_npy(&p), Err(DataError::BadMagic { .. })));
        let p = dir.write("t.npy", &npy_bytes("<f8", "(3,)", &[0; 23]));
        assert!(matches!(read_npy(&p), Err(DataError::Truncated { .. })));
    }

    /// Fuzz findings (eos-fuzz npy, seed 1, inputs 1209, 1218, 2362): a shape whose
    /// element or byte count overflows usize panicked (debug) or wrapped to a small
    /// count that matched the body (release).
    #[test]
    fn shapes_whose_byte_count_overflows_are_rejected() {
        let p = Path::new("o.npy");
        for (descr, shape, body) in [
            ("<f4", "(4611686018427387904, 4)", &[][..]),
            ("<f8", "(2305843009213693952,)", &[][..]),
            (
                "<f8",
                "(18446744073709551615, 18446744073709551615)",
                &[0u8; 8][..],
            ),
            ("|u1", "(4294967296, 4294967296)", &[][..]),
        ] {
            let err = parse_npy(&npy_bytes(descr, shape, body), p).expect_err(shape);
            let msg = err.to_string();
            assert!(matches!(err, DataError::BadHeader { .. }), "{msg}");
            assert!(msg.contains("o.npy") && msg.contains("more bytes"), "{msg}");
        }
        // The largest shape that does not overflow is merely truncated (header +
        // body bytes saturate).
        let err = parse_npy(&npy_bytes("<f8", "(2305843009213693951,)", &[]), p).unwrap_err();
        assert!(
            matches!(err, DataError::Truncated { expected, .. } if expected == u64::MAX),
            "{err}"
        );
    }

    #[test]
    fn dataset_from_npy_pair_labels_and_nan() {
        let dir = TempDir::new("npy-ds");
        let x = dir.path().join("x.npy");
        write_npy_f64(&x, &[3, 1, 2], &[0., 1., 2., 3., 4., 5.]).expect("writable");
        let i8: Vec<u8> = [2i64, 0, 1].iter().flat_map(|v| v.to_le_bytes()).collect();
        let y = dir.write("y.npy", &npy_bytes("<i8", "(3,)", &i8));
        let ds = load_npy_dataset(&x, &y, Targets::OneHot, "n").expect("valid pair");
        assert_eq!((ds.len(), ds.input_dim(), ds.target_dim()), (3, 2, 3));
        assert_eq!(ds.labels.as_deref(), Some(&[2, 0, 1][..]));
        assert_eq!(ds.y_vec().expect("f64")[..3], [0., 0., 1.]);

        let yr = dir.path().join("yr.npy");
        write_npy_f64(&yr, &[3], &[0.5, 1.5, 2.5]).expect("writable");
        let reg = load_npy_dataset(&x, &yr, Targets::OneHot, "r").expect("valid pair");
        assert_eq!((reg.target_dim(), reg.labels.is_none()), (1, true));

        let y2 = dir.path().join("y2.npy");
        write_npy_f64(&y2, &[2], &[1.0, 2.0]).expect("writable");
        assert!(matches!(
            load_npy_dataset(&x, &y2, Targets::OneHot, "c"),
            Err(DataError::CountMismatch {
                n_inputs: 3,
                n_labels: 2,
                ..
            })
        ));

        let xn = dir.path().join("xn.npy");
        write_npy_f64(&xn, &[3, 1], &[0., f64::NAN, 2.]).expect("writable");
        let err = load_npy_dataset(&xn, &y, Targets::OneHot, "nan").expect_err("NaN");
        assert!(
            matches!(err, DataError::NonFinite { index: 1, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("xn.npy"));
    }
}
