//! The eos-net/1 interchange format: one safetensors file holding a network, a batch
//! and optionally a direction, readable and writable by any safetensors tool.
//!
//! Metadata: `format` = "eos-net/1", `model` = a JSON list of layer objects
//! ([`super::spec`]), `loss` (mse | mse_mean_all | cross_entropy | logistic).
//! Tensors: `x` (float `[n, …]`, or integer ids `[n, T]` as I64 or I32 when the first
//! layer is an embedding), `y`, the parameters by path (`layers.{i}.weight`,
//! `layers.{i}.bias`, `layers.{i}.body.{j}.…`, `layers.{i}.qkv.weight`,
//! `layers.{i}.proj.weight`), and optionally a direction: `v.` + every parameter name.
//! A file of the MLP format ([`crate::io`]) loads as the equivalent dense + act network.
//! Every bad input is one error naming the tensor or layer and what was expected.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use safetensors::{Dtype, SafeTensors};

use super::spec::{layers_json, parse_layers};
use super::{seq_shapes, ActLayer, Dense, LayerKind, NetParams, Network};
use crate::io::write_atomic;
use crate::{Batch, Error, Loss, Mlp, Result};

/// The format tag.
pub const FORMAT: &str = "eos-net/1";

/// A network and what travels with it in one file.
#[derive(Debug)]
pub struct NetCase {
    pub net: Network,
    pub loss: Option<Loss>,
    pub batch: Option<Batch>,
    pub v: Option<NetParams>,
    pub metadata: HashMap<String, String>,
}

fn ferr(path: &Path, msg: impl Into<String>) -> Error {
    Error::File {
        path: path.display().to_string(),
        msg: msg.into(),
    }
}

impl Network {
    /// The dense + act network computing the same function as `mlp` (parameters in the
    /// same flat order, dense layers at paths `layers.{2l}`).
    pub fn from_mlp(mlp: &Mlp) -> Result<Self> {
        let depth = mlp.depth();
        let mut layers = Vec::new();
        let mut names = Vec::new();
        let mut tensors = Vec::new();
        for (l, p) in mlp.params.layers.iter().enumerate() {
            let i = layers.len();
            layers.push(LayerKind::Dense(Dense {
                out: p.weight.dims()[0],
                bias: p.bias.is_some(),
                multiplier: mlp.multipliers[l],
            }));
            names.push(format!("layers.{i}.weight"));
            tensors.push(p.weight.clone());
            if let Some(b) = &p.bias {
                names.push(format!("layers.{i}.bias"));
                tensors.push(b.clone());
            }
            if l + 1 < depth {
                layers.push(LayerKind::Act(ActLayer { f: mlp.activation }));
            }
        }
        let input = [mlp.widths()[0]];
        let mut net = Self::new(layers, &input, NetParams::new(names, tensors)?)?;
        net.chunk_size = mlp.chunk_size;
        Ok(net)
    }
}

/// A tensor's values (as f64), shape and stored dtype.
type Raw = (Vec<f64>, Vec<usize>, Dtype);

/// Builds a tensor of the case's dtype and device from values and a shape.
type MakeTensor<'a> = &'a dyn Fn(Vec<f64>, &[usize]) -> Result<Tensor>;

/// A tensor of the file as f64 values with its shape and dtype (any float or integer
/// dtype eos reads).
fn read_f64(st: &SafeTensors, name: &str, path: &Path) -> Result<Option<Raw>> {
    let Ok(view) = st.tensor(name) else {
        return Ok(None);
    };
    let (d, shape) = (view.data(), view.shape().to_vec());
    let vals: Vec<f64> = match view.dtype() {
        Dtype::F64 => d
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect(),
        Dtype::F32 => d
            .chunks_exact(4)
            .map(|c| f64::from(f32::from_le_bytes(c.try_into().expect("4 bytes"))))
            .collect(),
        Dtype::I64 => d
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")) as f64)
            .collect(),
        Dtype::I32 => d
            .chunks_exact(4)
            .map(|c| f64::from(i32::from_le_bytes(c.try_into().expect("4 bytes"))))
            .collect(),
        other => {
            return Err(ferr(
                path,
                format!(
                    "tensor `{name}`: unsupported dtype {other:?} (expected F32, F64, I64 or I32)"
                ),
            ))
        }
    };
    Ok(Some((vals, shape, view.dtype())))
}

fn is_float(d: Dtype) -> bool {
    matches!(d, Dtype::F32 | Dtype::F64)
}

/// Loads an eos-net/1 file (or an MLP-format file). `dtype` converts every float
/// tensor (default: the dtype of the first parameter); tensors land on `device`.
pub fn load_net(path: &Path, dtype: Option<DType>, device: &Device) -> Result<NetCase> {
    let bytes = std::fs::read(path).map_err(|e| ferr(path, format!("cannot read: {e}")))?;
    load_net_bytes(&bytes, path, dtype, device)
}

