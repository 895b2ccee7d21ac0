//! The command-line arguments of `eos` (clap): one `Args` struct per subcommand.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// `--dtype`: the floating-point type of the computation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Dtype {
    F32,
    F64,
}

impl Dtype {
    /// The candle dtype.
    pub fn dtype(self) -> candle_core::DType {
        match self {
            Dtype::F32 => candle_core::DType::F32,
            Dtype::F64 => candle_core::DType::F64,
        }
    }

    /// The flag value (`f32`, `f64`).
    pub fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "f32",
            Dtype::F64 => "f64",
        }
    }
}

/// `--device`: where the computation runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DeviceArg {
    /// CUDA device 0 when eos was built with `--features cuda` and one is present,
    /// else the CPU.
    Auto,
    Cpu,
    /// CUDA device 0 (needs `--features cuda`).
    #[value(alias = "gpu")]
    Cuda,
}

impl DeviceArg {
    /// The flag value (`auto`, `cpu`, `cuda`), as eos-model's `pick_device` reads it.
    pub fn name(self) -> &'static str {
        match self {
            DeviceArg::Auto => "auto",
            DeviceArg::Cpu => "cpu",
            DeviceArg::Cuda => "cuda",
        }
    }

    /// The device (an error when CUDA is asked for and not available).
    pub fn device(self) -> anyhow::Result<candle_core::Device> {
        Ok(eos_model::pick_device(self.name())?)
    }
}

/// `eos probe --trace`: how the Hessian trace is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TraceArg {
    /// Exact up to 20 000 parameters, else Hutchinson.
    Auto,
    /// Σᵢ eᵢᵀHeᵢ: one Hessian-vector product per parameter.
    Exact,
    /// Hutchinson's estimate from --trace-probes seeded Rademacher probes, with its
    /// standard error.
    Hutchinson,
    /// No trace (`hessian_trace` null).
    None,
}

impl TraceArg {
    /// eos-train's [`eos_train::probe::TraceMethod`].
    pub fn method(self) -> eos_train::probe::TraceMethod {
        use eos_train::probe::TraceMethod;
        match self {
            TraceArg::Auto => TraceMethod::Auto,
            TraceArg::Exact => TraceMethod::Exact,
            TraceArg::Hutchinson => TraceMethod::Hutchinson,
            TraceArg::None => TraceMethod::None,
        }
    }
}

/// `eos bench --suite`: the benchmark shapes (eos-benches' `suites` and `net_suites`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SuiteArg {
    /// MLP 3072-512-512-10, n = 1000.
    Small,
    /// MLP 3072-1024-1024-1024-10, n = 5000.
    Medium,
    /// MLP 100-64×8-1, n = 256.
    Deep,
    /// CNN on 1×28×28 images, n = 256.
    Cnn,
    /// 2-layer causal transformer on the sorting task, 128 sequences of 16 tokens.
    Transformer,
    /// Every suite above.
    All,
}

impl SuiteArg {
    /// The suite names of a `--suite` list, `all` expanded, in order, without repeats.
    pub fn names(list: &[SuiteArg]) -> Vec<&'static str> {
        let every = ["small", "medium", "deep", "cnn", "transformer"];
        let mut out: Vec<&'static str> = Vec::new();
        for s in list {
            let add: &[&'static str] = match s {
                SuiteArg::All => &every,
                SuiteArg::Small => &every[0..1],
                SuiteArg::Medium => &every[1..2],
                SuiteArg::Deep => &every[2..3],
                SuiteArg::Cnn => &every[3..4],
                SuiteArg::Transformer => &every[4..5],
            };
            for n in add {
                if !out.contains(n) {
                    out.push(n);
                }
            }
        }
        out
    }
}

#[derive(Parser)]
#[command(
    name = "eos",
    version,
    about = "Exact curvature of neural networks at the edge of stability"
)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
}

/// The subcommands.
#[derive(Subcommand)]
pub enum Cmd {
    /// Curvature probes on a model + batch saved in the interchange format
    /// (without FILE: the built-in example, a tanh MLP on generated data).
    Probe(ProbeArgs),
    /// Time the core operations on the standard suites, or (--scaling) how their time
    /// and memory grow with the width and the number of samples.
    Bench(BenchArgs),
    /// Train the experiment of CONFIG.toml, recording the probes (see docs/config.md).
    Train(TrainArgs),
    /// Plot runs (loss, sharpness vs 2/η, Taylor coefficients, soft rank, update
    /// cosine) and sweeps (loss vs η, η* vs γ with fitted slopes) as PNG + SVG.
    Report(ReportArgs),
    /// Run a grid of `eos train` cells (SWEEP.toml, see docs/sweep-and-report.md).
    Sweep(SweepArgs),
    /// Reproduce the seed papers' headline results: run, check (PASS/FAIL with the
    /// measured and expected figures) and plot (see docs/reproductions.md).
    Repro(ReproArgs),
    /// Write the built-in example case to a safetensors file.
    Example(ExampleArgs),
    /// Write a run's checkpoint (default: the latest) as an eos-net/1 file with the
    /// training batch, for `eos probe OUT`.
    Export(ExportArgs),
}

