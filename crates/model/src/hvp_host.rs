//! The tangent passes of the cached HVP ([`crate::Mlp::hvp_with`]) on host slices, for
//! narrow networks on the CPU: the same R-operator formulas as `crate::hvp` (THEORY.md
//! §8; Pearlmutter 1994),
//!
//! ```text
//! R{z_l} = m_l (h_l V_lᵀ + R{h_l} W_lᵀ) + c_l,   R{h_{l+1}} = φ'(z_l) ⊙ R{z_l}
//! (Hv)_{W_l} = m_l (R{δ_l}ᵀ h_l + δ_lᵀ R{h_l}),  (Hv)_{b_l} = Σᵢ R{δ_l}
//! R{δ_{l−1}} = m_l (R{δ_l} W_l + δ_l V_l) ⊙ φ'(z_{l−1})
//! ```
//!
//! with every product written by [`crate::gemm_host::matmul_into`] into buffers that
//! the [`HvpPrimal`](crate::HvpPrimal) keeps per part and reuses across directions
//! (power iteration, Lanczos), instead of a fresh zero-filled candle tensor per product.
//! Each step is the operation of the candle path with the same kernel, operands,
//! layouts and order (gemm as candle calls it, `fused::fuse_slices`, `host::col_sums`,
//! `x·m + 0` for candle's `affine`), so the result is bit-identical to it (test
//! `hvp_host::tests`). Taken when the activation has φ'' = 0 (relu family, identity),
//! every layer is narrow ([`crate::mlp::NARROW`]) and every operand is a contiguous
//! f32/f64 CPU tensor; otherwise the caller runs the candle path.

use std::any::Any;

use candle_core::{DType, Device, Storage, Tensor, WithDType};

use crate::fused::{fuse_slices, Real, Steps, D1};
use crate::gemm_host::{matmul_into, Elem, View};
use crate::hvp::PrimalChunk;
use crate::mlp::{Buffers, ParamAcc};
use crate::{Loss, Mlp, ParamVec, Result};

/// The element types of the host path.
pub(crate) trait HostFloat: Elem + Real + WithDType {}
impl HostFloat for f32 {}
impl HostFloat for f64 {}

/// The buffers, sized on first use (shapes are fixed for a primal).
#[derive(Default)]
struct Bufs<T> {
    /// R{h_l} for l = 1 … L−1 (`rh[0]` unused), `[c, n_l]`.
    rh: Vec<Vec<T>>,
    /// R{f}, `[c, n_L]`.
    out: Vec<T>,
    /// R{δ_l} and the next one, `[c, ≤ max width]`.
    rd: Vec<T>,
    next: Vec<T>,
    /// Second product / scaled operand, `[c, ≤ max width]`.
    q: Vec<T>,
    /// The part's (Hv)_{W_l}, `[n_{l+1}, n_l]`, and the second outer product.
    gw: Vec<Vec<T>>,
    other: Vec<T>,
}

impl<T: Send + 'static> Buffers for Bufs<T> {
    fn bytes(&self) -> usize {
        self.len() * std::mem::size_of::<T>()
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

impl<T> Bufs<T> {
    fn len(&self) -> usize {
        let v = |x: &Vec<T>| x.len();
        self.rh.iter().map(v).sum::<usize>()
            + self.gw.iter().map(v).sum::<usize>()
            + [&self.out, &self.rd, &self.next, &self.q, &self.other]
                .into_iter()
                .map(v)
                .sum::<usize>()
    }
}

/// `v[..n]`, grown with zeros when shorter (no allocation once sized).
fn buf<T: Copy + Default>(v: &mut Vec<T>, n: usize) -> &mut [T] {
    if v.len() < n {
        v.resize(n, T::default());
    }
    &mut v[..n]
}

/// A tensor's storage held for reading, with its element range.
struct Held<'a> {
    guard: Box<dyn std::ops::Deref<Target = Storage> + 'a>,
    off: usize,
    len: usize,
}

impl Held<'_> {
    fn get<T: WithDType>(&self) -> Option<&[T]> {
        match &**self.guard {
            Storage::Cpu(c) => c.as_slice::<T>().ok()?.get(self.off..self.off + self.len),
            _ => None,
        }
    }
}

/// Which operand each index of the held list is (`Ops<usize>`), or its values.
struct Ops<S> {
    x: S,
    /// h_l for l ≥ 1 (index l − 1).
    hs: Vec<S>,
    /// φ' at layer l's pre-activation: a mask source with its slope, or dense values.
    d1: Vec<Option<(S, Option<f64>)>>,
    /// δ_l for l ≥ 1 (index l − 1).
    deltas: Vec<S>,
    w: Vec<S>,
    vw: Vec<S>,
    vb: Vec<Option<S>>,
}

