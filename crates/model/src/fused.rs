//! Fused element-wise kernels of the hot paths: one pass over memory, in place on a
//! freshly computed tensor (a matmul output), where candle's generic ops would take two
//! or three passes and allocate a new tensor for each.
//!
//! One kernel covers every combination the passes need, one loop per row with the
//! steps present chosen at compile time (each element goes through them in this order):
//!
//! ```text
//! v ← dst (+ add)            (add: a tensor of dst's shape)
//! v ← scale · v (+ bias)     (bias: one value per column)
//! v ← φ(v)                   (relu family: v if v > 0 else low · v)
//! v ← v ⊙ φ'                 (mask from a relu-family output h: 1 if h > 0 else low; or a dense φ')
//! ```
//!
//! The kernels run on contiguous f32/f64 CPU tensors, split over [`crate::threads::count`] threads
//! for large tensors; anything else (other devices, dtypes, layouts) goes through
//! candle's generic ops with the same result up to rounding.

use candle_core::{CpuStorage, DType, InplaceOp1, InplaceOp2, InplaceOp3, Layout, Tensor};

use crate::Result;

/// φ' in the form the hot paths use it.
#[derive(Debug, Clone)]
pub(crate) enum D1 {
    /// φ' ≡ 1 (identity).
    One,
    /// Relu family: φ'(z) = 1 where `h = φ(z) > 0`, `low` elsewhere (φ(z) > 0 ⇔ z > 0).
    Mask { h: Tensor, low: f64 },
    /// Any other activation: the values φ'(z).
    Dense(Tensor),
}

impl D1 {
    /// φ' as a tensor (for the rare paths that need the values).
    pub fn to_tensor(&self, like: &Tensor) -> Result<Tensor> {
        Ok(match self {
            D1::One => like.ones_like()?,
            D1::Mask { h, low } => {
                let m = h.gt(0.0)?.to_dtype(h.dtype())?;
                if *low == 0.0 {
                    m
                } else {
                    m.affine(1.0 - low, *low)?
                }
            }
            D1::Dense(d) => d.clone(),
        })
    }
}

/// What [`fuse`] does to `dst`; see the module docs for the order of the steps.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Steps {
    pub scale: f64,
    /// Relu-family activation with this slope below 0.
    pub act_low: Option<f64>,
}

impl Steps {
    pub fn scale(scale: f64) -> Self {
        Self {
            scale,
            act_low: None,
        }
    }
}

/// Rows of at least this many elements in total are split over threads.
const PAR_MIN: usize = 1 << 17;

pub(crate) trait Real:
    Copy + PartialOrd + std::ops::Add<Output = Self> + std::ops::Mul<Output = Self>
{
    const ZERO: Self;
    fn of(x: f64) -> Self;
}

impl Real for f32 {
    const ZERO: Self = 0.0;
    fn of(x: f64) -> Self {
        x as f32
    }
}

impl Real for f64 {
    const ZERO: Self = 0.0;
    fn of(x: f64) -> Self {
        x
    }
}

/// The sources of one application, as slices of the same rows as `dst`.
#[derive(Clone, Copy)]
struct Srcs<'a, T> {
    add: Option<&'a [T]>,
    bias: Option<&'a [T]>,
    mask: Option<(&'a [T], T)>,
    dense: Option<&'a [T]>,
}

/// One pass over the rows with the steps chosen at compile time (`ADD`, `BIAS`, `ACT`,
/// `MASK`, `DENSE`: whether that step runs), each element going through the steps of
/// the module docs in order. Multiplying by `scale` = 1 is exact, so it always runs.
fn rows_pass<
    T: Real,
    const ADD: bool,
    const BIAS: bool,
    const ACT: bool,
    const MASK: bool,
    const DENSE: bool,
>(
    dst: &mut [T],
    cols: usize,
    s: Srcs<'_, T>,
    scale: T,
    act: Option<T>,
) {
    let low = act.unwrap_or(T::ZERO);
    let (hs, mlow) = s.mask.unwrap_or((&[], T::ZERO));
    let (adds, dense) = (s.add.unwrap_or(&[]), s.dense.unwrap_or(&[]));
    let bias = &s.bias.unwrap_or(&[])[..if BIAS { cols } else { 0 }];
    for (r, row) in dst.chunks_exact_mut(cols).enumerate() {
        let span = |on: bool| if on { r * cols..(r + 1) * cols } else { 0..0 };
        let (a, h, d) = (&adds[span(ADD)], &hs[span(MASK)], &dense[span(DENSE)]);
        for i in 0..cols {
            let mut v = row[i];
            if ADD {
                v = v + a[i];
            }
            v = v * scale;
            if BIAS {
                v = v + bias[i];
            }
            if ACT {
                v = if v > T::ZERO { v } else { v * low };
            }
            if MASK {
                v = if h[i] > T::ZERO { v } else { v * mlow };
            }
            if DENSE {
                v = v * d[i];
            }
            row[i] = v;
        }
    }
}

