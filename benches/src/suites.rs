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
//!
//! `eos bench --scaling` (issue 6) times the gradient, a standalone HVP and a
//! curvature-operator product against their matmul FLOP counts ([`grad_flops`],
//! [`hvp_flops`], [`operator_flops`]) over a width sweep (3072-w-w-10, n = 1000) and an
//! n sweep (784-512-512-10, n = 1000 … 50 000), with the peak RSS of each operation
//! (`VmHWM`, reset through `/proc/self/clear_refs`): see docs/performance.md#scaling.

use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use eos_hessian::{
    block_lanczos, lanczos, lanczos_rowspace, power_iteration, rowspace_declines, LanczosConfig,
    LanczosResult, LinearOperator, ModelOperator, RowspaceOperator, Which,
};
use eos_model::rowspace::ROW_TOL;
use eos_model::{rng, Activation, Batch, Loss, Mlp, MlpSpec, ParamVec, RowBasis};
use serde::{Deserialize, Serialize};

/// A benchmark shape.
#[derive(Debug, Clone)]
pub struct Suite {
    pub name: &'static str,
    pub widths: Vec<usize>,
    pub n: usize,
}

/// The MLP suites by name (`small`, `medium`, `deep`; the network suites are
/// [`crate::net_suites::net_suite`]).
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
            anyhow::bail!("--suite: unknown suite `{other}` (expected small, medium, deep, cnn, transformer or all)")
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
    /// 5 products H v_i from one cached primal pass, one direction at a time.
    pub hvp5_cached_ms: f64,
    /// The same 5 products as one block (`Mlp::hvp_block`).
    pub hvp5_block_ms: f64,
    /// Largest `‖H y − θ y‖ / |θ|` of the 20-step Lanczos's top 5 (one product each,
    /// untimed), the accuracy the peer's 20-step Lanczos is compared at.
    pub lanczos_max_rel_residual: f64,
    /// Block Lanczos top 5 (blocks of [`BLOCK`], one `hvp_block` pass each) until every
    /// pair meets [`BLOCK_TOL`].
    pub block_lanczos_top5_s: f64,
    pub block_lanczos_hvps: usize,
    pub block_lanczos_max_rel_residual: f64,
    /// Single-vector Lanczos top 5 to the same tolerance, for comparison.
    pub lanczos_tol_top5_s: f64,
    pub lanczos_tol_hvps: usize,
    pub lanczos_tol_max_rel_residual: f64,
    /// The 20-step Lanczos top 5 on the Hessian restricted to the first layer's row
    /// space (`eos_hessian::RowspaceOperator`; eigenvectors embedded back included, the
    /// primal pass cached as in `lanczos_top5_s`). `null` where the reduction does not
    /// apply (`lanczos_rowspace_note`).
    pub lanczos_rowspace_top5_s: Option<f64>,
    /// Its largest `‖H y − θ y‖ / |θ|` computed with the FULL operator.
    pub lanczos_rowspace_max_rel_residual: Option<f64>,
    /// The rank r of the batch (the reduced first-layer width).
    pub lanczos_rowspace_rank: Option<usize>,
    /// The row basis (Gram matrix in f64 and pivoted Cholesky), once per batch.
    pub rowspace_basis_s: Option<f64>,
    /// Row-space Lanczos top 5 to [`BLOCK_TOL`] (as `lanczos_tol_top5_s`), its
    /// products and largest full-operator relative residual.
    pub lanczos_rowspace_tol_top5_s: Option<f64>,
    pub lanczos_rowspace_tol_hvps: Option<usize>,
    pub lanczos_rowspace_tol_max_rel_residual: Option<f64>,
    /// Why the row-space rows are `null` (e.g. n ≥ d), else `null`.
    pub lanczos_rowspace_note: Option<String>,
    pub matmul_gflops: f64,
}

/// The row-space rows of [`BenchResult`].
#[derive(Debug, Clone, Default)]
pub struct RowspaceRows {
    pub top5_s: Option<f64>,
    pub max_rel_residual: Option<f64>,
    pub rank: Option<usize>,
    pub basis_s: Option<f64>,
    /// Seconds, products and largest full-operator residual to [`BLOCK_TOL`].
    pub tol: Option<(f64, usize, f64)>,
    pub note: Option<String>,
}

