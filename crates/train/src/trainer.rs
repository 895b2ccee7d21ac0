//! `eos train`: the training loop as a measurement instrument (DESIGN.md, "Runner").
//!
//! One step t (θ_t → θ_{t+1}):
//!
//! ```text
//! B_t            minibatch: sampler(seed, t) | stream(seed, t) | the full set (GD)
//! L_t, g_t       exact loss and gradient of B_t at θ_t; divergence check on L_t
//! probes at θ_t  sharpness, batch sharpness, NTK/Hessian trace, soft rank, norms, eval
//! observe        schedule.observe(step t: loss, sharpness, G's spectrum for K(η, B))
//! η_t            schedule.lr(t) · lr_factor (N for mean-field's N·η₀)
//! Δθ_t           optimizer.step(θ_t, g_t, η_t)
//! probes on Δθ_t Taylor c0..c3 of L_{B_t} along Δθ_t, update cosine, update norms
//! line t         metrics.jsonl (every log_every steps and whenever a probe ran)
//! ```
//!
//! All randomness is a pure function of (seed, t), and the only state carried between
//! steps — parameters, θ₀, optimizer and schedule state, the sharpness probe's Ritz
//! vectors — is in the checkpoints, so `--resume` reproduces an uninterrupted run's
//! metrics bit for bit (except `time_s`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use candle_core::{DType, Device};
use eos_data::Sampler;
use eos_model::{device_name, pick_device, Batch, Loss, Model, ParamVec};
use eos_optim::{NoiseKernelSpectrum, Observation, Optimizer, Schedule};

use crate::config::Config;
use crate::error::{Context, Error};
use crate::metrics::{self, Line};
use crate::model::TrainModel;
use crate::probes::{self, EvalSets, Probes};
use crate::run_dir::{self, Meta, Status};
use crate::{build, checkpoint, data};

/// What `eos train` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct TrainArgs {
    pub config: PathBuf,
    /// `key=value` overrides (`--set`).
    pub set: Vec<String>,
    /// The run directory (default `runs/<config-stem>-<timestamp>`).
    pub out: Option<PathBuf>,
    /// Continue from the latest checkpoint in `out`.
    pub resume: bool,
    /// auto | cpu | cuda.
    pub device: String,
    /// Debugging: stop (checkpoint, status `interrupted`) once this many steps are done.
    pub stop_after: Option<u64>,
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct Summary {
    pub dir: PathBuf,
    pub status: Status,
    pub reason: String,
    pub steps_done: u64,
    pub last_loss: f64,
}

/// Runs (or resumes) the experiment of `args` to its end (or to `--stop-after`, a
/// divergence or [`interrupt`]).
pub fn train(args: &TrainArgs) -> crate::Result<Summary> {
    train_with(args, |_| {})
}

/// [`train`], calling `on_step` after every step (and once before the first, with the
/// trainer as opened): how the CLI draws its progress bar.
pub fn train_with(args: &TrainArgs, mut on_step: impl FnMut(&Trainer)) -> crate::Result<Summary> {
    let mut t = Trainer::open(args)?;
    let stop = args.stop_after.map_or(t.total, |k| k.min(t.total));
    on_step(&t);
    match run_loop(&mut t, stop, &mut on_step) {
        Ok(diverged) => t.finish(diverged),
        Err(e) => Err(t.fail(e)),
    }
}

/// The steps up to `stop` (or a divergence, whose reason it returns, or an interrupt).
fn run_loop(
    t: &mut Trainer,
    stop: u64,
    on_step: &mut impl FnMut(&Trainer),
) -> crate::Result<Option<String>> {
    while t.step < stop {
        if let Some(reason) = t.step()? {
            return Ok(Some(reason));
        }
        on_step(t);
        if t.after_step(stop)? {
            break;
        }
    }
    Ok(None)
}

/// What a config builds before the run directory is opened.
struct Parts {
    data: data::Data,
    model: TrainModel,
    /// Centred model (outputs offset by f(θ₀)).
    center: bool,
    /// Global lr = schedule lr × this.
    lr_factor: f64,
    optimizer: Box<dyn Optimizer>,
    schedule: Box<dyn Schedule>,
    sampler: Option<Sampler>,
    steps_per_epoch: u64,
    total: u64,
}

