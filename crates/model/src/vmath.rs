//! Branch-free tanh, e^x (x ≤ 0) and σ written so that LLVM vectorises them over
//! slices (libm's scalar `tanhf`/`expm1f`, which candle calls per element, took 65 % of
//! a quickstart training step; issue 15). f32 and f64 each have their own constants.
//!
//! ```text
//! e^x, x ≤ 0:  x = k ln2 + r, |r| ≤ ln2/2 (k by round-to-nearest with the 1.5·2^p trick,
//!              ln2 split in a short high part and a low part, so k·ln2_hi is exact);
//!              e^r by Cephes' Padé form 1 + 2rP(r²)/(Q(r²) − rP(r²)) (f64) or its
//!              degree-7 polynomial (f32); e^x = e^r · 2^k, 2^k built from its bits;
//!              x below the smallest normal result (−708 / −87) gives 0.
//! tanh x:      |x| < 0.625: x + x·x²·P(x²)/Q(x²)  (f64, Cephes tanh.c)
//!                           x + x·x²·p(x²)        (f32, Cephes tanhf.c)
//!              otherwise:   sign(x) (1 − 2e/(1 + e)),  e = e^{−2|x|}
//! σ(z):        e = e^{−|z|};  1/(1 + e) for z ≥ 0,  e/(1 + e) below
//! ```
//!
//! Source: S. L. Moshier, Cephes Mathematical Library (exp.c, expf.c, tanh.c, tanhf.c),
//! coefficients copied from there; the only change is the branch-free form (both tanh
//! branches are evaluated and one is selected). Accuracy, tested against libm over
//! dense grids with tails in `tests` below: f64 tanh, e^x and σ within 5·10⁻¹⁶
//! relative; f32 tanh and e^x within 2 ulp of the correctly rounded value, σ within
//! 3 ulp (σ below f32's smallest normal, z < −87, is 0). NaN propagates,
//! tanh(±∞) = ±1, σ(+∞) = 1, σ(−∞) = 0, tanh(−0) = −0.

// The coefficients are Cephes' decimal strings digit for digit (they round to the
// same floats as clippy's shorter forms), so that they can be checked against the source.
#![allow(clippy::excessive_precision)]

/// A float type with the vectorisable functions of this module.
pub(crate) trait Fast: Copy {
    fn tanh_fast(self) -> Self;
    fn sigmoid_fast(self) -> Self;
}

/// 1.5·2^52: adding it rounds an f64 of magnitude < 2^51 to an integer, held in the
/// low mantissa bits.
const MAGIC64: f64 = 6_755_399_441_055_744.0;
/// 1.5·2^23, the same for f32.
const MAGIC32: f32 = 12_582_912.0;

/// e^x for x ≤ 0 (f64); 0 below −708, NaN for NaN.
#[inline(always)]
fn exp_neg64(x: f64) -> f64 {
    const LN2_HI: f64 = 6.931_457_519_531_25e-1;
    const LN2_LO: f64 = 1.428_606_820_309_417_232_12e-6;
    let y = x * std::f64::consts::LOG2_E + MAGIC64;
    let kf = y - MAGIC64;
    let k = (y.to_bits() as i64).wrapping_sub(MAGIC64.to_bits() as i64);
    let r = x - kf * LN2_HI - kf * LN2_LO;
    let rr = r * r;
    let p = r
        * ((1.261_771_930_748_105_908_78e-4 * rr + 3.029_944_077_074_419_613e-2) * rr
            + 9.999_999_999_999_999_999_1e-1);
    let q = ((3.001_985_051_386_644_550_42e-6 * rr + 2.524_483_403_496_841_041_92e-3) * rr
        + 2.272_655_482_081_550_287_66e-1)
        * rr
        + 2.000_000_000_000_000_000_09;
    let er = 1.0 + 2.0 * (p / (q - p));
    let scale = f64::from_bits((k.wrapping_add(1023) as u64) << 52);
    if x < -708.0 {
        0.0
    } else {
        er * scale
    }
}

