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
//! Output size H' = ⌊(H + 2p − k)/s⌋ + 1. Parameterization: fan_in = in · k · k; an input
//! layer when it reads the data, hidden otherwise.
//!
//! Two implementations of the same rules. On CPU f32/f64 tensors every product is one
//! matrix product on the im2col columns (`im2col.rs`), cols = im2col(x) `[in k², n H' W']`
//! and ȳ' = ȳ as `[out, n H' W']`:
//!
//! ```text
//! y = m W cols,   W̄ = m ȳ' colsᵀ,   x̄ = m col2im(Wᵀ ȳ'),   b̄ = Σ_columns ȳ'
//! ```
//!
//! with W as `[out, in k²]`; the forward pass caches cols(x) and the tangent pass cols(ẋ),
//! so the gradient, H v and the jets build each column matrix once. On other devices
//! (CUDA) candle's `conv2d`/`conv_transpose2d` (the transposed convolution's output padding
//! restores H when s does not divide H + 2p − k; W̄ as a convolution with the batch and
//! channel axes swapped). Both agree to rounding (tested below).

use candle_core::{Device, Tensor};

use super::im2col::{col2im, im2col, Geom};
use super::{Back, Cache, Grads, Init, Jet, Layer, ParamShape, Sinks, Tan, Workspace};
use crate::host::{on_host, with_host, Host};
use crate::{invalid, Result};

/// Elements of the `[in k², block H' W']` temporary of x̄ (4 MB in f32): x̄ is
/// computed over blocks of samples of about this size.
const DX_BLOCK_ELEMS: usize = 1 << 20;

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

/// (x, cols(x)) when the forward pass took the im2col path (its cache holds the columns).
fn host_cache(c: &Cache) -> Result<Option<(&Tensor, &Tensor)>> {
    Ok(match c.t.get(1) {
        Some(Some(cols)) => Some((c.get(0)?, cols)),
        _ => None,
    })
}