/// The 20-step Lanczos top 5 (`cfg`) and top 5 to [`BLOCK_TOL`] on the row-space
/// operator of `c` (medians of `reps` after a warm-up that also caches the primal
/// pass), the basis construction timed apart, and the true residuals with `full`; a
/// note instead where n ≥ d.
pub fn time_rowspace(
    c: &BenchCase,
    full: &ModelOperator<'_, Mlp>,
    cfg: &LanczosConfig,
    device: &Device,
    reps: usize,
) -> anyhow::Result<RowspaceRows> {
    if let Some(why) = rowspace_declines(&c.mlp, &c.batch) {
        return Ok(RowspaceRows {
            note: Some(why),
            ..Default::default()
        });
    }
    let basis_s = median_secs(device, reps, || {
        RowBasis::new(&c.batch.x, ROW_TOL)?;
        Ok(())
    })?;
    let basis = RowBasis::new(&c.batch.x, ROW_TOL)?;
    let op = RowspaceOperator::with_basis(&c.mlp, &c.batch, c.loss, &basis)?;
    let timed = |cfg: &LanczosConfig| -> anyhow::Result<(f64, usize, f64)> {
        let mut last = None;
        let t = median_secs(device, reps, || {
            last = lanczos_rowspace(&op, cfg, &[])?;
            Ok(())
        })?;
        let r =
            last.ok_or_else(|| anyhow::anyhow!("row-space Lanczos: a negative θ in the top 5"))?;
        Ok((t, r.iterations, max_rel_residual(full, &r)?))
    };
    let (t, _, res) = timed(cfg)?;
    Ok(RowspaceRows {
        top5_s: Some(t),
        max_rel_residual: Some(res),
        rank: Some(basis.rank()),
        basis_s: Some(basis_s),
        tol: Some(timed(&tol_config())?),
        note: None,
    })
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
    Ok(crate::median(ts))
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
    let (cached5, block5) = time_block(&c, device, reps)?;
    let lz_res = max_rel_residual(&op, &lanczos(&op, &lz_cfg, &[])?)?;
    let blz = time_lanczos(&op, device, slow_reps, Some(BLOCK))?;
    let tlz = time_lanczos(&op, device, slow_reps, None)?;
    let row = time_rowspace(&c, &op, &lz_cfg, device, slow_reps)?;
    Ok(BenchResult {
        suite: s.name.into(),
        dtype: format!("{dtype:?}").to_lowercase(),
        device: eos_model::device_name(device),
        threads: eos_model::threads::count(),
        sgd_step_ms: 1e3 * sgd,
        grad_ms: 1e3 * grad,
        hvp_ms: 1e3 * hvp,
        power_iter_20_s: power,
        lanczos_top5_s: lz,
        lanczos_hvps: hvps,
        third_deriv_ms: 1e3 * third,
        hvp5_cached_ms: 1e3 * cached5,
        hvp5_block_ms: 1e3 * block5,
        lanczos_max_rel_residual: lz_res,
        block_lanczos_top5_s: blz.0,
        block_lanczos_hvps: blz.1,
        block_lanczos_max_rel_residual: blz.2,
        lanczos_tol_top5_s: tlz.0,
        lanczos_tol_hvps: tlz.1,
        lanczos_tol_max_rel_residual: tlz.2,
        lanczos_rowspace_top5_s: row.top5_s,
        lanczos_rowspace_max_rel_residual: row.max_rel_residual,
        lanczos_rowspace_rank: row.rank,
        rowspace_basis_s: row.basis_s,
        lanczos_rowspace_tol_top5_s: row.tol.map(|t| t.0),
        lanczos_rowspace_tol_hvps: row.tol.map(|t| t.1),
        lanczos_rowspace_tol_max_rel_residual: row.tol.map(|t| t.2),
        lanczos_rowspace_note: row.note,
        matmul_gflops: matmul_gflops(dtype, device, reps)?,
    })
}

/// GFLOP/s of a `[2048, 2048]` square matmul (median of `reps`).
fn matmul_gflops(dtype: DType, device: &Device, reps: usize) -> anyhow::Result<f64> {
    let a = Tensor::from_vec(rng::normal_vec(5, 2048 * 2048), (2048, 2048), &Device::Cpu)?
        .to_dtype(dtype)?
        .to_device(device)?;
    let mm = median_secs(device, reps, || {
        a.matmul(&a)?;
        Ok(())
    })?;
    Ok(2.0 * 2048f64.powi(3) / mm / 1e9)
}

/// Vectors per block of the block-Lanczos row.
pub const BLOCK: usize = 5;

/// Relative residual every top-5 pair of the tolerance rows must meet: at least the
/// accuracy of the peer's 20-step Lanczos, whose 3rd–5th pairs reached
/// `‖H y − θ y‖ / |θ|` = 1.0–1.8·10⁻² on `small` (benches/jax/lanczos_residuals.py,
/// measured before these rows existed).
pub const BLOCK_TOL: f64 = 1e-2;

/// The top-5 settings of the tolerance rows (at most 100 products).
pub fn tol_config() -> LanczosConfig {
    LanczosConfig {
        k: 5,
        which: Which::Largest,
        max_iter: 100,
        tol: BLOCK_TOL,
        seed: 0,
    }
}

