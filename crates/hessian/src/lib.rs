//! eos-hessian: linear algebra over parameter space.
//!
//! Curvature of a model enters only through [`LinearOperator`] (flat f64 vectors);
//! the algorithms (power iteration, Lanczos, Hutchinson, SLQ) know nothing of
//! networks, and the model-specific quantities (Taylor coefficients, NTK trace,
//! batch sharpness) are thin layers over eos-model's exact derivatives.
//!
//! The top Hessian eigenvalues of your own model on your own batch:
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use eos_hessian::{lanczos, LanczosConfig, ModelOperator, Which};
//! use eos_model::{Activation, Batch, Loss, Mlp, MlpSpec};
//!
//! let dev = Device::Cpu;
//! let mlp = Mlp::random(&MlpSpec::new(&[4, 16, 1], Activation::Tanh, true), 0, DType::F64, &dev)?;
//! let x = Tensor::randn(0.0, 1.0, (32, 4), &dev)?;
//! let batch = Batch::new(x, Tensor::randn(0.0, 1.0, (32, 1), &dev)?);
//! let hessian = ModelOperator::hessian(&mlp, &batch, Loss::Mse);
//! let cfg = LanczosConfig { k: 3, which: Which::Largest, max_iter: 60, ..Default::default() };
//! let top = lanczos(&hessian, &cfg, &[])?;
//! assert!(top.eigenvalues[0] >= top.eigenvalues[1]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
pub mod batch_sharpness;
pub mod eigen;
pub mod hutchinson;
pub mod lanczos;
pub mod model_ops;
pub mod ntk;
pub mod operator;
pub mod power;
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
}

pub type Result<T> = std::result::Result<T, Error>;

pub mod soft_rank;
pub mod update_cosine;
pub use soft_rank::{soft_rank, SoftRankKind};
pub use update_cosine::{update_cosine, UpdateCosine};