impl Parts {
    /// The data, model, optimizer, schedule and sampler of `cfg`; errors name `file`.
    fn build(cfg: &Config, file: &Path, device: &Device) -> crate::Result<Parts> {
        // Errors of values serde cannot check name the config file too.
        let in_cfg = |e: Error| e.in_config(file);
        let data = data::build_data(cfg).map_err(in_cfg)?;
        let n = data.train.len();
        let rows = cfg.train.batch_size.unwrap_or(n);
        let setup =
            crate::network::build_train_model(cfg, &data.train, rows, device).map_err(in_cfg)?;
        let optimizer = cfg
            .optim
            .build(&setup.context)
            .map_err(build::optim_err)
            .map_err(in_cfg)?;
        let (model, center, lr_factor) = (setup.model, setup.center, setup.lr_factor);
        let schedule = build::build_schedule(cfg).map_err(in_cfg)?;
        let sampler = match data.stream {
            None => Some(build::build_sampler(cfg, n).map_err(in_cfg)?),
            Some(_) => None,
        };
        let steps_per_epoch = match (&sampler, cfg.train.batch_size) {
            (Some(s), _) => s.steps_per_epoch(),
            (None, b) => n.div_ceil(b.unwrap_or(n).max(1)) as u64,
        };
        let total = build::total_steps(cfg, steps_per_epoch);
        Ok(Parts {
            data,
            model,
            center,
            lr_factor,
            optimizer,
            schedule,
            sampler,
            steps_per_epoch,
            total,
        })
    }
}

/// Where a run starts: step, time already spent, the sharpness probe's Ritz vectors.
struct Start {
    meta: Meta,
    step: u64,
    time_offset: f64,
    ritz: Vec<Vec<f64>>,
    ritz_eff: Vec<Vec<f64>>,
}

/// A run in progress: everything one step needs, built from the config and, on
/// resume, the latest checkpoint ([`Trainer::open`]); [`Trainer::step`] advances it by
/// one step, [`Trainer::checkpoint`] saves it, [`Trainer::finish`] records how it ended.
pub struct Trainer {
    cfg: Config,
    dir: PathBuf,
    /// The run directory's lock (one writer), released when the trainer is dropped.
    _lock: crate::lock::DirLock,
    dtype: DType,
    device: Device,
    loss: Loss,
    data: data::Data,
    sampler: Option<Sampler>,
    /// The initial network, when the model is centred (outputs offset by f(θ₀)).
    mlp0: Option<TrainModel>,
    mlp: TrainModel,
    theta0: ParamVec,
    optimizer: Box<dyn Optimizer>,
    schedule: Box<dyn Schedule>,
    lr_factor: f64,
    train_batch: Batch,
    eval: EvalSets,
    probes: Probes,
    writer: metrics::Writer,
    meta: Meta,
    steps_per_epoch: u64,
    time_offset: f64,
    clock: Instant,
    /// Steps of the whole run.
    pub total: u64,
    /// Steps done (the index of the next step).
    pub step: u64,
    /// The loss of the last step taken (NaN before the first).
    pub last_loss: f64,
    /// The last sharpness measured.
    pub last_sharpness: Option<f64>,
    /// 2/η of the last step.
    pub last_two_over_lr: f64,
}

impl std::fmt::Debug for Trainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer")
            .field("dir", &self.dir)
            .field("step", &self.step)
            .field("total", &self.total)
            .finish_non_exhaustive()
    }
}