/// `max_i ‖A y_i − θ_i y_i‖ / |θ_i|` over the Ritz pairs of `r`, one product each.
pub fn max_rel_residual<A: LinearOperator>(op: &A, r: &LanczosResult) -> anyhow::Result<f64> {
    let mut worst = 0.0f64;
    for (theta, y) in r.eigenvalues.iter().zip(&r.eigenvectors) {
        let ay = op.apply(y)?;
        let res = ay
            .iter()
            .zip(y)
            .map(|(a, b)| (a - theta * b).powi(2))
            .sum::<f64>()
            .sqrt();
        worst = worst.max(res / theta.abs());
    }
    Ok(worst)
}

/// Median seconds, products and largest relative residual (untimed) of top-5 Lanczos
/// to [`BLOCK_TOL`]: blocks of `block` vectors, or single-vector Lanczos for `None`.
pub fn time_lanczos<A: LinearOperator>(
    op: &A,
    device: &Device,
    reps: usize,
    block: Option<usize>,
) -> anyhow::Result<(f64, usize, f64)> {
    let cfg = tol_config();
    let run = || -> anyhow::Result<LanczosResult> {
        Ok(match block {
            Some(b) => block_lanczos(op, &cfg, b, &[])?,
            None => lanczos(op, &cfg, &[])?,
        })
    };
    let mut last = None;
    let t = median_secs(device, reps, || {
        last = Some(run()?);
        Ok(())
    })?;
    let r = last.expect("median_secs runs at least once");
    Ok((t, r.iterations, max_rel_residual(op, &r)?))
}

/// 5 HVPs from one cached primal pass: one at a time, then as one block (seconds).
fn time_block(c: &BenchCase, device: &Device, reps: usize) -> anyhow::Result<(f64, f64)> {
    let (mlp, batch) = (&c.mlp, &c.batch);
    let primal = mlp.hvp_primal(batch, c.loss)?;
    let vs = (0..5)
        .map(|i| mlp.params.randn_like(rng::derive_seed(7, i)))
        .collect::<eos_model::Result<Vec<_>>>()?;
    let single = median_secs(device, reps, || {
        for v in &vs {
            mlp.hvp_with(&primal, batch, v)?;
        }
        Ok(())
    })?;
    let block = median_secs(device, reps, || {
        mlp.hvp_block(&primal, batch, &vs)?;
        Ok(())
    })?;
    Ok((single, block))
}

// ---------------------------------------------------------------------------------------
// The scaling study (`eos bench --scaling`, issue 6): how the cost of a gradient, a
// standalone HVP and a curvature-operator product grows with the width and with n.
// ---------------------------------------------------------------------------------------

/// One point of a scaling sweep: an MLP (relu, bias, mse) on `n` Gaussian samples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalingPoint {
    /// `width` or `n`.
    pub sweep: &'static str,
    pub widths: Vec<usize>,
    pub n: usize,
}

/// The width sweep: 3072-w-w-10, n = 1000, w ∈ {512, 1024, 2048, 4096}.
pub fn width_sweep() -> Vec<ScalingPoint> {
    [512, 1024, 2048, 4096]
        .into_iter()
        .map(|w| ScalingPoint {
            sweep: "width",
            widths: vec![3072, w, w, 10],
            n: 1000,
        })
        .collect()
}

/// The n sweep on Fashion-MNIST-sized inputs: 784-512-512-10, n from 1000 to 50 000.
pub fn n_sweep() -> Vec<ScalingPoint> {
    [1000, 2000, 5000, 10_000, 20_000, 50_000]
        .into_iter()
        .map(|n| ScalingPoint {
            sweep: "n",
            widths: vec![784, 512, 512, 10],
            n,
        })
        .collect()
}

/// The sweeps by name: `width`, `n` or `all`.
pub fn scaling_points(which: &str) -> anyhow::Result<Vec<ScalingPoint>> {
    Ok(match which {
        "width" => width_sweep(),
        "n" => n_sweep(),
        "all" => width_sweep().into_iter().chain(n_sweep()).collect(),
        other => anyhow::bail!("--sweep: unknown sweep `{other}` (expected width, n or all)"),
    })
}

/// `P_l = 2 n n_l n_{l+1}`: the FLOPs (one multiply + one add per term) of one
/// `[n, n_l] × [n_l, n_{l+1}]` product of layer l, the unit every pass is counted in.
fn layer_products(widths: &[usize], n: usize) -> Vec<f64> {
    widths
        .windows(2)
        .map(|w| 2.0 * n as f64 * w[0] as f64 * w[1] as f64)
        .collect()
}

