//! `nup-eoc`: the claims of "MLPs at the EOC: Dynamics of Feature Learning" (Terjék,
//! arXiv 2502.13110 v1, abstract; THEORY.md §6): νP keeps the dynamics
//! depth-independent, the cosine of new and cumulative updates explains feature
//! learning, and a geometry-aware lr schedule prolongs the catapult phase. The full
//! text is not available to us: every setting is **(inferred)** and a key of
//! `experiments/nup-eoc/{depth,schedule}.toml`; the gates below were committed before
//! the runs that test them (docs/reproductions.md, "nup-eoc").
//!
//! Runs per seed (Fashion-MNIST standing in for MNIST, MSE, ReLU MLPs without biases):
//! - depth runs, L = 4, 8, 16: νP (hidden widths 4·l², η = 0.02) and SP (standard SGD,
//!   He init, width 64, lr = 0.05);
//!   and, as a NOTE added after the first reduced run, SP at lr = 0.01;
//! - schedule runs: standard SGD on 784-16-64-144-10 with the geometry-aware schedule
//!   (η_t = 2.5 / EMA(λ_t)) and at constant η over a grid (full {0.001, 0.003, 0.01,
//!   0.03, 0.1, 0.3}, reduced {0.003, 0.01, 0.03}: extended downwards after the first
//!   reduced run, docs/reproductions.md "Changed after seeing data").
//!
//! Definitions: late loss = mean minibatch loss over the last tenth; catapult steps =
//! 10 × #{sharpness probes t: η_t λ_t > 2 and mean loss over (t, t+50] < mean over
//! (t−50, t]}; early update cosine = median over the first 10 % of steps.
//! Gates of the full version (seeds 0, 1, 2):
//! - N1: spread over L of log10(seed-mean late loss): νP ≤ ½ × SP (diverged = +∞);
//! - N3: Spearman ρ(early update cosine, final test accuracy) over every depth and
//!   schedule run ≥ 0.5;
//! - N4: catapult steps of the schedule run (seed mean) ≥ 3 × the largest seed mean
//!   of the constant-η runs;
//! - N5: seed-mean late loss of the schedule run ≤ the smallest seed-mean late loss
//!   among the constant-η runs that finish.
//!
//! - N2 (added 2026-12-07 with the `preact_rms` probe, before the run that tests it):
//!   for the last hidden layer's preactivation RMS (`preact_rms`, every 25 steps on 512
//!   images) and for the minibatch loss curve, the spread over L of log10(seed mean at
//!   step t), averaged over the logged steps t (a depth whose run lacks step t —
//!   diverged — makes that step +∞): νP ≤ [`N2_FACTOR`] × SP at lr 0.01 (the SP lr at
//!   which every depth trains; SP at lr 0.05 is a NOTE: it diverges at L = 4).
//!
//! Reduced version (seed 0): only Q1 (every νP depth run finishes with finite losses)
//! and Q2 (the schedule run's η_t λ_t in [1.5, 4] at ≥ 80 % of its probes after the
//! first) gate; N1–N5 are NOTEs. `EOS_NUP_EOC_ONLY=depth` runs only the depth runs and
//! Q1, N1, N2 (the N2 test within the time one session has).
//!
//! `run` trains, reduces the runs to [`Measurements`] and judges them with
//! [`checks`], a pure function (issue 11) unit-tested on hand-made measurements.

use eos_train::Status;

use super::terjek::{claim, constant_widths, eta_lambda, last_tenth_loss, lr_set, mean, Sizes, SP};
use super::{fmt, Check, Ctx, Result, Run};
use eos_report::plot::{Figure, Style};
use serde::Deserialize;

const SOURCE: &str = "Terjék 2025 v1 (arXiv 2502.13110v1), abstract; THEORY.md §6";
const DEPTHS: [usize; 3] = [4, 8, 16];
/// Half-window (steps) of the catapult-phase loss comparison.
const WINDOW: f64 = 50.0;
/// N2: νP's spread over depth ≤ N2_FACTOR × SP's (committed before the run that
/// tests it, as N1's ½).
pub const N2_FACTOR: f64 = 0.5;

/// The settings of one version, read from `experiments/nup-eoc/{reduced,full}.toml`
/// (the `--set` overrides come from here).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub sizes: Sizes,
    pub depth_steps: u64,
    pub schedule_steps: u64,
    /// SP's constant hidden width in the depth runs.
    pub sp_width: usize,
    /// SP's learning rate in the depth runs (N1).
    pub sp_lr: f64,
    /// SP's smaller learning rate (the sensitivity NOTE; N2's baseline).
    pub sp_small_lr: f64,
    /// Only the depth runs and their checks (Q1, N1, N2): `EOS_NUP_EOC_ONLY=depth`
    /// (the environment, not the file).
    #[serde(skip)]
    pub depth_only: bool,
}

