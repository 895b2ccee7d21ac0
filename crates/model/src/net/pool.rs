//! `avgpool2d {kernel}` and `maxpool2d {kernel}` on NCHW inputs, stride = kernel
//! (windows that do not fit at the bottom/right edge are dropped, as PyTorch).
//!
//! Both are written through the k² entries of each window, w[n,c,i,j,·]:
//!
//! ```text
//! avg:  y = (1/k²) Σ_e w_e                     linear: x̄ = ȳ/k² in every window entry
//! max:  y = Σ_e M_e w_e,  M = one-hot of the FIRST maximum of the window (row-major)
//!       x̄ = M ȳ, ẏ = Σ_e M_e ẇ_e, R{x̄} = M R{ȳ}, jets: y⁽ᵏ⁾ = Σ_e M_e w⁽ᵏ⁾_e
//! ```
//!
//! Max pooling is piecewise linear: away from ties M is locally constant, so its
//! second and third derivatives vanish; at a tie the derivative is that of the first
//! maximum (the tie convention, as PyTorch's CPU kernel). No parameters.

use candle_core::{DType, Tensor, D};

use super::{Back, Cache, Grads, Jet, Layer, ParamShape, Sinks, Tan, Workspace};
use crate::{invalid, Result};

/// Average pooling over k×k windows with stride k.
#[derive(Debug, Clone, PartialEq)]
pub struct AvgPool2d {
    pub kernel: usize,
}

/// Max pooling over k×k windows with stride k (ties: the first maximum).
#[derive(Debug, Clone, PartialEq)]
pub struct MaxPool2d {
    pub kernel: usize,
}

fn pooled_shape(kind: &str, k: usize, input: &[usize]) -> Result<Vec<usize>> {
    let &[c, h, w] = input else {
        return invalid(format!("{kind} needs inputs [C, H, W], got {input:?}"));
    };
    if k == 0 || h < k || w < k {
        return invalid(format!("{kind} kernel {k} does not fit an input {h}×{w}"));
    }
    Ok(vec![c, h / k, w / k])
}

/// `[n, c, H, W]` → the windows `[n, c, H/k, W/k, k²]`.
fn windows(x: &Tensor, k: usize) -> Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    let (ho, wo) = (h / k, w / k);
    let t = x.narrow(2, 0, ho * k)?.narrow(3, 0, wo * k)?;
    Ok(t.reshape((n, c, ho, k, wo, k))?
        .permute((0, 1, 2, 4, 3, 5))?
        .reshape((n, c, ho, wo, k * k))?)
}

/// The inverse of [`windows`], zero at the dropped edge (`hw`: the input's H, W).
fn unwindows(t: &Tensor, k: usize, hw: (usize, usize)) -> Result<Tensor> {
    let (n, c, ho, wo, _) = t.dims5()?;
    let x = t
        .reshape((n, c, ho, wo, k, k))?
        .permute((0, 1, 2, 4, 3, 5))?
        .reshape((n, c, ho * k, wo * k))?;
    Ok(x.pad_with_zeros(2, 0, hw.0 - ho * k)?
        .pad_with_zeros(3, 0, hw.1 - wo * k)?)
}

fn avg(x: &Tensor, k: usize) -> Result<Tensor> {
    Ok(windows(x, k)?.mean(D::Minus1)?)
}

/// x̄ of the average pool.
fn avg_back(dy: &Tensor, k: usize, hw: (usize, usize)) -> Result<Tensor> {
    let (n, c, ho, wo) = dy.dims4()?;
    let e = dy
        .affine(1.0 / (k * k) as f64, 0.0)?
        .unsqueeze(4)?
        .broadcast_as((n, c, ho, wo, k * k))?
        .contiguous()?;
    unwindows(&e, k, hw)
}

fn hw(c: &Cache) -> (usize, usize) {
    (c.shape[2], c.shape[3])
}

fn shape_cache(x: &Tensor) -> Cache {
    Cache {
        shape: x.dims().to_vec(),
        ..Cache::default()
    }
}

