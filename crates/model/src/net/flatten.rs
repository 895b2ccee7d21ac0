//! `flatten`: `[n, d_1, …, d_k]` → `[n, d_1 ⋯ d_k]` (row-major, as PyTorch's
//! `nn.Flatten`). Linear and parameter-free: every rule reshapes (x̄ = reshape(ȳ),
//! ẏ = reshape(ẋ), R{x̄} = reshape(R{ȳ}), jets component by component).

use candle_core::Tensor;

use super::{Back, Cache, Grads, Jet, Layer, ParamShape, Sinks, Tan, Workspace};
use crate::Result;

/// Flattens every axis after the first.
#[derive(Debug, Clone, PartialEq)]
pub struct Flatten;

fn flat(t: &Tensor) -> Result<Tensor> {
    Ok(t.flatten_from(1)?)
}

impl Layer for Flatten {
    fn kind(&self) -> &'static str {
        "flatten"
    }

    fn n_params(&self) -> usize {
        0
    }

    fn out_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        Ok(vec![super::numel("flatten", input)?])
    }

    fn param_shapes(&self, _: &[usize]) -> Result<Vec<ParamShape>> {
        Ok(vec![])
    }

    fn forward(&self, _: &[Tensor], x: &Tensor, _: &mut Workspace) -> Result<(Tensor, Cache)> {
        let cache = Cache {
            shape: x.dims().to_vec(),
            ..Cache::default()
        };
        Ok((flat(x)?, cache))
    }

    fn vjp(
        &self,
        _: &[Tensor],
        c: &Cache,
        dy: &Tensor,
        need_dx: bool,
        _: &mut Grads,
        _: &mut Workspace,
    ) -> Result<Option<Tensor>> {
        need_dx
            .then(|| Ok(dy.reshape(c.shape.clone())?))
            .transpose()
    }

    fn jvp(
        &self,
        _: &[Tensor],
        _: &[Tensor],
        _: &Cache,
        xt: Option<&Tensor>,
        _: &mut Workspace,
    ) -> Result<(Option<Tensor>, Cache)> {
        Ok((xt.map(flat).transpose()?, Cache::default()))
    }

    fn tangent_vjp(
        &self,
        _: &[Tensor],
        c: &Cache,
        _: Tan,
        b: Back,
        _: &mut Sinks,
        _: &mut Workspace,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        if !b.need_dx {
            return Ok((None, None));
        }
        let s = c.shape.clone();
        Ok((Some(b.dy.reshape(s.clone())?), Some(b.rdy.reshape(s)?)))
    }

    fn jet(&self, _: &[Tensor], _: &[Tensor], x: &Jet, _: &mut Workspace) -> Result<Jet> {
        x.linear(flat)
    }
}