/// Matmul FLOPs of one exact gradient (`Mlp::grad`), counted from `crates/model/src/grad.rs`:
/// per layer the forward `h_l W_lᵀ` and the weight gradient `δ_lᵀ h_l`, and for l ≥ 1
/// the backpropagation `δ_l W_l` (δ_{−1} is never formed):
/// `2 P_0 + 3 Σ_{l≥1} P_l`.
pub fn grad_flops(widths: &[usize], n: usize) -> f64 {
    let p = layer_products(widths, n);
    2.0 * p[0] + 3.0 * p[1..].iter().sum::<f64>()
}

/// Matmul FLOPs of one standalone Hessian-vector product (`Mlp::hvp`, one R-operator
/// pass), counted from `crates/model/src/hvp.rs`:
///
/// - primal: forward `h_l W_lᵀ` (every l) and `δ_l W_l` for l ≥ 2; for l = 1 only
///   where φ'' ≠ 0 (δ_0 is needed only for the term g_1 ⊙ φ'' ⊙ R{z_0}, since R{h_0} = 0);
/// - tangent forward: `h_l V_lᵀ` (every l) and `R{h_l} W_lᵀ` (l ≥ 1);
/// - tangent backward: `R{δ_l}ᵀ h_l` (every l), and for l ≥ 1 `δ_lᵀ R{h_l}`,
///   `R{δ_l} W_l` and `δ_l V_l`.
///
/// Total `3 P_0 + 8 Σ_{l≥1} P_l`, minus `P_1` when φ'' = 0 (`phi2_zero`: the relu
/// family and identity): `3 P_0 + 7 P_1 + 8 Σ_{l≥2} P_l`.
pub fn hvp_flops(widths: &[usize], n: usize, phi2_zero: bool) -> f64 {
    let p = layer_products(widths, n);
    let skip = if phi2_zero && p.len() > 1 { p[1] } else { 0.0 };
    3.0 * p[0] + 8.0 * p[1..].iter().sum::<f64>() - skip
}

/// Matmul FLOPs of one curvature-operator product with the cached primal pass
/// (`ModelOperator::hessian`, as power iteration and Lanczos use it): only the tangent
/// passes of [`hvp_flops`], `2 P_0 + 6 Σ_{l≥1} P_l`, whatever the activation. (Without
/// the cache, e.g. beyond `PRIMAL_CACHE_BYTES`, a product costs [`hvp_flops`].)
pub fn operator_flops(widths: &[usize], n: usize) -> f64 {
    let p = layer_products(widths, n);
    2.0 * p[0] + 6.0 * p[1..].iter().sum::<f64>()
}

/// The value of `key` (`VmHWM`, `VmRSS`, …) in a `/proc/<pid>/status` text, in bytes
/// (the file's `kB` are KiB).
pub fn status_bytes(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let (k, rest) = line.split_once(':')?;
        if k.trim() != key {
            return None;
        }
        let mut it = rest.split_whitespace();
        let v: u64 = it.next()?.parse().ok()?;
        match it.next() {
            Some("kB") => Some(v * 1024),
            None => Some(v),
            Some(_) => None,
        }
    })
}

/// `key` of this process's `/proc/self/status` in bytes (`None` off Linux).
pub fn proc_status_bytes(key: &str) -> Option<u64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| status_bytes(&s, key))
}

/// Resets the kernel's peak-RSS mark `VmHWM` to the current RSS (`5` written to
/// `/proc/self/clear_refs`, Linux ≥ 4.0). False where that fails: `VmHWM` is then the
/// peak since the process started.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Median wall time, after one warm-up run, of at least `min_reps` runs, more (up to
/// `max_reps`) while their total stays within `budget_s` as judged by the warm-up.
/// Returns the median in seconds and the number of timed runs.
pub fn median_secs_budget(
    device: &Device,
    min_reps: usize,
    max_reps: usize,
    budget_s: f64,
    mut f: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<(f64, usize)> {
    let t = Instant::now();
    f()?;
    sync(device)?;
    let warm = t.elapsed().as_secs_f64().max(1e-9);
    let reps = ((budget_s / warm) as usize).clamp(min_reps.max(1), max_reps.max(min_reps.max(1)));
    let mut ts = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t = Instant::now();
        f()?;
        sync(device)?;
        ts.push(t.elapsed().as_secs_f64());
    }
    Ok((crate::median(ts), reps))
}

/// How the points of a scaling sweep are run.
#[derive(Debug, Clone)]
pub struct ScalingOptions {
    /// Fewest timed runs per operation (after one warm-up).
    pub min_reps: usize,
    /// Most timed runs per operation (small points get more, within `budget_s`).
    pub max_reps: usize,
    /// Seconds of timed runs per operation beyond which no run is added.
    pub budget_s: f64,
    /// Rows per chunk (`None`: the model's default, [`eos_model::mlp::DEFAULT_CHUNK`]).
    pub chunk_size: Option<usize>,
    /// Progress lines on stderr.
    pub progress: bool,
}

