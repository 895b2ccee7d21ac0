//! Checkpoints: `ckpt/step-N.safetensors`, the state after N steps, written atomically
//! (eos-model's `save_case`: temporary file + rename).
//!
//! The file is in the interchange format (DESIGN.md): an MLP as `layers.{i}.weight`
//! / `layers.{i}.bias` with metadata `activation`, `loss`, `multipliers`; a layer
//! network under its eos-net/1 names (`layers.{i}.weight`, `layers.{i}.qkv.weight`,
//! `layers.{i}.body.{j}.bias`, …) with metadata `format = "eos-net/1"`, `model` (the
//! layer list as JSON) and `loss` — readable by any safetensors tool, plus, alongside:
//!
//! ```text
//! theta0.<parameter name>         θ₀ (centring offsets, update cosine)      model dtype
//! optim.*                         optimizer state (eos-optim's names)       as saved,
//!                                 integers as f64
//! probe.ritz                      [k, P] latest Ritz vectors (warm start)   f64
//! probe.ritz_eff                  [k, P] the effective_sharpness probe's    f64
//!                                 (in P^{-1/2}-scaled coordinates)
//! metadata: eos_checkpoint = "1", step = N, time_s, schedule_state (TOML)
//! ```
//!
//! The sampler and the stream need no state: the batch of step t is a pure function
//! of (seed, t). Tensors keep their dtype, so a resumed run continues bit for bit.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::error::{Context, Error};
use crate::model::TrainModel;
use candle_core::{DType, Device, Tensor};
use eos_model::{save_case, Loss, ParamVec};
use eos_optim::{Optimizer, Schedule, ScheduleState};

/// What a checkpoint restores.
#[derive(Debug)]
pub struct Restored {
    pub step: u64,
    pub time_s: f64,
    pub params: ParamVec,
    pub theta0: ParamVec,
    pub ritz: Vec<Vec<f64>>,
    /// The effective_sharpness probe's Ritz vectors.
    pub ritz_eff: Vec<Vec<f64>>,
}

/// `dir/ckpt/step-N.safetensors`.
pub fn path(dir: &Path, step: u64) -> PathBuf {
    dir.join("ckpt").join(format!("step-{step}.safetensors"))
}

/// The step of the latest checkpoint in `dir/ckpt`, if any.
pub fn latest(dir: &Path) -> crate::Result<Option<u64>> {
    Ok(steps(dir)?.last().copied())
}

/// The steps of the checkpoints in `dir/ckpt`, in increasing order.
pub fn steps(dir: &Path) -> crate::Result<Vec<u64>> {
    let ckpt = dir.join("ckpt");
    if !ckpt.is_dir() {
        return Ok(Vec::new());
    }
    let mut all = Vec::new();
    for entry in
        std::fs::read_dir(&ckpt).with_context(|| format!("{}: cannot list", ckpt.display()))?
    {
        let name = entry?.file_name();
        let step = name
            .to_str()
            .and_then(|s| s.strip_prefix("step-"))
            .and_then(|s| s.strip_suffix(".safetensors"))
            .and_then(|s| s.parse::<u64>().ok());
        all.extend(step);
    }
    all.sort_unstable();
    Ok(all)
}

/// Everything a checkpoint holds besides the model.
#[derive(Debug)]
pub struct State<'a> {
    pub step: u64,
    pub time_s: f64,
    pub theta0: &'a ParamVec,
    pub optimizer: &'a dyn Optimizer,
    pub schedule: &'a dyn Schedule,
    pub ritz: &'a [Vec<f64>],
    pub ritz_eff: &'a [Vec<f64>],
}

