//! `layernorm {eps, affine}` over the last axis (Ba et al. 2016), with the biased
//! variance (the mean of squares, as PyTorch), then the gain w and bias b `[d]`:
//!
//! ```text
//! x̂ = (x − mean x) r,  r = (var x + eps)^{−1/2},  y = w ⊙ x̂ + b
//! ∂x̂/∂x = J = r (I − 11ᵀ/d − x̂ x̂ᵀ/d)           (symmetric)
//! ĝ = w ⊙ ȳ,  x̄ = J ĝ = r (ĝ − mean ĝ − x̂ mean(x̂ ⊙ ĝ)),  w̄ = Σ ȳ ⊙ x̂,  b̄ = Σ ȳ
//! t = ẋ̂ = J ẋ,  ẏ = w ⊙ t + ẇ ⊙ x̂ + ḃ
//! α = mean(x̂ ⊙ ẋ),  ṙ = −r² α,
//! R{J} ĝ = −r α J ĝ − r (t mean(x̂ ⊙ ĝ) + x̂ mean(t ⊙ ĝ))
//! R{x̄} = J R{ĝ} + R{J} ĝ,  R{ĝ} = w ⊙ R{ȳ} + ẇ ⊙ ȳ,
//! R{w̄} = Σ (R{ȳ} ⊙ x̂ + ȳ ⊙ t),  R{b̄} = Σ R{ȳ}
//! jet: centring and means are linear, squares and products by Leibniz, and
//! g(s) = (s + eps)^{−1/2} by Faà di Bruno (g' = −½ g³, g'' = ¾ g⁵, g''' = −15/8 g⁷).
//! ```
//!
//! (Σ over every leading axis.) PyTorch's third derivative through LayerNorm is wrong
//! (pytorch issue #175754); this one is tested against finite differences.
//! Cache: x̂, r; tangent cache: t. Role: its gain and bias are hidden-layer vectors.

use candle_core::{Tensor, D};

use super::dense::sum_rows;
use super::{Back, Cache, Grads, Init, Jet, Layer, ParamShape, Sinks, Tan, Workspace};
use crate::{invalid, Result};

/// Layer normalisation over the last axis.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerNorm {
    pub eps: f64,
    pub affine: bool,
}

fn mean(t: &Tensor) -> Result<Tensor> {
    Ok(t.mean_keepdim(D::Minus1)?)
}

/// `J g = r (g − mean g − x̂ mean(x̂ ⊙ g))`.
fn jop(xh: &Tensor, r: &Tensor, g: &Tensor) -> Result<Tensor> {
    let c = g.broadcast_sub(&mean(g)?)?;
    let p = xh.broadcast_mul(&mean(&(xh * g)?)?)?;
    Ok((c - p)?.broadcast_mul(r)?)
}

impl LayerNorm {
    /// `w ⊙ t` (t when not affine).
    fn gain(&self, p: &[Tensor], t: &Tensor) -> Result<Tensor> {
        Ok(if self.affine {
            t.broadcast_mul(&p[0])?
        } else {
            t.clone()
        })
    }
}

