//! The network suites of `eos bench` (issue 12): a small CNN and a 2-layer causal
//! transformer, timed on the operations EoS tracking spends its time on — the exact
//! gradient, one Hessian-vector product (Pearlmutter's R-operator, standalone and with
//! the cached primal pass that Lanczos uses), Lanczos top-5 (20 products, full
//! reorthogonalisation) and the third directional derivative ∇³L[v, v, v] (eos computes
//! all of c0..c3 by jets). The JAX peer `benches/jax/net_bench.py` times the same
//! operations on the same shapes with the same JSON keys.
//!
//! | suite | network | input | n | loss |
//! |---|---|---|---|---|
//! | cnn | conv3×3(16) relu maxpool2 conv3×3(32) relu maxpool2 flatten dense(10) | 1×28×28 | 256 | cross-entropy |
//! | transformer | embedding(16→64) + pos_embedding, 2 pre-LN blocks (attention 4 heads causal; dense 256 gelu dense 64), layernorm, dense(16) | ids, T = 16 | 128 | cross-entropy per position |
//!
//! Data: CNN inputs N(0, 1) (a Fashion-MNIST-shaped batch), class i mod 10 one-hot; the
//! transformer trains on the sorting task (eos-data's `SortConfig`: T = 16 tokens from
//! V = 16, the target is the sorted sequence). Parameters from each layer's default
//! initialisation (`Network::random`, zero biases), direction v ~ N(0, I); every draw
//! from `eos_model::rng` with seed 0.

use candle_core::{DType, Device, Tensor};
use eos_hessian::{lanczos, LanczosConfig, ModelOperator, Which};
use eos_model::{rng, Batch, Loss, Model, NetParams, Network};
use serde::Serialize;

use crate::suites::median_secs;

/// The CNN suite's layers (eos-net/1 objects).
pub const CNN_LAYERS: &str = r#"[
  {"type": "conv2d", "out": 16, "kernel": 3, "padding": 1}, {"type": "act", "fn": "relu"},
  {"type": "maxpool2d", "kernel": 2},
  {"type": "conv2d", "out": 32, "kernel": 3, "padding": 1}, {"type": "act", "fn": "relu"},
  {"type": "maxpool2d", "kernel": 2}, {"type": "flatten"}, {"type": "dense", "out": 10}]"#;

/// The transformer suite's layers (eos-net/1 objects): d = 64, 4 heads, MLP 256.
pub const TRANSFORMER_LAYERS: &str = r#"[
  {"type": "embedding", "vocab": 16, "dim": 64}, {"type": "pos_embedding", "len": 16, "dim": 64},
  {"type": "residual", "body": [{"type": "layernorm"}, {"type": "attention", "heads": 4}]},
  {"type": "residual", "body": [{"type": "layernorm"}, {"type": "dense", "out": 256},
     {"type": "act", "fn": "gelu"}, {"type": "dense", "out": 64}]},
  {"type": "residual", "body": [{"type": "layernorm"}, {"type": "attention", "heads": 4}]},
  {"type": "residual", "body": [{"type": "layernorm"}, {"type": "dense", "out": 256},
     {"type": "act", "fn": "gelu"}, {"type": "dense", "out": 64}]},
  {"type": "layernorm"}, {"type": "dense", "out": 16}]"#;

/// The data of a network suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetData {
    /// N(0, 1) images `[n, C, H, W]`, class i mod `classes`, one-hot targets.
    Images {
        channels: usize,
        side: usize,
        classes: usize,
    },
    /// The sorting task: `len` tokens from `vocab` ids, one-hot sorted targets.
    Sort { len: usize, vocab: usize },
}

/// A network benchmark shape.
#[derive(Debug, Clone)]
pub struct NetSuite {
    pub name: &'static str,
    pub layers: &'static str,
    pub data: NetData,
    pub n: usize,
}