impl Default for ScalingOptions {
    fn default() -> Self {
        Self {
            min_reps: 3,
            max_reps: 15,
            budget_s: 1.5,
            chunk_size: None,
            progress: true,
        }
    }
}

/// Time, FLOPs and peak memory of one operation at one point.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpCost {
    /// Median wall time of one call, seconds.
    pub secs: f64,
    /// Timed runs behind the median.
    pub reps: usize,
    /// Matmul GFLOP of one call (from the formulas above).
    pub gflop: f64,
    /// `gflop / secs`.
    pub gflops: f64,
    /// Peak RSS of the process while this operation ran (warm-up included), bytes.
    pub peak_rss_bytes: Option<u64>,
}

/// One point of the scaling study.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScalingResult {
    pub sweep: String,
    pub widths: Vec<usize>,
    pub n: usize,
    pub chunk_size: usize,
    pub dtype: String,
    pub device: String,
    pub threads: usize,
    /// Bytes of the batch itself: n·(n_0 + n_L)·size of the dtype (inputs + targets).
    pub data_bytes: u64,
    /// Bytes of the parameters (one copy).
    pub param_bytes: u64,
    /// RSS once model, batch and direction exist, before the operations, bytes.
    pub base_rss_bytes: Option<u64>,
    /// `Mlp::grad`.
    pub grad: OpCost,
    /// `Mlp::hvp` (one full R-operator pass).
    pub hvp: OpCost,
    /// `ModelOperator::hessian(..).apply` (f64 in and out, as power iteration calls it).
    pub op: OpCost,
    /// Bytes of the operator's cached primal pass (`None`: not cached, so every product
    /// was a full `Mlp::hvp` and `op.gflop` counts that).
    pub op_cache_bytes: Option<usize>,
    /// Whether `VmHWM` was reset before each operation; if not, the peaks are the
    /// process's running maximum.
    pub peak_rss_reset: bool,
}

/// Runs one point: gradient, standalone HVP and operator product, each timed (median)
/// with its peak RSS.
pub fn run_scaling_point(
    p: &ScalingPoint,
    dtype: DType,
    device: &Device,
    opts: &ScalingOptions,
) -> anyhow::Result<ScalingResult> {
    let c = scaling_case(p, dtype, device, opts)?;
    let (mlp, batch, v, loss) = (&c.mlp, &c.batch, &c.v, c.loss);
    let size = dtype.size_in_bytes() as u64;
    let (d, k) = (p.widths[0] as u64, *p.widths.last().expect("widths") as u64);
    let base_rss_bytes = proc_status_bytes("VmRSS");
    let mut timer = OpTimer {
        device,
        opts,
        all_reset: true,
    };
    let w = &p.widths;
    let grad = timer.time("grad", 1e-9 * grad_flops(w, p.n), &mut || {
        mlp.grad(batch, loss)?;
        Ok(())
    })?;
    let phi2_zero = mlp.activation.is_homogeneous();
    let hvp = timer.time("hvp", 1e-9 * hvp_flops(w, p.n, phi2_zero), &mut || {
        mlp.hvp(batch, loss, v)?;
        Ok(())
    })?;
    let (op, op_cache_bytes) = time_operator(&mut timer, &c, p)?;
    Ok(ScalingResult {
        sweep: p.sweep.into(),
        widths: p.widths.clone(),
        n: p.n,
        chunk_size: mlp.chunk_size,
        dtype: format!("{dtype:?}").to_lowercase(),
        device: eos_model::device_name(device),
        threads: eos_model::threads::count(),
        data_bytes: p.n as u64 * (d + k) * size,
        param_bytes: mlp.params.numel() as u64 * size,
        base_rss_bytes,
        grad,
        hvp,
        op,
        op_cache_bytes,
        peak_rss_reset: timer.all_reset,
    })
}

/// The model, batch and direction of point `p`, with `--chunk-size` applied.
fn scaling_case(
    p: &ScalingPoint,
    dtype: DType,
    device: &Device,
    opts: &ScalingOptions,
) -> anyhow::Result<BenchCase> {
    let suite = Suite {
        name: "scaling",
        widths: p.widths.clone(),
        n: p.n,
    };
    let mut c = suite.case(dtype, device, 0)?;
    if let Some(cs) = opts.chunk_size {
        anyhow::ensure!(cs > 0, "--chunk-size must be at least 1");
        c.mlp.chunk_size = cs;
    }
    Ok(c)
}

/// Times the operations of one point, each after resetting the peak RSS.
struct OpTimer<'a> {
    device: &'a Device,
    opts: &'a ScalingOptions,
    /// Whether every reset of the peak RSS succeeded.
    all_reset: bool,
}

