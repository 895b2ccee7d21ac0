//! The `file` data kind: a dataset read from a file holding arrays `x` and `y`, with
//! `x`'s full shape kept (`[n, d]`, `[n, C, H, W]`, `[n, T]` token ids, …) — for
//! networks beyond the MLP, where [`crate::arrays`]' flattening rules do not fit.
//!
//! Files ([`FileFormat`], inferred from the extension when not given):
//!
//! - **safetensors** (`.safetensors`, and any other extension): tensors `x`, `y`; other
//!   tensors are ignored, so the batch of an eos interchange / `eos-net/1` file loads
//!   as is ([`crate::tensors_file`]);
//! - **`.npz`**: members `x.npy`, `y.npy` ([`crate::npz`]);
//! - **`.npy` pair**: `path` holds `x`, `y_path` holds `y` ([`crate::npy`]).
//!
//! ```text
//! x  float [n, …]        values as stored; [n] becomes [n, 1]; NaN/Inf rejected
//! x  integer [n, …]      (U8, I32, I64) whole-number floats: the id representation
//!                        of the `embedding` layer (exact up to 2^53)
//! y  integer [n]/[n, 1]  class labels 0..k−1, k = max + 1, encoded by `targets`
//! y  otherwise [n, …]    targets as stored, as floats, full shape ([n] → [n, 1]);
//!                        NaN/Inf rejected; [n, k] rows that are exactly one-hot
//!                        also give labels
//! ```
//!
//! Every error names the file and the tensor: a missing `x`/`y` (with the names the
//! file holds), disagreeing sample counts, a non-finite value (flat index and value),
//! an unsupported dtype.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use safetensors::SafeTensors;
use serde::{Deserialize, Serialize};

use crate::arrays::{infer_labels, RawArray};
use crate::dataset::{matrix, Dataset};
use crate::error::{DataError, Result};
use crate::npy::read_npy;
use crate::npz::read_npz;
use crate::read::check_finite;
use crate::targets::Targets;
use crate::tensors_file::raw_tensor;

/// The container of a `file` dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    /// A safetensors file with tensors `x` and `y` (others ignored).
    Safetensors,
    /// A numpy `.npz` archive with members `x` and `y`.
    Npz,
    /// Two `.npy` files: `path` (x) and `y_path` (y).
    Npy,
}

/// Configuration of a dataset read from a file (`[data] kind = "file"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// The file: safetensors, `.npz`, or the `.npy` holding `x`.
    pub path: PathBuf,
    /// The `.npy` holding `y`; required for (and only for) the `.npy` pair.
    #[serde(default)]
    pub y_path: Option<PathBuf>,
    /// The container; inferred from `path`'s extension when absent (`.npz` → npz,
    /// `.npy` → npy pair, anything else → safetensors).
    #[serde(default)]
    pub format: Option<FileFormat>,
    /// Name of the inputs tensor / member (default `x`).
    #[serde(default = "default_x")]
    pub x: String,
    /// Name of the targets tensor / member (default `y`).
    #[serde(default = "default_y")]
    pub y: String,
    /// Encoding of integer class labels `y [n]` (default one-hot).
    #[serde(default)]
    pub targets: Targets,
}

fn default_x() -> String {
    "x".into()
}

fn default_y() -> String {
    "y".into()
}

impl FileConfig {
    /// A configuration reading tensors `x`, `y` of `path`, format from the extension.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileConfig {
            path: path.into(),
            y_path: None,
            format: None,
            x: default_x(),
            y: default_y(),
            targets: Targets::OneHot,
        }
    }

    /// The format: `format` if given, else from `path`'s extension.
    pub fn resolved_format(&self) -> FileFormat {
        self.format
            .unwrap_or_else(|| match self.path.extension().and_then(|e| e.to_str()) {
                Some(e) if e.eq_ignore_ascii_case("npz") => FileFormat::Npz,
                Some(e) if e.eq_ignore_ascii_case("npy") => FileFormat::Npy,
                _ => FileFormat::Safetensors,
            })
    }
}

