//! `threshold-neurons`: a shared negative bias ("threshold neurons") is learned only
//! above a critical step size η_c, through the edge of stability (Ahn, Bubeck, Chewi,
//! Lee, Suarez, Zhang, NeurIPS 2023, arXiv 2212.07469; THEORY.md §5; issue 14).
//!
//! Config `experiments/threshold-neurons/symmetric-pair.toml` (its header gives every
//! choice and what is inferred): the paper's data x = λ y e_j + ξ (d = 200, λ = 3,
//! n = 300, ξ ~ N(0, I_d)), the symmetric model with ONE shared bias
//! f(x) = Σ aᵢ[σ(⟨wᵢ,x⟩ + b) − σ(−⟨wᵢ,x⟩ + b)] (`symmetric_pair` m = 200 + a dense
//! readout without bias, trained: eos cannot freeze a layer), logistic loss,
//! full-batch GD, f64, b = 0 at init. Every run trains for the same total time
//! τ = η·T, as the paper's Fig. 1 does (η·T = 10 there).
//!
//! η_c is predicted before the sweep, from the data and init alone: a reference run at
//! a small step η_ref (total time τ) gives λ_GF = max λ_max along gradient flow, and
//! η_pred = 2/λ_GF — the stability reading of the paper's mean-model threshold
//! 8π/d² (**inferred**; 8π/d² itself belongs to the paper's per-coordinate model with
//! a summed loss and is printed, not compared). The grid is log-spaced around η_pred:
//! reduced 8 points over [η_pred/3, 3·η_pred]; full 25 over [η_pred/4, 4·η_pred].
//!
//! b is the final shared bias over s, the RMS preactivation at init; b_plat = median b
//! over the runs with η ≥ 2·η_pred; η_q = where b crosses q·b_plat for the last time
//! (interpolated in log η); η_c = η_0.5. Gates (committed before the runs; reduced:
//! T1–T3 gate, T4–T7 are NOTEs; full: all gate):
//! - T1 every run finished;
//! - T2 max |b| ≤ 0.1 over the runs with η ≤ η_pred/1.5 (no threshold below);
//! - T3 b_plat ≤ −0.1 (threshold neurons above);
//! - T4 sharp: (η_0.9 − η_0.1)/η_c ≤ 0.5;
//! - T5 η_c/η_pred in [0.5, 2];
//! - T6 mean test accuracy over η ≥ η_0.9 minus over η ≤ η_0.1 ≥ 0.02;
//! - T7 every run with η ≥ η_0.9 reaches λ_max ≥ 0.9·2/η, and every run with
//!   η ≤ η_0.1 stays below 2/η (the threshold is learned through the EoS).

use super::{fmt, Check, Ctx, Run};
use eos_report::plot::{Figure, Series, Style};
use eos_train::Status;

const SOURCE: &str = "Ahn et al. 2023, Fig. 1 and the mean-model theorem; THEORY.md §5";
const SOURCE_EOS: &str = "Ahn et al. 2023 (EoS at large η); Cohen et al. 2021; THEORY.md §1, §5";

/// Must match `experiments/threshold-neurons/sparse-coding.toml`.
const DIM: f64 = 200.0;
const SIGNAL: f64 = 3.0;
const NOISE_VAR: f64 = 1.0;
const GAIN: f64 = std::f64::consts::FRAC_1_SQRT_2;

/// |b̄|/s below which a bias counts as ≈ 0, and −b̄/s above which it is a threshold.
const NEAR_ZERO: f64 = 0.1;
const THRESHOLD: f64 = 0.1;

/// The RMS of a hidden preactivation ⟨w_i, x⟩ at initialisation:
/// w ~ N(0, gain²/d · I), E‖x‖² = dσ² + λ².
pub fn preactivation_scale(gain: f64, dim: f64, noise_var: f64, signal: f64) -> f64 {
    gain * ((dim * noise_var + signal * signal) / dim).sqrt()
}

