//! [`TrainModel`]: the model a run trains — an [`Mlp`] (its fused fast paths, bit for
//! bit as before) or a layer [`Network`] — behind one [`Model`] whose parameter
//! vectors are [`ParamVec`]s for both.
//!
//! A network's named parameters are viewed as per-layer groups
//! (`eos_model::net::groups`: `P.weight` + `P.bias` of one path form a group; every
//! other tensor, e.g. attention's `qkv.weight` and `proj.weight`, is a group of its
//! own). The map is lossless and keeps the flat order, so the one optimizer
//! implementation (eos-optim over `ParamVec`), per-group norms and update cosines,
//! the flat-vector curvature code (Lanczos, Hutchinson) and the Ritz vectors in
//! checkpoints see the same vector as the network does. Each call converts the
//! direction to the network's names and the result back; tensors are shared, never
//! copied.
//!
//! Soft-rank features: the MLP's hidden layers `h_1 … h_{L−1}`; a network's input
//! to its last top-level `dense` layer (the readout), every position a row
//! ([`Network::readout_features`]).

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use eos_model::net::is_net_file;

use crate::error::{Context, Error};
use eos_model::net::NetHvpPrimal;
use eos_model::{Batch, HvpPrimal, Loss, Mlp, Model, NetParams, Network, ParamVec};

/// A network with its parameters also held as groups (what [`Model::params`] returns).
#[derive(Debug, Clone)]
pub struct GroupedNet {
    pub net: Network,
    pub groups: ParamVec,
}

/// The model of a run.
#[derive(Debug, Clone)]
pub enum TrainModel {
    Mlp(Mlp),
    Net(GroupedNet),
}

/// The direction-independent half of an HVP of either model.
#[derive(Debug)]
pub enum TrainPrimal {
    Mlp(HvpPrimal),
    Net(NetHvpPrimal),
}

type R<T> = eos_model::Result<T>;

impl TrainModel {
    /// A network model (its groups computed once).
    pub fn net(net: Network) -> Self {
        let groups = net.params.to_groups();
        Self::Net(GroupedNet { net, groups })
    }

    /// `v` (groups) as the network's named vector.
    fn named(g: &GroupedNet, v: &ParamVec) -> R<NetParams> {
        g.net.params.from_groups(v)
    }

    /// `v` as `(name, tensor)` pairs under `prefix`: `layers.{i}.weight|bias` for the
    /// MLP, the eos-net/1 names for a network.
    pub fn named_tensors(&self, v: &ParamVec, prefix: &str) -> R<Vec<(String, Tensor)>> {
        match self {
            Self::Mlp(_) => Ok(v.named_tensors(prefix)),
            Self::Net(g) => Ok(Self::named(g, v)?.named_tensors(prefix)),
        }
    }

    /// The parameter names (without prefix) in flat order, the model's own scheme.
    pub fn param_names(&self) -> Vec<String> {
        match self {
            Self::Mlp(m) => m
                .params
                .named_tensors("")
                .into_iter()
                .map(|p| p.0)
                .collect(),
            Self::Net(g) => g.net.params.names.clone(),
        }
    }

    /// A vector with this model's structure from tensors looked up by name (each moved
    /// to the model's dtype and device); errors name the missing tensor or bad shape.
    pub fn read_named(
        &self,
        get: impl Fn(&str) -> Option<Tensor>,
        prefix: &str,
    ) -> Result<ParamVec, String> {
        self.read_named_as(&self.param_names(), get, prefix)
    }

