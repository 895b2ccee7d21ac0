//! `catapult`: the phases of early training with η = c/λ₀ (Lewkowycz et al. 2020,
//! arXiv 2003.02218; THEORY.md §2).
//!
//! Config `experiments/catapult/wide-net.toml`: a wide two-layer linear network in
//! the NTK parameterization, GD with the `c_over_lambda0` schedule. For this model
//! the phase boundaries are c = 2 and c = 4 (η_max = 4/λ₀). Reduced: width 2048,
//! c ∈ {1, 3, 5}; full: width 4096 and a finer grid of c ([`Settings`], from
//! `experiments/catapult/{reduced,full}.toml`).
//!
//! Checks per c:
//! - c < 2 (lazy): the loss never exceeds its initial value; λ_final/λ₀ ∈ [0.9, 1.1];
//! - 2 < c < 4 (catapult): the loss first grows above its initial value, then ends
//!   below it; the final sharpness is below 2/η;
//! - c ≥ 5: the run ends `diverged`;
//! - 4 < c < 5 (full only): "diverges" is reported as an informative NOTE. η_max =
//!   4/λ₀ is the one-sample, infinite-width value; with n = 256 samples at width
//!   4096 the measured boundary lies between c = 4.5 (a catapult that converges) and
//!   c = 4.8 (diverged).
//!
//! **Zero targets** (Lewkowycz et al.'s setting for η_max = 4/λ₀: y = 0, λ₀ the top
//! NTK eigenvalue, width → ∞): the same network with the teacher's weights and noise
//! set to 0, so y = 0 exactly. The schedule sets η = c/λ_H from the step-0 Hessian
//! sharpness λ_H; the `s_eos` probe gives the top eigenvalue λ_NTK of the Gauss-Newton
//! matrix (the NTK Gram for MSE) at step 0, and every run is placed at c_NTK = η·λ_NTK.
//! Per width, the divergence boundary c* is the midpoint of the bracket (largest c_NTK
//! that converges, smallest that diverges; [`boundary`]). Gate: c* at the largest
//! width within [`ZERO_BAND`] (committed 2026-12-07 before the runs). Reduced: width
//! 4096, c ∈ {3.5, 4.5}; full: widths 1 024 … 16 384 and a finer grid.
//!
//! **y ≠ 0, one sample** ([`one_sample_step`]): for f = vᵀu/√m with one input x = 1,
//! r = f − y and the kernel λ = (|u|² + |v|²)/m, one GD step of ½r² gives
//! f' = f − ηλr + η²r²f/m and λ' = λ + (ηr/m)(ηλr − 4f), so the kernel grows iff
//! ηλ > 4f/(f − y) ([`one_sample_threshold`]); with y = 0 that is ηλ > 4.
//!
//! `run` trains, reduces the runs to [`Measurements`] and judges them with
//! [`checks`], a pure function (issue 11) unit-tested on hand-made measurements.

use super::{fmt, Check, Ctx, Result};
use eos_report::plot::{Figure, Style};
use eos_train::Status;
use serde::Deserialize;

/// c* at the largest width of the zero-target runs within this band (±10 % of 4).
pub const ZERO_BAND: (f64, f64) = (3.6, 4.4);

const SOURCE: &str =
    "Lewkowycz et al. 2020, Fig. 1 (two-layer linear model: η_max = 4/λ₀); THEORY.md §2";

/// The settings of each version, read from `experiments/catapult/{reduced,full}.toml`
/// (issue 11: data, not `--set` strings in the code).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The c of the main runs (η = c/λ₀), in this order.
    pub cs: Vec<f64>,
    /// The hidden width of the main runs (absent: the config's 2 048).
    pub width: Option<usize>,
    /// The widths of the zero-target runs.
    pub zero_widths: Vec<usize>,
    /// The c of the zero-target runs at every width.
    pub zero_cs: Vec<f64>,
    /// The zero-target runs' sharpness probe period (steps).
    pub zero_sharpness_every: u64,
    /// The zero-target runs' `s_eos` probe period: step 0 gives λ_NTK (k = 1).
    pub zero_s_eos_every: u64,
}

