//! [`Model`]: what the curvature stack (eos-hessian's `ModelOperator`, Lanczos, trace
//! estimators, the training probes and `eos probe`) needs from a model, implemented by
//! both [`Mlp`] (its fused fast paths and cached primal pass, unchanged) and
//! [`Network`] (any stack of layers).
//!
//! The trait is static (generic code is monomorphised per model type), so the MLP
//! keeps its own kernels and call sequence bit for bit: every method forwards to the
//! type's inherent method of the same name. Parameter vectors stay the type's own
//! ([`ParamVec`] per dense layer, [`NetParams`] per named tensor) behind
//! [`ParamSpace`]; both flatten to the same f64 order, so flat-vector code (Lanczos,
//! Hutchinson) does not care which.

use std::fmt::Debug;

use candle_core::{DType, Device, Tensor};

use crate::net::NetHvpPrimal;
pub use crate::params::ParamSpace;
use crate::{Batch, HvpPrimal, Loss, Mlp, NetParams, Network, ParamVec, Result};

/// A model whose loss, gradient and curvature products eos can compute exactly.
pub trait Model: Debug + Clone {
    type Params: ParamSpace;
    /// The direction-independent half of an HVP, reused across directions.
    type Primal: Debug;

    fn params(&self) -> &Self::Params;
    fn with_params(&self, params: Self::Params) -> Result<Self>;
    fn chunk_size(&self) -> usize;
    fn dtype(&self) -> DType;
    fn device(&self) -> Device;
    fn forward(&self, x: &Tensor) -> Result<Tensor>;
    fn loss(&self, batch: &Batch, loss: Loss) -> Result<f64>;
    fn loss_and_grad(&self, batch: &Batch, loss: Loss) -> Result<(f64, Self::Params)>;
    fn grad(&self, batch: &Batch, loss: Loss) -> Result<Self::Params>;
    fn hvp(&self, batch: &Batch, loss: Loss, v: &Self::Params) -> Result<Self::Params>;
    /// Loss, ∇L and H v in one pass.
    fn loss_grad_hvp(
        &self,
        batch: &Batch,
        loss: Loss,
        v: &Self::Params,
    ) -> Result<(f64, Self::Params, Self::Params)>;
    fn hvp_primal(&self, batch: &Batch, loss: Loss) -> Result<Self::Primal>;
    fn hvp_with(
        &self,
        primal: &Self::Primal,
        batch: &Batch,
        v: &Self::Params,
    ) -> Result<Self::Params>;
    /// H v_i for every direction of `vs` from one primal pass: one product at a time
    /// unless the model shares the tangent pass across directions ([`Mlp::hvp_block`]).
    fn hvp_block(
        &self,
        primal: &Self::Primal,
        batch: &Batch,
        vs: &[Self::Params],
    ) -> Result<Vec<Self::Params>> {
        vs.iter().map(|v| self.hvp_with(primal, batch, v)).collect()
    }
    /// Bytes held by a primal pass.
    fn primal_bytes(primal: &Self::Primal) -> usize;
    /// An upper estimate of [`Model::primal_bytes`] for `n` samples, before computing
    /// it (`None`: no cheap estimate; the pass is computed and measured).
    fn primal_estimate(&self, n: usize) -> Option<usize>;
    fn gnvp(&self, batch: &Batch, loss: Loss, v: &Self::Params) -> Result<Self::Params>;
    fn ntk_trace(&self, x: &Tensor) -> Result<f64>;
    /// c0..c3 of L(θ + t v).
    fn taylor(&self, batch: &Batch, loss: Loss, v: &Self::Params) -> Result<[f64; 4]>;
    fn n_params(&self) -> usize {
        self.params().numel()
    }
}

impl Model for Mlp {
    type Params = ParamVec;
    type Primal = HvpPrimal;