/// Loads the dataset `cfg` describes (rules in the module docs), named after the file.
pub fn load_file_dataset(cfg: &FileConfig) -> Result<Dataset> {
    let path = cfg.path.as_path();
    let name = path.display().to_string();
    let format = cfg.resolved_format();
    if format != FileFormat::Npy {
        if let Some(y_path) = &cfg.y_path {
            return Err(DataError::Invalid(format!(
                "{name}: y_path {} is only used with a .npy pair, but the format is {format:?}",
                y_path.display()
            )));
        }
    }
    let ((x, x_src), (y, y_src)) = match format {
        FileFormat::Safetensors => {
            let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
            let st = SafeTensors::deserialize(&bytes).map_err(|e| {
                DataError::header(path, format!("not a valid safetensors file: {e}"))
            })?;
            let x = raw_tensor(&st, path, &cfg.x)?;
            let y = raw_tensor(&st, path, &cfg.y)?;
            ((x, path.to_path_buf()), (y, path.to_path_buf()))
        }
        FileFormat::Npz => {
            let (x, y) = npz_pair(path, &cfg.x, &cfg.y)?;
            ((x, path.to_path_buf()), (y, path.to_path_buf()))
        }
        FileFormat::Npy => {
            let y_path = cfg.y_path.as_deref().ok_or_else(|| {
                DataError::Invalid(format!(
                    "{name}: a .npy `file` dataset needs y_path, the .npy file holding y"
                ))
            })?;
            let x = read_npy(path)?.into_raw();
            let y = read_npy(y_path)?.into_raw();
            ((x, path.to_path_buf()), (y, y_path.to_path_buf()))
        }
    };
    dataset_keep_shape(x, (&x_src, &cfg.x), y, (&y_src, &cfg.y), cfg.targets, &name)
}

/// Members `x_name` and `y_name` of an `.npz` archive.
fn npz_pair(path: &Path, x_name: &str, y_name: &str) -> Result<(RawArray, RawArray)> {
    let mut arrays = read_npz(path)?;
    let names: Vec<String> = arrays.iter().map(|(n, _)| n.clone()).collect();
    let mut take = |want: &str| -> Result<RawArray> {
        match arrays.iter().position(|(n, _)| n == want) {
            Some(i) => Ok(arrays.swap_remove(i).1.into_raw()),
            None => Err(DataError::MissingTensor {
                path: path.to_path_buf(),
                name: want.to_string(),
                available: names.join(", "),
            }),
        }
    };
    let x = take(x_name)?;
    let y = take(y_name)?;
    Ok((x, y))
}

/// A dataset from stored `x` and `y`, keeping `x`'s shape (module docs).
fn dataset_keep_shape(
    x: RawArray,
    x_src: (&Path, &str),
    y: RawArray,
    y_src: (&Path, &str),
    targets: Targets,
    name: &str,
) -> Result<Dataset> {
    let x_shape = sample_shape(&x.shape, x_src)?;
    let y_shape = sample_shape(&y.shape, y_src)?;
    let (n, ny) = (x_shape[0], y_shape[0]);
    if n != ny {
        return Err(DataError::CountMismatch {
            inputs: format!("{} `{}`", x_src.0.display(), x_src.1),
            n_inputs: n,
            labels: format!("{} `{}`", y_src.0.display(), y_src.1),
            n_labels: ny,
        });
    }
    check_finite(&x.values, x_src.0, x_src.1)?;
    let xt = Tensor::from_vec(x.values, x_shape, &Device::Cpu)?;
    if y.integer && y_shape[1..] == [1] {
        let labels = class_labels(&y.values, y_src)?;
        let k = labels.iter().max().map_or(0, |&m| m as usize + 1);
        let enc = targets.encode(&labels, k, name)?;
        let yt = matrix(enc, n, targets.width(k), name, "y")?;
        return Dataset::new(xt, yt, Some(labels), Some(k), name);
    }
    check_finite(&y.values, y_src.0, y_src.1)?;
    let inferred = match y_shape[..] {
        [_, k] if !y.integer => infer_labels(&y.values, n, k),
        _ => None,
    };
    let yt = Tensor::from_vec(y.values, y_shape, &Device::Cpu)?;
    match inferred {
        Some((labels, k)) => Dataset::new(xt, yt, Some(labels), Some(k), name),
        None => Dataset::new(xt, yt, None, None, name),
    }
}

