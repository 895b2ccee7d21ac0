//! `eos train`: the training loop as a measurement instrument (DESIGN.md, "Runner").
//!
//! One step t (θ_t → θ_{t+1}):
//!
//! ```text
//! B_t            minibatch: sampler(seed, t) | stream(seed, t) | the full set (GD)
//! L_t, g_t       exact loss and gradient of B_t at θ_t; divergence check on L_t
//! probes at θ_t  sharpness, batch sharpness, NTK/Hessian trace, soft rank, norms, eval
//! observe        schedule.observe(step t: loss, sharpness)
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

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::error::{Context, Error};
use eos_model::{device_name, pick_device};
use eos_optim::Observation;

use crate::config::Config;
use crate::metrics::{self, Line};
use crate::probes::{self, EvalSets, Probes};
use crate::run_dir::{self, Meta, Progress, Status};
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

/// Runs (or resumes) the experiment of `args`.
pub fn train(args: &TrainArgs) -> crate::Result<Summary> {
    let cfg = Config::load(&args.config, &args.set)?;
    let dir = match (&args.out, args.resume) {
        (Some(d), _) => d.clone(),
        (None, true) => {
            return Err(Error::Request(
                "--resume: name the run directory with --out DIR".to_string(),
            ))
        }
        (None, false) => run_dir::default_dir(&args.config),
    };
    let device = pick_device(if args.device.is_empty() {
        "auto"
    } else {
        &args.device
    })?;
    let dtype = cfg.train.dtype.dtype();
    let loss = cfg.loss.loss();
    let seed = cfg.train.seed;

    // Errors of values serde cannot check name the config file too.
    let origin = args.config.display().to_string();
    let in_cfg = |e: Error| e.in_config(&origin);
    let data = data::build_data(&cfg).map_err(in_cfg)?;
    let n = data.train.len();
    let setup = build::build_model(
        &cfg,
        data.train.input_dim(),
        data.train.target_dim(),
        &device,
    )
    .map_err(in_cfg)?;
    let mut optimizer = build::build_optimizer(&cfg, &setup.scalings).map_err(in_cfg)?;
    let mut schedule = build::build_schedule(&cfg).map_err(in_cfg)?;
    let sampler = match data.stream {
        None => Some(build::build_sampler(&cfg, n).map_err(in_cfg)?),
        Some(_) => None,
    };
    let steps_per_epoch = match (&sampler, cfg.train.batch_size) {
        (Some(s), _) => s.steps_per_epoch(),
        (None, b) => n.div_ceil(b.unwrap_or(n).max(1)) as u64,
    };
    let total = build::total_steps(&cfg, steps_per_epoch);
    let mut mlp = setup.mlp;
    let mut theta0 = mlp.params.clone();

    // The run directory: new, or resumed from its latest checkpoint.
    let metrics_path = dir.join("metrics.jsonl");
    let resolved = cfg.to_toml()?;
    let (mut meta, start, time_offset, ritz) = if args.resume {
        run_dir::check_same_config(&dir, &resolved)?;
        let mut meta = Meta::read(&dir)?;
        let (start, time_offset, ritz) = match checkpoint::latest(&dir)? {
            Some(step) => {
                let p = checkpoint::path(&dir, step);
                let r = checkpoint::load(&p, &mlp.params, optimizer.as_mut(), schedule.as_mut())?;
                mlp = mlp.with_params(r.params)?;
                theta0 = r.theta0;
                (r.step, r.time_s, r.ritz)
            }
            None => (0, 0.0, Vec::new()),
        };
        metrics::truncate_before(&metrics_path, start)?;
        meta.resumed.push((run_dir::now_rfc3339(), start));
        meta.total_steps = total;
        tracing::info!(dir = %dir.display(), step = start, "resuming");
        (meta, start, time_offset, ritz)
    } else {
        if metrics_path.exists() {
            return Err(Error::Request(format!(
                "{}: already holds a run; continue it with --resume or choose another --out",
                dir.display()
            )));
        }
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("{}: cannot create", dir.display()))?;
        let meta = Meta::new(&device_name(&device), dtype, seed, &mlp, total);
        (meta, 0, 0.0, Vec::new())
    };
    eos_model::io::write_atomic(&dir.join("config.resolved.toml"), resolved.as_bytes())?;
    meta.status = Status::Running;
    meta.end_time = None;
    meta.write(&dir)?;

    // Data on the device; centred models subtract the initial network's outputs.
    let mlp0 = mlp.with_params(theta0.clone())?;
    let center = setup.scalings.center;
    let on_device = |ds: &eos_data::Dataset| -> crate::Result<eos_model::Batch> {
        let mut b = data::to_batch(ds, dtype, &device)?;
        if center {
            b.offset = Some(mlp0.forward(&b.x)?);
        }
        Ok(b)
    };
    let train_batch = on_device(&data.train)?;
    let test = data
        .test
        .as_ref()
        .map(|t| Ok::<_, crate::Error>((on_device(t)?, t.labels.clone())))
        .transpose()?;
    let eval = EvalSets {
        train: train_batch.clone(),
        train_labels: data.train.labels.clone(),
        test,
        minibatch: cfg.train.batch_size.is_some(),
    };
    let mut probes = Probes::new(&cfg.probes, loss, seed, &train_batch, cfg.train.batch_size)?;
    probes.ritz = ritz;
    let mut writer = metrics::Writer::open(&metrics_path)?;
    tracing::info!(
        dir = %dir.display(), params = mlp.params.numel(), samples = n, steps = total,
        device = %device_name(&device), "training"
    );

    let stop = args.stop_after.map_or(total, |k| k.min(total));
    let progress = Progress::new(total, start);
    let clock = Instant::now();
    let (mut status, mut reason) = (Status::Finished, format!("completed {total} steps"));
    let mut last_loss = f64::NAN;
    let mut last_sharpness = None;
    let mut step = start;
    while step < stop {
        let t = step;
        let batch = match (&data.stream, &sampler) {
            (Some(s), _) => on_device(&s.batch(t).context("data")?)?,
            (None, Some(s)) if cfg.train.batch_size.is_some() => {
                probes::select(&train_batch, &s.batch(t))?
            }
            _ => train_batch.clone(),
        };
        let (loss_t, grad) = mlp.loss_and_grad(&batch, loss)?;
        last_loss = loss_t;
        let mut line = Line {
            step: t,
            epoch: t / steps_per_epoch.max(1),
            loss: loss_t,
            grad_norm: grad.norm()?,
            ..Default::default()
        };
        let factor = setup.lr_factor;
        if !loss_t.is_finite() || loss_t > cfg.train.divergence_threshold {
            line.lr = schedule.lr(t) * factor;
            line.two_over_lr = 2.0 / line.lr;
            line.time_s = time_offset + clock.elapsed().as_secs_f64();
            writer.write(&line)?;
            status = Status::Diverged;
            reason = format!(
                "loss {loss_t:e} at step {t} (divergence_threshold {:e})",
                cfg.train.divergence_threshold
            );
            break;
        }
        probes.before_update(t, &mlp, &eval, &mut line)?;
        let mut obs = Observation::at(t).with_loss(loss_t);
        obs.sharpness = line.sharpness;
        schedule.observe(&obs);
        let lr = schedule.lr(t) * factor;
        if !(lr.is_finite() && lr >= 0.0) {
            return Err(Error::config(
                "schedule",
                format!(
                    "no learning rate at step {t} (got {lr}); a schedule that reads the \
                 sharpness needs [probes.sharpness] with every ≥ 1 (or an lr_init)"
                ),
            ));
        }
        let st = optimizer.step(&mlp.params, &grad, lr)?;
        probes.after_update(t, &mlp, &batch, &st.update, &theta0, &mut line)?;
        if let Some(c) = line.taylor {
            let uu = st.update.dot(&st.update)?;
            if uu > 0.0 {
                // uᵀHu/‖u‖² for u ∝ Δθ: 2 c2 / ‖Δθ‖².
                schedule.observe(&Observation::at(t).with_directional_sharpness(2.0 * c[2] / uu));
            }
        }
        line.lr = lr;
        line.two_over_lr = 2.0 / lr;
        if let Some(trace) = line.gn_trace {
            let top = line.gn_top_eigenvalues.as_deref().unwrap_or(&[]);
            let rest = trace - top.iter().sum::<f64>();
            // Online streams never repeat a sample: 1/n → 0.
            let n_eff = if data.stream.is_some() { usize::MAX } else { n };
            let b = cfg.train.batch_size.unwrap_or(n).min(n_eff);
            line.s_eos_k = Some(eos_hessian::s_eos_k(top, rest, lr, b, n_eff)?);
        }
        line.time_s = time_offset + clock.elapsed().as_secs_f64();
        last_sharpness = line.sharpness.or(last_sharpness);
        if t % cfg.train.log_every == 0 || line.has_probe() || t + 1 == total {
            writer.write(&line)?;
        }
        progress.update(t + 1, loss_t, last_sharpness, line.two_over_lr);
        mlp = mlp.with_params(st.params)?;
        step += 1;
        let every = cfg.train.checkpoint_every;
        let interrupted = INTERRUPTED.load(Ordering::Relaxed);
        if (every > 0 && step % every == 0) || step == stop || interrupted {
            let state = checkpoint::State {
                step,
                time_s: time_offset + clock.elapsed().as_secs_f64(),
                theta0: &theta0,
                optimizer: optimizer.as_ref(),
                schedule: schedule.as_ref(),
                ritz: &probes.ritz,
            };
            checkpoint::save(&dir, &mlp, loss, &state)?;
            meta.steps_done = step;
            meta.write(&dir)?;
        }
        if interrupted {
            break;
        }
    }
    progress.finish();
    if status == Status::Finished && step < total {
        status = Status::Interrupted;
        reason = if INTERRUPTED.load(Ordering::Relaxed) {
            format!("interrupted (Ctrl-C) after {step} of {total} steps; continue with --resume")
        } else {
            format!("stopped after {step} of {total} steps (--stop-after)")
        };
    }
    meta.steps_done = step;
    meta.status = status;
    meta.reason = Some(reason.clone());
    meta.end_time = Some(run_dir::now_rfc3339());
    meta.write(&dir)?;
    if status == Status::Diverged {
        tracing::warn!("diverged: {reason}");
    }
    Ok(Summary {
        dir,
        status,
        reason,
        steps_done: step,
        last_loss,
    })
}

/// Set by [`interrupt`] (Ctrl-C in the CLI): the loop finishes its step, checkpoints
/// and ends `interrupted`.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Asks a running [`train`] to stop after its current step (checkpoint, status
/// `interrupted`); safe to call from a signal handler.
pub fn interrupt() {
    INTERRUPTED.store(true, Ordering::Relaxed);
}