impl Trainer {
    /// Builds the run of `args`: the config's data, model, optimizer, schedule and
    /// sampler; the run directory, new or (with `args.resume`) restored from its latest
    /// checkpoint; `config.resolved.toml`, `meta.json` (running), the data on the
    /// device, the probes.
    pub fn open(args: &TrainArgs) -> crate::Result<Trainer> {
        let cfg = Config::load(&args.config, &args.set)?;
        let dir = run_dir_of(args)?;
        let device = pick_device(if args.device.is_empty() {
            "auto"
        } else {
            &args.device
        })?;
        let mut p = Parts::build(&cfg, &args.config, &device)?;
        if args.resume && !dir.join("meta.json").is_file() {
            return Err(Error::Request(format!(
                "--resume: {} holds no run (no meta.json)",
                dir.display()
            )));
        }
        // One writer per run directory, before anything is written there.
        let lock = crate::lock::DirLock::acquire(&dir, "run")?;
        crate::lock::remove_stale_temps(&dir);
        let (start, mlp, theta0) = start_dir(args, &cfg, &dir, &mut p, &device)?;
        let meta = start.meta;

        // Data on the device; centred models subtract the initial network's outputs.
        let dtype = cfg.train.dtype.dtype();
        let mlp0 = match p.center {
            true => Some(mlp.with_params(theta0.clone())?),
            false => None,
        };
        let minibatch = cfg.train.batch_size.is_some();
        let eval = eval_sets(&p.data, dtype, &device, mlp0.as_ref(), minibatch)?;
        let train_batch = eval.train.clone();
        let (loss, seed, b) = (cfg.loss.loss(), cfg.train.seed, cfg.train.batch_size);
        let mut probes = Probes::new(&cfg.probes, loss, seed, &train_batch, b)?;
        probes.ritz = start.ritz;
        probes.effective.ritz = start.ritz_eff;
        let writer = metrics::Writer::open(&dir.join("metrics.jsonl"))?;
        tracing::info!(
            dir = %dir.display(), params = mlp.n_params(), samples = p.data.train.len(),
            steps = p.total, device = %device_name(&device), "training"
        );
        Ok(Trainer {
            dtype,
            loss,
            mlp0,
            mlp,
            theta0,
            optimizer: p.optimizer,
            schedule: p.schedule,
            lr_factor: p.lr_factor,
            sampler: p.sampler,
            data: p.data,
            train_batch,
            eval,
            probes,
            writer,
            meta,
            steps_per_epoch: p.steps_per_epoch,
            total: p.total,
            step: start.step,
            time_offset: start.time_offset,
            clock: Instant::now(),
            last_loss: f64::NAN,
            last_sharpness: None,
            last_two_over_lr: f64::NAN,
            dir,
            _lock: lock,
            device,
            cfg,
        })
    }

    /// The run directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The minibatch of step `t` on the device.
    pub(crate) fn batch(&self, t: u64) -> crate::Result<Batch> {
        Ok(match (&self.data.stream, &self.sampler) {
            (Some(s), _) => batch_on(
                &s.batch(t).context("data")?,
                self.dtype,
                &self.device,
                self.mlp0.as_ref(),
            )?,
            (None, Some(s)) if self.cfg.train.batch_size.is_some() => {
                probes::select(&self.train_batch, &s.batch(t))?
            }
            _ => self.train_batch.clone(),
        })
    }

    /// Takes step `self.step` (θ_t → θ_{t+1}, with its probes and metrics line);
    /// `Some(reason)` when the loss diverged (the line is written, θ is not updated).
    pub fn step(&mut self) -> crate::Result<Option<String>> {
        let batch = self.batch(self.step)?;
        let (loss_t, grad) = self.mlp.loss_and_grad(&batch, self.loss)?;
        self.step_with(batch, loss_t, grad)
    }

    /// The rest of [`Trainer::step`] once the loss and gradient of its minibatch are
    /// known (the ensemble trainer computes them for many runs at once).
    pub(crate) fn step_with(
        &mut self,
        batch: Batch,
        loss_t: f64,
        grad: ParamVec,
    ) -> crate::Result<Option<String>> {
        let grad_norm = grad.norm()?;
        self.step_with_norm(batch, loss_t, grad, grad_norm)
    }

