//! `eos bench`: the core operations timed on fixed suites (median after warm-up), with
//! the same suites and JSON keys as the JAX peer (`shared/peers/jax_bench.py`).
//!
//! | suite | widths | n | activation, loss |
//! |---|---|---|---|
//! | small | 3072-512-512-10 | 1000 | relu, mse |
//! | medium | 3072-1024-1024-1024-10 | 5000 | relu, mse |
//! | deep | 100-64×8-1 | 256 | relu, mse |
//!
//! As in the peer: LeCun-normal weights, zero biases, Gaussian inputs and targets,
//! a Gaussian direction v.

use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use eos_hessian::{lanczos, power_iteration, LanczosConfig, ModelOperator, Which};
use eos_model::{rng, Activation, Batch, Loss, Mlp, MlpSpec, ParamVec};
use serde::Serialize;

/// A benchmark shape.
#[derive(Debug, Clone)]
pub struct Suite {
    pub name: &'static str,
    pub widths: Vec<usize>,
    pub n: usize,
}

/// The suites by name (`small`, `medium`, `deep`).
pub fn suite(name: &str) -> anyhow::Result<Suite> {
    Ok(match name {
        "small" => Suite {
            name: "small",
            widths: vec![3072, 512, 512, 10],
            n: 1000,
        },
        "medium" => Suite {
            name: "medium",
            widths: vec![3072, 1024, 1024, 1024, 10],
            n: 5000,
        },
        "deep" => {
            let mut w = vec![100];
            w.extend([64; 8]);
            w.push(1);
            Suite {
                name: "deep",
                widths: w,
                n: 256,
            }
        }
        other => {
            anyhow::bail!("--suite: unknown suite `{other}` (expected small, medium, deep or all)")
        }
    })
}

/// The model, batch and direction of a suite.
#[derive(Debug)]
pub struct BenchCase {
    pub mlp: Mlp,
    pub batch: Batch,
    pub v: ParamVec,
    pub loss: Loss,
}

impl Suite {
    pub fn case(&self, dtype: DType, device: &Device, seed: u64) -> anyhow::Result<BenchCase> {
        let spec = MlpSpec::new(&self.widths, Activation::Relu, true);
        let mlp = Mlp::random(&spec, seed, dtype, device)?;
        let (d, k) = (self.widths[0], *self.widths.last().expect("widths"));
        let x = Tensor::from_vec(
            rng::normal_vec(rng::derive_seed(seed, 1), self.n * d),
            (self.n, d),
            &Device::Cpu,
        )?;
        let y = Tensor::from_vec(
            rng::normal_vec(rng::derive_seed(seed, 2), self.n * k),
            (self.n, k),
            &Device::Cpu,
        )?;
        let batch = Batch::new(x, y).to(dtype, device)?;
        let v = mlp.params.randn_like(rng::derive_seed(seed, 3))?;
        Ok(BenchCase {
            mlp,
            batch,
            v,
            loss: Loss::Mse,
        })
    }

    /// Multiply-add FLOPs of one pass of the first layer's matmul (one "unit").
    pub fn first_layer_unit_flops(&self) -> f64 {
        2.0 * self.n as f64 * self.widths[0] as f64 * self.widths[1] as f64
    }
}

/// Timings of one suite (milliseconds or seconds as the key says).
#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    pub suite: String,
    pub dtype: String,
    pub device: String,
    pub threads: usize,
    pub sgd_step_ms: f64,
    pub grad_ms: f64,
    pub hvp_ms: f64,
    pub power_iter_20_s: f64,
    pub lanczos_top5_s: f64,
    pub lanczos_hvps: usize,
    pub third_deriv_ms: f64,
    pub matmul_gflops: f64,
}

fn sync(device: &Device) -> anyhow::Result<()> {
    device.synchronize()?;
    Ok(())
}

/// Median wall time of `reps` runs of `f` after one warm-up run, in seconds.
pub fn median_secs(
    device: &Device,
    reps: usize,
    mut f: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<f64> {
    f()?;
    sync(device)?;
    let mut ts = Vec::with_capacity(reps);
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        f()?;
        sync(device)?;
        ts.push(t.elapsed().as_secs_f64());
    }
    ts.sort_by(|a, b| a.total_cmp(b));
    Ok(ts[ts.len() / 2])
}

/// Runs one suite; `reps` for the per-step operations, `reps / 3` (≥ 1) for the
/// eigenvalue solvers, as the peer does.
pub fn run_suite(
    s: &Suite,
    dtype: DType,
    device: &Device,
    reps: usize,
) -> anyhow::Result<BenchResult> {
    let c = s.case(dtype, device, 0)?;
    let (mlp, batch, v, loss) = (&c.mlp, &c.batch, &c.v, c.loss);
    let slow_reps = (reps / 3).max(1);
    let sgd = median_secs(device, reps, || {
        let g = mlp.grad(batch, loss)?;
        let _next = mlp.params.axpy(-0.01, &g)?;
        Ok(())
    })?;
    let grad = median_secs(device, reps, || {
        mlp.grad(batch, loss)?;
        Ok(())
    })?;
    let hvp = median_secs(device, reps, || {
        mlp.hvp(batch, loss, v)?;
        Ok(())
    })?;
    let op = ModelOperator::hessian(mlp, batch, loss);
    let power = median_secs(device, slow_reps, || {
        power_iteration(&op, 20, None, 0)?;
        Ok(())
    })?;
    let mut hvps = 0;
    let lz_cfg = LanczosConfig {
        k: 5,
        which: Which::Largest,
        max_iter: 20,
        tol: 1e-10,
        seed: 0,
    };
    let lz = median_secs(device, slow_reps, || {
        hvps = lanczos(&op, &lz_cfg, &[])?.iterations;
        Ok(())
    })?;
    let third = median_secs(device, reps, || {
        mlp.third_derivative(batch, loss, v)?;
        Ok(())
    })?;
    let a = Tensor::from_vec(rng::normal_vec(5, 2048 * 2048), (2048, 2048), &Device::Cpu)?
        .to_dtype(dtype)?
        .to_device(device)?;
    let mm = median_secs(device, reps, || {
        a.matmul(&a)?;
        Ok(())
    })?;
    Ok(BenchResult {
        suite: s.name.into(),
        dtype: format!("{dtype:?}").to_lowercase(),
        device: eos_model::device_name(device),
        threads: candle_core::utils::get_num_threads(),
        sgd_step_ms: 1e3 * sgd,
        grad_ms: 1e3 * grad,
        hvp_ms: 1e3 * hvp,
        power_iter_20_s: power,
        lanczos_top5_s: lz,
        lanczos_hvps: hvps,
        third_deriv_ms: 1e3 * third,
        matmul_gflops: 2.0 * 2048f64.powi(3) / mm / 1e9,
    })
}
