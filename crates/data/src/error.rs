//! The error type of `eos-data`.
//!
//! Every variant that comes from a file names the file and says what was expected, so a
//! message such as `data/train-images.idx: truncated: expected 47040016 bytes
//! (60000 images of 28x28 u8 pixels), found 1000` is enough to fix the input without a
//! debugger (STYLE.md §6).

use std::fmt::Write as _;
use std::path::PathBuf;

/// Everything that can go wrong while generating, loading or transforming a dataset.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be opened or read (or its gzip stream is corrupt).
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },

    /// The file does not start with the magic number of the expected format.
    #[error("{path}: wrong magic number {found}, expected {expected} ({format})")]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// The magic found, printed in hex.
        found: String,
        /// The magic expected, printed in hex.
        expected: String,
        /// The format that was expected, e.g. `IDX images (u8, 3 dimensions)`.
        format: &'static str,
    },

    /// The file ends before the data its header announces.
    #[error("{path}: truncated: expected {expected} bytes ({what}), found {found}")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Bytes the header announces (after decompression).
        expected: u64,
        /// Bytes present (after decompression).
        found: u64,
        /// What the expected bytes hold.
        what: String,
    },

    /// The file is longer than its header announces.
    #[error("{path}: {found} bytes, expected exactly {expected} ({what}): trailing data")]
    TrailingBytes {
        /// The file.
        path: PathBuf,
        /// Bytes the header announces.
        expected: u64,
        /// Bytes present.
        found: u64,
        /// What the expected bytes hold.
        what: String,
    },

    /// A file of fixed-size records (CIFAR-10 binary) has a size that is not a multiple
    /// of the record size.
    #[error("{path}: size {size} bytes is not a multiple of the {record}-byte record of {format}")]
    RecordSize {
        /// The file.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
        /// The record size in bytes.
        record: u64,
        /// The format, e.g. `CIFAR-10 binary (1 label byte + 3072 pixels)`.
        format: &'static str,
    },

    /// Inputs and labels disagree on the number of samples.
    #[error("sample count mismatch: {inputs} has {n_inputs} samples but {labels} has {n_labels}")]
    CountMismatch {
        /// The inputs file (or tensor description).
        inputs: String,
        /// Samples in the inputs.
        n_inputs: usize,
        /// The labels file (or tensor description).
        labels: String,
        /// Samples in the labels.
        n_labels: usize,
    },

    /// A value is NaN or infinite.
    #[error("{path}: non-finite value {value} in `{tensor}` at flat index {index}; expected finite numbers")]
    NonFinite {
        /// The file.
        path: PathBuf,
        /// Which array of the file.
        tensor: String,
        /// Flat (row-major) index of the first offending value.
        index: usize,
        /// The value.
        value: f64,
    },

    /// The file stores an element type this crate does not read.
    #[error("{path}: unsupported dtype {found} in `{tensor}`; expected one of {expected}")]
    UnsupportedDtype {
        /// The file.
        path: PathBuf,
        /// Which array of the file.
        tensor: String,
        /// The dtype found.
        found: String,
        /// The dtypes supported.
        expected: &'static str,
    },

    /// A header that is present but cannot be understood (npy dictionary, IDX
    /// dimensions, safetensors table, unsupported layout or rank).
    #[error("{path}: malformed header: {reason}")]
    BadHeader {
        /// The file.
        path: PathBuf,
        /// What is wrong and what was expected.
        reason: String,
    },

    /// A named tensor is absent from a safetensors file.
    #[error("{path}: no tensor named `{name}`; the file holds: {available}")]
    MissingTensor {
        /// The file.
        path: PathBuf,
        /// The name asked for.
        name: String,
        /// The names present, comma-separated.
        available: String,
    },

    /// A class label outside `0..num_classes`.
    #[error("{source_name}: label {label} at sample {index} is out of range; expected a class in 0..{num_classes}")]
    BadLabel {
        /// The file or dataset name.
        source_name: String,
        /// Index of the sample.
        index: usize,
        /// The label found.
        label: i64,
        /// The number of classes expected.
        num_classes: usize,
    },

    /// A dataset that the crate looks for in standard places was not found.
    #[error("{what} not found; looked in: {searched}. {hint}")]
    NotFound {
        /// What was looked for.
        what: String,
        /// The places looked in, formatted as a list.
        searched: String,
        /// How to get it.
        hint: String,
    },

    /// An argument (configuration value) outside its domain, e.g. a batch size of 0.
    #[error("invalid argument: {0}")]
    Invalid(String),

    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

impl DataError {
    /// An [`DataError::Io`] for `path`.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            source,
        }
    }

    /// A [`DataError::BadHeader`] for `path`.
    pub(crate) fn header(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        DataError::BadHeader {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// A [`DataError::NotFound`] listing the places searched.
    pub(crate) fn not_found(what: &str, searched: &[PathBuf], hint: &str) -> Self {
        let mut list = String::new();
        for (i, p) in searched.iter().enumerate() {
            if i > 0 {
                list.push_str(", ");
            }
            let _ = write!(list, "{}", p.display());
        }
        DataError::NotFound {
            what: what.to_string(),
            searched: list,
            hint: hint.to_string(),
        }
    }
}

/// The result type of `eos-data`.
pub type Result<T, E = DataError> = std::result::Result<T, E>;
