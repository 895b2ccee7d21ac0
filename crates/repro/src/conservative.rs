//! `conservative-sharpening`: slower sharpening under SGD and the stochastic edge of
//! stability (Agarwala & Pennington, arXiv 2404.19261; THEORY.md §4).
//!
//! Config `experiments/conservative-sharpening/fashion-mnist.toml`: Cohen et al.'s
//! fc-tanh on the first 1 000 Fashion-MNIST images (the cohen-eos model), MSE, plain
//! SGD at η = 0.05 (2/η = 40, reached by GD within ~150 steps), one run per batch
//! size B, everything else equal (seed, init, η). Reduced: B ∈ {full, 128, 32, 8},
//! 400 steps, probes every 40 steps, K from tr G alone (`s_eos.k = 0`). Full:
//! B ∈ {full, 512, 128, 32, 16, 8}, 1 500 steps, probes every 50, K with G's top
//! eigenvalue treated exactly (`s_eos.k = 1`).
//!
//! The *late phase* of a run is its second half (steps ≥ T/2); every "late" number is
//! the median over the probes in it. Checks:
//! - every run finishes (SGD at small B must not diverge);
//! - GD reaches the EoS: late λ_max within ±10 % of 2/η;
//! - conservative sharpening: late λ_max is monotone non-decreasing in B (5 %
//!   tolerance for noise), and at the smallest B at most 0.75 × GD's;
//! - at the smallest B the deterministic constraint is slack (ηλ_max/2 ≤ 0.6) and the
//!   noise kernel norm K(η, B) is the active one (K > ηλ_max/2, K ≥ 0.5);
//! - the stochastic EoS sets in at K ≈ 1: at the largest B where K is the active
//!   constraint, late K ∈ [0.5, 2] (a factor 2 either side of the threshold: K is an
//!   **inferred** formula, THEORY.md §4, and its small-ηλ form ignores O(ηλ) terms);
//! - full only, informative (reported as NOTE, not gating — both rest on the inferred
//!   K formula or on a claim outside the seed abstracts): the same band at the
//!   smallest B, and batch sharpness at the smallest B within ±20 % of 2/η
//!   (Andreyev & Beneventano's claim).
//!
//! What holds and what does not (measured): conservative sharpening (λ_max ordered
//! by B, GD at 2/η) and K as the active constraint at small B are robust. K ≈ 1
//! holds only near the crossover (B = 32: K ≈ 0.9 after 400 steps, ≈ 1.2 after
//! 1 500); at smaller B the late K overshoots (B = 8: ≈ 2.2, drifting up to ≈ 2.5 by
//! step 1 500, roughly K ∝ B^(−1/2)), so the smallest-B band NOTE of the full
//! version does not hold. Batch sharpness stays near λ_max (≈ 15–17 at B = 8), well below
//! 2/η = 40, so that NOTE does not hold either. Both are reported, not hidden: K is an
//! inferred formula (its multi-output form sums tr G over the 10 outputs).

use super::{fmt, median, Check, Ctx, Run};
use eos_report::plot::{Figure, Series, Style};
use eos_train::Status;

const SOURCE: &str =
    "Agarwala & Pennington 2024 (arXiv 2404.19261), conservative sharpening; THEORY.md §4";
const SOURCE_EOS: &str = "Cohen et al. 2021; THEORY.md §1";
const SOURCE_K: &str =
    "Agarwala & Pennington 2024, S-EOS at K ≈ 1; K(η,B) formula inferred, THEORY.md §4";
const SOURCE_BS: &str =
    "Andreyev & Beneventano, Edge of Stochastic Stability; THEORY.md §4, §8 (batch sharpness)";

/// The learning rate of every run (2/η = 40).
const LR: f64 = 0.05;
/// Training samples (`data.n` of the config): where GD sits on the batch-size axis.
const N: f64 = 1000.0;

/// The late-phase medians of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Late {
    pub lambda: f64,
    /// ηλ_max/2 (the deterministic constraint, 1 at the EoS).
    pub half_eta_lambda: f64,
    /// K(η, B) (0 under GD).
    pub k: f64,
    pub batch_sharpness: f64,
    /// The number of sharpness probes in the late phase.
    pub probes: usize,
}

/// The median of the values at steps ≥ `from`.
pub fn median_from(series: &[(f64, f64)], from: f64) -> f64 {
    median(series.iter().filter(|p| p.0 >= from).map(|p| p.1))
}