    fn params(&self) -> &ParamVec {
        &self.params
    }
    fn with_params(&self, params: ParamVec) -> Result<Self> {
        Mlp::with_params(self, params)
    }
    fn chunk_size(&self) -> usize {
        self.chunk_size
    }
    fn dtype(&self) -> DType {
        Mlp::dtype(self)
    }
    fn device(&self) -> Device {
        Mlp::device(self).clone()
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Mlp::forward(self, x)
    }
    fn loss(&self, batch: &Batch, loss: Loss) -> Result<f64> {
        Mlp::loss(self, batch, loss)
    }
    fn loss_and_grad(&self, batch: &Batch, loss: Loss) -> Result<(f64, ParamVec)> {
        Mlp::loss_and_grad(self, batch, loss)
    }
    fn grad(&self, batch: &Batch, loss: Loss) -> Result<ParamVec> {
        Mlp::grad(self, batch, loss)
    }
    fn hvp(&self, batch: &Batch, loss: Loss, v: &ParamVec) -> Result<ParamVec> {
        Mlp::hvp(self, batch, loss, v)
    }
    fn loss_grad_hvp(
        &self,
        batch: &Batch,
        loss: Loss,
        v: &ParamVec,
    ) -> Result<(f64, ParamVec, ParamVec)> {
        let o = Mlp::hvp_full(self, batch, loss, v, true)?;
        Ok((o.loss, o.grad.expect("asked for the gradient"), o.hvp))
    }
    fn hvp_primal(&self, batch: &Batch, loss: Loss) -> Result<HvpPrimal> {
        Mlp::hvp_primal(self, batch, loss)
    }
    fn hvp_with(&self, primal: &HvpPrimal, batch: &Batch, v: &ParamVec) -> Result<ParamVec> {
        Mlp::hvp_with(self, primal, batch, v)
    }
    fn hvp_block(
        &self,
        primal: &HvpPrimal,
        batch: &Batch,
        vs: &[ParamVec],
    ) -> Result<Vec<ParamVec>> {
        Mlp::hvp_block(self, primal, batch, vs)
    }
    fn primal_bytes(primal: &HvpPrimal) -> usize {
        primal.bytes()
    }
    /// Per sample and hidden unit the activation and δ (plus φ', φ'' and g for smooth
    /// activations), and δ at the output.
    fn primal_estimate(&self, n: usize) -> Option<usize> {
        let w = self.widths();
        let per_unit = if self.activation.is_homogeneous() {
            2
        } else {
            5
        };
        let units: usize = w[1..w.len() - 1].iter().sum::<usize>() * per_unit + w[w.len() - 1];
        Some(n * units * Mlp::dtype(self).size_in_bytes())
    }
    fn gnvp(&self, batch: &Batch, loss: Loss, v: &ParamVec) -> Result<ParamVec> {
        Mlp::gnvp(self, batch, loss, v)
    }
    fn ntk_trace(&self, x: &Tensor) -> Result<f64> {
        Mlp::ntk_trace(self, x)
    }
    fn taylor(&self, batch: &Batch, loss: Loss, v: &ParamVec) -> Result<[f64; 4]> {
        Mlp::taylor(self, batch, loss, v)
    }
}

impl Model for Network {
    type Params = NetParams;
    type Primal = NetHvpPrimal;

    fn params(&self) -> &NetParams {
        &self.params
    }
    fn with_params(&self, params: NetParams) -> Result<Self> {
        Network::with_params(self, params)
    }
    fn chunk_size(&self) -> usize {
        self.chunk_size
    }
    fn dtype(&self) -> DType {
        Network::dtype(self)
    }
    fn device(&self) -> Device {
        Network::device(self)
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Network::forward(self, x)
    }
    fn loss(&self, batch: &Batch, loss: Loss) -> Result<f64> {
        Network::loss(self, batch, loss)
    }
    fn loss_and_grad(&self, batch: &Batch, loss: Loss) -> Result<(f64, NetParams)> {
        Network::loss_and_grad(self, batch, loss)
    }
    fn grad(&self, batch: &Batch, loss: Loss) -> Result<NetParams> {
        Network::grad(self, batch, loss)
    }
    fn hvp(&self, batch: &Batch, loss: Loss, v: &NetParams) -> Result<NetParams> {
        Network::hvp(self, batch, loss, v)
    }
    fn loss_grad_hvp(
        &self,
        batch: &Batch,
        loss: Loss,
        v: &NetParams,
    ) -> Result<(f64, NetParams, NetParams)> {
        let o = Network::hvp_full(self, batch, loss, v, true)?;
        Ok((o.loss, o.grad.expect("asked for the gradient"), o.hvp))
    }
    fn hvp_primal(&self, batch: &Batch, loss: Loss) -> Result<NetHvpPrimal> {
        Network::hvp_primal(self, batch, loss)
    }
    fn hvp_with(&self, primal: &NetHvpPrimal, batch: &Batch, v: &NetParams) -> Result<NetParams> {
        Network::hvp_with(self, primal, batch, v)
    }
    fn primal_bytes(primal: &NetHvpPrimal) -> usize {
        primal.bytes()
    }
    fn primal_estimate(&self, _n: usize) -> Option<usize> {
        None
    }
    fn gnvp(&self, batch: &Batch, loss: Loss, v: &NetParams) -> Result<NetParams> {
        Network::gnvp(self, batch, loss, v)
    }
    fn ntk_trace(&self, x: &Tensor) -> Result<f64> {
        Network::ntk_trace(self, x)
    }
    fn taylor(&self, batch: &Batch, loss: Loss, v: &NetParams) -> Result<[f64; 4]> {
        Network::taylor(self, batch, loss, v)
    }
}