/// [`rows_pass`] for the steps present in `s` and `act`.
fn rows_kernel<T: Real>(dst: &mut [T], cols: usize, s: Srcs<'_, T>, scale: T, act: Option<T>) {
    macro_rules! go {
        ($($a:literal $b:literal $c:literal $m:literal $d:literal),*) => {
            match (s.add.is_some(), s.bias.is_some(), act.is_some(), s.mask.is_some(), s.dense.is_some()) {
                $(($a, $b, $c, $m, $d) => rows_pass::<T, $a, $b, $c, $m, $d>(dst, cols, s, scale, act),)*
                // One D1 is either a mask or dense φ' (Op::srcs), never both.
                _ => unreachable!("fused: a mask and dense φ' together"),
            }
        };
    }
    go!(
        false false false false false, true false false false false,
        false true false false false, true true false false false,
        false false true false false, true false true false false,
        false true true false false, true true true false false,
        false false false true false, true false false true false,
        false true false true false, true true false true false,
        false false true true false, true false true true false,
        false true true true false, true true true true false,
        false false false false true, true false false false true,
        false true false false true, true true false false true,
        false false true false true, true false true false true,
        false true true false true, true true true false true
    )
}

/// Runs the kernel on all rows, split over [`crate::threads::count`] threads when large.
fn run<'a, T: Real + Send + Sync>(dst: &mut [T], cols: usize, s: Srcs<'a, T>, steps: Steps) {
    let scale = T::of(steps.scale);
    let act = steps.act_low.map(T::of);
    let threads = crate::threads::count();
    let rows = dst.len() / cols.max(1);
    if threads == 1 || dst.len() < PAR_MIN || rows < 2 {
        rows_kernel(dst, cols, s, scale, act);
        return;
    }
    let per = rows.div_ceil(threads.min(rows));
    let sub = |x: Option<&'a [T]>, k: usize| x.map(|x| &x[k * per * cols..]);
    std::thread::scope(|sc| {
        let mut parts = dst.chunks_mut(per * cols).enumerate();
        let first = parts.next();
        for (k, part) in parts {
            let s = Srcs {
                add: sub(s.add, k),
                bias: s.bias,
                mask: s.mask.map(|(h, l)| (&h[k * per * cols..], l)),
                dense: sub(s.dense, k),
            };
            sc.spawn(move || rows_kernel(part, cols, s, scale, act));
        }
        if let Some((_, part)) = first {
            rows_kernel(part, cols, s, scale, act);
        }
    });
}

/// [`fuse`] on host slices, with the same kernel and thread split: `dst` (`[rows,
/// cols]`, row-major) after the steps of the module docs, `add` and the φ' sources
/// (`mask`: a relu-family output h with its slope below 0; `dense`: φ' values) of
/// `dst`'s length, `bias` one value per column. Callers check the lengths
/// (`crate::hvp_host`); a mismatch panics in the slice indexing.
pub(crate) fn fuse_slices<T: Real + Send + Sync>(
    dst: &mut [T],
    cols: usize,
    add: Option<&[T]>,
    bias: Option<&[T]>,
    steps: Steps,
    mask: Option<(&[T], f64)>,
    dense: Option<&[T]>,
) {
    let s = Srcs {
        add,
        bias,
        mask: mask.map(|(h, low)| (h, T::of(low))),
        dense,
    };
    run(dst, cols.max(1), s, steps);
}

/// Whether `t` can take the fused path: a contiguous f32/f64 CPU tensor.
fn fusable(t: &Tensor) -> bool {
    t.device().is_cpu() && t.is_contiguous() && matches!(t.dtype(), DType::F32 | DType::F64)
}

fn cols_of(t: &Tensor) -> usize {
    t.dims().last().copied().unwrap_or(1).max(1)
}

fn slice<'a, T: candle_core::WithDType>(
    s: &'a CpuStorage,
    l: &Layout,
) -> candle_core::Result<&'a [T]> {
    let v = s.as_slice::<T>()?;
    Ok(&v[l.start_offset()..l.start_offset() + l.shape().elem_count()])
}