impl Layer for AvgPool2d {
    fn kind(&self) -> &'static str {
        "avgpool2d"
    }

    fn n_params(&self) -> usize {
        0
    }

    fn out_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        pooled_shape("avgpool2d", self.kernel, input)
    }

    fn param_shapes(&self, _: &[usize]) -> Result<Vec<ParamShape>> {
        Ok(vec![])
    }

    fn forward(&self, _: &[Tensor], x: &Tensor, _: &mut Workspace) -> Result<(Tensor, Cache)> {
        Ok((avg(x, self.kernel)?, shape_cache(x)))
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
            .then(|| avg_back(dy, self.kernel, hw(c)))
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
        let y = xt.map(|t| avg(t, self.kernel)).transpose()?;
        Ok((y, Cache::default()))
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
        let k = self.kernel;
        Ok((
            Some(avg_back(b.dy, k, hw(c))?),
            Some(avg_back(b.rdy, k, hw(c))?),
        ))
    }

    fn jet(&self, _: &[Tensor], _: &[Tensor], x: &Jet, _: &mut Workspace) -> Result<Jet> {
        x.linear(|t| avg(t, self.kernel))
    }
}

/// The one-hot mask of the first maximum of each window (`[n, c, H/k, W/k, k²]`).
fn first_max_mask(win: &Tensor) -> Result<Tensor> {
    let mx = win.max_keepdim(D::Minus1)?;
    let eq = win.broadcast_eq(&mx)?.to_dtype(DType::F64)?;
    // Keep the first: entries where the running count of maxima is exactly 1.
    let first = eq.cumsum(D::Minus1)?.eq(1.0)?.to_dtype(DType::F64)?;
    Ok((eq * first)?.to_dtype(win.dtype())?)
}

/// Σ_e M_e t_e for window entries t.
fn pick(mask: &Tensor, x: &Tensor, k: usize) -> Result<Tensor> {
    Ok((windows(x, k)? * mask)?.sum(D::Minus1)?)
}

/// x̄ = M ȳ placed back in the input layout.
fn scatter(mask: &Tensor, dy: &Tensor, hw: (usize, usize), k: usize) -> Result<Tensor> {
    unwindows(&mask.broadcast_mul(&dy.unsqueeze(4)?)?, k, hw)
}

impl Layer for MaxPool2d {
    fn kind(&self) -> &'static str {
        "maxpool2d"
    }

    fn n_params(&self) -> usize {
        0
    }

    fn out_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        pooled_shape("maxpool2d", self.kernel, input)
    }

    fn param_shapes(&self, _: &[usize]) -> Result<Vec<ParamShape>> {
        Ok(vec![])
    }

    fn forward(&self, _: &[Tensor], x: &Tensor, _: &mut Workspace) -> Result<(Tensor, Cache)> {
        let mask = first_max_mask(&windows(x, self.kernel)?)?;
        let y = pick(&mask, x, self.kernel)?;
        let mut c = shape_cache(x);
        c.t.push(Some(mask));
        Ok((y, c))
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
            .then(|| scatter(c.get(0)?, dy, hw(c), self.kernel))
            .transpose()
    }

    fn jvp(
        &self,
        _: &[Tensor],
        _: &[Tensor],
        c: &Cache,
        xt: Option<&Tensor>,
        _: &mut Workspace,
    ) -> Result<(Option<Tensor>, Cache)> {
        let y = xt.map(|t| pick(c.get(0)?, t, self.kernel)).transpose()?;
        Ok((y, Cache::default()))
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
        let (m, k) = (c.get(0)?, self.kernel);
        Ok((
            Some(scatter(m, b.dy, hw(c), k)?),
            Some(scatter(m, b.rdy, hw(c), k)?),
        ))
    }

    fn jet(&self, _: &[Tensor], _: &[Tensor], x: &Jet, _: &mut Workspace) -> Result<Jet> {
        let mask = first_max_mask(&windows(x.primal()?, self.kernel)?)?;
        x.linear(|t| pick(&mask, t, self.kernel))
    }
}
