//! The interchange format: one safetensors file holding a model and, optionally, a
//! batch, a direction and extra tensors (DESIGN.md, "Interchange format").
//!
//! Tensors: `layers.{i}.weight` `[out, in]`, `layers.{i}.bias` `[out]` (absent when the
//! layer has no bias), optional `x` `[n, d_in]`, `y` `[n, d_out]`, optional direction
//! `v.layers.{i}.weight|bias`. String metadata: `activation` (relu | leaky_relu:a |
//! tanh | identity | gelu | silu), `loss` (mse | mse_mean_all | cross_entropy |
//! logistic), `multipliers` (comma-separated per-layer forward multipliers). Any tool
//! that reads safetensors (PyTorch, JAX, numpy) can read what eos writes. Writes are
//! atomic: a temporary file in the same folder, then a rename.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use safetensors::{Dtype, SafeTensors};

use crate::{Activation, Batch, Error, LayerParams, Loss, Mlp, ParamVec, Result};

/// A model and what travels with it in one file.
#[derive(Debug)]
pub struct ProbeCase {
    pub mlp: Mlp,
    pub loss: Option<Loss>,
    pub batch: Option<Batch>,
    pub v: Option<ParamVec>,
    /// Tensors with other names (reference values, optimizer state, ...), in the
    /// case's dtype.
    pub extra: HashMap<String, Tensor>,
    pub metadata: HashMap<String, String>,
}

fn file_err(path: &Path, msg: impl Into<String>) -> Error {
    Error::File {
        path: path.display().to_string(),
        msg: msg.into(),
    }
}

/// Loads a case. `dtype` converts every tensor (default: the dtype of
/// `layers.0.weight`); tensors land on `device`.
pub fn load_case(path: &Path, dtype: Option<DType>, device: &Device) -> Result<ProbeCase> {
    let bytes = std::fs::read(path).map_err(|e| file_err(path, format!("cannot read: {e}")))?;
    load_case_bytes(&bytes, path, dtype, device)
}

/// [`load_case`] on the bytes of a file already in memory; `path` only names the file
/// in errors.
pub fn load_case_bytes(
    bytes: &[u8],
    path: &Path,
    dtype: Option<DType>,
    device: &Device,
) -> Result<ProbeCase> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| {
        file_err(
            path,
            format!("not a valid safetensors file (truncated or corrupt?): {e}"),
        )
    })?;
    let (_, meta) = SafeTensors::read_metadata(bytes)
        .map_err(|e| file_err(path, format!("unreadable safetensors header: {e}")))?;
    let metadata = meta.metadata().clone().unwrap_or_default();
    let first = raw_tensor(&st, "layers.0.weight", path)?.ok_or_else(|| {
        file_err(
            path,
            "missing tensor `layers.0.weight` (expected layers.{i}.weight [out, in])",
        )
    })?;
    let r = Reader {
        st: &st,
        path,
        dtype: dtype.unwrap_or(first.dtype()),
        device,
    };
    let layers = r.layers("")?;
    r.check_no_orphan_layers(layers.len())?;
    let mlp = mlp_of(layers, &metadata, path)?;
    let loss = metadata
        .get("loss")
        .map(|l| Loss::parse(l).map_err(|e| file_err(path, format!("metadata `loss`: {e}"))))
        .transpose()?;
    let batch = r.batch(&mlp)?;
    let v = r.direction(&mlp)?;
    let extra = r.extra()?;
    Ok(ProbeCase {
        mlp,
        loss,
        batch,
        v,
        extra,
        metadata,
    })
}

/// A tensor of the file on the host in its own float dtype; `None` when absent.
fn raw_tensor(st: &SafeTensors, name: &str, path: &Path) -> Result<Option<Tensor>> {
    let Ok(view) = st.tensor(name) else {
        return Ok(None);
    };
    let dt = match view.dtype() {
        Dtype::F32 => DType::F32,
        Dtype::F64 => DType::F64,
        other => {
            return Err(file_err(
                path,
                format!("tensor `{name}`: unsupported dtype {other:?} (expected F32 or F64)"),
            ))
        }
    };
    let t = Tensor::from_raw_buffer(view.data(), dt, view.shape(), &Device::Cpu)?;
    Ok(Some(t))
}

/// Reads the tensors of one file in the case's dtype, on its device.
struct Reader<'a> {
    st: &'a SafeTensors<'a>,
    path: &'a Path,
    dtype: DType,
    device: &'a Device,
}