/// Pins `t` for reading (a contiguous CPU tensor) and returns its index.
fn pin<'t>(held: &mut Vec<Held<'t>>, t: &'t Tensor) -> Option<usize> {
    if !t.device().is_cpu() || !t.is_contiguous() {
        return None;
    }
    let (guard, layout) = t.storage_and_layout();
    held.push(Held {
        off: layout.start_offset(),
        len: t.elem_count(),
        guard: Box::new(guard),
    });
    Some(held.len() - 1)
}

/// Pins every operand of one part's tangent passes; `None` when one cannot be read
/// on the host (or the activation has φ'' ≠ 0).
fn pin_all<'t>(
    mlp: &'t Mlp,
    pc: &'t PrimalChunk,
    x: &'t Tensor,
    v: &'t ParamVec,
    held: &mut Vec<Held<'t>>,
) -> Option<Ops<usize>> {
    let depth = mlp.depth();
    let mut ops = Ops {
        x: pin(held, x)?,
        hs: Vec::new(),
        d1: Vec::new(),
        deltas: Vec::new(),
        w: Vec::new(),
        vw: Vec::new(),
        vb: Vec::new(),
    };
    for l in 1..depth {
        ops.hs.push(pin(held, &pc.cache.hs[l])?);
        ops.deltas.push(pin(held, pc.deltas[l].as_ref()?)?);
    }
    for act in &pc.cache.acts {
        if act.d2.is_some() {
            return None;
        }
        ops.d1.push(match &act.d1 {
            D1::One => None,
            D1::Mask { h, low } => Some((pin(held, h)?, Some(*low))),
            D1::Dense(t) => Some((pin(held, t)?, None)),
        });
    }
    for (p, dv) in mlp.params.layers.iter().zip(&v.layers) {
        ops.w.push(pin(held, &p.weight)?);
        ops.vw.push(pin(held, &dv.weight)?);
        ops.vb.push(match &dv.bias {
            Some(b) => Some(pin(held, b)?),
            None => None,
        });
    }
    Some(ops)
}

impl Ops<usize> {
    /// The values of the pinned operands as `T` (`None` on another dtype or a length
    /// that does not fit the network's widths and the part's rows).
    fn values<'h, T: WithDType>(
        &self,
        held: &'h [Held<'_>],
        widths: &[usize],
        c: usize,
    ) -> Option<Ops<&'h [T]>> {
        let get = |i: usize, n: usize| held[i].get::<T>().filter(|s| s.len() == n);
        let depth = widths.len() - 1;
        let mut d1 = Vec::new();
        for (l, d) in self.d1.iter().enumerate() {
            d1.push(match d {
                None => None,
                Some((i, low)) => Some((get(*i, c * widths[l + 1])?, *low)),
            });
        }
        let layer = |v: &[usize], f: &dyn Fn(usize) -> usize| -> Option<Vec<&'h [T]>> {
            v.iter().enumerate().map(|(k, &i)| get(i, f(k))).collect()
        };
        Some(Ops {
            x: get(self.x, c * widths[0])?,
            hs: layer(&self.hs, &|k| c * widths[k + 1])?,
            d1,
            deltas: layer(&self.deltas, &|k| c * widths[k + 2])?,
            w: layer(&self.w, &|l| widths[l] * widths[l + 1])?,
            vw: layer(&self.vw, &|l| widths[l] * widths[l + 1])?,
            vb: (0..depth)
                .map(|l| match self.vb[l] {
                    None => Some(None),
                    Some(i) => get(i, widths[l + 1]).map(Some),
                })
                .collect::<Option<_>>()?,
        })
    }
}

/// candle's `affine(m, 0)`: `v·m + 0` per element.
fn affine<T: HostFloat>(v: &mut [T], m: f64) {
    let (m, zero) = (T::from_f64(m), T::from_f64(0.0));
    for x in v {
        *x = *x * m + zero;
    }
}

/// `dst = m · dᵀ h` as `crate::mlp::outer` computes it (`d` `[c, o]`, `h` `[c, i]`):
/// m applied to the smaller of d and the result; `tmp` holds the scaled d.
fn outer_into<T: HostFloat>(
    dst: &mut [T],
    d: &[T],
    h: &[T],
    (c, o, i): (usize, usize, usize),
    m: f64,
    tmp: &mut Vec<T>,
) -> Result<()> {
    if m != 1.0 && c * o < o * i {
        let t = buf(tmp, c * o);
        t.copy_from_slice(d);
        affine(t, m);
        return matmul_into(dst, View::transposed(t, c, o), View::rows(h, c, i));
    }
    matmul_into(dst, View::transposed(d, c, o), View::rows(h, c, i))?;
    if m != 1.0 {
        affine(dst, m);
    }
    Ok(())
}

