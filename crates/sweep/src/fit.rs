//! η* extraction and log-log slope fits (THEORY.md §3), as pure functions.
//!
//! **η\*** of a group of runs (one γ, all other settings fixed) is the learning rate
//! with the lowest final loss at a fixed number of steps (Atanasov et al. 2024). With
//! several seeds per learning rate, the final losses are averaged over seeds first;
//! a learning rate is *eligible* only if every one of its seeds has a finite loss
//! (a diverged or failed seed disqualifies it). Then
//!
//! ```text
//! η* = argmin_{η eligible} mean_seeds L(η).
//! ```
//!
//! On a grid with 2 points per decade the argmin is quantised to half a decade, so
//! [`eta_star`] also gives a refined value: the vertex of the parabola through
//! (ln η, ln L) at the argmin and its two grid neighbours (when both are eligible and
//! the parabola is convex), which is exact when ln L is quadratic in ln η near η*.
//!
//! **Slopes**: η* ∝ γ^s is fitted by ordinary least squares of ln η* on ln γ,
//!
//! ```text
//! s = Σ (u − ū)(v − v̄) / Σ (u − ū)²,   u = ln γ, v = ln η*,   intercept = v̄ − s ū,
//! ```
//!
//! separately on the points with γ < split (lazy regime, expected s = 2) and γ > split
//! (rich regime, expected s = 2/L) — [`regime_slopes`], split = 1 by default.

/// A least-squares line through (ln x, ln y): y ≈ exp(intercept) · x^slope.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fit {
    pub slope: f64,
    /// ln of the prefactor.
    pub intercept: f64,
    /// Points used.
    pub n: usize,
}

impl Fit {
    /// The fitted y at `x`.
    pub fn eval(&self, x: f64) -> f64 {
        (self.intercept + self.slope * x.ln()).exp()
    }
}

/// Least squares of ln y on ln x over the points with x, y > 0 and finite; `None`
/// with fewer than two distinct x.
pub fn loglog_fit(points: &[(f64, f64)]) -> Option<Fit> {
    let uv: Vec<(f64, f64)> = points
        .iter()
        .filter(|(x, y)| *x > 0.0 && *y > 0.0 && x.is_finite() && y.is_finite())
        .map(|(x, y)| (x.ln(), y.ln()))
        .collect();
    let n = uv.len();
    if n < 2 {
        return None;
    }
    let (mu, mv) = uv.iter().fold((0.0, 0.0), |(a, b), (u, v)| {
        (a + u / n as f64, b + v / n as f64)
    });
    let (sxy, sxx) = uv.iter().fold((0.0, 0.0), |(sxy, sxx), (u, v)| {
        (sxy + (u - mu) * (v - mv), sxx + (u - mu) * (u - mu))
    });
    if sxx <= 0.0 {
        return None;
    }
    let slope = sxy / sxx;
    Some(Fit {
        slope,
        intercept: mv - slope * mu,
        n,
    })
}

/// Log-log fits on the points with x < `split` and with x > `split` (points at the
/// split itself belong to neither).
pub fn regime_slopes(points: &[(f64, f64)], split: f64) -> (Option<Fit>, Option<Fit>) {
    let below: Vec<(f64, f64)> = points.iter().copied().filter(|p| p.0 < split).collect();
    let above: Vec<(f64, f64)> = points.iter().copied().filter(|p| p.0 > split).collect();
    (loglog_fit(&below), loglog_fit(&above))
}

/// The η* of one group.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EtaStar {
    /// The eligible learning rate with the lowest mean final loss.
    pub lr: f64,
    /// That mean loss.
    pub loss: f64,
    /// The parabolic refinement in (ln η, ln L); equals `lr` when not applicable.
    pub lr_refined: f64,
    /// Distinct learning rates tried.
    pub n_lr: usize,
    /// Of which eligible (every seed finite).
    pub n_eligible: usize,
}

/// Mean loss per distinct learning rate, ascending in lr: `None` where some seed has
/// no finite loss. Learning rates equal to 1e-12 relative are the same.
pub fn mean_over_seeds(samples: &[(f64, Option<f64>)]) -> Vec<(f64, Option<f64>)> {
    let mut s: Vec<(f64, Option<f64>)> = samples
        .iter()
        .copied()
        .filter(|(lr, _)| lr.is_finite())
        .collect();
    s.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut out: Vec<(f64, Vec<Option<f64>>)> = Vec::new();
    for (lr, loss) in s {
        match out.last_mut() {
            Some((l, v)) if (lr - *l).abs() <= 1e-12 * lr.abs().max(l.abs()) => v.push(loss),
            _ => out.push((lr, vec![loss])),
        }
    }
    out.into_iter()
        .map(|(lr, v)| {
            let all: Option<Vec<f64>> = v.iter().map(|l| l.filter(|x| x.is_finite())).collect();
            (lr, all.map(|a| a.iter().sum::<f64>() / a.len() as f64))
        })
        .collect()
}