// `eos export`: the variant of [`Cmd`] documents it.
#[derive(Args)]
pub struct ExportArgs {
    /// The run directory.
    pub run_dir: PathBuf,
    /// The eos-net/1 file to write.
    pub out: PathBuf,
    /// The checkpoint's step (default: the latest).
    #[arg(long)]
    pub step: Option<u64>,
}

// `eos probe`: the variant of [`Cmd`] documents it.
#[derive(Args)]
pub struct ProbeArgs {
    pub file: Option<PathBuf>,
    /// Number of top Hessian eigenvalues.
    #[arg(long, default_value_t = 5)]
    pub k: usize,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Compute in this dtype (default: the file's).
    #[arg(long, value_enum)]
    pub dtype: Option<Dtype>,
    #[arg(long, value_enum, default_value = "auto")]
    pub device: DeviceArg,
    /// Seed of the random direction (when the file has none), of Lanczos and of the
    /// Hutchinson probes.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Rows per chunk (bounds memory on large batches; at least 1).
    #[arg(long, value_parser = positive)]
    pub chunk: Option<usize>,
    /// The Hessian trace: `auto` is exact up to 20 000 parameters (P Hessian-vector
    /// products), else Hutchinson; `none` skips it.
    #[arg(long, value_enum, default_value = "auto")]
    pub trace: TraceArg,
    /// Rademacher probes (Hessian-vector products) of a Hutchinson trace (at least 2).
    #[arg(long, default_value_t = eos_train::probe::HUTCHINSON_PROBES, value_parser = at_least_two)]
    pub trace_probes: usize,
}

/// A count that must be at least 1 (`--chunk`, `--workers`).
fn positive(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("not a positive integer: {e}")),
    }
}

/// A count of at least 2 (`--trace-probes`: a standard error needs two samples).
fn at_least_two(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n < 2 => Err("must be at least 2 (a standard error needs two probes)".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("not an integer ≥ 2: {e}")),
    }
}

// `eos bench`: the variant of [`Cmd`] documents it.
#[derive(Args)]
pub struct BenchArgs {
    /// The suites to time (a comma-separated list).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "small")]
    pub suite: Vec<SuiteArg>,
    #[arg(long)]
    pub json: bool,
    #[arg(long, value_enum, default_value = "f32")]
    pub dtype: Dtype,
    #[arg(long, value_enum, default_value = "auto")]
    pub device: DeviceArg,
    /// Timed repetitions per operation, after one warm-up (median reported; default
    /// 7; with --scaling default 3, up to 15 for points faster than 0.1 s; with --run
    /// default 1, each a run with probes and one without).
    #[arg(long)]
    pub reps: Option<usize>,
    /// The scaling study instead of the suites: time per gradient / HVP / operator
    /// product against its FLOP count and peak RSS, over widths and n.
    #[arg(long)]
    pub scaling: bool,
    /// With --scaling: width | n | all.
    #[arg(long, default_value = "all", requires = "scaling")]
    pub sweep: String,
    /// With --scaling: rows per chunk (default: the model's, 2048).
    #[arg(long, requires = "scaling")]
    pub chunk_size: Option<usize>,
    /// With --scaling: run every point in this process (by default each point runs
    /// in a fresh process, so that memory freed by earlier points but kept by the
    /// allocator does not count in later points' RSS).
    #[arg(long, requires = "scaling")]
    pub in_process: bool,
    /// With --scaling: run only point INDEX of the sweep and print its JSON (what
    /// each fresh process does).
    #[arg(long, hide = true, requires = "scaling")]
    pub point: Option<usize>,
    /// Time a whole training run of CONFIG instead of the suites: steps/s with its
    /// probes and with every probe off, and the share of time in probes.
    #[arg(long, value_name = "CONFIG", conflicts_with = "scaling")]
    pub run: Option<PathBuf>,
    /// With --run: override a config key, e.g. `--set train.steps=500` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE", requires = "run")]
    pub set: Vec<String>,
    /// With --run: keep only these probes on, e.g. `sharpness,taylor` (the protocol of
    /// benches/jax/quickstart.py).
    #[arg(long, value_delimiter = ',', requires = "run")]
    pub only: Option<Vec<String>>,
}

// `eos train`: the variant of [`Cmd`] documents it.
#[derive(Args)]
pub struct TrainArgs {
    pub config: PathBuf,
    /// Override a config key, e.g. `--set optim.lr=0.05` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Run directory (default `runs/<config-stem>-<timestamp>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue the run in --out from its latest checkpoint.
    #[arg(long)]
    pub resume: bool,
    #[arg(long, value_enum, default_value = "auto")]
    pub device: DeviceArg,
    /// Debugging: stop (with a checkpoint) once this many steps are done.
    #[arg(long, hide = true)]
    pub stop_after: Option<u64>,
    /// Start from the weights of this safetensors file (MLP format or eos-net/1);
    /// the same as `--set model.init_from=FILE`.
    #[arg(long, value_name = "FILE.safetensors")]
    pub init_from: Option<PathBuf>,
}