impl Reader<'_> {
    fn get(&self, name: &str) -> Result<Option<Tensor>> {
        raw_tensor(self.st, name, self.path)?
            .map(|t| Ok(t.to_dtype(self.dtype)?.to_device(self.device)?))
            .transpose()
    }

    /// `{prefix}layers.{i}.weight|bias` for i = 0, 1, … up to the first missing weight.
    fn layers(&self, prefix: &str) -> Result<Vec<LayerParams>> {
        let mut layers = Vec::new();
        while let Some(w) = self.get(&format!("{prefix}layers.{}.weight", layers.len()))? {
            let b = self.get(&format!("{prefix}layers.{}.bias", layers.len()))?;
            layers.push(LayerParams { weight: w, bias: b });
        }
        Ok(layers)
    }

    /// A later layer without its predecessors is a broken file, not a shorter model.
    fn check_no_orphan_layers(&self, depth: usize) -> Result<()> {
        for name in self.st.names() {
            let idx: Option<usize> = name
                .strip_prefix("layers.")
                .and_then(|rest| rest.split('.').next())
                .and_then(|s| s.parse().ok());
            if idx.is_some_and(|i| i >= depth) {
                return Err(file_err(
                    self.path,
                    format!("tensor `{name}` present but `layers.{depth}.weight` is missing"),
                ));
            }
        }
        Ok(())
    }

    /// `x` and `y` (both or neither), checked against the model.
    fn batch(&self, mlp: &Mlp) -> Result<Option<Batch>> {
        match (self.get("x")?, self.get("y")?) {
            (Some(x), Some(y)) => {
                let b = Batch::new(x, y);
                mlp.check_batch(&b)
                    .map_err(|e| file_err(self.path, e.to_string()))?;
                Ok(Some(b))
            }
            (None, None) => Ok(None),
            (Some(_), None) => Err(file_err(self.path, "tensor `x` present but `y` missing")),
            (None, Some(_)) => Err(file_err(self.path, "tensor `y` present but `x` missing")),
        }
    }

    /// The direction `v.layers.*`, of the model's structure, if present.
    fn direction(&self, mlp: &Mlp) -> Result<Option<ParamVec>> {
        let layers = self.layers("v.")?;
        if layers.is_empty() {
            return Ok(None);
        }
        let v = ParamVec { layers };
        mlp.params
            .check_same_structure(&v)
            .map_err(|e| file_err(self.path, format!("direction `v.`: {e}")))?;
        Ok(Some(v))
    }

    /// Float tensors with other names; extras of other dtypes (integer step counters,
    /// …) are not ours to read.
    fn extra(&self) -> Result<HashMap<String, Tensor>> {
        let mut extra = HashMap::new();
        for name in self.st.names() {
            let known = name.starts_with("layers.")
                || name.starts_with("v.layers.")
                || name == "x"
                || name == "y";
            let float = matches!(
                self.st.tensor(name).map(|v| v.dtype()),
                Ok(Dtype::F32 | Dtype::F64)
            );
            if !known && float {
                if let Some(t) = self.get(name)? {
                    extra.insert(name.to_string(), t);
                }
            }
        }
        Ok(extra)
    }
}

/// The MLP of `layers` with the metadata's `activation` and `multipliers`.
fn mlp_of(
    layers: Vec<LayerParams>,
    metadata: &HashMap<String, String>,
    path: &Path,
) -> Result<Mlp> {
    let depth = layers.len();
    let activation = match metadata.get("activation") {
        Some(a) => Activation::parse(a)
            .map_err(|e| file_err(path, format!("metadata `activation`: {e}")))?,
        None => {
            return Err(file_err(
                path,
                "metadata `activation` missing (expected relu, leaky_relu:a, identity, tanh, gelu or silu)",
            ))
        }
    };
    let multipliers = match metadata.get("multipliers") {
        Some(s) => s
            .split(',')
            .map(|v| {
                v.trim().parse::<f64>().map_err(|_| {
                    file_err(
                        path,
                        format!("metadata `multipliers`: `{v}` is not a number (expected {depth} comma-separated numbers)"),
                    )
                })
            })
            .collect::<Result<Vec<f64>>>()?,
        None => vec![1.0; depth],
    };
    Mlp::new(ParamVec { layers }, multipliers, activation)
        .map_err(|e| file_err(path, e.to_string()))
}

/// Fault injection for the crash tests (crates/cli/tests/reliability.rs): when this
/// variable equals the file name being written (e.g. `step-28.safetensors`), the
/// process aborts after the temporary file is written and before the rename — the
/// crash atomic writes exist for. Unset, it costs one environment lookup per write.
pub const FAULT_ABORT_BEFORE_RENAME: &str = "EOS_FAULT_ABORT_BEFORE_RENAME";

/// Writes `bytes` to `path` atomically (temporary file + rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    // A failed write (a full disk) removes its temporary file: it would keep the disk full.
    std::fs::write(&tmp, bytes).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        file_err(&tmp, format!("cannot write: {e}"))
    })?;
    if std::env::var_os(FAULT_ABORT_BEFORE_RENAME).is_some_and(|v| Some(&*v) == path.file_name()) {
        std::process::abort();
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        file_err(path, format!("cannot rename into place: {e}"))
    })
}

/// Saves a model with optional loss, batch, direction and extra tensors/metadata.
pub fn save_case(
    path: &Path,
    mlp: &Mlp,
    loss: Option<Loss>,
    batch: Option<&Batch>,
    v: Option<&ParamVec>,
    extra: &[(String, Tensor)],
    extra_meta: &[(String, String)],
) -> Result<()> {
    let mut tensors = mlp.params.named_tensors("");
    if let Some(b) = batch {
        tensors.push(("x".into(), b.x.clone()));
        tensors.push(("y".into(), b.y.clone()));
    }
    if let Some(v) = v {
        tensors.extend(v.named_tensors("v."));
    }
    tensors.extend(extra.iter().cloned());
    let tensors: Vec<(String, Tensor)> = tensors
        .into_iter()
        .map(|(n, t)| Ok((n, t.to_device(&Device::Cpu)?.contiguous()?)))
        .collect::<Result<_>>()?;
    let mut meta: HashMap<String, String> = extra_meta.iter().cloned().collect();
    meta.insert("activation".into(), mlp.activation.name());
    if let Some(l) = loss {
        meta.insert("loss".into(), l.name().into());
    }
    let mults: Vec<String> = mlp.multipliers.iter().map(|m| format!("{m:?}")).collect();
    meta.insert("multipliers".into(), mults.join(","));
    let bytes = safetensors::serialize(tensors.iter().map(|(n, t)| (n.as_str(), t)), Some(meta))
        .map_err(|e| file_err(path, format!("cannot serialise: {e}")))?;
    write_atomic(path, &bytes)
}