/// `a + b` where `None` is zero.
fn add_opt(a: Option<Tensor>, b: Tensor) -> Result<Tensor> {
    Ok(match a {
        Some(a) => (a + b)?,
        None => b,
    })
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

/// candle's convolutions (every device; the CUDA path).
impl Conv2d {
    fn forward_candle(&self, p: &[Tensor], x: &Tensor) -> Result<(Tensor, Cache)> {
        let mut y = scale(self.conv(x, &p[0])?, self.multiplier)?;
        if self.bias {
            y = y.broadcast_add(&Self::bias4(&p[1])?)?;
        }
        Ok((y, Cache::of(vec![x.clone()])))
    }

    fn vjp_candle(
        &self,
        p: &[Tensor],
        c: &Cache,
        dy: &Tensor,
        need_dx: bool,
        g: &mut Grads,
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

    fn jvp_candle(
        &self,
        p: &[Tensor],
        v: &[Tensor],
        c: &Cache,
        xt: Option<&Tensor>,
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

    fn tangent_vjp_candle(
        &self,
        p: &[Tensor],
        c: &Cache,
        t: Tan,
        b: Back,
        s: &mut Sinks,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (m, x) = (self.multiplier, c.get(0)?);
        let dx = self.vjp_candle(p, c, b.dy, b.need_dx, &mut s.grad)?;
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

    fn jet_candle(&self, p: &[Tensor], v: &[Tensor], x: &Jet) -> Result<Jet> {
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

/// The im2col path (CPU f32/f64; see the module header).
impl Conv2d {
    fn geom(&self, x: &Tensor) -> Result<Geom> {
        let (n, c, h, w) = x.dims4()?;
        let (k, s, p) = (self.kernel, self.stride, self.padding);
        Ok(Geom {
            n,
            c,
            h,
            w,
            k,
            s,
            p,
        })
    }

    /// im2col(x) `[in k², n H' W']`.
    fn cols(&self, x: &Tensor) -> Result<Tensor> {
        let g = self.geom(x)?;
        let x = x.contiguous()?;
        let shape = (g.taps(), g.n * g.pix());
        let t = with_host(&x, |h| match h {
            Host::F32(v) => Tensor::from_vec(im2col(v, &g), shape, &Device::Cpu),
            Host::F64(v) => Tensor::from_vec(im2col(v, &g), shape, &Device::Cpu),
        });
        match t {
            Some(t) => Ok(t?),
            None => invalid(format!(
                "conv2d: im2col needs a CPU f32/f64 tensor, got {x:?}"
            )),
        }
    }

    /// col2im(d) `[n, in, H, W]` for an input of geometry `g`.
    fn col2im(&self, d: &Tensor, g: &Geom) -> Result<Tensor> {
        let d = d.contiguous()?;
        let shape = (g.n, g.c, g.h, g.w);
        let t = with_host(&d, |h| match h {
            Host::F32(v) => Tensor::from_vec(col2im(v, g), shape, &Device::Cpu),
            Host::F64(v) => Tensor::from_vec(col2im(v, g), shape, &Device::Cpu),
        });
        match t {
            Some(t) => Ok(t?),
            None => invalid(format!(
                "conv2d: col2im needs a CPU f32/f64 tensor, got {d:?}"
            )),
        }
    }

    /// ȳ `[n, out, H', W']` as ȳ' `[out, n H' W']`.
    fn rows(dy: &Tensor) -> Result<Tensor> {
        let (n, o, ho, wo) = dy.dims4()?;
        Ok(dy
            .transpose(0, 1)?
            .contiguous()?
            .reshape((o, n * ho * wo))?)
    }

    /// `[out, n H' W']` back to `[n, out, H', W']` for an input of geometry `g`.
    fn unrows(&self, y: &Tensor, g: &Geom) -> Result<Tensor> {
        let y = y.reshape((self.out, g.n, g.ho(), g.wo()))?;
        Ok(y.transpose(0, 1)?.contiguous()?)
    }

    /// m W as `[out, in k²]`.
    fn wmat(&self, w: &Tensor) -> Result<Tensor> {
        let taps = w.elem_count() / self.out.max(1);
        scale(w.reshape((self.out, taps))?, self.multiplier)
    }

    /// m Σ_r ȳ'_r colsᵣᵀ as `[out, in, k, k]`.
    fn wgrad_host(&self, terms: &[(&Tensor, &Tensor)], w: &Tensor) -> Result<Tensor> {
        let mut acc = None;
        for (dyr, cols) in terms {
            acc = Some(add_opt(acc, dyr.matmul(&cols.t()?)?)?);
        }
        match acc {
            Some(a) => scale(a.reshape(w.dims())?, self.multiplier),
            None => Ok(w.zeros_like()?),
        }
    }

    /// col2im(Σ_r (m W_r)ᵀ ȳ'_r) for an input of geometry `g`, as one product
    /// [m W_1; m W_2; …]ᵀ [ȳ'_1; ȳ'_2; …] per block of samples.
    fn dx_host(&self, terms: &[(&Tensor, &Tensor)], g: &Geom) -> Result<Tensor> {
        let block = (DX_BLOCK_ELEMS / (g.taps() * g.pix()).max(1)).max(1);
        self.dx_blocks(terms, g, block)
    }

    /// [`Conv2d::dx_host`] over blocks of `block` samples: the `[in k², block H' W']`
    /// temporary stays small and is recycled by the allocator (no fresh pages per pass).
    fn dx_blocks(&self, terms: &[(&Tensor, &Tensor)], g: &Geom, block: usize) -> Result<Tensor> {
        let w = terms
            .iter()
            .map(|(w, _)| self.wmat(w))
            .collect::<Result<Vec<_>>>()?;
        let d: Vec<&Tensor> = terms.iter().map(|(_, d)| *d).collect();
        let (w, d) = match (w.as_slice(), d.as_slice()) {
            ([w], [d]) => (w.clone(), (*d).clone()),
            _ => (Tensor::cat(&w, 0)?, Tensor::cat(&d, 0)?),
        };
        let wt = w.t()?;
        let mut parts = Vec::with_capacity(g.n.div_ceil(block));
        for n0 in (0..g.n).step_by(block.max(1)) {
            let nb = block.min(g.n - n0);
            let db = d.narrow(1, n0 * g.pix(), nb * g.pix())?;
            let gb = Geom { n: nb, ..*g };
            parts.push(self.col2im(&wt.matmul(&db)?, &gb)?);
        }
        Ok(match parts.as_slice() {
            [one] => one.clone(),
            _ => Tensor::cat(&parts, 0)?,
        })
    }

    fn forward_host(&self, p: &[Tensor], x: &Tensor) -> Result<(Tensor, Cache)> {
        let (g, cols) = (self.geom(x)?, self.cols(x)?);
        let mut y = self.unrows(&self.wmat(&p[0])?.matmul(&cols)?, &g)?;
        if self.bias {
            y = y.broadcast_add(&Self::bias4(&p[1])?)?;
        }
        Ok((y, Cache::of(vec![x.clone(), cols])))
    }

    /// Adds W̄ and b̄ for ȳ' into `g`; returns x̄ when `need_dx`.
    fn back_host(
        &self,
        w: &Tensor,
        (x, cols): (&Tensor, &Tensor),
        dyr: &Tensor,
        need_dx: bool,
        g: &mut Grads,
    ) -> Result<Option<Tensor>> {
        g.add(0, || self.wgrad_host(&[(dyr, cols)], w))?;
        if self.bias {
            g.add(1, || Ok(dyr.sum(1)?))?;
        }
        need_dx
            .then(|| self.dx_host(&[(w, dyr)], &self.geom(x)?))
            .transpose()
    }

    /// ẏ and the tangent cache cols(ẋ).
    fn jvp_host(
        &self,
        p: &[Tensor],
        v: &[Tensor],
        (x, cols): (&Tensor, &Tensor),
        xt: Option<&Tensor>,
    ) -> Result<(Option<Tensor>, Cache)> {
        let mut y = self.wmat(&v[0])?.matmul(cols)?;
        let mut tc = Cache::default();
        if let Some(xt) = xt {
            let ct = self.cols(xt)?;
            y = (y + self.wmat(&p[0])?.matmul(&ct)?)?;
            tc = Cache::of(vec![ct]);
        }
        let mut y = self.unrows(&y, &self.geom(x)?)?;
        if self.bias {
            y = y.broadcast_add(&Self::bias4(&v[1])?)?;
        }
        Ok((Some(y), tc))
    }

    fn tangent_vjp_host(
        &self,
        p: &[Tensor],
        xc: (&Tensor, &Tensor),
        t: Tan,
        b: Back,
        s: &mut Sinks,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (dyr, rdyr) = (Self::rows(b.dy)?, Self::rows(b.rdy)?);
        let dx = self.back_host(&p[0], xc, &dyr, b.need_dx, &mut s.grad)?;
        let ct = match (t.xt, t.tc.t.first()) {
            (Some(_), Some(Some(ct))) => Some(ct.clone()),
            (Some(xt), _) => Some(self.cols(xt)?),
            (None, _) => None,
        };
        s.hv.add(0, || match &ct {
            Some(ct) => self.wgrad_host(&[(&rdyr, xc.1), (&dyr, ct)], &p[0]),
            None => self.wgrad_host(&[(&rdyr, xc.1)], &p[0]),
        })?;
        if self.bias {
            s.hv.add(1, || Ok(rdyr.sum(1)?))?;
        }
        let rdx = b
            .need_dx
            .then(|| self.dx_host(&[(&p[0], &rdyr), (&t.v[0], &dyr)], &self.geom(xc.0)?))
            .transpose()?;
        Ok((dx, rdx))
    }

    /// y⁽ᵏ⁾ = m (k V cols(x⁽ᵏ⁻¹⁾) + W cols(x⁽ᵏ⁾)) + b⁽ᵏ⁾ (Leibniz; W is linear in t).
    fn jet_host(&self, p: &[Tensor], v: &[Tensor], x: &Jet) -> Result<Jet> {
        let order = x.order.min(3);
        let g = self.geom(x.primal()?)?;
        let mut cols: [Option<Tensor>; 4] = Default::default();
        for (c, xk) in cols.iter_mut().zip(&x.t).take(order + 1) {
            *c = xk.as_ref().map(|xk| self.cols(xk)).transpose()?;
        }
        let (w, vm) = (self.wmat(&p[0])?, self.wmat(&v[0])?);
        let mut t: [Option<Tensor>; 4] = Default::default();
        for k in 0..=order {
            let mut acc = None;
            if let Some(c) = cols[..k].last().and_then(Option::as_ref) {
                acc = Some(scale(vm.matmul(c)?, k as f64)?);
            }
            if let Some(c) = &cols[k] {
                acc = Some(add_opt(acc, w.matmul(c)?)?);
            }
            t[k] = acc.map(|a| self.unrows(&a, &g)).transpose()?;
        }
        let mut y = Jet { t, order: x.order };
        if self.bias {
            let b = Jet::param(&p[1], &v[1], x.order).linear(Self::bias4)?;
            y = y.add(&b)?;
        }
        Ok(y)
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
        if on_host(x) {
            self.forward_host(p, x)
        } else {
            self.forward_candle(p, x)
        }
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
        match host_cache(c)? {
            Some(xc) => self.back_host(&p[0], xc, &Self::rows(dy)?, need_dx, g),
            None => self.vjp_candle(p, c, dy, need_dx, g),
        }
    }

    fn jvp(
        &self,
        p: &[Tensor],
        v: &[Tensor],
        c: &Cache,
        xt: Option<&Tensor>,
        _: &mut Workspace,
    ) -> Result<(Option<Tensor>, Cache)> {
        match host_cache(c)? {
            Some(xc) => self.jvp_host(p, v, xc, xt),
            None => self.jvp_candle(p, v, c, xt),
        }
    }

    fn tangent_vjp(
        &self,
        p: &[Tensor],
        c: &Cache,
        t: Tan,
        b: Back,
        s: &mut Sinks,
        _: &mut Workspace,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        match host_cache(c)? {
            Some(xc) => self.tangent_vjp_host(p, xc, t, b, s),
            None => self.tangent_vjp_candle(p, c, t, b, s),
        }
    }

    fn jet(&self, p: &[Tensor], v: &[Tensor], x: &Jet, _: &mut Workspace) -> Result<Jet> {
        if on_host(x.primal()?) {
            self.jet_host(p, v, x)
        } else {
            self.jet_candle(p, v, x)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::normal_vec;

    fn rand(seed: u64, shape: &[usize]) -> Tensor {
        let n = shape.iter().product();
        Tensor::from_vec(normal_vec(seed, n), shape, &Device::Cpu).expect("tensor")
    }

    fn vals(t: &Tensor) -> Vec<f64> {
        t.flatten_all()
            .and_then(|t| t.to_vec1())
            .expect("f64 values")
    }

    /// max |a − b| ≤ 1e-12 · max(1, max |b|), same shapes.
    fn close(a: &Tensor, b: &Tensor, what: &str) {
        assert_eq!(a.dims(), b.dims(), "{what}: shapes");
        let (a, b) = (vals(a), vals(b));
        let big = b.iter().fold(1.0f64, |m, x| m.max(x.abs()));
        let err = a
            .iter()
            .zip(&b)
            .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
        assert!(
            err <= 1e-12 * big,
            "{what}: max error {err:e} (scale {big})"
        );
    }

    fn close_all(a: &[Option<Tensor>], b: &[Option<Tensor>], what: &str) {
        assert_eq!(a.len(), b.len(), "{what}");
        for (i, (a, b)) in a.iter().zip(b).enumerate() {
            match (a, b) {
                (Some(a), Some(b)) => close(a, b, &format!("{what}[{i}]")),
                (None, None) => {}
                _ => panic!("{what}[{i}]: present on one path only"),
            }
        }
    }

    /// Every rule of the im2col path against candle's convolutions, f64, stride 2,
    /// padding 1 (the candle path is taken when the cache holds no columns).
    #[test]
    fn im2col_path_equals_candle_convolutions() -> Result<()> {
        let cases = [
            (3, 2, 7, 6, 4, 3, true, 1.0),
            (2, 3, 8, 8, 5, 3, false, 0.5),
            (2, 1, 5, 9, 3, 4, true, 2.0),
        ];
        let mut ws = Workspace::new(2);
        for (i, &(n, c, h, w, out, k, bias, m)) in cases.iter().enumerate() {
            let l = Conv2d {
                out,
                kernel: k,
                stride: 2,
                padding: 1,
                bias,
                multiplier: m,
            };
            let seed = 100 * i as u64;
            let shapes: Vec<Vec<usize>> = l
                .param_shapes(&[c, h, w])?
                .into_iter()
                .map(|s| s.1)
                .collect();
            let p: Vec<Tensor> = shapes.iter().zip(seed..).map(|(s, i)| rand(i, s)).collect();
            let v: Vec<Tensor> = shapes
                .iter()
                .zip(seed + 10..)
                .map(|(s, i)| rand(i, s))
                .collect();
            let x = rand(seed + 20, &[n, c, h, w]);
            let xs: Vec<Tensor> = (21..24).map(|j| rand(seed + j, &[n, c, h, w])).collect();
            let (yh, ch) = l.forward_host(&p, &x)?;
            let (yc, cc) = l.forward_candle(&p, &x)?;
            close(&yh, &yc, "forward");
            let (dy, rdy) = (rand(seed + 30, yh.dims()), rand(seed + 31, yh.dims()));
            let np = p.len();
            let (mut gh, mut gc) = (vec![None; np], vec![None; np]);
            let dxh = l.vjp(&p, &ch, &dy, true, &mut Grads::new(&mut gh), &mut ws)?;
            let dxc = l.vjp(&p, &cc, &dy, true, &mut Grads::new(&mut gc), &mut ws)?;
            close_all(&[dxh], std::slice::from_ref(&dxc), "x̄");
            let xc = host_cache(&ch)?.expect("host cache");
            let dyr = Conv2d::rows(&dy)?;
            let one = l.dx_blocks(&[(&p[0], &dyr)], &l.geom(xc.0)?, 1)?;
            close_all(&[Some(one)], &[dxc], "x̄ by blocks of one sample");
            close_all(&gh, &gc, "p̄");
            let (th, tch) = l.jvp(&p, &v, &ch, Some(&xs[0]), &mut ws)?;
            let (tc, tcc) = l.jvp(&p, &v, &cc, Some(&xs[0]), &mut ws)?;
            close_all(&[th], &[tc], "ẏ");
            let b = Back {
                dy: &dy,
                rdy: &rdy,
                need_dx: true,
            };
            let mut out = Vec::new();
            for (cache, tcache) in [(&ch, &tch), (&cc, &tcc)] {
                let t = Tan {
                    v: &v,
                    xt: Some(&xs[0]),
                    tc: tcache,
                };
                let (mut g, mut hv) = (vec![None; np], vec![None; np]);
                let mut s = Sinks {
                    grad: Grads::new(&mut g),
                    hv: Grads::new(&mut hv),
                };
                let (dx, rdx) = l.tangent_vjp(&p, cache, t, b, &mut s, &mut ws)?;
                out.push((vec![dx, rdx], g, hv));
            }
            close_all(&out[0].0, &out[1].0, "x̄, R{x̄}");
            close_all(&out[0].1, &out[1].1, "p̄ (tangent pass)");
            close_all(&out[0].2, &out[1].2, "R{p̄}");
            let jet = Jet {
                t: [
                    Some(x.clone()),
                    Some(xs[0].clone()),
                    Some(xs[1].clone()),
                    Some(xs[2].clone()),
                ],
                order: 3,
            };
            let (jh, jc) = (l.jet_host(&p, &v, &jet)?, l.jet_candle(&p, &v, &jet)?);
            close_all(&jh.t, &jc.t, "jet");
        }
        Ok(())
    }
}
