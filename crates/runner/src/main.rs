//! The `eos` command line.

use std::path::PathBuf;

use anyhow::{bail, Context};
use candle_core::DType;
use clap::{Parser, Subcommand};
use eos_model::{load_case, pick_device, save_case};
use eos_runner::{bench, example, probe, report, repro, sweep, train};

#[derive(Parser)]
#[command(
    name = "eos",
    version,
    about = "Exact curvature of neural networks at the edge of stability"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Curvature probes on a model + batch saved in the interchange format
    /// (without FILE: the built-in example, a tanh MLP on generated data).
    Probe {
        file: Option<PathBuf>,
        /// Number of top Hessian eigenvalues.
        #[arg(long, default_value_t = 5)]
        k: usize,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
        /// Compute in this dtype (default: the file's).
        #[arg(long)]
        dtype: Option<String>,
        #[arg(long, default_value = "auto")]
        device: String,
        /// Seed of the random direction (when the file has none) and of Lanczos.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Rows per chunk (bounds memory on large batches).
        #[arg(long)]
        chunk: Option<usize>,
    },
    /// Time the core operations on the standard suites, or (--scaling) how their time
    /// and memory grow with the width and the number of samples.
    Bench {
        /// small | medium | deep | all (comma-separated list allowed)
        #[arg(long, default_value = "small")]
        suite: String,
        #[arg(long)]
        json: bool,
        #[arg(long, default_value = "f32")]
        dtype: String,
        #[arg(long, default_value = "auto")]
        device: String,
        /// Timed repetitions per operation, after one warm-up (median reported; default
        /// 7; with --scaling default 3, up to 15 for points faster than 0.1 s).
        #[arg(long)]
        reps: Option<usize>,
        /// The scaling study instead of the suites: time per gradient / HVP / operator
        /// product against its FLOP count and peak RSS, over widths and n.
        #[arg(long)]
        scaling: bool,
        /// With --scaling: width | n | all.
        #[arg(long, default_value = "all", requires = "scaling")]
        sweep: String,
        /// With --scaling: rows per chunk (default: the model's, 2048).
        #[arg(long, requires = "scaling")]
        chunk_size: Option<usize>,
        /// With --scaling: run every point in this process (by default each point runs
        /// in a fresh process, so that memory freed by earlier points but kept by the
        /// allocator does not count in later points' RSS).
        #[arg(long, requires = "scaling")]
        in_process: bool,
        /// With --scaling: run only point INDEX of the sweep and print its JSON (what
        /// each fresh process does).
        #[arg(long, hide = true, requires = "scaling")]
        point: Option<usize>,
    },
    /// Train the experiment of CONFIG.toml, recording the probes (see docs/config.md).
    Train {
        config: PathBuf,
        /// Override a config key, e.g. `--set optim.lr=0.05` (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Run directory (default `runs/<config-stem>-<timestamp>`).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Continue the run in --out from its latest checkpoint.
        #[arg(long)]
        resume: bool,
        #[arg(long, default_value = "auto")]
        device: String,
        /// Debugging: stop (with a checkpoint) once this many steps are done.
        #[arg(long, hide = true)]
        stop_after: Option<u64>,
    },
    /// Plot runs (loss, sharpness vs 2/η, Taylor coefficients, soft rank, update
    /// cosine) and sweeps (loss vs η, η* vs γ with fitted slopes) as PNG + SVG.
    Report {
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Plot folder (default DIR/plots; DIR's name is appended for several DIRs).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Split between the γ ≪ 1 and γ ≫ 1 slope fits.
        #[arg(long, default_value_t = 1.0)]
        split: f64,
        /// Grid key on the x axis of the η* plot (default: the one containing `gamma`).
        #[arg(long)]
        x_key: Option<String>,
        /// Use the parabolic refinement of η* instead of the grid argmin.
        #[arg(long)]
        refined: bool,
    },
    /// Run a grid of `eos train` cells (SWEEP.toml, see docs/sweep-and-report.md).
    Sweep {
        spec: PathBuf,
        /// Parallel worker processes.
        #[arg(long, default_value_t = 1)]
        workers: usize,
        /// Sweep directory (default `runs/<sweep-stem>`).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Run only job INDEX (one cell, or one η search): a Slurm array task.
        #[arg(long, value_name = "INDEX")]
        cell: Option<usize>,
        /// Write DIR/sweep.sbatch (a Slurm job array) instead of running.
        #[arg(long)]
        slurm: bool,
        /// Only gather results.csv / results.jsonl / best.csv from the cells there.
        #[arg(long)]
        gather: bool,
        /// --device for every cell.
        #[arg(long)]
        device: Option<String>,
    },
    /// Reproduce the seed papers' headline results: run, check (PASS/FAIL with the
    /// measured and expected figures) and plot (see docs/reproductions.md).
    Repro {
        /// cohen-eos, catapult, richness-sweep, conservative-sharpening,
        /// threshold-neurons, beyond-eos, or all.
        #[arg(required = true)]
        names: Vec<String>,
        /// The full settings (default: the reduced version that CI runs).
        #[arg(long)]
        full: bool,
        /// Output folder (default runs/repro or runs/repro-full).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Also copy each figure's PNG to DIR/<name>-<figure>.png (e.g. docs/figures).
        #[arg(long, value_name = "DIR")]
        figures: Option<PathBuf>,
        /// Run everything again instead of reusing finished runs.
        #[arg(long)]
        fresh: bool,
        /// The experiments/ folder with the configs (default: the workspace's).
        #[arg(long)]
        experiments: Option<PathBuf>,
    },
    /// Write the built-in example case to a safetensors file.
    Example {
        out: PathBuf,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long, default_value = "f64")]
        dtype: String,
    },
}

