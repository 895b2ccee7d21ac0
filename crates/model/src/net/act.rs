//! `act {fn}`: a pointwise activation y = φ(x), for every [`Activation`] of eos (φ',
//! φ'', φ''' from [`Activation::derivs`]).
//!
//! ```text
//! x̄ = φ'(x) ȳ          ẏ = φ'(x) ẋ
//! R{x̄} = φ'(x) R{ȳ} + φ''(x) ẋ ȳ
//! jet: Faà di Bruno, ÿ = φ'' ẋ² + φ' ẍ,  y⃛ = φ''' ẋ³ + 3 φ'' ẋ ẍ + φ' x⃛
//! ```
//!
//! (THEORY.md §8; the relu family has φ'' = φ''' = 0 and φ'(0) = 0 from the left.)
//! Cache: φ' (and φ'' when the workspace order is ≥ 2). No parameters.

use candle_core::Tensor;

use super::{Back, Cache, Grads, Jet, Layer, ParamShape, Sinks, Tan, Workspace};
use crate::{Activation, Result};

/// A pointwise activation.
#[derive(Debug, Clone, PartialEq)]
pub struct ActLayer {
    pub f: Activation,
}

impl Layer for ActLayer {
    fn kind(&self) -> &'static str {
        "act"
    }

    fn n_params(&self) -> usize {
        0
    }

    fn out_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        Ok(input.to_vec())
    }

    fn param_shapes(&self, _: &[usize]) -> Result<Vec<ParamShape>> {
        Ok(vec![])
    }

    fn forward(&self, _: &[Tensor], x: &Tensor, ws: &mut Workspace) -> Result<(Tensor, Cache)> {
        if ws.order == 0 {
            return Ok((self.f.forward(x)?, Cache::default()));
        }
        let d = self.f.derivs(x, ws.order.min(2))?;
        let cache = Cache {
            t: vec![Some(d.d1), d.d2],
            ..Cache::default()
        };
        Ok((d.d0, cache))
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
        need_dx.then(|| Ok((dy * c.get(0)?)?)).transpose()
    }

    fn jvp(
        &self,
        _: &[Tensor],
        _: &[Tensor],
        c: &Cache,
        xt: Option<&Tensor>,
        _: &mut Workspace,
    ) -> Result<(Option<Tensor>, Cache)> {
        let y = xt
            .map(|t| Ok::<_, crate::Error>((t * c.get(0)?)?))
            .transpose()?;
        Ok((y, Cache::default()))
    }

    fn tangent_vjp(
        &self,
        p: &[Tensor],
        c: &Cache,
        t: Tan,
        b: Back,
        s: &mut Sinks,
        ws: &mut Workspace,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        if !b.need_dx {
            return Ok((None, None));
        }
        let dx = self.vjp(p, c, b.dy, true, &mut s.grad, ws)?;
        let mut rdx = (b.rdy * c.get(0)?)?;
        if let (Some(xt), Some(d2)) = (t.xt, c.t.get(1).and_then(Option::as_ref)) {
            rdx = (rdx + ((xt * d2)? * b.dy)?)?;
        }
        Ok((dx, Some(rdx)))
    }

    fn jet(&self, _: &[Tensor], _: &[Tensor], x: &Jet, _: &mut Workspace) -> Result<Jet> {
        let d = self.f.derivs(x.primal()?, x.order.max(1))?;
        x.compose([Some(d.d0), Some(d.d1), d.d2, d.d3])
    }
}