/// The late-phase medians (steps ≥ `from`) of a run at learning rate `lr`.
pub fn late_phase(
    sharp: &[(f64, f64)],
    k: &[(f64, f64)],
    batch_sharpness: &[(f64, f64)],
    lr: f64,
    from: f64,
) -> Late {
    let lambda = median_from(sharp, from);
    Late {
        lambda,
        half_eta_lambda: lr * lambda / 2.0,
        k: median_from(k, from),
        batch_sharpness: median_from(batch_sharpness, from),
        probes: sharp.iter().filter(|p| p.0 >= from).count(),
    }
}

/// Whether `v` is non-decreasing up to a relative tolerance:
/// `v[i] ≤ (1 + tol) · v[i+1]` for every i (and every value finite).
pub fn monotone_within(v: &[f64], tol: f64) -> bool {
    v.iter().all(|x| x.is_finite()) && v.windows(2).all(|w| w[0] <= (1.0 + tol) * w[1])
}

/// The index of the largest batch size whose run has K as the active constraint
/// (K > ηλ_max/2), given runs sorted by increasing batch size.
pub fn s_eos_onset(lates: &[Late]) -> Option<usize> {
    (0..lates.len())
        .rev()
        .find(|&i| lates[i].k.is_finite() && lates[i].k > lates[i].half_eta_lambda)
}

/// K for a table: a late phase without a finite K had ηλ_max(G) ≥ 2 at every probe
/// (K = ∞, written `null`: the deterministic EoS binds, not K).
fn fmt_k(k: f64) -> String {
    if k.is_finite() {
        fmt(k)
    } else {
        "∞ (ηλ_max(G) ≥ 2)".into()
    }
}

fn label(b: Option<usize>) -> String {
    b.map_or("GD".into(), |b| format!("B = {b}"))
}

