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

/// The example network architectures of `eos example --net`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExampleNet {
    /// A small CNN on generated 1×8×8 images of 3 classes, cross-entropy.
    Cnn,
    /// A 2-layer pre-LN causal transformer on the sorting task, cross-entropy at
    /// every position.
    Transformer,
}

/// Layers of the example CNN (eos-net/1 objects).
pub const CNN_LAYERS: &str = r#"[
  {"type": "conv2d", "out": 4, "kernel": 3, "padding": 1}, {"type": "act", "fn": "tanh"},
  {"type": "avgpool2d", "kernel": 2},
  {"type": "conv2d", "out": 8, "kernel": 3, "padding": 1}, {"type": "act", "fn": "tanh"},
  {"type": "avgpool2d", "kernel": 2}, {"type": "flatten"}, {"type": "dense", "out": 3}]"#;

/// Sort-task size of the example transformer: sequence length and vocabulary.
pub const SORT_LEN: usize = 5;
pub const SORT_VOCAB: usize = 6;

/// Layers of the example transformer (eos-net/1 objects).
pub const TRANSFORMER_LAYERS: &str = r#"[
  {"type": "embedding", "vocab": 6, "dim": 8}, {"type": "pos_embedding", "len": 5, "dim": 8},
  {"type": "residual", "body": [{"type": "layernorm"}, {"type": "attention", "heads": 2}]},
  {"type": "residual", "body": [{"type": "layernorm"}, {"type": "dense", "out": 16},
     {"type": "act", "fn": "gelu"}, {"type": "dense", "out": 8}]},
  {"type": "residual", "body": [{"type": "layernorm"}, {"type": "attention", "heads": 2}]},
  {"type": "residual", "body": [{"type": "layernorm"}, {"type": "dense", "out": 16},
     {"type": "act", "fn": "gelu"}, {"type": "dense", "out": 8}]},
  {"type": "layernorm"}, {"type": "dense", "out": 6}]"#;

/// Samples in the example networks' batches.
pub const NET_N: usize = 64;

/// An example network with its batch and loss (cross-entropy), all from `seed`.
pub fn example_net(
    kind: ExampleNet,
    seed: u64,
    dtype: DType,
    device: &Device,
) -> crate::Result<(eos_model::Network, Batch, Loss)> {
    let (layers, input, batch) = match kind {
        ExampleNet::Cnn => {
            // Class c: a bright horizontal band (c = 0), vertical band (1) or
            // diagonal (2), plus unit Gaussian noise.
            let (h, k) = (8, 3);
            let noise = rng::normal_vec(rng::derive_seed(seed, 1000), NET_N * h * h);
            let mut x = vec![0.0; NET_N * h * h];
            let mut y = vec![0.0; NET_N * k];
            for i in 0..NET_N {
                let c = i % k;
                y[i * k + c] = 1.0;
                for r in 0..h {
                    for q in 0..h {
                        let on = match c {
                            0 => r == 3 || r == 4,
                            1 => q == 3 || q == 4,
                            _ => r == q,
                        };
                        let j = i * h * h + r * h + q;
                        x[j] = noise[j] * 0.5 + if on { 1.5 } else { 0.0 };
                    }
                }
            }
            let x = Tensor::from_vec(x, (NET_N, 1, h, h), &Device::Cpu)?;
            let y = Tensor::from_vec(y, (NET_N, k), &Device::Cpu)?;
            (CNN_LAYERS, vec![1, h, h], Batch::new(x, y))
        }
        ExampleNet::Transformer => {
            let d = eos_data::SortConfig {
                n: NET_N,
                len: SORT_LEN,
                vocab: SORT_VOCAB,
                seed: rng::derive_seed(seed, 1000),
            }
            .dataset()?;
            let x = d.x.to_dtype(DType::F64)?;
            let y = d.y.to_dtype(DType::F64)?;
            (TRANSFORMER_LAYERS, vec![SORT_LEN], Batch::new(x, y))
        }
    };
    let layers = eos_model::net::parse_layers(layers)?;
    let net = eos_model::Network::random(layers, &input, seed, 0.0, dtype, device)?;
    Ok((net, batch.to(dtype, device)?, Loss::CrossEntropy))
}