/// The shape `[n, …]` of a stored array, `[n]` read as `[n, 1]`; a scalar is an error.
fn sample_shape(shape: &[usize], src: (&Path, &str)) -> Result<Vec<usize>> {
    match shape {
        [] => Err(DataError::header(
            src.0,
            format!("`{}` is a scalar; expected an array of shape [n, …]", src.1),
        )),
        [n] => Ok(vec![*n, 1]),
        s => Ok(s.to_vec()),
    }
}

/// Integer values as class labels, each in `0..=u32::MAX`.
fn class_labels(values: &[f64], src: (&Path, &str)) -> Result<Vec<u32>> {
    values
        .iter()
        .enumerate()
        .map(|(index, &v)| {
            if (0.0..=f64::from(u32::MAX)).contains(&v) {
                Ok(v as u32)
            } else {
                Err(DataError::BadLabel {
                    source_name: format!("{} `{}`", src.0.display(), src.1),
                    index,
                    label: v as i64,
                    num_classes: 0,
                })
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{npy_bytes, TempDir};
    use safetensors::tensor::TensorView;
    use safetensors::Dtype;
    use std::io::Write;

    fn le<T: Copy, const N: usize>(v: &[T], f: fn(T) -> [u8; N]) -> Vec<u8> {
        v.iter().flat_map(|&a| f(a)).collect()
    }

    fn safetensors_file(
        dir: &TempDir,
        file: &str,
        tensors: &[(&str, Dtype, Vec<usize>, Vec<u8>)],
    ) -> PathBuf {
        let views: Vec<(String, TensorView<'_>)> = tensors
            .iter()
            .map(|(n, dt, shape, data)| {
                let view = TensorView::new(*dt, shape.clone(), data).expect("consistent view");
                (n.to_string(), view)
            })
            .collect();
        dir.write(
            file,
            &safetensors::serialize(views, None).expect("serialisable"),
        )
    }

    #[test]
    fn safetensors_image_x_keeps_its_shape_and_extra_tensors_are_ignored() {
        let dir = TempDir::new("file-st");
        let xs: Vec<f32> = (0..8).map(|i| i as f32 * 0.5).collect();
        let p = safetensors_file(
            &dir,
            "batch.eosnet",
            &[
                ("x", Dtype::F32, vec![2, 1, 2, 2], le(&xs, f32::to_le_bytes)),
                (
                    "y",
                    Dtype::F32,
                    vec![2, 3],
                    le(&[0f32, 0., 1., 1., 0., 0.], f32::to_le_bytes),
                ),
                ("layer0.w", Dtype::F16, vec![1], vec![0, 0]),
            ],
        );
        let ds = load_file_dataset(&FileConfig::new(&p)).expect("valid file");
        assert_eq!((ds.x.dims(), ds.y.dims()), (&[2, 1, 2, 2][..], &[2, 3][..]));
        assert_eq!(
            ds.x_vec().expect("f64"),
            vec![0., 0.5, 1., 1.5, 2., 2.5, 3., 3.5]
        );
        assert_eq!(ds.labels.as_deref(), Some(&[2, 0][..]));
        assert_eq!(ds.num_classes, Some(3));
    }

    #[test]
    fn integer_ids_become_whole_floats_and_sequence_targets_keep_rank_3() {
        let dir = TempDir::new("file-ids");
        let ids = le(&[3i64, 0, 2, 1, 1, 0], i64::to_le_bytes);
        let mut y = vec![0f64; 2 * 3 * 4];
        for (i, s) in [0usize, 2, 3, 0, 1, 1].iter().enumerate() {
            y[i * 4 + s] = 1.0;
        }
        let p = safetensors_file(
            &dir,
            "sort.safetensors",
            &[
                ("x", Dtype::I64, vec![2, 3], ids),
                ("y", Dtype::F64, vec![2, 3, 4], le(&y, f64::to_le_bytes)),
            ],
        );
        let ds = load_file_dataset(&FileConfig::new(&p)).expect("valid file");
        assert_eq!(
            ds.x.to_vec2::<f64>().expect("rank 2"),
            vec![vec![3., 0., 2.], vec![1., 1., 0.]]
        );
        assert_eq!(ds.y.dims(), &[2, 3, 4]);
        assert_eq!(ds.y_vec().expect("f64"), y);
        assert_eq!((ds.labels.is_none(), ds.target_dim()), (true, 4));
    }

    #[test]
    fn npz_and_npy_pair_with_integer_labels() {
        let dir = TempDir::new("file-np");
        let xb = npy_bytes(
            "<f8",
            "(2, 2, 2)",
            &le(&[1.0f64, 2., 3., 4., 5., 6., 7., 8.], f64::to_le_bytes),
        );
        let yb = npy_bytes("|u1", "(2,)", &[1, 0]);
        let npz = dir.path().join("d.npz");
        let mut z = zip::ZipWriter::new(std::fs::File::create(&npz).expect("writable"));
        let opts = zip::write::SimpleFileOptions::default();
        z.start_file("x.npy", opts).expect("zip");
        z.write_all(&xb).expect("zip");
        z.start_file("y.npy", opts).expect("zip");
        z.write_all(&yb).expect("zip");
        z.finish().expect("zip");
        let xp = dir.write("x.npy", &xb);
        let yp = dir.write("y.npy", &yb);
        let pair = FileConfig {
            y_path: Some(yp),
            targets: Targets::Signed,
            ..FileConfig::new(&xp)
        };
        for (cfg, y) in [
            (FileConfig::new(&npz), vec![0., 1., 1., 0.]),
            (pair, vec![1., -1.]),
        ] {
            let ds = load_file_dataset(&cfg).expect("valid files");
            assert_eq!(ds.x.dims(), &[2, 2, 2]);
            assert_eq!(ds.x_vec().expect("f64")[5], 6.0);
            assert_eq!(ds.labels.as_deref(), Some(&[1, 0][..]));
            assert_eq!(ds.y_vec().expect("f64"), y);
        }
        let no_y = load_file_dataset(&FileConfig::new(&xp)).expect_err("no y_path");
        assert!(no_y.to_string().contains("y_path"), "{no_y}");
    }

    #[test]
    fn errors_name_the_file_and_tensor() {
        let dir = TempDir::new("file-err");
        let two = le(&[1f32, 2.], f32::to_le_bytes);
        let p = safetensors_file(
            &dir,
            "bad.safetensors",
            &[
                ("x", Dtype::F32, vec![2, 1], two.clone()),
                (
                    "y3",
                    Dtype::F32,
                    vec![3, 1],
                    le(&[1f32, 2., 3.], f32::to_le_bytes),
                ),
                (
                    "ynan",
                    Dtype::F32,
                    vec![2],
                    le(&[0f32, f32::INFINITY], f32::to_le_bytes),
                ),
            ],
        );
        let msg = load_file_dataset(&FileConfig::new(&p))
            .expect_err("no y")
            .to_string();
        assert!(
            msg.contains("bad.safetensors") && msg.contains("`y`") && msg.contains("x, y3, ynan"),
            "{msg}"
        );
        let cfg = FileConfig {
            y: "y3".into(),
            ..FileConfig::new(&p)
        };
        let err = load_file_dataset(&cfg).expect_err("2 vs 3 samples");
        let msg = err.to_string();
        assert!(
            matches!(
                err,
                DataError::CountMismatch {
                    n_inputs: 2,
                    n_labels: 3,
                    ..
                }
            ),
            "{msg}"
        );
        assert!(msg.contains("bad.safetensors `y3`"), "{msg}");
        let cfg = FileConfig {
            y: "ynan".into(),
            ..FileConfig::new(&p)
        };
        let err = load_file_dataset(&cfg).expect_err("infinite target");
        let msg = err.to_string();
        assert!(
            matches!(err, DataError::NonFinite { index: 1, .. }),
            "{msg}"
        );
        assert!(
            msg.contains("bad.safetensors") && msg.contains("`ynan`"),
            "{msg}"
        );
        let cfg = FileConfig {
            y_path: Some(p.clone()),
            ..FileConfig::new(&p)
        };
        assert!(load_file_dataset(&cfg).is_err());
        let parsed: FileConfig = serde_json::from_str(r#"{"path": "a.npz"}"#).expect("defaults");
        assert_eq!(
            (parsed.resolved_format(), parsed.x.as_str()),
            (FileFormat::Npz, "x")
        );
        assert!(serde_json::from_str::<FileConfig>(r#"{"path": "a", "typo": 1}"#).is_err());
    }
}
