//! `.npz` archives: a zip file whose members are `.npy` arrays (`name.npy`), written
//! by `numpy.savez` (members stored) or `numpy.savez_compressed` (members deflated);
//! numpy's `numpy/lib/_npyio_impl.py` and `numpy.lib.format`. Each member is parsed
//! by [`crate::npy::parse_npy`].

use std::io::{Read, Seek};
use std::path::Path;

use crate::arrays::dataset_from_arrays;
use crate::npy::{parse_npy, NpyArray};
use crate::{DataError, Dataset, Result, Targets};

/// Every array of the archive, as `(name without .npy, array)`, in archive order.
pub fn read_npz(path: &Path) -> Result<Vec<(String, NpyArray)>> {
    let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    parse_npz(file, path)
}

/// Every array of an archive read from `reader` (a file, or bytes in a
/// [`std::io::Cursor`]); `path` only names the archive in errors.
pub fn parse_npz<R: Read + Seek>(mut reader: R, path: &Path) -> Result<Vec<(String, NpyArray)>> {
    let archive_len = reader
        .seek(std::io::SeekFrom::End(0))
        .map_err(|e| DataError::io(path, e))?;
    let mut zip = zip::ZipArchive::new(reader)
        .map_err(|e| DataError::header(path, format!("not a readable .npz (zip) archive: {e}")))?;
    let mut out = Vec::with_capacity(zip.len());
    for i in 0..zip.len() {
        let mut member = zip
            .by_index(i)
            .map_err(|e| DataError::header(path, format!("member {i}: {e}")))?;
        let name = member.name().to_string();
        let mut bytes = Vec::with_capacity(reservation(member.size(), archive_len));
        member.read_to_end(&mut bytes).map_err(|e| {
            DataError::header(path, format!("member `{name}`: truncated or corrupt: {e}"))
        })?;
        let label = path.join(&name);
        let array = parse_npy(&bytes, &label)?;
        out.push((name.trim_end_matches(".npy").to_string(), array));
    }
    Ok(out)
}

/// A dataset from the members `x_name` and `y_name` of an `.npz` archive (same rules
/// as [`crate::npy::load_npy_dataset`]).
pub fn load_npz_dataset(
    path: &Path,
    x_name: &str,
    y_name: &str,
    targets: Targets,
    name: &str,
) -> Result<Dataset> {
    npz_dataset(read_npz(path)?, path, x_name, y_name, targets, name)
}

/// The bytes to reserve for a member that declares `declared` bytes in an archive of
/// `archive_len` bytes. The declared size is only a hint: a corrupt header may claim
/// any size, so the reservation stays within what the archive can hold (deflate
/// expands at most 1032:1).
fn reservation(declared: u64, archive_len: u64) -> usize {
    usize::try_from(declared.min(archive_len.saturating_mul(1032))).unwrap_or(0)
}

/// A dataset from the members `x_name` and `y_name` of the arrays of an archive
/// ([`read_npz`] / [`parse_npz`]); `path` only names the archive in errors.
pub fn npz_dataset(
    mut arrays: Vec<(String, NpyArray)>,
    path: &Path,
    x_name: &str,
    y_name: &str,
    targets: Targets,
    name: &str,
) -> Result<Dataset> {
    let names: Vec<String> = arrays.iter().map(|(n, _)| n.clone()).collect();
    let mut take = |want: &str| -> Result<NpyArray> {
        match arrays.iter().position(|(n, _)| n == want) {
            Some(i) => Ok(arrays.swap_remove(i).1),
            None => Err(DataError::MissingTensor {
                path: path.to_path_buf(),
                name: want.to_string(),
                available: names.join(", "),
            }),
        }
    };
    let x = take(x_name)?.into_raw();
    let y = take(y_name)?.into_raw();
    dataset_from_arrays(x, (path, x_name), y, (path, y_name), targets, name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::npy_bytes;
    use std::io::Write;

    fn write_npz(path: &Path, method: zip::CompressionMethod) {
        let x: Vec<u8> = [0.5f64, -1.0, 2.0, 3.25, 0.0, 7.5]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let mut z = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
        let opts = zip::write::SimpleFileOptions::default().compression_method(method);
        z.start_file("x.npy", opts).unwrap();
        z.write_all(&npy_bytes("<f8", "(2, 3)", &x)).unwrap();
        z.start_file("y.npy", opts).unwrap();
        z.write_all(&npy_bytes("|u1", "(2,)", &[1, 0])).unwrap();
        z.finish().unwrap();
    }

    #[test]
    fn stored_and_deflated_archives_load_exactly() {
        let dir = std::env::temp_dir().join(format!("eos-npz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (i, m) in [
            zip::CompressionMethod::Stored,
            zip::CompressionMethod::Deflated,
        ]
        .into_iter()
        .enumerate()
        {
            let p = dir.join(format!("d{i}.npz"));
            write_npz(&p, m);
            let arrays = read_npz(&p).unwrap();
            assert_eq!(arrays[0].0, "x");
            assert_eq!(arrays[0].1.to_f64(), vec![0.5, -1.0, 2.0, 3.25, 0.0, 7.5]);
            let bytes = std::fs::read(&p).unwrap();
            let mem = parse_npz(std::io::Cursor::new(&bytes), Path::new("m")).unwrap();
            assert_eq!(mem[1].1.to_f64(), vec![1.0, 0.0]);
            let ds = load_npz_dataset(&p, "x", "y", Targets::OneHot, "t").unwrap();
            assert_eq!(ds.len(), 2);
            assert_eq!(ds.x.to_vec2::<f64>().unwrap()[1], vec![3.25, 0.0, 7.5]);
            assert_eq!(ds.labels.as_deref(), Some(&[1u32, 0][..]));
            let e = load_npz_dataset(&p, "x", "labels", Targets::OneHot, "t").unwrap_err();
            assert!(e.to_string().contains("no tensor named `labels`"), "{e}");
            // Truncated archive.
            let bytes = std::fs::read(&p).unwrap();
            let t = dir.join(format!("t{i}.npz"));
            std::fs::write(&t, &bytes[..bytes.len() / 2]).unwrap();
            assert!(read_npz(&t).is_err());
        }
        let bad = dir.join("bad.npz");
        std::fs::write(&bad, b"not a zip at all").unwrap();
        let e = read_npz(&bad).unwrap_err().to_string();
        assert!(
            e.contains("bad.npz") && e.contains("not a readable .npz"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    /// Fuzz finding (eos-fuzz npz, seed 1, input 1878): a 374-byte archive whose
    /// member declared 134 217 728 bytes made the reader reserve 128 MiB.
    #[test]
    fn declared_member_size_does_not_drive_the_reservation() {
        assert_eq!(reservation(134_217_728, 374), 374 * 1032);
        assert_eq!(reservation(1000, 374), 1000);
        let path = std::env::temp_dir().join(format!("eos-npz-size-{}.npz", std::process::id()));
        write_npz(&path, zip::CompressionMethod::Stored);
        let mut bytes = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).ok();
        // The uncompressed size of the first central-directory entry, 24 bytes after
        // its signature PK\x01\x02.
        let cd = bytes.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
        bytes[cd + 24..cd + 28].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
        // A stored member is read by its compressed size: the archive still loads,
        // without a 4 GiB reservation first.
        let arrays = parse_npz(std::io::Cursor::new(&bytes), Path::new("big.npz")).unwrap();
        assert_eq!(arrays[0].1.to_f64(), vec![0.5, -1.0, 2.0, 3.25, 0.0, 7.5]);
    }
}