    /// [`TrainModel::read_named`] with the tensors' names given in flat order (e.g.
    /// an MLP's weights under the eos-net/1 names of `Network::from_mlp`).
    pub fn read_named_as(
        &self,
        names: &[String],
        get: impl Fn(&str) -> Option<Tensor>,
        prefix: &str,
    ) -> Result<ParamVec, String> {
        let like = self.params();
        let (dtype, device) = (like.dtype(), like.device().clone());
        let mut tensors = Vec::new();
        if names.len() != like.tensors().count() {
            return Err(format!(
                "{} parameter names for a model with {} tensors",
                names.len(),
                like.tensors().count()
            ));
        }
        for (n, want) in names.iter().zip(like.tensors()) {
            let name = format!("{prefix}{n}");
            let t = get(&name).ok_or_else(|| format!("tensor `{name}` is missing"))?;
            if t.dims() != want.dims() {
                return Err(format!(
                    "tensor `{name}`: shape {:?}, expected {:?}",
                    t.dims(),
                    want.dims()
                ));
            }
            let t = t.to_dtype(dtype).and_then(|t| t.to_device(&device));
            tensors.push(t.map_err(|e| format!("tensor `{name}`: {e}"))?);
        }
        let named = NetParams::new(names.to_vec(), tensors).map_err(|e| e.to_string())?;
        Ok(match self {
            Self::Mlp(_) => {
                let mut it = named.tensors.into_iter();
                let layers = like
                    .layers
                    .iter()
                    .map(|l| eos_model::LayerParams {
                        weight: it.next().expect("one tensor per name"),
                        bias: l.bias.as_ref().and_then(|_| it.next()),
                    })
                    .collect();
                ParamVec { layers }
            }
            Self::Net(_) => named.to_groups(),
        })
    }

    /// The features whose soft rank the probe measures (see the module docs).
    pub fn features(&self, x: &Tensor) -> R<Vec<Tensor>> {
        match self {
            Self::Mlp(m) => m.features(x),
            Self::Net(g) => Ok(g.net.readout_features(x)?.into_iter().collect()),
        }
    }

    /// Outputs per sample and position (the last axis of f).
    pub fn n_outputs(&self) -> R<usize> {
        match self {
            Self::Mlp(m) => Ok(m.widths().last().copied().unwrap_or(1)),
            Self::Net(g) => Ok(g.net.output_shape()?.last().copied().unwrap_or(1)),
        }
    }

    /// The MLP's widths (empty for a network).
    pub fn widths(&self) -> Vec<usize> {
        match self {
            Self::Mlp(m) => m.widths(),
            Self::Net(_) => Vec::new(),
        }
    }
}

/// Calls `$body` with the inner model bound to `$m` and the direction converted.
macro_rules! both {
    ($self:expr, $m:ident => $mlp:expr, $g:ident => $net:expr) => {
        match $self {
            TrainModel::Mlp($m) => $mlp,
            TrainModel::Net($g) => $net,
        }
    };
}

impl Model for TrainModel {
    type Params = ParamVec;
    type Primal = TrainPrimal;