/// The network suites by name (`cnn`, `transformer`); `None` for another name.
pub fn net_suite(name: &str) -> Option<NetSuite> {
    match name {
        "cnn" => Some(NetSuite {
            name: "cnn",
            layers: CNN_LAYERS,
            data: NetData::Images {
                channels: 1,
                side: 28,
                classes: 10,
            },
            n: 256,
        }),
        "transformer" => Some(NetSuite {
            name: "transformer",
            layers: TRANSFORMER_LAYERS,
            data: NetData::Sort { len: 16, vocab: 16 },
            n: 128,
        }),
        _ => None,
    }
}

/// The network, batch and direction of a network suite.
#[derive(Debug)]
pub struct NetBenchCase {
    pub net: Network,
    pub batch: Batch,
    pub v: NetParams,
    pub loss: Loss,
}

impl NetSuite {
    /// The per-sample input shape.
    pub fn input_shape(&self) -> Vec<usize> {
        match self.data {
            NetData::Images { channels, side, .. } => vec![channels, side, side],
            NetData::Sort { len, .. } => vec![len],
        }
    }

    /// The batch (inputs and one-hot targets) in f64 on the host.
    fn batch(&self, seed: u64) -> anyhow::Result<Batch> {
        let n = self.n;
        Ok(match self.data {
            NetData::Images {
                channels,
                side,
                classes,
            } => {
                let d = channels * side * side;
                let x = rng::normal_vec(rng::derive_seed(seed, 1), n * d);
                let mut y = vec![0.0; n * classes];
                for i in 0..n {
                    y[i * classes + i % classes] = 1.0;
                }
                Batch::new(
                    Tensor::from_vec(x, (n, channels, side, side), &Device::Cpu)?,
                    Tensor::from_vec(y, (n, classes), &Device::Cpu)?,
                )
            }
            NetData::Sort { len, vocab } => {
                let d = eos_data::SortConfig {
                    n,
                    len,
                    vocab,
                    seed: rng::derive_seed(seed, 1),
                }
                .dataset()?;
                Batch::new(d.x.to_dtype(DType::F64)?, d.y.to_dtype(DType::F64)?)
            }
        })
    }

    pub fn case(&self, dtype: DType, device: &Device, seed: u64) -> anyhow::Result<NetBenchCase> {
        let layers = eos_model::net::parse_layers(self.layers)?;
        let net = Network::random(layers, &self.input_shape(), seed, 0.0, dtype, device)?;
        let batch = self.batch(seed)?.to(dtype, device)?;
        net.check_batch(&batch)?;
        let v = net.params.randn_like(rng::derive_seed(seed, 3))?;
        Ok(NetBenchCase {
            net,
            batch,
            v,
            loss: Loss::CrossEntropy,
        })
    }
}

/// Timings of one network suite (milliseconds or seconds as the key says).
#[derive(Debug, Clone, Serialize)]
pub struct NetBenchResult {
    pub suite: String,
    pub dtype: String,
    pub device: String,
    pub threads: usize,
    pub n: usize,
    pub n_params: usize,
    pub grad_ms: f64,
    /// A standalone HVP (primal pass + tangent passes).
    pub hvp_ms: f64,
    /// `hvp_ms / grad_ms` (issue 12 asks ≤ 2.5).
    pub hvp_over_grad: f64,
    /// One curvature-operator product with the cached primal pass (what Lanczos pays).
    pub hvp_cached_ms: f64,
    pub lanczos_top5_s: f64,
    pub lanczos_hvps: usize,
    pub third_deriv_ms: f64,
}

