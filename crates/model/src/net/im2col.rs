//! im2col and col2im on host slices: a 2-d convolution as one matrix product
//! (Chellapilla, Puri & Simard 2006, "High performance convolutional neural networks for
//! document processing"; Caffe's `im2col_cpu`/`col2im_cpu`). With x `[N, C, H, W]`, a
//! k×k kernel, stride s, zero padding p and output size H' × W':
//!
//! ```text
//! cols[(c k + a) k + b, (n H' + i) W' + j] = x[n, c, s i + a − p, s j + b − p]   (0 outside)
//! col2im(D)[n, c, h, w] = Σ_{a,b,i,j : s i + a − p = h, s j + b − p = w} D[(c k + a) k + b, (n H' + i) W' + j]
//! ```
//!
//! so cols is `[C k², N H' W']` (one row per kernel tap, one column per output pixel) and
//! col2im is its adjoint (⟨im2col(x), D⟩ = ⟨x, col2im(D)⟩). Then, with ȳ as
//! `[O, N H' W']`: y = W cols, W̄ = ȳ colsᵀ, x̄ = col2im(Wᵀ ȳ) (`conv2d.rs`).
//!
//! Both run over the samples on [`crate::threads::count`] scoped threads. col2im sums each
//! x̄ entry in a fixed order (kernel taps ascending) whatever the split, so results do
//! not depend on the thread count.

use std::ops::AddAssign;

/// The shape of one convolution: input `[n, c, h, w]`, kernel k, stride s, padding p.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geom {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub k: usize,
    pub s: usize,
    pub p: usize,
}

impl Geom {
    /// H' = ⌊(H + 2p − k)/s⌋ + 1.
    pub fn ho(&self) -> usize {
        (self.h + 2 * self.p - self.k) / self.s + 1
    }

    /// W' = ⌊(W + 2p − k)/s⌋ + 1.
    pub fn wo(&self) -> usize {
        (self.w + 2 * self.p - self.k) / self.s + 1
    }

    /// Output pixels per sample, H' W'.
    pub fn pix(&self) -> usize {
        self.ho() * self.wo()
    }

    /// Rows of cols, C k².
    pub fn taps(&self) -> usize {
        self.c * self.k * self.k
    }

    /// The output indices `j0..j1` whose input index s j + b − p lies in `0..len`.
    fn valid(&self, b: usize, len: usize, out: usize) -> (usize, usize) {
        let (s, p) = (self.s, self.p);
        let j0 = if p > b { (p - b).div_ceil(s) } else { 0 };
        let j1 = if len + p > b {
            ((len + p - b - 1) / s + 1).min(out)
        } else {
            0
        };
        (j0, j1.max(j0))
    }
}

/// Samples `lo..hi` of each thread (at most `threads` nonempty ranges).
fn sample_ranges(n: usize, threads: usize) -> Vec<(usize, usize)> {
    let t = threads.clamp(1, n.max(1));
    (0..t).map(|i| (i * n / t, (i + 1) * n / t)).collect()
}

/// Fills `dst` (the columns of samples `lo..hi` of every row, in row order) from x.
fn im2col_part<T: Copy + Default>(x: &[T], g: &Geom, lo: usize, dst: &mut [&mut [T]]) {
    let (k, s, ho, wo) = (g.k, g.s, g.ho(), g.wo());
    for (row, seg) in dst.iter_mut().enumerate() {
        let (c, a, b) = (row / (k * k), row / k % k, row % k);
        let (i0, i1) = g.valid(a, g.h, ho);
        let (j0, j1) = g.valid(b, g.w, wo);
        for (dn, out) in seg.chunks_exact_mut(ho * wo).enumerate() {
            let plane = &x[((lo + dn) * g.c + c) * g.h * g.w..][..g.h * g.w];
            for i in i0..i1 {
                let src = &plane[(s * i + a - g.p) * g.w..][..g.w];
                let dst = &mut out[i * wo..][..wo];
                if s == 1 {
                    dst[j0..j1].copy_from_slice(&src[j0 + b - g.p..j1 + b - g.p]);
                } else {
                    for j in j0..j1 {
                        dst[j] = src[s * j + b - g.p];
                    }
                }
            }
        }
    }
}

/// im2col: `x` `[n, c, h, w]` → cols `[c k², n H' W']` (see the module header).
pub(crate) fn im2col<T: Copy + Default + Send + Sync>(x: &[T], g: &Geom) -> Vec<T> {
    let np = g.n * g.pix();
    let mut cols = vec![T::default(); g.taps() * np];
    let ranges = sample_ranges(g.n, crate::threads::count());
    let mut parts: Vec<Vec<&mut [T]>> = ranges.iter().map(|_| Vec::new()).collect();
    for row in cols.chunks_exact_mut(np.max(1)) {
        let mut rest = row;
        for (part, &(lo, hi)) in parts.iter_mut().zip(&ranges) {
            let (seg, tail) = rest.split_at_mut((hi - lo) * g.pix());
            part.push(seg);
            rest = tail;
        }
    }
    std::thread::scope(|sc| {
        let mut jobs = parts.into_iter().zip(&ranges);
        let first = jobs.next();
        for (mut part, &(lo, _)) in jobs {
            sc.spawn(move || im2col_part(x, g, lo, &mut part));
        }
        if let Some((mut part, &(lo, _))) = first {
            im2col_part(x, g, lo, &mut part);
        }
    });
    cols
}

