//! `conservative-sharpening`, full version: the stochastic edge of stability found
//! directly, and controlled on the network (Agarwala & Pennington, arXiv 2404.19261;
//! THEORY.md §4; docs/reproductions.md, claims 12 and 13, every protocol **inferred**:
//! the paper's text was not available).
//!
//! Claim 12, the S-EOS sits at K ≈ 1, normalisation-free: at B = 8 on the network of
//! `fashion-mnist.toml` (same seed, so the same θ₀), a ladder of learning rates
//!
//! ```text
//! η_i = η₀ · 2^{i/4},  i = 0 … rungs − 1,  each run `steps` steps (500);
//! diverged = the trainer's `diverged` status (loss > train.divergence_threshold = 1e6
//!            or not finite); the ladder stops at the first diverging rung;
//! η_S = the rung just below it (undefined if rung 0 diverges or none does);
//! K(η_S, 8) = the `s_eos` probe at step 0 of η_S's run (today's K: G's top
//!             eigenvalue exact, the rest of tr G in the small-ηλ form, Σ over all
//!             10 outputs; ∞ when η_S λ_max(G) ≥ 2).
//! ```
//!
//! Gate: K(η_S, 8) ∈ [`K_BAND`]; K(η_S, 8)/10 (one output's share,
//! the per-output closure) is reported as a NOTE.
//!
//! Claim 13, controlling the S-EOS helps optimisation, on the network: per seed, two
//! runs at B = 8 of the same length (so the same samples processed): η = 0.05
//! constant, and the geometry-aware schedule with `source = "noise_kernel"`
//! (eos-optim: η_t = the largest η ≤ 0.05 with K(η, 8) ≤ [`CONTROL_K`] =
//! 0.5, re-solved at every `s_eos` probe, `every` steps, `ema = 0`). Training loss =
//! the full-training-set loss of the `eval` probe (every `every` steps), averaged over
//! the probes in the last [`LAST_FRACTION`] of the steps. Gate: on every seed,
//! controlled ≤ [`CONTROL_MARGIN`] × constant (a diverged constant run counts +∞).

use super::quadratic::CONTROL_K;
use super::{fmt, Check, Ctx, Result, Run};
use eos_report::plot::{Figure, Style};
use serde::Deserialize;

const SOURCE_EDGE: &str = "Agarwala & Pennington 2024 (arXiv 2404.19261), S-EOS at K ≈ 1; \
     found by an η ladder at B = 8 (protocol inferred, docs/reproductions.md)";
const SOURCE_CONTROL: &str = "Agarwala & Pennington 2024 (abstract: controlling the S-EOS \
     can help optimization); network, K-controlled η (protocol inferred)";

/// Late K at B = 8 (claim 8) and K(η_S, 8) (claim 12) in this band (K ≈ 1, a factor
/// 1.5 either side; committed 2026-12-07 before the runs).
pub const K_BAND: (f64, f64) = (2.0 / 3.0, 1.5);
/// The batch size the small-B claims are tested at, fixed in advance.
pub const SMALLEST_B: usize = 8;
/// The ladder's ratio 2^{1/4} (committed 2026-12-07 before the runs, as all below).
pub const LADDER_RATIO: f64 = 1.189_207_115_002_721;
/// The controlled run's loss ≤ CONTROL_MARGIN × the constant-η run's, on every seed.
pub const CONTROL_MARGIN: f64 = 0.9;
/// The final loss is the mean over the probes in this last fraction of the steps.
pub const LAST_FRACTION: f64 = 0.1;
/// Fashion-MNIST's outputs (one-hot over 10 classes): K / OUTPUTS is one output's share.
pub const OUTPUTS: f64 = 10.0;

/// `[edge]` of the full settings: the η ladder of claim 12.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeSettings {
    /// η₀, the first rung.
    pub lr0: f64,
    /// At most this many rungs.
    pub rungs: usize,
    /// Steps per rung.
    pub steps: u64,
}

/// `[control]` of the full settings: the K-controlled network runs of claim 13.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlSettings {
    pub seeds: Vec<u64>,
    pub steps: u64,
    /// Steps between `s_eos` (and `eval`) probes: η is re-solved this often.
    pub every: u64,
}

impl EdgeSettings {
    /// η_i = η₀ · 2^{i/4}.
    pub fn lr(&self, i: usize) -> f64 {
        self.lr0 * LADDER_RATIO.powi(i as i32)
    }
}

