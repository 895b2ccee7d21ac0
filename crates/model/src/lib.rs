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
//!
//! Exact derivatives of your own model on your own batch, checked against each other
//! (c1 = gᵀv and c2 = ½ vᵀHv along v = g), and a network of layers from its
//! eos-net/1 JSON:
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use eos_model::{net::parse_layers, Activation, Batch, Loss, Mlp, MlpSpec, Network};
//!
//! let dev = Device::Cpu;
//! let spec = MlpSpec::new(&[3, 8, 2], Activation::Tanh, true);
//! let mlp = Mlp::random(&spec, 0, DType::F64, &dev)?;
//! let x = Tensor::randn(0.0, 1.0, (16, 3), &dev)?;
//! let batch = Batch::new(x, Tensor::randn(0.0, 1.0, (16, 2), &dev)?);
//! let g = mlp.grad(&batch, Loss::Mse)?; // ∇L
//! let hg = mlp.hvp(&batch, Loss::Mse, &g)?; // H g (Pearlmutter's R-operator)
//! let c = mlp.taylor(&batch, Loss::Mse, &g)?; // c0..c3 of L(θ + t g)
//! assert!((c[0] - mlp.loss(&batch, Loss::Mse)?).abs() < 1e-12);
//! assert!((c[1] - g.dot(&g)?).abs() < 1e-10 * c[1]);
//! assert!((c[2] - 0.5 * g.dot(&hg)?).abs() < 1e-10 * c[2].abs().max(1e-3));
//!
//! let layers = parse_layers(
//!     r#"[{"type": "dense", "out": 8}, {"type": "act", "fn": "tanh"}, {"type": "dense", "out": 2}]"#,
//! )?;
//! let net = Network::random(layers, &[3], 0, 0.0, DType::F64, &dev)?;
//! assert_eq!(net.params.numel(), mlp.params.numel());
//! assert!(net.loss(&batch, Loss::Mse)?.is_finite());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod activation;
pub mod device;
pub mod ensemble;
mod fused;
mod gemm_host;
pub mod grad;
mod host;
pub mod hvp;
mod hvp_block;
mod hvp_host;
pub mod io;
pub mod jet;
pub mod jvp;
pub mod loss;
pub mod memory;
pub mod mlp;
pub mod model;
pub mod net;
pub mod params;
pub mod rng;
pub mod rowspace;
pub mod testing;
pub mod threads;
mod vmath;

pub use activation::Activation;
pub use device::{device_name, pick_device};
pub use hvp::HvpPrimal;
pub use io::{load_case, load_case_bytes, save_case, ProbeCase};
pub use loss::Loss;
pub use mlp::{Batch, Mlp, MlpSpec};
pub use model::{Model, ParamSpace};
pub use net::{LayerKind, NetParams, Network};
pub use params::{LayerParams, ParamVec};
pub use rowspace::RowBasis;

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