impl Settings {
    /// The config overrides of the main run at `c`.
    pub fn overrides(&self, c: f64) -> Vec<String> {
        let mut s: Vec<String> = self
            .width
            .map(|w| format!("model.widths=[32, {w}, 1]"))
            .into_iter()
            .collect();
        s.push(format!("schedule.c={c}"));
        s
    }

    /// The config overrides of the zero-target run at width `w` and `c`: the teacher's
    /// weights and noise set to 0, so y = 0 exactly (module docs).
    pub fn zero_overrides(&self, w: usize, c: f64) -> Vec<String> {
        vec![
            format!("model.widths=[32, {w}, 1]"),
            "data.weight_gain=0".into(),
            "data.noise_std=0".into(),
            format!("probes.sharpness.every={}", self.zero_sharpness_every),
            format!("probes.s_eos.every={}", self.zero_s_eos_every),
            "probes.s_eos.k=1".into(),
            format!("schedule.c={c}"),
        ]
    }
}

/// What the first steps of one run show.
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    pub loss0: f64,
    /// The largest finite loss of the run.
    pub loss_max: f64,
    /// The mean of the last tenth of the logged losses.
    pub loss_final: f64,
    pub lambda0: f64,
    pub lambda_final: f64,
}

/// Reads a run's losses and sharpness series.
pub fn phase(loss: &[(f64, f64)], sharp: &[(f64, f64)]) -> Phase {
    let k = loss.len().div_ceil(10).max(1);
    Phase {
        loss0: loss.first().map_or(f64::NAN, |p| p.1),
        loss_max: loss.iter().map(|p| p.1).fold(f64::NAN, f64::max),
        loss_final: loss[loss.len().saturating_sub(k)..]
            .iter()
            .map(|p| p.1)
            .sum::<f64>()
            / k as f64,
        lambda0: sharp.first().map_or(f64::NAN, |p| p.1),
        lambda_final: sharp.last().map_or(f64::NAN, |p| p.1),
    }
}

/// What one main run (η = c/λ₀) measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    pub c: f64,
    pub status: Status,
    pub phase: Phase,
    /// η (the step-0 learning rate).
    pub lr: f64,
}

/// What the runs measured; [`checks`] judges it.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurements {
    /// The full version: the zero-target claim gates (a NOTE in the reduced one).
    pub full: bool,
    /// The main runs, in the order of the settings' c.
    pub main: Vec<Measured>,
    /// The zero-target runs: the boundary bracket per width, widths ascending.
    pub zero: Vec<(usize, Option<Bracket>)>,
}

/// The checks of the measurements (module docs): a pure function.
pub fn checks(m: &Measurements) -> Vec<Check> {
    let mut out: Vec<Check> = (m.main.iter())
        .flat_map(|r| phase_checks(r.c, &r.phase, r.lr, r.status))
        .collect();
    // The claim is gated by the full version (widths 1k–16k); the reduced one (a single
    // width, run by CI) reports it: it gates only what holds robustly at its size.
    let check = zero_target_check(&m.zero);
    out.push(if m.full { check } else { check.informative() });
    out
}

pub fn run(ctx: &Ctx) -> Result<Vec<Check>> {
    let set: Settings = ctx.settings()?;
    let main = main_runs(ctx, &set)?;
    let zero = zero_target(ctx, &set)?;
    let m = Measurements {
        full: ctx.full,
        main,
        zero,
    };
    Ok(checks(&m))
}