impl Settings {
    /// The settings of `ctx`'s version, with `depth_only` from `EOS_NUP_EOC_ONLY`.
    pub fn load(ctx: &Ctx) -> Result<Self> {
        let mut p: Self = ctx.settings()?;
        p.depth_only = std::env::var("EOS_NUP_EOC_ONLY").is_ok_and(|v| v == "depth");
        Ok(p)
    }

    /// `depth.toml` as it is (νP, widths 4·l²) at depth `l`.
    pub fn nup(&self, seed: u64, l: usize) -> Vec<String> {
        let mut v = self.sizes.base(seed, self.depth_steps);
        v.push(format!("model.depth={l}"));
        v
    }

    /// Standard SGD (SP, constant width) at depth `l` and learning rate `lr`.
    pub fn sp(&self, seed: u64, l: usize, lr: f64) -> Vec<String> {
        let mut v = self.nup(seed, l);
        v.push(SP.into());
        v.extend(constant_widths(self.sp_width));
        v.push(lr_set(lr));
        v
    }

    /// `schedule.toml` as it is (the geometry-aware schedule).
    pub fn geometry(&self, seed: u64) -> Vec<String> {
        self.sizes.base(seed, self.schedule_steps)
    }

    /// The schedule runs' network at a constant learning rate `lr`.
    pub fn constant(&self, seed: u64, lr: f64) -> Vec<String> {
        let mut v = self.geometry(seed);
        v.push(format!("schedule={{kind=\"constant\",lr={lr}}}"));
        v
    }
}

/// Runs by (label, runs over seeds).
type Group = Vec<(String, Vec<Run>)>;

struct Runs {
    nup: Group,
    sp: Group,
    /// SP at lr = 0.01 (sensitivity NOTE, added after the first reduced run).
    sp_small: Group,
    geometry: Vec<Run>,
    constant: Group,
}

/// One empty group per depth.
fn depth_groups() -> Group {
    DEPTHS
        .iter()
        .map(|l| (format!("L = {l}"), vec![]))
        .collect()
}

fn train_all(ctx: &Ctx, p: &Settings) -> Result<Runs> {
    let mut r = Runs {
        nup: depth_groups(),
        sp: depth_groups(),
        sp_small: depth_groups(),
        geometry: vec![],
        constant: (p.sizes.grid.iter())
            .map(|lr| (format!("η = {lr}"), vec![]))
            .collect(),
    };
    for &seed in &p.sizes.seeds {
        train_depth(ctx, p, seed, &mut r)?;
        if p.depth_only {
            continue;
        }
        let name = format!("geometry-s{seed}");
        r.geometry
            .push(ctx.train(&name, "schedule.toml", &p.geometry(seed))?);
        for (i, &lr) in p.sizes.grid.iter().enumerate() {
            let name = format!("constant-{lr}-s{seed}");
            r.constant[i]
                .1
                .push(ctx.train(&name, "schedule.toml", &p.constant(seed, lr))?);
        }
    }
    Ok(r)
}

/// The depth runs of one seed: νP, SP and SP at the smaller lr at every depth.
fn train_depth(ctx: &Ctx, p: &Settings, seed: u64, r: &mut Runs) -> Result<()> {
    for (i, &l) in DEPTHS.iter().enumerate() {
        let train = |name: String, set: Vec<String>| ctx.train(&name, "depth.toml", &set);
        r.nup[i]
            .1
            .push(train(format!("nup-L{l}-s{seed}"), p.nup(seed, l))?);
        let sp = p.sp(seed, l, p.sp_lr);
        r.sp[i].1.push(train(format!("sp-L{l}-s{seed}"), sp)?);
        let small = p.sp(seed, l, p.sp_small_lr);
        r.sp_small[i]
            .1
            .push(train(format!("sp-small-L{l}-s{seed}"), small)?);
    }
    Ok(())
}

/// Mean minibatch loss over the last tenth; +∞ for a diverged run.
fn late_loss(run: &Run) -> f64 {
    if run.diverged() {
        return f64::INFINITY;
    }
    last_tenth_loss(run)
}

/// The seed mean of `f` over `runs`.
fn seed_mean(runs: &[Run], f: &dyn Fn(&Run) -> f64) -> f64 {
    mean(&runs.iter().map(f).collect::<Vec<_>>())
}

/// (label, seed-mean late loss) per group.
fn late_losses(g: &Group) -> Labelled {
    g.iter()
        .map(|(k, runs)| (k.clone(), seed_mean(runs, &late_loss)))
        .collect()
}

