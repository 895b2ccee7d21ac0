//! Helpers on `(step, value)` series shared by the conservative-sharpening network runs
//! and its quadratic model: first crossing of a level, least-squares slope over a
//! window (ŝ = Σ(x − x̄)(y − ȳ) / Σ(x − x̄)²), monotonicity up to a relative tolerance.

/// The first step whose value is at least `level` (None: never).
pub fn first_reach(series: &[(f64, f64)], level: f64) -> Option<f64> {
    series.iter().find(|p| p.1 >= level).map(|p| p.0)
}

/// The least-squares slope of y against x over the points with x ≤ `until` (NaN with
/// fewer than two distinct x or a non-finite value).
pub fn slope_until(series: &[(f64, f64)], until: f64) -> f64 {
    let pts: Vec<(f64, f64)> = series.iter().copied().filter(|p| p.0 <= until).collect();
    let n = pts.len() as f64;
    if pts.len() < 2 || pts.iter().any(|p| !p.1.is_finite()) {
        return f64::NAN;
    }
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / n;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx) * (p.0 - mx)).sum();
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    if sxx > 0.0 {
        sxy / sxx
    } else {
        f64::NAN
    }
}

/// Whether `v` is non-decreasing up to a relative tolerance:
/// `v[i] ≤ (1 + tol) · v[i+1]` for every i (and every value finite). For values that
/// may be negative (slopes) the tolerance is taken on |v[i+1]|.
pub fn monotone_within(v: &[f64], tol: f64) -> bool {
    v.iter().all(|x| x.is_finite()) && v.windows(2).all(|w| w[0] <= w[1] + tol * w[1].abs())
}
