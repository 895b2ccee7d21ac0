//! `dense {out, bias, multiplier}`: an affine map on the last axis (works on `[n, d]`
//! and `[n, T, d]`), weight `[out, in]`, bias `[out]`.
//!
//! ```text
//! y   = m x Wᵀ + b
//! x̄   = m ȳ W,                 W̄ = m ȳᵀ x,            b̄ = Σ ȳ   (Σ over leading axes)
//! ẏ   = m (ẋ Wᵀ + x Vᵀ) + c                                  (direction (V, c))
//! R{x̄} = m (R{ȳ} W + ȳ V),   R{W̄} = m (R{ȳ}ᵀ x + ȳᵀ ẋ),  R{b̄} = Σ R{ȳ}
//! jet: y⁽ᵏ⁾ = m Σ_j C(k, j) x⁽ʲ⁾ (W + tV)⁽ᵏ⁻ʲ⁾ᵀ + b⁽ᵏ⁾      (bilinear in x and W)
//! ```
//!
//! (THEORY.md §8.) The multiplier is the abc-form's n^{−a} factor of the weight only, as
//! in [`crate::Mlp`]. Role in a parameterization: input layer when it reads the data,
//! readout when it is last, hidden otherwise.

use candle_core::Tensor;

use super::{Back, Cache, Grads, Init, Jet, Layer, ParamShape, Sinks, Tan, Workspace};
use crate::{invalid, Result};

/// An affine layer on the last axis.
#[derive(Debug, Clone, PartialEq)]
pub struct Dense {
    pub out: usize,
    pub bias: bool,
    pub multiplier: f64,
}

/// `x Wᵀ` on the last axis (`x`: `[…, in]`, `w`: `[out, in]`).
pub(crate) fn mm_t(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    let dims = x.dims();
    let k = dims[dims.len() - 1];
    let rows = x.elem_count() / k.max(1);
    let mut out = dims.to_vec();
    *out.last_mut().expect("at least one axis") = w.dim(0)?;
    Ok(x.reshape((rows, k))?.matmul(&w.t()?)?.reshape(out)?)
}

/// `ȳ W` on the last axis (`ȳ`: `[…, out]`, `w`: `[out, in]`).
pub(crate) fn mm(dy: &Tensor, w: &Tensor) -> Result<Tensor> {
    let dims = dy.dims();
    let k = dims[dims.len() - 1];
    let rows = dy.elem_count() / k.max(1);
    let mut out = dims.to_vec();
    *out.last_mut().expect("at least one axis") = w.dim(1)?;
    Ok(dy.reshape((rows, k))?.matmul(w)?.reshape(out)?)
}

/// `ȳᵀ x` summed over every leading axis (`[out, in]`).
pub(crate) fn outer(dy: &Tensor, x: &Tensor) -> Result<Tensor> {
    let (o, i) = (dy.dims()[dy.rank() - 1], x.dims()[x.rank() - 1]);
    let rows = dy.elem_count() / o.max(1);
    Ok(dy.reshape((rows, o))?.t()?.matmul(&x.reshape((rows, i))?)?)
}

/// Σ over every leading axis (`[…, k]` → `[k]`).
pub(crate) fn sum_rows(t: &Tensor) -> Result<Tensor> {
    let k = t.dims()[t.rank() - 1];
    let rows = t.elem_count() / k.max(1);
    crate::mlp::row_sum(&t.reshape((rows, k))?)
}

fn scale(t: Tensor, m: f64) -> Result<Tensor> {
    Ok(if m != 1.0 { t.affine(m, 0.0)? } else { t })
}

impl Layer for Dense {
    fn kind(&self) -> &'static str {
        "dense"
    }

    fn n_params(&self) -> usize {
        1 + usize::from(self.bias)
    }

    fn out_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        let Some((_, lead)) = input.split_last() else {
            return invalid("dense needs an input with a feature axis");
        };
        let mut s = lead.to_vec();
        s.push(self.out);
        Ok(s)
    }

    fn param_shapes(&self, input: &[usize]) -> Result<Vec<ParamShape>> {
        let Some(&d) = input.last() else {
            return invalid("dense needs an input with a feature axis");
        };
        let mut p = vec![("weight".to_string(), vec![self.out, d])];
        if self.bias {
            p.push(("bias".to_string(), vec![self.out]));
        }
        Ok(p)
    }

    fn init(&self, name: &str, shape: &[usize]) -> Init {
        if name == "bias" {
            Init::Bias
        } else {
            Init::Normal(1.0 / (shape[1].max(1) as f64).sqrt())
        }
    }

    fn forward(&self, p: &[Tensor], x: &Tensor, _: &mut Workspace) -> Result<(Tensor, Cache)> {
        let mut y = scale(mm_t(x, &p[0])?, self.multiplier)?;
        if self.bias {
            y = y.broadcast_add(&p[1])?;
        }
        Ok((y, Cache::of(vec![x.clone()])))
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
        let m = self.multiplier;
        g.add(0, || scale(outer(dy, c.get(0)?)?, m))?;
        if self.bias {
            g.add(1, || sum_rows(dy))?;
        }
        need_dx.then(|| scale(mm(dy, &p[0])?, m)).transpose()
    }

    fn jvp(
        &self,
        p: &[Tensor],
        v: &[Tensor],
        c: &Cache,
        xt: Option<&Tensor>,
        _: &mut Workspace,
    ) -> Result<(Option<Tensor>, Cache)> {
        let mut y = mm_t(c.get(0)?, &v[0])?;
        if let Some(xt) = xt {
            y = (y + mm_t(xt, &p[0])?)?;
        }
        y = scale(y, self.multiplier)?;
        if self.bias {
            y = y.broadcast_add(&v[1])?;
        }
        Ok((Some(y), Cache::default()))
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
        let m = self.multiplier;
        let dx = self.vjp(p, c, b.dy, b.need_dx, &mut s.grad, ws)?;
        s.hv.add(0, || {
            let mut w = outer(b.rdy, c.get(0)?)?;
            if let Some(xt) = t.xt {
                w = (w + outer(b.dy, xt)?)?;
            }
            scale(w, m)
        })?;
        if self.bias {
            s.hv.add(1, || sum_rows(b.rdy))?;
        }
        let rdx = b
            .need_dx
            .then(|| scale((mm(b.rdy, &p[0])? + mm(b.dy, &t.v[0])?)?, m))
            .transpose()?;
        Ok((dx, rdx))
    }

    fn jet(&self, p: &[Tensor], v: &[Tensor], x: &Jet, _: &mut Workspace) -> Result<Jet> {
        let m = self.multiplier;
        let w = Jet::param(&p[0], &v[0], x.order);
        let mut y = x.bilinear(&w, |a, w| scale(mm_t(a, w)?, m))?;
        if self.bias {
            y = y.add(&Jet::param(&p[1], &v[1], x.order))?;
        }
        Ok(y)
    }
}
