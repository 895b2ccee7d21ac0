//! The errors of eos-sweep: messages name the sweep file and key, the cell or the
//! file of a cell directory, and what was expected. As in eos-train, every variant's
//! message already contains the error it wraps, so none exposes a `source()` chain.
//!
//! One owner per kind of error: what eos-train already names (I/O, JSON, eos-model's
//! atomic writes, a request that cannot be carried out) is an [`eos_train::Error`]
//! wrapped in [`Error::Train`], not a second variant here; the `From` conversions
//! below route `?` on those errors through eos-train's enum.

use std::fmt::Display;
use std::path::PathBuf;

/// An error of a sweep.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A key of the sweep file that is out of its domain.
    #[error("{}: {key}: {problem}", file.display())]
    Spec {
        file: PathBuf,
        /// The key as the message names it (`key `final_fraction``, `[grid] key `optim.lr``).
        key: String,
        problem: String,
    },
    /// A sweep file that is not valid TOML or does not fit the schema.
    #[error("{}: {problem}", file.display())]
    SpecFile { file: PathBuf, problem: String },
    /// A cell whose `eos train` child failed.
    #[error("cell {cell}: {problem}")]
    Cell { cell: String, problem: String },
    /// Another error with what was being done when it happened.
    #[error("{context}: {inner}")]
    Context { context: String, inner: Box<Error> },
    /// eos-train's errors: reading a cell's run directory, and the I/O, JSON
    /// (`cell.json`, `results.jsonl`, `sweep.json`), atomic-write and request errors
    /// of the sweep itself (e.g. `--cell` out of range).
    #[error(transparent)]
    Train(#[from] eos_train::Error),
}

/// I/O, JSON and eos-model errors are eos-train's variants, wrapped.
macro_rules! via_train {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Error::Train(e.into())
            }
        }
    )*};
}
via_train!(std::io::Error, serde_json::Error, eos_model::Error);

/// Result alias of eos-sweep.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// A request that cannot be carried out as given (eos-train's
    /// [`eos_train::Error::Request`]).
    pub fn request(msg: impl Into<String>) -> Self {
        Error::Train(eos_train::Error::Request(msg.into()))
    }

    fn spec(file: impl Into<PathBuf>, key: impl Into<String>, problem: impl Into<String>) -> Self {
        Error::Spec {
            file: file.into(),
            key: key.into(),
            problem: problem.into(),
        }
    }
}

/// Shorthand for a [`Error::Spec`] about `key` of `file`.
pub(crate) fn spec_err(
    file: impl Into<PathBuf>,
    key: impl Into<String>,
    problem: impl Into<String>,
) -> Error {
    Error::spec(file, key, problem)
}

/// `.context(…)` / `.with_context(|| …)`: wraps an error in [`Error::Context`].
pub trait Context<T> {
    /// Wraps the error with `context`.
    fn context(self, context: impl Display) -> Result<T>;
    /// Wraps the error with the context `f` computes (only on error).
    fn with_context<C: Display>(self, f: impl FnOnce() -> C) -> Result<T>;
}

impl<T, X: Into<Error>> Context<T> for std::result::Result<T, X> {
    fn context(self, context: impl Display) -> Result<T> {
        self.map_err(|e| Error::Context {
            context: context.to_string(),
            inner: Box::new(e.into()),
        })
    }

    fn with_context<C: Display>(self, f: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|e| Error::Context {
            context: f().to_string(),
            inner: Box::new(e.into()),
        })
    }
}
