//! `residual {body}`: a skip connection y = x + B(x) around a sequence B of layers
//! (He et al. 2016). Parameters are the body's, named `body.{j}.…`.
//!
//! ```text
//! x̄ = ȳ + B̄(ȳ)        ẏ = ẋ + Ḃ(ẋ)        R{x̄} = R{ȳ} + R{B̄}
//! jet: y⁽ᵏ⁾ = x⁽ᵏ⁾ + B(x)⁽ᵏ⁾
//! ```
//!
//! Every rule is the body's sequence rule plus the identity. The body's output shape
//! must equal its input shape.

use candle_core::Tensor;

use super::{
    seq_forward, seq_jet, seq_jvp, seq_shapes, seq_tangent_vjp, seq_vjp, Back, Cache, Grads, Init,
    Jet, Layer, LayerKind, ParamShape, Sinks, Tan, Workspace,
};
use crate::{invalid, Result};

/// A skip connection around `body`.
#[derive(Debug, Clone)]
pub struct Residual {
    pub body: Vec<LayerKind>,
}

fn add_opt(a: Option<&Tensor>, b: Option<Tensor>) -> Result<Option<Tensor>> {
    Ok(match (a, b) {
        (Some(a), Some(b)) => Some((a + b)?),
        (Some(a), None) => Some(a.clone()),
        (None, b) => b,
    })
}

impl Layer for Residual {
    fn kind(&self) -> &'static str {
        "residual"
    }

    fn n_params(&self) -> usize {
        self.body.iter().map(|l| l.layer().n_params()).sum()
    }

    fn out_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        let (out, _) = seq_shapes(&self.body, input, "body.")?;
        if out != input {
            return invalid(format!(
                "the body maps shape {input:?} to {out:?}; a residual needs equal shapes"
            ));
        }
        Ok(out)
    }

    fn param_shapes(&self, input: &[usize]) -> Result<Vec<ParamShape>> {
        Ok(seq_shapes(&self.body, input, "body.")?.1)
    }

    fn shapes(&self, input: &[usize]) -> Result<(Vec<usize>, Vec<ParamShape>)> {
        let (out, params) = seq_shapes(&self.body, input, "body.")?;
        if out != input {
            return invalid(format!(
                "the body maps shape {input:?} to {out:?}; a residual needs equal shapes"
            ));
        }
        Ok((out, params))
    }

    fn init(&self, name: &str, shape: &[usize]) -> Init {
        let rest = name.strip_prefix("body.").unwrap_or(name);
        let (j, inner) = rest.split_once('.').unwrap_or(("0", rest));
        match j.parse::<usize>().ok().and_then(|j| self.body.get(j)) {
            Some(l) => l.layer().init(inner, shape),
            None => Init::Bias,
        }
    }

    fn forward(&self, p: &[Tensor], x: &Tensor, ws: &mut Workspace) -> Result<(Tensor, Cache)> {
        let (b, bc) = seq_forward(&self.body, p, x, ws)?;
        let cache = Cache {
            inner: vec![bc],
            ..Cache::default()
        };
        Ok(((x + b)?, cache))
    }

    fn vjp(
        &self,
        p: &[Tensor],
        c: &Cache,
        dy: &Tensor,
        need_dx: bool,
        g: &mut Grads,
        ws: &mut Workspace,
    ) -> Result<Option<Tensor>> {
        let db = seq_vjp(&self.body, p, &c.inner[0], dy, need_dx, g, ws)?;
        Ok(if need_dx {
            add_opt(Some(dy), db)?
        } else {
            None
        })
    }

    fn jvp(
        &self,
        p: &[Tensor],
        v: &[Tensor],
        c: &Cache,
        xt: Option<&Tensor>,
        ws: &mut Workspace,
    ) -> Result<(Option<Tensor>, Cache)> {
        let (bt, btc) = seq_jvp(&self.body, p, v, &c.inner[0], xt, ws)?;
        let tc = Cache {
            inner: vec![btc],
            ..Cache::default()
        };
        Ok((add_opt(xt, bt)?, tc))
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
        let bt = Tan {
            v: t.v,
            xt: t.xt,
            tc: &t.tc.inner[0],
        };
        let (dx, rdx) = seq_tangent_vjp(&self.body, p, &c.inner[0], bt, b, s, ws)?;
        if !b.need_dx {
            return Ok((None, None));
        }
        Ok((add_opt(Some(b.dy), dx)?, add_opt(Some(b.rdy), rdx)?))
    }

    fn jet(&self, p: &[Tensor], v: &[Tensor], x: &Jet, ws: &mut Workspace) -> Result<Jet> {
        x.add(&seq_jet(&self.body, p, v, x.clone(), ws)?)
    }
}
