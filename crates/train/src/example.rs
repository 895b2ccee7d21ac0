//! The built-in example case: a small tanh MLP on a generated Gaussian-mixture
//! classification batch, so `eos probe` runs on a fresh machine with no download.

use candle_core::{DType, Device, Tensor};
use eos_model::{rng, Activation, Batch, Loss, Mlp, MlpSpec};

/// Widths of the example network.
pub const WIDTHS: [usize; 4] = [20, 64, 64, 3];
/// Samples in the example batch.
pub const N: usize = 256;

/// The example: 3 Gaussian clusters in 20 dimensions (means 2·e_k), one-hot targets,
/// a tanh MLP 20-64-64-3 with LeCun init, mse loss. Everything from `seed`.
pub fn example_case(
    seed: u64,
    dtype: DType,
    device: &Device,
) -> eos_model::Result<(Mlp, Batch, Loss)> {
    let spec = MlpSpec::new(&WIDTHS, Activation::Tanh, true);
    let mlp = Mlp::random(&spec, seed, dtype, device)?;
    let (d, k) = (WIDTHS[0], WIDTHS[3]);
    let noise = rng::normal_vec(rng::derive_seed(seed, 1000), N * d);
    let mut x = vec![0.0; N * d];
    let mut y = vec![0.0; N * k];
    for i in 0..N {
        let c = i % k;
        y[i * k + c] = 1.0;
        for j in 0..d {
            x[i * d + j] = noise[i * d + j] + if j == c { 2.0 } else { 0.0 };
        }
    }
    let x = Tensor::from_vec(x, (N, d), &Device::Cpu)?;
    let y = Tensor::from_vec(y, (N, k), &Device::Cpu)?;
    Ok((mlp, Batch::new(x, y).to(dtype, device)?, Loss::Mse))
}