/// Adds into `dst` (samples `lo..lo + dst.len() / (c h w)` of x̄) the columns of cols.
fn col2im_part<T: Copy + AddAssign>(cols: &[T], g: &Geom, lo: usize, dst: &mut [T]) {
    let (k, s, ho, wo) = (g.k, g.s, g.ho(), g.wo());
    let np = g.n * ho * wo;
    for (row, src_row) in cols.chunks_exact(np).enumerate() {
        let (c, a, b) = (row / (k * k), row / k % k, row % k);
        let (i0, i1) = g.valid(a, g.h, ho);
        let (j0, j1) = g.valid(b, g.w, wo);
        for (dn, plane) in dst.chunks_exact_mut(g.c * g.h * g.w).enumerate() {
            let src = &src_row[(lo + dn) * ho * wo..][..ho * wo];
            let plane = &mut plane[c * g.h * g.w..][..g.h * g.w];
            for i in i0..i1 {
                let out = &mut plane[(s * i + a - g.p) * g.w..][..g.w];
                let inp = &src[i * wo..][..wo];
                for j in j0..j1 {
                    out[s * j + b - g.p] += inp[j];
                }
            }
        }
    }
}

/// col2im: cols `[c k², n H' W']` → x̄ `[n, c, h, w]`, the adjoint of [`im2col`].
pub(crate) fn col2im<T: Copy + Default + AddAssign + Send + Sync>(cols: &[T], g: &Geom) -> Vec<T> {
    let per = g.c * g.h * g.w;
    let mut x = vec![T::default(); g.n * per];
    if g.pix() == 0 || per == 0 {
        return x;
    }
    let ranges = sample_ranges(g.n, crate::threads::count());
    std::thread::scope(|sc| {
        let mut rest = x.as_mut_slice();
        let mut first = None;
        for &(lo, hi) in &ranges {
            let (part, tail) = rest.split_at_mut((hi - lo) * per);
            rest = tail;
            if first.is_none() {
                first = Some((lo, part));
            } else {
                sc.spawn(move || col2im_part(cols, g, lo, part));
            }
        }
        if let Some((lo, part)) = first {
            col2im_part(cols, g, lo, part);
        }
    });
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, one entry at a time.
    fn naive(x: &[f64], g: &Geom) -> Vec<f64> {
        let (ho, wo, k) = (g.ho(), g.wo(), g.k);
        let mut cols = vec![0.0; g.taps() * g.n * ho * wo];
        for c in 0..g.c {
            for a in 0..k {
                for b in 0..k {
                    for n in 0..g.n {
                        for i in 0..ho {
                            for j in 0..wo {
                                let (h, w) = ((g.s * i + a) as isize, (g.s * j + b) as isize);
                                let (h, w) = (h - g.p as isize, w - g.p as isize);
                                if h < 0 || w < 0 || h >= g.h as isize || w >= g.w as isize {
                                    continue;
                                }
                                let src = ((n * g.c + c) * g.h + h as usize) * g.w + w as usize;
                                let row = (c * k + a) * k + b;
                                cols[row * g.n * ho * wo + (n * ho + i) * wo + j] = x[src];
                            }
                        }
                    }
                }
            }
        }
        cols
    }

    #[test]
    fn im2col_matches_the_definition_and_col2im_is_its_adjoint() {
        for &(n, c, h, w, k, s, p) in &[
            (3, 2, 7, 6, 3, 2, 1),
            (2, 3, 5, 5, 3, 1, 1),
            (1, 1, 4, 9, 2, 3, 0),
            (4, 2, 6, 5, 5, 2, 2),
            (2, 1, 3, 3, 3, 1, 2),
        ] {
            let g = Geom {
                n,
                c,
                h,
                w,
                k,
                s,
                p,
            };
            let x: Vec<f64> = (0..n * c * h * w)
                .map(|i| (i as f64 * 0.37).sin())
                .collect();
            let cols = im2col(&x, &g);
            assert_eq!(cols, naive(&x, &g), "{g:?}");
            let d: Vec<f64> = (0..cols.len()).map(|i| (i as f64 * 0.11).cos()).collect();
            let back = col2im(&d, &g);
            let lhs: f64 = cols.iter().zip(&d).map(|(a, b)| a * b).sum();
            let rhs: f64 = x.iter().zip(&back).map(|(a, b)| a * b).sum();
            assert!(
                (lhs - rhs).abs() < 1e-12 * lhs.abs().max(1.0),
                "{g:?}: {lhs} {rhs}"
            );
        }
    }
}