/// The log-spaced grid `lo · (hi/lo)^(k/(n−1))`, k = 0 … n−1.
pub fn log_grid(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    if n < 2 {
        return vec![lo];
    }
    (0..n)
        .map(|k| lo * (hi / lo).powf(k as f64 / (n - 1) as f64))
        .collect()
}

/// Where the bias turns negative along the η grid.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// Geometric mean of the last η above the threshold and the first η at or below
    /// it, when the runs below the threshold are exactly those above one η.
    pub eta_c: Option<f64>,
    /// Whether the threshold runs form an upper set of the grid (one crossing).
    pub sharp: bool,
    /// How many runs are threshold runs.
    pub above: usize,
}

/// `points`: (η, b̄/s) sorted by η. A run is a threshold run when b̄/s ≤ −`thr`.
pub fn transition(points: &[(f64, f64)], thr: f64) -> Transition {
    let is_thr: Vec<bool> = points.iter().map(|p| p.1 <= -thr).collect();
    let above = is_thr.iter().filter(|&&t| t).count();
    let first = is_thr.iter().position(|&t| t);
    let sharp = first.is_some_and(|i| is_thr[i..].iter().all(|&t| t));
    let eta_c = match first {
        Some(i) if sharp && i > 0 => Some((points[i - 1].0 * points[i].0).sqrt()),
        _ => None,
    };
    Transition {
        eta_c,
        sharp,
        above,
    }
}

/// What the sharpness and loss of one run show about the edge of stability.
#[derive(Debug, Clone, PartialEq)]
pub struct Edge {
    pub lambda0: f64,
    pub peak: f64,
    /// The EoS episode: from the first to the last probe with λ ≥ 0.9·2/η
    /// (steps), and the median λ/(2/η) over it (None: 2/η never reached).
    pub episode: Option<(f64, f64)>,
    pub episode_median: f64,
    /// Logged steps where the loss rose.
    pub loss_rises: usize,
}

/// Reads one run's sharpness and loss series; `two` = 2/η.
pub fn edge(sharp: &[(f64, f64)], loss: &[(f64, f64)], two: f64) -> Edge {
    let at = |p: &(f64, f64)| p.1 >= 0.9 * two;
    let first = sharp.iter().position(at);
    let last = sharp.iter().rposition(at);
    let (episode, episode_median) = match (first, last) {
        (Some(i), Some(j)) => (
            Some((sharp[i].0, sharp[j].0)),
            super::median(sharp[i..=j].iter().map(|p| p.1 / two)),
        ),
        _ => (None, f64::NAN),
    };
    Edge {
        lambda0: sharp.first().map_or(f64::NAN, |p| p.1),
        peak: sharp.iter().map(|p| p.1).fold(f64::NAN, f64::max),
        episode,
        episode_median,
        loss_rises: loss.windows(2).filter(|w| w[1].1 > w[0].1).count(),
    }
}

/// The gradient-flow sharpness peak λ*: the highest sharpness over the runs whose
/// sharpness stayed below 2/η (`(η, peak)` pairs). NaN when there are none.
pub fn stable_peak(runs: &[(f64, f64)]) -> f64 {
    runs.iter()
        .filter(|(eta, peak)| *peak < 2.0 / eta)
        .map(|p| p.1)
        .fold(f64::NAN, f64::max)
}

struct Point {
    eta: f64,
    run: Run,
    bias: f64,
    edge: Edge,
}

fn vline(name: &str, x: f64, lo: f64, hi: f64) -> Series {
    Series::new(name, vec![(x, lo), (x, hi)], Style::Dashed)
}

