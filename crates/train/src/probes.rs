//! The measurements taken while training, each at its own `every` (THEORY.md §6, §8).
//!
//! At step t, before the update (at θ_t): sharpness (top-k Lanczos on the probe set,
//! warm-started from the previous Ritz vectors), batch sharpness, NTK trace, Hessian
//! trace, soft rank of each hidden layer, preactivation RMS of each hidden layer
//! ([`crate::preact`]), weight norms, eval (accuracies, test loss).
//! After the update Δθ_t is known: Taylor coefficients c0..c3 of the step's minibatch
//! loss along Δθ_t, the update cosine with θ_t − θ₀, the update norms.
//!
//! Probe sets: the whole training set, or a fixed subset of `subset` samples (the
//! first `subset` of one seeded permutation, so subsets of different sizes are
//! nested). Random draws of a probe at step t come from `derive_seed(seed, t)`; the
//! only state carried from one probe to the next are the Ritz vectors, which the
//! checkpoints save, so a resumed run measures exactly what the original would have.

use crate::error::Context;
use candle_core::{DType, D};
use eos_hessian::{
    batch_sharpness, block_lanczos, exact_trace, hutchinson, lanczos, lanczos_rowspace,
    rowspace_declines, soft_rank, update_cosine, LanczosConfig, LanczosResult, LinearOperator,
    ModelOperator, RowspaceOperator, Which,
};
use eos_model::rng::derive_seed;
use eos_model::{Batch, Loss, Mlp, Model, ParamVec, RowBasis};
use rand::seq::SliceRandom;

use crate::build::streams;
use crate::config::ProbesConfig;
use crate::effective::EffectiveProbe;
use crate::metrics::Line;
use crate::model::TrainModel;

/// Rows selected from a batch (offsets included).
pub fn select(batch: &Batch, idx: &[usize]) -> crate::Result<Batch> {
    Ok(batch.select(idx)?)
}

/// Fraction of rows whose prediction matches `labels`: argmax of the outputs, or
/// `f > 0` ↔ class 1 for a single output.
pub fn accuracy(mlp: &TrainModel, batch: &Batch, labels: &[u32]) -> crate::Result<f64> {
    let mut f = mlp.forward(&batch.x)?;
    if let Some(o) = &batch.offset {
        f = (f - o)?;
    }
    let pred: Vec<u32> = if f.dims()[1] == 1 {
        let f = f.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
        f.iter().map(|&v| u32::from(v > 0.0)).collect()
    } else {
        f.argmax(D::Minus1)?.to_vec1::<u32>()?
    };
    let hits = pred.iter().zip(labels).filter(|(p, l)| p == l).count();
    Ok(hits as f64 / labels.len().max(1) as f64)
}

/// The evaluation sets and their labels.
#[derive(Debug)]
pub struct EvalSets {
    pub train: Batch,
    pub train_labels: Option<Vec<u32>>,
    pub test: Option<(Batch, Option<Vec<u32>>)>,
    /// The run trains on minibatches (so the full training loss is worth a line).
    pub minibatch: bool,
}

/// The probes of a run and their state.
#[derive(Debug)]
pub struct Probes {
    cfg: ProbesConfig,
    loss: Loss,
    seed: u64,
    sharp_set: Batch,
    ntk_set: Batch,
    trace_set: Batch,
    seos_set: Batch,
    rank_set: Batch,
    preact_set: Batch,
    /// Minibatch size for batch sharpness.
    bs_size: usize,
    /// The latest Ritz vectors (warm start of the next sharpness probe).
    pub ritz: Vec<Vec<f64>>,
    /// The effective-sharpness probe (runs after the optimizer's step).
    pub effective: EffectiveProbe,
    /// The row basis of the sharpness probe set (`probes.sharpness.rowspace = "auto"`),
    /// computed at the first probe: it depends on the fixed inputs only.
    row_basis: Option<RowBasis>,
}

fn due(every: u64, step: u64) -> bool {
    every > 0 && step % every == 0
}