/// One rung of the ladder.
#[derive(Debug, Clone, PartialEq)]
pub struct Rung {
    pub lr: f64,
    pub diverged: bool,
    /// K(η, 8) at step 0 (∞ where ηλ_max(G) ≥ 2, NaN if the probe is missing).
    pub k0: f64,
    /// The last logged step (where a diverging run stopped).
    pub last_step: f64,
}

/// η_S's index: the rung before the first diverging one. None when the first rung
/// diverges or none does (the edge was not bracketed).
pub fn edge_index(diverged: &[bool]) -> Option<usize> {
    diverged.iter().position(|&d| d)?.checked_sub(1)
}

/// One seed's pair of runs.
#[derive(Debug, Clone, PartialEq)]
pub struct ControlPair {
    pub seed: u64,
    /// The final training loss of the constant-η run (+∞ if it diverged).
    pub constant: f64,
    /// The same for the K-controlled run (NaN if it diverged).
    pub controlled: f64,
    /// The controlled run's median η over its steps.
    pub lr_median: f64,
}

/// The mean of the values at steps ≥ (1 − LAST_FRACTION)·steps (NaN if none).
pub fn final_loss(series: &[(f64, f64)], steps: u64) -> f64 {
    let from = (1.0 - LAST_FRACTION) * steps as f64;
    let tail: Vec<f64> = series.iter().filter(|p| p.0 >= from).map(|p| p.1).collect();
    if tail.is_empty() {
        return f64::NAN;
    }
    tail.iter().sum::<f64>() / tail.len() as f64
}

/// K at step 0 of a run: the probe's value, ∞ when the probe ran but K is null
/// (ηλ_max(G) ≥ 2), NaN when it did not run.
fn k_at_step0(run: &Run) -> f64 {
    let at0 = |key: &str| run.series(key).first().filter(|p| p.0 == 0.0).map(|p| p.1);
    match (at0("s_eos_k"), at0("gn_trace")) {
        (Some(k), _) => k,
        (None, Some(_)) => f64::INFINITY,
        (None, None) => f64::NAN,
    }
}

/// The overrides of one rung: `base` (the network runs' settings at B = 8), then the
/// rung's.
fn rung_overrides(base: &[String], e: &EdgeSettings, lr: f64) -> Vec<String> {
    let mut o = base.to_vec();
    o.extend([
        format!("optim.lr={lr}"),
        format!("train.steps={}", e.steps),
        "probes.sharpness.every=0".into(),
        "probes.batch_sharpness.every=0".into(),
        format!("probes.s_eos.every={}", e.steps),
    ]);
    o
}

/// Claim 12's runs: the ladder up to and including the first diverging rung.
pub fn measure_edge(ctx: &Ctx, base: &[String], e: &EdgeSettings) -> Result<Vec<Rung>> {
    let mut rungs = Vec::new();
    for i in 0..e.rungs {
        let lr = e.lr(i);
        let run = ctx.train(
            &format!("edge-{i}"),
            "fashion-mnist.toml",
            &rung_overrides(base, e, lr),
        )?;
        let rung = Rung {
            lr,
            diverged: run.diverged(),
            k0: k_at_step0(&run),
            last_step: run.series("loss").last().map_or(f64::NAN, |p| p.0),
        };
        rungs.push(rung);
        if run.diverged() {
            break;
        }
    }
    Ok(rungs)
}

/// The overrides of one control run: `base` (the network runs' settings at B = 8,
/// constant η = `lr`), then the run's (`controlled`: the K-controlled schedule with
/// η_max = `lr`).
fn control_overrides(
    base: &[String],
    lr: f64,
    c: &ControlSettings,
    seed: u64,
    controlled: bool,
) -> Vec<String> {
    let mut o = base.to_vec();
    o.extend([
        format!("train.seed={seed}"),
        format!("train.steps={}", c.steps),
        "probes.sharpness.every=0".into(),
        "probes.batch_sharpness.every=0".into(),
        format!("probes.s_eos.every={}", c.every),
        format!("probes.eval.every={}", c.every),
    ]);
    if controlled {
        o.extend([
            "optim={ kind = \"sgd\" }".into(),
            format!(
                "schedule={{ kind = \"geometry_aware\", source = \"noise_kernel\", c = {CONTROL_K}, \
                 ema = 0.0, lr_max = {lr} }}"
            ),
        ]);
    }
    o
}

