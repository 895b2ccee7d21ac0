//! `symmetric_pair {out, fn}`: the symmetric unit of Ahn et al. ("Learning threshold
//! neurons via the edge of stability", NeurIPS 2023), weight W `[out, in]` and ONE shared
//! scalar bias b `[1]`:
//!
//! ```text
//! u = x Wᵀ,  a = u + b,  c = −u + b,  y = φ(a) − φ(c)
//! s = φ'(a) + φ'(c),  d = φ'(a) − φ'(c)
//! ū = ȳ ⊙ s,  x̄ = ū W,  W̄ = ūᵀ x,  b̄ = Σ ȳ ⊙ d            (Σ over every entry)
//! u̇ = ẋ Wᵀ + x Vᵀ,  ẏ = u̇ ⊙ s + ḃ d                       (direction (V, ḃ))
//! ȧ = u̇ + ḃ,  ċ = −u̇ + ḃ,  R{s} = φ''(a) ȧ + φ''(c) ċ,  R{d} = φ''(a) ȧ − φ''(c) ċ
//! R{ū} = R{ȳ} ⊙ s + ȳ ⊙ R{s},  R{x̄} = R{ū} W + ū V,  R{W̄} = R{ū}ᵀ x + ūᵀ ẋ,
//! R{b̄} = Σ (R{ȳ} ⊙ d + ȳ ⊙ R{d})
//! jet: a, c are affine in the jets of u (bilinear in x and W) and b; y by Faà di Bruno.
//! ```
//!
//! Cache: x, φ'(a), φ'(c), and φ''(a), φ''(c) at order ≥ 2; tangent cache: u̇.

use candle_core::Tensor;

use super::dense::{mm, mm_t, outer};
use super::{Back, Cache, Grads, Jet, Layer, ParamShape, Sinks, Tan, Workspace};
use crate::{invalid, Activation, Result};

/// Ahn et al.'s symmetric pair with a shared scalar bias.
#[derive(Debug, Clone, PartialEq)]
pub struct SymmetricPair {
    pub out: usize,
    pub f: Activation,
}

fn sum1(t: &Tensor) -> Result<Tensor> {
    Ok(t.sum_all()?.reshape(1)?)
}

impl SymmetricPair {
    /// φ'' terms (R{s}, R{d}) for the tangents ȧ = u̇ + ḃ, ċ = −u̇ + ḃ (None if φ'' = 0).
    fn second(&self, c: &Cache, ut: &Tensor, bt: &Tensor) -> Result<Option<(Tensor, Tensor)>> {
        let (Some(Some(pa)), Some(Some(pc))) = (c.t.get(3), c.t.get(4)) else {
            return Ok(None);
        };
        let ta = (ut.broadcast_add(bt)? * pa)?;
        let tc = (ut.neg()?.broadcast_add(bt)? * pc)?;
        Ok(Some(((&ta + &tc)?, (ta - tc)?)))
    }
}

impl Layer for SymmetricPair {
    fn kind(&self) -> &'static str {
        "symmetric_pair"
    }

    fn n_params(&self) -> usize {
        2
    }

    fn out_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        let Some((_, lead)) = input.split_last() else {
            return invalid("symmetric_pair needs an input with a feature axis");
        };
        let mut s = lead.to_vec();
        s.push(self.out);
        Ok(s)
    }

    fn param_shapes(&self, input: &[usize]) -> Result<Vec<ParamShape>> {
        let Some(&d) = input.last() else {
            return invalid("symmetric_pair needs an input with a feature axis");
        };
        Ok(vec![
            ("weight".to_string(), vec![self.out, d]),
            ("bias".to_string(), vec![1]),
        ])
    }

    fn forward(&self, p: &[Tensor], x: &Tensor, ws: &mut Workspace) -> Result<(Tensor, Cache)> {
        let u = mm_t(x, &p[0])?;
        let a = u.broadcast_add(&p[1])?;
        let c = u.neg()?.broadcast_add(&p[1])?;
        if ws.order == 0 {
            return Ok((
                (self.f.forward(&a)? - self.f.forward(&c)?)?,
                Cache::default(),
            ));
        }
        let (da, dc) = (self.f.derivs(&a, ws.order)?, self.f.derivs(&c, ws.order)?);
        let y = (da.d0 - dc.d0)?;
        let cache = Cache {
            t: vec![Some(x.clone()), Some(da.d1), Some(dc.d1), da.d2, dc.d2],
            ..Cache::default()
        };
        Ok((y, cache))
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
        let (pa, pc) = (c.get(1)?, c.get(2)?);
        let du = (dy * (pa + pc)?)?;
        g.add(0, || outer(&du, c.get(0)?))?;
        g.add(1, || sum1(&(dy * (pa - pc)?)?))?;
        need_dx.then(|| mm(&du, &p[0])).transpose()
    }

    fn jvp(
        &self,
        p: &[Tensor],
        v: &[Tensor],
        c: &Cache,
        xt: Option<&Tensor>,
        _: &mut Workspace,
    ) -> Result<(Option<Tensor>, Cache)> {
        let (pa, pc) = (c.get(1)?, c.get(2)?);
        let mut ut = mm_t(c.get(0)?, &v[0])?;
        if let Some(xt) = xt {
            ut = (ut + mm_t(xt, &p[0])?)?;
        }
        let y = ((&ut * (pa + pc)?)? + (pa - pc)?.broadcast_mul(&v[1])?)?;
        Ok((Some(y), Cache::of(vec![ut])))
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
        let (pa, pc) = (c.get(1)?, c.get(2)?);
        let (sm, df) = ((pa + pc)?, (pa - pc)?);
        let du = (b.dy * &sm)?;
        let mut rdu = (b.rdy * &sm)?;
        let mut rdb = (b.rdy * &df)?;
        if let Some((rs, rd)) = self.second(c, t.tc.get(0)?, &t.v[1])? {
            rdu = (rdu + (b.dy * rs)?)?;
            rdb = (rdb + (b.dy * rd)?)?;
        }
        s.hv.add(0, || {
            let mut w = outer(&rdu, c.get(0)?)?;
            if let Some(xt) = t.xt {
                w = (w + outer(&du, xt)?)?;
            }
            Ok(w)
        })?;
        s.hv.add(1, || sum1(&rdb))?;
        let rdx = b
            .need_dx
            .then(|| Ok::<_, crate::Error>((mm(&rdu, &p[0])? + mm(&du, &t.v[0])?)?))
            .transpose()?;
        Ok((dx, rdx))
    }

    fn jet(&self, p: &[Tensor], v: &[Tensor], x: &Jet, _: &mut Workspace) -> Result<Jet> {
        let o = x.order;
        let u = x.bilinear(&Jet::param(&p[0], &v[0], o), mm_t)?;
        let bias = Jet::param(&p[1], &v[1], o);
        let a = u.add(&bias)?;
        let c = u.linear(|t| Ok(t.neg()?))?.add(&bias)?;
        let phi = |j: &Jet| -> Result<Jet> {
            let d = self.f.derivs(j.primal()?, o.max(1))?;
            j.compose([Some(d.d0), Some(d.d1), d.d2, d.d3])
        };
        phi(&a)?.add(&phi(&c)?.linear(|t| Ok(t.neg()?))?)
    }
}
