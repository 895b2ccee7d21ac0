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
pub mod block_lanczos;
pub mod eigen;
pub mod hutchinson;
pub mod lanczos;
pub mod model_ops;
pub mod ntk;
pub mod operator;
pub mod power;
pub mod preconditioned;
pub mod rowspace;
pub mod slq;
pub mod taylor;
pub mod testing;
pub mod vector;

pub use batch_sharpness::{batch_sharpness, BatchSharpness};
pub use block_lanczos::block_lanczos;
pub use eigen::{
    symmetric_eigen, tridiagonal_eigen, tridiagonal_eigen_rows, SymEigen, TridiagonalRows,
};
pub use hutchinson::{exact_trace, hutchinson, TraceEstimate};
pub use lanczos::{lanczos, lanczos_tridiag, LanczosConfig, LanczosResult, LanczosTridiag, Which};
pub use model_ops::{Curvature, GaussNewtonOp, HessianOp, ModelOperator};
pub use ntk::{ntk_trace, s_eos_k, s_eos_k_from_trace, s_eos_lr};
pub use operator::{DenseOperator, LinearOperator, Observed};
pub use power::{power_iteration, PowerResult};
pub use preconditioned::{effective_sharpness, Preconditioned};
pub use rowspace::{lanczos_rowspace, rowspace_declines, RowspaceOperator};
pub use slq::{density_on_grid, slq, slq_trace, SpectralDensity};
pub use taylor::{taylor, Taylor};

/// Errors of the curvature algorithms.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Model(#[from] eos_model::Error),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// An argument or setting outside its domain (sizes, tolerances, environment).
    #[error("{what}: got {found}; expected {expected}")]
    Invalid {
        /// The function and argument (e.g. `lanczos: k`).
        what: String,
        /// The offending value, formatted.
        found: String,
        /// What would have been accepted.
        expected: String,
    },
    /// An operator of dimension 0 given to an algorithm that needs a vector.
    #[error("{what}: operator has dimension 0, expected at least 1")]
    EmptyOperator {
        /// The algorithm (e.g. `power_iteration`).
        what: &'static str,
    },
    /// A start vector that is zero, so it cannot be normalised.
    #[error("{what}: the start vector is zero, expected a non-zero vector")]
    ZeroStart {
        /// The algorithm (e.g. `lanczos_tridiag`).
        what: &'static str,
    },
    /// An iterative dense eigensolver that ran out of iterations.
    #[error("{what}: did not converge in {limit} iterations (n = {n}); expected convergence for a finite symmetric matrix")]
    NoConvergence {
        /// The solver and, where it applies, the eigenvalue (e.g. `tridiagonal_eigen: eigenvalue 3`).
        what: String,
        /// The iteration (or sweep) limit.
        limit: usize,
        /// The matrix dimension.
        n: usize,
    },
    /// Lanczos found an invariant Krylov space and no random vector could extend it.
    #[error("lanczos: could not extend an invariant Krylov space of dimension {found} (dim = {dim}); expected a new direction from a random restart")]
    KrylovExhausted {
        /// The dimension of the invariant space.
        found: usize,
        /// The operator dimension.
        dim: usize,
    },
    /// Batch sharpness where every minibatch gradient was zero (no direction to probe).
    #[error("batch_sharpness: every minibatch gradient was zero; expected at least one non-zero gradient")]
    ZeroGradients,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every failure names what was wrong and what was expected, as a typed variant.
    #[test]
    fn errors_are_typed_and_name_the_expectation() {
        let a = DenseOperator::new(2, vec![2.0, 0.0, 0.0, 1.0]);
        let empty = DenseOperator::new(0, vec![]);
        let cfg = LanczosConfig {
            k: 3,
            ..Default::default()
        };
        let e = lanczos(&a, &cfg, &[]).unwrap_err();
        assert!(matches!(e, Error::Invalid { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            "lanczos: k (wanted eigenpairs): got 3; expected 1 ≤ k ≤ dim = 2"
        );
        let e = lanczos(&empty, &LanczosConfig::default(), &[]).unwrap_err();
        assert!(
            matches!(e, Error::EmptyOperator { what: "lanczos" }),
            "{e:?}"
        );
        let e = lanczos_tridiag(&a, &[0.0, 0.0], 2).unwrap_err();
        assert!(matches!(e, Error::ZeroStart { .. }), "{e:?}");
        let e = power_iteration(&a, 5, Some(&[1.0, f64::NAN]), 0).unwrap_err();
        assert!(matches!(e, Error::Entry { index: 1, .. }), "{e:?}");
        let e = power_iteration(&a, 5, Some(&[1.0]), 0).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Length {
                    found: 1,
                    expected: 2,
                    ..
                }
            ),
            "{e:?}"
        );
        let e = symmetric_eigen(&[1.0, 2.0, 3.0], 2).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("symmetric_eigen: matrix entries for n = 2: length 3, expected 4"),
            "{e}"
        );
        let e = tridiagonal_eigen(&[1.0, f64::INFINITY], &[1.0]).unwrap_err();
        assert!(matches!(e, Error::Entry { index: 1, .. }), "{e:?}");
        let e = hutchinson(&a, 1, 4, 0).unwrap_err();
        assert!(e.to_string().contains("expected at least 2"), "{e}");
        let e = s_eos_k_from_trace(1.0, 0.1, 0, 2).unwrap_err();
        assert!(matches!(e, Error::Invalid { .. }), "{e:?}");
    }
}
