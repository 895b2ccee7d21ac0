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
//!
//! Max pooling on CPU f32/f64 tensors keeps, instead of the mask, the window position
//! e = a k + b of each first maximum (a u32 tensor `[n, c, H/k, W/k]`) and reads and
//! writes the window entries in one loop each: y = x[k i + ⌊e/k⌋, k j + e mod k], x̄ = ȳ
//! there and zero elsewhere (windows do not overlap). Other devices take the mask path;
//! both give the same values (tested below).

use candle_core::{DType, Device, Tensor, D};

use super::{Back, Cache, Grads, Jet, Layer, ParamShape, Sinks, Tan, Workspace};
use crate::host::{on_host, with_host, with_host_u32, Host};
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

/// The planes (n c) and sizes of a max pool's input, window k.
#[derive(Debug, Clone, Copy)]
struct Planes {
    planes: usize,
    h: usize,
    w: usize,
    k: usize,
}

impl Planes {
    fn of(dims: (usize, usize, usize, usize), k: usize) -> Self {
        let (n, c, h, w) = dims;
        Self {
            planes: n * c,
            h,
            w,
            k,
        }
    }

    /// (H/k, W/k).
    fn out(&self) -> (usize, usize) {
        (self.h / self.k, self.w / self.k)
    }

    /// The input offset (within a plane) of window (i, j)'s entry e.
    fn at(&self, i: usize, j: usize, e: u32) -> usize {
        let (a, b) = (e as usize / self.k, e as usize % self.k);
        (self.k * i + a) * self.w + self.k * j + b
    }
}

/// e = a k + b of the first maximum (row-major) of every window, `[planes, H/k, W/k]`.
fn first_max_at<T: Copy + PartialOrd>(x: &[T], g: Planes) -> Vec<u32> {
    let ((ho, wo), k) = (g.out(), g.k);
    let mut e = Vec::with_capacity(g.planes * ho * wo);
    for plane in x.chunks_exact(g.h * g.w) {
        for i in 0..ho {
            for j in 0..wo {
                let mut best = (0, plane[g.at(i, j, 0)]);
                for a in 0..k {
                    let row = &plane[(k * i + a) * g.w + k * j..][..k];
                    for (b, &v) in row.iter().enumerate() {
                        if v > best.1 {
                            best = ((a * k + b) as u32, v);
                        }
                    }
                }
                e.push(best.0);
            }
        }
    }
    e
}

/// t at each window's position e (`[planes, H/k, W/k]`).
fn pick_at<T: Copy>(t: &[T], e: &[u32], g: Planes) -> Vec<T> {
    let (ho, wo) = g.out();
    let mut y = Vec::with_capacity(e.len());
    for (plane, ep) in t.chunks_exact(g.h * g.w).zip(e.chunks_exact(ho * wo)) {
        for (ij, &e) in ep.iter().enumerate() {
            y.push(plane[g.at(ij / wo, ij % wo, e)]);
        }
    }
    y
}

/// ȳ placed at each window's position e, zero elsewhere (`[planes, H, W]`).
fn scatter_at<T: Copy + Default>(dy: &[T], e: &[u32], g: Planes) -> Vec<T> {
    let (ho, wo) = g.out();
    let mut x = vec![T::default(); g.planes * g.h * g.w];
    let parts = x.chunks_exact_mut(g.h * g.w).zip(dy.chunks_exact(ho * wo));
    for ((plane, dp), ep) in parts.zip(e.chunks_exact(ho * wo)) {
        for (ij, (&d, &e)) in dp.iter().zip(ep).enumerate() {
            plane[g.at(ij / wo, ij % wo, e)] = d;
        }
    }
    x
}

fn host_err<T>(what: &str, t: &Tensor) -> Result<T> {
    invalid(format!(
        "maxpool2d: {what} needs a CPU f32/f64 tensor, got {t:?}"
    ))
}

/// The first-maximum positions of x's windows (u32 `[n, c, H/k, W/k]`, host tensors).
fn host_first_max(x: &Tensor, k: usize) -> Result<Tensor> {
    let x = x.contiguous()?;
    let g = Planes::of(x.dims4()?, k);
    let (n, c, _, _) = x.dims4()?;
    let (ho, wo) = g.out();
    let e = with_host(&x, |h| match h {
        Host::F32(v) => first_max_at(v, g),
        Host::F64(v) => first_max_at(v, g),
    });
    match e {
        Some(e) => Ok(Tensor::from_vec(e, (n, c, ho, wo), &Device::Cpu)?),
        None => host_err("argmax", &x),
    }
}

