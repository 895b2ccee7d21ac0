//! `ParamVec`: parameters, directions, gradients and updates as one vector of
//! parameter space, stored as the model's per-layer tensors; and [`ParamSpace`], the
//! vector algebra shared with [`crate::NetParams`], written once.
//!
//! The flat order (used by [`ParamVec::to_f64_vec`], the dense Hessian and the
//! interchange format) is: for each layer `i`, `weight` `[out, in]` row-major, then
//! `bias` `[out]` if the layer has one.
//!
//! ```text
//! ⟨x, y⟩ = Σ_tensors Σ_i x_i y_i     (each tensor's sum in f64 on the host, in order)
//! axpy(x, α, y) = x + α·y,  scale(x, α) = α·x,  ‖x‖ = √⟨x, x⟩
//! ```
//!
//! A vector type gives its structure (tensors in flat order, `map`, `zip_map`,
//! `check_same_structure`); [`ParamSpace`]'s provided methods are the algebra, and
//! `param_space_algebra!` implements the trait from the type's inherent structure
//! methods and makes the algebra inherent methods too, so callers need no import.

use std::fmt::Debug;

use candle_core::{CpuStorage, DType, Device, Tensor};

use crate::host::{with_host, Host};
use crate::{invalid, rng, NetParams, Result};

/// `a + alpha·b` in one pass on the host for contiguous CPU tensors of one dtype and
/// shape (`None` otherwise). Bit-identical to candle's `a + b.affine(alpha, 0)`:
/// `b·alpha + 0` is rounded to the dtype before the add, as candle does.
pub(crate) fn host_axpy(a: &Tensor, alpha: f64, b: &Tensor) -> Option<Result<Tensor>> {
    if a.dims() != b.dims() || a.dtype() != b.dtype() {
        return None;
    }
    let v = with_host(a, |x| {
        with_host(b, |y| match (x, y) {
            (Host::F32(x), Host::F32(y)) => {
                let m = alpha as f32;
                let v: Vec<f32> = x.iter().zip(y).map(|(p, q)| p + (q * m + 0.0)).collect();
                Some(Tensor::from_vec(v, a.dims(), a.device()))
            }
            (Host::F64(x), Host::F64(y)) => {
                let v: Vec<f64> = x
                    .iter()
                    .zip(y)
                    .map(|(p, q)| p + (q * alpha + 0.0))
                    .collect();
                Some(Tensor::from_vec(v, a.dims(), a.device()))
            }
            _ => None,
        })
    })???;
    Some(v.map_err(Into::into))
}

/// `(u, a + u)` with `u = alpha·b` rounded as candle's `b.affine(alpha, 0)`, by two host
/// loops for contiguous CPU tensors of one dtype and shape (`None` otherwise): an
/// optimizer's update and new parameters without candle's op dispatch.
fn host_step(a: &Tensor, alpha: f64, b: &Tensor) -> Option<Result<(Tensor, Tensor)>> {
    fn pass<T: candle_core::WithDType>(
        a: &Tensor,
        x: &[T],
        y: &[T],
        m: T,
    ) -> Result<(Tensor, Tensor)> {
        let zero = T::from_f64(0.0);
        let u: Vec<T> = y.iter().map(|&q| q * m + zero).collect();
        let s: Vec<T> = x.iter().zip(&u).map(|(&p, &d)| p + d).collect();
        Ok((
            Tensor::from_vec(u, a.dims(), a.device())?,
            Tensor::from_vec(s, a.dims(), a.device())?,
        ))
    }
    if a.dims() != b.dims() || a.dtype() != b.dtype() {
        return None;
    }
    with_host(a, |x| {
        with_host(b, |y| match (x, y) {
            (Host::F32(x), Host::F32(y)) => Some(pass(a, x, y, alpha as f32)),
            (Host::F64(x), Host::F64(y)) => Some(pass(a, x, y, alpha)),
            _ => None,
        })
    })??
}

/// `d ← θ + (d·alpha + 0)` in place in `d`'s storage: [`host_step`]'s second output
/// (the same roundings) without the update or a new allocation. Checked by
/// [`ParamVec::into_step_of`] before any tensor is written.
struct StepInPlace(f64);

fn step_in_place<T: candle_core::WithDType>(d: &mut [T], theta: &[T], alpha: T) {
    let zero = T::from_f64(0.0);
    for (q, &p) in d.iter_mut().zip(theta) {
        *q = p + (*q * alpha + zero);
    }
}