/// The main runs: their measurements and the loss and curvature figures.
fn main_runs(ctx: &Ctx, set: &Settings) -> Result<Vec<Measured>> {
    let mut out = Vec::new();
    let mut loss_fig = Figure::new("catapult: loss under GD with η = c/λ₀ (first 60 steps)")
        .x_label("step")
        .y_label("loss")
        .y_log()
        .y_max(1e3);
    let mut curv_fig = Figure::new("catapult: normalised curvature ηλ_t (GD is stable below 2)")
        .x_label("step")
        .y_label("η · λ_max")
        .y_max(6.0);
    for &c in &set.cs {
        let run = ctx.train(&format!("c-{c}"), "wide-net.toml", &set.overrides(c))?;
        let loss = run.series("loss");
        let sharp = run.series("sharpness");
        let lr = run.series("lr").first().map_or(f64::NAN, |p| p.1);
        let phase = phase(&loss, &sharp);
        out.push(Measured {
            c,
            status: run.status,
            phase,
            lr,
        });
        let early: Vec<(f64, f64)> = loss.iter().copied().filter(|p| p.0 <= 60.0).collect();
        loss_fig.add(format!("c = {c}"), early, Style::Line);
        let curv: Vec<(f64, f64)> = sharp.iter().map(|&(t, l)| (t, lr * l)).collect();
        curv_fig.add(format!("c = {c}"), curv, Style::LinePoints);
    }
    let steps = curv_fig
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .fold(0.0, f64::max);
    curv_fig.hline("2 (stability limit)", 2.0, 0.0..=steps);
    ctx.save(&loss_fig, "loss")?;
    ctx.save(&curv_fig, "curvature")?;
    Ok(out)
}

/// The checks of the phase that `c` = ηλ₀ puts a run in: lazy (c < 2), catapult
/// (2 ≤ c < 4) or divergent (c ≥ 4; informative only below 5).
fn phase_checks(c: f64, p: &Phase, lr: f64, status: Status) -> Vec<Check> {
    let tag = format!("c = {c}");
    let diverged = status == Status::Diverged;
    let mut out = Vec::new();
    if c < 2.0 {
        out.push(Check::holds(
            format!("{tag} (lazy): loss never above its initial value"),
            !diverged && p.loss_max <= p.loss0,
            format!("max {} vs initial {}", fmt(p.loss_max), fmt(p.loss0)),
            "max ≤ initial",
            SOURCE,
        ));
        out.push(Check::within(
            format!("{tag} (lazy): λ_final/λ₀"),
            p.lambda_final / p.lambda0,
            0.9,
            1.1,
            SOURCE,
        ));
    } else if c < 4.0 {
        out.push(Check::holds(
            format!("{tag} (catapult): loss spikes, then ends below its initial value"),
            !diverged && p.loss_max > p.loss0 && p.loss_final < p.loss0,
            format!(
                "initial {}, peak {}, final {}",
                fmt(p.loss0),
                fmt(p.loss_max),
                fmt(p.loss_final)
            ),
            "peak > initial > final",
            SOURCE,
        ));
        out.push(Check::holds(
            format!("{tag} (catapult): final λ below 2/η"),
            p.lambda_final < 2.0 / lr,
            format!("λ_final {} (λ₀ {})", fmt(p.lambda_final), fmt(p.lambda0)),
            format!("< 2/η = {}", fmt(2.0 / lr)),
            SOURCE,
        ));
    } else {
        let check = Check::holds(
            format!("{tag}: the run diverges"),
            diverged,
            status.to_string(),
            "diverged",
            SOURCE,
        );
        // near the boundary finite n and width move it: informative only
        out.push(if c < 5.0 { check.informative() } else { check });
    }
    out
}

/// One GD step on ½(f − y)² for f = vᵀu/√m (module docs): (f', λ').
pub fn one_sample_step(f: f64, y: f64, lambda: f64, eta: f64, m: f64) -> (f64, f64) {
    let r = f - y;
    let f1 = f - eta * lambda * r + eta * eta * r * r * f / m;
    let l1 = lambda + eta * r / m * (eta * lambda * r - 4.0 * f);
    (f1, l1)
}

/// The ηλ above which one GD step grows the kernel: 4f/(f − y) (module docs).
pub fn one_sample_threshold(f: f64, y: f64) -> f64 {
    4.0 * f / (f - y)
}

/// (largest converging c, smallest diverging c, midpoint).
pub type Bracket = (f64, f64, f64);

/// The divergence boundary from `(c, diverged)` pairs: the bracket (largest c that
/// converged, smallest c that diverged) and its midpoint, or None when the grid has
/// no bracket or a converged c lies above a diverged one.
pub fn boundary(points: &[(f64, bool)]) -> Option<Bracket> {
    let lo = points
        .iter()
        .filter(|p| !p.1)
        .map(|p| p.0)
        .fold(f64::NAN, f64::max);
    let hi = points
        .iter()
        .filter(|p| p.1)
        .map(|p| p.0)
        .fold(f64::NAN, f64::min);
    (lo.is_finite() && hi.is_finite() && lo < hi).then_some((lo, hi, 0.5 * (lo + hi)))
}

