//! Matrix products written into caller-owned buffers: `dst = lhs · rhs` by the `gemm`
//! crate's kernel, called exactly as candle-core 0.11's CPU matmul calls it, so the
//! result equals `lhs.matmul(rhs)` bit for bit — without candle's zero-filled fresh
//! output per product (calloc/memset and page faults: 11.5 % + 6–12 % of a cached HVP
//! on the deep bench shape, docs/performance.md, issue 15).
//!
//! ```text
//! dst[i·n + j] = Σ_p lhs[i·lhs.rs + p·lhs.cs] · rhs[p·rhs.rs + j·rhs.cs]   (i < m, j < n, p < k)
//! ```
//!
//! with candle's flags: `read_dst = false`, α = 0, β = 1, no conjugation, parallelism
//! `Rayon(t)` for t = [`crate::threads::count`] > 1 threads, else `None` (gemm itself
//! keeps products under its threading threshold on one thread).
//!
//! # Safety
//!
//! This module holds the one function of eos-model allowed `unsafe` code ([`matmul_into`], `#[allow(unsafe_code)]`) (the crate lints
//! `unsafe_code = "deny"`; see crates/model/Cargo.toml): the single call of
//! `gemm::gemm`, an `unsafe fn` taking raw pointers and strides. Its contract is that
//! every element it reads (`lhs`, `rhs`) or writes (`dst`) lies inside a live allocation,
//! that written elements are not read or written through another pointer during the
//! call, and that `T` is one of gemm's types. [`matmul_into`] establishes it before the
//! call: `T` is sealed to `f32`/`f64` ([`Elem`]); `dst` is a `&mut [T]` of exactly
//! `m · n` elements written row-major (strides `n`, 1: distinct elements, all in
//! bounds), so no other reference can alias it; `lhs`/`rhs` are `&[T]` whose largest
//! index `(rows − 1)·rs + (cols − 1)·cs` (checked arithmetic, strides ≥ 0) is below
//! their length, and every dimension and stride fits `isize`; the inner dimensions agree
//! (`lhs.cols == rhs.rows`, `lhs.rows == m`, `rhs.cols == n`). Any violation returns an
//! error naming what was expected, before gemm is reached. Empty products
//! (m = 0, n = 0 or k = 0) do not call gemm: dst (if any) is set to 0, as candle does.

use crate::{invalid, Result};

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// The element types gemm multiplies here (`f32`, `f64`; sealed).
pub(crate) trait Elem: sealed::Sealed + Copy + Default + Send + Sync + 'static {
    const ONE: Self;
}
impl Elem for f32 {
    const ONE: Self = 1.0;
}
impl Elem for f64 {
    const ONE: Self = 1.0;
}

/// A strided read-only matrix view: element (i, j) is `data[i·rs + j·cs]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct View<'a, T> {
    pub data: &'a [T],
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

impl<'a, T> View<'a, T> {
    /// A row-major `[rows, cols]` matrix (candle's contiguous layout: strides `cols`, 1).
    pub fn rows(data: &'a [T], rows: usize, cols: usize) -> Self {
        Self {
            data,
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }

    /// The transpose of a row-major `[r, c]` matrix: `[c, r]` with strides 1, `c`
    /// (candle's layout of `t.t()`).
    pub fn transposed(data: &'a [T], r: usize, c: usize) -> Self {
        Self {
            data,
            rows: c,
            cols: r,
            rs: 1,
            cs: c,
        }
    }

    /// Errors unless every element lies inside `data` and the strides fit `isize`.
    fn check(&self, what: &str) -> Result<()> {
        let fits = |x: usize| isize::try_from(x).is_ok();
        if !(fits(self.rs) && fits(self.cs) && fits(self.rows) && fits(self.cols)) {
            return invalid(format!(
                "matmul_into: {what} dimensions/strides exceed isize"
            ));
        }
        if self.rows == 0 || self.cols == 0 {
            return Ok(());
        }
        let last = (self.rows - 1)
            .checked_mul(self.rs)
            .and_then(|a| (self.cols - 1).checked_mul(self.cs).map(|b| (a, b)))
            .and_then(|(a, b)| a.checked_add(b));
        match last {
            Some(i) if i < self.data.len() && fits(i) => Ok(()),
            _ => invalid(format!(
                "matmul_into: {what} [{}, {}] with strides ({}, {}) needs more than the {} \
                 elements given",
                self.rows,
                self.cols,
                self.rs,
                self.cs,
                self.data.len()
            )),
        }
    }
}

/// `dst = lhs · rhs`, `dst` row-major `[lhs.rows, rhs.cols]` (exactly that many
/// elements; every element is overwritten). Bit-identical to candle's CPU matmul of
/// tensors with these layouts (module header).
#[allow(unsafe_code)]
pub(crate) fn matmul_into<T: Elem>(
    dst: &mut [T],
    lhs: View<'_, T>,
    rhs: View<'_, T>,
) -> Result<()> {
    let (m, n, k) = (lhs.rows, rhs.cols, lhs.cols);
    if rhs.rows != k {
        return invalid(format!(
            "matmul_into: lhs [{m}, {k}] times rhs [{}, {n}]: inner dimensions differ",
            rhs.rows
        ));
    }
    let want = m.checked_mul(n);
    if want != Some(dst.len()) || isize::try_from(dst.len()).is_err() {
        return invalid(format!(
            "matmul_into: dst has {} elements, expected {m} × {n}",
            dst.len()
        ));
    }
    lhs.check("lhs")?;
    rhs.check("rhs")?;
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        dst.fill(T::default());
        return Ok(());
    }
    let threads = crate::threads::count();
    let par = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: see the module header. `dst` is an exclusive borrow of exactly m·n
    // elements written with strides (n, 1); `lhs`/`rhs` were bounds-checked above for
    // their strides and shapes (`View::check`), all values fit `isize`, and `T` is
    // f32 or f64 (sealed `Elem`).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            false,
            lhs.data.as_ptr(),
            lhs.cs as isize,
            lhs.rs as isize,
            rhs.data.as_ptr(),
            rhs.cs as isize,
            rhs.rs as isize,
            T::default(),
            T::ONE,
            false,
            false,
            false,
            par,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    fn vals(n: usize, k: usize) -> Vec<f64> {
        (0..n)
            .map(|i| ((i * 37 + k * 11) % 23) as f64 / 7.0 - 1.5)
            .collect()
    }