/// Runs one network suite: `reps` timed runs per operation after one warm-up (median),
/// `reps / 3` (≥ 1) for Lanczos.
pub fn run_net_suite(
    s: &NetSuite,
    dtype: DType,
    device: &Device,
    reps: usize,
) -> anyhow::Result<NetBenchResult> {
    let c = s.case(dtype, device, 0)?;
    let (net, batch, v, loss) = (&c.net, &c.batch, &c.v, c.loss);
    let grad = median_secs(device, reps, || {
        net.grad(batch, loss)?;
        Ok(())
    })?;
    let hvp = median_secs(device, reps, || {
        net.hvp(batch, loss, v)?;
        Ok(())
    })?;
    let primal = net.hvp_primal(batch, loss)?;
    let cached = median_secs(device, reps, || {
        net.hvp_with(&primal, batch, v)?;
        Ok(())
    })?;
    drop(primal);
    let op = ModelOperator::hessian(net, batch, loss);
    let cfg = LanczosConfig {
        k: 5,
        which: Which::Largest,
        max_iter: 20,
        tol: 1e-10,
        seed: 0,
    };
    let mut hvps = 0;
    let lz = median_secs(device, (reps / 3).max(1), || {
        hvps = lanczos(&op, &cfg, &[])?.iterations;
        Ok(())
    })?;
    let third = median_secs(device, reps, || {
        net.third_derivative(batch, loss, v)?;
        Ok(())
    })?;
    Ok(NetBenchResult {
        suite: s.name.into(),
        dtype: format!("{dtype:?}").to_lowercase(),
        device: eos_model::device_name(device),
        threads: eos_model::threads::count(),
        n: s.n,
        n_params: Model::n_params(net),
        grad_ms: 1e3 * grad,
        hvp_ms: 1e3 * hvp,
        hvp_over_grad: hvp / grad,
        hvp_cached_ms: 1e3 * cached,
        lanczos_top5_s: lz,
        lanczos_hvps: hvps,
        third_deriv_ms: 1e3 * third,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suites_build_with_the_documented_shapes() {
        let cnn = net_suite("cnn").unwrap();
        let c = cnn.case(DType::F32, &Device::Cpu, 0).unwrap();
        assert_eq!(c.batch.x.dims(), [256, 1, 28, 28]);
        assert_eq!(c.batch.y.dims(), [256, 10]);
        // conv 1→16 (144 + 16), conv 16→32 (4608 + 32), dense 32·7·7 → 10.
        assert_eq!(Model::n_params(&c.net), 160 + 4640 + 1568 * 10 + 10);
        let t = net_suite("transformer").unwrap();
        let c = t.case(DType::F32, &Device::Cpu, 0).unwrap();
        assert_eq!(c.batch.x.dims(), [128, 16]);
        assert_eq!(c.batch.y.dims(), [128, 16, 16]);
        // embeddings 2·16·64; per block: 2 layernorms (2·128), attention 4·64²,
        // MLP 64·256 + 256 + 256·64 + 64; final layernorm 128; readout 64·16 + 16.
        let block = 2 * 128 + 4 * 64 * 64 + (64 * 256 + 256 + 256 * 64 + 64);
        assert_eq!(
            Model::n_params(&c.net),
            2 * 16 * 64 + 2 * block + 128 + 64 * 16 + 16
        );
        assert!(net_suite("resnet").is_none());
    }

    #[test]
    fn tiny_run_reports_every_operation() {
        // The transformer suite cut to 4 sequences: every timing is positive and finite,
        // and Lanczos takes its 20 products.
        let mut s = net_suite("transformer").unwrap();
        s.n = 4;
        let r = run_net_suite(&s, DType::F32, &Device::Cpu, 1).unwrap();
        for t in [r.grad_ms, r.hvp_ms, r.hvp_cached_ms, r.third_deriv_ms] {
            assert!(t.is_finite() && t > 0.0, "{r:?}");
        }
        assert!(r.lanczos_top5_s > 0.0);
        assert_eq!(r.lanczos_hvps, 20);
        // hvp/grad in seconds vs in ms: equal up to rounding.
        let ratio = r.hvp_ms / r.grad_ms;
        assert!((r.hvp_over_grad - ratio).abs() <= 1e-12 * ratio, "{r:?}");
        assert_eq!(r.n, 4);
    }
}