/// e^x for x ≤ 0 (f32); 0 below −87, NaN for NaN.
#[inline(always)]
fn exp_neg32(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_359_375;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let y = x * std::f32::consts::LOG2_E + MAGIC32;
    let kf = y - MAGIC32;
    let k = (y.to_bits() as i32).wrapping_sub(MAGIC32.to_bits() as i32);
    let r = x - kf * LN2_HI - kf * LN2_LO;
    let rr = r * r;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 5.000_000_1e-1;
    let er = p * rr + r + 1.0;
    let scale = f32::from_bits((k.wrapping_add(127) as u32) << 23);
    if x < -87.0 {
        0.0
    } else {
        er * scale
    }
}

impl Fast for f64 {
    #[inline(always)]
    fn tanh_fast(self) -> f64 {
        let x = self;
        let s = x * x;
        let p = (-9.643_991_794_250_522_386_28e-1 * s - 9.928_772_310_019_185_865_64e1) * s
            - 1.614_687_684_417_084_479_52e3;
        let q = ((s + 1.128_116_784_916_329_314_02e2) * s + 2.235_488_390_601_004_485_83e3) * s
            + 4.844_063_053_251_254_860_48e3;
        let small = x + x * s * (p / q);
        let e = exp_neg64(-2.0 * x.abs());
        let large = 1.0 - 2.0 * e / (1.0 + e);
        let t = if x.abs() < 0.625 { small } else { large };
        t.copysign(x)
    }

    #[inline(always)]
    fn sigmoid_fast(self) -> f64 {
        let e = exp_neg64(-self.abs());
        let num = if self >= 0.0 { 1.0 } else { e };
        num / (1.0 + e)
    }
}

impl Fast for f32 {
    #[inline(always)]
    fn tanh_fast(self) -> f32 {
        let x = self;
        let s = x * x;
        let p = (((-5.704_988_7e-3 * s + 2.063_908_9e-2) * s - 5.373_971_6e-2) * s
            + 1.333_144_2e-1)
            * s
            - 3.333_328_2e-1;
        let small = p * s * x + x;
        let e = exp_neg32(-2.0 * x.abs());
        let large = 1.0 - 2.0 * e / (1.0 + e);
        let t = if x.abs() < 0.625 { small } else { large };
        t.copysign(x)
    }

    #[inline(always)]
    fn sigmoid_fast(self) -> f32 {
        let e = exp_neg32(-self.abs());
        let num = if self >= 0.0 { 1.0 } else { e };
        num / (1.0 + e)
    }
}

/// tanh of every element (one vectorised pass).
pub(crate) fn tanh<T: Fast>(z: &[T]) -> Vec<T> {
    z.iter().map(|&x| x.tanh_fast()).collect()
}