    fn params(&self) -> &ParamVec {
        both!(self, m => &m.params, g => &g.groups)
    }
    fn with_params(&self, params: ParamVec) -> R<Self> {
        both!(self,
        m => Ok(Self::Mlp(Model::with_params(m, params)?)),
        g => {
            let net = g.net.with_params(Self::named(g, &params)?)?;
            Ok(Self::Net(GroupedNet { net, groups: params }))
        })
    }
    fn chunk_size(&self) -> usize {
        both!(self, m => m.chunk_size, g => g.net.chunk_size)
    }
    fn dtype(&self) -> DType {
        both!(self, m => Model::dtype(m), g => g.net.dtype())
    }
    fn device(&self) -> Device {
        both!(self, m => Model::device(m), g => g.net.device())
    }
    fn forward(&self, x: &Tensor) -> R<Tensor> {
        both!(self, m => m.forward(x), g => g.net.forward(x))
    }
    fn loss(&self, batch: &Batch, loss: Loss) -> R<f64> {
        both!(self, m => m.loss(batch, loss), g => g.net.loss(batch, loss))
    }
    fn loss_and_grad(&self, batch: &Batch, loss: Loss) -> R<(f64, ParamVec)> {
        both!(self, m => m.loss_and_grad(batch, loss), g => {
            let (l, gr) = g.net.loss_and_grad(batch, loss)?;
            Ok((l, gr.to_groups()))
        })
    }
    fn grad(&self, batch: &Batch, loss: Loss) -> R<ParamVec> {
        both!(self, m => m.grad(batch, loss), g => Ok(g.net.grad(batch, loss)?.to_groups()))
    }
    fn hvp(&self, batch: &Batch, loss: Loss, v: &ParamVec) -> R<ParamVec> {
        both!(self, m => m.hvp(batch, loss, v),
            g => Ok(g.net.hvp(batch, loss, &Self::named(g, v)?)?.to_groups()))
    }
    fn loss_grad_hvp(
        &self,
        batch: &Batch,
        loss: Loss,
        v: &ParamVec,
    ) -> R<(f64, ParamVec, ParamVec)> {
        both!(self, m => Model::loss_grad_hvp(m, batch, loss, v), g => {
            let (l, gr, hv) = Model::loss_grad_hvp(&g.net, batch, loss, &Self::named(g, v)?)?;
            Ok((l, gr.to_groups(), hv.to_groups()))
        })
    }
    fn hvp_primal(&self, batch: &Batch, loss: Loss) -> R<TrainPrimal> {
        both!(self, m => Ok(TrainPrimal::Mlp(m.hvp_primal(batch, loss)?)),
            g => Ok(TrainPrimal::Net(g.net.hvp_primal(batch, loss)?)))
    }
    fn hvp_with(&self, primal: &TrainPrimal, batch: &Batch, v: &ParamVec) -> R<ParamVec> {
        match (self, primal) {
            (Self::Mlp(m), TrainPrimal::Mlp(p)) => m.hvp_with(p, batch, v),
            (Self::Net(g), TrainPrimal::Net(p)) => {
                Ok(g.net.hvp_with(p, batch, &Self::named(g, v)?)?.to_groups())
            }
            _ => Err(eos_model::Error::Invalid(
                "an HVP primal pass of another model kind".into(),
            )),
        }
    }
    fn primal_bytes(primal: &TrainPrimal) -> usize {
        match primal {
            TrainPrimal::Mlp(p) => p.bytes(),
            TrainPrimal::Net(p) => p.bytes(),
        }
    }
    fn primal_estimate(&self, n: usize) -> Option<usize> {
        both!(self, m => m.primal_estimate(n), g => g.net.primal_estimate(n))
    }
    fn gnvp(&self, batch: &Batch, loss: Loss, v: &ParamVec) -> R<ParamVec> {
        both!(self, m => m.gnvp(batch, loss, v),
            g => Ok(g.net.gnvp(batch, loss, &Self::named(g, v)?)?.to_groups()))
    }
    fn ntk_trace(&self, x: &Tensor) -> R<f64> {
        both!(self, m => m.ntk_trace(x), g => g.net.ntk_trace(x))
    }
    fn taylor(&self, batch: &Batch, loss: Loss, v: &ParamVec) -> R<[f64; 4]> {
        both!(self, m => m.taylor(batch, loss, v),
            g => g.net.taylor(batch, loss, &Self::named(g, v)?))
    }
}

/// The tensors of a safetensors file, on the host.
pub(crate) fn read_tensors(path: &Path) -> crate::Result<HashMap<String, Tensor>> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)
        .map_err(|e| Error::file(path, format!("not a safetensors file: {e}")))
}

impl TrainModel {
    /// The model with the weights stored in `path` (`model.init_from`, `eos train
    /// --init-from`): an MLP file (`layers.{i}.weight|bias`) or an eos-net/1 file (the
    /// network's names; for an MLP, those `Network::from_mlp` gives its dense layers);
    /// shapes checked, errors name the file and the tensor; other tensors are ignored.
    pub fn init_from(&self, path: &Path) -> crate::Result<TrainModel> {
        let model = self;
        let tensors = read_tensors(path)?;
        let net_file = is_net_file(path).map_err(|e| Error::file(path, format!("{e}")))?;
        let names = match model {
            TrainModel::Mlp(m) if net_file => Network::from_mlp(m)?.params.names,
            _ => model.param_names(),
        };
        let params = model
            .read_named_as(&names, |n| tensors.get(n).cloned(), "")
            .map_err(|e| Error::file(path, format!("model.init_from: {e}")))?;
        Ok(model.with_params(params)?)
    }
}