impl OpTimer<'_> {
    /// The median time of `f` (`gflop` GFLOP per call) and the peak RSS while it ran.
    fn time(
        &mut self,
        name: &str,
        gflop: f64,
        f: &mut dyn FnMut() -> anyhow::Result<()>,
    ) -> anyhow::Result<OpCost> {
        let o = self.opts;
        self.all_reset &= reset_peak_rss();
        let (secs, reps) = median_secs_budget(self.device, o.min_reps, o.max_reps, o.budget_s, f)?;
        let peak_rss_bytes = proc_status_bytes("VmHWM");
        if o.progress {
            eprintln!(
                "    {name:<4} {:>10.2} ms ({reps} runs)  peak RSS {}",
                1e3 * secs,
                mib(peak_rss_bytes)
            );
        }
        Ok(OpCost {
            secs,
            reps,
            gflop,
            gflops: gflop / secs,
            peak_rss_bytes,
        })
    }
}

/// The timed curvature-operator product of case `c` and the bytes of its cached
/// primal pass; its FLOPs depend on whether that pass was cached.
fn time_operator(
    timer: &mut OpTimer,
    c: &BenchCase,
    p: &ScalingPoint,
) -> anyhow::Result<(OpCost, Option<usize>)> {
    let (mlp, w) = (&c.mlp, &p.widths);
    let v64 = c.v.to_f64_vec()?;
    let operator = ModelOperator::hessian(mlp, &c.batch, c.loss);
    // The FLOPs depend on whether the primal pass gets cached: fixed after the timing.
    let mut op = timer.time("op", 0.0, &mut || {
        operator.apply(&v64)?;
        Ok(())
    })?;
    let op_cache_bytes = operator.cached_primal_bytes();
    op.gflop = 1e-9
        * if op_cache_bytes.is_some() {
            operator_flops(w, p.n)
        } else {
            hvp_flops(w, p.n, mlp.activation.is_homogeneous())
        };
    op.gflops = op.gflop / op.secs;
    Ok((op, op_cache_bytes))
}

fn mib(b: Option<u64>) -> String {
    b.map_or_else(|| "n/a".into(), |b| format!("{:.0} MiB", b as f64 / MIB))
}

const MIB: f64 = 1024.0 * 1024.0;

/// Runs `points` in order, with a progress line per point on stderr.
pub fn run_scaling(
    points: &[ScalingPoint],
    dtype: DType,
    device: &Device,
    opts: &ScalingOptions,
    mut each: impl FnMut(&ScalingResult) -> anyhow::Result<()>,
) -> anyhow::Result<Vec<ScalingResult>> {
    let mut out = Vec::with_capacity(points.len());
    for (i, p) in points.iter().enumerate() {
        if opts.progress {
            eprintln!(
                "[{}/{}] {} sweep: {}, n = {}",
                i + 1,
                points.len(),
                p.sweep,
                join_widths(&p.widths),
                p.n
            );
        }
        let r = run_scaling_point(p, dtype, device, opts)?;
        each(&r)?;
        out.push(r);
    }
    Ok(out)
}

/// Runs each of `points` in a fresh process: `exe` (the `eos` binary) with `args` (the
/// `bench --scaling …` arguments) and `--point INDEX`, which runs that point alone and
/// prints its JSON. A fresh process starts from a clean allocator, so its RSS before
/// and peak RSS during each operation are those of the point alone; in one long
/// process, freed heap memory of earlier (larger) points stays resident and shows up
/// in later points' RSS.
pub fn run_scaling_isolated(
    exe: &std::path::Path,
    args: &[String],
    points: &[ScalingPoint],
    opts: &ScalingOptions,
    mut each: impl FnMut(&ScalingResult) -> anyhow::Result<()>,
) -> anyhow::Result<Vec<ScalingResult>> {
    use anyhow::Context;
    let mut out = Vec::with_capacity(points.len());
    for (i, p) in points.iter().enumerate() {
        if opts.progress {
            eprintln!(
                "[{}/{}] {} sweep: {}, n = {} (own process)",
                i + 1,
                points.len(),
                p.sweep,
                join_widths(&p.widths),
                p.n
            );
        }
        let child = std::process::Command::new(exe)
            .args(args)
            .args(["--point", &i.to_string()])
            .stderr(std::process::Stdio::inherit())
            .output()
            .with_context(|| format!("cannot run {}", exe.display()))?;
        let stdout = String::from_utf8_lossy(&child.stdout);
        anyhow::ensure!(
            child.status.success(),
            "scaling point {} ({}, n = {}) failed: {}",
            i,
            join_widths(&p.widths),
            p.n,
            child.status
        );
        let line = stdout.lines().rev().find(|l| l.starts_with('{'));
        let r: ScalingResult = serde_json::from_str(line.unwrap_or_default())
            .with_context(|| format!("scaling point {i}: no result in its output: {stdout}"))?;
        each(&r)?;
        out.push(r);
    }
    Ok(out)
}