impl candle_core::InplaceOp2 for StepInPlace {
    fn name(&self) -> &'static str {
        "eos-step-in-place"
    }
    fn cpu_fwd(
        &self,
        s: &mut CpuStorage,
        l: &candle_core::Layout,
        s2: &CpuStorage,
        l2: &candle_core::Layout,
    ) -> candle_core::Result<()> {
        let n = l.shape().elem_count();
        let o2 = l2.start_offset();
        let ok = l.start_offset() == 0 && l.is_contiguous() && l2.is_contiguous();
        match (s, s2) {
            (CpuStorage::F64(d), CpuStorage::F64(t)) if ok && d.len() == n => {
                step_in_place(d, &t[o2..o2 + n], self.0);
            }
            (CpuStorage::F32(d), CpuStorage::F32(t)) if ok && d.len() == n => {
                step_in_place(d, &t[o2..o2 + n], self.0 as f32);
            }
            _ => {
                return Err(candle_core::Error::Msg(
                    "step in place: expected whole contiguous f32/f64 host tensors".into(),
                ))
            }
        }
        Ok(())
    }
}

/// Whether [`StepInPlace`] takes `d` (written) with `theta` (read): host tensors of one
/// dtype and shape, both contiguous, `d` starting at 0 and covering its whole storage.
fn steppable(d: &Tensor, theta: &Tensor) -> bool {
    if d.dims() != theta.dims() || d.dtype() != theta.dtype() || d.id() == theta.id() {
        return false;
    }
    if !(crate::host::on_host(d) && crate::host::on_host(theta) && theta.is_contiguous()) {
        return false;
    }
    let (storage, layout) = d.storage_and_layout();
    let len = match &*storage {
        candle_core::Storage::Cpu(CpuStorage::F64(v)) => v.len(),
        candle_core::Storage::Cpu(CpuStorage::F32(v)) => v.len(),
        _ => return false,
    };
    d.is_contiguous() && layout.start_offset() == 0 && len == d.elem_count()
}

/// A vector of a model's parameter space: the algebra, written once over the type's
/// structure (tensors in flat order, `map`, `zip_map`, `check_same_structure`).
pub trait ParamSpace: Clone + Debug + Sized {
    /// The tensors in flat order.
    fn tensors_in_order(&self) -> Vec<&Tensor>;
    /// Applies `f` to every tensor, keeping the structure.
    fn map(&self, f: impl FnMut(&Tensor) -> Result<Tensor>) -> Result<Self>;
    /// Combines two vectors of the same structure tensor by tensor.
    fn zip_map(
        &self,
        other: &Self,
        f: impl FnMut(&Tensor, &Tensor) -> Result<Tensor>,
    ) -> Result<Self>;
    /// Errors unless `other` has the same structure (names, shapes).
    fn check_same_structure(&self, other: &Self) -> Result<()>;

    /// Total number of scalars P.
    fn numel(&self) -> usize {
        self.tensors_in_order().iter().map(|t| t.elem_count()).sum()
    }

    fn zeros_like(&self) -> Result<Self> {
        self.map(|t| Ok(t.zeros_like()?))
    }

    fn to_dtype(&self, dtype: DType) -> Result<Self> {
        self.map(|t| Ok(t.to_dtype(dtype)?))
    }

    fn to_device(&self, device: &Device) -> Result<Self> {
        self.map(|t| Ok(t.to_device(device)?))
    }

    /// ⟨self, other⟩, accumulated in f64.
    fn dot(&self, other: &Self) -> Result<f64> {
        self.check_same_structure(other)?;
        let mut s = 0.0;
        for (a, b) in self
            .tensors_in_order()
            .into_iter()
            .zip(other.tensors_in_order())
        {
            s += dot_f64(a, b)?;
        }
        Ok(s)
    }

    fn norm(&self) -> Result<f64> {
        Ok(self.dot(self)?.sqrt())
    }

    /// `self + alpha · x`.
    fn axpy(&self, alpha: f64, x: &Self) -> Result<Self> {
        self.zip_map(x, |a, b| match host_axpy(a, alpha, b) {
            Some(t) => t,
            None => Ok((a + b.affine(alpha, 0.0)?)?),
        })
    }

    /// `alpha · self`.
    fn scale(&self, alpha: f64) -> Result<Self> {
        self.map(|t| Ok(t.affine(alpha, 0.0)?))
    }

    fn add(&self, other: &Self) -> Result<Self> {
        self.zip_map(other, |a, b| Ok((a + b)?))
    }

    fn sub(&self, other: &Self) -> Result<Self> {
        self.zip_map(other, |a, b| Ok((a - b)?))
    }

    /// The vector flattened to f64 in flat order (converted on the host, one pass).
    fn to_f64_vec(&self) -> Result<Vec<f64>> {
        let mut out = Vec::with_capacity(self.numel());
        for t in self.tensors_in_order() {
            let fast = with_host(t, |h| match h {
                Host::F32(v) => out.extend(v.iter().map(|&x| f64::from(x))),
                Host::F64(v) => out.extend_from_slice(v),
            });
            if fast.is_some() {
                continue;
            }
            let t = t.flatten_all()?;
            match t.dtype() {
                DType::F64 => out.extend_from_slice(&t.to_vec1::<f64>()?),
                DType::F32 => out.extend(t.to_vec1::<f32>()?.into_iter().map(f64::from)),
                _ => out.extend(t.to_dtype(DType::F64)?.to_vec1::<f64>()?),
            }
        }
        Ok(out)
    }

