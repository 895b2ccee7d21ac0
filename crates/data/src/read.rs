//! Reading a data file into memory, gunzipping it when it is gzip-compressed, and the
//! finiteness check every float loader applies.
//!
//! Gzip is recognised by its magic bytes `1f 8b` (RFC 1952 §2.3.1), not by the file
//! name, so `train-images-idx3-ubyte` and `train-images-idx3-ubyte.gz` both load
//! whichever way they are stored. Multi-member gzip streams are decoded in full.

use std::io::Read;
use std::path::Path;

use flate2::read::MultiGzDecoder;

use crate::error::{DataError, Result};

/// The two bytes every gzip member starts with (RFC 1952).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The bytes of `path`, decompressed if the file is gzip.
pub fn read_maybe_gzip(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    gunzip_if_gzip(raw, path)
}

/// `raw` decompressed if it is gzip, else `raw` itself; `path` only names the file in
/// errors.
pub fn gunzip_if_gzip(raw: Vec<u8>, path: &Path) -> Result<Vec<u8>> {
    if raw.len() >= 2 && raw[..2] == GZIP_MAGIC {
        let mut out = Vec::with_capacity(raw.len() * 4);
        MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| DataError::io(path, e))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Fails with [`DataError::NonFinite`] at the first NaN or infinity in `values`.
pub(crate) fn check_finite(values: &[f64], path: &Path, tensor: &str) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(index) => Err(DataError::NonFinite {
            path: path.to_path_buf(),
            tensor: tensor.to_string(),
            index,
            value: values[index],
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempDir;
    use std::io::Write;

    #[test]
    fn gzip_is_detected_by_magic_not_name() {
        let dir = TempDir::new("read");
        let payload: Vec<u8> = (0..=255).collect();
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&payload).expect("in-memory write");
        let gz = enc.finish().expect("in-memory gzip");
        let plain = dir.write("plain.gz", &payload);
        let packed = dir.write("packed.bin", &gz);
        assert_eq!(read_maybe_gzip(&plain).expect("readable"), payload);
        assert_eq!(read_maybe_gzip(&packed).expect("readable"), payload);
    }

    #[test]
    fn corrupt_gzip_and_missing_file_name_the_file() {
        let dir = TempDir::new("read-bad");
        let bad = dir.write("bad.gz", &[0x1f, 0x8b, 8, 0, 1, 2, 3]);
        let msg = read_maybe_gzip(&bad).expect_err("corrupt").to_string();
        assert!(msg.contains("bad.gz"), "{msg}");
        let missing = dir.path().join("nope.idx");
        let msg = read_maybe_gzip(&missing).expect_err("missing").to_string();
        assert!(msg.contains("nope.idx"), "{msg}");
    }
}