pub fn run(ctx: &Ctx) -> anyhow::Result<Vec<Check>> {
    let (n, steps) = if ctx.full { (21, 1500) } else { (11, 400) };
    let s = preactivation_scale(GAIN, DIM, NOISE_VAR, SIGNAL);
    let mut pts = Vec::new();
    for eta in log_grid(0.1, 4.0, n) {
        let set = vec![format!("optim.lr={eta}"), format!("train.steps={steps}")];
        let run = ctx.train(&format!("eta-{eta:.4}"), "sparse-coding.toml", &set)?;
        let bias = run
            .metrics
            .element("bias_mean", 0)
            .last()
            .map_or(f64::NAN, |p| p.1);
        let edge = edge(&run.series("sharpness"), &run.series("loss"), 2.0 / eta);
        pts.push(Point {
            eta,
            run,
            bias,
            edge,
        });
    }
    let mut checks = Vec::new();
    let finished = pts
        .iter()
        .filter(|p| p.run.status == Status::Finished)
        .count();
    checks.push(Check::holds(
        "every run finished",
        finished == pts.len(),
        format!("{finished}/{}", pts.len()),
        "all",
        SOURCE,
    ));
    let rel: Vec<(f64, f64)> = pts.iter().map(|p| (p.eta, p.bias / s)).collect();
    let lambda_star = stable_peak(&pts.iter().map(|p| (p.eta, p.edge.peak)).collect::<Vec<_>>());
    let lambda0 = pts.first().map_or(f64::NAN, |p| p.edge.lambda0);
    let eta_pred = 2.0 / lambda_star;
    let mean_model = 8.0 * std::f64::consts::PI / (DIM * DIM);

    let below: Vec<f64> = rel
        .iter()
        .filter(|p| p.0 <= eta_pred / 1.5)
        .map(|p| p.1.abs())
        .collect();
    let below_max = below.iter().copied().fold(f64::NAN, f64::max);
    checks.push(Check::holds(
        format!(
            "below the transition (η ≤ η_pred/1.5 = {}): max |b̄|/s",
            fmt(eta_pred / 1.5)
        ),
        !below.is_empty() && below_max <= NEAR_ZERO,
        format!(
            "{} over {} runs (s = {})",
            fmt(below_max),
            below.len(),
            fmt(s)
        ),
        format!("≤ {NEAR_ZERO} (bias ≈ 0)"),
        SOURCE,
    ));
    let above: Vec<f64> = rel
        .iter()
        .filter(|p| p.0 >= 1.5 * eta_pred)
        .map(|p| p.1)
        .collect();
    let above_max = above.iter().copied().fold(f64::NAN, f64::max);
    checks.push(Check::holds(
        format!(
            "above the transition (η ≥ 1.5·η_pred = {}): max b̄/s",
            fmt(1.5 * eta_pred)
        ),
        !above.is_empty() && above_max <= -THRESHOLD,
        format!("{} over {} runs", fmt(above_max), above.len()),
        format!("≤ −{THRESHOLD} (threshold neurons)"),
        SOURCE,
    ));
    let tr = transition(&rel, THRESHOLD);
    checks.push(Check::holds(
        "sharp transition: the runs with b̄/s ≤ −0.1 are those above one η_c",
        tr.sharp && tr.eta_c.is_some(),
        tr.eta_c.map_or_else(
            || format!("no single crossing ({} threshold runs)", tr.above),
            |e| {
                format!(
                    "η_c = {} ({} of {} runs above)",
                    fmt(e),
                    tr.above,
                    rel.len()
                )
            },
        ),
        "one crossing inside the grid",
        SOURCE,
    ));
    let eta_c = tr.eta_c.unwrap_or(f64::NAN);
    let ratio = eta_c / eta_pred;
    checks.push(Check::holds(
        "η_c vs the mean-model criterion η_c = 2/λ* (8π/d² = 2/(d²/4π) in the paper's model)",
        ratio.is_finite() && (0.5..=2.0).contains(&ratio),
        format!(
            "η_c = {}, 2/λ* = {} (λ* = {}), ratio {}; raw η_c/(8π/d²) = {}/{} = {} (other model and data scale)",
            fmt(eta_c),
            fmt(eta_pred),
            fmt(lambda_star),
            fmt(ratio),
            fmt(eta_c),
            fmt(mean_model),
            fmt(eta_c / mean_model)
        ),
        "ratio in [0.5, 2]",
        "THEORY.md §5 (8π/d², inferred); λ* = peak sharpness of the runs below 2/η",
    ));
    let window: Vec<&Point> = pts
        .iter()
        .filter(|p| p.eta > eta_c && p.eta < 2.0 / lambda0)
        .collect();
    checks.push(Check::holds(
        format!(
            "grid has runs in the EoS window η_c < η < 2/λ₀ = {}",
            fmt(2.0 / lambda0)
        ),
        !window.is_empty(),
        format!("{} runs", window.len()),
        "≥ 1",
        SOURCE_EOS,
    ));
    for p in &window {
        let two = 2.0 / p.eta;
        let r = p.edge.episode_median;
        checks.push(Check::holds(
            format!(
                "η = {}: median λ/(2/η) over the EoS episode (λ ≥ 0.9·2/η, 2/η = {}); loss non-monotone",
                fmt(p.eta),
                fmt(two)
            ),
            (0.85..=1.15).contains(&r) && p.edge.loss_rises > 0,
            format!(
                "{} over steps {} (λ₀ = {}, peak {}), {} loss rises, b̄/s = {}",
                fmt(r),
                p.edge
                    .episode
                    .map_or("none".into(), |(a, b)| format!("{a}–{b}")),
                fmt(p.edge.lambda0),
                fmt(p.edge.peak),
                p.edge.loss_rises,
                fmt(p.bias / s)
            ),
            "in [0.85, 1.15]; > 0 rises",
            SOURCE_EOS,
        ));
    }

    // Figures.
    let lo = rel.iter().map(|p| p.1 * s).fold(0.0, f64::min);
    let hi = rel.iter().map(|p| p.1 * s).fold(0.0, f64::max);
    let mut bias_fig = Figure {
        title: "threshold-neurons: final mean layer-1 bias vs η (sparse coding, d = 200)".into(),
        x_label: "η".into(),
        y_label: "b̄ (mean layer-1 bias)".into(),
        log_x: true,
        notes: vec![format!(
            "s = {} (RMS preactivation at init); λ₀ = {}, λ* = {}",
            fmt(s),
            fmt(lambda0),
            fmt(lambda_star)
        )],
        ..Figure::default()
    };
    bias_fig.series.push(Series::new(
        format!("b̄ after {steps} steps"),
        rel.iter().map(|p| (p.0, p.1 * s)).collect(),
        Style::LinePoints,
    ));
    bias_fig.series.push(Series::new(
        "−0.1·s (threshold)",
        vec![(mean_model, -THRESHOLD * s), (4.0, -THRESHOLD * s)],
        Style::Dashed,
    ));
    if eta_c.is_finite() {
        bias_fig
            .series
            .push(vline(&format!("η_c = {}", fmt(eta_c)), eta_c, lo, hi));
    }
    bias_fig.series.push(vline(
        &format!("2/λ* = {}", fmt(eta_pred)),
        eta_pred,
        lo,
        hi,
    ));
    bias_fig.series.push(vline(
        &format!("8π/d² = {} (paper's scale)", fmt(mean_model)),
        mean_model,
        lo,
        hi,
    ));
    ctx.save(&bias_fig, "bias-vs-eta")?;

    let mut traj = Figure {
        title: "threshold-neurons: mean layer-1 bias during training".into(),
        x_label: "step".into(),
        y_label: "b̄".into(),
        ..Figure::default()
    };
    let k = pts.len();
    let picks = [0, k / 2, k / 2 + 1, k / 2 + 2, k * 3 / 4, k - 1];
    let mut seen = Vec::new();
    for &i in &picks {
        if i < k && !seen.contains(&i) {
            seen.push(i);
            let p = &pts[i];
            traj.series.push(Series::new(
                format!("η = {}", fmt(p.eta)),
                p.run.metrics.element("bias_mean", 0),
                Style::Line,
            ));
        }
    }
    ctx.save(&traj, "bias-trajectories")?;

    if let Some(p) = window.first().or(pts.last().as_ref()) {
        let mut sharp = Figure {
            title: format!("threshold-neurons: sharpness at η = {} (EoS)", fmt(p.eta)),
            x_label: "step".into(),
            y_label: "λ_max".into(),
            ..Figure::default()
        };
        sharp
            .series
            .push(Series::new("λ_max", p.run.series("sharpness"), Style::Line));
        sharp.series.push(Series::new(
            "2/η",
            p.run.metrics.two_over_lr(),
            Style::Dashed,
        ));
        ctx.save(&sharp, "sharpness")?;
        let mut loss = Figure {
            title: format!("threshold-neurons: training loss at η = {}", fmt(p.eta)),
            x_label: "step".into(),
            y_label: "loss".into(),
            log_y: true,
            ..Figure::default()
        };
        loss.series
            .push(Series::new("loss", p.run.series("loss"), Style::Line));
        ctx.save(&loss, "loss")?;
    }
    Ok(checks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_and_scale() {
        let g = log_grid(0.1, 4.0, 11);
        assert_eq!(g.len(), 11);
        assert!((g[0] - 0.1).abs() < 1e-12 && (g[10] - 4.0).abs() < 1e-12);
        assert!((g[1] / g[0] - g[2] / g[1]).abs() < 1e-12);
        // E‖x‖² = dσ² + λ² = 209 at d = 200, σ² = 1, λ = 3.
        let s = preactivation_scale(0.5_f64.sqrt(), 200.0, 1.0, 3.0);
        assert!((s - (209.0_f64 / 400.0).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn transition_finds_one_crossing() {
        let pts = [(0.1, 0.01), (0.2, -0.05), (0.4, -0.3), (0.8, -1.0)];
        let t = transition(&pts, 0.1);
        assert!(t.sharp);
        assert_eq!(t.above, 2);
        assert!((t.eta_c.unwrap() - (0.2f64 * 0.4).sqrt()).abs() < 1e-12);
        // Not a single crossing: a threshold run below a non-threshold run.
        let t = transition(&[(0.1, -0.2), (0.2, 0.0), (0.4, -0.3)], 0.1);
        assert!(!t.sharp && t.eta_c.is_none());
        // No crossing inside the grid.
        assert_eq!(transition(&[(0.1, 0.0), (0.2, 0.0)], 0.1).eta_c, None);
        assert_eq!(transition(&[(0.1, -1.0), (0.2, -1.0)], 0.1).eta_c, None);
    }

    #[test]
    fn edge_and_stable_peak() {
        let sharp = [(0.0, 0.6), (5.0, 1.3), (10.0, 1.0)];
        let loss = [(0.0, 0.7), (1.0, 0.5), (2.0, 0.6), (3.0, 0.4)];
        let e = edge(&sharp, &loss, 1.0);
        assert_eq!((e.lambda0, e.peak, e.loss_rises), (0.6, 1.3, 1));
        assert_eq!(e.episode, Some((5.0, 10.0)));
        assert!((e.episode_median - 1.15).abs() < 1e-12);
        assert_eq!(edge(&sharp, &loss, 2.0).episode, None);
        // (η, peak): η = 1 stays below 2/η = 2 (peak 1.7); η = 2 reaches 2/η = 1.
        assert_eq!(stable_peak(&[(0.5, 1.2), (1.0, 1.7), (2.0, 1.1)]), 1.7);
        assert!(stable_peak(&[(2.0, 1.1)]).is_nan());
    }
}