/// The op behind [`fuse`]: which optional tensor sources are present (in order add,
/// φ'-source); the bias (one row) travels by value, so every combination is one pass.
#[derive(Debug, Clone)]
struct Op {
    steps: Steps,
    add: bool,
    bias: Option<Vec<f64>>,
    /// `Some(low)`: a relu-family mask from h; `None` with `dense`: φ' values.
    mask_low: Option<f64>,
    dense: bool,
}

macro_rules! with_dst {
    ($s:expr, $l:expr, |$d:ident| $body:expr) => {{
        let off = $l.start_offset();
        let n = $l.shape().elem_count();
        match $s {
            CpuStorage::F32(v) => {
                type R = f32;
                let $d: &mut [R] = &mut v[off..off + n];
                $body
            }
            CpuStorage::F64(v) => {
                type R = f64;
                let $d: &mut [R] = &mut v[off..off + n];
                $body
            }
            _ => candle_core::bail!("fused: unsupported dtype"),
        }
    }};
}

impl Op {
    fn srcs<'a, T: candle_core::WithDType>(
        &self,
        list: &[(&'a CpuStorage, &'a Layout)],
        bias: Option<&'a [T]>,
    ) -> candle_core::Result<Srcs<'a, T>> {
        let mut it = list.iter();
        let mut next = || -> candle_core::Result<&'a [T]> {
            let (s, l) = it.next().expect("operand count checked by fuse");
            slice::<T>(s, l)
        };
        let add = if self.add { Some(next()?) } else { None };
        let (mask, dense) = match (self.mask_low, self.dense) {
            (Some(low), _) => (Some((next()?, low)), None),
            (None, true) => (None, Some(next()?)),
            _ => (None, None),
        };
        let mask = mask.map(|(h, low)| (h, T::from_f64(low)));
        Ok(Srcs {
            add,
            bias,
            mask,
            dense,
        })
    }

    fn exec(
        &self,
        dst: &mut CpuStorage,
        dl: &Layout,
        list: &[(&CpuStorage, &Layout)],
    ) -> candle_core::Result<()> {
        let cols = dl.dims().last().copied().unwrap_or(1).max(1);
        with_dst!(dst, dl, |d| {
            let bias: Option<Vec<R>> = self
                .bias
                .as_ref()
                .map(|b| b.iter().map(|&x| <R as Real>::of(x)).collect());
            let s = self.srcs::<R>(list, bias.as_deref())?;
            run::<R>(d, cols, s, self.steps);
            Ok(())
        })
    }
}

impl InplaceOp1 for Op {
    fn name(&self) -> &'static str {
        "eos-fused"
    }
    fn cpu_fwd(&self, s: &mut CpuStorage, l: &Layout) -> candle_core::Result<()> {
        self.exec(s, l, &[])
    }
}

impl InplaceOp2 for Op {
    fn name(&self) -> &'static str {
        "eos-fused"
    }
    fn cpu_fwd(
        &self,
        s: &mut CpuStorage,
        l: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<()> {
        self.exec(s, l, &[(s2, l2)])
    }
}

impl InplaceOp3 for Op {
    fn name(&self) -> &'static str {
        "eos-fused"
    }
    fn cpu_fwd(
        &self,
        s: &mut CpuStorage,
        l: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<()> {
        self.exec(s, l, &[(s2, l2), (s3, l3)])
    }
}

/// `dst` after the steps of the module docs: `((dst + add) · scale + bias)`, then the
/// relu-family activation if `steps.act_low` is set, then times `d1` if given.
///
/// `dst` must be a fresh temporary that no other tensor shares (a matmul output): on
/// the fused path it is modified in place and returned.
pub(crate) fn fuse(
    dst: Tensor,
    add: Option<&Tensor>,
    bias: Option<&Tensor>,
    steps: Steps,
    d1: Option<&D1>,
) -> Result<Tensor> {
    let d1 = match d1 {
        Some(D1::One) | None => None,
        Some(d) => Some(d),
    };
    let fast = fusable(&dst)
        && add.is_none_or(|a| fusable(a) && a.dims() == dst.dims() && a.dtype() == dst.dtype())
        && bias.is_none_or(|b| b.device().is_cpu() && b.elem_count() == cols_of(&dst))
        && d1.is_none_or(|d| {
            let t = match d {
                D1::Mask { h, .. } => h,
                D1::Dense(t) => t,
                D1::One => unreachable!(),
            };
            fusable(t) && t.dims() == dst.dims() && t.dtype() == dst.dtype()
        });
    if !fast {
        return fuse_generic(dst, add, bias, steps, d1);
    }
    let (mask_low, dense_t, d1_t) = match d1 {
        Some(D1::Mask { h, low }) => (Some(*low), false, Some(h)),
        Some(D1::Dense(t)) => (None, true, Some(t)),
        _ => (None, false, None),
    };
    // The bias row by value (exact: f32 → f64 → f32 round-trips).
    let bias = bias.map(crate::host::values_f64).transpose()?;
    let op = Op {
        steps,
        add: add.is_some(),
        bias,
        mask_low,
        dense: dense_t,
    };
    match (add, d1_t) {
        (None, None) => dst.inplace_op1(&op)?,
        (Some(a), None) | (None, Some(a)) => dst.inplace_op2(a, &op)?,
        (Some(a), Some(b)) => dst.inplace_op3(a, b, &op)?,
    }
    Ok(dst)
}

