//! Datasets stored in a safetensors file (format: huggingface/safetensors README,
//! "Format": an 8-byte little-endian header length, a JSON table of
//! `name → {dtype, shape, data_offsets}`, then the raw little-endian tensor bytes).
//!
//! The tensors are `x` and `y` by default — the names of DESIGN.md's interchange
//! format, so a probe case written by PyTorch/JAX/numpy or by `eos` itself loads as a
//! dataset — or any two names given. Element types read: F64, F32, U8, I32, I64. The
//! `x`/`y` rules (flattening, integer labels, float targets) are those of
//! [`crate::arrays`].

use std::path::Path;

use safetensors::{Dtype, SafeTensors};

use crate::arrays::{dataset_from_arrays, RawArray};
use crate::dataset::Dataset;
use crate::error::{DataError, Result};
use crate::targets::Targets;

/// The element types this reader supports, as printed in errors.
const SUPPORTED: &str = "F64, F32, U8, I32, I64";

/// Loads tensors `x` and `y` of a safetensors file as a dataset.
pub fn load_safetensors_dataset(path: &Path, targets: Targets, name: &str) -> Result<Dataset> {
    load_safetensors_named(path, "x", "y", targets, name)
}

/// Loads the tensors named `x_name` (inputs) and `y_name` (labels or targets) of a
/// safetensors file as a dataset.
pub fn load_safetensors_named(
    path: &Path,
    x_name: &str,
    y_name: &str,
    targets: Targets,
    name: &str,
) -> Result<Dataset> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    parse_safetensors_named(&bytes, path, x_name, y_name, targets, name)
}

/// [`load_safetensors_named`] on the bytes of a file already in memory; `path` only
/// names the file in errors.
pub fn parse_safetensors_named(
    bytes: &[u8],
    path: &Path,
    x_name: &str,
    y_name: &str,
    targets: Targets,
    name: &str,
) -> Result<Dataset> {
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| DataError::header(path, format!("not a valid safetensors file: {e}")))?;
    let x = raw_tensor(&st, path, x_name)?;
    let y = raw_tensor(&st, path, y_name)?;
    dataset_from_arrays(x, (path, x_name), y, (path, y_name), targets, name)
}

/// The tensor `name` of `st`, converted to f64.
pub(crate) fn raw_tensor(st: &SafeTensors<'_>, path: &Path, name: &str) -> Result<RawArray> {
    let view = st.tensor(name).map_err(|_| {
        let mut names = st.names();
        names.sort_unstable();
        DataError::MissingTensor {
            path: path.to_path_buf(),
            name: name.to_string(),
            available: names.join(", "),
        }
    })?;
    let bytes = view.data();
    let (values, integer) = match view.dtype() {
        Dtype::F64 => (decode(bytes, f64::from_le_bytes, |v| v), false),
        Dtype::F32 => (decode(bytes, f32::from_le_bytes, f64::from), false),
        Dtype::U8 => (bytes.iter().map(|&b| f64::from(b)).collect(), true),
        Dtype::I32 => (decode(bytes, i32::from_le_bytes, f64::from), true),
        Dtype::I64 => (decode(bytes, i64::from_le_bytes, |v| v as f64), true),
        other => {
            return Err(DataError::UnsupportedDtype {
                path: path.to_path_buf(),
                tensor: name.to_string(),
                found: format!("{other:?}"),
                expected: SUPPORTED,
            })
        }
    };
    Ok(RawArray {
        shape: view.shape().to_vec(),
        values,
        integer,
    })
}

/// Little-endian `N`-byte elements decoded with `f` and widened to f64 with `g`.
fn decode<T, const N: usize>(bytes: &[u8], f: fn([u8; N]) -> T, g: fn(T) -> f64) -> Vec<f64> {
    bytes
        .chunks_exact(N)
        .map(|c| g(f(c.try_into().expect("chunks_exact yields N bytes"))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempDir;
    use safetensors::tensor::TensorView;

    fn write(
        dir: &TempDir,
        file: &str,
        tensors: Vec<(&str, Dtype, Vec<usize>, Vec<u8>)>,
    ) -> std::path::PathBuf {
        let views: Vec<(String, TensorView<'_>)> = tensors
            .iter()
            .map(|(n, dt, shape, data)| {
                (
                    n.to_string(),
                    TensorView::new(*dt, shape.clone(), data).expect("consistent view"),
                )
            })
            .collect();
        let bytes = safetensors::serialize(views, None).expect("serialisable");
        dir.write(file, &bytes)
    }

    fn f32_bytes(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|a| a.to_le_bytes()).collect()
    }

    #[test]
    fn loads_x_and_one_hot_y_with_inferred_labels() {
        let dir = TempDir::new("st");
        let p = write(
            &dir,
            "d.safetensors",
            vec![
                (
                    "x",
                    Dtype::F32,
                    vec![2, 2],
                    f32_bytes(&[0.5, -1.0, 2.0, 0.25]),
                ),
                (
                    "y",
                    Dtype::F32,
                    vec![2, 3],
                    f32_bytes(&[0., 0., 1., 1., 0., 0.]),
                ),
            ],
        );
        let ds = load_safetensors_dataset(&p, Targets::OneHot, "s").expect("valid file");
        assert_eq!(ds.x_vec().expect("f64"), vec![0.5, -1.0, 2.0, 0.25]);
        assert_eq!(ds.labels.as_deref(), Some(&[2, 0][..]));
        assert_eq!(ds.num_classes, Some(3));
    }

    #[test]
    fn named_tensors_integer_labels_and_errors() {
        let dir = TempDir::new("st-named");
        let i64s: Vec<u8> = [1i64, 0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let p = write(
            &dir,
            "n.safetensors",
            vec![
                (
                    "inputs",
                    Dtype::F32,
                    vec![2, 1],
                    f32_bytes(&[1.0, f32::NAN]),
                ),
                ("classes", Dtype::I64, vec![2], i64s),
                ("half", Dtype::F16, vec![1], vec![0, 0]),
            ],
        );
        let err = load_safetensors_named(&p, "inputs", "classes", Targets::Signed, "s")
            .expect_err("NaN in inputs");
        assert!(
            matches!(err, DataError::NonFinite { index: 1, .. }),
            "{err}"
        );
        let err = load_safetensors_dataset(&p, Targets::OneHot, "s").expect_err("no x");
        let msg = err.to_string();
        assert!(matches!(err, DataError::MissingTensor { .. }), "{msg}");
        assert!(
            msg.contains("n.safetensors") && msg.contains("classes, half, inputs"),
            "{msg}"
        );
        let err =
            load_safetensors_named(&p, "half", "classes", Targets::OneHot, "s").expect_err("f16");
        assert!(matches!(err, DataError::UnsupportedDtype { .. }), "{err}");
        let bytes = std::fs::read(&p).expect("just written");
        let ds = parse_safetensors_named(
            &bytes,
            Path::new("m"),
            "inputs",
            "classes",
            Targets::OneHot,
            "s",
        );
        assert!(
            matches!(ds, Err(DataError::NonFinite { index: 1, .. })),
            "{ds:?}"
        );
        let bad = dir.write("bad.safetensors", &[1, 2, 3]);
        assert!(matches!(
            load_safetensors_dataset(&bad, Targets::OneHot, "s"),
            Err(DataError::BadHeader { .. })
        ));
    }
}