/// Steps in the catapult phase: 10 × the probes with ηλ > 2 where the mean loss over
/// the next `WINDOW` steps is below the mean over the previous `WINDOW` steps.
pub fn catapult_steps(el: &[(f64, f64)], loss: &[(f64, f64)]) -> f64 {
    let avg = |a: f64, b: f64| {
        let v: Vec<f64> = loss
            .iter()
            .filter(|p| p.0 > a && p.0 <= b)
            .map(|p| p.1)
            .collect();
        if v.is_empty() {
            f64::NAN
        } else {
            mean(&v)
        }
    };
    10.0 * el
        .iter()
        .filter(|p| p.1 > 2.0 && avg(p.0, p.0 + WINDOW) < avg(p.0 - WINDOW, p.0))
        .count() as f64
}

/// (step, the last hidden layer's preactivation RMS) at the `preact_rms` probes.
pub fn last_preact(run: &Run) -> Vec<(f64, f64)> {
    run.metrics
        .lines
        .iter()
        .filter_map(|l| {
            let v = l.get("preact_rms")?.as_array()?.last()?.as_f64()?;
            Some((l.get("step")?.as_f64()?, v))
        })
        .collect()
}

/// The spread over depth of a curve: for each step t logged by any run of `g`,
/// max − min over depths of log10(seed mean of `f` at t) (+∞ where a run lacks t —
/// it diverged — or its value is not finite and positive); the mean over t.
pub fn curve_spread(g: &Group, f: &dyn Fn(&Run) -> Vec<(f64, f64)>) -> f64 {
    let curves: Vec<Vec<Vec<(f64, f64)>>> = g
        .iter()
        .map(|(_, runs)| runs.iter().map(f).collect())
        .collect();
    let mut steps: Vec<f64> = curves.iter().flatten().flatten().map(|p| p.0).collect();
    steps.sort_by(f64::total_cmp);
    steps.dedup();
    let at = |c: &[(f64, f64)], t: f64| c.iter().find(|p| p.0 == t).map_or(f64::NAN, |p| p.1);
    let spread = |t: f64| {
        let logs: Vec<f64> = curves
            .iter()
            .map(|seeds| {
                let m = mean(&seeds.iter().map(|c| at(c, t)).collect::<Vec<_>>());
                if m.is_finite() && m > 0.0 {
                    m.log10()
                } else {
                    f64::NAN
                }
            })
            .collect();
        if logs.iter().any(|x| x.is_nan()) {
            return f64::INFINITY;
        }
        let hi = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        hi - logs.iter().copied().fold(f64::INFINITY, f64::min)
    };
    mean(&steps.iter().map(|&t| spread(t)).collect::<Vec<_>>())
}

/// Ranks (1-based, ties averaged).
fn ranks(v: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut r = vec![0.0; v.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
            j += 1;
        }
        for &k in &idx[i..=j] {
            r[k] = (i + j) as f64 / 2.0 + 1.0;
        }
        i = j + 1;
    }
    r
}

/// Spearman's ρ: the Pearson correlation of the ranks (NaN for < 3 points or a
/// constant variable).
pub fn spearman(x: &[f64], y: &[f64]) -> f64 {
    if x.len() < 3 || x.len() != y.len() {
        return f64::NAN;
    }
    let (rx, ry) = (ranks(x), ranks(y));
    let (mx, my) = (mean(&rx), mean(&ry));
    let cov: f64 = rx.iter().zip(&ry).map(|(a, b)| (a - mx) * (b - my)).sum();
    let vx: f64 = rx.iter().map(|a| (a - mx).powi(2)).sum();
    let vy: f64 = ry.iter().map(|b| (b - my).powi(2)).sum();
    cov / (vx * vy).sqrt()
}

/// Values with their labels (a depth, a constant η).
pub type Labelled = Vec<(String, f64)>;

/// N2's spreads over depth of one curve (see [`curve_spread`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spreads {
    pub nup: f64,
    /// SP at lr 0.01 (N2's baseline).
    pub sp_small: f64,
    /// SP at lr 0.05 (the NOTE).
    pub sp: f64,
}

/// What the depth runs measured (Q1, N1, N2).
#[derive(Debug, Clone, PartialEq)]
pub struct DepthMeasured {
    /// Q1: each νP run's status and whether it finished with a loss on every line.
    pub nup_runs: Vec<(String, bool)>,
    /// N1: seed-mean late loss per depth (+∞ for a diverged run) of νP, SP and SP at
    /// the smaller lr.
    pub late_nup: Labelled,
    pub late_sp: Labelled,
    pub late_sp_small: Labelled,
    /// N2: the last hidden layer's preactivation RMS and the minibatch loss curve.
    pub preact: Spreads,
    pub loss_curve: Spreads,
}