    /// A vector with `template`'s structure, dtypes and devices holding `values`.
    fn from_f64_slice(template: &Self, values: &[f64]) -> Result<Self> {
        let n = template.numel();
        if values.len() != n {
            return invalid(format!(
                "parameter vector of length {} expected {n}",
                values.len()
            ));
        }
        let mut off = 0;
        template.map(|t| {
            let part = &values[off..off + t.elem_count()];
            off += t.elem_count();
            tensor_like(t, part)
        })
    }

    /// A standard normal direction drawn from `seed` (same on every machine).
    fn randn_like(&self, seed: u64) -> Result<Self> {
        Self::from_f64_slice(self, &rng::normal_vec(seed, self.numel()))
    }

    /// A Rademacher (±1) direction drawn from `seed`.
    fn rademacher_like(&self, seed: u64) -> Result<Self> {
        Self::from_f64_slice(self, &rng::rademacher_vec(seed, self.numel()))
    }
}

/// `values` as a tensor of `like`'s shape, dtype and device (f32 rounded on the host,
/// as candle's cast rounds).
fn tensor_like(like: &Tensor, values: &[f64]) -> Result<Tensor> {
    let (shape, device) = (like.shape(), like.device());
    Ok(match like.dtype() {
        DType::F32 => {
            let host: Vec<f32> = values.iter().map(|&x| x as f32).collect();
            Tensor::from_vec(host, shape, device)?
        }
        DType::F64 => Tensor::from_slice(values, shape, device)?,
        dtype => Tensor::from_slice(values, shape, &Device::Cpu)?
            .to_dtype(dtype)?
            .to_device(device)?,
    })
}

/// `impl ParamSpace for $t`, its structure from `$t`'s inherent `map`, `zip_map`,
/// `check_same_structure` and the flat-order tensors `$tensors` (of `$s`: `&$t`), and
/// the algebra as inherent methods of `$t` (no trait import needed).
macro_rules! param_space_algebra {
    ($t:ty, |$s:ident| $tensors:expr) => {
        impl ParamSpace for $t {
            fn tensors_in_order(&self) -> Vec<&Tensor> {
                let $s = self;
                $tensors
            }
            fn map(&self, f: impl FnMut(&Tensor) -> Result<Tensor>) -> Result<Self> {
                <$t>::map(self, f)
            }
            fn zip_map(
                &self,
                other: &Self,
                f: impl FnMut(&Tensor, &Tensor) -> Result<Tensor>,
            ) -> Result<Self> {
                <$t>::zip_map(self, other, f)
            }
            fn check_same_structure(&self, other: &Self) -> Result<()> {
                <$t>::check_same_structure(self, other)
            }
        }

        impl $t {
            /// Total number of scalars P.
            pub fn numel(&self) -> usize {
                <Self as ParamSpace>::numel(self)
            }
            pub fn zeros_like(&self) -> Result<Self> {
                <Self as ParamSpace>::zeros_like(self)
            }
            pub fn to_dtype(&self, dtype: DType) -> Result<Self> {
                <Self as ParamSpace>::to_dtype(self, dtype)
            }
            pub fn to_device(&self, device: &Device) -> Result<Self> {
                <Self as ParamSpace>::to_device(self, device)
            }
            /// ⟨self, other⟩, accumulated in f64.
            pub fn dot(&self, other: &Self) -> Result<f64> {
                <Self as ParamSpace>::dot(self, other)
            }
            pub fn norm(&self) -> Result<f64> {
                <Self as ParamSpace>::norm(self)
            }
            /// `self + alpha · x`.
            pub fn axpy(&self, alpha: f64, x: &Self) -> Result<Self> {
                <Self as ParamSpace>::axpy(self, alpha, x)
            }
            /// `alpha · self`.
            pub fn scale(&self, alpha: f64) -> Result<Self> {
                <Self as ParamSpace>::scale(self, alpha)
            }
            pub fn add(&self, other: &Self) -> Result<Self> {
                <Self as ParamSpace>::add(self, other)
            }
            pub fn sub(&self, other: &Self) -> Result<Self> {
                <Self as ParamSpace>::sub(self, other)
            }
            /// The vector flattened to f64 in flat order.
            pub fn to_f64_vec(&self) -> Result<Vec<f64>> {
                <Self as ParamSpace>::to_f64_vec(self)
            }
            /// A vector with `template`'s structure, dtypes and devices holding `values`.
            pub fn from_f64_slice(template: &Self, values: &[f64]) -> Result<Self> {
                <Self as ParamSpace>::from_f64_slice(template, values)
            }
            /// A standard normal direction drawn from `seed` (same on every machine).
            pub fn randn_like(&self, seed: u64) -> Result<Self> {
                <Self as ParamSpace>::randn_like(self, seed)
            }
            /// A Rademacher (±1) direction drawn from `seed`.
            pub fn rademacher_like(&self, seed: u64) -> Result<Self> {
                <Self as ParamSpace>::rademacher_like(self, seed)
            }
        }
    };
}
param_space_algebra!(ParamVec, |p| p.tensors().collect());
param_space_algebra!(NetParams, |p| p.tensors.iter().collect());