    /// [`Trainer::step_with`] with the gradient's norm `‖grad‖` known (the ensemble
    /// trainer computes its members' together, bit-identical to `grad.norm()`).
    pub(crate) fn step_with_norm(
        &mut self,
        batch: Batch,
        loss_t: f64,
        grad: ParamVec,
        grad_norm: f64,
    ) -> crate::Result<Option<String>> {
        let t = self.step;
        self.last_loss = loss_t;
        let mut line = Line {
            step: t,
            epoch: t / self.steps_per_epoch.max(1),
            loss: loss_t,
            grad_norm,
            ..Default::default()
        };
        let threshold = self.cfg.train.divergence_threshold;
        if !loss_t.is_finite() || loss_t > threshold {
            line.lr = self.schedule.lr(t) * self.lr_factor;
            line.two_over_lr = 2.0 / line.lr;
            line.time_s = self.elapsed();
            self.writer.write(&line)?;
            return Ok(Some(format!(
                "loss {loss_t:e} at step {t} (divergence_threshold {threshold:e})"
            )));
        }
        self.probes
            .before_update(t, &self.mlp, &self.eval, &mut line)?;
        let mut obs = Observation::at(t).with_loss(loss_t);
        obs.sharpness = line.sharpness;
        obs.noise_kernel = self.noise_spectrum(&line, self.lr_factor);
        self.schedule.observe(&obs);
        let lr = self.schedule.lr(t) * self.lr_factor;
        if !(lr.is_finite() && lr >= 0.0) {
            return Err(Error::config(
                "schedule",
                format!(
                    "no learning rate at step {t} (got {lr}); a schedule that reads the \
                     sharpness needs [probes.sharpness] with every ≥ 1 (or an lr_init)"
                ),
            ));
        }
        let (params, update) = self.update(t, grad, lr)?;
        if self.probes.effective.due(t) {
            // After step t (P_t known), before θ moves (H at θ_t).
            let m = self.optimizer.preconditioner(self.mlp.params());
            self.probes.effective.measure(t, &self.mlp, m, &mut line)?;
        }
        if let Some(u) = &update {
            self.probes
                .after_update(t, &self.mlp, &batch, u, &self.theta0, &mut line)?;
        }
        if let (Some(c), Some(u)) = (line.taylor, &update) {
            let uu = u.dot(u)?;
            if uu > 0.0 {
                // uᵀHu/‖u‖² for u ∝ Δθ: 2 c2 / ‖Δθ‖².
                let d = Observation::at(t).with_directional_sharpness(2.0 * c[2] / uu);
                self.schedule.observe(&d);
            }
        }
        line.lr = lr;
        line.two_over_lr = 2.0 / lr;
        self.s_eos_k(&mut line, lr)?;
        line.time_s = self.elapsed();
        self.last_sharpness = line.sharpness.or(self.last_sharpness);
        self.last_two_over_lr = line.two_over_lr;
        if t % self.cfg.train.log_every == 0 || line.has_probe() || t + 1 == self.total {
            self.writer.write(&line)?;
        }
        self.mlp = self.mlp.with_params(params)?;
        self.step += 1;
        Ok(None)
    }

    /// θ_{t+1} and Δθ_t: without Δθ, in the gradient's own storage
    /// ([`Optimizer::step_into_grad`], the same roundings), when no probe reads Δθ at
    /// step t and the model is an MLP (whose gradients are fresh tensors); else
    /// [`Optimizer::step`].
    fn update(
        &mut self,
        t: u64,
        grad: ParamVec,
        lr: f64,
    ) -> crate::Result<(ParamVec, Option<ParamVec>)> {
        let mlp = matches!(self.mlp, TrainModel::Mlp(_));
        let grad = if mlp && !self.probes.needs_update(t) {
            match self.optimizer.step_into_grad(self.mlp.params(), grad, lr)? {
                Ok(params) => return Ok((params, None)),
                Err(grad) => grad,
            }
        } else {
            grad
        };
        let st = self.optimizer.step(self.mlp.params(), &grad, lr)?;
        Ok((st.params, Some(st.update)))
    }

    /// K(η, B) from the Gauss–Newton spectrum of the line, when the S_eos probe ran.
    fn s_eos_k(&self, line: &mut Line, lr: f64) -> crate::Result<()> {
        if let Some(s) = self.noise_spectrum(line, 1.0) {
            line.s_eos_k = Some(eos_hessian::s_eos_k(
                &s.top,
                s.rest_trace,
                lr,
                s.batch,
                s.n,
            )?);
        }
        Ok(())
    }

    /// What K(η, B) needs, from the line's `s_eos` probe (None when it did not run),
    /// with G's eigenvalues times `scale` (the lr factor: K depends on η only through
    /// ηλ, so a schedule's η in units of η₀ sees K(factor·η₀, B)).
    fn noise_spectrum(&self, line: &Line, scale: f64) -> Option<NoiseKernelSpectrum> {
        let trace = line.gn_trace?;
        let top = line.gn_top_eigenvalues.clone().unwrap_or_default();
        let rest = trace - top.iter().sum::<f64>();
        let n = self.data.train.len();
        // Online streams never repeat a sample: 1/n → 0.
        let n_eff = if self.data.stream.is_some() {
            usize::MAX
        } else {
            n
        };
        Some(NoiseKernelSpectrum {
            top: top.iter().map(|l| l * scale).collect(),
            rest_trace: rest * scale,
            batch: self.cfg.train.batch_size.unwrap_or(n).min(n_eff),
            n: n_eff,
        })
    }

    fn elapsed(&self) -> f64 {
        self.time_offset + self.clock.elapsed().as_secs_f64()
    }