impl Probes {
    /// Probes over `train` (the full training batch, offsets included).
    pub fn new(
        cfg: &ProbesConfig,
        loss: Loss,
        seed: u64,
        train: &Batch,
        train_batch: Option<usize>,
    ) -> crate::Result<Self> {
        let n = train.len();
        let mut perm: Vec<usize> = (0..n).collect();
        perm.shuffle(&mut eos_model::rng::rng(derive_seed(
            seed,
            streams::PROBE_SUBSET,
        )));
        let subset = |m: usize| -> crate::Result<Batch> {
            if m == 0 || m >= n {
                return Ok(train.clone());
            }
            let mut idx = perm[..m].to_vec();
            idx.sort_unstable();
            select(train, &idx)
        };
        let bs_size = cfg
            .batch_sharpness
            .batch_size
            .or(train_batch)
            .unwrap_or(n)
            .min(n);
        Ok(Self {
            effective: EffectiveProbe::new(
                &cfg.effective_sharpness,
                loss,
                seed,
                subset(cfg.effective_sharpness.subset)?,
            ),
            sharp_set: subset(cfg.sharpness.subset)?,
            ntk_set: subset(cfg.ntk_trace.subset)?,
            trace_set: subset(cfg.hessian_trace.subset)?,
            seos_set: subset(cfg.s_eos.subset)?,
            rank_set: subset(cfg.soft_rank.subset)?,
            preact_set: subset(cfg.preact_rms.subset)?,
            cfg: cfg.clone(),
            loss,
            seed,
            bs_size,
            ritz: Vec::new(),
            row_basis: None,
        })
    }

    /// Whether the sharpness probe runs at `step` (schedules may wait for it).
    pub fn sharpness_due(&self, step: u64) -> bool {
        due(self.cfg.sharpness.every, step)
    }

    /// The probes at θ_t (before the update) that are due at `step`.
    pub fn before_update(
        &mut self,
        step: u64,
        mlp: &TrainModel,
        eval: &EvalSets,
        line: &mut Line,
    ) -> crate::Result<()> {
        if due(self.cfg.sharpness.every, step) {
            self.sharpness(step, mlp, line)?;
        }
        self.traces(step, mlp, eval, line)?;
        let c = &self.cfg;
        if due(c.soft_rank.every, step) {
            let feats = mlp.features(&self.rank_set.x)?;
            let ranks = feats
                .iter()
                .map(|h| soft_rank(h, c.soft_rank.kind))
                .collect::<Result<Vec<_>, _>>()?;
            line.soft_rank = Some(ranks);
        }
        if due(c.preact_rms.every, step) {
            line.preact_rms = Some(crate::preact::preact_rms(mlp, &self.preact_set.x)?);
        }
        if due(c.norms.every, step) {
            line.weight_norms = Some(layer_norms(mlp.params())?);
            line.bias_mean = Some(bias_means(mlp.params())?);
        }
        if due(c.eval.every, step) {
            self.evaluate(mlp, eval, line)?;
        }
        Ok(())
    }

    /// The seed of probe stream `stream` at `step`.
    fn sub_seed(&self, stream: u64, step: u64) -> u64 {
        derive_seed(derive_seed(self.seed, stream), step)
    }

    /// The sharpness probe: the top-k Hessian eigenvalues by Lanczos (warm-started from
    /// the last Ritz vectors when configured), which it keeps for the next call.
    fn sharpness(&mut self, step: u64, mlp: &TrainModel, line: &mut Line) -> crate::Result<()> {
        let c = &self.cfg;
        let p = mlp.params().numel();
        let cfg = LanczosConfig {
            k: c.sharpness.k.min(p),
            which: Which::Largest,
            max_iter: c.sharpness.max_iter.max(c.sharpness.k).min(p),
            tol: c.sharpness.tol,
            seed: self.sub_seed(streams::LANCZOS, step),
        };
        let warm = if c.sharpness.warm_start {
            std::mem::take(&mut self.ritz)
        } else {
            Vec::new()
        };
        let reduced = match mlp {
            TrainModel::Mlp(m) if !c.sharpness.rowspace.is_off() => {
                self.sharpness_rowspace(m, &cfg, &warm)?
            }
            _ => None,
        };
        let r = match reduced {
            Some(r) => r,
            None => {
                let op = ModelOperator::hessian(mlp, &self.sharp_set, self.loss);
                match self.cfg.sharpness.block {
                    0 => lanczos(&op, &cfg, &warm).context("sharpness probe (Lanczos)")?,
                    b => block_lanczos(&op, &cfg, b, &warm)
                        .context("sharpness probe (block Lanczos)")?,
                }
            }
        };
        line.sharpness = r.eigenvalues.first().copied();
        line.top_eigenvalues = Some(r.eigenvalues);
        self.ritz = r.eigenvectors;
        Ok(())
    }