fn join_widths(w: &[usize]) -> String {
    w.iter().map(usize::to_string).collect::<Vec<_>>().join("-")
}

/// The results as two Markdown tables per sweep: cost (time, GFLOP, GFLOP/s of each
/// operation) and memory (data, chunk, RSS before and peak RSS during each operation).
pub fn scaling_tables(results: &[ScalingResult]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let mut sweeps: Vec<&str> = Vec::new();
    for r in results {
        if !sweeps.contains(&r.sweep.as_str()) {
            sweeps.push(&r.sweep);
        }
    }
    let opt_mib =
        |b: Option<u64>| b.map_or_else(|| "n/a".into(), |b| format!("{:.0}", b as f64 / MIB));
    for sw in sweeps {
        let rs: Vec<&ScalingResult> = results.iter().filter(|r| r.sweep == sw).collect();
        let r0 = rs[0];
        let _ = writeln!(
            s,
            "\n{sw} sweep ({}, {}, {} threads; relu, mse; median time after one warm-up)\n",
            r0.dtype, r0.device, r0.threads
        );
        let _ = writeln!(
            s,
            "| widths | n | grad ms | GFLOP | GFLOP/s | HVP ms | GFLOP | GFLOP/s | op ms | GFLOP | GFLOP/s |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for r in &rs {
            let _ = write!(s, "| {} | {} ", join_widths(&r.widths), r.n);
            for c in [&r.grad, &r.hvp, &r.op] {
                let _ = write!(
                    s,
                    "| {:.1} | {:.2} | {:.0} ",
                    1e3 * c.secs,
                    c.gflop,
                    c.gflops
                );
            }
            let _ = writeln!(s, "|");
        }
        let _ = writeln!(
            s,
            "\n| widths | n | chunk | data MiB | params MiB | RSS before MiB | peak grad MiB | peak HVP MiB | peak op MiB | op cache MiB |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for r in &rs {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {:.1} | {:.1} | {} | {} | {} | {} | {} |",
                join_widths(&r.widths),
                r.n,
                r.chunk_size,
                r.data_bytes as f64 / MIB,
                r.param_bytes as f64 / MIB,
                opt_mib(r.base_rss_bytes),
                opt_mib(r.grad.peak_rss_bytes),
                opt_mib(r.hvp.peak_rss_bytes),
                opt_mib(r.op.peak_rss_bytes),
                r.op_cache_bytes
                    .map_or_else(|| "none".into(), |b| format!("{:.0}", b as f64 / MIB)),
            );
        }
        if rs.iter().any(|r| !r.peak_rss_reset) {
            let _ = writeln!(
                s,
                "\n(VmHWM could not be reset through /proc/self/clear_refs: the peaks are the \
                 process's running maximum, not per operation.)"
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flop_formulas_on_hand_counted_examples() {
        // widths 2-3-4-5, n = 10: P_0 = 2·10·2·3 = 120, P_1 = 2·10·3·4 = 240,
        // P_2 = 2·10·4·5 = 400.
        let w = [2, 3, 4, 5];
        assert_eq!(grad_flops(&w, 10), 2.0 * 120.0 + 3.0 * (240.0 + 400.0));
        assert_eq!(grad_flops(&w, 10), 2160.0);
        // relu: 3·120 + 7·240 + 8·400; smooth: 3·120 + 8·(240 + 400).
        assert_eq!(hvp_flops(&w, 10, true), 5240.0);
        assert_eq!(hvp_flops(&w, 10, false), 5480.0);
        assert_eq!(operator_flops(&w, 10), 2.0 * 120.0 + 6.0 * 640.0);
        // One layer: forward, h V₀ᵀ and R{δ₀}ᵀ h for the HVP; x V₀ᵀ, R{δ₀}ᵀ x cached.
        assert_eq!(hvp_flops(&[4, 2], 3, true), 3.0 * 48.0);
        assert_eq!(operator_flops(&[4, 2], 3), 2.0 * 48.0);
        assert_eq!(grad_flops(&[4, 2], 3), 2.0 * 48.0);
        // The small suite of docs/performance.md: U = 3.15 GFLOP, s = 0.52 GFLOP,
        // HVP 3U + 7s (+ 8 products of the 512×10 layer) = 13.19 GFLOP.
        let small = [3072, 512, 512, 10];
        let (u, s, o) = (3_145_728_000.0, 524_288_000.0, 10_240_000.0);
        assert_eq!(hvp_flops(&small, 1000, true), 3.0 * u + 7.0 * s + 8.0 * o);
        assert_eq!(hvp_flops(&small, 1000, true), 13_189_120_000.0);
        assert_eq!(operator_flops(&small, 1000), 2.0 * u + 6.0 * (s + o));
        assert_eq!(grad_flops(&small, 1000), 2.0 * u + 3.0 * (s + o));
        // Linear in n.
        assert_eq!(
            hvp_flops(&small, 50_000, true),
            50.0 * hvp_flops(&small, 1000, true)
        );
    }

    #[test]
    fn status_parser_reads_vm_lines() {
        let text = "Name:\teos\nUmask:\t0022\nState:\tR (running)\nVmPeak:\t  3060 kB\n\
                    VmSize:\t    3060 kB\nVmHWM:\t  123456 kB\nVmRSS:\t    1636 kB\n\
                    RssAnon:\t     112 kB\nThreads:\t3\n";
        assert_eq!(status_bytes(text, "VmHWM"), Some(123_456 * 1024));
        assert_eq!(status_bytes(text, "VmRSS"), Some(1636 * 1024));
        assert_eq!(status_bytes(text, "Threads"), Some(3));
        assert_eq!(status_bytes(text, "VmSwap"), None);
        // `VmHWM` must not match `VmHWMx` or a value in another unit.
        assert_eq!(
            status_bytes("VmHWMx:\t5 kB\nVmHWM:\t7 kB\n", "VmHWM"),
            Some(7 * 1024)
        );
        assert_eq!(status_bytes("VmHWM:\t7 MB\n", "VmHWM"), None);
        if cfg!(target_os = "linux") {
            // One snapshot (other tests allocate meanwhile).
            let status = std::fs::read_to_string("/proc/self/status").unwrap();
            let hwm = status_bytes(&status, "VmHWM").expect("VmHWM on Linux");
            let rss = status_bytes(&status, "VmRSS").expect("VmRSS on Linux");
            assert!(hwm >= rss && rss > 0, "VmHWM {hwm} < VmRSS {rss}");
        }
    }

    #[test]
    fn tiny_scaling_point_runs() {
        let p = ScalingPoint {
            sweep: "width",
            widths: vec![8, 16, 16, 2],
            n: 64,
        };
        let opts = ScalingOptions {
            min_reps: 2,
            max_reps: 3,
            budget_s: 0.01,
            chunk_size: Some(20),
            progress: false,
        };
        let r = run_scaling_point(&p, DType::F32, &Device::Cpu, &opts).unwrap();
        assert_eq!(r.chunk_size, 20);
        assert_eq!(r.data_bytes, 64 * (8 + 2) * 4);
        assert_eq!(r.param_bytes, (8 * 16 + 16 + 16 * 16 + 16 + 16 * 2 + 2) * 4);
        // A 4-chunk batch this small is cached by the operator.
        assert!(r.op_cache_bytes.is_some_and(|b| b > 0));
        assert_eq!(r.op.gflop, 1e-9 * operator_flops(&p.widths, 64));
        assert_eq!(r.hvp.gflop, 1e-9 * hvp_flops(&p.widths, 64, true));
        assert_eq!(r.grad.gflop, 1e-9 * grad_flops(&p.widths, 64));
        for c in [&r.grad, &r.hvp, &r.op] {
            assert!(c.secs.is_finite() && c.secs > 0.0, "{c:?}");
            assert!(c.gflops.is_finite() && c.gflops > 0.0, "{c:?}");
            assert!((2..=3).contains(&c.reps), "{c:?}");
            if cfg!(target_os = "linux") {
                let peak = c.peak_rss_bytes.expect("VmHWM on Linux");
                assert!(peak > 0);
                assert!(peak >= r.data_bytes);
            }
        }
        let t = scaling_tables(&[r]);
        assert!(t.contains("| 8-16-16-2 | 64 | 20 |"), "{t}");
        assert!(t.contains("width sweep"), "{t}");
    }

    #[test]
    fn sweeps_match_the_issue() {
        let w: Vec<usize> = width_sweep().iter().map(|p| p.widths[1]).collect();
        assert_eq!(w, [512, 1024, 2048, 4096]);
        assert!(width_sweep()
            .iter()
            .all(|p| p.n == 1000 && p.widths[0] == 3072));
        let n: Vec<usize> = n_sweep().iter().map(|p| p.n).collect();
        assert_eq!(n, [1000, 2000, 5000, 10_000, 20_000, 50_000]);
        assert!(n_sweep().iter().all(|p| p.widths == [784, 512, 512, 10]));
        assert_eq!(scaling_points("all").unwrap().len(), 10);
        assert!(scaling_points("depth").is_err());
    }
}
