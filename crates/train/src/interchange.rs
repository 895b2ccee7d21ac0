//! `eos export RUN_DIR [--step S] OUT`: a run's checkpoint written as an eos-net/1 file
//! with its training batch, which `eos probe OUT` reads (the other direction, a run
//! started from a file's weights, is `TrainModel::init_from`, crate::model).
//!
//! `export` rebuilds the run's model and data from `config.resolved.toml`, loads the
//! weights of checkpoint `step-S` (θ after S steps: the point of metrics line S) and
//! writes them with the whole training set as `x`, `y` in the config's dtype, so that
//! `eos probe OUT` reports the loss of line S for a full-batch run. Centred models
//! (mean-field's f − f₀) cannot be exported: eos-net/1 has no offset.

use std::path::Path;

use candle_core::Device;
use eos_model::net::save_net;
use eos_model::{Model, Network};

use crate::checkpoint;
use crate::config::Config;
use crate::error::Error;
use crate::model::TrainModel;

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
    let setup = crate::network::build_train_model(&cfg, &data.train, n, &device)?;
    if setup.center {
        return Err(Error::Request(
            "a centred model (mean_field with center = true) cannot be exported: \
             eos-net/1 has no output offset"
                .into(),
        ));
    }
    let path = checkpoint::path(dir, step);
    let tensors = crate::model::read_tensors(&path)?;
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