    /// `probes.sharpness.rowspace = "auto"` on an MLP: Lanczos on the Hessian in the
    /// first layer's row-space coordinates, or `None` where the reduction declines
    /// (probe rows n ≥ input width d, or a negative θ among the top k).
    fn sharpness_rowspace(
        &mut self,
        mlp: &Mlp,
        cfg: &LanczosConfig,
        warm: &[Vec<f64>],
    ) -> crate::Result<Option<LanczosResult>> {
        if rowspace_declines(mlp, &self.sharp_set).is_some() {
            return Ok(None);
        }
        if self.row_basis.is_none() {
            let b = RowBasis::new(&self.sharp_set.x, eos_model::rowspace::ROW_TOL)
                .context("sharpness probe (row basis)")?;
            self.row_basis = Some(b);
        }
        let basis = self.row_basis.as_ref().expect("set above");
        let op = RowspaceOperator::with_basis(mlp, &self.sharp_set, self.loss, basis)
            .context("sharpness probe (row-space operator)")?;
        let dim = op.dim();
        let cfg = LanczosConfig {
            k: cfg.k.min(dim),
            max_iter: cfg.max_iter.min(dim),
            ..*cfg
        };
        lanczos_rowspace(&op, &cfg, warm).context("sharpness probe (row-space Lanczos)")
    }

    /// The trace-like probes due at `step`: batch sharpness, the NTK trace, the Hessian
    /// trace (exact or Hutchinson) and the Gauss–Newton spectrum of S_EoS.
    fn traces(
        &self,
        step: u64,
        mlp: &TrainModel,
        eval: &EvalSets,
        line: &mut Line,
    ) -> crate::Result<()> {
        let c = &self.cfg;
        let sub = |stream: u64| self.sub_seed(stream, step);
        if due(c.batch_sharpness.every, step) {
            let train = &eval.train;
            let bs = batch_sharpness(
                mlp,
                train,
                self.loss,
                self.bs_size,
                c.batch_sharpness.batches,
                sub(streams::BATCH_SHARPNESS),
            )
            .context("batch_sharpness probe")?;
            line.batch_sharpness = Some(bs.mean);
        }
        if due(c.ntk_trace.every, step) {
            line.ntk_trace = Some(eos_hessian::ntk_trace(mlp, &self.ntk_set.x)?);
        }
        if due(c.hessian_trace.every, step) {
            let op = ModelOperator::hessian(mlp, &self.trace_set, self.loss);
            let t = if c.hessian_trace.exact {
                exact_trace(&op, 16)?
            } else {
                hutchinson(&op, c.hessian_trace.samples, 4, sub(streams::HUTCHINSON))?.mean
            };
            line.hessian_trace = Some(t);
        }
        if due(c.s_eos.every, step) {
            let (trace, top) = gn_spectrum(
                mlp,
                &self.seos_set,
                self.loss,
                c.s_eos.k,
                sub(streams::S_EOS),
            )
            .context("s_eos probe")?;
            line.gn_trace = Some(trace);
            if c.s_eos.k > 0 {
                line.gn_top_eigenvalues = Some(top);
            }
        }
        Ok(())
    }

