//! The errors of eos-repro: one enum whose messages name the file, the settings key or
//! the reproduction they are about (`experiments/cohen-eos/reduced.toml: key `stepz`:
//! unknown field …`, `runs/repro/x/ckpt: cannot list: …`), wrapping the errors of the
//! libraries a reproduction drives (eos-train, eos-sweep, eos-report and the numerical
//! crates).
//!
//! As in eos-train, the `Display` of every variant already contains the message of the
//! error it wraps, and no variant exposes a `source()` chain: printing an error once,
//! with `{}` or `{:#}`, shows the whole story once.

use std::path::PathBuf;

/// An error of a reproduction.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A request that cannot be carried out (an unknown reproduction, no name).
    #[error("eos repro: {0}")]
    Request(String),
    /// A settings file (`experiments/<name>/{reduced,full}.toml`) whose value at the
    /// dotted `key` is not what the reproduction expects (see also [`Error::Train`]:
    /// the file's syntax and schema errors are eos-train's config errors).
    #[error("{}: key `{key}`: {problem}", file.display())]
    Settings {
        file: PathBuf,
        key: String,
        problem: String,
    },
    /// A file or folder that cannot be read, written, listed or removed.
    #[error("{}: cannot {action}: {error}", path.display())]
    Io {
        path: PathBuf,
        action: String,
        error: std::io::Error,
    },
    /// A run or sweep directory that does not hold what the reproduction reads (no
    /// checkpoint, a missing tensor, failed cells).
    #[error("{}: {problem}", path.display())]
    Run { path: PathBuf, problem: String },
    /// The `eos` executable (which runs sweep cells) cannot be located.
    #[error("cannot locate the eos executable: {0}")]
    Exe(std::io::Error),
    /// Reproductions that ran and failed a check (or could not run).
    #[error("reproduction(s) failed: {}", .0.join(", "))]
    Failed(Vec<String>),
    /// Training, configs (also the settings files' syntax and schema), run directories
    /// (boxed, as the next two: they are large).
    #[error(transparent)]
    Train(Box<eos_train::Error>),
    /// Sweeps and their tables.
    #[error(transparent)]
    Sweep(Box<eos_sweep::Error>),
    /// Figures.
    #[error(transparent)]
    Report(Box<eos_report::Error>),
    /// Models, checkpoints read as probe cases (the Taylor checks).
    #[error(transparent)]
    Model(#[from] eos_model::Error),
    /// Minibatch samplers (the quadratic model).
    #[error(transparent)]
    Data(#[from] eos_data::DataError),
    /// Curvature (the quadratic model's K).
    #[error(transparent)]
    Hessian(#[from] eos_hessian::Error),
    /// Tensors read from a checkpoint.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// `summary.json`.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// Result alias of eos-repro.
pub type Result<T> = std::result::Result<T, Error>;

impl From<eos_train::Error> for Error {
    fn from(e: eos_train::Error) -> Self {
        Error::Train(Box::new(e))
    }
}

impl From<eos_sweep::Error> for Error {
    fn from(e: eos_sweep::Error) -> Self {
        Error::Sweep(Box::new(e))
    }
}

impl From<eos_report::Error> for Error {
    fn from(e: eos_report::Error) -> Self {
        Error::Report(Box::new(e))
    }
}

impl Error {
    /// An [`Error::Io`] about `path`.
    pub fn io(path: impl Into<PathBuf>, action: impl Into<String>, error: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            action: action.into(),
            error,
        }
    }

    /// An [`Error::Run`] about `path`.
    pub fn run(path: impl Into<PathBuf>, problem: impl Into<String>) -> Self {
        Error::Run {
            path: path.into(),
            problem: problem.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_file_and_key_once() {
        let e = Error::Settings {
            file: "experiments/x/reduced.toml".into(),
            key: "batches".into(),
            problem: "the first batch size must be 8".into(),
        };
        assert_eq!(
            e.to_string(),
            "experiments/x/reduced.toml: key `batches`: the first batch size must be 8"
        );
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let e = Error::io("runs/x/ckpt", "list", io);
        assert_eq!(format!("{e:#}"), "runs/x/ckpt: cannot list: gone");
        let e = Error::from(eos_train::Error::Request("no".into()));
        assert_eq!(format!("{e:#}"), "no");
        assert!(std::error::Error::source(&e).is_none());
        assert!(std::mem::size_of::<Error>() <= 128);
    }
}
