//! Optimizer state as named tensors, for checkpoints.
//!
//! Names (safetensors-friendly, next to the model's `layers.{i}.weight` in the same
//! file):
//!
//! ```text
//! optim.steps                          i64 scalar: steps taken (Adam's bias correction)
//! optim.momentum.layers.{i}.weight     SGD-family momentum buffer v
//! optim.adam.m.layers.{i}.{weight,bias}, optim.adam.v.layers.…   Adam's moments
//! ```
//!
//! Tensors are saved as they are (same dtype, same values), so a run resumed from
//! them continues bit for bit.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use eos_model::{LayerParams, ParamVec};

use crate::{Error, Result};

/// Name of the step counter.
pub const STEPS: &str = "optim.steps";
/// Prefix of the SGD-family momentum buffer.
pub const MOMENTUM: &str = "optim.momentum.";
/// Prefix of Adam's first moment.
pub const ADAM_M: &str = "optim.adam.m.";
/// Prefix of Adam's second moment.
pub const ADAM_V: &str = "optim.adam.v.";

/// The step counter as an i64 scalar tensor.
pub fn steps_tensor(steps: u64) -> (String, Tensor) {
    let t = Tensor::new(i64::try_from(steps).unwrap_or(i64::MAX), &Device::Cpu)
        .expect("a CPU scalar tensor can always be created");
    (STEPS.to_string(), t)
}

/// Reads the step counter written by [`steps_tensor`].
pub fn read_steps(state: &HashMap<String, Tensor>) -> Result<u64> {
    let t = state
        .get(STEPS)
        .ok_or_else(|| Error::State(format!("`{STEPS}` is missing")))?;
    let v = t
        .to_dtype(DType::I64)
        .and_then(|t| t.to_scalar::<i64>())
        .map_err(|e| Error::State(format!("`{STEPS}`: {e}; expected an integer scalar")))?;
    u64::try_from(v).map_err(|_| Error::State(format!("`{STEPS}`: got {v}; expected ≥ 0")))
}

/// The tensors `{prefix}layers.{i}.weight|bias` of a [`ParamVec`].
pub fn named(prefix: &str, v: &ParamVec) -> Vec<(String, Tensor)> {
    v.named_tensors(prefix)
}

/// Reads a [`ParamVec`] saved under `prefix` (layers `0, 1, …` until the first
/// missing weight); `None` when `{prefix}layers.0.weight` is absent.
pub fn read_paramvec(state: &HashMap<String, Tensor>, prefix: &str) -> Option<ParamVec> {
    let mut layers = Vec::new();
    while let Some(w) = state.get(&format!("{prefix}layers.{}.weight", layers.len())) {
        let b = state.get(&format!("{prefix}layers.{}.bias", layers.len()));
        layers.push(LayerParams {
            weight: w.clone(),
            bias: b.cloned(),
        });
    }
    (!layers.is_empty()).then_some(ParamVec { layers })
}

/// Reads a buffer that must be present once `steps > 0`.
pub(crate) fn read_buffer(
    state: &HashMap<String, Tensor>,
    prefix: &str,
    steps: u64,
) -> Result<Option<ParamVec>> {
    match read_paramvec(state, prefix) {
        None if steps > 0 => Err(Error::State(format!(
            "`{prefix}layers.0.weight` is missing ({steps} steps taken; a checkpoint of another optimizer?)"
        ))),
        v => Ok(v),
    }
}

/// `buf` on `like`'s device and in its dtype (no copy when they already match),
/// after checking the structure.
pub(crate) fn align(buf: ParamVec, like: &ParamVec) -> Result<ParamVec> {
    like.check_same_structure(&buf)?;
    if buf.dtype() == like.dtype() && buf.device().same_device(like.device()) {
        Ok(buf)
    } else {
        Ok(buf.to_dtype(like.dtype())?.to_device(like.device())?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::pv1;

    #[test]
    fn round_trip_and_errors() {
        let mut map: HashMap<String, Tensor> = [steps_tensor(7)].into_iter().collect();
        assert_eq!(read_steps(&map).unwrap(), 7);
        assert!(read_paramvec(&map, MOMENTUM).is_none());
        let e = read_buffer(&map, MOMENTUM, 7).unwrap_err().to_string();
        assert!(
            e.contains("`optim.momentum.layers.0.weight` is missing"),
            "{e}"
        );
        map.extend(named(MOMENTUM, &pv1(&[1.0, 2.0])));
        let v = read_paramvec(&map, MOMENTUM).unwrap();
        assert_eq!(v.to_f64_vec().unwrap(), [1.0, 2.0]);
        let e = read_steps(&HashMap::new()).unwrap_err().to_string();
        assert!(e.contains("`optim.steps` is missing"), "{e}");
    }
}
