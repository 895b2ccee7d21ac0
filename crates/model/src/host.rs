//! Host-slice fast paths for small shapes: values of contiguous f32/f64 CPU tensors read
//! in place (`Tensor::storage_and_layout`, no candle op, no copy) and one-pass loops
//! where candle would dispatch several ops, each allocating:
//!
//! ```text
//! row_sum(d)_j = Σ_i d_ij            (in row order i = 0, 1, …: deterministic)
//! values(b)    = b as f64             (a bias row handed to the fused kernels)
//! ```
//!
//! [`on_host`] says whether a tensor is one these paths read; [`with_host_u32`] reads
//! index tensors (max-pool argmax). Every helper returns `None` for tensors it does not handle (other devices, dtypes,
//! layouts); callers then take candle's generic ops, equal up to rounding.

use candle_core::{CpuStorage, DType, Device, Storage, Tensor};

use crate::Result;

/// The values of a contiguous f32/f64 CPU tensor, read in place.
pub(crate) enum Host<'a> {
    F32(&'a [f32]),
    F64(&'a [f64]),
}

/// Calls `f` with the values of `t` when it is a contiguous f32/f64 CPU tensor.
pub(crate) fn with_host<R>(t: &Tensor, f: impl FnOnce(Host<'_>) -> R) -> Option<R> {
    if !t.device().is_cpu() || !t.is_contiguous() {
        return None;
    }
    let (storage, layout) = t.storage_and_layout();
    let (o, n) = (layout.start_offset(), t.elem_count());
    match &*storage {
        Storage::Cpu(CpuStorage::F32(v)) => Some(f(Host::F32(&v[o..o + n]))),
        Storage::Cpu(CpuStorage::F64(v)) => Some(f(Host::F64(&v[o..o + n]))),
        _ => None,
    }
}

/// Whether `t` is a CPU f32/f64 tensor (the host fast paths' operands).
pub(crate) fn on_host(t: &Tensor) -> bool {
    t.device().is_cpu() && matches!(t.dtype(), DType::F32 | DType::F64)
}

/// Calls `f` with the values of `t` when it is a contiguous u32 CPU tensor (indices).
pub(crate) fn with_host_u32<R>(t: &Tensor, f: impl FnOnce(&[u32]) -> R) -> Option<R> {
    if !t.device().is_cpu() || !t.is_contiguous() {
        return None;
    }
    let (storage, layout) = t.storage_and_layout();
    let (o, n) = (layout.start_offset(), t.elem_count());
    match &*storage {
        Storage::Cpu(CpuStorage::U32(v)) => Some(f(&v[o..o + n])),
        _ => None,
    }
}

/// `t` as f64 values (in place for host tensors, through candle otherwise).
pub(crate) fn values_f64(t: &Tensor) -> Result<Vec<f64>> {
    let fast = with_host(t, |h| match h {
        Host::F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
        Host::F64(v) => v.to_vec(),
    });
    match fast {
        Some(v) => Ok(v),
        None => Ok(t
            .flatten_all()?
            .to_dtype(candle_core::DType::F64)?
            .to_vec1::<f64>()?),
    }
}

pub(crate) fn col_sums<T: Copy + Default + std::ops::Add<Output = T>>(
    v: &[T],
    cols: usize,
) -> Vec<T> {
    let mut out = vec![T::default(); cols];
    for row in v.chunks_exact(cols) {
        for (o, x) in out.iter_mut().zip(row) {
            *o = *o + *x;
        }
    }
    out
}

/// `Σ_i d_ij` over the rows of a `[c, k]` host tensor (`None` for other tensors).
pub(crate) fn row_sum(d: &Tensor) -> Option<Result<Tensor>> {
    let dims = d.dims();
    if dims.len() != 2 || dims[1] == 0 {
        return None;
    }
    let cols = dims[1];
    with_host(d, |h| {
        Ok(match h {
            Host::F32(v) => Tensor::from_vec(col_sums(v, cols), cols, &Device::Cpu)?,
            Host::F64(v) => Tensor::from_vec(col_sums(v, cols), cols, &Device::Cpu)?,
        })
    })
}
