//! Vectors of parameter space as flat `f64` slices: the few kernels the iterative
//! solvers share, and the checks on operator inputs and outputs.
//!
//! - `dot(x, y) = Σ x_i y_i` (eight interleaved partial sums, fixed order),
//!   `norm(x) = √(x·x)`, `axpy: y ← y + a x`, `scale: x ← a x`.
//! - Parallel sweeps over fixed pieces of `2¹⁶` entries, so sums do not depend on the
//!   thread count.
//!
//! Random vectors (start vectors, Hutchinson and SLQ probes) come from
//! [`eos_model::rng`]: Box–Muller normals ([`eos_model::rng::box_muller_vec`]) and
//! Rademacher signs ([`eos_model::rng::rademacher_draws`]) from a ChaCha8 stream keyed
//! by a `u64` seed, so a result is bit-identical for the same seed, whatever the block
//! sizes used to consume it.

use crate::{Error, LinearOperator, Result};

/// `Σ x_i y_i`, with eight interleaved partial sums (so the compiler can vectorise;
/// the summation order is fixed, so results stay bit-reproducible).
pub fn dot(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len().min(y.len());
    let (x, y) = (&x[..n], &y[..n]);
    let mut acc = [0.0f64; 8];
    let (xc, yc) = (x.chunks_exact(8), y.chunks_exact(8));
    let (xr, yr) = (xc.remainder(), yc.remainder());
    for (a, b) in xc.zip(yc) {
        for k in 0..8 {
            acc[k] += a[k] * b[k];
        }
    }
    let mut tail = 0.0;
    for (a, b) in xr.iter().zip(yr) {
        tail += a * b;
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// `(x·y, y·y)` in one pass, each summed exactly as [`dot`] sums it.
pub fn dot_and_sq(x: &[f64], y: &[f64]) -> (f64, f64) {
    let n = x.len().min(y.len());
    let (x, y) = (&x[..n], &y[..n]);
    let mut a = [0.0f64; 8];
    let mut b = [0.0f64; 8];
    let (xc, yc) = (x.chunks_exact(8), y.chunks_exact(8));
    let (xr, yr) = (xc.remainder(), yc.remainder());
    for (p, q) in xc.zip(yc) {
        for k in 0..8 {
            a[k] += p[k] * q[k];
            b[k] += q[k] * q[k];
        }
    }
    let (mut ta, mut tb) = (0.0, 0.0);
    for (p, q) in xr.iter().zip(yr) {
        ta += p * q;
        tb += q * q;
    }
    let fold =
        |s: [f64; 8], t: f64| ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7])) + t;
    (fold(a, ta), fold(b, tb))
}

/// The Euclidean norm `‖x‖₂`.
pub fn norm(x: &[f64]) -> f64 {
    dot(x, x).sqrt()
}