pub fn run(ctx: &Ctx) -> anyhow::Result<Vec<Check>> {
    // Batch sizes from small to large; None = full batch (GD).
    let (batches, steps, set): (&[Option<usize>], u64, Vec<String>) = if ctx.full {
        (
            &[Some(8), Some(16), Some(32), Some(128), Some(512), None],
            1500,
            vec![],
        )
    } else {
        (
            &[Some(8), Some(32), Some(128), None],
            400,
            vec![
                "train.steps=400".into(),
                "probes.sharpness.every=40".into(),
                "probes.s_eos.every=40".into(),
                "probes.s_eos.k=0".into(),
                "probes.batch_sharpness.every=40".into(),
            ],
        )
    };
    let from = steps as f64 / 2.0;
    let two = 2.0 / LR;
    let mut checks = Vec::new();
    let mut lates = Vec::new();
    let mut sharp_fig = Figure {
        title: format!(
            "conservative-sharpening: λ_max under GD and SGD (Fashion-MNIST, fc-tanh, η = {LR})"
        ),
        x_label: "step".into(),
        y_label: "λ_max".into(),
        y_max: Some(1.6 * two),
        ..Figure::default()
    };
    let mut k_fig = Figure {
        title: "conservative-sharpening: noise kernel norm K(η, B) (S-EOS at K ≈ 1)".into(),
        x_label: "step".into(),
        y_label: "K".into(),
        notes: vec![
            "K inferred (THEORY.md §4); with s_eos.k = 1 it diverges as ηλ_max(G) → 2 and is \
             omitted (null) above"
                .into(),
        ],
        y_max: Some(4.0),
        ..Figure::default()
    };
    let mut bs_fig = Figure {
        title: "conservative-sharpening: batch sharpness E_B[g_BᵀH_Bg_B/‖g_B‖²]".into(),
        x_label: "step".into(),
        y_label: "batch sharpness".into(),
        y_max: Some(2.0 * two),
        ..Figure::default()
    };
    let mut runs: Vec<(Option<usize>, Run)> = Vec::new();
    for &b in batches {
        let mut s = set.clone();
        s.push(format!("optim.lr={LR}"));
        let name = match b {
            Some(b) => {
                s.push(format!("train.batch_size={b}"));
                format!("b-{b}")
            }
            None => "gd".into(),
        };
        let run = ctx.train(&name, "fashion-mnist.toml", &s)?;
        checks.push(Check::holds(
            format!("{}: run finished", label(b)),
            run.status == Status::Finished,
            run.status.to_string(),
            "finished",
            SOURCE,
        ));
        runs.push((b, run));
    }
    let steps_max = steps as f64;
    for (b, run) in &runs {
        let sharp = run.series("sharpness");
        let k = run.series("s_eos_k");
        let bs = run.series("batch_sharpness");
        lates.push(late_phase(&sharp, &k, &bs, LR, from));
        sharp_fig
            .series
            .push(Series::new(label(*b), sharp, Style::LinePoints));
        if b.is_some() {
            k_fig
                .series
                .push(Series::new(label(*b), k, Style::LinePoints));
        }
        bs_fig
            .series
            .push(Series::new(label(*b), bs, Style::LinePoints));
    }
    let line =
        |name: &str, y: f64| Series::new(name, vec![(0.0, y), (steps_max, y)], Style::Dashed);
    sharp_fig.series.push(line("2/η", two));
    k_fig.series.push(line("K = 1", 1.0));
    bs_fig.series.push(line("2/η", two));

    let gd = lates.last().expect("GD is the last run");
    checks.push(Check::within(
        "GD: late-phase median λ_max (edge of stability)",
        gd.lambda,
        0.9 * two,
        1.1 * two,
        SOURCE_EOS,
    ));
    let lambdas: Vec<f64> = lates.iter().map(|l| l.lambda).collect();
    let listing = runs
        .iter()
        .zip(&lates)
        .map(|((b, _), l)| format!("{}: {}", label(*b), fmt(l.lambda)))
        .collect::<Vec<_>>()
        .join(", ");
    checks.push(Check::holds(
        "late-phase median λ_max ordered by batch size",
        monotone_within(&lambdas, 0.05),
        listing,
        "non-decreasing in B (5 % tolerance)",
        SOURCE,
    ));
    let small = &lates[0];
    let b_small = label(runs[0].0);
    let ratio = small.lambda / gd.lambda;
    checks.push(Check::holds(
        format!("{b_small}: lower plateau, late λ_max / GD's"),
        ratio <= 0.75,
        fmt(ratio),
        "≤ 0.75",
        SOURCE,
    ));
    checks.push(Check::holds(
        format!("{b_small}: deterministic constraint slack, late ηλ_max/2"),
        small.half_eta_lambda <= 0.6,
        fmt(small.half_eta_lambda),
        "≤ 0.6 (clearly below 1)",
        SOURCE,
    ));
    checks.push(Check::holds(
        format!("{b_small}: K is the active constraint"),
        small.k > small.half_eta_lambda && small.k >= 0.5,
        format!(
            "K = {}, ηλ_max/2 = {}",
            fmt(small.k),
            fmt(small.half_eta_lambda)
        ),
        "K > ηλ_max/2 and K ≥ 0.5",
        SOURCE_K,
    ));
    let constraints = runs
        .iter()
        .zip(&lates)
        .map(|((b, _), l)| {
            format!(
                "{}: K {} / ηλ/2 {}",
                label(*b),
                fmt_k(l.k),
                fmt(l.half_eta_lambda)
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    match s_eos_onset(&lates) {
        Some(i) => checks.push(Check::holds(
            format!(
                "S-EOS onset ({}, the largest B with K active): late K",
                label(runs[i].0)
            ),
            (0.5..=2.0).contains(&lates[i].k),
            format!("{} ({constraints})", fmt(lates[i].k)),
            "in [0.5, 2]",
            SOURCE_K,
        )),
        None => checks.push(Check::holds(
            "S-EOS onset: some B with K active",
            false,
            constraints,
            "K > ηλ_max/2 at some B",
            SOURCE_K,
        )),
    }
    if ctx.full {
        checks.push(
            Check::within(
                format!("{b_small}: late K at the smallest B"),
                small.k,
                0.5,
                2.0,
                SOURCE_K,
            )
            .informative(),
        );
        checks.push(
            Check::holds(
                format!("{b_small}: late batch sharpness tracks 2/η"),
                (0.8 * two..=1.2 * two).contains(&small.batch_sharpness),
                format!(
                    "{} (late λ_max {})",
                    fmt(small.batch_sharpness),
                    fmt(small.lambda)
                ),
                format!("in [{}, {}]", fmt(0.8 * two), fmt(1.2 * two)),
                SOURCE_BS,
            )
            .informative(),
        );
    }

    // The two constraints side by side at the smallest B, and late values vs B.
    let (b0, run0) = &runs[0];
    let half: Vec<(f64, f64)> = run0
        .series("sharpness")
        .iter()
        .map(|&(t, l)| (t, LR * l / 2.0))
        .collect();
    let bsh: Vec<(f64, f64)> = run0
        .series("batch_sharpness")
        .iter()
        .map(|&(t, l)| (t, LR * l / 2.0))
        .collect();
    let mut pair = Figure {
        title: format!(
            "conservative-sharpening: the two constraints at {} (stable below 1)",
            label(*b0)
        ),
        x_label: "step".into(),
        y_label: "constraint".into(),
        notes: vec!["the one that reaches 1 first is the active constraint".into()],
        ..Figure::default()
    };
    pair.series
        .push(Series::new("ηλ_max/2", half, Style::LinePoints));
    pair.series.push(Series::new(
        "K(η, B)",
        run0.series("s_eos_k"),
        Style::LinePoints,
    ));
    pair.series
        .push(Series::new("η·batch sharpness/2", bsh, Style::Dashed));
    pair.series.push(line("1", 1.0));
    let mut vs_b = Figure {
        title: "conservative-sharpening: late-phase constraints vs batch size (GD at B = n)".into(),
        x_label: "batch size B".into(),
        y_label: "late-phase median".into(),
        log_x: true,
        ..Figure::default()
    };
    let xs: Vec<f64> = runs
        .iter()
        .map(|(b, _)| b.map_or(N, |b| b as f64))
        .collect();
    let pts = |f: &dyn Fn(&Late) -> f64| -> Vec<(f64, f64)> {
        xs.iter().zip(&lates).map(|(&x, l)| (x, f(l))).collect()
    };
    vs_b.series.push(Series::new(
        "ηλ_max/2",
        pts(&|l| l.half_eta_lambda),
        Style::LinePoints,
    ));
    let k_pts: Vec<(f64, f64)> = pts(&|l| l.k)
        .into_iter()
        .filter(|p| p.1.is_finite())
        .collect();
    vs_b.series
        .push(Series::new("K(η, B)", k_pts, Style::LinePoints));
    vs_b.series.push(Series::new(
        "η·batch sharpness/2",
        pts(&|l| LR * l.batch_sharpness / 2.0),
        Style::LinePoints,
    ));
    vs_b.series.push(Series::new(
        "1",
        vec![(xs[0], 1.0), (N, 1.0)],
        Style::Dashed,
    ));
    ctx.save(&sharp_fig, "sharpness")?;
    ctx.save(&k_fig, "noise-kernel")?;
    ctx.save(&pair, "constraints")?;
    ctx.save(&bs_fig, "batch-sharpness")?;
    ctx.save(&vs_b, "late-vs-batch")?;
    Ok(checks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(v: &[f64], dt: f64) -> Vec<(f64, f64)> {
        v.iter()
            .enumerate()
            .map(|(i, &y)| (dt * i as f64, y))
            .collect()
    }

    #[test]
    fn late_phase_medians() {
        let sharp = series(&[70.0, 20.0, 30.0, 40.0, 42.0, 38.0], 10.0);
        let k = series(&[5.0, 3.0, 2.0, 1.0, 0.8, 1.2], 10.0);
        let bs = series(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 10.0);
        let l = late_phase(&sharp, &k, &bs, 0.05, 30.0);
        assert_eq!(l.lambda, 40.0);
        assert_eq!(l.half_eta_lambda, 1.0);
        assert_eq!(l.k, 1.0);
        assert_eq!(l.batch_sharpness, 5.0);
        assert_eq!(l.probes, 3);
        assert!(median_from(&sharp, 100.0).is_nan());
    }

    #[test]
    fn monotone_with_tolerance() {
        assert!(monotone_within(&[15.0, 30.0, 40.0, 41.0], 0.05));
        assert!(monotone_within(&[15.0, 30.0, 41.0, 40.0], 0.05));
        assert!(!monotone_within(&[15.0, 30.0, 45.0, 40.0], 0.05));
        assert!(!monotone_within(&[15.0, f64::NAN, 40.0], 0.05));
        assert!(monotone_within(&[], 0.0));
    }

    #[test]
    fn onset_is_the_largest_batch_with_k_active() {
        let l = |k: f64, h: f64| Late {
            lambda: 2.0 * h / 0.05,
            half_eta_lambda: h,
            k,
            batch_sharpness: f64::NAN,
            probes: 1,
        };
        // B = 8, 32, 128, GD.
        let lates = [l(2.2, 0.4), l(1.0, 0.75), l(0.3, 0.95), l(0.0, 1.0)];
        assert_eq!(s_eos_onset(&lates), Some(1));
        assert_eq!(s_eos_onset(&lates[2..]), None);
        assert_eq!(s_eos_onset(&[l(f64::NAN, 0.5)]), None);
    }
}