/// One layer's block of a parameter-space vector.
#[derive(Debug, Clone)]
pub struct LayerParams {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
}

/// A vector of parameter space with the model's layer shapes.
#[derive(Debug, Clone)]
pub struct ParamVec {
    pub layers: Vec<LayerParams>,
}

/// ⟨a, b⟩ accumulated in f64 on the host (one copy per tensor; exact summation
/// order, so the result does not depend on the thread count).
pub(crate) fn dot_f64(a: &Tensor, b: &Tensor) -> Result<f64> {
    if a.dims() == b.dims() {
        let r = with_host(a, |x| {
            with_host(b, |y| match (x, y) {
                (Host::F64(x), Host::F64(y)) => {
                    Some(x.iter().zip(y).map(|(p, q)| p * q).sum::<f64>())
                }
                (Host::F32(x), Host::F32(y)) => Some(
                    x.iter()
                        .zip(y)
                        .map(|(p, q)| *p as f64 * *q as f64)
                        .sum::<f64>(),
                ),
                _ => None,
            })
        });
        if let Some(Some(Some(v))) = r {
            return Ok(v);
        }
    }
    let (a, b) = (a.flatten_all()?, b.flatten_all()?);
    Ok(match a.dtype() {
        DType::F64 => {
            let (x, y) = (a.to_vec1::<f64>()?, b.to_vec1::<f64>()?);
            x.iter().zip(&y).map(|(p, q)| p * q).sum()
        }
        DType::F32 => {
            let (x, y) = (a.to_vec1::<f32>()?, b.to_vec1::<f32>()?);
            x.iter().zip(&y).map(|(p, q)| *p as f64 * *q as f64).sum()
        }
        _ => {
            let (x, y) = (a.to_dtype(DType::F64)?, b.to_dtype(DType::F64)?);
            (x * y)?.sum_all()?.to_scalar::<f64>()?
        }
    })
}

/// Values whose squares the norm sums (f64 as is, f32 widened first, as [`dot_f64`]).
trait Squared: Copy {
    fn slice(s: &CpuStorage) -> Option<&[Self]>;
    fn sq(self) -> f64;
}

impl Squared for f64 {
    fn slice(s: &CpuStorage) -> Option<&[Self]> {
        match s {
            CpuStorage::F64(v) => Some(v),
            _ => None,
        }
    }
    fn sq(self) -> f64 {
        self * self
    }
}

impl Squared for f32 {
    fn slice(s: &CpuStorage) -> Option<&[Self]> {
        match s {
            CpuStorage::F32(v) => Some(v),
            _ => None,
        }
    }
    fn sq(self) -> f64 {
        self as f64 * self as f64
    }
}

/// `Σ_i x_i²` of `K` slices of one length, each summed in index order from −0 (as
/// `Iterator::sum` in [`dot_f64`]); the K chains are independent and run interleaved,
/// so they overlap in the pipeline instead of waiting on one add at a time.
fn chains<T: Squared, const K: usize>(xs: &[&[T]]) -> [f64; K] {
    let n = xs[0].len();
    let xs: [&[T]; K] = std::array::from_fn(|k| &xs[k][..n]);
    let mut acc = [-0.0f64; K];
    for i in 0..n {
        for k in 0..K {
            acc[k] += xs[k][i].sq();
        }
    }
    acc
}

/// [`chains`] over slices of one length, up to 8 at a time.
fn sums_of_squares<T: Squared>(xs: &[&[T]]) -> Vec<f64> {
    let mut out = Vec::with_capacity(xs.len());
    for c in xs.chunks(8) {
        match c.len() {
            1 => out.extend(chains::<T, 1>(c)),
            2 => out.extend(chains::<T, 2>(c)),
            3 => out.extend(chains::<T, 3>(c)),
            4 => out.extend(chains::<T, 4>(c)),
            5 => out.extend(chains::<T, 5>(c)),
            6 => out.extend(chains::<T, 6>(c)),
            7 => out.extend(chains::<T, 7>(c)),
            _ => out.extend(chains::<T, 8>(c)),
        }
    }
    out
}

/// `Σ x²` of each tensor of `ts` (contiguous CPU tensors of one dtype and size, each a
/// different tensor), read in place; `None` when one is not such a tensor.
fn tensor_sums<T: Squared>(ts: &[&Tensor]) -> Option<Vec<f64>> {
    let n = ts.first()?.elem_count();
    let guards: Vec<_> = ts.iter().map(|t| t.storage_and_layout()).collect();
    let mut xs = Vec::with_capacity(ts.len());
    for ((g, l), t) in guards.iter().zip(ts) {
        let ok = t.elem_count() == n && t.is_contiguous();
        match &**g {
            candle_core::Storage::Cpu(s) if ok => {
                let o = l.start_offset();
                xs.push(&T::slice(s)?[o..o + n]);
            }
            _ => return None,
        }
    }
    Some(sums_of_squares(&xs))
}