    /// Equals candle's matmul bit for bit, for row-major and transposed operands, in
    /// f32 and f64, on shapes with a dimension of 1 and on shapes gemm blocks.
    #[test]
    fn matches_candle_bit_for_bit() {
        for (m, k, n) in [
            (3, 5, 4),
            (1, 7, 1),
            (256, 64, 64),
            (64, 256, 100),
            (5, 1, 3),
        ] {
            let a = vals(m * k, 1);
            let b = vals(k * n, 2);
            let at = Tensor::from_slice(&a, (m, k), &Device::Cpu).unwrap();
            let bt = Tensor::from_slice(&b, (n, k), &Device::Cpu).unwrap();
            // lhs row-major [m, k], rhs the transpose of a row-major [n, k].
            let want = at.matmul(&bt.t().unwrap()).unwrap();
            let mut got = vec![0.0f64; m * n];
            matmul_into(&mut got, View::rows(&a, m, k), View::transposed(&b, n, k)).unwrap();
            assert_eq!(got, want.flatten_all().unwrap().to_vec1::<f64>().unwrap());
            // f32, lhs transposed (the weight-gradient product dᵀh).
            let a32: Vec<f32> = vals(k * m, 3).iter().map(|&x| x as f32).collect();
            let b32: Vec<f32> = vals(k * n, 4).iter().map(|&x| x as f32).collect();
            let at = Tensor::from_slice(&a32, (k, m), &Device::Cpu).unwrap();
            let bt = Tensor::from_slice(&b32, (k, n), &Device::Cpu).unwrap();
            let want = at.t().unwrap().matmul(&bt).unwrap();
            let mut got = vec![7.0f32; m * n];
            matmul_into(
                &mut got,
                View::transposed(&a32, k, m),
                View::rows(&b32, k, n),
            )
            .unwrap();
            assert_eq!(got, want.flatten_all().unwrap().to_vec1::<f32>().unwrap());
        }
    }

    /// k = 0 gives zeros; m = 0 needs an empty dst.
    #[test]
    fn empty_products() {
        let mut dst = vec![3.0f64; 6];
        matmul_into(&mut dst, View::rows(&[], 2, 0), View::rows(&[], 0, 3)).unwrap();
        assert_eq!(dst, vec![0.0; 6]);
        let mut none: Vec<f32> = Vec::new();
        matmul_into(
            &mut none,
            View::rows(&[], 0, 4),
            View::rows(&[1.0; 8], 4, 2),
        )
        .unwrap();
    }

    /// Every inconsistent dimension, stride or length is an error, before gemm runs.
    #[test]
    fn rejects_bad_shapes_and_strides() {
        let a = vec![1.0f64; 12];
        let mut dst = vec![0.0f64; 9];
        let err = |r: Result<()>| r.unwrap_err().to_string();
        // Inner dimensions differ.
        let e = err(matmul_into(
            &mut dst,
            View::rows(&a, 3, 4),
            View::rows(&a, 3, 3),
        ));
        assert!(e.contains("inner dimensions differ"), "{e}");
        // dst of the wrong size.
        let e = err(matmul_into(
            &mut dst[..8],
            View::rows(&a, 3, 4),
            View::rows(&a, 4, 3),
        ));
        assert!(e.contains("dst has 8 elements, expected 3 × 3"), "{e}");
        // lhs larger than its data.
        let e = err(matmul_into(
            &mut dst,
            View::rows(&a[..11], 3, 4),
            View::rows(&a, 4, 3),
        ));
        assert!(
            e.contains("lhs [3, 4] with strides (4, 1) needs more than the 11"),
            "{e}"
        );
        // rhs stride walks out of bounds.
        let bad = View {
            data: &a[..],
            rows: 4,
            cols: 3,
            rs: 3,
            cs: 2,
        };
        let e = err(matmul_into(&mut dst, View::rows(&a, 3, 4), bad));
        assert!(e.contains("rhs [4, 3] with strides (3, 2)"), "{e}");
        // Overflowing strides.
        let huge = View {
            data: &a[..],
            rows: 4,
            cols: 3,
            rs: usize::MAX / 2,
            cs: 1,
        };
        let e = err(matmul_into(&mut dst, View::rows(&a, 3, 4), huge));
        assert!(
            e.contains("exceed isize") || e.contains("needs more"),
            "{e}"
        );
        let huge = View {
            data: &a[..],
            rows: 4,
            cols: 3,
            rs: (isize::MAX as usize) / 3,
            cs: 1,
        };
        let e = err(matmul_into(&mut dst, View::rows(&a, 3, 4), huge));
        assert!(e.contains("needs more"), "{e}");
        assert_eq!(dst, vec![0.0; 9], "nothing written on an error");
    }
}
