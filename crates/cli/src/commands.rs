//! One function per subcommand: each turns its parsed arguments into a library call
//! (eos-train, eos-sweep, eos-report, eos-repro, eos-benches) and prints the outcome.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{bail, Context};
use candle_core::DType;
use eos_model::{load_case, save_case};
use eos_train::{example, probe};

use crate::args::{Cmd, ExampleArgs, ProbeArgs, ReportArgs, SweepArgs, TrainArgs};
use crate::progress::{ProductProgress, Progress};

/// Runs one subcommand; returns the exit status.
pub fn run(cmd: Cmd) -> anyhow::Result<i32> {
    let r = match cmd {
        Cmd::Probe(a) => probe(a),
        Cmd::Bench(a) => crate::bench::bench(a),
        Cmd::Train(a) => return train(a),
        Cmd::Report(a) => report(a),
        Cmd::Sweep(a) => return sweep(a),
        Cmd::Repro(a) => eos_repro::run_cli(&eos_repro::ReproArgs {
            names: a.names,
            full: a.full,
            out: a.out,
            figures: a.figures,
            fresh: a.fresh,
            experiments: a.experiments,
        })
        .map_err(anyhow::Error::from),
        Cmd::Example(a) => example(a),
        Cmd::Export(a) => {
            let step = eos_train::interchange::export(&a.run_dir, a.step, &a.out)?;
            println!("wrote {} (step {step})", a.out.display());
            Ok(())
        }
    };
    r.map(|()| 0)
}

/// Stages of `eos probe` with at least this many Hessian-vector products print
/// progress to stderr (Lanczos with k > 125, the exact trace above 500 parameters).
const PROGRESS_MIN_PRODUCTS: usize = 500;
/// At most one progress line per this interval (and the first and last).
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// `eos probe`: every curvature measurement on one saved (or the built-in) case.
fn probe(a: ProbeArgs) -> anyhow::Result<()> {
    let bar = ProductProgress::new(PROGRESS_MIN_PRODUCTS, PROGRESS_EVERY);
    let progress = |stage: &'static str, done: usize, total: usize| bar.report(stage, done, total);
    let device = a.device.device()?;
    let dtype = a.dtype.map(|d| d.dtype());
    let opts = probe::ProbeOptions {
        trace: a.trace.method(),
        trace_probes: a.trace_probes,
        ..probe::ProbeOptions::new(a.k, a.seed)
    };
    let need = |path: &Path, batch: Option<eos_model::Batch>, loss: Option<eos_model::Loss>| {
        let batch = batch.with_context(|| {
            format!(
                "{}: no batch: tensors `x` and `y` are needed to probe",
                path.display()
            )
        })?;
        let loss = loss.with_context(|| {
            format!(
                "{}: metadata `loss` missing (mse, mse_mean_all, cross_entropy or logistic)",
                path.display()
            )
        })?;
        anyhow::Ok((batch, loss))
    };
    let report = match &a.file {
        // eos-net/1 files probe the layer network; MLP files keep the MLP's fast paths.
        Some(path) if eos_model::net::is_net_file(path)? => {
            let case = eos_model::net::load_net(path, dtype, &device)?;
            let (batch, loss) = need(path, case.batch, case.loss)?;
            let mut net = case.net;
            if let Some(c) = a.chunk {
                net.chunk_size = c;
            }
            check_k(a.k, net.params.numel())?;
            trace_hint(&opts, net.params.numel());
            probe::probe_with(&net, &batch, loss, case.v.as_ref(), &opts, &progress)?
        }
        Some(path) => {
            let case = load_case(path, dtype, &device)?;
            let (batch, loss) = need(path, case.batch, case.loss)?;
            check_case(path, &case.mlp, &batch, &case.extra)?;
            let mut mlp = case.mlp;
            if let Some(c) = a.chunk {
                mlp.chunk_size = c;
            }
            check_k(a.k, mlp.params.numel())?;
            trace_hint(&opts, mlp.params.numel());
            probe::probe_with(&mlp, &batch, loss, case.v.as_ref(), &opts, &progress)?
        }
        None => {
            let (mut mlp, batch, loss) =
                example::example_case(a.seed, dtype.unwrap_or(DType::F64), &device)?;
            if let Some(c) = a.chunk {
                mlp.chunk_size = c;
            }
            check_k(a.k, mlp.params.numel())?;
            trace_hint(&opts, mlp.params.numel());
            probe::probe_with(&mlp, &batch, loss, None, &opts, &progress)?
        }
    };
    if a.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(())
}

/// Models above this many parameters get a stderr hint when `--trace auto` picks the
/// exact trace (P Hessian-vector products).
const TRACE_HINT_MIN_PARAMS: usize = 2_000;

