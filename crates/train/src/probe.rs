//! `eos probe`: every curvature measurement on one model + batch.
//!
//! Along a direction v (the file's `v.*` tensors, else a seeded standard normal
//! direction scaled to unit norm): loss, ‖∇L‖, vᵀHv, ‖Hv‖, the k largest Hessian
//! eigenvalues (Lanczos, full reorthogonalisation), the Hessian trace, the Taylor
//! coefficients c0..c3 along v and the NTK trace.
//!
//! The trace ([`TraceMethod`], `eos probe --trace`): exact Σᵢ eᵢᵀHeᵢ (P HVPs),
//! Hutchinson's (1/m) Σₖ zₖᵀHzₖ over m seeded Rademacher probes with its standard
//! error (m HVPs; see eos_hessian::hutchinson), or skipped. `auto` takes the exact
//! trace up to [`EXACT_TRACE_MAX_PARAMS`] parameters, else Hutchinson.

use eos_hessian::{
    hutchinson, lanczos, LanczosConfig, LinearOperator, ModelOperator, Observed, Which,
};
use eos_model::{device_name, Batch, Loss, Model, ParamSpace};
use serde::Serialize;

/// Models up to this many parameters get the exact trace (P HVPs).
pub const EXACT_TRACE_MAX_PARAMS: usize = 20_000;
/// Rademacher probes of the Hutchinson estimate above that size (the default of
/// `eos probe --trace-probes`).
pub const HUTCHINSON_PROBES: usize = 64;

/// How [`probe_with`] computes the Hessian trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceMethod {
    /// Exact up to [`EXACT_TRACE_MAX_PARAMS`] parameters, else Hutchinson.
    Auto,
    /// Σᵢ eᵢᵀHeᵢ: P Hessian-vector products.
    Exact,
    /// Hutchinson's estimate: one Hessian-vector product per probe.
    Hutchinson,
    /// No trace (`hessian_trace` null).
    None,
}

impl TraceMethod {
    /// The method `self` uses on `p` parameters (never `Auto`).
    pub fn resolve(self, p: usize) -> Self {
        match self {
            TraceMethod::Auto if p <= EXACT_TRACE_MAX_PARAMS => TraceMethod::Exact,
            TraceMethod::Auto => TraceMethod::Hutchinson,
            m => m,
        }
    }

    /// The `hessian_trace_method` of the report (`auto` only before [`Self::resolve`]).
    pub fn name(self) -> &'static str {
        match self {
            TraceMethod::Auto => "auto",
            TraceMethod::Exact => "exact",
            TraceMethod::Hutchinson => "hutchinson",
            TraceMethod::None => "none",
        }
    }
}

/// The settings of [`probe_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeOptions {
    /// Top Hessian eigenvalues wanted.
    pub k: usize,
    /// Seed of the random direction, of Lanczos and of the Hutchinson probes.
    pub seed: u64,
    pub trace: TraceMethod,
    /// Rademacher probes when the trace is a Hutchinson estimate (at least 2).
    pub trace_probes: usize,
}

impl ProbeOptions {
    /// `k` eigenvalues, `seed`, the trace as `eos probe` computes it by default.
    pub fn new(k: usize, seed: u64) -> Self {
        Self {
            k,
            seed,
            trace: TraceMethod::Auto,
            trace_probes: HUTCHINSON_PROBES,
        }
    }
}

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
    /// Null with `--trace none`.
    pub hessian_trace: Option<f64>,
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
/// of the long stages, `"lanczos"`, `"exact trace"` and `"hutchinson"` (progress output of `eos probe`).
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
    probe_with(
        mlp,
        batch,
        loss,
        v,
        &ProbeOptions::new(k, seed),
        &|_, _, _| {},
    )
}

/// [`probe`], reporting the progress of its long stages to `progress`.
pub fn probe_with<M: Model>(
    mlp: &M,
    batch: &Batch,
    loss: Loss,
    v: Option<&M::Params>,
    opts: &ProbeOptions,
    progress: OnProducts,
) -> crate::Result<ProbeReport> {
    let seed = opts.seed;
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
    let k = opts.k.min(p);
    let cfg = LanczosConfig {
        k,
        which: Which::Largest,
        max_iter: p.min(200.max(4 * k)),
        tol: 1e-8,
        seed,
    };
    let on_lanczos = |n: usize| progress("lanczos", n, cfg.max_iter);
    let lz = lanczos(&Observed::new(&op, &on_lanczos), &cfg, &[])?;
    let method = opts.trace.resolve(p);
    let (trace, stderr) = hessian_trace(&op, method, opts, progress)?;
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
        hessian_trace_method: method.name(),
        taylor: mlp.taylor(batch, loss, &v)?,
        ntk_trace: mlp.ntk_trace(&batch.x)?,
        n_params: p,
        n_samples: batch.len(),
        dtype: format!("{:?}", mlp.dtype()).to_lowercase(),
        device: device_name(&mlp.device()),
        direction,
    })
}

