//! Runs and interchange files: starting a run from a file's weights
//! (`model.init_from`, `eos train --init-from FILE`) and writing a run's checkpoint as
//! an eos-net/1 file with its training batch (`eos export RUN_DIR [--step S] OUT`),
//! which `eos probe OUT` reads.
//!
//! `init_from` reads either format: an MLP file (`layers.{i}.weight|bias`, DESIGN.md)
//! or an eos-net/1 file (the layer network's names; for an MLP config, the names
//! `Network::from_mlp` gives its dense layers, `layers.{2l}`). Every tensor's shape
//! is checked against the model the config builds; the error names the file and the
//! tensor. Other tensors of the file (`x`, `y`, `v.*`) are ignored.
//!
//! `export` rebuilds the run's model and data from `config.resolved.toml`, loads the
//! weights of checkpoint `step-S` (θ after S steps: the point of metrics line S) and
//! writes them with the whole training set as `x`, `y` in the config's dtype, so that
//! `eos probe OUT` reports the loss of line S for a full-batch run. Centred models
//! (mean-field's f − f₀) cannot be exported: eos-net/1 has no offset.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use eos_model::net::{is_net_file, save_net};
use eos_model::{Model, Network};

use crate::checkpoint;
use crate::config::Config;
use crate::error::{Context, Error};
use crate::model::TrainModel;

/// The tensors of a safetensors file, on the host.
fn read_tensors(path: &Path) -> crate::Result<HashMap<String, Tensor>> {
    let bytes =
        std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)
        .map_err(|e| Error::file(path, format!("not a safetensors file: {e}")))
}

/// `model` with the weights stored in `path` (module docs).
pub fn init_from(model: &TrainModel, path: &Path) -> crate::Result<TrainModel> {
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

/// Writes checkpoint `step` (default: the latest) of the run in `dir` to `out` as an
/// eos-net/1 file with the training batch; returns the step written.
pub fn export(dir: &Path, step: Option<u64>, out: &Path) -> crate::Result<u64> {
    let mut cfg = Config::load(&dir.join("config.resolved.toml"), &[])?;
    // The checkpoint gives the weights.
    cfg.model.init_from = None;
    let steps = checkpoint::steps(dir)?;
    let step = match step {
        Some(s) if steps.contains(&s) => s,
        Some(s) => {
            return Err(Error::Request(format!(
                "{}: no checkpoint of step {s} (there are: {steps:?})",
                dir.display()
            )))
        }
        None => *steps.last().ok_or_else(|| {
            Error::Request(format!("{}: the run has no checkpoint", dir.display()))
        })?,
    };
    let data = crate::data::build_data(&cfg)?;
    let device = Device::Cpu;
    let n = data.train.len();
    let setup = crate::build::build_train_model(&cfg, &data.train, n, &device)?;
    if setup.center {
        return Err(Error::Request(
            "a centred model (mean_field with center = true) cannot be exported: \
             eos-net/1 has no output offset"
                .into(),
        ));
    }
    let path = checkpoint::path(dir, step);
    let tensors = read_tensors(&path)?;
    let params = setup
        .model
        .read_named(|n| tensors.get(n).cloned(), "")
        .map_err(|e| Error::file(&path, e))?;
    let model = setup.model.with_params(params)?;
    let net = match &model {
        TrainModel::Mlp(m) => Network::from_mlp(m)?,
        TrainModel::Net(g) => g.net.clone(),
    };
    let batch = crate::data::to_batch(&data.train, cfg.train.dtype.dtype(), &device)?;
    save_net(out, &net, cfg.loss.loss(), &batch, None)?;
    Ok(step)
}
