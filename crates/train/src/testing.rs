//! Test fixtures shared by the integration tests of eos-train and eos-cli (feature
//! `testing`, enabled through their dev-dependencies): the tiny case, a scratch
//! directory holding the [`TINY`] config (a small SGD run with every probe on), the
//! [`TrainArgs`] of a CPU run, and the metrics lines of a run without `time_s` (the
//! one key that differs between bit-identical runs); also used by eos-report's tests:
//! a scratch directory under a test crate's `CARGO_TARGET_TMPDIR` ([`scratch`]) and the
//! bytes of a file that must not be empty ([`nonempty`]).

use std::path::{Path, PathBuf};

use crate::{train, Summary, TrainArgs};

/// A small SGD run with every probe on: minibatches, momentum, warm-started Lanczos.
pub const TINY: &str = r#"
loss = "mse"
[model]
depth = 3
base_width = 8
activation = "tanh"
[data]
kind = "teacher"
n = 48
test_n = 16
input_dim = 4
hidden = [6]
output_dim = 3
classes = true
[optim]
kind = "momentum"
momentum = 0.9
lr = 0.1
[train]
steps = 12
batch_size = 16
checkpoint_every = 4
[probes]
sharpness = { every = 2, k = 2, subset = 32 }
effective_sharpness = { every = 2, k = 2, subset = 32 }
taylor = { every = 1 }
batch_sharpness = { every = 3, batches = 2 }
ntk_trace = { every = 3 }
hessian_trace = { every = 4, samples = 4 }
soft_rank = { every = 3 }
preact_rms = { every = 3, subset = 32 }
update_cosine = { every = 1 }
norms = { every = 2 }
eval = { every = 3 }
"#;

/// A fresh scratch directory of one test and its config file `exp.toml`.
#[derive(Debug, Clone)]
pub struct TinyCase {
    pub dir: PathBuf,
    pub config: PathBuf,
}

impl TinyCase {
    /// `$TMPDIR/eos-{name}-{pid}`, emptied, with [`TINY`] as `exp.toml`.
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("eos-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let config = dir.join("exp.toml");
        TinyCase { dir, config }.with_config(TINY)
    }

    /// The case with `text` as its config instead.
    pub fn with_config(self, text: &str) -> Self {
        self.write_config(text);
        self
    }

    /// Writes `text` as `exp.toml`; its path.
    pub fn write_config(&self, text: &str) -> PathBuf {
        std::fs::write(&self.config, text).expect("write config");
        self.config.clone()
    }

    /// The arguments of a CPU run of the case's config into `out`.
    pub fn args(&self, out: &Path, set: &[&str]) -> TrainArgs {
        args(&self.config, out, set)
    }

    /// Trains the case's config into `out` (panics when training fails).
    pub fn run(&self, out: &Path, set: &[&str]) -> Summary {
        run(&self.config, out, set)
    }
}

/// The arguments of a CPU run of `config` into `out` with `--set` overrides.
pub fn args(config: &Path, out: &Path, set: &[&str]) -> TrainArgs {
    TrainArgs {
        config: config.to_path_buf(),
        set: set.iter().map(|s| s.to_string()).collect(),
        out: Some(out.to_path_buf()),
        device: "cpu".into(),
        ..Default::default()
    }
}

/// Trains `config` into `out` (panics when training fails).
pub fn run(config: &Path, out: &Path, set: &[&str]) -> Summary {
    train(&args(config, out, set)).expect("training runs")
}

/// `tmpdir/eos-tests/name`, emptied and created: the scratch directory `name` of an
/// integration test; `tmpdir` is its crate's `env!("CARGO_TARGET_TMPDIR")`.
pub fn scratch(tmpdir: &str, name: &str) -> PathBuf {
    let d = Path::new(tmpdir).join("eos-tests").join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("scratch dir");
    d
}

/// The bytes of the file `p` (panics when it is missing or empty).
pub fn nonempty(p: &Path) -> Vec<u8> {
    let b = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    assert!(!b.is_empty(), "{} is empty", p.display());
    b
}

/// The metrics lines of the run in `dir`, without `time_s`.
pub fn metrics(dir: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(dir.join("metrics.jsonl")).expect("metrics.jsonl");
    text.lines()
        .map(|l| {
            let mut v: serde_json::Value =
                serde_json::from_str(l).expect("one JSON object per line");
            v.as_object_mut().expect("object").remove("time_s");
            v
        })
        .collect()
}