/// Claim 13's runs: per seed, the constant-η and the K-controlled run.
pub fn measure_control(
    ctx: &Ctx,
    base: &[String],
    lr: f64,
    c: &ControlSettings,
) -> Result<Vec<(ControlPair, Run, Run)>> {
    let mut out = Vec::new();
    for &seed in &c.seeds {
        let train = |tag: &str, controlled: bool| {
            ctx.train(
                &format!("control-{tag}-seed-{seed}"),
                "fashion-mnist.toml",
                &control_overrides(base, lr, c, seed, controlled),
            )
        };
        let (constant, controlled) = (train("constant", false)?, train("k", true)?);
        let lrs = controlled.series("lr").into_iter().map(|p| p.1);
        let pair = ControlPair {
            seed,
            constant: if constant.diverged() {
                f64::INFINITY
            } else {
                final_loss(&constant.series("train_loss"), c.steps)
            },
            controlled: if controlled.diverged() {
                f64::NAN
            } else {
                final_loss(&controlled.series("train_loss"), c.steps)
            },
            lr_median: super::median(lrs),
        };
        out.push((pair, constant, controlled));
    }
    Ok(out)
}

/// Claim 12's gate and its per-output NOTE.
pub fn edge_checks(rungs: &[Rung]) -> Vec<Check> {
    let diverged: Vec<bool> = rungs.iter().map(|r| r.diverged).collect();
    let ladder = rungs
        .iter()
        .map(|r| {
            let end = if r.diverged {
                format!("diverged at step {}", fmt(r.last_step))
            } else {
                "finite".into()
            };
            format!("η {}: K₀ {}, {end}", fmt(r.lr), fmt(r.k0))
        })
        .collect::<Vec<_>>()
        .join("; ");
    let (k, lr) = match edge_index(&diverged) {
        Some(i) => (rungs[i].k0, fmt(rungs[i].lr)),
        None => (f64::NAN, "not bracketed".into()),
    };
    let band = format!("in [{}, {}]", fmt(K_BAND.0), fmt(K_BAND.1));
    let tag = format!("B = {SMALLEST_B}");
    vec![
        Check::holds(
            format!("{tag}: K(η_S, B) at step 0, η_S = the largest non-diverging η of the ladder"),
            (K_BAND.0..=K_BAND.1).contains(&k),
            format!("η_S = {lr}, K = {} ({ladder})", fmt(k)),
            band.clone(),
            SOURCE_EDGE,
        ),
        Check::holds(
            format!("{tag}: K(η_S, B)/10 at step 0 (one output's share)"),
            (K_BAND.0..=K_BAND.1).contains(&(k / OUTPUTS)),
            fmt(k / OUTPUTS),
            band,
            SOURCE_EDGE,
        )
        .informative(),
    ]
}

