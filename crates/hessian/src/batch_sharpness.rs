//! Batch sharpness (Andreyev & Beneventano, "Edge of Stochastic Stability", 2024/25;
//! THEORY.md §8):
//!
//! ```text
//! BS = E_B[ g_Bᵀ H_B g_B / ‖g_B‖² ]
//! ```
//!
//! over random minibatches B of the training batch size drawn from the data, with g_B
//! and H_B the minibatch gradient and Hessian. Under SGD it, not λ_max, hovers at 2/η.
//! g_Bᵀ H_B g_B = 2 c2 along g_B comes from one jet pass (no HVP needed).

use eos_model::{rng, Batch, Loss, Model, ParamSpace};
use rand::seq::index::sample;

use crate::{Error, Result};

/// Mean and standard error of the per-minibatch directional sharpness.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct BatchSharpness {
    pub mean: f64,
    pub stderr: f64,
    pub batches: usize,
}

/// Estimates batch sharpness from `num_batches` minibatches of `batch_size` rows
/// drawn without replacement from `data` (seeded).
pub fn batch_sharpness<M: Model>(
    mlp: &M,
    data: &Batch,
    loss: Loss,
    batch_size: usize,
    num_batches: usize,
    seed: u64,
) -> Result<BatchSharpness> {
    let n = data.len();
    if batch_size == 0 || batch_size > n || num_batches == 0 {
        return Err(Error::Invalid {
            what: "batch_sharpness: (batch_size, num_batches)".into(),
            found: format!("({batch_size}, {num_batches})"),
            expected: format!("1 ≤ batch_size ≤ n = {n} and num_batches ≥ 1"),
        });
    }
    let mut vals = Vec::with_capacity(num_batches);
    for b in 0..num_batches {
        let mut r = rng::rng(rng::derive_seed(seed, b as u64));
        let mut idx = sample(&mut r, n, batch_size).into_vec();
        idx.sort_unstable();
        let mb = data.select(&idx)?;
        let g = mlp.grad(&mb, loss)?;
        let gg = g.dot(&g)?;
        if gg == 0.0 {
            continue;
        }
        let c = mlp.taylor(&mb, loss, &g)?;
        vals.push(2.0 * c[2] / gg);
    }
    let m = vals.len();
    if m == 0 {
        return Err(Error::ZeroGradients);
    }
    let mean = vals.iter().sum::<f64>() / m as f64;
    let var = if m > 1 {
        vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (m - 1) as f64
    } else {
        0.0
    };
    Ok(BatchSharpness {
        mean,
        stderr: (var / m as f64).sqrt(),
        batches: m,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::DType;
    use eos_model::testing::tiny_case;
    use eos_model::Activation;

    #[test]
    fn full_batch_equals_gradient_rayleigh_quotient() {
        let (mlp, data) = tiny_case(
            &[3, 5, 2],
            Activation::Tanh,
            Loss::Mse,
            true,
            10,
            6,
            DType::F64,
        )
        .unwrap();
        let g = mlp.grad(&data, Loss::Mse).unwrap();
        let hg = mlp.hvp(&data, Loss::Mse, &g).unwrap();
        let expect = g.dot(&hg).unwrap() / g.dot(&g).unwrap();
        let bs = batch_sharpness(&mlp, &data, Loss::Mse, 10, 3, 1).unwrap();
        assert!((bs.mean - expect).abs() < 1e-10 * expect.abs());
        assert!(bs.stderr < 1e-10);
        // Minibatches: reproducible from the seed, different across seeds.
        let a = batch_sharpness(&mlp, &data, Loss::Mse, 3, 8, 2).unwrap();
        assert_eq!(a, batch_sharpness(&mlp, &data, Loss::Mse, 3, 8, 2).unwrap());
        assert_ne!(
            a.mean,
            batch_sharpness(&mlp, &data, Loss::Mse, 3, 8, 3)
                .unwrap()
                .mean
        );
        assert!(batch_sharpness(&mlp, &data, Loss::Mse, 11, 1, 0).is_err());
    }
}