/// Writes `ckpt/step-N.safetensors` atomically.
pub fn save(dir: &Path, model: &TrainModel, loss: Loss, st: &State) -> crate::Result<PathBuf> {
    let p = path(dir, st.step);
    std::fs::create_dir_all(dir.join("ckpt"))?;
    let mut extra = model.named_tensors(st.theta0, "theta0.")?;
    // Integer state (the optimizer's step counter) is stored as f64 (exact below 2⁵³)
    // so that readers of the interchange format, which expect floats, can open it.
    for (name, t) in st.optimizer.state() {
        let t = match t.dtype() {
            DType::F32 | DType::F64 => t,
            _ => t.to_dtype(DType::F64)?,
        };
        extra.push((name, t));
    }
    if let Some(t) = crate::effective::ritz_tensor(st.ritz)? {
        extra.push(("probe.ritz".into(), t));
    }
    if let Some(t) = crate::effective::ritz_tensor(st.ritz_eff)? {
        extra.push(("probe.ritz_eff".into(), t));
    }
    let schedule = toml::to_string(&st.schedule.state()).context("schedule state")?;
    let meta = [
        ("eos_checkpoint".to_string(), "1".to_string()),
        ("step".to_string(), st.step.to_string()),
        ("time_s".to_string(), format!("{:?}", st.time_s)),
        ("schedule_state".to_string(), schedule),
    ];
    match model {
        TrainModel::Mlp(mlp) => save_case(&p, mlp, Some(loss), None, None, &extra, &meta)?,
        TrainModel::Net(g) => {
            let mut tensors = g.net.params.named_tensors("");
            tensors.extend(extra);
            let mut m: HashMap<String, String> = meta.into_iter().collect();
            m.insert("format".into(), eos_model::net::file::FORMAT.into());
            m.insert("model".into(), eos_model::net::layers_json(&g.net.layers));
            m.insert("loss".into(), loss.name().into());
            write_tensors(&p, tensors, m)?;
        }
    }
    Ok(p)
}

/// Writes named tensors (moved to the host, contiguous) and metadata atomically.
pub fn write_tensors(
    p: &Path,
    tensors: Vec<(String, Tensor)>,
    meta: HashMap<String, String>,
) -> crate::Result<()> {
    let tensors: Vec<(String, Tensor)> = tensors
        .into_iter()
        .map(|(n, t)| Ok((n, t.to_device(&Device::Cpu)?.contiguous()?)))
        .collect::<crate::Result<_>>()?;
    let bytes = safetensors::serialize(tensors.iter().map(|(n, t)| (n.as_str(), t)), Some(meta))
        .map_err(|e| Error::file(p, format!("cannot serialise: {e}")))?;
    eos_model::io::write_atomic(p, &bytes)?;
    Ok(())
}

fn read_params(
    t: &HashMap<String, Tensor>,
    prefix: &str,
    like: &TrainModel,
) -> crate::Result<ParamVec> {
    like.read_named(|n| t.get(n).cloned(), prefix)
        .map_err(Error::Request)
}

/// Loads a checkpoint into the optimizer and the schedule and returns the rest;
/// `like` gives the model's structure, dtype and device.
pub fn load(
    p: &Path,
    like: &TrainModel,
    optimizer: &mut dyn Optimizer,
    schedule: &mut dyn Schedule,
) -> crate::Result<Restored> {
    let ctx = |e: Error| Error::Context {
        context: p.display().to_string(),
        inner: Box::new(e),
    };
    let bytes = std::fs::read(p).with_context(|| format!("{}: cannot read", p.display()))?;
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| Error::file(p, format!("not a safetensors file: {e}")))?;
    let meta = header.metadata().clone().unwrap_or_default();
    let get = |k: &str| {
        meta.get(k)
            .ok_or_else(|| Error::file(p, format!("metadata `{k}` missing")))
    };
    if get("eos_checkpoint")? != "1" {
        return Err(Error::file(p, "not an eos checkpoint of format 1"));
    }
    let step: u64 = get("step")?
        .parse()
        .map_err(|e| Error::file(p, format!("metadata `step`: {e}")))?;
    let time_s: f64 = get("time_s")?.parse().unwrap_or(0.0);
    let sched: ScheduleState = toml::from_str(get("schedule_state")?)
        .map_err(|e| Error::file(p, format!("metadata `schedule_state`: {e}")))?;
    let tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)
        .with_context(|| p.display().to_string())?;
    let params = read_params(&tensors, "", like).map_err(ctx)?;
    let theta0 = read_params(&tensors, "theta0.", like).map_err(ctx)?;
    optimizer.load_state(&tensors).map_err(|e| ctx(e.into()))?;
    schedule.load_state(&sched).map_err(|e| ctx(e.into()))?;
    let ritz_of = |name: &str| -> crate::Result<Vec<Vec<f64>>> {
        Ok(match tensors.get(name) {
            Some(r) => r.to_dtype(DType::F64)?.to_vec2::<f64>()?,
            None => Vec::new(),
        })
    };
    let (ritz, ritz_eff) = (ritz_of("probe.ritz")?, ritz_of("probe.ritz_eff")?);
    Ok(Restored {
        step,
        time_s,
        params,
        theta0,
        ritz,
        ritz_eff,
    })
}