/// The trace by `method` (resolved) and its standard error when it is an estimate.
fn hessian_trace<A: LinearOperator>(
    op: &A,
    method: TraceMethod,
    opts: &ProbeOptions,
    progress: OnProducts,
) -> crate::Result<(Option<f64>, Option<f64>)> {
    let p = op.dim();
    Ok(match method {
        TraceMethod::None => (None, None),
        TraceMethod::Hutchinson => {
            let m = opts.trace_probes;
            let on_trace = |n: usize| progress("hutchinson", n, m);
            let t = hutchinson::hutchinson(&Observed::new(op, &on_trace), m, 8, opts.seed)?;
            (Some(t.mean), Some(t.stderr))
        }
        TraceMethod::Exact | TraceMethod::Auto => {
            let on_trace = |n: usize| progress("exact trace", n, p);
            let t = hutchinson::exact_trace(&Observed::new(op, &on_trace), 8)?;
            (Some(t), None)
        }
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
        let tr = match (self.hessian_trace, self.hessian_trace_stderr) {
            (None, _) => "skipped (--trace none)".to_string(),
            (Some(t), Some(se)) => format!("{t:.6e} ± {se:.2e} (Hutchinson)"),
            (Some(t), None) => format!("{t:.6e} (exact)"),
        };
        row("Hessian trace", tr);
        row("NTK trace", format!("{:.6e}", self.ntk_trace));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::DType;
    use eos_model::testing::tiny_case;
    use eos_model::Activation;
    use std::sync::Mutex;

    /// The probe with `trace`, and the products each stage reported (its last count).
    fn run(trace: TraceMethod, probes: usize) -> (ProbeReport, Vec<(&'static str, usize)>) {
        let (mlp, batch) = tiny_case(
            &[3, 5, 2],
            Activation::Tanh,
            Loss::Mse,
            true,
            7,
            3,
            DType::F64,
        )
        .unwrap();
        let seen = Mutex::new(Vec::<(&'static str, usize)>::new());
        let on = |stage: &'static str, n: usize, _: usize| {
            let mut s = seen.lock().unwrap();
            match s.last_mut() {
                Some(last) if last.0 == stage => last.1 = n,
                _ => s.push((stage, n)),
            }
        };
        let opts = ProbeOptions {
            trace,
            trace_probes: probes,
            ..ProbeOptions::new(2, 5)
        };
        let r = probe_with(&mlp, &batch, Loss::Mse, None, &opts, &on).unwrap();
        (r, seen.into_inner().unwrap())
    }

    #[test]
    fn auto_resolves_by_size() {
        assert_eq!(TraceMethod::Auto.resolve(20_000), TraceMethod::Exact);
        assert_eq!(TraceMethod::Auto.resolve(20_001), TraceMethod::Hutchinson);
        assert_eq!(TraceMethod::None.resolve(5), TraceMethod::None);
        assert_eq!(TraceMethod::Exact.resolve(50_000), TraceMethod::Exact);
    }

    #[test]
    fn trace_methods_run_only_their_products() {
        let p = 3 * 5 + 5 + 5 * 2 + 2;
        let (auto, stages) = run(TraceMethod::Auto, HUTCHINSON_PROBES);
        assert_eq!(stages.last(), Some(&("exact trace", p)));
        assert_eq!(auto.hessian_trace_method, "exact");
        let (exact, _) = run(TraceMethod::Exact, 2);
        assert_eq!(exact.hessian_trace, auto.hessian_trace);
        let t = exact.hessian_trace.unwrap();
        let (none, stages) = run(TraceMethod::None, 2);
        assert_eq!(stages.iter().map(|s| s.0).collect::<Vec<_>>(), ["lanczos"]);
        assert_eq!(
            (none.hessian_trace, none.hessian_trace_method),
            (None, "none")
        );
        assert!(none.table().contains("skipped (--trace none)"));
        assert_eq!(none.top_eigenvalues, auto.top_eigenvalues);
        let (h, stages) = run(TraceMethod::Hutchinson, 3000);
        assert_eq!(stages.last(), Some(&("hutchinson", 3000)));
        assert_eq!(h.hessian_trace_method, "hutchinson");
        let (est, se) = (h.hessian_trace.unwrap(), h.hessian_trace_stderr.unwrap());
        assert!(
            se > 0.0 && (est - t).abs() < 4.0 * se,
            "{est} ± {se} vs {t}"
        );
    }
}