    /// Saves a checkpoint of step `self.step` and updates `meta.json`.
    pub fn checkpoint(&mut self) -> crate::Result<()> {
        let state = checkpoint::State {
            step: self.step,
            time_s: self.elapsed(),
            theta0: &self.theta0,
            optimizer: self.optimizer.as_ref(),
            schedule: self.schedule.as_ref(),
            ritz: &self.probes.ritz,
            ritz_eff: &self.probes.effective.ritz,
        };
        checkpoint::save(&self.dir, &self.mlp, self.loss, &state)?;
        self.meta.steps_done = self.step;
        self.meta.write(&self.dir)
    }

    /// After a step of a loop that ends at `stop`: checkpoints when due (every
    /// `checkpoint_every` steps, at `stop`, on an interrupt); whether the loop ends.
    pub(crate) fn after_step(&mut self, stop: u64) -> crate::Result<bool> {
        let every = self.cfg.train.checkpoint_every;
        let interrupted = INTERRUPTED.load(Ordering::Relaxed);
        if (every > 0 && self.step % every == 0) || self.step == stop || interrupted {
            self.checkpoint()?;
        }
        Ok(interrupted || self.step >= stop)
    }

    /// Records a failure (a full disk, a device error): a resumable run that says why,
    /// and no temporary file; returns the error.
    pub(crate) fn fail(mut self, e: Error) -> Error {
        crate::lock::remove_stale_temps(&self.dir);
        self.meta.status = Status::Interrupted;
        self.meta.reason = Some(format!(
            "failed after {} steps: {e}; continue with --resume",
            self.meta.steps_done
        ));
        self.meta.end_time = Some(run_dir::now_rfc3339());
        let _ = self.meta.write(&self.dir);
        e
    }

    /// The config of the run.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The model being trained.
    pub fn model(&self) -> &TrainModel {
        &self.mlp
    }

    /// The loss being minimised.
    pub fn loss(&self) -> Loss {
        self.loss
    }

    /// Ends the run: status `diverged` (with the reason [`Trainer::step`] gave),
    /// `finished` when every step is done, else `interrupted`; writes `meta.json`.
    pub fn finish(mut self, diverged: Option<String>) -> crate::Result<Summary> {
        let (step, total) = (self.step, self.total);
        let (status, reason) = match diverged {
            Some(r) => (Status::Diverged, r),
            None if step >= total => (Status::Finished, format!("completed {total} steps")),
            None if INTERRUPTED.load(Ordering::Relaxed) => (
                Status::Interrupted,
                format!(
                    "interrupted (Ctrl-C) after {step} of {total} steps; continue with --resume"
                ),
            ),
            None => (
                Status::Interrupted,
                format!("stopped after {step} of {total} steps (--stop-after)"),
            ),
        };
        self.meta.steps_done = step;
        self.meta.status = status;
        self.meta.reason = Some(reason.clone());
        self.meta.end_time = Some(run_dir::now_rfc3339());
        self.meta.write(&self.dir)?;
        if status == Status::Diverged {
            tracing::warn!("diverged: {reason}");
        }
        Ok(Summary {
            dir: self.dir,
            status,
            reason,
            steps_done: step,
            last_loss: self.last_loss,
        })
    }
}

/// `ds` as a batch on `device` in `dtype`; centred models (`mlp0`) get the initial
/// network's outputs as the offset.
fn batch_on(
    ds: &eos_data::Dataset,
    dtype: DType,
    device: &Device,
    mlp0: Option<&TrainModel>,
) -> crate::Result<Batch> {
    let mut b = data::to_batch(ds, dtype, device)?;
    if let Some(m) = mlp0 {
        b.offset = Some(m.forward(&b.x)?);
    }
    Ok(b)
}

/// The training set (and the test set) on the device, for the loop and the probes.
fn eval_sets(
    data: &data::Data,
    dtype: DType,
    device: &Device,
    mlp0: Option<&TrainModel>,
    minibatch: bool,
) -> crate::Result<EvalSets> {
    let test = data
        .test
        .as_ref()
        .map(|t| Ok::<_, Error>((batch_on(t, dtype, device, mlp0)?, t.labels.clone())))
        .transpose()?;
    Ok(EvalSets {
        train: batch_on(&data.train, dtype, device, mlp0)?,
        train_labels: data.train.labels.clone(),
        test,
        minibatch,
    })
}
/// The run directory of `args`: `--out`, or (not resuming) `runs/<stem>-<time>`.
fn run_dir_of(args: &TrainArgs) -> crate::Result<PathBuf> {
    match (&args.out, args.resume) {
        (Some(d), _) => Ok(d.clone()),
        (None, true) => Err(Error::Request(
            "--resume: name the run directory with --out DIR".to_string(),
        )),
        (None, false) => Ok(run_dir::default_dir(&args.config)),
    }
}

