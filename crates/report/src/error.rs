//! The errors of eos-report: each names the directory or file it is about.

use std::path::PathBuf;

/// An error of `eos report`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No directory to plot.
    #[error("eos report: name at least one run or sweep directory")]
    NoDirectory,
    /// A directory that is neither a run nor a sweep.
    #[error(
        "{}: neither a run directory (no metrics.jsonl) nor a sweep directory (no results.jsonl)",
        .0.display()
    )]
    NotARunOrSweep(PathBuf),
    /// A file that cannot be read, parsed, created or drawn.
    #[error("{}: {problem}", path.display())]
    File { path: PathBuf, problem: String },
    /// Reading a run directory (`metrics.jsonl`, `meta.json`).
    #[error(transparent)]
    Train(#[from] eos_train::Error),
    /// Reading a sweep's tables.
    #[error(transparent)]
    Sweep(#[from] eos_sweep::Error),
}

/// Result alias of eos-report.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// A [`Error::File`] for `path`.
    pub fn file(path: impl Into<PathBuf>, problem: impl std::fmt::Display) -> Self {
        Error::File {
            path: path.into(),
            problem: problem.to_string(),
        }
    }
}