    /// The evaluation probe: minibatch train loss, train/test accuracy and test loss.
    fn evaluate(&self, mlp: &TrainModel, eval: &EvalSets, line: &mut Line) -> crate::Result<()> {
        if eval.minibatch {
            line.train_loss = Some(mlp.loss(&eval.train, self.loss)?);
        }
        if let Some(l) = &eval.train_labels {
            line.train_accuracy = Some(accuracy(mlp, &eval.train, l)?);
        }
        if let Some((test, labels)) = &eval.test {
            line.test_loss = Some(mlp.loss(test, self.loss)?);
            if let Some(l) = labels {
                line.test_accuracy = Some(accuracy(mlp, test, l)?);
            }
        }
        Ok(())
    }

    /// Whether [`Probes::after_update`] reads the update Δθ at `step` (the trainer
    /// skips forming Δθ otherwise).
    pub fn needs_update(&self, step: u64) -> bool {
        let c = &self.cfg;
        [c.taylor.every, c.update_cosine.every, c.norms.every]
            .into_iter()
            .any(|every| due(every, step))
    }

    /// The probes that need the update Δθ_t (`update`) of the minibatch `batch`.
    pub fn after_update(
        &self,
        step: u64,
        mlp: &TrainModel,
        batch: &Batch,
        update: &ParamVec,
        theta0: &ParamVec,
        line: &mut Line,
    ) -> crate::Result<()> {
        let c = &self.cfg;
        if due(c.taylor.every, step) {
            // c0 is L_B(θ_t): report the gradient pass's value (the jet pass computes
            // the same number along another route, equal up to rounding in f32).
            let mut c = mlp.taylor(batch, self.loss, update)?;
            c[0] = line.loss;
            line.taylor = Some(c);
        }
        if due(c.update_cosine.every, step) {
            let cum = mlp.params().sub(theta0)?;
            let uc = update_cosine(update, &cum)?;
            line.update_cosine = Some(uc.global);
            line.update_cosine_layers = Some(uc.layers);
        }
        if due(c.norms.every, step) {
            line.update_norms = Some(layer_norms(update)?);
        }
        Ok(())
    }
}

/// ‖v_l‖ per layer (weight and bias together).
fn layer_norms(v: &ParamVec) -> crate::Result<Vec<f64>> {
    Ok(v.layer_norms_sq()?.into_iter().map(f64::sqrt).collect())
}

/// The mean of each layer's bias (`None` for a layer without one).
fn bias_means(v: &ParamVec) -> crate::Result<Vec<Option<f64>>> {
    v.layers
        .iter()
        .map(|l| {
            l.bias
                .as_ref()
                .map(|b| -> crate::Result<f64> {
                    let b = b.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
                    Ok(b.iter().sum::<f64>() / b.len().max(1) as f64)
                })
                .transpose()
        })
        .collect()
}

/// tr G and the top-`k` eigenvalues of the Gauss-Newton matrix G on `batch`.
///
/// For `mse` (½‖f − y‖², the loss's output Hessian is I) tr G is the exact NTK trace;
/// for `mse_mean_all` it is that trace · 2/k (k outputs); for the other losses, the
/// exact trace of the Gauss-Newton operator (P products: small models) when P ≤ 4096,
/// else Hutchinson with 32 Rademacher probes.
pub fn gn_spectrum(
    mlp: &TrainModel,
    batch: &Batch,
    loss: Loss,
    k: usize,
    seed: u64,
) -> crate::Result<(f64, Vec<f64>)> {
    let op = ModelOperator::gauss_newton(mlp, batch, loss);
    let outputs = mlp.n_outputs()?.max(1) as f64;
    let trace = match loss {
        Loss::Mse => eos_hessian::ntk_trace(mlp, &batch.x)?,
        Loss::MseMeanAll => eos_hessian::ntk_trace(mlp, &batch.x)? * 2.0 / outputs,
        _ if mlp.params().numel() <= 4096 => exact_trace(&op, 16)?,
        _ => hutchinson(&op, 32, 8, seed)?.mean,
    };
    let top = if k > 0 {
        let p = mlp.params().numel();
        let cfg = LanczosConfig {
            k: k.min(p),
            which: Which::Largest,
            max_iter: 100.max(k).min(p),
            tol: 1e-6,
            seed,
        };
        lanczos(&op, &cfg, &[])?.eigenvalues
    } else {
        Vec::new()
    };
    Ok((trace, top))
}