/// [`load_net`] on the bytes of a file already in memory; `path` only names the file
/// in errors (the fuzz target `net-case` reads through here).
pub fn load_net_bytes(
    bytes: &[u8],
    path: &Path,
    dtype: Option<DType>,
    device: &Device,
) -> Result<NetCase> {
    let (_, meta) = SafeTensors::read_metadata(bytes)
        .map_err(|e| ferr(path, format!("not a valid safetensors file: {e}")))?;
    let metadata = meta.metadata().clone().unwrap_or_default();
    match metadata.get("format").map(String::as_str) {
        Some(FORMAT) => {}
        Some(other) => {
            return Err(ferr(
                path,
                format!("metadata `format` is `{other}`, expected `{FORMAT}`"),
            ))
        }
        None => return mlp_case(crate::io::load_case_bytes(bytes, path, dtype, device)?),
    }
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| ferr(path, format!("not a valid safetensors file: {e}")))?;
    let (layers, loss) = model_and_loss(&metadata, path)?;
    let (xv, xs, xd) = read_f64(&st, "x", path)?.ok_or_else(|| {
        ferr(
            path,
            "missing tensor `x` (the inputs [n, …], needed for the shapes)",
        )
    })?;
    check_inputs(&layers, &xv, xd, path)?;
    let input = xs.get(1..).unwrap_or_default().to_vec();
    let (_, shapes) = seq_shapes(&layers, &input, "layers.").map_err(|e| {
        ferr(
            path,
            format!("shapes do not chain for x of shape {xs:?}: {e}"),
        )
    })?;
    check_names(&st, &shapes, path)?;
    let dtype = dtype.unwrap_or_else(|| first_param_dtype(&st, &shapes));
    let tensor = |vals: Vec<f64>, shape: &[usize]| -> Result<Tensor> {
        Ok(Tensor::from_vec(vals, shape, &Device::Cpu)?
            .to_dtype(dtype)?
            .to_device(device)?)
    };
    let params = match (
        read_params(&st, &shapes, "", path, &tensor)?,
        shapes.first(),
    ) {
        (Some(p), _) => p,
        (None, None) => NetParams::new(vec![], vec![])?,
        (None, Some((n, s))) => {
            return Err(ferr(
                path,
                format!("missing tensor `{n}` (expected shape {s:?})"),
            ))
        }
    };
    let v = read_params(&st, &shapes, "v.", path, &tensor)?;
    let net = Network::new(layers, &input, params).map_err(|e| ferr(path, e.to_string()))?;
    let (yv, ys, yd) = read_f64(&st, "y", path)?.ok_or_else(|| ferr(path, "missing tensor `y`"))?;
    if !is_float(yd) {
        return Err(ferr(
            path,
            format!("tensor `y`: dtype {yd:?}, expected F32 or F64"),
        ));
    }
    let batch = Batch::new(tensor(xv, &xs)?, tensor(yv, &ys)?);
    net.check_batch(&batch)
        .map_err(|e| ferr(path, e.to_string()))?;
    Ok(NetCase {
        net,
        loss: Some(loss),
        batch: Some(batch),
        v,
        metadata,
    })
}

/// The layers (metadata `model`) and the loss (metadata `loss`) of an eos-net/1 file.
fn model_and_loss(
    metadata: &HashMap<String, String>,
    path: &Path,
) -> Result<(Vec<LayerKind>, Loss)> {
    let model = metadata.get("model").ok_or_else(|| {
        ferr(
            path,
            "metadata `model` missing (a JSON list of layer objects)",
        )
    })?;
    let layers = parse_layers(model).map_err(|e| ferr(path, format!("metadata `model`: {e}")))?;
    let loss = match metadata.get("loss") {
        Some(l) => Loss::parse(l).map_err(|e| ferr(path, format!("metadata `loss`: {e}")))?,
        None => return Err(ferr(path, "metadata `loss` missing")),
    };
    Ok((layers, loss))
}

/// Every tensor of `st` is x, y, a parameter of `shapes` or its `v.` direction.
fn check_names(st: &SafeTensors, shapes: &[(String, Vec<usize>)], path: &Path) -> Result<()> {
    let known = known_names(shapes);
    for name in st.names() {
        if !known.iter().any(|k| k == name) {
            return Err(ferr(path, format!("unexpected tensor `{name}` (not x, y, a parameter of the model or v.<parameter>)")));
        }
    }
    Ok(())
}

/// The dtype of the first parameter when it is F32, F64 otherwise (the default
/// conversion of [`load_net`]).
fn first_param_dtype(st: &SafeTensors, shapes: &[(String, Vec<usize>)]) -> DType {
    let first_float = shapes
        .iter()
        .find_map(|(n, _)| st.tensor(n).ok().map(|v| v.dtype()))
        .filter(|d| is_float(*d));
    match first_float {
        Some(Dtype::F32) => DType::F32,
        _ => DType::F64,
    }
}

/// `x`, `y`, every parameter and its `v.` direction.
fn known_names(shapes: &[(String, Vec<usize>)]) -> Vec<String> {
    let mut k = vec!["x".to_string(), "y".to_string()];
    for (n, _) in shapes {
        k.push(n.clone());
        k.push(format!("v.{n}"));
    }
    k
}