fn parse_dtype(s: &str) -> anyhow::Result<DType> {
    Ok(match s {
        "f32" => DType::F32,
        "f64" => DType::F64,
        other => bail!("--dtype: unknown dtype `{other}` (expected f32 or f64)"),
    })
}

fn main() {
    // Before any thread starts: decide the thread count once (eos_model::threads).
    eos_model::threads::init();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = run(Cli::parse()) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.cmd {
        Cmd::Probe {
            file,
            k,
            json,
            dtype,
            device,
            seed,
            chunk,
        } => {
            let device = pick_device(&device)?;
            let dtype = dtype.as_deref().map(parse_dtype).transpose()?;
            let (mut mlp, batch, loss, v) = match &file {
                Some(path) => {
                    let case = load_case(path, dtype, &device)?;
                    let batch = case.batch.with_context(|| {
                        format!(
                            "{}: no batch: tensors `x` and `y` are needed to probe",
                            path.display()
                        )
                    })?;
                    let loss = case.loss.with_context(|| {
                        format!("{}: metadata `loss` missing (mse, mse_mean_all, cross_entropy or logistic)", path.display())
                    })?;
                    (case.mlp, batch, loss, case.v)
                }
                None => {
                    let (m, b, l) =
                        example::example_case(seed, dtype.unwrap_or(DType::F64), &device)?;
                    (m, b, l, None)
                }
            };
            if let Some(c) = chunk {
                mlp.chunk_size = c;
            }
            let report = probe::probe(&mlp, &batch, loss, v.as_ref(), k, seed)?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                print!("{}", report.table());
            }
        }
        Cmd::Bench {
            suite,
            json,
            dtype,
            device,
            reps,
            scaling,
            sweep,
            chunk_size,
            in_process,
            point,
        } => {
            let device_arg = device.clone();
            let dtype_arg = dtype.clone();
            let device = pick_device(&device)?;
            let dtype = parse_dtype(&dtype)?;
            if scaling {
                if chunk_size == Some(0) {
                    bail!("--chunk-size must be at least 1");
                }
                let points = bench::scaling_points(&sweep)?;
                let mut opts = bench::ScalingOptions {
                    chunk_size,
                    ..Default::default()
                };
                if let Some(r) = reps {
                    opts.min_reps = r.max(1);
                    opts.max_reps = r.max(1);
                }
                if let Some(i) = point {
                    let p = points.get(i).with_context(|| {
                        format!("--point {i}: the sweep has {} points", points.len())
                    })?;
                    let r = bench::run_scaling_point(p, dtype, &device, &opts)?;
                    println!("{}", serde_json::to_string(&r)?);
                    return Ok(());
                }
                let print_json = |r: &bench::ScalingResult| -> anyhow::Result<()> {
                    if json {
                        println!("{}", serde_json::to_string(r)?);
                    }
                    Ok(())
                };
                let results = if in_process {
                    bench::run_scaling(&points, dtype, &device, &opts, print_json)?
                } else {
                    let mut args: Vec<String> = [
                        "bench",
                        "--scaling",
                        "--sweep",
                        &sweep,
                        "--dtype",
                        &dtype_arg,
                        "--device",
                        &device_arg,
                    ]
                    .map(String::from)
                    .to_vec();
                    if let Some(c) = chunk_size {
                        args.extend(["--chunk-size".into(), c.to_string()]);
                    }
                    if let Some(r) = reps {
                        args.extend(["--reps".into(), r.to_string()]);
                    }
                    let exe =
                        std::env::current_exe().context("cannot locate the eos executable")?;
                    bench::run_scaling_isolated(&exe, &args, &points, &opts, print_json)?
                };
                if !json {
                    print!("{}", bench::scaling_tables(&results));
                }
                return Ok(());
            }
            let reps = reps.unwrap_or(7);
            let names: Vec<&str> = if suite == "all" {
                vec!["small", "medium", "deep"]
            } else {
                suite.split(',').collect()
            };
            let suites = names
                .iter()
                .map(|n| bench::suite(n))
                .collect::<anyhow::Result<Vec<_>>>()?;
            for s in suites {
                let r = bench::run_suite(&s, dtype, &device, reps)?;
                if json {
                    println!("{}", serde_json::to_string(&r)?);
                } else {
                    println!(
                        "{:<7} sgd_step {:>9.2} ms  grad {:>9.2} ms  hvp {:>9.2} ms  power20 {:>7.3} s  \
                         lanczos5 {:>7.3} s ({} HVPs)  third {:>9.2} ms  matmul {:>6.1} GFLOP/s",
                        r.suite, r.sgd_step_ms, r.grad_ms, r.hvp_ms, r.power_iter_20_s,
                        r.lanczos_top5_s, r.lanczos_hvps, r.third_deriv_ms, r.matmul_gflops
                    );
                }
            }
        }
        Cmd::Train {
            config,
            set,
            out,
            resume,
            device,
            stop_after,
        } => {
            let args = train::TrainArgs {
                config,
                set,
                out,
                resume,
                device,
                stop_after,
            };
            train::run_cli(&args)?;
        }
        Cmd::Report {
            dirs,
            out,
            split,
            x_key,
            refined,
        } => {
            let opts = report::ReportOptions {
                out,
                split,
                x_key,
                refined,
            };
            report::run_cli(&dirs, &opts)?;
        }
        Cmd::Sweep {
            spec,
            workers,
            out,
            cell,
            slurm,
            gather,
            device,
        } => {
            let opts = sweep::SweepOptions {
                spec,
                out,
                workers,
                exe: std::env::current_exe().context("cannot locate the eos executable")?,
                cell,
                slurm,
                gather,
                device,
            };
            sweep::run_cli(&opts)?;
        }
        Cmd::Repro {
            names,
            full,
            out,
            figures,
            fresh,
            experiments,
        } => repro::run_cli(&repro::ReproArgs {
            names,
            full,
            out,
            figures,
            fresh,
            experiments,
        })?,
        Cmd::Example { out, seed, dtype } => {
            let (mlp, batch, loss) =
                example::example_case(seed, parse_dtype(&dtype)?, &candle_core::Device::Cpu)?;
            save_case(
                &out,
                &mlp,
                Some(loss),
                Some(&batch),
                None,
                &[],
                &[("generator".into(), "eos example".into())],
            )?;
            println!("wrote {}", out.display());
        }
    }
    Ok(())
}