/// Claim 13's gate.
pub fn control_check(pairs: &[ControlPair]) -> Check {
    let ok =
        |p: &ControlPair| p.controlled.is_finite() && p.controlled <= CONTROL_MARGIN * p.constant;
    let listing = pairs
        .iter()
        .map(|p| {
            format!(
                "seed {}: controlled {} vs constant {} (ratio {}, median η {})",
                p.seed,
                fmt(p.controlled),
                fmt(p.constant),
                fmt(p.controlled / p.constant),
                fmt(p.lr_median)
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    Check::holds(
        format!(
            "network, B = {SMALLEST_B}: K-controlled η (K ≤ {CONTROL_K}) vs constant η, final training loss"
        ),
        pairs.len() >= 2 && pairs.iter().all(ok),
        listing,
        format!("controlled ≤ {CONTROL_MARGIN} × constant on every seed (≥ 2 seeds)"),
        SOURCE_CONTROL,
    )
}

/// The ladder: K at step 0 and where each rung ended, against η.
pub fn edge_figure(rungs: &[Rung]) -> Figure {
    let mut fig = Figure::new(format!(
        "conservative-sharpening: η ladder at B = {SMALLEST_B} (K at step 0; S-EOS at K ≈ 1)"
    ))
    .x_label("η")
    .y_label("K(η, B) at step 0")
    .x_log()
    .note("K omitted where ηλ_max(G) ≥ 2 (K = ∞); a diverging rung is drawn at K = 0")
    .y_max(8.0);
    let pts = |d: bool| -> Vec<(f64, f64)> {
        rungs
            .iter()
            .filter(|r| r.diverged == d)
            .map(|r| (r.lr, if d { 0.0 } else { r.k0 }))
            .filter(|p| p.1.is_finite())
            .collect()
    };
    fig.add("finite within the steps", pts(false), Style::LinePoints)
        .add("diverged", pts(true), Style::Points);
    if let (Some(a), Some(b)) = (rungs.first(), rungs.last()) {
        fig.hline("K = 1", 1.0, a.lr..=b.lr);
    }
    fig
}

/// Claim 13: the full training loss of each pair against step.
pub fn control_figure(runs: &[(ControlPair, Run, Run)]) -> Figure {
    let mut fig = Figure::new(format!(
        "conservative-sharpening: K-controlled η (K ≤ {CONTROL_K}) vs constant η, B = {SMALLEST_B}"
    ))
    .x_label("step")
    .y_label("training loss (full set)")
    .y_log();
    for (p, constant, controlled) in runs {
        fig.add(
            format!("constant η, seed {}", p.seed),
            constant.series("train_loss"),
            Style::LinePoints,
        )
        .add(
            format!("K-controlled, seed {}", p.seed),
            controlled.series("train_loss"),
            Style::Dashed,
        );
    }
    fig
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edge_is_the_rung_below_the_first_divergence() {
        assert_eq!(edge_index(&[false, false, true]), Some(1));
        assert_eq!(edge_index(&[false, true, false, true]), Some(0));
        assert_eq!(edge_index(&[true, false]), None);
        assert_eq!(edge_index(&[false, false]), None);
        assert_eq!(edge_index(&[]), None);
    }

    #[test]
    fn ladder_rates_step_by_a_fourth_root_of_two() {
        let e = EdgeSettings {
            lr0: 0.05,
            rungs: 16,
            steps: 500,
        };
        assert_eq!(e.lr(0), 0.05);
        assert!((e.lr(4) - 0.1).abs() < 1e-15, "{}", e.lr(4));
        assert!((LADDER_RATIO.powi(4) - 2.0).abs() < 1e-15);
    }

    fn rung(lr: f64, k0: f64, diverged: bool) -> Rung {
        Rung {
            lr,
            diverged,
            k0,
            last_step: if diverged { 37.0 } else { 499.0 },
        }
    }

    #[test]
    fn edge_gate_reads_k_at_eta_s() {
        let ok = [
            rung(0.05, 0.6, false),
            rung(0.06, 1.2, false),
            rung(0.07, 2.0, true),
        ];
        let c = edge_checks(&ok);
        assert!(c[0].pass && !c[0].informative, "{c:?}");
        assert!(
            c[0].measured.starts_with("η_S = 0.06, K = 1.2"),
            "{}",
            c[0].measured
        );
        assert!(!c[1].pass && c[1].informative); // 0.12 per output
                                                 // K = ∞ at η_S (η_S λ_max(G) ≥ 2) and a ladder that never diverges both fail.
        let inf = [
            rung(0.05, 2.4, false),
            rung(0.06, f64::INFINITY, false),
            rung(0.07, 0.0, true),
        ];
        assert!(!edge_checks(&inf)[0].pass);
        assert!(!edge_checks(&[rung(0.05, 1.0, false)])[0].pass);
        // A per-output share in the band passes the NOTE: K = 12 → 1.2.
        let big = [rung(0.05, 12.0, false), rung(0.06, 0.0, true)];
        let c = edge_checks(&big);
        assert!(!c[0].pass && c[1].pass);
    }

    #[test]
    fn final_loss_averages_the_last_tenth() {
        let s: Vec<(f64, f64)> = (0..=10).map(|i| (100.0 * i as f64, i as f64)).collect();
        // steps ≥ 900 of 1000: 9 and 10.
        assert_eq!(final_loss(&s, 1000), 9.5);
        assert!(final_loss(&s, 100_000).is_nan());
    }

    fn pair(seed: u64, constant: f64, controlled: f64) -> ControlPair {
        ControlPair {
            seed,
            constant,
            controlled,
            lr_median: 0.01,
        }
    }

    #[test]
    fn control_gate_needs_every_seed_and_two_seeds() {
        assert!(control_check(&[pair(0, 1.0, 0.85), pair(1, 2.0, 1.8)]).pass);
        assert!(!control_check(&[pair(0, 1.0, 0.85), pair(1, 2.0, 1.81)]).pass);
        assert!(!control_check(&[pair(0, 1.0, 0.5)]).pass);
        // A diverged constant run (+∞) loses to any finite controlled one; a diverged
        // controlled run (NaN) fails.
        assert!(control_check(&[pair(0, f64::INFINITY, 3.0), pair(1, 1.0, 0.2)]).pass);
        assert!(!control_check(&[pair(0, 1.0, f64::NAN), pair(1, 1.0, 0.2)]).pass);
    }
}