/// What the schedule runs (and, for N3, every run) measured.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleMeasured {
    /// N3: (early update cosine, final test accuracy) of every run that did not diverge
    /// and has both.
    pub cosine_accuracy: Vec<(f64, f64)>,
    /// Q2: η_t λ_t of the seed-0 geometry-aware run at its probes after the first.
    pub eta_lambda: Vec<f64>,
    /// N4: seed-mean catapult steps of the geometry-aware run and per constant η.
    pub catapult_geometry: f64,
    pub catapult_constant: Labelled,
    /// N5: seed-mean late loss of the geometry-aware run and of each constant η whose
    /// runs all finished.
    pub late_geometry: f64,
    pub late_constant_finished: Labelled,
}

/// What the runs measured; [`checks`] judges it.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurements {
    /// The full version: the claims gate (NOTEs in the reduced one).
    pub full: bool,
    pub depth: DepthMeasured,
    /// None with `EOS_NUP_EOC_ONLY=depth`.
    pub schedule: Option<ScheduleMeasured>,
}

fn measure_depth(r: &Runs) -> DepthMeasured {
    let spreads = |f: &dyn Fn(&Run) -> Vec<(f64, f64)>| Spreads {
        nup: curve_spread(&r.nup, f),
        sp_small: curve_spread(&r.sp_small, f),
        sp: curve_spread(&r.sp, f),
    };
    let nup_runs = (r.nup.iter().flat_map(|g| &g.1))
        .map(|x| {
            let ok =
                x.status == Status::Finished && x.series("loss").len() == x.metrics.lines.len();
            (x.status.to_string(), ok)
        })
        .collect();
    DepthMeasured {
        nup_runs,
        late_nup: late_losses(&r.nup),
        late_sp: late_losses(&r.sp),
        late_sp_small: late_losses(&r.sp_small),
        preact: spreads(&last_preact),
        loss_curve: spreads(&|x: &Run| x.series("loss")),
    }
}

/// N3's points: (early update cosine, final test accuracy) over every depth and
/// schedule run.
fn cosine_points(r: &Runs) -> Vec<(f64, f64)> {
    let runs = (r
        .nup
        .iter()
        .chain(&r.sp)
        .chain(&r.sp_small)
        .chain(&r.constant))
    .flat_map(|g| &g.1)
    .chain(&r.geometry);
    let mut out = vec![];
    for run in runs {
        let t_end = run.series("loss").last().map_or(0.0, |p| p.0);
        let cos: Vec<f64> = (run.series("update_cosine").into_iter())
            .filter(|p| p.0 <= 0.1 * t_end)
            .map(|p| p.1)
            .collect();
        let acc = run.series("test_accuracy").last().map_or(f64::NAN, |p| p.1);
        let c = super::median(cos);
        if c.is_finite() && acc.is_finite() && !run.diverged() {
            out.push((c, acc));
        }
    }
    out
}

fn measure_schedule(r: &Runs) -> ScheduleMeasured {
    let steps = |x: &Run| catapult_steps(&eta_lambda(x, "sharpness"), &x.series("loss"));
    let eta_lambda = (eta_lambda(&r.geometry[0], "sharpness").into_iter())
        .skip(1)
        .map(|p| p.1)
        .collect();
    let finished = (r.constant.iter())
        .filter(|(_, runs)| runs.iter().all(|x| x.status == Status::Finished))
        .cloned()
        .collect();
    ScheduleMeasured {
        cosine_accuracy: cosine_points(r),
        eta_lambda,
        catapult_geometry: seed_mean(&r.geometry, &steps),
        catapult_constant: (r.constant.iter())
            .map(|(k, runs)| (k.clone(), seed_mean(runs, &steps)))
            .collect(),
        late_geometry: seed_mean(&r.geometry, &late_loss),
        late_constant_finished: late_losses(&finished),
    }
}

/// The checks of the measurements (module docs), in the order Q1, N1, N2, N3, Q2, N4,
/// N5: a pure function.
pub fn checks(m: &Measurements) -> Vec<Check> {
    let mut out = depth_checks(m.full, &m.depth);
    out.extend(preact_checks(m.full, &m.depth));
    if let Some(s) = &m.schedule {
        out.push(cosine_check(m.full, s));
        out.extend(schedule_checks(m.full, s));
    }
    out
}