impl Mlp {
    /// Whether the host path may run: CPU, f32/f64, every layer narrow.
    fn host_tangent_ok(&self) -> bool {
        self.device().is_cpu()
            && matches!(self.dtype(), DType::F32 | DType::F64)
            && self.is_narrow()
    }

    /// Adds one part's H v (already divided by n) into `hv` on the host path; `false`
    /// (and `hv` untouched) when the path does not apply (module header).
    pub(crate) fn tangent_host(
        &self,
        pc: &PrimalChunk,
        x: &Tensor,
        loss: Loss,
        v: &ParamVec,
        inv_n: f64,
        hv: &mut ParamAcc,
    ) -> Result<bool> {
        if !self.host_tangent_ok() {
            return Ok(false);
        }
        let mut held = Vec::new();
        let Some(idx) = pin_all(self, pc, x, v, &mut held) else {
            return Ok(false);
        };
        let widths = self.widths();
        let mut slot = pc.ws.0.lock().unwrap_or_else(|e| e.into_inner());
        let blocks = match self.dtype() {
            DType::F32 => idx
                .values::<f32>(&held, &widths, pc.len)
                .map(|ops| self.host_pass(pc, &ops, loss, inv_n, &widths, &mut slot))
                .transpose()?,
            _ => idx
                .values::<f64>(&held, &widths, pc.len)
                .map(|ops| self.host_pass(pc, &ops, loss, inv_n, &widths, &mut slot))
                .transpose()?,
        };
        drop(held);
        let Some((ws, bs)) = blocks else {
            return Ok(false);
        };
        for (l, (w, b)) in ws.into_iter().zip(bs).enumerate() {
            hv.add_w(l, w)?;
            if let Some(b) = b {
                hv.add_b(l, b)?;
            }
        }
        Ok(true)
    }

    /// Both tangent passes on the host; the part's (Hv)_W and (Hv)_b blocks.
    fn host_pass<T: HostFloat>(
        &self,
        pc: &PrimalChunk,
        ops: &Ops<&[T]>,
        loss: Loss,
        inv_n: f64,
        widths: &[usize],
        slot: &mut Option<Box<dyn Buffers>>,
    ) -> Result<(Vec<Tensor>, Vec<Option<Tensor>>)> {
        let mine = slot
            .as_mut()
            .is_some_and(|b| b.as_any_mut().downcast_mut::<Bufs<T>>().is_some());
        if !mine {
            *slot = Some(Box::new(Bufs::<T>::default()));
        }
        let ws = slot
            .as_mut()
            .and_then(|b| b.as_any_mut().downcast_mut::<Bufs<T>>())
            .expect("set above");
        let c = pc.len;
        self.host_forward(ops, widths, c, ws)?;
        let k = widths[widths.len() - 1];
        let out = Tensor::from_slice(&ws.out[..c * k], (c, k), &Device::Cpu)?;
        let rd = loss.hess_vec(&pc.ev, &out)?.affine(inv_n, 0.0)?;
        let dst = buf(&mut ws.rd, c * k);
        let copied = crate::host::with_host(&rd, |h| match h {
            crate::host::Host::F32(s) if s.len() == dst.len() => {
                dst.iter_mut()
                    .zip(s)
                    .for_each(|(d, &x)| *d = T::from_f64(f64::from(x)));
                true
            }
            crate::host::Host::F64(s) if s.len() == dst.len() => {
                dst.iter_mut()
                    .zip(s)
                    .for_each(|(d, &x)| *d = T::from_f64(x));
                true
            }
            _ => false,
        });
        if copied != Some(true) {
            return crate::invalid("hvp_with: the loss Hessian gave a non-host output");
        }
        self.host_backward(ops, widths, c, ws)
    }

