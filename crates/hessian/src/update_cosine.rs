//! Cosine of the new update with the cumulative update (THEORY.md §6; Terjék, arXiv
//! 2502.13110 v1, **inferred** definition):
//!
//! ```text
//! cos_t = ⟨Δθ_t, θ_t − θ₀⟩ / (‖Δθ_t‖ ‖θ_t − θ₀‖),      Δθ_t = θ_{t+1} − θ_t,
//! ```
//!
//! globally (all parameters) and per layer (layer l's weight and bias together). The
//! v1 hypothesis: features are being learned while the new update keeps a positive
//! cosine with the cumulative update. The cosine is undefined (`None`) when either
//! vector is zero, e.g. at t = 0 where θ_t = θ₀. Dot products accumulate in f64.

use candle_core::{DType, Tensor};
use eos_model::ParamVec;
use serde::Serialize;

use crate::Result;

/// The global and per-layer cosines.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UpdateCosine {
    /// Over all parameters; `None` when a vector is zero.
    pub global: Option<f64>,
    /// One per layer (weight and bias together); `None` where a block is zero.
    pub layers: Vec<Option<f64>>,
}

/// `⟨a, b⟩` in f64.
fn dot(a: &Tensor, b: &Tensor) -> Result<f64> {
    let a = a.to_dtype(DType::F64)?;
    let b = b.to_dtype(DType::F64)?;
    Ok((a * b)?.sum_all()?.to_scalar::<f64>()?)
}

/// `(⟨a,b⟩, ‖a‖², ‖b‖²)` of each layer.
fn layer_products(a: &ParamVec, b: &ParamVec) -> Result<Vec<[f64; 3]>> {
    a.check_same_structure(b)?;
    a.layers
        .iter()
        .zip(&b.layers)
        .map(|(la, lb)| {
            let mut s = [
                dot(&la.weight, &lb.weight)?,
                dot(&la.weight, &la.weight)?,
                dot(&lb.weight, &lb.weight)?,
            ];
            if let (Some(x), Some(y)) = (&la.bias, &lb.bias) {
                s[0] += dot(x, y)?;
                s[1] += dot(x, x)?;
                s[2] += dot(y, y)?;
            }
            Ok(s)
        })
        .collect()
}

fn cosine(ab: f64, aa: f64, bb: f64) -> Option<f64> {
    (aa > 0.0 && bb > 0.0).then(|| (ab / (aa.sqrt() * bb.sqrt())).clamp(-1.0, 1.0))
}

/// The cosine of `update` (Δθ_t) with `cumulative` (θ_t − θ₀), globally and per layer.
pub fn update_cosine(update: &ParamVec, cumulative: &ParamVec) -> Result<UpdateCosine> {
    let per = layer_products(update, cumulative)?;
    let total = per.iter().fold([0.0; 3], |acc, s| {
        [acc[0] + s[0], acc[1] + s[1], acc[2] + s[2]]
    });
    Ok(UpdateCosine {
        global: cosine(total[0], total[1], total[2]),
        layers: per.iter().map(|s| cosine(s[0], s[1], s[2])).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use eos_model::LayerParams;

    fn pv(w0: &[f64], b0: &[f64], w1: &[f64]) -> ParamVec {
        let d = Device::Cpu;
        ParamVec {
            layers: vec![
                LayerParams {
                    weight: Tensor::from_slice(w0, (2, 1), &d).unwrap(),
                    bias: Some(Tensor::from_slice(b0, 2, &d).unwrap()),
                },
                LayerParams {
                    weight: Tensor::from_slice(w1, (1, 2), &d).unwrap(),
                    bias: None,
                },
            ],
        }
    }

    #[test]
    fn values_by_hand() {
        // Layer 0: update (1, 0 | 0, 0), cumulative (1, 1 | 0, 0): cos = 1/√2.
        // Layer 1: update (0, 2), cumulative (0, −3): cos = −1.
        // Global: ⟨u, c⟩ = 1 − 6 = −5, ‖u‖ = √5, ‖c‖ = √11: cos = −5/√55.
        let u = pv(&[1.0, 0.0], &[0.0, 0.0], &[0.0, 2.0]);
        let c = pv(&[1.0, 1.0], &[0.0, 0.0], &[0.0, -3.0]);
        let r = update_cosine(&u, &c).unwrap();
        let g = r.global.unwrap();
        assert!((g + 5.0 / 55f64.sqrt()).abs() < 1e-15, "{g}");
        assert!((r.layers[0].unwrap() - 0.5f64.sqrt()).abs() < 1e-15);
        assert_eq!(r.layers[1], Some(-1.0));
        // The bias counts with its layer: cumulative bias (0, 1) adds to ‖c₀‖ only.
        let c2 = pv(&[1.0, 1.0], &[0.0, 1.0], &[0.0, -3.0]);
        let r2 = update_cosine(&u, &c2).unwrap();
        assert!((r2.layers[0].unwrap() - 1.0 / 3f64.sqrt()).abs() < 1e-15);
    }

    #[test]
    fn zero_vectors_give_none() {
        let u = pv(&[1.0, 0.0], &[0.0, 0.0], &[0.0, 0.0]);
        let zero = pv(&[0.0, 0.0], &[0.0, 0.0], &[0.0, 0.0]);
        let r = update_cosine(&u, &zero).unwrap();
        assert_eq!(r.global, None);
        assert_eq!(r.layers, vec![None, None]);
        // Layer 1 of u is zero: that layer is None, the global cosine exists.
        let c = pv(&[2.0, 0.0], &[0.0, 0.0], &[1.0, 1.0]);
        let r = update_cosine(&u, &c).unwrap();
        assert_eq!(r.layers[1], None);
        assert!((r.global.unwrap() - 2.0 / 6f64.sqrt()).abs() < 1e-15);
    }
}