/// Float inputs for float models; whole-number ids within the vocabulary (I64 or I32)
/// when the first layer is an embedding.
fn check_inputs(layers: &[LayerKind], xv: &[f64], xd: Dtype, path: &Path) -> Result<()> {
    match layers.first() {
        Some(LayerKind::Embedding(e)) => {
            if is_float(xd) {
                return Err(ferr(path, format!(
                    "tensor `x`: float ids ({xd:?}); layers.0 is an embedding and needs integer ids (I64 or I32)"
                )));
            }
            if let Some((i, v)) = xv.iter().enumerate().find(|(_, &v)| v < 0.0 || v >= e.vocab as f64) {
                return Err(ferr(path, format!(
                    "tensor `x`: id {v} at entry {i} is outside [0, {}) (the vocabulary of layers.0)",
                    e.vocab
                )));
            }
        }
        Some(l) if !is_float(xd) => {
            return Err(ferr(path, format!(
                "tensor `x`: integer dtype {xd:?}, but layers.0 ({}) takes float inputs (F32 or F64)",
                l.layer().kind()
            )))
        }
        _ => {}
    }
    Ok(())
}

/// The parameters (or their `v.` direction) if any is present; then all must be.
fn read_params(
    st: &SafeTensors,
    shapes: &[(String, Vec<usize>)],
    prefix: &str,
    path: &Path,
    tensor: MakeTensor,
) -> Result<Option<NetParams>> {
    if !shapes
        .iter()
        .any(|(n, _)| st.tensor(&format!("{prefix}{n}")).is_ok())
    {
        return Ok(None);
    }
    let (mut names, mut tensors) = (Vec::new(), Vec::new());
    for (n, s) in shapes {
        let name = format!("{prefix}{n}");
        let (vals, shape, d) = read_f64(st, &name, path)?.ok_or_else(|| {
            ferr(
                path,
                format!("missing tensor `{name}` (expected shape {s:?})"),
            )
        })?;
        if !is_float(d) {
            return Err(ferr(
                path,
                format!("tensor `{name}`: dtype {d:?}, expected F32 or F64"),
            ));
        }
        if shape != *s {
            return Err(ferr(
                path,
                format!("tensor `{name}`: shape {shape:?}, expected {s:?}"),
            ));
        }
        names.push(n.clone());
        tensors.push(tensor(vals, s)?);
    }
    Ok(Some(NetParams::new(names, tensors)?))
}

/// Whether the safetensors file at `path` is an eos-net/1 file (metadata `format`);
/// `false` for today's MLP format. Unreadable files are errors.
pub fn is_net_file(path: &Path) -> Result<bool> {
    let bytes = std::fs::read(path).map_err(|e| ferr(path, format!("cannot read: {e}")))?;
    let (_, meta) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| ferr(path, format!("not a valid safetensors file: {e}")))?;
    Ok(meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get("format"))
        .is_some_and(|f| f == FORMAT))
}

/// An MLP-format case as a network.
fn mlp_case(case: crate::ProbeCase) -> Result<NetCase> {
    let net = Network::from_mlp(&case.mlp)?;
    let v = case
        .v
        .map(|v| NetParams::new(net.params.names.clone(), v.tensors().cloned().collect()))
        .transpose()?;
    Ok(NetCase {
        net,
        loss: case.loss,
        batch: case.batch,
        v,
        metadata: case.metadata,
    })
}

/// Writes an eos-net/1 file. Inputs of an embedding model are written as I64 ids.
pub fn save_net(
    path: &Path,
    net: &Network,
    loss: Loss,
    batch: &Batch,
    v: Option<&NetParams>,
) -> Result<()> {
    write_atomic(path, &net_bytes(net, loss, batch, v)?)
}

/// The bytes of the eos-net/1 file [`save_net`] writes.
pub fn net_bytes(
    net: &Network,
    loss: Loss,
    batch: &Batch,
    v: Option<&NetParams>,
) -> Result<Vec<u8>> {
    net.check_batch(batch)?;
    let ids = matches!(net.layers.first(), Some(LayerKind::Embedding(_)));
    let x = if ids {
        batch
            .x
            .to_dtype(DType::F64)?
            .round()?
            .to_dtype(DType::I64)?
    } else {
        batch.x.clone()
    };
    let mut tensors = vec![("x".to_string(), x), ("y".to_string(), batch.y.clone())];
    tensors.extend(net.params.named_tensors(""));
    if let Some(v) = v {
        net.params.check_same_structure(v)?;
        tensors.extend(v.named_tensors("v."));
    }
    let tensors: Vec<(String, Tensor)> = tensors
        .into_iter()
        .map(|(n, t)| Ok((n, t.to_device(&Device::Cpu)?.contiguous()?)))
        .collect::<Result<_>>()?;
    let meta: HashMap<String, String> = [
        ("format".to_string(), FORMAT.to_string()),
        ("model".to_string(), layers_json(&net.layers)),
        ("loss".to_string(), loss.name().to_string()),
    ]
    .into();
    safetensors::serialize(tensors.iter().map(|(n, t)| (n.as_str(), t)), Some(meta))
        .map_err(|e| Error::Invalid(format!("cannot serialise: {e}")))
}