/// ‖v‖ of every vector of `vs`, each **bit-identical** to [`ParamVec::norm`] (the same
/// per-tensor sums in the same order, added tensor by tensor in flat order), computed
/// together: vectors of one structure and dtype on the host run their sums as
/// interleaved chains (`chains`; ≈ K× the throughput of one latency-bound sum). Others
/// are computed alone by [`ParamVec::norm`]. An ensemble's logged gradient norms.
pub fn norms(vs: &[&ParamVec]) -> Result<Vec<f64>> {
    let sig = |v: &ParamVec| -> Option<(DType, Vec<usize>)> {
        let ok = v
            .tensors()
            .all(|t| t.device().is_cpu() && t.is_contiguous());
        let lens = v.tensors().map(|t| t.elem_count()).collect();
        ok.then(|| (v.dtype(), lens))
    };
    let sigs: Vec<_> = vs.iter().map(|v| sig(v)).collect();
    let mut out: Vec<Option<f64>> = vec![None; vs.len()];
    for i in 0..vs.len() {
        if out[i].is_some() {
            continue;
        }
        let group: Vec<usize> = match &sigs[i] {
            Some(s) => (i..vs.len())
                .filter(|&j| out[j].is_none() && sigs[j].as_ref() == Some(s))
                .collect(),
            None => vec![i],
        };
        let members: Vec<&ParamVec> = group.iter().map(|&j| vs[j]).collect();
        let found = group_norms(&members);
        for (k, &j) in group.iter().enumerate() {
            out[j] = Some(match &found {
                Some(v) => v[k],
                None => vs[j].norm()?,
            });
        }
    }
    Ok(out.into_iter().map(|v| v.unwrap_or(f64::NAN)).collect())
}

/// The norms of vectors of one structure, tensor by tensor ([`tensor_sums`]); `None`
/// when a tensor is not read in place (or is the same tensor in two vectors).
fn group_norms(vs: &[&ParamVec]) -> Option<Vec<f64>> {
    let tensors: Vec<Vec<&Tensor>> = vs.iter().map(|v| v.tensors().collect()).collect();
    let mut totals = vec![0.0f64; vs.len()];
    for k in 0..tensors[0].len() {
        let ts: Vec<&Tensor> = tensors.iter().map(|t| t[k]).collect();
        let ids: std::collections::HashSet<_> = ts.iter().map(|t| t.id()).collect();
        if ids.len() != ts.len() {
            return None;
        }
        let sums = match vs[0].dtype() {
            DType::F64 => tensor_sums::<f64>(&ts)?,
            DType::F32 => tensor_sums::<f32>(&ts)?,
            _ => return None,
        };
        for (t, s) in totals.iter_mut().zip(sums) {
            *t += s;
        }
    }
    Some(totals.into_iter().map(f64::sqrt).collect())
}

impl ParamVec {
    /// All tensors in flat order (weight, bias, weight, ...).
    pub fn tensors(&self) -> impl Iterator<Item = &Tensor> {
        self.layers
            .iter()
            .flat_map(|l| std::iter::once(&l.weight).chain(l.bias.as_ref()))
    }