/// The check on the zero-target boundary at the largest width, from per-width
/// `(width, boundary)` measurements.
pub fn zero_target_check(per_width: &[(usize, Option<Bracket>)]) -> Check {
    let all: Vec<String> = per_width
        .iter()
        .map(|(w, b)| match b {
            Some((lo, hi, _)) => format!("{w}: ({}, {})", fmt(*lo), fmt(*hi)),
            None => format!("{w}: no bracket"),
        })
        .collect();
    let last = per_width.last().and_then(|p| p.1);
    let c = last.map_or(f64::NAN, |b| b.2);
    Check::holds(
        format!(
            "y = 0: boundary c* = η·λ_NTK at width {}",
            per_width.last().map_or(0, |p| p.0)
        ),
        c >= ZERO_BAND.0 && c <= ZERO_BAND.1,
        format!("{} (brackets {})", fmt(c), all.join("; ")),
        format!("in [{}, {}]", fmt(ZERO_BAND.0), fmt(ZERO_BAND.1)),
        "Lewkowycz et al. 2020, §2 (y = 0, wide limit: η_max = 4/λ₀); THEORY.md §2",
    )
}

/// Zero-target runs: the per-width boundary in c_NTK (module docs) and their figure.
pub fn zero_target(ctx: &Ctx, set: &Settings) -> Result<Vec<(usize, Option<Bracket>)>> {
    let mut per_width = Vec::new();
    let mut fig = Figure::new("catapult, y = 0: diverged (1) or not (0) against c = η·λ_NTK")
        .x_label("c = η · λ_NTK(step 0)")
        .y_label("diverged");
    for &w in &set.zero_widths {
        let mut pts = Vec::new();
        for &c in &set.zero_cs {
            let s = set.zero_overrides(w, c);
            let run = ctx.train(&format!("y0-w{w}-c-{c}"), "wide-net.toml", &s)?;
            let lr = run.series("lr").first().map_or(f64::NAN, |p| p.1);
            let ntk = run
                .metrics
                .element("gn_top_eigenvalues", 0)
                .first()
                .map_or(f64::NAN, |p| p.1);
            pts.push((lr * ntk, run.diverged()));
        }
        let b = boundary(&pts);
        eprintln!("[catapult] y = 0, width {w}: {pts:?} → {b:?}");
        let xy = pts
            .iter()
            .map(|p| (p.0, f64::from(u8::from(p.1))))
            .collect();
        fig.add(format!("width {w}"), xy, Style::LinePoints);
        per_width.push((w, b));
    }
    ctx.save(&fig, "zero-target")?;
    Ok(per_width)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phase_reads_peak_and_tail() {
        let loss: Vec<(f64, f64)> = [1.0, 2.0, 8.0, 0.5, 0.2, 0.1, 0.1, 0.1, 0.1, 0.1]
            .iter()
            .enumerate()
            .map(|(i, &v)| (i as f64, v))
            .collect();
        let sharp = vec![(0.0, 0.1), (5.0, 0.07)];
        let p = phase(&loss, &sharp);
        assert_eq!((p.loss0, p.loss_max, p.loss_final), (1.0, 8.0, 0.1));
        assert_eq!((p.lambda0, p.lambda_final), (0.1, 0.07));
    }

    #[test]
    fn one_sample_step_matches_explicit_vectors() {
        // f = vᵀu/√m, λ = (|u|² + |v|²)/m, one GD step on ½(f − y)² done by hand.
        let m: f64 = 64.0;
        let u: Vec<f64> = (0..64)
            .map(|i| ((i * 37 % 11) as f64 - 5.0) / 3.0)
            .collect();
        let v: Vec<f64> = (0..64)
            .map(|i| ((i * 53 % 13) as f64 - 6.0) / 4.0)
            .collect();
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
        let f = dot(&u, &v) / m.sqrt();
        let lambda = (dot(&u, &u) + dot(&v, &v)) / m;
        for (y, eta) in [(0.0, 0.02), (1.5, 0.05), (-2.0, 0.01)] {
            let r = f - y;
            let u1: Vec<f64> = u
                .iter()
                .zip(&v)
                .map(|(a, b)| a - eta * r * b / m.sqrt())
                .collect();
            let v1: Vec<f64> = v
                .iter()
                .zip(&u)
                .map(|(a, b)| a - eta * r * b / m.sqrt())
                .collect();
            let (f1, l1) = one_sample_step(f, y, lambda, eta, m);
            assert!((f1 - dot(&u1, &v1) / m.sqrt()).abs() < 1e-9);
            assert!((l1 - (dot(&u1, &u1) + dot(&v1, &v1)) / m).abs() < 1e-9);
        }
        // The kernel's change flips sign exactly at ηλ = 4f/(f − y).
        for y in [0.0, 0.3 * f, -f] {
            let c = one_sample_threshold(f, y);
            let grow = |ratio: f64| one_sample_step(f, y, lambda, ratio * c / lambda, m).1 > lambda;
            assert!(grow(1.01) && !grow(0.99), "y = {y}, threshold {c}");
        }
        assert_eq!(one_sample_threshold(2.0, 0.0), 4.0);
        assert_eq!(one_sample_threshold(2.0, 1.0), 8.0);
    }

    #[test]
    fn settings_give_the_overrides_of_each_version() {
        let reduced: Settings = crate::settings::of("catapult", false);
        assert_eq!(
            reduced,
            Settings {
                cs: vec![1.0, 3.0, 5.0],
                width: None,
                zero_widths: vec![4096],
                zero_cs: vec![3.5, 4.5],
                zero_sharpness_every: 100,
                zero_s_eos_every: 1000,
            }
        );
        assert_eq!(reduced.overrides(3.0), ["schedule.c=3"]);
        assert_eq!(
            reduced.zero_overrides(4096, 3.5),
            [
                "model.widths=[32, 4096, 1]",
                "data.weight_gain=0",
                "data.noise_std=0",
                "probes.sharpness.every=100",
                "probes.s_eos.every=1000",
                "probes.s_eos.k=1",
                "schedule.c=3.5",
            ]
        );
        let full: Settings = crate::settings::of("catapult", true);
        assert_eq!(
            full,
            Settings {
                cs: vec![0.5, 1.0, 1.5, 2.5, 3.0, 3.5, 3.9, 4.2, 4.5, 4.8, 6.0],
                width: Some(4096),
                zero_widths: vec![1024, 2048, 4096, 8192, 16384],
                zero_cs: vec![3.0, 3.5, 3.8, 3.9, 4.0, 4.1, 4.2, 4.5, 5.0],
                zero_sharpness_every: 100,
                zero_s_eos_every: 1000,
            }
        );
        assert_eq!(
            full.overrides(0.5),
            ["model.widths=[32, 4096, 1]", "schedule.c=0.5"]
        );
        assert_eq!(full.zero_widths.last(), Some(&16384));
    }

    #[test]
    fn boundary_brackets_and_rejects() {
        let pts = [(3.0, false), (3.9, false), (4.1, true), (5.0, true)];
        let (lo, hi, mid) = boundary(&pts).unwrap();
        assert_eq!((lo, hi), (3.9, 4.1));
        assert!((mid - 4.0).abs() < 1e-12);
        assert!(boundary(&[(3.0, false), (4.0, false)]).is_none());
        assert!(boundary(&[(3.0, true), (4.0, false)]).is_none());
        let ok = zero_target_check(&[(1024, Some((4.2, 4.6, 4.4))), (4096, Some((3.9, 4.1, 4.0)))]);
        assert!(ok.pass);
        let bad = zero_target_check(&[(4096, Some((4.5, 4.8, 4.65)))]);
        assert!(!bad.pass);
        assert!(!zero_target_check(&[(4096, None)]).pass);
    }

    fn measured(c: f64, status: Status, phase: Phase, lr: f64) -> Measured {
        Measured {
            c,
            status,
            phase,
            lr,
        }
    }

    /// λ₀ = 1; the loss peaks at `max` and ends at `last`; λ ends at `lambda`.
    fn ph(max: f64, last: f64, lambda: f64) -> Phase {
        Phase {
            loss0: 1.0,
            loss_max: max,
            loss_final: last,
            lambda0: 1.0,
            lambda_final: lambda,
        }
    }

    /// Every gate of the measurements holds, each exactly at its threshold.
    fn at_thresholds() -> Measurements {
        let ok = Status::Finished;
        Measurements {
            full: true,
            main: vec![
                // lazy: max = initial; λ_final/λ₀ = 0.9 and 1.1 (the band's ends).
                measured(1.0, ok, ph(1.0, 0.5, 0.9), 1.0),
                measured(1.999, ok, ph(1.0, 0.5, 1.1), 1.0),
                // c = 2 is a catapult: peak > initial > final; λ_final < 2/η = 4.
                measured(2.0, ok, ph(1.5, 0.999, 3.999), 0.5),
                // c = 4 diverges as a NOTE, c = 5 as a gate.
                measured(4.0, Status::Diverged, ph(1e9, 1e9, 9.0), 4.0),
                measured(5.0, Status::Diverged, ph(1e9, 1e9, 9.0), 5.0),
            ],
            zero: vec![(1024, None), (4096, Some((3.5, 3.7, 3.6)))],
        }
    }

    #[test]
    fn checks_pass_exactly_at_the_thresholds() {
        let c = checks(&at_thresholds());
        let what: Vec<&str> = c
            .iter()
            .map(|c| &c.what[..c.what.find(':').unwrap()])
            .collect();
        assert_eq!(
            what,
            [
                "c = 1 (lazy)",
                "c = 1 (lazy)",
                "c = 1.999 (lazy)",
                "c = 1.999 (lazy)",
                "c = 2 (catapult)",
                "c = 2 (catapult)",
                "c = 4",
                "c = 5",
                "y = 0"
            ]
        );
        assert!(c.iter().all(|c| c.pass), "{c:?}");
        let notes: Vec<bool> = c.iter().map(|c| c.informative).collect();
        assert_eq!(
            notes,
            [false, false, false, false, false, false, true, false, false]
        );
        assert_eq!(c[5].expected, "< 2/η = 4");
        assert_eq!(
            c[8].measured,
            "3.6 (brackets 1024: no bracket; 4096: (3.5, 3.7))"
        );
        assert_eq!(c[8].what, "y = 0: boundary c* = η·λ_NTK at width 4096");
    }

    #[test]
    fn each_gate_fails_just_past_its_threshold() {
        let fails = |f: &dyn Fn(&mut Measurements), i: usize| {
            let mut m = at_thresholds();
            f(&mut m);
            crate::assert_only_fails(&checks(&m), i);
        };
        fails(&|m| m.main[0].phase.loss_max = 1.000_001, 0);
        fails(&|m| m.main[0].status = Status::Diverged, 0);
        fails(&|m| m.main[0].phase.lambda_final = 0.899_999, 1);
        fails(&|m| m.main[1].phase.lambda_final = 1.100_001, 3);
        fails(&|m| m.main[2].phase.loss_max = 1.0, 4);
        fails(&|m| m.main[2].phase.loss_final = 1.0, 4);
        fails(&|m| m.main[2].status = Status::Diverged, 4);
        fails(&|m| m.main[2].phase.lambda_final = 4.0, 5);
        fails(&|m| m.main[4].status = Status::Finished, 7);
        fails(&|m| m.zero[1].1 = Some((4.3, 4.52, 4.41)), 8);
        fails(&|m| m.zero[1].1 = Some((3.5, 3.69, 3.59)), 8);
        fails(&|m| m.zero[1].1 = None, 8);
        // c = 4 does not diverge: a NOTE that does not hold.
        let mut m = at_thresholds();
        m.main[3].status = Status::Finished;
        let c = checks(&m);
        assert!(!c[6].pass && c[6].informative);
    }

    #[test]
    fn reduced_zero_target_claim_is_a_note() {
        let mut m = at_thresholds();
        m.full = false;
        m.zero[1].1 = None;
        let c = checks(&m);
        assert!(!c[8].pass && c[8].informative);
        m.main.clear();
        m.zero.clear();
        let c = checks(&m);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].what, "y = 0: boundary c* = η·λ_NTK at width 0");
    }
}
