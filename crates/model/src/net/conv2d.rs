//! `conv2d {out, kernel, stride, padding, bias, multiplier}`: a 2-d convolution, NCHW,
//! weight W `[out, in, k, k]`, bias `[out]` (cross-correlation, as PyTorch's `Conv2d`):
//!
//! ```text
//! y[n,o,i,j] = m Σ_{c,a,b} W[o,c,a,b] x_pad[n,c, s i + a, s j + b] + b[o]   =: m (x ⋆ W) + b
//! x̄ = m convT(ȳ, W)                                   (transposed convolution)
//! W̄[o,c,a,b] = m Σ_{n,i,j} ȳ[n,o,i,j] x_pad[n,c, s i + a, s j + b]
//!            = m (xᵀ ⋆_{dilation s} ȳᵀ)[c,o,a,b]          (batch and channel axes swapped)
//! b̄ = Σ_{n,i,j} ȳ
//! ẏ = m (ẋ ⋆ W + x ⋆ V) + ḃ
//! R{x̄} = m (convT(R{ȳ}, W) + convT(ȳ, V)),  R{W̄} = m (W̄(x, R{ȳ}) + W̄(ẋ, ȳ)),  R{b̄} = Σ R{ȳ}
//! jet: bilinear in x and W (Leibniz), plus the bias jet.
//! ```
//!
//! Output size H' = ⌊(H + 2p − k)/s⌋ + 1. The transposed convolution's output padding
//! restores H when s does not divide H + 2p − k. Parameterization: fan_in = in · k · k;
//! an input layer when it reads the data, hidden otherwise.

use candle_core::Tensor;

use super::{Back, Cache, Grads, Init, Jet, Layer, ParamShape, Sinks, Tan, Workspace};
use crate::{invalid, Result};

/// A 2-d convolution layer.
#[derive(Debug, Clone, PartialEq)]
pub struct Conv2d {
    pub out: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    pub bias: bool,
    pub multiplier: f64,
}

fn scale(t: Tensor, m: f64) -> Result<Tensor> {
    Ok(if m != 1.0 { t.affine(m, 0.0)? } else { t })
}

impl Conv2d {
    fn conv(&self, x: &Tensor, w: &Tensor) -> Result<Tensor> {
        Ok(x.conv2d(w, self.padding, self.stride, 1, 1)?)
    }

    /// convT(ȳ, W) with the input's spatial size `hw`.
    fn conv_t(&self, dy: &Tensor, w: &Tensor, hw: (usize, usize)) -> Result<Tensor> {
        let (s, p, k) = (self.stride, self.padding, self.kernel);
        let (ho, wo) = (dy.dim(2)?, dy.dim(3)?);
        let oph = hw.0 + 2 * p - k - (ho - 1) * s;
        let opw = hw.1 + 2 * p - k - (wo - 1) * s;
        if oph != opw {
            // candle's transposed convolution takes one output padding for both axes.
            let big = oph.max(opw);
            let t = dy.conv_transpose2d(w, p, big, s, 1)?;
            return Ok(t.narrow(2, 0, hw.0)?.narrow(3, 0, hw.1)?);
        }
        Ok(dy.conv_transpose2d(w, p, oph, s, 1)?)
    }

    /// Σ_{n,i,j} ȳ[n,o,i,j] x_pad[n,c, s i + a, s j + b] (`[out, in, k, k]`).
    fn wgrad(&self, x: &Tensor, dy: &Tensor) -> Result<Tensor> {
        let xt = x.transpose(0, 1)?.contiguous()?;
        let dt = dy.transpose(0, 1)?.contiguous()?;
        let g = xt.conv2d(&dt, self.padding, 1, self.stride, 1)?;
        let k = self.kernel;
        Ok(g.narrow(2, 0, k)?
            .narrow(3, 0, k)?
            .transpose(0, 1)?
            .contiguous()?)
    }

    fn bias4(b: &Tensor) -> Result<Tensor> {
        Ok(b.reshape((1, b.dim(0)?, 1, 1))?)
    }

    fn bias_grad(dy: &Tensor) -> Result<Tensor> {
        Ok(dy.sum(3)?.sum(2)?.sum(0)?)
    }
}

