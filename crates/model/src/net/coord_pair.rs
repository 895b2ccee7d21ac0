//! `coord_pair {fn}`: the per-coordinate symmetric units of Ahn et al. ("Learning
//! threshold neurons via the edge of stability", NeurIPS 2023, model (2)): for an input
//! with d features, 2d outputs φ(x_i + b) and φ(−x_i + b) with ONE shared scalar bias b
//! `[1]` and no weight (the first layer is the identity; a following bias-free `dense`
//! is the paper's second layer a⁺, a⁻):
//!
//! ```text
//! a = x + b,  c = −x + b,  y = [φ(a), φ(c)]                    (concatenated, last axis)
//! ȳ = [ȳ₁, ȳ₂],  x̄ = ȳ₁ ⊙ φ'(a) − ȳ₂ ⊙ φ'(c),  b̄ = Σ (ȳ₁ ⊙ φ'(a) + ȳ₂ ⊙ φ'(c))
//! direction (ḃ) with input tangent ẋ:  ȧ = ẋ + ḃ,  ċ = −ẋ + ḃ,  ẏ = [φ'(a) ȧ, φ'(c) ċ]
//! R{x̄} = R{ȳ₁} φ'(a) + ȳ₁ φ''(a) ȧ − R{ȳ₂} φ'(c) − ȳ₂ φ''(c) ċ
//! R{b̄} = Σ (R{ȳ₁} φ'(a) + ȳ₁ φ''(a) ȧ + R{ȳ₂} φ'(c) + ȳ₂ φ''(c) ċ)
//! jet: a, c affine in the jets of x and b; y by Faà di Bruno, concatenated per order.
//! ```
//!
//! Cache: φ'(a), φ'(c), and φ''(a), φ''(c) at order ≥ 2 (None when φ'' = 0).

use candle_core::{Tensor, D};

use super::{Back, Cache, Grads, Jet, Layer, ParamShape, Sinks, Tan, Workspace};
use crate::{invalid, Activation, Result};

/// Ahn et al.'s per-coordinate pair σ(x_i + b), σ(−x_i + b) with a shared scalar bias.
#[derive(Debug, Clone, PartialEq)]
pub struct CoordPair {
    pub f: Activation,
}

fn sum1(t: &Tensor) -> Result<Tensor> {
    Ok(t.sum_all()?.reshape(1)?)
}

/// (first half, second half) of the last axis.
fn halves(t: &Tensor) -> Result<(Tensor, Tensor)> {
    let n = t.dim(D::Minus1)? / 2;
    Ok((t.narrow(D::Minus1, 0, n)?, t.narrow(D::Minus1, n, n)?))
}

fn cat(a: &Tensor, c: &Tensor) -> Result<Tensor> {
    Ok(Tensor::cat(&[a, c], D::Minus1)?)
}

/// Concatenates two jet components of equal shape (`None` = zero).
fn cat_opt(l: &Option<Tensor>, r: &Option<Tensor>) -> Result<Option<Tensor>> {
    Ok(match (l, r) {
        (None, None) => None,
        (Some(l), Some(r)) => Some(cat(l, r)?),
        (Some(l), None) => Some(cat(l, &l.zeros_like()?)?),
        (None, Some(r)) => Some(cat(&r.zeros_like()?, r)?),
    })
}

/// ȧ = ẋ + ḃ and ċ = −ẋ + ḃ, broadcast to the shape of `like`.
fn tangents(xt: Option<&Tensor>, bt: &Tensor, like: &Tensor) -> Result<(Tensor, Tensor)> {
    let b = bt.broadcast_as(like.dims())?;
    Ok(match xt {
        Some(x) => ((x + &b)?, (x.neg()? + &b)?),
        None => (b.contiguous()?, b.contiguous()?),
    })
}