    /// R{h_l} for l = 1 … L−1 into `ws.rh`, R{f} into `ws.out`.
    fn host_forward<T: HostFloat>(
        &self,
        ops: &Ops<&[T]>,
        widths: &[usize],
        c: usize,
        ws: &mut Bufs<T>,
    ) -> Result<()> {
        let depth = self.depth();
        ws.rh.resize_with(depth, Vec::new);
        for l in 0..depth {
            let (nin, nout) = (widths[l], widths[l + 1]);
            let h = if l == 0 { ops.x } else { ops.hs[l - 1] };
            let (lo, hi) = ws.rh.split_at_mut(l + 1);
            let dst = if l + 1 == depth {
                buf(&mut ws.out, c * nout)
            } else {
                buf(&mut hi[0], c * nout)
            };
            matmul_into(
                dst,
                View::rows(h, c, nin),
                View::transposed(ops.vw[l], nout, nin),
            )?;
            let q = if l > 0 {
                let q = buf(&mut ws.q, c * nout);
                let rh = &lo[l][..c * nin];
                matmul_into(
                    q,
                    View::rows(rh, c, nin),
                    View::transposed(ops.w[l], nout, nin),
                )?;
                Some(&*q)
            } else {
                None
            };
            let d1 = if l + 1 == depth { None } else { ops.d1[l] };
            let (mask, dense) = match d1 {
                Some((s, Some(low))) => (Some((s, low)), None),
                Some((s, None)) => (None, Some(s)),
                None => (None, None),
            };
            let steps = Steps::scale(self.multipliers[l]);
            fuse_slices(dst, nout, q, ops.vb[l], steps, mask, dense);
        }
        Ok(())
    }