/// `y ← y + a x`.
pub fn axpy(a: f64, x: &[f64], y: &mut [f64]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

/// `x ← a x`.
pub fn scale(a: f64, x: &mut [f64]) {
    for xi in x.iter_mut() {
        *xi *= a;
    }
}

/// Elements per piece of the parallel sweeps. Fixed, so that results (sums taken per
/// piece, then over the pieces in order) do not depend on the thread count.
pub(crate) const PIECE: usize = 1 << 16;

/// Splits `items` into one contiguous group per thread (`eos_model::threads::count`) and
/// returns `f` of every item, in order.
fn par_map<I: Send, R: Send>(items: Vec<I>, f: impl Fn(I) -> R + Sync) -> Vec<R> {
    let threads = eos_model::threads::count().clamp(1, items.len().max(1));
    if threads == 1 {
        return items.into_iter().map(f).collect();
    }
    let per = items.len().div_ceil(threads);
    let mut groups: Vec<Vec<I>> = Vec::with_capacity(threads);
    let mut it = items.into_iter().peekable();
    while it.peek().is_some() {
        groups.push(it.by_ref().take(per).collect());
    }
    let f = &f;
    std::thread::scope(|s| {
        let mut groups = groups.into_iter();
        let first = groups.next().unwrap_or_default();
        let handles: Vec<_> = groups
            .map(|g| s.spawn(move || g.into_iter().map(f).collect::<Vec<R>>()))
            .collect();
        let mut out: Vec<R> = first.into_iter().map(f).collect();
        for h in handles {
            match h.join() {
                Ok(r) => out.extend(r),
                Err(e) => std::panic::resume_unwind(e),
            }
        }
        out
    })
}

/// `f(range)` for the pieces of `0..len`, in parallel; results in piece order.
pub(crate) fn par_pieces<R: Send>(
    len: usize,
    f: impl Fn(std::ops::Range<usize>) -> R + Sync,
) -> Vec<R> {
    let ranges: Vec<_> = (0..len)
        .step_by(PIECE)
        .map(|lo| lo..(lo + PIECE).min(len))
        .collect();
    par_map(ranges, f)
}

/// `f(offset, piece)` for the pieces of `w`, in parallel; results in piece order.
pub(crate) fn par_pieces_mut<R: Send>(
    w: &mut [f64],
    f: impl Fn(usize, &mut [f64]) -> R + Sync,
) -> Vec<R> {
    let pieces: Vec<(usize, &mut [f64])> = w
        .chunks_mut(PIECE)
        .enumerate()
        .map(|(i, c)| (i * PIECE, c))
        .collect();
    par_map(pieces, |(o, c)| f(o, c))
}

/// Checks that `v` is a usable vector of length `dim`: right length, finite entries.
pub(crate) fn check_vector(v: &[f64], dim: usize, what: &str) -> Result<()> {
    if v.len() != dim {
        return Err(Error::Length {
            what: format!("{what}: vector (the operator dimension)"),
            found: v.len(),
            expected: dim,
        });
    }
    // A vectorised scan first; the position only when something is not finite.
    let bad = v
        .chunks(4096)
        .any(|c| c.iter().fold(false, |acc, x| acc | !x.is_finite()));
    if !bad {
        return Ok(());
    }
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(Error::Entry {
            what: what.into(),
            index: i,
            value: v[i],
            expected: "a finite number",
        });
    }
    Ok(())
}

/// `A v`, checked: the operator must return a finite vector of length `dim()`.
pub(crate) fn apply_checked<A: LinearOperator + ?Sized>(
    op: &A,
    v: &[f64],
    what: &str,
) -> Result<Vec<f64>> {
    let w = op.apply(v)?;
    check_vector(&w, op.dim(), &format!("{what}: operator output"))?;
    Ok(w)
}

/// `A v_j` for a block, checked like [`apply_checked`].
pub(crate) fn apply_block_checked<A: LinearOperator + ?Sized>(
    op: &A,
    vs: &[Vec<f64>],
    what: &str,
) -> Result<Vec<Vec<f64>>> {
    let ws = op.apply_block(vs)?;
    if ws.len() != vs.len() {
        return Err(Error::Length {
            what: format!("{what}: apply_block output count (one per input)"),
            found: ws.len(),
            expected: vs.len(),
        });
    }
    for w in &ws {
        check_vector(w, op.dim(), &format!("{what}: operator output"))?;
    }
    Ok(ws)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels() {
        let x = [1.0, 2.0, 2.0];
        let mut y = vec![1.0, 0.0, -1.0];
        assert_eq!(dot(&x, &y), -1.0);
        assert_eq!(norm(&x), 3.0);
        axpy(2.0, &x, &mut y);
        assert_eq!(y, vec![3.0, 4.0, 3.0]);
        scale(0.5, &mut y);
        assert_eq!(y, vec![1.5, 2.0, 1.5]);
        assert!(check_vector(&[1.0, f64::NAN], 2, "t").is_err());
        assert!(check_vector(&[1.0], 2, "t").is_err());
        assert!(check_vector(&[1.0, 2.0], 2, "t").is_ok());
    }
}