/// Starts the run in the locked `dir`, new or (with `args.resume`) restored from its
/// latest checkpoint (then `p`'s state is restored too); writes
/// `config.resolved.toml` and `meta.json` (running). Returns the start, the model and
/// θ₀.
fn start_dir(
    args: &TrainArgs,
    cfg: &Config,
    dir: &Path,
    p: &mut Parts,
    device: &Device,
) -> crate::Result<(Start, TrainModel, ParamVec)> {
    let mut mlp = p.model.clone();
    let mut theta0 = mlp.params().clone();
    let resolved = cfg.to_toml()?;
    let start = if args.resume {
        let (start, restored) = resume_dir(dir, &resolved, p, &mlp)?;
        if let Some((params, t0)) = restored {
            mlp = mlp.with_params(params)?;
            theta0 = t0;
        }
        start
    } else {
        let meta = Meta::new(
            &device_name(device),
            cfg.train.dtype.dtype(),
            cfg.train.seed,
            mlp.n_params(),
            mlp.widths(),
            p.total,
        );
        new_dir(dir, meta)?
    };
    eos_model::io::write_atomic(&dir.join("config.resolved.toml"), resolved.as_bytes())?;
    let mut start = start;
    start.meta.status = Status::Running;
    start.meta.end_time = None;
    start.meta.write(dir)?;
    Ok((start, mlp, theta0))
}

/// A new run directory (refused when it already holds a run).
fn new_dir(dir: &Path, meta: Meta) -> crate::Result<Start> {
    if dir.join("metrics.jsonl").exists() {
        return Err(Error::Request(format!(
            "{}: already holds a run; continue it with --resume or choose another --out",
            dir.display()
        )));
    }
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    Ok(Start {
        meta,
        step: 0,
        time_offset: 0.0,
        ritz: Vec::new(),
        ritz_eff: Vec::new(),
    })
}

/// Reopens `dir` (same resolved config required) at its latest checkpoint, restoring
/// the optimizer and schedule state into `p`; returns where the run starts and the
/// restored (θ, θ₀) when there was a checkpoint.
fn resume_dir(
    dir: &Path,
    resolved: &str,
    p: &mut Parts,
    mlp: &TrainModel,
) -> crate::Result<(Start, Option<(ParamVec, ParamVec)>)> {
    run_dir::check_same_config(dir, resolved)?;
    let mut meta = Meta::read(dir)?;
    // The latest readable checkpoint: a truncated one (a crash mid-write on a
    // filesystem without atomic rename) is skipped for the one before, with a warning.
    let mut found = None;
    for step in checkpoint::steps(dir)?.into_iter().rev() {
        let path = checkpoint::path(dir, step);
        match checkpoint::load(&path, mlp, p.optimizer.as_mut(), p.schedule.as_mut()) {
            Ok(r) => {
                found = Some(r);
                break;
            }
            Err(e) => tracing::warn!("skipping an unreadable checkpoint: {e}"),
        }
    }
    let (start, restored) = match found {
        Some(r) => {
            let s = Start {
                meta: meta.clone(),
                step: r.step,
                time_offset: r.time_s,
                ritz: r.ritz,
                ritz_eff: r.ritz_eff,
            };
            (s, Some((r.params, r.theta0)))
        }
        None => {
            let s = Start {
                meta: meta.clone(),
                step: 0,
                time_offset: 0.0,
                ritz: Vec::new(),
                ritz_eff: Vec::new(),
            };
            (s, None)
        }
    };
    if p.total < meta.steps_done.max(start.step) {
        return Err(Error::Request(format!(
            "--resume: {} has {} steps done; the config now asks for {} (train.steps / \
             train.epochs can only grow)",
            dir.display(),
            meta.steps_done.max(start.step),
            p.total
        )));
    }
    metrics::truncate_before(&dir.join("metrics.jsonl"), start.step)?;
    meta.resumed.push((run_dir::now_rfc3339(), start.step));
    meta.total_steps = p.total;
    tracing::info!(dir = %dir.display(), step = start.step, "resuming");
    Ok((Start { meta, ..start }, restored))
}

/// Set by [`interrupt`] (Ctrl-C in the CLI): the loop finishes its step, checkpoints
/// and ends `interrupted`.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Asks a running [`train`] to stop after its current step (checkpoint, status
/// `interrupted`); safe to call from a signal handler.
pub fn interrupt() {
    INTERRUPTED.store(true, Ordering::Relaxed);
}