impl Layer for LayerNorm {
    fn kind(&self) -> &'static str {
        "layernorm"
    }

    fn n_params(&self) -> usize {
        if self.affine {
            2
        } else {
            0
        }
    }

    fn out_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        if input.is_empty() {
            return invalid("layernorm needs an input with a feature axis");
        }
        Ok(input.to_vec())
    }

    fn param_shapes(&self, input: &[usize]) -> Result<Vec<ParamShape>> {
        let Some(&d) = input.last() else {
            return invalid("layernorm needs an input with a feature axis");
        };
        Ok(if self.affine {
            vec![("weight".into(), vec![d]), ("bias".into(), vec![d])]
        } else {
            vec![]
        })
    }

    fn init(&self, name: &str, _: &[usize]) -> Init {
        if name == "weight" {
            Init::One
        } else {
            Init::Bias
        }
    }

    fn forward(&self, p: &[Tensor], x: &Tensor, _: &mut Workspace) -> Result<(Tensor, Cache)> {
        let xc = x.broadcast_sub(&mean(x)?)?;
        let r = (mean(&xc.sqr()?)? + self.eps)?.sqrt()?.recip()?;
        let xh = xc.broadcast_mul(&r)?;
        let mut y = self.gain(p, &xh)?;
        if self.affine {
            y = y.broadcast_add(&p[1])?;
        }
        Ok((y, Cache::of(vec![xh, r])))
    }

    fn vjp(
        &self,
        p: &[Tensor],
        c: &Cache,
        dy: &Tensor,
        need_dx: bool,
        g: &mut Grads,
        _: &mut Workspace,
    ) -> Result<Option<Tensor>> {
        let (xh, r) = (c.get(0)?, c.get(1)?);
        if self.affine {
            g.add(0, || sum_rows(&(dy * xh)?))?;
            g.add(1, || sum_rows(dy))?;
        }
        need_dx.then(|| jop(xh, r, &self.gain(p, dy)?)).transpose()
    }

    fn jvp(
        &self,
        p: &[Tensor],
        v: &[Tensor],
        c: &Cache,
        xt: Option<&Tensor>,
        _: &mut Workspace,
    ) -> Result<(Option<Tensor>, Cache)> {
        let (xh, r) = (c.get(0)?, c.get(1)?);
        let t = xt.map(|xt| jop(xh, r, xt)).transpose()?;
        let mut y = t.as_ref().map(|t| self.gain(p, t)).transpose()?;
        if self.affine {
            let pv = xh.broadcast_mul(&v[0])?.broadcast_add(&v[1])?;
            y = Some(match y {
                Some(y) => (y + pv)?,
                None => pv,
            });
        }
        let tc = Cache {
            t: vec![t],
            ..Cache::default()
        };
        Ok((y, tc))
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
        let dx = self.vjp(p, c, b.dy, b.need_dx, &mut s.grad, ws)?;
        let (xh, r) = (c.get(0)?, c.get(1)?);
        let th = t.tc.t.first().and_then(Option::as_ref);
        if self.affine {
            s.hv.add(0, || {
                let mut w = (b.rdy * xh)?;
                if let Some(th) = th {
                    w = (w + (b.dy * th)?)?;
                }
                sum_rows(&w)
            })?;
            s.hv.add(1, || sum_rows(b.rdy))?;
        }
        if !b.need_dx {
            return Ok((dx, None));
        }
        let gh = self.gain(p, b.dy)?;
        let mut rgh = self.gain(p, b.rdy)?;
        if self.affine {
            rgh = (rgh + b.dy.broadcast_mul(&t.v[0])?)?;
        }
        let mut rdx = jop(xh, r, &rgh)?;
        if let (Some(xt), Some(th)) = (t.xt, th) {
            let alpha = mean(&(xh * xt)?)?;
            let jg = dx
                .as_ref()
                .map_or_else(|| jop(xh, r, &gh), |d| Ok(d.clone()))?;
            let a = jg.broadcast_mul(&(r * alpha)?)?;
            let q = (th.broadcast_mul(&mean(&(xh * &gh)?)?)?
                + xh.broadcast_mul(&mean(&(th * &gh)?)?)?)?;
            rdx = ((rdx - a)? - q.broadcast_mul(r)?)?;
        }
        Ok((dx, Some(rdx)))
    }

    fn jet(&self, p: &[Tensor], v: &[Tensor], x: &Jet, _: &mut Workspace) -> Result<Jet> {
        let xc = x.linear(|t| Ok(t.broadcast_sub(&mean(t)?)?))?;
        let var = xc.mul(&xc)?.linear(mean)?;
        let s = (var.primal()? + self.eps)?;
        let g = s.sqrt()?.recip()?;
        let g2 = g.sqr()?;
        let g3 = (&g2 * &g)?;
        let g5 = (&g3 * &g2)?;
        let g7 = (&g5 * &g2)?;
        let r = var.compose([
            Some(g),
            Some(g3.affine(-0.5, 0.0)?),
            Some(g5.affine(0.75, 0.0)?),
            Some(g7.affine(-15.0 / 8.0, 0.0)?),
        ])?;
        let xh = xc.mul(&r)?;
        if !self.affine {
            return Ok(xh);
        }
        let o = x.order;
        xh.mul(&Jet::param(&p[0], &v[0], o))?
            .add(&Jet::param(&p[1], &v[1], o))
    }
}
