//! Small statistics shared by the crates above eos-train (reproduction checks, plots,
//! benches): one definition of the median, so that every table agrees.

/// The median of the finite values of `values`: the middle value for an odd count,
/// the mean of the two middle values for an even count, and `NaN` when there is no
/// finite value (callers that need a number pick their own fallback).
///
/// ```
/// use eos_train::stats::median;
/// assert_eq!(median([3.0, 1.0, 2.0]), 2.0);
/// assert_eq!(median([4.0, 1.0, 2.0, 3.0]), 2.5);
/// assert_eq!(median([f64::NAN, 1.0]), 1.0);
/// assert!(median(Vec::<f64>::new()).is_nan());
/// ```
pub fn median(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        0.5 * (v[m - 1] + v[m])
    }
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn odd_even_empty_and_non_finite() {
        assert_eq!(median([3.0, f64::NAN, 1.0, 2.0]), 2.0);
        assert_eq!(median([4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median([f64::INFINITY, 5.0]), 5.0);
        assert!(median([]).is_nan());
        assert!(median([f64::NAN]).is_nan());
    }
}