/// The stderr hint that a cheaper trace exists, when `--trace auto` picks the exact
/// trace on more than [`TRACE_HINT_MIN_PARAMS`] parameters.
fn trace_hint(opts: &probe::ProbeOptions, p: usize) {
    let exact = opts.trace.resolve(p) == probe::TraceMethod::Exact;
    if opts.trace == probe::TraceMethod::Auto && exact && p > TRACE_HINT_MIN_PARAMS {
        eprintln!("eos probe: exact trace: {p} HVPs; --trace hutchinson or none is faster");
    }
}

/// Refuses non-finite weights, `x` or `y` (naming the file and tensor) and warns of
/// tensors `eos probe` does not read.
fn check_case(
    path: &Path,
    mlp: &eos_model::Mlp,
    batch: &eos_model::Batch,
    extra: &std::collections::HashMap<String, candle_core::Tensor>,
) -> anyhow::Result<()> {
    let mut named = vec![("x".to_string(), &batch.x), ("y".to_string(), &batch.y)];
    for (i, l) in mlp.params.layers.iter().enumerate() {
        named.push((format!("layers.{i}.weight"), &l.weight));
        if let Some(b) = &l.bias {
            named.push((format!("layers.{i}.bias"), b));
        }
    }
    for (name, t) in named {
        let v = t.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?;
        if let Some(i) = v.iter().position(|x| !x.is_finite()) {
            bail!(
                "{}: tensor `{name}`: entry {i} is {} (weights and data must be finite)",
                path.display(),
                v[i]
            );
        }
    }
    let known = ["theta0.", "optim.", "probe.", "v.", "offset"];
    let mut unknown: Vec<&String> = extra
        .keys()
        .filter(|k| !known.iter().any(|p| k.starts_with(p)))
        .collect();
    unknown.sort();
    if !unknown.is_empty() {
        eprintln!(
            "warning: {}: tensors not used by eos probe (ignored): {}",
            path.display(),
            unknown
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}

/// `eos train`: installs the Ctrl-C handler, trains, prints how the run ended, then
/// plots it (`eos report DIR`).
fn train(a: TrainArgs) -> anyhow::Result<i32> {
    let mut set = a.set;
    if let Some(p) = &a.init_from {
        // A JSON string literal is a TOML basic string.
        let path = serde_json::to_string(&p.display().to_string())?;
        set.push(format!("model.init_from={path}"));
    }
    let args = eos_train::TrainArgs {
        config: a.config,
        set,
        out: a.out,
        resume: a.resume,
        device: a.device.name().to_string(),
        stop_after: a.stop_after,
    };
    // Ctrl-C, SIGTERM and SIGHUP (ctrlc's `termination` feature) stop the run after
    // its current step; the atomic writes keep the run directory consistent.
    if let Err(e) = ctrlc::set_handler(|| {
        SIGNALLED.store(true, Ordering::SeqCst);
        eos_train::interrupt();
    }) {
        tracing::warn!("Ctrl-C handler not installed: {e}");
    }
    let mut bar = None;
    let s = eos_train::train_with(&args, |t| {
        let b = bar.get_or_insert_with(|| Progress::new(t.total, t.step));
        b.update(t.step, t.last_loss, t.last_sharpness, t.last_two_over_lr);
    });
    if let Some(b) = &bar {
        b.finish();
    }
    let s = s?;
    let metrics_path = Path::new(&s.dir).join("metrics.jsonl");
    // A resumed run with no step left to do: the last loss is the one on record.
    let last_loss = match s.last_loss.is_finite() {
        true => s.last_loss,
        false => eos_train::metrics::read::Metrics::read(&metrics_path)
            .ok()
            .and_then(|m| m.losses().last().copied())
            .unwrap_or(f64::NAN),
    };
    println!(
        "{}: {} ({}); metrics in {}",
        s.status,
        s.reason,
        format_args!("last loss {last_loss:.6e}"),
        Path::new(&s.dir).join("metrics.jsonl").display()
    );
    // A picture beats numbers: every run ends with its plots (`eos report DIR`).
    let dir = PathBuf::from(&s.dir);
    match eos_report::report(std::slice::from_ref(&dir), &Default::default()) {
        Ok(out) if !out.files.is_empty() => {
            println!("plots in {}", dir.join("plots").display())
        }
        Ok(_) => {}
        Err(e) => eprintln!("warning: could not plot {}: {e:#}", dir.display()),
    }
    Ok(exit_code(s.status, SIGNALLED.load(Ordering::SeqCst)))
}

/// Set by the signal handler of `eos train` and `eos sweep`.
static SIGNALLED: AtomicBool = AtomicBool::new(false);

/// The exit status of `eos train` (docs/config.md): 0 finished (or stopped by
/// `--stop-after`), 2 diverged, 130 interrupted by a signal.
pub fn exit_code(status: eos_train::Status, signalled: bool) -> i32 {
    match status {
        eos_train::Status::Diverged => 2,
        eos_train::Status::Interrupted if signalled => 130,
        _ => 0,
    }
}

/// `eos report`: plots the given run and sweep directories.
fn report(a: ReportArgs) -> anyhow::Result<()> {
    let opts = eos_report::ReportOptions {
        out: a.out,
        split: a.split,
        x_key: a.x_key,
        refined: a.refined,
    };
    let out = eos_report::report(&a.dirs, &opts)?;
    for l in &out.lines {
        println!("{l}");
    }
    let folders: std::collections::BTreeSet<_> =
        out.files.iter().filter_map(|f| f.parent()).collect();
    for f in folders {
        println!("wrote plots to {}", f.display());
    }
    Ok(())
}

/// The plots of a sweep cell trained in-process, as `eos train` draws them.
fn plot_cell(dir: &Path) {
    if let Err(e) = eos_report::report(&[dir.to_path_buf()], &Default::default()) {
        eprintln!("warning: could not plot {}: {e:#}", dir.display());
    }
}

/// `eos sweep`: runs (or gathers, or writes the Slurm script of) a grid of cells.
fn sweep(a: SweepArgs) -> anyhow::Result<i32> {
    // Ctrl-C, SIGTERM, SIGHUP: no new cell; the running children get SIGINT, end
    // `interrupted`, and the sweep gathers its tables and exits 130.
    if let Err(e) = ctrlc::set_handler(eos_sweep::interrupt) {
        tracing::warn!("signal handler not installed: {e}");
    }
    let opts = eos_sweep::SweepOptions {
        spec: a.spec,
        out: a.out,
        workers: a.workers,
        exe: std::env::current_exe().context("cannot locate the eos executable")?,
        cell: a.cell,
        slurm: a.slurm,
        gather: a.gather,
        device: a.device.map(|d| d.name().to_string()),
        on_done: Some(plot_cell),
    };
    let s = eos_sweep::sweep(&opts)?;
    if let Some(script) = &s.sbatch {
        println!(
            "wrote {}; submit it with: sbatch {}",
            script.display(),
            script.display()
        );
        return Ok(0);
    }
    let count = |st: eos_train::Status| s.rows.iter().filter(|r| r.status == st).count();
    let (finished, diverged, failed) = (
        count(eos_train::Status::Finished),
        count(eos_train::Status::Diverged),
        count(eos_train::Status::Failed),
    );
    println!(
        "{} cells: {finished} finished, {diverged} diverged, {failed} failed, {} other; tables \
         in {} (results.csv, results.jsonl, best.csv)",
        s.rows.len(),
        s.rows.len() - finished - diverged - failed,
        s.out.display()
    );
    if failed > 0 && !opts.gather {
        bail!(
            "{failed} cell(s) failed: see the `error` column of {}",
            s.out.join("results.csv").display()
        );
    }
    if eos_sweep::interrupted() {
        eprintln!(
            "interrupted: the running cells checkpointed; continue with the same `eos sweep` command"
        );
        return Ok(130);
    }
    Ok(0)
}

/// `--k`: Lanczos needs 1 ≤ k < P (P = the model's parameter count); never clamped.
fn check_k(k: usize, n: usize) -> anyhow::Result<()> {
    if k == 0 || k >= n {
        bail!(
            "--k {k}: must be between 1 and {} (the model has {n} parameters; Lanczos needs \
             k below that)",
            n.saturating_sub(1).max(1)
        );
    }
    Ok(())
}

/// `eos example`: writes the built-in example case to a safetensors file.
fn example(a: ExampleArgs) -> anyhow::Result<()> {
    if a.out.exists() && !a.force {
        bail!("{}: exists; pass --force to overwrite it", a.out.display());
    }
    if let Some(kind) = a.net {
        let kind = match kind {
            crate::args::NetKind::Cnn => example::ExampleNet::Cnn,
            crate::args::NetKind::Transformer => example::ExampleNet::Transformer,
        };
        let (net, batch, loss) =
            example::example_net(kind, a.seed, a.dtype.dtype(), &candle_core::Device::Cpu)?;
        eos_model::net::save_net(&a.out, &net, loss, &batch, None)?;
        println!("wrote {}", a.out.display());
        return Ok(());
    }
    let (mlp, batch, loss) =
        example::example_case(a.seed, a.dtype.dtype(), &candle_core::Device::Cpu)?;
    save_case(
        &a.out,
        &mlp,
        Some(loss),
        Some(&batch),
        None,
        &[],
        &[("generator".into(), "eos example".into())],
    )?;
    println!("wrote {}", a.out.display());
    Ok(())
}