/// [`fuse`] with candle's generic ops.
fn fuse_generic(
    dst: Tensor,
    add: Option<&Tensor>,
    bias: Option<&Tensor>,
    steps: Steps,
    d1: Option<&D1>,
) -> Result<Tensor> {
    let mut v = dst;
    if let Some(a) = add {
        v = (v + a)?;
    }
    if steps.scale != 1.0 {
        v = v.affine(steps.scale, 0.0)?;
    }
    if let Some(b) = bias {
        v = v.broadcast_add(b)?;
    }
    if let Some(low) = steps.act_low {
        v = if low == 0.0 {
            v.relu()?
        } else {
            v.maximum(&v.affine(low, 0.0)?)?
        };
    }
    match d1 {
        None | Some(D1::One) => {}
        Some(D1::Dense(t)) => v = (v * t)?,
        Some(d @ D1::Mask { .. }) => v = (&v * d.to_tensor(&v)?)?,
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn t(v: &[f64], r: usize, dtype: DType) -> Tensor {
        Tensor::from_slice(v, (r, v.len() / r), &Device::Cpu)
            .unwrap()
            .to_dtype(dtype)
            .unwrap()
    }

    /// The fused kernels equal the generic ops, for every combination, in f32 and f64,
    /// on small tensors and on tensors large enough to be split over threads.
    #[test]
    fn fused_matches_generic() {
        for dtype in [DType::F32, DType::F64] {
            for (rows, cols) in [(3usize, 5usize), (600, 300)] {
                let n = rows * cols;
                let val = |k: usize| -> Vec<f64> {
                    (0..n)
                        .map(|i| ((i * 7 + k * 13) % 11) as f64 - 5.0)
                        .collect()
                };
                let dst = t(&val(0), rows, dtype);
                let add = t(&val(1), rows, dtype);
                let h = t(&val(2), rows, dtype).relu().unwrap();
                let dense = t(&val(3), rows, dtype);
                let bias = Tensor::from_vec(
                    (0..cols).map(|i| i as f64 * 0.5 - 1.0).collect::<Vec<_>>(),
                    cols,
                    &Device::Cpu,
                )
                .unwrap()
                .to_dtype(dtype)
                .unwrap();
                let d1s = [
                    None,
                    Some(D1::Mask {
                        h: h.clone(),
                        low: 0.0,
                    }),
                    Some(D1::Mask { h, low: 0.25 }),
                    Some(D1::Dense(dense)),
                ];
                for with_add in [false, true] {
                    for with_bias in [false, true] {
                        for act in [None, Some(0.0), Some(0.1)] {
                            for d1 in &d1s {
                                let steps = Steps {
                                    scale: 0.5,
                                    act_low: act,
                                };
                                let a = with_add.then_some(&add);
                                let b = with_bias.then_some(&bias);
                                let fresh = (&dst + 0.0).unwrap();
                                let got = fuse(fresh, a, b, steps, d1.as_ref()).unwrap();
                                let want =
                                    fuse_generic(dst.clone(), a, b, steps, d1.as_ref()).unwrap();
                                let diff = (got - want)
                                    .unwrap()
                                    .abs()
                                    .unwrap()
                                    .max_all()
                                    .unwrap()
                                    .to_dtype(DType::F64)
                                    .unwrap()
                                    .to_scalar::<f64>()
                                    .unwrap();
                                assert_eq!(diff, 0.0, "{dtype:?} {rows}x{cols}");
                            }
                        }
                    }
                }
            }
        }
    }
}