/// σ of every element (one vectorised pass).
pub(crate) fn sigmoid<T: Fast>(z: &[T]) -> Vec<T> {
    z.iter().map(|&x| x.sigmoid_fast()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Dense grid over [−lim, lim] plus log-spaced magnitudes 10⁻³⁰⁰ … 10³ of both signs.
    fn grid(lim: f64, step: f64) -> Vec<f64> {
        let mut v: Vec<f64> = (0..=((2.0 * lim / step) as usize))
            .map(|i| -lim + i as f64 * step)
            .collect();
        for k in 0..=3030 {
            let m = 10f64.powf(-300.0 + k as f64 * 0.1);
            v.extend([m, -m]);
        }
        v
    }

    fn rel(got: f64, want: f64) -> f64 {
        if got == want {
            0.0
        } else {
            ((got - want) / want).abs()
        }
    }

    /// Distance in units in the last place between an f32 and the f64 it approximates.
    fn ulps(got: f32, want: f64) -> f64 {
        let w = want as f32;
        if got == w {
            return 0.0;
        }
        let ulp = f32::from_bits(w.abs().to_bits() + 1) - w.abs();
        let ulp = if ulp > 0.0 { ulp } else { f32::MIN_POSITIVE };
        ((f64::from(got) - want) / f64::from(ulp)).abs()
    }

    /// σ from libm's exp, in the form without cancellation on each side.
    fn sigmoid_libm(x: f64) -> f64 {
        if x >= 0.0 {
            1.0 / (1.0 + (-x).exp())
        } else {
            x.exp() / (1.0 + x.exp())
        }
    }

    #[test]
    fn f64_within_5e_16_of_libm_on_a_dense_grid() {
        let (mut t, mut s, mut e) = (0f64, 0f64, 0f64);
        for x in grid(40.0, 7.3e-5) {
            t = t.max(rel(x.tanh_fast(), x.tanh()));
            s = s.max(rel(x.sigmoid_fast(), sigmoid_libm(x)));
            if (-708.0..=0.0).contains(&x) {
                e = e.max(rel(exp_neg64(x), x.exp()));
            }
        }
        for x in grid(700.0, 0.013) {
            if (-708.0..=0.0).contains(&x) {
                e = e.max(rel(exp_neg64(x), x.exp()));
            }
        }
        assert!(
            t <= 5e-16 && s <= 5e-16 && e <= 5e-16,
            "tanh {t:e} σ {s:e} exp {e:e}"
        );
    }

    /// Normal f32 results (σ and e^x below f32::MIN_POSITIVE are flushed to 0 instead).
    #[test]
    fn f32_within_2_or_3_ulp_of_the_rounded_value_on_a_dense_grid() {
        let (mut t, mut s, mut e) = (0f64, 0f64, 0f64);
        for x in grid(20.0, 1.1e-5) {
            let x32 = x as f32;
            let xd = f64::from(x32);
            t = t.max(ulps(x32.tanh_fast(), xd.tanh()));
            let sd = sigmoid_libm(xd);
            if sd >= f64::from(f32::MIN_POSITIVE) {
                s = s.max(ulps(x32.sigmoid_fast(), sd));
            } else {
                assert_eq!(x32.sigmoid_fast(), 0.0, "{x32}");
            }
            if (-87.0..=0.0).contains(&xd) {
                e = e.max(ulps(exp_neg32(x32), xd.exp()));
            }
        }
        assert!(
            t <= 2.0 && s <= 3.0 && e <= 2.0,
            "tanh {t} σ {s} exp {e} ulp"
        );
    }

    #[test]
    fn special_values() {
        for (x, want) in [(f64::INFINITY, 1.0), (f64::NEG_INFINITY, -1.0), (30.0, 1.0)] {
            assert_eq!(x.tanh_fast(), want);
            assert_eq!((x as f32).tanh_fast(), want as f32);
        }
        assert!((-0.0f64).tanh_fast().is_sign_negative());
        assert!((-0.0f32).tanh_fast().is_sign_negative());
        assert!(f64::NAN.tanh_fast().is_nan() && f32::NAN.tanh_fast().is_nan());
        assert!(f64::NAN.sigmoid_fast().is_nan() && f32::NAN.sigmoid_fast().is_nan());
        assert_eq!(f64::INFINITY.sigmoid_fast(), 1.0);
        assert_eq!(f64::NEG_INFINITY.sigmoid_fast(), 0.0);
        assert_eq!((-800f32).sigmoid_fast(), 0.0);
        assert_eq!(5e-324f64.tanh_fast(), 5e-324);
        let t = tanh(&[0.5f32, -2.0]);
        assert!(ulps(t[0], 0.5f64.tanh()) <= 2.0 && ulps(t[1], (-2f64).tanh()) <= 2.0);
        assert_eq!(sigmoid(&[0.0f64]), vec![0.5]);
    }
}
