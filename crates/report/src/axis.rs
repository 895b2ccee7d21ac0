//! Axes of the report's figures: ranges, tick positions and tick labels.
//!
//! Every axis is linear in plot coordinates; a log axis holds log₁₀ of the data.
//! Ticks on a log axis are whole decades (every k-th over wide ranges) labelled 10ᵏ,
//! or 1-2-5 (then 1…9) multiples within a narrow range labelled as plain numbers;
//! on a linear axis about six multiples of a 1-2-5 step. Grid lines are drawn at
//! the ticks only.

use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter};

/// A linear axis over [lo, hi] (log₁₀ values on a log axis) with our own ticks
/// ([`ticks`]) and labels ([`tick`]).
#[derive(Debug, Clone)]
pub struct Axis {
    lo: f64,
    hi: f64,
    log: bool,
    ticks: Vec<f64>,
}

impl Axis {
    pub fn new(lo: f64, hi: f64, log: bool) -> Self {
        Self {
            lo,
            hi,
            log,
            ticks: ticks(lo, hi, log),
        }
    }
}

impl Ranged for Axis {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let f = (v - self.lo) / (self.hi - self.lo);
        limit.0 + (f * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        // Grid lines only at the labelled ticks (no light lines in between).
        match hint.weight().allow_light_points() {
            true => Vec::new(),
            false => self.ticks.clone(),
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

impl ValueFormatter<f64> for Axis {
    fn format_ext(&self, v: &f64) -> String {
        tick(*v, self.log)
    }
}

/// The axis range of `values` with 5 % padding (a 0.1-decade padding on log axes);
/// a degenerate range is widened.
pub fn padded(values: impl Iterator<Item = f64>, log: bool) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0);
    }
    let pad = if hi > lo {
        if log {
            0.1f64.max(0.05 * (hi - lo))
        } else {
            0.05 * (hi - lo)
        }
    } else if log {
        0.5
    } else {
        0.1 * lo.abs().max(1e-12)
    };
    (lo - pad, hi + pad)
}

/// Tick positions in plot coordinates: on a log axis (log₁₀ values) whole decades
/// (every k-th one over wide ranges), or 1-2-5 (then 1…9) multiples within a
/// narrow range; on a linear axis multiples of a 1-2-5 step, about six of them.
pub fn ticks(lo: f64, hi: f64, log: bool) -> Vec<f64> {
    if hi <= lo || !lo.is_finite() || !hi.is_finite() {
        return vec![lo];
    }
    let within = |v: &f64| *v >= lo - 1e-12 && *v <= hi + 1e-12;
    if log {
        let span = hi - lo;
        let decades = (lo.ceil() as i64..=hi.floor() as i64).map(|d| d as f64);
        if span >= 2.5 {
            let stride = (span / 8.0).ceil().max(1.0) as i64;
            return decades
                .filter(|d| (*d as i64).rem_euclid(stride) == 0)
                .collect();
        }
        for mantissas in [
            &[1.0, 2.0, 5.0][..],
            &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0],
        ] {
            let t: Vec<f64> = (lo.floor() as i64..=hi.ceil() as i64)
                .flat_map(|d| mantissas.iter().map(move |m| d as f64 + f64::log10(*m)))
                .filter(within)
                .collect();
            if t.len() >= 3 || mantissas.len() == 9 {
                return t;
            }
        }
    }
    let raw = (hi - lo) / 6.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|k| k as f64 * step).collect()
}

/// A tick label: 10ᵏ (or the plain number) on log axes, a compact number otherwise.
pub fn tick(v: f64, log: bool) -> String {
    if log {
        let k = v.round();
        if (v - k).abs() < 1e-9 {
            return format!("10{}", superscript(k as i64));
        }
        return compact(10f64.powf(v));
    }
    compact(v)
}

/// A short decimal or scientific form of `v`.
pub fn compact(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if (1e-3..1e5).contains(&a) {
        let s = format!("{v:.4}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        return s.to_string();
    }
    let s = format!("{v:.2e}");
    match s.split_once('e') {
        Some((m, e)) => {
            let m = m.trim_end_matches('0').trim_end_matches('.');
            format!("{m}e{e}")
        }
        None => s,
    }
}

fn superscript(k: i64) -> String {
    const DIGITS: [char; 10] = ['⁰', '¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'];
    let mut s = if k < 0 {
        "⁻".to_string()
    } else {
        String::new()
    };
    for c in k.unsigned_abs().to_string().chars() {
        s.push(DIGITS[c.to_digit(10).unwrap_or(0) as usize]);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_labels() {
        assert_eq!(tick(-3.0, true), "10⁻³");
        assert_eq!(tick(12.0, true), "10¹²");
        assert_eq!(tick(0.5f64.log10(), true), "0.5");
        assert_eq!(tick(0.25, false), "0.25");
        assert_eq!(tick(2.0, false), "2");
        assert_eq!(compact(1.5e-6), "1.5e-6");
        assert_eq!(compact(-2.0e7), "-2e7");
    }

    #[test]
    fn tick_positions() {
        assert_eq!(ticks(-5.2, 0.3, true), [-5.0, -4.0, -3.0, -2.0, -1.0, 0.0]);
        assert_eq!(
            ticks(-12.0, 9.0, true),
            [-12.0, -9.0, -6.0, -3.0, 0.0, 3.0, 6.0, 9.0]
        );
        let t = ticks(-1.1, 0.1, true);
        assert_eq!(t.len(), 4); // 0.1, 0.2, 0.5, 1
        assert!((t[1] - 0.2f64.log10()).abs() < 1e-15);
        assert_eq!(ticks(0.0, 19.0, false), [0.0, 5.0, 10.0, 15.0]);
        assert_eq!(ticks(4.1, 23.9, false), [5.0, 10.0, 15.0, 20.0]);
    }

    #[test]
    fn ranges() {
        assert_eq!(padded([1.0, 3.0].into_iter(), false), (0.9, 3.1));
        assert_eq!(padded([2.0].into_iter(), true), (1.5, 2.5));
        assert_eq!(padded(std::iter::empty(), false), (0.0, 1.0));
    }
}