/// t at the positions `e` (host tensors).
fn host_pick(e: &Tensor, t: &Tensor, k: usize) -> Result<Tensor> {
    let t = t.contiguous()?;
    let g = Planes::of(t.dims4()?, k);
    let y = with_host_u32(e, |e| {
        with_host(&t, |h| match h {
            Host::F32(v) => Tensor::from_vec(pick_at(v, e, g), e.len(), &Device::Cpu),
            Host::F64(v) => Tensor::from_vec(pick_at(v, e, g), e.len(), &Device::Cpu),
        })
    });
    match y.flatten() {
        Some(y) => Ok(y?.reshape(e.dims())?),
        None => host_err("pick", &t),
    }
}

/// ȳ at the positions `e`, zero elsewhere, as the input `[n, c, hw]` (host tensors).
fn host_scatter(e: &Tensor, dy: &Tensor, hw: (usize, usize), k: usize) -> Result<Tensor> {
    let dy = dy.contiguous()?;
    let (n, c, _, _) = dy.dims4()?;
    let g = Planes::of((n, c, hw.0, hw.1), k);
    let shape = (n, c, hw.0, hw.1);
    let x = with_host_u32(e, |e| {
        with_host(&dy, |h| match h {
            Host::F32(v) => Tensor::from_vec(scatter_at(v, e, g), shape, &Device::Cpu),
            Host::F64(v) => Tensor::from_vec(scatter_at(v, e, g), shape, &Device::Cpu),
        })
    });
    match x.flatten() {
        Some(x) => Ok(x?),
        None => host_err("scatter", &dy),
    }
}

/// Whether a max-pool cache holds host positions (u32) rather than a mask.
fn positions(m: &Tensor) -> bool {
    m.dtype() == DType::U32
}

/// M ȳ in the input layout from a cache's positions or mask.
fn back(m: &Tensor, dy: &Tensor, hw: (usize, usize), k: usize) -> Result<Tensor> {
    if positions(m) {
        host_scatter(m, dy, hw, k)
    } else {
        scatter(m, dy, hw, k)
    }
}

/// Σ_e M_e t_e from a cache's positions or mask.
fn select(m: &Tensor, t: &Tensor, k: usize) -> Result<Tensor> {
    if positions(m) {
        host_pick(m, t, k)
    } else {
        pick(m, t, k)
    }
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
        let mask = if on_host(x) {
            host_first_max(x, self.kernel)?
        } else {
            first_max_mask(&windows(x, self.kernel)?)?
        };
        let y = select(&mask, x, self.kernel)?;
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
            .then(|| back(c.get(0)?, dy, hw(c), self.kernel))
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
        let y = xt.map(|t| select(c.get(0)?, t, self.kernel)).transpose()?;
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
            Some(back(m, b.dy, hw(c), k)?),
            Some(back(m, b.rdy, hw(c), k)?),
        ))
    }

    fn jet(&self, _: &[Tensor], _: &[Tensor], x: &Jet, _: &mut Workspace) -> Result<Jet> {
        let (x0, k) = (x.primal()?, self.kernel);
        let mask = if on_host(x0) {
            host_first_max(x0, k)?
        } else {
            first_max_mask(&windows(x0, k)?)?
        };
        x.linear(|t| select(&mask, t, k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::normal_vec;

    fn vals(t: &Tensor) -> Vec<f64> {
        t.flatten_all()
            .and_then(|t| t.to_vec1())
            .expect("f64 values")
    }

    /// The host positions and the mask path agree exactly (selection and placement copy
    /// values), with ties (repeated values) and a dropped edge (H, W not multiples of k).
    #[test]
    fn host_positions_equal_the_mask_path() -> Result<()> {
        let (n, c, h, w, k) = (2, 3, 7, 8, 3);
        // Values rounded to halves: many ties inside windows.
        let x: Vec<f64> = normal_vec(5, n * c * h * w)
            .iter()
            .map(|v| (2.0 * v).round() / 2.0)
            .collect();
        let x = Tensor::from_vec(x, (n, c, h, w), &Device::Cpu)?;
        let t = Tensor::from_vec(normal_vec(6, n * c * h * w), (n, c, h, w), &Device::Cpu)?;
        let dy = Tensor::from_vec(normal_vec(7, n * c * 2 * 2), (n, c, 2, 2), &Device::Cpu)?;
        let (e, mask) = (host_first_max(&x, k)?, first_max_mask(&windows(&x, k)?)?);
        assert!(positions(&e) && !positions(&mask));
        for src in [&x, &t] {
            assert_eq!(vals(&select(&e, src, k)?), vals(&select(&mask, src, k)?));
        }
        assert_eq!(
            vals(&back(&e, &dy, (h, w), k)?),
            vals(&back(&mask, &dy, (h, w), k)?)
        );
        Ok(())
    }
}