impl Layer for CoordPair {
    fn kind(&self) -> &'static str {
        "coord_pair"
    }

    fn n_params(&self) -> usize {
        1
    }

    fn out_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        let Some((&d, lead)) = input.split_last() else {
            return invalid("coord_pair needs an input with a feature axis");
        };
        let mut s = lead.to_vec();
        s.push(2 * d);
        Ok(s)
    }

    fn param_shapes(&self, input: &[usize]) -> Result<Vec<ParamShape>> {
        if input.is_empty() {
            return invalid("coord_pair needs an input with a feature axis");
        }
        Ok(vec![("bias".to_string(), vec![1])])
    }

    fn forward(&self, p: &[Tensor], x: &Tensor, ws: &mut Workspace) -> Result<(Tensor, Cache)> {
        let a = x.broadcast_add(&p[0])?;
        let c = x.neg()?.broadcast_add(&p[0])?;
        if ws.order == 0 {
            return Ok((
                cat(&self.f.forward(&a)?, &self.f.forward(&c)?)?,
                Cache::default(),
            ));
        }
        let (da, dc) = (self.f.derivs(&a, ws.order)?, self.f.derivs(&c, ws.order)?);
        let y = cat(&da.d0, &dc.d0)?;
        let cache = Cache {
            t: vec![Some(da.d1), Some(dc.d1), da.d2, dc.d2],
            ..Cache::default()
        };
        Ok((y, cache))
    }

    fn vjp(
        &self,
        _: &[Tensor],
        c: &Cache,
        dy: &Tensor,
        need_dx: bool,
        g: &mut Grads,
        _: &mut Workspace,
    ) -> Result<Option<Tensor>> {
        let (pa, pc) = (c.get(0)?, c.get(1)?);
        let (d1, d2) = halves(dy)?;
        let (ua, uc) = ((d1 * pa)?, (d2 * pc)?);
        g.add(0, || sum1(&(&ua + &uc)?))?;
        need_dx.then(|| Ok((ua - uc)?)).transpose()
    }

    fn jvp(
        &self,
        _: &[Tensor],
        v: &[Tensor],
        c: &Cache,
        xt: Option<&Tensor>,
        _: &mut Workspace,
    ) -> Result<(Option<Tensor>, Cache)> {
        let (pa, pc) = (c.get(0)?, c.get(1)?);
        let (ta, tc) = tangents(xt, &v[0], pa)?;
        Ok((Some(cat(&(ta * pa)?, &(tc * pc)?)?), Cache::default()))
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
        let (pa, pc) = (c.get(0)?, c.get(1)?);
        let (d1, d2) = halves(b.dy)?;
        let (r1, r2) = halves(b.rdy)?;
        let mut ra = (r1 * pa)?;
        let mut rc = (r2 * pc)?;
        if let (Some(Some(qa)), Some(Some(qc))) = (c.t.get(2), c.t.get(3)) {
            let (ta, tc) = tangents(t.xt, &t.v[0], pa)?;
            ra = (ra + (d1 * qa)?.mul(&ta)?)?;
            rc = (rc + (d2 * qc)?.mul(&tc)?)?;
        }
        s.hv.add(0, || sum1(&(&ra + &rc)?))?;
        let rdx = b
            .need_dx
            .then(|| Ok::<_, crate::Error>((ra - rc)?))
            .transpose()?;
        Ok((dx, rdx))
    }

    fn jet(&self, p: &[Tensor], v: &[Tensor], x: &Jet, _: &mut Workspace) -> Result<Jet> {
        let o = x.order;
        let bias = Jet::param(&p[0], &v[0], o);
        let a = x.add(&bias)?;
        let c = x.linear(|t| Ok(t.neg()?))?.add(&bias)?;
        let phi = |j: &Jet| -> Result<Jet> {
            let d = self.f.derivs(j.primal()?, o.max(1))?;
            j.compose([Some(d.d0), Some(d.d1), d.d2, d.d3])
        };
        let (ya, yc) = (phi(&a)?, phi(&c)?);
        let mut t: [Option<Tensor>; 4] = Default::default();
        for (k, slot) in t.iter_mut().enumerate() {
            *slot = cat_opt(&ya.t[k], &yc.t[k])?;
        }
        Ok(Jet {
            t,
            order: ya.order.max(yc.order),
        })
    }
}