    /// The tangent backward pass from R{δ_{L−1}} in `ws.rd`: the part's Hv blocks.
    fn host_backward<T: HostFloat>(
        &self,
        ops: &Ops<&[T]>,
        widths: &[usize],
        c: usize,
        ws: &mut Bufs<T>,
    ) -> Result<(Vec<Tensor>, Vec<Option<Tensor>>)> {
        let depth = self.depth();
        ws.gw.resize_with(depth, Vec::new);
        let mut bias = vec![None; depth];
        for l in (0..depth).rev() {
            let (nin, nout, m) = (widths[l], widths[l + 1], self.multipliers[l]);
            let h = if l == 0 { ops.x } else { ops.hs[l - 1] };
            let rd = &ws.rd[..c * nout];
            let gw = buf(&mut ws.gw[l], nout * nin);
            outer_into(gw, rd, h, (c, nout, nin), m, &mut ws.q)?;
            if l > 0 {
                let other = buf(&mut ws.other, nout * nin);
                let rh = &ws.rh[l][..c * nin];
                outer_into(other, ops.deltas[l - 1], rh, (c, nout, nin), m, &mut ws.q)?;
                fuse_slices(gw, nin, Some(other), None, Steps::scale(1.0), None, None);
            }
            if self.params.layers[l].bias.is_some() {
                let s = crate::host::col_sums(rd, nout);
                bias[l] = Some(Tensor::from_vec(s, nout, &Device::Cpu)?);
            }
            if l > 0 {
                let next = buf(&mut ws.next, c * nin);
                matmul_into(
                    next,
                    View::rows(rd, c, nout),
                    View::rows(ops.w[l], nout, nin),
                )?;
                let q = buf(&mut ws.q, c * nin);
                let d = ops.deltas[l - 1];
                matmul_into(q, View::rows(d, c, nout), View::rows(ops.vw[l], nout, nin))?;
                let (mask, dense) = match ops.d1[l - 1] {
                    Some((s, Some(low))) => (Some((s, low)), None),
                    Some((s, None)) => (None, Some(s)),
                    None => (None, None),
                };
                fuse_slices(next, nin, Some(q), None, Steps::scale(m), mask, dense);
                std::mem::swap(&mut ws.rd, &mut ws.next);
            }
        }
        let gw = (0..depth)
            .map(|l| {
                let (nin, nout) = (widths[l], widths[l + 1]);
                Ok(Tensor::from_slice(
                    &ws.gw[l][..nout * nin],
                    (nout, nin),
                    &Device::Cpu,
                )?)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((gw, bias))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{rng, Activation, Batch, MlpSpec};

    fn setup(act: Activation, bias: bool, dtype: DType, mults: Option<Vec<f64>>) -> (Mlp, Batch) {
        let widths = [7, 12, 9, 3];
        let mut spec = MlpSpec::new(&widths, act, bias);
        spec.multipliers = mults;
        let mlp = Mlp::random(&spec, 11, dtype, &Device::Cpu).unwrap();
        let n = 80;
        let x = Tensor::from_vec(rng::normal_vec(1, n * 7), (n, 7), &Device::Cpu).unwrap();
        let y = Tensor::from_vec(rng::normal_vec(2, n * 3), (n, 3), &Device::Cpu).unwrap();
        let batch = Batch::new(x, y).to(dtype, &Device::Cpu).unwrap();
        (mlp, batch)
    }

    /// Each part's H v on the host path, and the candle path's (`tangent_chunk`); the
    /// host path must apply.
    fn both(mlp: &Mlp, batch: &Batch, loss: Loss, v: &ParamVec) -> (Vec<f64>, Vec<f64>) {
        let p = mlp.hvp_primal(batch, loss).unwrap();
        let inv_n = 1.0 / batch.len() as f64;
        let (mut host, mut cand) = (Vec::new(), Vec::new());
        for pc in &p.chunks {
            let x = batch.x.narrow(0, pc.start, pc.len).unwrap();
            let mut a = ParamAcc::new(mlp.depth());
            assert!(mlp.tangent_host(pc, &x, loss, v, inv_n, &mut a).unwrap());
            let mut b = ParamAcc::new(mlp.depth());
            mlp.tangent_chunk(pc, &x, loss, v, inv_n, &mut b).unwrap();
            let f = |a: ParamAcc| a.finish(&mlp.params, 1.0).unwrap().to_f64_vec().unwrap();
            host.extend(f(a));
            cand.extend(f(b));
        }
        (host, cand)
    }

    /// The host tangent passes equal the candle path bit for bit: relu, leaky relu and
    /// identity; with and without biases; multipliers ≠ 1 (both branches of `outer`);
    /// mse and cross-entropy; f32 and f64; several chunks; repeated calls reuse the
    /// buffers with another direction.
    #[test]
    fn host_path_equals_candle_path_bit_for_bit() {
        let acts = [
            Activation::Relu,
            Activation::LeakyRelu(0.1),
            Activation::Identity,
        ];
        for dtype in [DType::F64, DType::F32] {
            for act in acts {
                for (bias, mults) in [(true, None), (false, Some(vec![0.5, 2.0, 0.125]))] {
                    let (mut mlp, batch) = setup(act, bias, dtype, mults);
                    mlp.chunk_size = 30;
                    for loss in [Loss::Mse, Loss::CrossEntropy] {
                        for seed in [3, 4] {
                            let v = mlp.params.randn_like(seed).unwrap();
                            let (h, c) = both(&mlp, &batch, loss, &v);
                            assert!(h.iter().any(|&x| x != 0.0));
                            assert_eq!(h, c, "{dtype:?} {act:?} bias {bias} {loss:?}");
                        }
                    }
                }
            }
        }
    }

    /// `hvp_with` (host path, buffers reused) equals the standalone `hvp` and, in f64,
    /// H v from central differences of the gradient (relu, away from kinks: 1e-6).
    #[test]
    fn hvp_with_matches_hvp_and_finite_differences() {
        let (mlp, batch) = setup(Activation::LeakyRelu(0.2), true, DType::F64, None);
        let p = mlp.hvp_primal(&batch, Loss::Mse).unwrap();
        for seed in [5, 6] {
            let v = mlp.params.randn_like(seed).unwrap();
            let hw = mlp.hvp_with(&p, &batch, &v).unwrap().to_f64_vec().unwrap();
            let h = mlp
                .hvp(&batch, Loss::Mse, &v)
                .unwrap()
                .to_f64_vec()
                .unwrap();
            assert_eq!(hw, h);
            let eps = 1e-6;
            let g = |s: f64| {
                let m = mlp.with_params(mlp.params.axpy(s, &v).unwrap()).unwrap();
                m.grad(&batch, Loss::Mse).unwrap().to_f64_vec().unwrap()
            };
            let (gp, gm) = (g(eps), g(-eps));
            for (k, &hk) in hw.iter().enumerate() {
                let fd = (gp[k] - gm[k]) / (2.0 * eps);
                assert!(
                    (hk - fd).abs() <= 1e-6 * (1.0 + fd.abs()),
                    "{k}: {hk} vs {fd}"
                );
            }
        }
        assert!(p.bytes() > 0);
    }

    /// Not taken (candle path instead) where φ'' ≠ 0.
    #[test]
    fn tanh_takes_the_candle_path() {
        let (mlp, batch) = setup(Activation::Tanh, true, DType::F64, None);
        let p = mlp.hvp_primal(&batch, Loss::Mse).unwrap();
        let v = mlp.params.randn_like(3).unwrap();
        let x = batch.x.narrow(0, 0, p.chunks[0].len).unwrap();
        let mut a = ParamAcc::new(mlp.depth());
        let host = mlp.tangent_host(&p.chunks[0], &x, Loss::Mse, &v, 0.1, &mut a);
        assert!(!host.unwrap());
    }
}