/// η* of one group from `(lr, final loss)` samples (one per seed and lr; `None` =
/// diverged or failed). `None` when no learning rate is eligible.
pub fn eta_star(samples: &[(f64, Option<f64>)]) -> Option<EtaStar> {
    let means = mean_over_seeds(samples);
    let n_eligible = means.iter().filter(|m| m.1.is_some()).count();
    let (i, lr, loss) = means
        .iter()
        .enumerate()
        .filter_map(|(i, (lr, l))| l.map(|l| (i, *lr, l)))
        .min_by(|a, b| a.2.total_cmp(&b.2))?;
    let refined = (i > 0 && i + 1 < means.len())
        .then(|| {
            let (x0, y0) = (means[i - 1].0, means[i - 1].1?);
            let (x2, y2) = (means[i + 1].0, means[i + 1].1?);
            parabola_vertex([x0.ln(), lr.ln(), x2.ln()], [y0.ln(), loss.ln(), y2.ln()])
        })
        .flatten()
        .map(f64::exp)
        .filter(|r| r.is_finite());
    Some(EtaStar {
        lr,
        loss,
        lr_refined: refined.unwrap_or(lr),
        n_lr: means.len(),
        n_eligible,
    })
}

/// The vertex x of the parabola through three points with x₀ < x₁ < x₂, if it is
/// convex and the vertex lies in [x₀, x₂] (Newton's divided differences).
pub fn parabola_vertex(x: [f64; 3], y: [f64; 3]) -> Option<f64> {
    let d01 = (y[1] - y[0]) / (x[1] - x[0]);
    let d12 = (y[2] - y[1]) / (x[2] - x[1]);
    let a = (d12 - d01) / (x[2] - x[0]);
    let b = d01 - a * (x[0] + x[1]);
    let v = -b / (2.0 * a);
    (a > 0.0 && v.is_finite() && v >= x[0] && v <= x[2]).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Synthetic η*(γ) = γ² for γ < 1 and γ^{2/3} for γ > 1 (the scalings of THEORY.md
    /// §3 with L = 3): both branches are exact power laws, so least squares recovers
    /// the exponents to rounding (1e-9 allows for ln/exp in f64 over 10 decades).
    #[test]
    fn slopes_of_the_two_regimes() {
        let gammas: Vec<f64> = (-10..=10).map(|k| 10f64.powf(k as f64 / 2.0)).collect();
        let pts: Vec<(f64, f64)> = gammas
            .iter()
            .map(|&g| {
                (
                    g,
                    if g < 1.0 {
                        g * g
                    } else {
                        3.0 * g.powf(2.0 / 3.0)
                    },
                )
            })
            .collect();
        let (lo, hi) = regime_slopes(&pts, 1.0);
        let (lo, hi) = (lo.unwrap(), hi.unwrap());
        assert!((lo.slope - 2.0).abs() < 1e-9, "{lo:?}");
        assert!((hi.slope - 2.0 / 3.0).abs() < 1e-9, "{hi:?}");
        assert_eq!((lo.n, hi.n), (10, 10));
        assert!(lo.intercept.abs() < 1e-9);
        assert!((hi.eval(1e3) - 300.0).abs() < 1e-9 * 300.0);
        // A different split moves points between the fits: γ = 10^-5 … 10^-2.5.
        let (lo, _) = regime_slopes(&pts, 1e-2);
        assert_eq!(lo.unwrap().n, 6);
        assert!(loglog_fit(&[(1.0, 1.0)]).is_none());
        assert!(loglog_fit(&[(2.0, 1.0), (2.0, 3.0)]).is_none());
    }

    #[test]
    fn eta_star_averages_seeds_and_skips_diverged() {
        let s = [
            (0.1, Some(3.0)),
            (0.1, Some(1.0)), // mean 2.0
            (1.0, Some(1.0)),
            (1.0, None), // one seed diverged: not eligible
            (0.01, Some(2.5)),
            (0.01, Some(2.5)),
        ];
        let e = eta_star(&s).unwrap();
        assert_eq!((e.lr, e.loss, e.n_lr, e.n_eligible), (0.1, 2.0, 3, 2));
        // The right neighbour is not eligible: no refinement.
        assert_eq!(e.lr_refined, 0.1);
        assert!(eta_star(&[(1.0, None), (2.0, Some(f64::NAN))]).is_none());
    }

    /// ln L = (ln η − ln η₀)² is a parabola in (ln η, ln L): the refinement recovers
    /// η₀ = 0.02 from a grid with 2 points per decade (f64 rounding only).
    #[test]
    fn parabolic_refinement_is_exact_for_a_log_parabola() {
        let eta0: f64 = 0.02;
        let s: Vec<(f64, Option<f64>)> = (0..9)
            .map(|k| {
                let lr = 10f64.powf(-(k as f64) / 2.0);
                (lr, Some(((lr.ln() - eta0.ln()).powi(2)).exp()))
            })
            .collect();
        let e = eta_star(&s).unwrap();
        assert!((e.lr - 10f64.powf(-1.5)).abs() < 1e-15);
        assert!((e.lr_refined / eta0 - 1.0).abs() < 1e-12, "{e:?}");
        assert_eq!(parabola_vertex([0.0, 1.0, 2.0], [0.0, -1.0, -3.0]), None);
    }
}
