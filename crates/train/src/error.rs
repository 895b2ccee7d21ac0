//! The errors of eos-train: one enum whose messages name the config key or the file
//! and what was expected (`optim.lr: got -1; expected a finite number > 0`,
//! `exp.toml: key `train.stepz`: unknown field …`, `run/meta.json: cannot read: …`).
//!
//! The `Display` of every variant already contains the message of the error it wraps
//! (`context: inner`), so the variants expose no `source()` chain: printing an error
//! once, with `{}` or `{:#}`, shows the whole story once.

use std::fmt::Display;
use std::path::PathBuf;

/// An error of the training engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A config value outside its schema: the dotted key (`optim.lr`, `model.widths`)
    /// and what is wrong or expected.
    #[error("{key}: {problem}")]
    Config { key: String, problem: String },
    /// A value that does not deserialise into the schema: the dotted key it is at
    /// and serde's message (`key `train.steps`: invalid type: string "twelve", …`).
    #[error("key `{key}`: {problem}")]
    Schema { key: String, problem: String },
    /// A config text that is not valid TOML, or an override that is not `KEY=VALUE`,
    /// or a schema error with no key (e.g. a missing section).
    #[error("{0}")]
    Syntax(String),
    /// An error in the config file `file` (an unknown key, a value of the wrong type,
    /// a [`Error::Config`] found while building the run).
    #[error("{}: {inner}", file.display())]
    InConfig { file: PathBuf, inner: Box<Error> },
    /// A file of a run directory (or a config) that is not what it should be.
    #[error("{}: {problem}", path.display())]
    File { path: PathBuf, problem: String },
    /// A request that cannot be carried out as given (e.g. `--resume` without `--out`).
    #[error("{0}")]
    Request(String),
    /// Another error with what was being done when it happened.
    #[error("{context}: {inner}")]
    Context { context: String, inner: Box<Error> },
    /// An I/O error (wrapped in [`Error::Context`] naming the file where it happens).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// JSON (de)serialisation of `meta.json` or a metrics line.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// TOML parsing.
    #[error(transparent)]
    TomlDe(#[from] toml::de::Error),
    /// TOML serialisation (the resolved config, schedule state).
    #[error(transparent)]
    TomlSer(#[from] toml::ser::Error),
    /// A checkpoint's safetensors container.
    #[error(transparent)]
    Safetensors(#[from] safetensors::SafeTensorError),
    /// eos-model (tensors, networks, files of the interchange format).
    #[error(transparent)]
    Model(#[from] eos_model::Error),
    /// eos-hessian (the curvature probes).
    #[error(transparent)]
    Hessian(#[from] eos_hessian::Error),
    /// eos-optim (optimizers and schedules).
    #[error(transparent)]
    Optim(#[from] eos_optim::Error),
    /// eos-param (parameterizations and widths).
    #[error(transparent)]
    Param(#[from] eos_param::ParamError),
    /// eos-data (generators and loaders).
    #[error(transparent)]
    Data(#[from] eos_data::DataError),
    /// candle, outside an eos-model operation.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// Result alias of eos-train.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// A [`Error::Config`] for the dotted `key`.
    pub fn config(key: impl Into<String>, problem: impl Into<String>) -> Self {
        Error::Config {
            key: key.into(),
            problem: problem.into(),
        }
    }

    /// A [`Error::File`] for `path`.
    pub fn file(path: impl Into<PathBuf>, problem: impl Into<String>) -> Self {
        Error::File {
            path: path.into(),
            problem: problem.into(),
        }
    }

    /// This error, as found in the config file `file`.
    pub fn in_config(self, file: impl Into<PathBuf>) -> Self {
        Error::InConfig {
            file: file.into(),
            inner: Box::new(self),
        }
    }

    /// The config key this error is about, if it is a [`Error::Config`] (possibly in a
    /// file).
    pub fn config_key(&self) -> Option<&str> {
        match self {
            Error::Config { key, .. } | Error::Schema { key, .. } => Some(key),
            Error::InConfig { inner, .. } => inner.config_key(),
            _ => None,
        }
    }
}

/// `.context(…)` / `.with_context(|| …)` on results whose error converts into
/// [`Error`]: wraps it in [`Error::Context`].
pub trait Context<T> {
    /// Wraps the error with `context`.
    fn context(self, context: impl Display) -> Result<T>;
    /// Wraps the error with the context `f` computes (only on error).
    fn with_context<C: Display>(self, f: impl FnOnce() -> C) -> Result<T>;
}

impl<T, E: Into<Error>> Context<T> for std::result::Result<T, E> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_file_and_the_key_once() {
        let e =
            Error::config("optim.lr", "got -1; expected a finite number > 0").in_config("exp.toml");
        assert_eq!(
            e.to_string(),
            "exp.toml: optim.lr: got -1; expected a finite number > 0"
        );
        assert_eq!(e.config_key(), Some("optim.lr"));
        let io: std::result::Result<(), _> = Err(std::io::Error::other("denied"));
        let e = io
            .with_context(|| "run/meta.json: cannot read")
            .unwrap_err();
        assert_eq!(e.to_string(), "run/meta.json: cannot read: denied");
        assert!(std::error::Error::source(&e).is_none());
    }
}