// `eos report`: the variant of [`Cmd`] documents it.
#[derive(Args)]
pub struct ReportArgs {
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Plot folder (default DIR/plots; DIR's name is appended for several DIRs).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Split between the γ ≪ 1 and γ ≫ 1 slope fits.
    #[arg(long, default_value_t = 1.0)]
    pub split: f64,
    /// Grid key on the x axis of the η* plot (default: the one containing `gamma`).
    #[arg(long)]
    pub x_key: Option<String>,
    /// Use the parabolic refinement of η* instead of the grid argmin.
    #[arg(long)]
    pub refined: bool,
}

// `eos sweep`: the variant of [`Cmd`] documents it.
#[derive(Args)]
pub struct SweepArgs {
    pub spec: PathBuf,
    /// Parallel worker processes (at least 1).
    #[arg(long, default_value_t = 1, value_parser = positive)]
    pub workers: usize,
    /// Sweep directory (default `runs/<sweep-stem>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Run only job INDEX (one cell, or one η search): a Slurm array task.
    #[arg(long, value_name = "INDEX")]
    pub cell: Option<usize>,
    /// Write DIR/sweep.sbatch (a Slurm job array) instead of running.
    #[arg(long)]
    pub slurm: bool,
    /// Only gather results.csv / results.jsonl / best.csv from the cells there.
    #[arg(long)]
    pub gather: bool,
    /// --device for every cell.
    #[arg(long, value_enum)]
    pub device: Option<DeviceArg>,
}

// `eos repro`: the variant of [`Cmd`] documents it.
#[derive(Args)]
pub struct ReproArgs {
    /// cohen-eos, catapult, richness-sweep, conservative-sharpening,
    /// threshold-neurons, beyond-eos, nup-eoc, or all.
    #[arg(required = true)]
    pub names: Vec<String>,
    /// The full settings (default: the reduced version that CI runs).
    #[arg(long)]
    pub full: bool,
    /// Output folder (default runs/repro or runs/repro-full).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also copy each figure's PNG to DIR/<name>-<figure>.png (e.g. docs/figures).
    #[arg(long, value_name = "DIR")]
    pub figures: Option<PathBuf>,
    /// Run everything again instead of reusing finished runs.
    #[arg(long)]
    pub fresh: bool,
    /// The experiments/ folder with the configs (default: the workspace's).
    #[arg(long)]
    pub experiments: Option<PathBuf>,
}

/// `eos example --net`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum NetKind {
    Cnn,
    Transformer,
}

// `eos example`: the variant of [`Cmd`] documents it.
#[derive(Args)]
pub struct ExampleArgs {
    pub out: PathBuf,
    /// Write an eos-net/1 example network instead of the MLP: a small CNN on
    /// generated images, or a 2-layer causal transformer on the sorting task.
    #[arg(long, value_enum)]
    pub net: Option<NetKind>,
    /// Overwrite OUT if it exists.
    #[arg(long)]
    pub force: bool,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long, value_enum, default_value = "f64")]
    pub dtype: Dtype,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse_err(args: &[&str]) -> String {
        match Cli::try_parse_from(args) {
            Ok(_) => panic!("{args:?} parsed"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn suites_and_devices_are_checked_by_clap() {
        let Ok(Cli { cmd: Cmd::Bench(b) }) =
            Cli::try_parse_from(["eos", "bench", "--suite", "deep,cnn,all", "--device", "gpu"])
        else {
            panic!("bench did not parse");
        };
        assert_eq!(
            SuiteArg::names(&b.suite),
            ["deep", "cnn", "small", "medium", "transformer"]
        );
        assert_eq!(b.device, DeviceArg::Cuda);
        let e = parse_err(&["eos", "bench", "--suite", "small,huge"]);
        assert!(e.contains("invalid value 'huge' for '--suite"), "{e}");
        assert!(
            e.contains("[possible values: small, medium, deep, cnn, transformer, all]"),
            "{e}"
        );
        let e = parse_err(&["eos", "train", "x.toml", "--device", "tpu"]);
        assert!(e.contains("[possible values: auto, cpu, cuda]"), "{e}");
        let e = parse_err(&["eos", "sweep", "s.toml", "--device", "tpu"]);
        assert!(e.contains("invalid value 'tpu' for '--device"), "{e}");
    }

    #[test]
    fn help_lists_the_valid_values() {
        let mut cmd = Cli::command();
        let bench = cmd.find_subcommand_mut("bench").expect("bench subcommand");
        let help = bench.render_help().to_string();
        assert!(
            help.contains(
                "[default: small] [possible values: small, medium, deep, cnn, transformer, all]"
            ),
            "{help}"
        );
        assert!(
            help.contains("[default: auto] [possible values: auto, cpu, cuda]"),
            "{help}"
        );
    }
}