impl Layer for Conv2d {
    fn kind(&self) -> &'static str {
        "conv2d"
    }

    fn n_params(&self) -> usize {
        1 + usize::from(self.bias)
    }

    fn out_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        let &[_, h, w] = input else {
            return invalid(format!("conv2d needs inputs [C, H, W], got {input:?}"));
        };
        let (k, s, p) = (self.kernel, self.stride, self.padding);
        if k == 0 || s == 0 || h + 2 * p < k || w + 2 * p < k {
            return invalid(format!(
                "conv2d kernel {k} stride {s} padding {p} does not fit an input {h}×{w}"
            ));
        }
        Ok(vec![
            self.out,
            (h + 2 * p - k) / s + 1,
            (w + 2 * p - k) / s + 1,
        ])
    }

    fn param_shapes(&self, input: &[usize]) -> Result<Vec<ParamShape>> {
        let Some(&c) = input.first() else {
            return invalid("conv2d needs inputs [C, H, W]");
        };
        let k = self.kernel;
        let mut p = vec![("weight".to_string(), vec![self.out, c, k, k])];
        if self.bias {
            p.push(("bias".to_string(), vec![self.out]));
        }
        Ok(p)
    }

    fn init(&self, name: &str, shape: &[usize]) -> Init {
        if name == "bias" {
            Init::Bias
        } else {
            Init::Normal(1.0 / (shape[1..].iter().product::<usize>().max(1) as f64).sqrt())
        }
    }

    fn forward(&self, p: &[Tensor], x: &Tensor, _: &mut Workspace) -> Result<(Tensor, Cache)> {
        let mut y = scale(self.conv(x, &p[0])?, self.multiplier)?;
        if self.bias {
            y = y.broadcast_add(&Self::bias4(&p[1])?)?;
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
        let (m, x) = (self.multiplier, c.get(0)?);
        g.add(0, || scale(self.wgrad(x, dy)?, m))?;
        if self.bias {
            g.add(1, || Self::bias_grad(dy))?;
        }
        let hw = (x.dim(2)?, x.dim(3)?);
        need_dx
            .then(|| scale(self.conv_t(dy, &p[0], hw)?, m))
            .transpose()
    }

    fn jvp(
        &self,
        p: &[Tensor],
        v: &[Tensor],
        c: &Cache,
        xt: Option<&Tensor>,
        _: &mut Workspace,
    ) -> Result<(Option<Tensor>, Cache)> {
        let mut y = self.conv(c.get(0)?, &v[0])?;
        if let Some(xt) = xt {
            y = (y + self.conv(xt, &p[0])?)?;
        }
        y = scale(y, self.multiplier)?;
        if self.bias {
            y = y.broadcast_add(&Self::bias4(&v[1])?)?;
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
        let (m, x) = (self.multiplier, c.get(0)?);
        let dx = self.vjp(p, c, b.dy, b.need_dx, &mut s.grad, ws)?;
        s.hv.add(0, || {
            let mut w = self.wgrad(x, b.rdy)?;
            if let Some(xt) = t.xt {
                w = (w + self.wgrad(xt, b.dy)?)?;
            }
            scale(w, m)
        })?;
        if self.bias {
            s.hv.add(1, || Self::bias_grad(b.rdy))?;
        }
        let hw = (x.dim(2)?, x.dim(3)?);
        let rdx = b
            .need_dx
            .then(|| {
                let r = (self.conv_t(b.rdy, &p[0], hw)? + self.conv_t(b.dy, &t.v[0], hw)?)?;
                scale(r, m)
            })
            .transpose()?;
        Ok((dx, rdx))
    }

    fn jet(&self, p: &[Tensor], v: &[Tensor], x: &Jet, _: &mut Workspace) -> Result<Jet> {
        let m = self.multiplier;
        let w = Jet::param(&p[0], &v[0], x.order);
        let mut y = x.bilinear(&w, |a, w| scale(self.conv(a, w)?, m))?;
        if self.bias {
            let b = Jet::param(&p[1], &v[1], x.order).linear(Self::bias4)?;
            y = y.add(&b)?;
        }
        Ok(y)
    }
}
