//! eos-hessian: linear algebra over parameter space.
//!
//! Curvature of a model enters only through [`LinearOperator`] (flat f64 vectors);
//! the algorithms (power iteration, Lanczos, Hutchinson, SLQ) know nothing of
//! networks, and the model-specific quantities (Taylor coefficients, NTK trace,
//! batch sharpness) are thin layers over eos-model's exact derivatives.
pub mod batch_sharpness;
pub mod eigen;
pub mod hutchinson;
pub mod lanczos;
pub mod model_ops;
pub mod ntk;
pub mod operator;
pub mod power;
pub mod preconditioned;
pub mod slq;
pub mod taylor;
pub mod testing;
pub mod vector;

pub use batch_sharpness::{batch_sharpness, BatchSharpness};
pub use eigen::{
    symmetric_eigen, tridiagonal_eigen, tridiagonal_eigen_rows, SymEigen, TridiagonalRows,
};
pub use hutchinson::{exact_trace, hutchinson, TraceEstimate};
pub use lanczos::{lanczos, lanczos_tridiag, LanczosConfig, LanczosResult, LanczosTridiag, Which};
pub use model_ops::{Curvature, GaussNewtonOp, HessianOp, ModelOperator};
pub use ntk::{ntk_trace, s_eos_k, s_eos_k_from_trace};
pub use operator::{DenseOperator, LinearOperator};
pub use power::{power_iteration, PowerResult};
pub use preconditioned::{effective_sharpness, Preconditioned};
pub use slq::{density_on_grid, slq, slq_trace, SpectralDensity};
pub use taylor::{taylor, Taylor};

/// Errors of the curvature algorithms.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Model(#[from] eos_model::Error),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error("{0}")]
    Msg(String),
    /// A vector (or list) whose length does not fit the operator or its partner.
    #[error("{what}: length {found}, expected {expected}")]
    Length {
        /// The argument or result (e.g. `preconditioner diagonal`).
        what: String,
        /// Its length.
        found: usize,
        /// The length that was required.
        expected: usize,
    },
    /// An entry of a vector or matrix outside its domain (NaN, ∞, negative, …).
    #[error("{what}: entry {index} is {value}, expected {expected}")]
    Entry {
        /// The argument or result (e.g. `lanczos: operator output`).
        what: String,
        /// Position of the first offending entry (flat order).
        index: usize,
        /// The offending value.
        value: f64,
        /// What would have been accepted.
        expected: &'static str,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

pub mod soft_rank;
pub mod update_cosine;
pub use soft_rank::{soft_rank, SoftRankKind};
pub use update_cosine::{update_cosine, UpdateCosine};