    /// Applies `f` to every tensor, keeping the structure.
    pub fn map(&self, mut f: impl FnMut(&Tensor) -> Result<Tensor>) -> Result<Self> {
        let layers = self
            .layers
            .iter()
            .map(|l| {
                Ok(LayerParams {
                    weight: f(&l.weight)?,
                    bias: l.bias.as_ref().map(&mut f).transpose()?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self { layers })
    }

    /// Combines two vectors of the same structure tensor by tensor.
    pub fn zip_map(
        &self,
        other: &Self,
        mut f: impl FnMut(&Tensor, &Tensor) -> Result<Tensor>,
    ) -> Result<Self> {
        self.check_same_structure(other)?;
        let layers = self
            .layers
            .iter()
            .zip(&other.layers)
            .map(|(a, b)| {
                Ok(LayerParams {
                    weight: f(&a.weight, &b.weight)?,
                    bias: match (&a.bias, &b.bias) {
                        (Some(x), Some(y)) => Some(f(x, y)?),
                        _ => None,
                    },
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self { layers })
    }

    /// Errors unless `other` has the same layers, shapes and bias pattern.
    pub fn check_same_structure(&self, other: &Self) -> Result<()> {
        if self.layers.len() != other.layers.len() {
            return invalid(format!(
                "parameter vectors differ in depth: {} vs {} layers",
                self.layers.len(),
                other.layers.len()
            ));
        }
        for (i, (a, b)) in self.layers.iter().zip(&other.layers).enumerate() {
            if a.weight.dims() != b.weight.dims() {
                return invalid(format!(
                    "layers.{i}.weight: shape {:?} expected {:?}",
                    b.weight.dims(),
                    a.weight.dims()
                ));
            }
            match (&a.bias, &b.bias) {
                (Some(x), Some(y)) if x.dims() != y.dims() => {
                    return invalid(format!(
                        "layers.{i}.bias: shape {:?} expected {:?}",
                        y.dims(),
                        x.dims()
                    ))
                }
                (Some(_), None) | (None, Some(_)) => {
                    return invalid(format!("layers.{i}.bias: present in one vector only"))
                }
                _ => {}
            }
        }
        Ok(())
    }

    pub fn dtype(&self) -> DType {
        self.layers[0].weight.dtype()
    }

    pub fn device(&self) -> &Device {
        self.layers[0].weight.device()
    }

    /// Squared Frobenius norm of each layer (weight and bias together).
    pub fn layer_norms_sq(&self) -> Result<Vec<f64>> {
        self.layers
            .iter()
            .map(|l| {
                let mut s = dot_f64(&l.weight, &l.weight)?;
                if let Some(b) = &l.bias {
                    s += dot_f64(b, b)?;
                }
                Ok(s)
            })
            .collect()
    }

    /// `(u, self + u)` with `u_l = alpha(l, bias) · d_l` per tensor: an optimizer's step
    /// `θ' = θ + u`. Bit-identical to `d.affine(alpha, 0)` then `self + u` (candle's
    /// rounding: `d·alpha + 0` in the dtype, then the add); host tensors take one
    /// loop per output (`host_step`), others candle's ops.
    pub fn scaled_step(
        &self,
        d: &ParamVec,
        alpha: impl Fn(usize, bool) -> f64,
    ) -> Result<(ParamVec, ParamVec)> {
        self.check_same_structure(d)?;
        let one = |p: &Tensor, d: &Tensor, a: f64| -> Result<(Tensor, Tensor)> {
            match host_step(p, a, d) {
                Some(r) => r,
                None => {
                    let u = d.affine(a, 0.0)?;
                    let s = (p + &u)?;
                    Ok((u, s))
                }
            }
        };
        let (mut u, mut s) = (Vec::new(), Vec::new());
        for (i, (p, g)) in self.layers.iter().zip(&d.layers).enumerate() {
            let (uw, sw) = one(&p.weight, &g.weight, alpha(i, false))?;
            let (ub, sb) = match (&p.bias, &g.bias) {
                (Some(pb), Some(gb)) => {
                    let (x, y) = one(pb, gb, alpha(i, true))?;
                    (Some(x), Some(y))
                }
                _ => (None, None),
            };
            u.push(LayerParams {
                weight: uw,
                bias: ub,
            });
            s.push(LayerParams {
                weight: sw,
                bias: sb,
            });
        }
        Ok((ParamVec { layers: u }, ParamVec { layers: s }))
    }

    /// `θ + u` with `u_l = alpha(l, bias) · self_l`, written into this vector's own
    /// storage: an optimizer's new parameters from a fresh gradient (whose tensors no
    /// one else holds), bit-identical to [`ParamVec::scaled_step`]'s second output,
    /// without the update or new tensors. `Err(self)`, unchanged, unless every tensor is
    /// a whole contiguous host tensor of θ's shape and dtype.
    pub fn into_step_of(
        self,
        theta: &ParamVec,
        alpha: impl Fn(usize, bool) -> f64,
    ) -> Result<std::result::Result<ParamVec, ParamVec>> {
        theta.check_same_structure(&self)?;
        let pairs = |v: &ParamVec| -> Vec<(Tensor, Tensor, f64)> {
            let mut out = Vec::new();
            for (i, (d, p)) in v.layers.iter().zip(&theta.layers).enumerate() {
                out.push((d.weight.clone(), p.weight.clone(), alpha(i, false)));
                if let (Some(db), Some(pb)) = (&d.bias, &p.bias) {
                    out.push((db.clone(), pb.clone(), alpha(i, true)));
                }
            }
            out
        };
        let all = pairs(&self);
        if !all.iter().all(|(d, p, _)| steppable(d, p)) {
            return Ok(Err(self));
        }
        for (d, p, a) in &all {
            d.inplace_op2(p, &StepInPlace(*a))?;
        }
        drop(all);
        Ok(Ok(self))
    }

    /// Names in the interchange format: `{prefix}layers.{i}.weight|bias`.
    pub fn named_tensors(&self, prefix: &str) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (i, l) in self.layers.iter().enumerate() {
            out.push((format!("{prefix}layers.{i}.weight"), l.weight.clone()));
            if let Some(b) = &l.bias {
                out.push((format!("{prefix}layers.{i}.bias"), b.clone()));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pv(seed: u64, dtype: DType) -> ParamVec {
        let d = Device::Cpu;
        let t = ParamVec {
            layers: vec![
                LayerParams {
                    weight: Tensor::zeros((3, 2), dtype, &d).unwrap(),
                    bias: Some(Tensor::zeros(3, dtype, &d).unwrap()),
                },
                LayerParams {
                    weight: Tensor::zeros((1, 3), dtype, &d).unwrap(),
                    bias: None,
                },
            ],
        };
        t.randn_like(seed).unwrap()
    }

    #[test]
    fn host_axpy_is_bit_identical_to_candle() {
        for dt in [DType::F32, DType::F64] {
            let (a, b) = (pv(3, dt), pv(4, dt));
            let fast = a.axpy(-0.37, &b).unwrap().to_f64_vec().unwrap();
            let slow = a
                .zip_map(&b, |x, y| Ok((x + y.affine(-0.37, 0.0)?)?))
                .unwrap()
                .to_f64_vec()
                .unwrap();
            assert_eq!(fast, slow, "{dt:?}");
            // a non-contiguous operand takes candle's path and agrees too
            let t = a.layers[0].weight.t().unwrap();
            let tb = b.layers[0].weight.t().unwrap();
            let r = host_axpy(&t, 2.0, &tb);
            assert!(r.is_none());
        }
    }

    #[test]
    fn norms_together_equal_each_norm_bit_for_bit() {
        // 11 vectors: more than one chunk of 8 chains, both dtypes, another structure,
        // a non-contiguous one (alone) and one tensor shared by two vectors (alone).
        let mut vs: Vec<ParamVec> = (0..9).map(|s| pv(s, DType::F64)).collect();
        vs[2] = vs[2].scale(1e150).unwrap(); // large squares: order matters in f64
        vs.push(pv(20, DType::F32));
        vs.push(pv(21, DType::F32));
        let mut odd = pv(22, DType::F64);
        odd.layers[1].bias = Some(Tensor::new(&[3.0f64], &Device::Cpu).unwrap());
        vs.push(odd);
        let mut strided = pv(23, DType::F64);
        let w = Tensor::randn(0f64, 1.0, (2, 3), &Device::Cpu).unwrap();
        strided.layers[0].weight = w.t().unwrap();
        vs.push(strided);
        let refs: Vec<&ParamVec> = vs.iter().collect();
        let got = norms(&refs).unwrap();
        for (v, n) in vs.iter().zip(&got) {
            assert_eq!(n.to_bits(), v.norm().unwrap().to_bits());
        }
        // a tensor shared by two vectors: computed alone, the same values
        let mut shared = pv(24, DType::F64);
        shared.layers[1].weight = vs[0].layers[1].weight.clone();
        let got = norms(&[&vs[0], &shared, &vs[1]]).unwrap();
        for (v, n) in [&vs[0], &shared, &vs[1]].iter().zip(&got) {
            assert_eq!(n.to_bits(), v.norm().unwrap().to_bits());
        }
        assert!(norms(&[]).unwrap().is_empty());
    }

    #[test]
    fn scaled_step_and_step_in_place_equal_candles_affine_then_add() {
        for dt in [DType::F32, DType::F64] {
            let (theta, g) = (pv(7, dt), pv(8, dt));
            // a zero gradient entry: d·α + 0 is +0 (not −0), as in candle's affine
            let z = Tensor::zeros(3, dt, &Device::Cpu).unwrap();
            let g = ParamVec {
                layers: vec![
                    LayerParams {
                        weight: g.layers[0].weight.clone(),
                        bias: Some(z),
                    },
                    g.layers[1].clone(),
                ],
            };
            let alpha =
                |i: usize, bias: bool| -0.013 * (1.0 + i as f64) * if bias { 3.0 } else { 1.0 };
            let mut want_u = Vec::new();
            let mut want_s = Vec::new();
            for (i, (p, d)) in theta.layers.iter().zip(&g.layers).enumerate() {
                let u = d.weight.affine(alpha(i, false), 0.0).unwrap();
                want_s.push((&p.weight + &u).unwrap().flatten_all().unwrap());
                want_u.push(u.flatten_all().unwrap());
                if let (Some(pb), Some(db)) = (&p.bias, &d.bias) {
                    let u = db.affine(alpha(i, true), 0.0).unwrap();
                    want_s.push((pb + &u).unwrap());
                    want_u.push(u);
                }
            }
            let flat = |ts: Vec<Tensor>| -> Vec<u64> {
                let t = Tensor::cat(&ts, 0).unwrap().to_dtype(DType::F64).unwrap();
                t.to_vec1::<f64>()
                    .unwrap()
                    .iter()
                    .map(|x| x.to_bits())
                    .collect()
            };
            let bits = |v: &ParamVec| -> Vec<u64> {
                v.to_f64_vec()
                    .unwrap()
                    .iter()
                    .map(|x| x.to_bits())
                    .collect()
            };
            let (u, s) = theta.scaled_step(&g, alpha).unwrap();
            assert_eq!(bits(&u), flat(want_u), "{dt:?}");
            assert_eq!(bits(&s), flat(want_s.clone()), "{dt:?}");
            // in place, in a fresh copy of the gradient
            let fresh = g.map(|t| Ok(t.copy()?)).unwrap();
            let s2 = fresh.into_step_of(&theta, alpha).unwrap().unwrap();
            assert_eq!(bits(&s2), flat(want_s), "{dt:?}");
            assert_eq!(bits(&theta), bits(&pv(7, dt)), "θ untouched");
        }
    }

    #[test]
    fn step_in_place_refuses_views_and_leaves_them_unchanged() {
        let theta = pv(1, DType::F64);
        // a weight that is a view into a larger storage: refused, nothing written
        let big = Tensor::randn(0f64, 1.0, (4, 2), &Device::Cpu).unwrap();
        let mut g = pv(2, DType::F64);
        g.layers[0].weight = big.narrow(0, 1, 3).unwrap();
        let before = g.to_f64_vec().unwrap();
        let back = g.into_step_of(&theta, |_, _| -0.1).unwrap().unwrap_err();
        assert_eq!(back.to_f64_vec().unwrap(), before);
        // another structure is an error naming the layer
        let mut h = pv(3, DType::F64);
        h.layers[0].bias = None;
        let e = h.into_step_of(&theta, |_, _| 1.0).unwrap_err().to_string();
        assert!(e.contains("layers.0.bias"), "{e}");
    }

    #[test]
    fn algebra_matches_flat_vectors() {
        let a = pv(1, DType::F64);
        let b = pv(2, DType::F64);
        assert_eq!(a.numel(), 12);
        let (fa, fb) = (a.to_f64_vec().unwrap(), b.to_f64_vec().unwrap());
        let dot: f64 = fa.iter().zip(&fb).map(|(x, y)| x * y).sum();
        assert!((a.dot(&b).unwrap() - dot).abs() < 1e-14);
        let c = a.axpy(-0.5, &b).unwrap().to_f64_vec().unwrap();
        for i in 0..12 {
            assert!((c[i] - (fa[i] - 0.5 * fb[i])).abs() < 1e-15);
        }
        let back = ParamVec::from_f64_slice(&a, &fa).unwrap();
        assert_eq!(back.to_f64_vec().unwrap(), fa);
        let ln = a.layer_norms_sq().unwrap();
        assert!((ln[0] + ln[1] - a.norm().unwrap().powi(2)).abs() < 1e-12);
        // the same seed gives the same direction in f32 as in f64 (up to the cast)
        let a32 = pv(1, DType::F32).to_f64_vec().unwrap();
        for i in 0..12 {
            assert!((a32[i] - fa[i]).abs() < 1e-6 * (1.0 + fa[i].abs()));
        }
        let names: Vec<_> = a.named_tensors("v.").into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            ["v.layers.0.weight", "v.layers.0.bias", "v.layers.1.weight"]
        );
    }

    #[test]
    fn net_params_share_the_algebra_in_flat_order() {
        for dt in [DType::F32, DType::F64] {
            let (a, b) = (pv(5, dt), pv(6, dt));
            let net = |p: &ParamVec| {
                let (names, tensors) = p.named_tensors("").into_iter().unzip();
                NetParams::new(names, tensors).unwrap()
            };
            let (na, nb) = (net(&a), net(&b));
            assert_eq!(na.numel(), a.numel());
            assert_eq!(na.dot(&nb).unwrap(), a.dot(&b).unwrap());
            assert_eq!(na.norm().unwrap(), a.norm().unwrap());
            let (x, y) = (na.axpy(0.3, &nb).unwrap(), a.axpy(0.3, &b).unwrap());
            assert_eq!(x.to_f64_vec().unwrap(), y.to_f64_vec().unwrap());
            let r = na.randn_like(9).unwrap().to_f64_vec().unwrap();
            assert_eq!(r, a.randn_like(9).unwrap().to_f64_vec().unwrap());
            let back = NetParams::from_f64_slice(&na, &r).unwrap();
            assert_eq!(back.dtype(), dt);
            assert_eq!(back.to_f64_vec().unwrap(), r);
            let d = na.sub(&nb).unwrap().add(&nb).unwrap().scale(2.0).unwrap();
            let e = a.sub(&b).unwrap().add(&b).unwrap().scale(2.0).unwrap();
            assert_eq!(d.to_f64_vec().unwrap(), e.to_f64_vec().unwrap());
        }
    }

    #[test]
    fn structure_mismatch_is_an_error() {
        let a = pv(1, DType::F64);
        let mut b = a.clone();
        b.layers[0].bias = None;
        let e = a.dot(&b).unwrap_err().to_string();
        assert!(e.contains("layers.0.bias"), "{e}");
        let e = ParamVec::from_f64_slice(&a, &[0.0; 5])
            .unwrap_err()
            .to_string();
        assert!(e.contains("length 5 expected 12"), "{e}");
    }
}