/// max − min of log10 of the values.
fn log_spread(v: &Labelled) -> f64 {
    let hi = v
        .iter()
        .map(|p| p.1.log10())
        .fold(f64::NEG_INFINITY, f64::max);
    let lo = v.iter().map(|p| p.1.log10()).fold(f64::INFINITY, f64::min);
    hi - lo
}

fn labelled_text(v: &Labelled) -> String {
    v.iter()
        .map(|(k, x)| format!("{k}: {}", fmt(*x)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Q1 and N1.
fn depth_checks(full: bool, d: &DepthMeasured) -> Vec<Check> {
    let ok = d.nup_runs.iter().all(|r| r.1);
    let (sn, ss) = (log_spread(&d.late_nup), log_spread(&d.late_sp));
    let sm = log_spread(&d.late_sp_small);
    let status: Vec<&str> = d.nup_runs.iter().map(|r| r.0.as_str()).collect();
    vec![
        Check::holds(
            "Q1 νP at L = 4, 8, 16: every run finishes with finite losses",
            ok,
            status.join(", "),
            "all finished",
            SOURCE,
        ),
        claim(
            full,
            Check::holds(
                "N1 spread over depth of log10(late loss): νP vs SP",
                sn <= 0.5 * ss,
                format!(
                    "{} vs {} (νP {}; SP {})",
                    fmt(sn),
                    fmt(ss),
                    labelled_text(&d.late_nup),
                    labelled_text(&d.late_sp)
                ),
                "νP ≤ ½ × SP",
                SOURCE,
            ),
        ),
        Check::holds(
            "N1 with SP at lr = 0.01 instead of 0.05 (sensitivity, added after seeing data)",
            sn <= 0.5 * sm,
            format!(
                "{} vs {} (SP {})",
                fmt(sn),
                fmt(sm),
                labelled_text(&d.late_sp_small)
            ),
            "νP ≤ ½ × SP",
            SOURCE,
        )
        .informative(),
    ]
}

/// N2: the spread over depth of the preactivation norms and of the loss curves,
/// νP against SP at the smaller lr (and, as a NOTE, at the larger one).
fn preact_checks(full: bool, d: &DepthMeasured) -> Vec<Check> {
    let mut out = Vec::new();
    for (what, s) in [
        ("preactivation RMS of the last hidden layer", d.preact),
        ("minibatch loss curve", d.loss_curve),
    ] {
        out.push(claim(
            full,
            Check::holds(
                format!("N2 spread over L = 4, 8, 16 of log10({what}), mean over steps: νP vs SP (lr {})", 0.01),
                s.nup <= N2_FACTOR * s.sp_small,
                format!("{} vs {}", fmt(s.nup), fmt(s.sp_small)),
                format!("νP ≤ {N2_FACTOR} × SP"),
                SOURCE,
            ),
        ));
        out.push(
            Check::holds(
                format!("N2 {what}: νP vs SP at lr 0.05 (diverged runs count as +∞)"),
                s.nup <= N2_FACTOR * s.sp,
                format!("{} vs {}", fmt(s.nup), fmt(s.sp)),
                format!("νP ≤ {N2_FACTOR} × SP"),
                SOURCE,
            )
            .informative(),
        );
    }
    out
}

/// N3: early update cosine vs final test accuracy over every depth and schedule run.
fn cosine_check(full: bool, s: &ScheduleMeasured) -> Check {
    let (x, y): (Vec<f64>, Vec<f64>) = s.cosine_accuracy.iter().copied().unzip();
    let rho = spearman(&x, &y);
    claim(
        full,
        Check::holds(
            "N3 Spearman ρ(early update cosine, final test accuracy) over the runs",
            rho >= 0.5,
            format!("{} over {} runs", fmt(rho), x.len()),
            "ρ ≥ 0.5",
            SOURCE,
        ),
    )
}

/// Q2, N4, N5: the geometry-aware schedule.
fn schedule_checks(full: bool, s: &ScheduleMeasured) -> Vec<Check> {
    let el = &s.eta_lambda;
    let inside =
        el.iter().filter(|v| (1.5..=4.0).contains(*v)).count() as f64 / el.len().max(1) as f64;
    let (geo, cons) = (s.catapult_geometry, &s.catapult_constant);
    let cmax = cons.iter().map(|c| c.1).fold(0.0, f64::max);
    let gl = s.late_geometry;
    let best = (s.late_constant_finished.iter()).min_by(|a, b| a.1.total_cmp(&b.1));
    vec![
        Check::holds(
            "Q2 geometry-aware schedule: share of probes with η_t λ_t in [1.5, 4] (seed 0)",
            inside >= 0.8,
            format!("{} of {} probes", fmt(inside), el.len()),
            "≥ 0.8",
            "the schedule's definition (THEORY.md §6)",
        ),
        claim(
            full,
            Check::holds(
                "N4 catapult steps (ηλ > 2, loss falling over ±50 steps): geometry-aware vs constant η",
                geo >= 3.0 * cmax,
                format!("{} vs {}", fmt(geo), labelled_text(cons)),
                "≥ 3 × the largest constant-η value",
                SOURCE,
            ),
        ),
        claim(
            full,
            Check::holds(
                "N5 late loss: geometry-aware vs the best constant η",
                best.is_some_and(|b| gl <= b.1),
                format!(
                    "{} vs {}",
                    fmt(gl),
                    best.map_or("none finished".into(), |b| format!("{} ({})", fmt(b.1), b.0))
                ),
                "≤ the best constant η",
                SOURCE,
            ),
        ),
    ]
}

fn depth_figures(ctx: &Ctx, r: &Runs) -> Result<()> {
    let mut fig = Figure::new("nup-eoc: minibatch loss across depth, seed 0")
        .x_label("step")
        .y_label("loss")
        .y_log();
    for (name, g, style) in [("νP", &r.nup, Style::Line), ("SP", &r.sp, Style::Dashed)] {
        for (k, runs) in g {
            fig.add(format!("{name} {k}"), runs[0].series("loss"), style);
        }
    }
    ctx.save(&fig, "depth_loss")?;
    let mut pre = Figure::new("nup-eoc: preactivation RMS of the last hidden layer, seed 0")
        .x_label("step")
        .y_label("RMS(z_{L−2})")
        .y_log();
    for (name, g, style) in [
        ("νP", &r.nup, Style::Line),
        ("SP lr 0.01", &r.sp_small, Style::Dashed),
    ] {
        for (k, runs) in g {
            pre.add(format!("{name} {k}"), last_preact(&runs[0]), style);
        }
    }
    ctx.save(&pre, "depth_preact")
}

fn figures(ctx: &Ctx, r: &Runs) -> Result<()> {
    let mut s = Figure::new("nup-eoc: η·λ_max, geometry-aware vs constant η, seed 0")
        .x_label("step")
        .y_label("η · λ_max")
        .y_log();
    s.add(
        "geometry-aware (c = 2.5)",
        eta_lambda(&r.geometry[0], "sharpness"),
        Style::LinePoints,
    );
    for (k, runs) in &r.constant {
        s.add(k.clone(), eta_lambda(&runs[0], "sharpness"), Style::Line);
    }
    ctx.save(&s, "schedule_eta_lambda")
}

pub fn run(ctx: &Ctx) -> Result<Vec<Check>> {
    let p = Settings::load(ctx)?;
    let r = train_all(ctx, &p)?;
    let m = Measurements {
        full: ctx.full,
        depth: measure_depth(&r),
        schedule: (!p.depth_only).then(|| measure_schedule(&r)),
    };
    depth_figures(ctx, &r)?;
    if !p.depth_only {
        figures(ctx, &r)?;
    }
    Ok(checks(&m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_give_the_committed_overrides() {
        let p: Settings = crate::settings::of("nup-eoc", false);
        let full: Settings = crate::settings::of("nup-eoc", true);
        assert_eq!(p.sizes, crate::terjek::committed_sizes(false));
        assert_eq!(full.sizes, crate::terjek::committed_sizes(true));
        assert_eq!((p.depth_steps, p.schedule_steps), (150, 300));
        assert_eq!((full.depth_steps, full.schedule_steps), (600, 1500));
        for s in [&p, &full] {
            assert_eq!((s.sp_width, s.sp_lr, s.sp_small_lr), (64, 0.05, 0.01));
        }

        let nup = [
            "train.steps=150",
            "train.seed=2",
            "data.n=1024",
            "data.test_n=500",
            "model.depth=8",
        ];
        assert_eq!(p.nup(2, 8), nup);
        let sp = p.sp(2, 8, 0.05);
        assert_eq!(sp[..5], nup);
        assert_eq!(
            sp[5..],
            [
                SP,
                "model.pattern={kind=\"constant\"}",
                "model.base_width=64",
                "optim.lr=0.05"
            ]
        );
        assert_eq!(full.geometry(0)[0], "train.steps=1500");
        assert_eq!(
            p.constant(0, 0.01)[4],
            "schedule={kind=\"constant\",lr=0.01}"
        );
    }

    #[test]
    fn spearman_known_values() {
        // Monotone: ρ = 1; reversed: −1; ties averaged: ranks of [1, 2, 2, 3].
        assert!((spearman(&[1.0, 2.0, 3.0, 4.0], &[10.0, 20.0, 25.0, 90.0]) - 1.0).abs() < 1e-12);
        assert!((spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
        assert_eq!(ranks(&[1.0, 5.0, 5.0, 7.0]), vec![1.0, 2.5, 2.5, 4.0]);
        // x = 1..5, y = [2, 1, 4, 3, 5]: Σd² = 4, ρ = 1 − 6·4/(5·24) = 0.8.
        let r = spearman(&[1.0, 2.0, 3.0, 4.0, 5.0], &[2.0, 1.0, 4.0, 3.0, 5.0]);
        assert!((r - 0.8).abs() < 1e-12, "{r}");
        assert!(spearman(&[1.0, 2.0], &[1.0, 2.0]).is_nan());
    }

    fn run(text: &str) -> Run {
        Run {
            dir: "x".into(),
            status: Status::Finished,
            metrics: eos_train::metrics::read::Metrics::parse(text),
        }
    }

    #[test]
    fn curve_spread_of_preactivations_and_losses() {
        // Depth A: rms 1 then 10; depth B (two seeds): means 1 then 100, loss 1 always.
        let a = run("{\"step\":0,\"loss\":1,\"preact_rms\":[5,1]}\n{\"step\":25,\"loss\":1,\"preact_rms\":[5,10]}");
        let b1 = run("{\"step\":0,\"loss\":1,\"preact_rms\":[1]}\n{\"step\":25,\"loss\":1,\"preact_rms\":[150]}");
        let b2 = run("{\"step\":0,\"loss\":1,\"preact_rms\":[1]}\n{\"step\":25,\"loss\":1,\"preact_rms\":[50]}");
        assert_eq!(last_preact(&a), [(0.0, 1.0), (25.0, 10.0)]);
        let g: Group = vec![("A".into(), vec![a]), ("B".into(), vec![b1, b2])];
        // Step 0: |log10 1 − log10 1| = 0; step 25: log10 100 − log10 10 = 1; mean ½.
        assert!((curve_spread(&g, &last_preact) - 0.5).abs() < 1e-12);
        assert_eq!(curve_spread(&g, &|x: &Run| x.series("loss")), 0.0);
        // A run that stops early (diverged) makes the later steps +∞.
        let short = run("{\"step\":0,\"loss\":1,\"preact_rms\":[1]}");
        let g2: Group = vec![("A".into(), vec![short]), g[1].clone()];
        assert_eq!(curve_spread(&g2, &last_preact), f64::INFINITY);
    }

    #[test]
    fn catapult_steps_need_both_conditions() {
        // Loss falls every step until 100, then rises; probes every 10 steps.
        let loss: Vec<(f64, f64)> = (0..200)
            .map(|t| {
                (
                    t as f64,
                    if t < 100 {
                        1.0 - t as f64 * 1e-3
                    } else {
                        0.9 + t as f64 * 1e-3
                    },
                )
            })
            .collect();
        let el: Vec<(f64, f64)> = (0..20)
            .map(|k| (k as f64 * 10.0, if k < 5 { 3.0 } else { 1.0 }))
            .collect();
        // Probes t = 0 … 40 have ηλ > 2 and a falling loss (the past window of t = 0
        // is the step-0 loss alone): 5 probes → 50 steps.
        assert_eq!(catapult_steps(&el, &loss), 50.0);
        let el_hi: Vec<(f64, f64)> = el.iter().map(|p| (p.0, 3.0)).collect();
        // With ηλ > 2 everywhere, t = 50 and 60 count too (their next window holds a
        // few risen values but still averages below the past one: 0.9265 < 0.9745,
        // 0.9387 < 0.9645); at t = 70 it does not (0.9549 > 0.9545).
        assert_eq!(catapult_steps(&el_hi, &loss), 70.0);
    }

    fn labelled(v: &[(&str, f64)]) -> Labelled {
        v.iter().map(|(k, x)| (k.to_string(), *x)).collect()
    }

    /// Measurements on which every gate holds exactly at its threshold.
    fn at_thresholds() -> Measurements {
        let depth = labelled(&[("L = 4", 1.0), ("L = 8", 1.0), ("L = 16", 10.0)]);
        let spreads = Spreads {
            nup: 0.5,
            sp_small: 1.0,
            sp: f64::INFINITY,
        };
        Measurements {
            full: true,
            depth: DepthMeasured {
                nup_runs: vec![("finished".into(), true); 3],
                // νP spread 1 decade, SP 2 decades: 1 ≤ ½ × 2.
                late_nup: depth,
                late_sp: labelled(&[("L = 4", 1.0), ("L = 8", 100.0), ("L = 16", 10.0)]),
                late_sp_small: labelled(&[("L = 4", 1.0), ("L = 8", 1.0), ("L = 16", 1.0)]),
                preact: spreads,
                loss_curve: spreads,
            },
            schedule: Some(ScheduleMeasured {
                // Ranks 1..5 against 1, 4, 2, 5, 3: Σd² = 10, ρ = 1 − 60/120 = 0.5.
                cosine_accuracy: vec![(0.1, 1.0), (0.2, 4.0), (0.3, 2.0), (0.4, 5.0), (0.5, 3.0)],
                // 4 of 5 in [1.5, 4] (both ends inside).
                eta_lambda: vec![1.5, 4.0, 2.0, 2.5, 4.5],
                catapult_geometry: 30.0,
                catapult_constant: labelled(&[("η = 0.01", 10.0), ("η = 0.1", 0.0)]),
                late_geometry: 0.1,
                late_constant_finished: labelled(&[("η = 0.01", 0.2), ("η = 0.03", 0.1)]),
            }),
        }
    }

    /// (name prefix, pass, informative) of each check.
    fn verdicts(m: &Measurements) -> Vec<(String, bool, bool)> {
        checks(m)
            .into_iter()
            .map(|c| (c.what[..2].to_string(), c.pass, c.informative))
            .collect()
    }

    #[test]
    fn checks_pass_exactly_at_the_thresholds() {
        let m = at_thresholds();
        let v = verdicts(&m);
        let names: Vec<&str> = v.iter().map(|c| c.0.as_str()).collect();
        assert_eq!(
            names,
            ["Q1", "N1", "N1", "N2", "N2", "N2", "N2", "N3", "Q2", "N4", "N5"]
        );
        // Every gate passes; the NOTEs: N1 at SP lr 0.01 fails (spread 0), N2 at lr 0.05
        // passes (SP +∞).
        let informative: Vec<bool> = v.iter().map(|c| c.2).collect();
        let notes = [
            false, false, true, false, true, false, true, false, false, false, false,
        ];
        assert_eq!(informative, notes);
        for (c, note) in v.iter().zip(notes) {
            assert!(note || c.1, "{c:?}");
        }
        assert!(!v[2].1 && v[4].1 && v[6].1);
        let c = checks(&m);
        assert_eq!(
            c[1].measured,
            "1 vs 2 (νP L = 4: 1, L = 8: 1, L = 16: 10; SP L = 4: 1, L = 8: 100, L = 16: 10)"
        );
        assert_eq!(c[7].measured, "0.5 over 5 runs");
        assert_eq!(c[8].measured, "0.8 of 5 probes");
        assert_eq!(c[10].measured, "0.1 vs 0.1 (η = 0.03)");
    }

    fn s(m: &mut Measurements) -> &mut ScheduleMeasured {
        m.schedule
            .as_mut()
            .expect("at_thresholds has the schedule runs")
    }

    #[test]
    fn each_gate_fails_just_past_its_threshold() {
        let fails = |f: &dyn Fn(&mut Measurements), i: usize| {
            let mut m = at_thresholds();
            f(&mut m);
            crate::assert_only_fails(&checks(&m), i);
        };
        fails(&|m| m.depth.nup_runs[1] = ("diverged".into(), false), 0);
        fails(&|m| m.depth.late_sp[1].1 = 99.0, 1);
        fails(&|m| m.depth.preact.nup = 0.500_001, 3);
        fails(&|m| m.depth.loss_curve.sp_small = 0.999_999, 5);
        // Ranks 4, 1, 2, 3, 5: Σd² = 12, ρ = 0.4.
        fails(
            &|m| {
                s(m).cosine_accuracy =
                    vec![(1.0, 4.0), (2.0, 1.0), (3.0, 2.0), (4.0, 3.0), (5.0, 5.0)]
            },
            7,
        );
        fails(&|m| s(m).eta_lambda[1] = 4.000_001, 8);
        fails(&|m| s(m).catapult_geometry = 29.999, 9);
        fails(&|m| s(m).late_geometry = 0.100_001, 10);
        fails(&|m| s(m).late_constant_finished.clear(), 10);
        let mut m = at_thresholds();
        s(&mut m).late_constant_finished.clear();
        assert_eq!(checks(&m)[10].measured, "0.1 vs none finished");
    }

    #[test]
    fn reduced_claims_are_notes_and_depth_only_stops_at_n2() {
        let mut m = at_thresholds();
        m.full = false;
        let v = verdicts(&m);
        let gating: Vec<&str> = v.iter().filter(|c| !c.2).map(|c| c.0.as_str()).collect();
        assert_eq!(gating, ["Q1", "Q2"]);
        m.schedule = None;
        assert_eq!(checks(&m).len(), 7);
    }
}
