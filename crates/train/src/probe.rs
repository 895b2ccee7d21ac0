//! `eos probe`: every curvature measurement on one model + batch.
//!
//! Along a direction v (the file's `v.*` tensors, else a seeded standard normal
//! direction scaled to unit norm): loss, ‖∇L‖, vᵀHv, ‖Hv‖, the k largest Hessian
//! eigenvalues (Lanczos, full reorthogonalisation), the Hessian trace (exact
//! Σ eᵢᵀHeᵢ up to [`EXACT_TRACE_MAX_PARAMS`] parameters, else Hutchinson with its
//! standard error), the Taylor coefficients c0..c3 along v and the NTK trace.

use eos_hessian::{
    hutchinson, lanczos, LanczosConfig, LinearOperator, ModelOperator, Observed, Which,
};
use eos_model::{device_name, Batch, Loss, Model, ParamSpace};
use serde::Serialize;

/// Models up to this many parameters get the exact trace (P HVPs).
pub const EXACT_TRACE_MAX_PARAMS: usize = 20_000;
/// Rademacher probes of the Hutchinson estimate above that size.
pub const HUTCHINSON_PROBES: usize = 64;

/// What `eos probe --json` prints.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeReport {
    pub loss: f64,
    pub grad_norm: f64,
    pub vhv: f64,
    pub hvp_norm: f64,
    pub top_eigenvalues: Vec<f64>,
    /// ‖H y − θ y‖ of each reported Ritz pair.
    pub eigen_residuals: Vec<f64>,
    pub lanczos_hvps: usize,
    pub hessian_trace: f64,
    /// Present when the trace is a Hutchinson estimate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hessian_trace_stderr: Option<f64>,
    pub hessian_trace_method: &'static str,
    pub taylor: [f64; 4],
    pub ntk_trace: f64,
    pub n_params: usize,
    pub n_samples: usize,
    pub dtype: String,
    pub device: String,
    pub direction: &'static str,
}

/// Told `(stage, products done, products at most)` after each Hessian-vector product
/// of the long stages, `"lanczos"` and `"exact trace"` (progress output of `eos probe`).
pub type OnProducts<'a> = &'a (dyn Fn(&'static str, usize, usize) + Sync);

/// Runs every probe, on an `Mlp` or a `Network` (any [`Model`]).
pub fn probe<M: Model>(
    mlp: &M,
    batch: &Batch,
    loss: Loss,
    v: Option<&M::Params>,
    k: usize,
    seed: u64,
) -> crate::Result<ProbeReport> {
    probe_with(mlp, batch, loss, v, k, seed, &|_, _, _| {})
}

/// [`probe`], reporting the progress of its long stages to `progress`.
pub fn probe_with<M: Model>(
    mlp: &M,
    batch: &Batch,
    loss: Loss,
    v: Option<&M::Params>,
    k: usize,
    seed: u64,
    progress: OnProducts,
) -> crate::Result<ProbeReport> {
    let (v, direction) = match v {
        Some(v) => (v.clone(), "file"),
        None => {
            let r = mlp.params().randn_like(seed)?;
            let nrm = r.norm()?;
            (r.scale(1.0 / nrm)?, "random_unit")
        }
    };
    let (loss_value, grad, hvp) = mlp.loss_grad_hvp(batch, loss, &v)?;
    let op = ModelOperator::hessian(mlp, batch, loss);
    let p = op.dim();
    let k = k.min(p);
    let cfg = LanczosConfig {
        k,
        which: Which::Largest,
        max_iter: p.min(200.max(4 * k)),
        tol: 1e-8,
        seed,
    };
    let on_lanczos = |n: usize| progress("lanczos", n, cfg.max_iter);
    let lz = lanczos(&Observed::new(&op, &on_lanczos), &cfg, &[])?;
    let (trace, stderr, method) = if p <= EXACT_TRACE_MAX_PARAMS {
        let on_trace = |n: usize| progress("exact trace", n, p);
        let t = hutchinson::exact_trace(&Observed::new(&op, &on_trace), 8)?;
        (t, None, "exact")
    } else {
        let t = hutchinson::hutchinson(&op, HUTCHINSON_PROBES, 8, seed)?;
        (t.mean, Some(t.stderr), "hutchinson")
    };
    Ok(ProbeReport {
        loss: loss_value,
        grad_norm: grad.norm()?,
        vhv: v.dot(&hvp)?,
        hvp_norm: hvp.norm()?,
        top_eigenvalues: lz.eigenvalues,
        eigen_residuals: lz.residuals,
        lanczos_hvps: lz.iterations,
        hessian_trace: trace,
        hessian_trace_stderr: stderr,
        hessian_trace_method: method,
        taylor: mlp.taylor(batch, loss, &v)?,
        ntk_trace: mlp.ntk_trace(&batch.x)?,
        n_params: p,
        n_samples: batch.len(),
        dtype: format!("{:?}", mlp.dtype()).to_lowercase(),
        device: device_name(&mlp.device()),
        direction,
    })
}

impl ProbeReport {
    /// The human-readable table printed without `--json`.
    pub fn table(&self) -> String {
        let list = |v: &[f64]| {
            v.iter()
                .map(|x| format!("{x:.6e}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut s = String::new();
        let mut row = |k: &str, v: String| s.push_str(&format!("{k:<22} {v}\n"));
        row("parameters", self.n_params.to_string());
        row("samples", self.n_samples.to_string());
        row(
            "dtype / device",
            format!("{} / {}", self.dtype, self.device),
        );
        row("loss", format!("{:.8e}", self.loss));
        row("|grad|", format!("{:.6e}", self.grad_norm));
        row(&format!("v ({})", self.direction), String::new());
        row("  v'Hv", format!("{:.6e}", self.vhv));
        row("  |Hv|", format!("{:.6e}", self.hvp_norm));
        row("  taylor c0..c3", list(&self.taylor));
        row("top eigenvalues", list(&self.top_eigenvalues));
        row("  residuals", list(&self.eigen_residuals));
        row("  Lanczos HVPs", self.lanczos_hvps.to_string());
        let tr = match self.hessian_trace_stderr {
            Some(se) => format!("{:.6e} ± {se:.2e} (Hutchinson)", self.hessian_trace),
            None => format!("{:.6e} (exact)", self.hessian_trace),
        };
        row("Hessian trace", tr);
        row("NTK trace", format!("{:.6e}", self.ntk_trace));
        s
    }
}
