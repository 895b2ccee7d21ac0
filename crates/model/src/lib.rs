//! eos-model: multilayer perceptrons with exact, hand-written derivatives.
//!
//! candle's autograd is first-order only (second derivatives through it are silently
//! wrong, candle issue #2462), so every derivative here is written by hand as tensor
//! ops and verified in f64 against finite differences, a dense Hessian and JAX:
//!
//! | quantity | file | cost (matmul units) |
//! |---|---|---|
//! | loss, gradient | [`grad`] | forward + backward |
//! | Hessian-vector product (Pearlmutter's R-operator) | [`hvp`] | ≈ 2 gradients |
//! | Taylor coefficients c0..c3 along a direction (jets) | [`jet`] | forward with 3 tangents |
//! | output JVP / VJP, Gauss-Newton product, NTK trace | [`jvp`] | forward + backward |
//!
//! Networks beyond the MLP live in [`net`]: a [`Network`] is a sequence of layers
//! (dense, conv2d, act, pools, flatten, residual, layernorm, embedding, pos_embedding,
//! attention, symmetric_pair), each with hand-written forward, VJP, JVP, tangent-VJP
//! (for the R-operator) and jet rules, so that the same loss, gradient, HVP, c0..c3,
//! JVP/VJP, Gauss-Newton and NTK-trace passes work for any stack; [`net::file`] reads
//! and writes the eos-net/1 format. The [`Mlp`] below keeps its fused fast paths.
//!
//! Notation (THEORY.md): `h_0 = x`, `z_l = m_l · h_l W_lᵀ + b_l`, `h_{l+1} = φ(z_l)`,
//! `f = z_{L-1}`; the loss is the mean over the n samples of `ℓ(f_i, y_i)`. Samples are
//! processed in chunks of [`Mlp::chunk_size`] rows so memory stays bounded; on narrow
//! networks each chunk's rows are further split over the threads (`Mlp::parts`), each
//! part with single-threaded products, and the parts' sums are added in order.

pub mod activation;
pub mod device;
mod fused;
pub mod grad;
mod host;
pub mod hvp;
pub mod io;
pub mod jet;
pub mod jvp;
pub mod loss;
pub mod mlp;
pub mod model;
pub mod net;
pub mod params;
pub mod rng;
pub mod testing;
pub mod threads;

pub use activation::Activation;
pub use device::{device_name, pick_device};
pub use hvp::HvpPrimal;
pub use io::{load_case, load_case_bytes, save_case, ProbeCase};
pub use loss::Loss;
pub use mlp::{Batch, Mlp, MlpSpec};
pub use model::{Model, ParamSpace};
pub use net::{LayerKind, NetParams, Network};
pub use params::{LayerParams, ParamVec};

/// Errors of the model crate. Messages name what was wrong and what was expected.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// Input that does not fit the model (shapes, names, values).
    #[error("{0}")]
    Invalid(String),
    /// A file that could not be read or written, or whose content is wrong.
    #[error("{path}: {msg}")]
    File { path: String, msg: String },
}

pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn invalid<T>(msg: impl Into<String>) -> Result<T> {
    Err(Error::Invalid(msg.into()))
}
