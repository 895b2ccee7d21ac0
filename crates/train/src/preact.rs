//! The preactivation-norm probe (`preact_rms`): for each hidden layer l = 0 … L−2 of
//! an MLP, the root mean square of its preactivations over the probe set,
//!
//! `rms_l = sqrt( (1 / (n · n_{l+1})) Σ_{i,j} z_l[i, j]² )`, with
//! `z_l = m_l · h_l W_lᵀ + b_l`, `h_0 = x`, `h_{l+1} = φ(z_l)`
//!
//! (the forward pass of `eos_model::mlp`). This is the per-layer scale whose
//! regularised evolution across depth νP claims (Terjék, "MLPs at the EOC", arXiv
//! 2502.13110 v1, abstract: "growing hidden layer sizes depthwise inducing the
//! regularized evolution of preactivations"; THEORY.md §6). The sums run in f64 on
//! the host whatever the model's dtype.

use candle_core::{DType, Tensor};
use eos_model::Mlp;

use crate::error::Error;
use crate::model::TrainModel;

/// `rms_l` of every hidden layer of `model` on the inputs `x` (`[n, n_0]`).
pub fn preact_rms(model: &TrainModel, x: &Tensor) -> crate::Result<Vec<f64>> {
    match model {
        TrainModel::Mlp(m) => mlp_preact_rms(m, x),
        TrainModel::Net(_) => Err(Error::config(
            "probes.preact_rms",
            "defined for MLPs (`model.widths` or `model.depth`) only; this run trains a \
             layer network (`model.layers`): set `probes.preact_rms.every = 0`",
        )),
    }
}

/// `rms_l` for an MLP.
pub fn mlp_preact_rms(mlp: &Mlp, x: &Tensor) -> crate::Result<Vec<f64>> {
    mlp_preactivations(mlp, x)?
        .iter()
        .map(|z| {
            let ms = z
                .to_dtype(DType::F64)?
                .sqr()?
                .mean_all()?
                .to_scalar::<f64>()?;
            Ok(ms.sqrt())
        })
        .collect()
}

/// The preactivations z_l (`[n, n_{l+1}]`) of every hidden layer of an MLP: its hidden
/// features give each layer's input h_l.
pub fn mlp_preactivations(mlp: &Mlp, x: &Tensor) -> crate::Result<Vec<Tensor>> {
    let hidden = mlp.depth() - 1;
    let feats = mlp.features(x)?;
    let inputs = std::iter::once(x).chain(feats.iter()).take(hidden);
    let mut out = Vec::with_capacity(hidden);
    for (l, h) in inputs.enumerate() {
        let layer = &mlp.params.layers[l];
        let mut z = (h.matmul(&layer.weight.t()?)? * mlp.multipliers[l])?;
        if let Some(b) = &layer.bias {
            z = z.broadcast_add(b)?;
        }
        out.push(z);
    }
    Ok(out)
}

/// The share of hidden preactivation entries whose sign differs between `a` and `b`
/// (the same network at two parameter points; for ReLU: the kinks crossed between them).
pub fn sign_flip_share(a: &Mlp, b: &Mlp, x: &Tensor) -> crate::Result<f64> {
    let (za, zb) = (mlp_preactivations(a, x)?, mlp_preactivations(b, x)?);
    let (mut flips, mut total) = (0usize, 0usize);
    for (p, q) in za.iter().zip(&zb) {
        let p = p.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
        let q = q.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
        flips += p
            .iter()
            .zip(&q)
            .filter(|(u, v)| (**u > 0.0) != (**v > 0.0))
            .count();
        total += p.len();
    }
    Ok(flips as f64 / total.max(1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use eos_model::{Activation, LayerParams, ParamVec};

    fn t(v: &[f64], shape: (usize, usize)) -> Tensor {
        Tensor::from_slice(v, shape, &Device::Cpu).unwrap()
    }

    /// Widths 2-3-2-1, ReLU, biases, multipliers (0.5, 1, 1); by hand:
    /// x = [[1, 2], [−1, 0]]: z_0 = 0.5·xW_0ᵀ + b_0 = [[0.5, 2, −0.5], [−0.5, 1, −0.5]]
    /// (Σz² = 6 over 6 entries: rms 1); h_1 = [[0.5, 2, 0], [0, 1, 0]];
    /// z_1 = h_1W_1ᵀ + b_1 = [[3, −1.5], [1, −0.5]] (Σz² = 12.5 over 4: rms √3.125).
    fn tiny(activation: Activation) -> Mlp {
        let layer = |w: Tensor, b: &[f64]| LayerParams {
            bias: Some(Tensor::from_slice(b, b.len(), &Device::Cpu).unwrap()),
            weight: w,
        };
        let params = ParamVec {
            layers: vec![
                layer(
                    t(&[1.0, 0.0, 0.0, 1.0, 1.0, -1.0], (3, 2)),
                    &[0.0, 1.0, 0.0],
                ),
                layer(t(&[2.0, 1.0, 3.0, 0.0, -1.0, 1.0], (2, 3)), &[0.0, 0.5]),
                layer(t(&[7.0, -3.0], (1, 2)), &[100.0]),
            ],
        };
        Mlp::new(params, vec![0.5, 1.0, 1.0], activation).unwrap()
    }

    #[test]
    fn relu_mlp_matches_the_hand_computation() {
        let x = t(&[1.0, 2.0, -1.0, 0.0], (2, 2));
        let r = mlp_preact_rms(&tiny(Activation::Relu), &x).unwrap();
        assert_eq!(
            r.len(),
            2,
            "one value per hidden layer, not the output layer"
        );
        assert!((r[0] - 1.0).abs() < 1e-14, "{r:?}");
        assert!((r[1] - 3.125f64.sqrt()).abs() < 1e-14, "{r:?}");
    }

    #[test]
    fn sign_flips_count_the_entries_that_change_side() {
        // Moving b_0 from (0, 1, 0) to (0, −1.5, 0) flips z_0[·, 1] in both samples
        // (2 → −0.5, 1 → −1.5): 2 of the 6 layer-0 entries; layer 1 then reads
        // h_1 = [[0.5, 0, 0], [0, 0, 0]]: z_1 = [[1, 0.5], [0, 0.5]] against [[3, −1.5],
        // [1, −0.5]]: 3 flips of 4 (the exact 0 counts as ≤ 0). 5 of 10 in all.
        let x = t(&[1.0, 2.0, -1.0, 0.0], (2, 2));
        let a = tiny(Activation::Relu);
        let mut p = a.params.clone();
        p.layers[0].bias = Some(Tensor::from_slice(&[0.0, -1.5, 0.0], 3, &Device::Cpu).unwrap());
        let b = a.with_params(p).unwrap();
        assert_eq!(sign_flip_share(&a, &a, &x).unwrap(), 0.0);
        assert!((sign_flip_share(&a, &b, &x).unwrap() - 0.5).abs() < 1e-15);
    }

    #[test]
    fn identity_mlp_uses_the_unrectified_features() {
        // Without the ReLU h_1 = z_0: z_1 = z_0W_1ᵀ + b_1 = [[1.5, −2], [−1.5, −1]]
        // (Σz² = 9.5 over 4: rms √2.375), the first layer unchanged.
        let x = t(&[1.0, 2.0, -1.0, 0.0], (2, 2));
        let r = mlp_preact_rms(&tiny(Activation::Identity), &x).unwrap();
        assert!((r[0] - 1.0).abs() < 1e-14, "{r:?}");
        assert!((r[1] - 2.375f64.sqrt()).abs() < 1e-14, "{r:?}");
    }
}
