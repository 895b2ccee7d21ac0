//! `richness-sweep`: the optimal learning rate across the feature-learning strength γ
//! (Atanasov, Meterez, Simon, Pehlevan, arXiv 2410.04642; THEORY.md §3).
//!
//! `eos sweep experiments/richness-sweep/sweep.toml` (reduced: depth L = 3, 9 γ from
//! 10⁻⁴ to 10⁴, 2 seeds) or `sweep-full.toml` (L ∈ {2, 3, 4}, 17 γ, 3 seeds), online
//! SGD for 2 000 steps, each γ with the divergence-aware η₀ ladder (2 rungs per
//! decade, 3 decades below the first stable rung). η* per (L, γ) is the parabolic refinement of the grid argmin of the
//! seed-mean final loss ([`eos_sweep::fit`]). Checks per L: the least-squares log-log slope of η* on γ
//! over γ ≤ 0.0316 (γ ≪ 1: the crossover starts near 0.1) is 2 ± 15 %, over γ ≥ 10
//! it is 2/L ± 15 %. The ultra-rich plateau: at η* the number of steps until the loss
//! first halves ([`escape_step`]) grows with γ over γ ≥ 10, by at least
//! [`PLATEAU_GROWTH`] from γ = 10 to the largest γ.
//!
//! η* is an interior optimum ([`interior`]): for every (L, γ) the grid argmin of the
//! seed-mean final loss has an eligible rung on each side with a higher loss, and it
//! lies at least [`EDGE_MARGIN`] below the smallest rung above it on which a seed
//! diverged. Staircases: the number of distinct drops of the loss curve at η*
//! ([`count_drops`]), reported per γ (not gated). The η₀ ladder is the authors'
//! (Richness_Sweep defaults: 2 rungs per decade, 3 decades below the first stable
//! rung, THEORY.md §3; until 2026-12-07 4 per decade and 1 decade below).
//!
//! Collapse ([`collapse_check`]): for each L, the smoothed log loss curves at η* of
//! the γ ≥ 100 are matched to the smallest of them by one time rescaling each,
//! c(τ·t) ≈ r(t) with τ(γ) fitted on a grid; the RMS gap after it must be ≤
//! [`COLLAPSE_TOL`] decades for every γ, and pooled over them ≤ [`COLLAPSE_GAIN`] of
//! the pooled gap without it ([`collapse_holds`]; the form
//! t/τ and the tolerances are inferred: the abstract says "similar trajectories up to a
//! reparameterization of time"). Best online loss: the seed-mean final loss at η*(γ)
//! per γ and the γ with the lowest ([`best_gamma_report`]), reported: the abstract says
//! "often", on the paper's datasets. The collapse gates in the full version only.
//!
//! The settings of each version (which sweep file, whether the issue-14 claims gate,
//! the CNN part) are one [`Settings`] value, read from
//! `experiments/richness-sweep/{reduced,full}.toml`; the grids are in the sweep files.
//! `run` measures ([`Measurements`]), judges ([`checks`], a pure function) and plots.
//!
//! CNN part (issue 14; the full version's `[cnn]`): `sweep-cnn.toml` on `cnn.toml`, the
//! authors' CNN (Richness_Sweep `vision_tasks/models.py`: two 3×3 convolutions, 2×2
//! average pooling, a dense layer of 8·width, the 1/N readout; L = 4) on
//! Fashion-MNIST; its two slope checks gate with the MLP's thresholds and 2/L = 1/2
//! ([`cnn_checks`]; committed before the run, docs/reproductions.md).

use eos_train::Status;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use super::{fmt, Check, Ctx, Error, Result};
use eos_report::plot::{Figure, Style};
use eos_sweep::fit::{loglog_fit, mean_over_seeds, Fit};
use eos_sweep::results::{best_per_group, read_rows, CellRow, GroupBest};
use eos_sweep::{self as sweep, SweepOptions};
use eos_train::metrics::read::Metrics;

const SOURCE: &str = "Atanasov et al. 2024, abstract and Fig. 1 (η* ∝ γ² for γ ≪ 1, γ^(2/L) for γ ≫ 1); THEORY.md §3";
const GAMMA: &str = "model.parameterization.gamma";
const DEPTH: &str = "model.depth";
/// The base config's depth (when the sweep has no depth axis).
const BASE_DEPTH: u64 = 3;
/// The largest γ of the lazy fit, and the smallest of the rich fit.
const LAZY_MAX: f64 = 0.0317;
const RICH_MIN: f64 = 9.99;
/// The plateau check: the escape step at the largest γ over the one at the smallest
/// rich γ must reach this (longer plateau; 1.1 stays clear of the logging interval).
/// (1.1 until 2026-12-06; 3.0 from issue 14, committed before the run: see "Changed
/// after seeing data" in docs/reproductions.md).
pub const PLATEAU_GROWTH: f64 = 3.0;
/// η*'s grid rung at least this factor below the first diverged rung above it (two
/// rungs of a 4-per-decade ladder, one of the 2-per-decade ladder; with a stable
/// higher rung above η* it holds by construction on either ladder; committed
/// 2026-12-07 before the run).
pub const EDGE_MARGIN: f64 = 3.16;
/// Staircase detector: blocks per curve and the fall (decades of the block-mean
/// loss) that makes a block a drop.
pub const DROP_BLOCKS: usize = 40;
pub const DROP_FALL: f64 = 0.05;
const CNN_SOURCE: &str = "the authors' CNN (Richness_Sweep vision_tasks/models.py, L = 4) on Fashion-MNIST; experiments/richness-sweep/cnn.toml";
const PLATEAU_SOURCE: &str = "THEORY.md §3: the ultra-rich regime shows an initial loss plateau whose length grows with γ (Atanasov et al. 2024)";
const COLLAPSE_SOURCE: &str = "Atanasov et al. 2024, abstract: networks of different large γ optimize along similar trajectories up to a reparameterization of time (rescaling t → t/τ(γ) and tolerances inferred)";
const BEST_SOURCE: &str = "Atanasov et al. 2024, abstract: optimal online performance is often found at large γ (\"often\", on their datasets: reported, not gated)";
/// The collapse check (issue 14; all committed 2026-12-07 before any run computed
/// it): the large-γ curves are those at γ ≥ `COLLAPSE_MIN`, compared as the centred
/// moving average of log10 of the seed-mean loss at η* over [`COLLAPSE_SMOOTH`]
/// logged points.
pub const COLLAPSE_MIN: f64 = 99.0;
pub const COLLAPSE_SMOOTH: usize = 5;
/// After the fitted rescaling, the RMS gap to the reference curve (decades of loss)
/// is at most this …
pub const COLLAPSE_TOL: f64 = 0.1;
/// … and at most this fraction of the gap without rescaling, on the same window.
pub const COLLAPSE_GAIN: f64 = 1.0 / 3.0;
/// A comparison needs at least this many logged points of the reference curve.
pub const COLLAPSE_MIN_POINTS: usize = 20;
/// τ is searched over 10^(k/200), k = −200 … 200 (a factor 10 either way).
const TAU_STEPS: i32 = 200;

/// The end of the initial plateau: the first logged step at which the mean of the last
/// five logged losses is below half the first logged loss (`None`: never).
pub fn escape_step(loss: &[(f64, f64)]) -> Option<f64> {
    let first = loss.first()?.1;
    (0..loss.len()).find_map(|i| {
        let w = &loss[i.saturating_sub(4)..=i];
        let mean = w.iter().map(|p| p.1).sum::<f64>() / w.len() as f64;
        (mean < 0.5 * first).then_some(loss[i].0)
    })
}

/// The value of `key` in a group's grid values.
fn group_value<'a>(g: &'a GroupBest, key: &str) -> Option<&'a Value> {
    g.group.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// One (L, γ) group at its η* (the grid argmin), from its cells' metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct AtStar {
    pub depth: u64,
    pub gamma: f64,
    /// Seed-mean escape step ([`escape_step`]); `None` if a seed never escapes.
    pub escape: Option<f64>,
    /// Seed-mean number of drops ([`count_drops`]).
    pub drops: f64,
    /// Seed-mean loss per logged step (the steps every seed logged).
    pub curve: Vec<(f64, f64)>,
    /// Seed-mean final loss at η* (what η* minimises).
    pub final_loss: f64,
}

/// [`AtStar`] of every group with an η* and a finished cell at it.
fn at_eta_star(
    dir: &Path,
    rows: &[CellRow],
    best: &[GroupBest],
    base_depth: u64,
) -> Result<Vec<AtStar>> {
    let mut out = Vec::new();
    for g in best {
        let Some(e) = g.eta else { continue };
        let in_group = |r: &&CellRow| {
            g.group.iter().all(|(k, v)| r.values.get(k) == Some(v))
                && r.values.get("optim.lr").and_then(Value::as_f64) == Some(e.lr)
                && r.status == Status::Finished
        };
        let mut curves = Vec::new();
        for r in rows.iter().filter(in_group) {
            let m = Metrics::read(&dir.join(&r.dir).join("metrics.jsonl"))?;
            curves.push(m.scalar("loss"));
        }
        let get = |k: &str| group_value(g, k);
        let Some(gamma) = get(GAMMA).and_then(Value::as_f64) else {
            continue;
        };
        if curves.is_empty() {
            continue;
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        let drops: Vec<f64> = curves.iter().map(|c| count_drops(c) as f64).collect();
        let escapes: Option<Vec<f64>> = curves.iter().map(|c| escape_step(c)).collect();
        out.push(AtStar {
            depth: get(DEPTH).and_then(Value::as_u64).unwrap_or(base_depth),
            gamma,
            escape: escapes.map(|v| mean(&v)),
            drops: mean(&drops),
            curve: seed_mean_curve(&curves),
            final_loss: e.loss,
        });
    }
    Ok(out)
}

/// The pointwise mean of curves logged at the same steps (cut to the shortest).
pub fn seed_mean_curve(curves: &[Vec<(f64, f64)>]) -> Vec<(f64, f64)> {
    let n = curves.iter().map(Vec::len).min().unwrap_or(0);
    (0..n)
        .map(|i| {
            let sum: f64 = curves.iter().map(|c| c[i].1).sum();
            (curves[0][i].0, sum / curves.len() as f64)
        })
        .collect()
}

/// (L, γ, seed-mean escape step, seed-mean number of drops) of the groups whose seeds
/// all escape the plateau.
fn plateaus(at: &[AtStar]) -> Vec<(u64, f64, f64, f64)> {
    at.iter()
        .filter_map(|a| Some((a.depth, a.gamma, a.escape?, a.drops)))
        .collect()
}

/// Where a group's grid argmin sits on its ladder (module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interior {
    pub lr: f64,
    /// Seed-mean losses of the next eligible rung below and above (None: none).
    pub below: Option<f64>,
    pub loss: f64,
    pub above: Option<f64>,
    /// The smallest lr above the argmin with a non-finite seed (None: none tried).
    pub edge: Option<f64>,
}

impl Interior {
    /// Both neighbours higher and the edge at least [`EDGE_MARGIN`] above.
    pub fn pass(&self) -> bool {
        let higher = |n: Option<f64>| n.is_some_and(|v| v > self.loss);
        higher(self.below)
            && higher(self.above)
            && self.edge.is_none_or(|e| e >= EDGE_MARGIN * self.lr)
    }
}

/// The argmin of `means` (ascending lr, `None` where a seed diverged) and its
/// neighbours (the output of [`eos_sweep::fit::mean_over_seeds`]).
pub fn interior(means: &[(f64, Option<f64>)]) -> Option<Interior> {
    let (i, (lr, loss)) = means
        .iter()
        .enumerate()
        .filter_map(|(i, (lr, l))| l.map(|l| (i, (*lr, l))))
        .min_by(|a, b| a.1 .1.total_cmp(&b.1 .1))?;
    Some(Interior {
        lr,
        below: i.checked_sub(1).and_then(|j| means[j].1),
        loss,
        above: means.get(i + 1).and_then(|p| p.1),
        edge: means[i + 1..].iter().find(|p| p.1.is_none()).map(|p| p.0),
    })
}

/// The number of distinct drops in a loss curve: the curve is cut into
/// [`DROP_BLOCKS`] blocks, a block whose mean log10 loss is at least [`DROP_FALL`]
/// below the previous block's is falling, and each run of falling blocks is a drop.
pub fn count_drops(loss: &[(f64, f64)]) -> usize {
    let n = loss.len() / DROP_BLOCKS;
    if n == 0 {
        return 0;
    }
    let means: Vec<f64> = loss
        .chunks_exact(n)
        .map(|c| c.iter().map(|p| p.1.max(1e-300).log10()).sum::<f64>() / n as f64)
        .collect();
    let falling: Vec<bool> = means.windows(2).map(|w| w[0] - w[1] >= DROP_FALL).collect();
    let starts = falling.iter().enumerate();
    starts
        .filter(|&(i, &f)| f && (i == 0 || !falling[i - 1]))
        .count()
}

/// The centred moving average of log10 loss over [`COLLAPSE_SMOOTH`] logged points
/// (fewer at the ends).
pub fn smooth_log(curve: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let h = COLLAPSE_SMOOTH / 2;
    (0..curve.len())
        .map(|i| {
            let w = &curve[i.saturating_sub(h)..(i + h + 1).min(curve.len())];
            let m = w.iter().map(|p| p.1.max(1e-300).log10()).sum::<f64>() / w.len() as f64;
            (curve[i].0, m)
        })
        .collect()
}

/// Linear interpolation of `c` (ascending t) at `t`; `None` outside its range.
fn interp(c: &[(f64, f64)], t: f64) -> Option<f64> {
    let j = c.partition_point(|p| p.0 < t);
    if j == c.len() || (j == 0 && c[0].0 > t) {
        return None;
    }
    if c[j].0 == t || j == 0 {
        return Some(c[j].1);
    }
    let (a, b) = (c[j - 1], c[j]);
    Some(a.1 + (b.1 - a.1) * (t - a.0) / (b.0 - a.0))
}

/// RMS of c(s·t) − r(t) over the points of `r` with t ≤ `t_max` where c(s·t) is
/// defined, and their number.
pub fn misfit(r: &[(f64, f64)], c: &[(f64, f64)], s: f64, t_max: f64) -> (f64, usize) {
    let d: Vec<f64> = r
        .iter()
        .filter(|p| p.0 <= t_max)
        .filter_map(|p| Some(interp(c, s * p.0)? - p.1))
        .collect();
    let n = d.len();
    (
        (d.iter().map(|x| x * x).sum::<f64>() / n.max(1) as f64).sqrt(),
        n,
    )
}

/// A curve matched to the reference by a rescaling of time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Collapse {
    /// c(τ·t) ≈ r(t): the curve runs τ times slower than the reference.
    pub tau: f64,
    /// RMS gap after and before the rescaling, on the same window.
    pub rescaled: f64,
    pub unrescaled: f64,
    pub n: usize,
}

impl Collapse {
    /// The first rule, per γ (reported since 2026-12-07; [`collapse_holds`]).
    pub fn pass(&self) -> bool {
        self.rescaled <= COLLAPSE_TOL && self.rescaled <= COLLAPSE_GAIN * self.unrescaled
    }
}

/// The τ (grid over a factor 10 either way) minimising the gap of smoothed curve `c`
/// to smoothed reference `r` over r's points with τ·t inside c; `None` if no τ
/// leaves [`COLLAPSE_MIN_POINTS`] points.
pub fn fit_tau(r: &[(f64, f64)], c: &[(f64, f64)]) -> Option<Collapse> {
    let end = c.last()?.0;
    (-TAU_STEPS..=TAU_STEPS)
        .map(|k| 10f64.powf(f64::from(k) / f64::from(TAU_STEPS)))
        .filter_map(|tau| {
            let (rescaled, n) = misfit(r, c, tau, end / tau);
            (n >= COLLAPSE_MIN_POINTS).then(|| Collapse {
                tau,
                rescaled,
                unrescaled: misfit(r, c, 1.0, end / tau).0,
                n,
            })
        })
        .min_by(|a, b| a.rescaled.total_cmp(&b.rescaled))
}

/// (γ, its fit to the reference; `None`: no τ fits).
pub type GammaFits = Vec<(f64, Option<Collapse>)>;

/// Depth `l`'s large-γ curves: the reference (smallest γ ≥ [`COLLAPSE_MIN`]) and
/// each other γ with its fit (`None`: no τ fits).
pub fn collapse_fits(at: &[AtStar], l: u64) -> Option<(f64, GammaFits)> {
    let mut large: Vec<&AtStar> = at
        .iter()
        .filter(|a| a.depth == l && a.gamma >= COLLAPSE_MIN && !a.curve.is_empty())
        .collect();
    large.sort_by(|a, b| a.gamma.total_cmp(&b.gamma));
    let (first, rest) = large.split_first()?;
    let r = smooth_log(&first.curve);
    let fits = rest
        .iter()
        .map(|a| (a.gamma, fit_tau(&r, &smooth_log(&a.curve))))
        .collect();
    Some((first.gamma, fits))
}

/// The collapse check of depth `l` (constants above): every large γ matches the
/// reference within [`COLLAPSE_TOL`] after its fitted τ, and at most
/// [`COLLAPSE_GAIN`] of its unrescaled gap; at least two large γ besides the reference.
pub fn collapse_check(l: u64, at: &[AtStar]) -> Check {
    let fits = collapse_fits(at, l);
    let (reference, list) = fits
        .as_ref()
        .map_or((f64::NAN, &[][..]), |f| (f.0, &f.1[..]));
    let text: Vec<String> = list
        .iter()
        .map(|(g, f)| match f {
            Some(c) => format!(
                "γ {}: τ {}, gap {} vs {} unrescaled ({} pts)",
                fmt(*g),
                fmt(c.tau),
                fmt(c.rescaled),
                fmt(c.unrescaled),
                c.n
            ),
            None => format!("γ {}: no τ fits", fmt(*g)),
        })
        .collect();
    let taus: Vec<(f64, f64)> = std::iter::once((reference, 1.0))
        .chain(list.iter().filter_map(|(g, f)| Some((*g, f.as_ref()?.tau))))
        .collect();
    let slope = loglog_fit(&taus).map_or("n/a".into(), |f| fmt(f.slope));
    Check::holds(
        format!(
            "L = {l}: large-γ loss curves at η* collapse under t → t/τ(γ) (reference γ = {}; slope of ln τ on ln γ {slope})",
            fmt(reference)
        ),
        collapse_holds(list),
        if text.is_empty() {
            "no large-γ curves".into()
        } else {
            let (after, before) = pooled(list);
            let old = list.iter().all(|(_, f)| f.is_some_and(|c| c.pass()));
            format!(
                "{}; pooled gap {} vs {} unrescaled (ratio {}); first rule (ratio per γ): {}",
                text.join("; "),
                fmt(after),
                fmt(before),
                fmt(after / before),
                if old { "holds" } else { "does not hold" }
            )
        },
        format!(
            "every γ ≥ {}: rescaled RMS gap ≤ {COLLAPSE_TOL} decades; pooled over them ≤ {} × unrescaled; ≥ 2 γ besides the reference",
            fmt(COLLAPSE_MIN + 1.0),
            fmt(COLLAPSE_GAIN)
        ),
        COLLAPSE_SOURCE,
    )
}

/// The collapse rule: at least two fitted γ, each within [`COLLAPSE_TOL`] after its
/// rescaling, and the pooled gap after at most [`COLLAPSE_GAIN`] of the pooled gap
/// before. (Until 2026-12-07 the ratio was required per γ, [`Collapse::pass`]: that
/// fails a γ whose curve already coincides with the reference at τ = 1; changed after
/// the reduced run, docs/reproductions.md "Changed after seeing data".)
pub fn collapse_holds(list: &[(f64, Option<Collapse>)]) -> bool {
    let (after, before) = pooled(list);
    list.len() >= 2
        && list
            .iter()
            .all(|(_, f)| f.is_some_and(|c| c.rescaled <= COLLAPSE_TOL))
        && after <= COLLAPSE_GAIN * before
}

/// The RMS gaps after and before the rescaling, pooled over the fitted γ (each γ
/// weighted by its number of points).
pub fn pooled(list: &[(f64, Option<Collapse>)]) -> (f64, f64) {
    let fits: Vec<&Collapse> = list.iter().filter_map(|(_, f)| f.as_ref()).collect();
    let n: usize = fits.iter().map(|c| c.n).sum();
    let rms = |g: &dyn Fn(&Collapse) -> f64| {
        (fits.iter().map(|c| c.n as f64 * g(c).powi(2)).sum::<f64>() / n.max(1) as f64).sqrt()
    };
    (rms(&|c| c.rescaled), rms(&|c| c.unrescaled))
}

/// The seed-mean final loss at η* per γ of depth `l`, and the γ with the lowest
/// (reported, not gated: module docs).
pub fn best_gamma_report(l: u64, at: &[AtStar]) -> Check {
    let mine: Vec<&AtStar> = at.iter().filter(|a| a.depth == l).collect();
    let best = mine
        .iter()
        .min_by(|a, b| a.final_loss.total_cmp(&b.final_loss));
    let list: Vec<String> = mine
        .iter()
        .map(|a| format!("γ {}: {}", fmt(a.gamma), fmt(a.final_loss)))
        .collect();
    Check::holds(
        format!(
            "L = {l}: best online loss over γ at η*(γ): γ = {} ({})",
            best.map_or("none".into(), |b| fmt(b.gamma)),
            best.map_or("none".into(), |b| fmt(b.final_loss))
        ),
        best.is_some_and(|b| b.gamma >= RICH_MIN),
        list.join("; "),
        format!(
            "reported (not gated); holds if the best γ ≥ {}",
            fmt(RICH_MIN + 0.01)
        ),
        BEST_SOURCE,
    )
    .informative()
}

/// Per depth: the γ whose η* is not interior ([`interior`]), and the count tried.
pub fn interior_failures(
    rows: &[CellRow],
    best: &[GroupBest],
    base_depth: u64,
) -> Vec<(u64, f64, Option<Interior>)> {
    let mut out = Vec::new();
    for g in best {
        let in_group = |r: &&CellRow| g.group.iter().all(|(k, v)| r.values.get(k) == Some(v));
        let samples: Vec<(f64, Option<f64>)> = rows
            .iter()
            .filter(in_group)
            .filter_map(|r| {
                let lr = r.values.get("optim.lr")?.as_f64()?;
                Some((lr, r.final_loss.filter(|_| r.status == Status::Finished)))
            })
            .collect();
        let get = |k: &str| group_value(g, k);
        let Some(gamma) = get(GAMMA).and_then(Value::as_f64) else {
            continue;
        };
        let depth = get(DEPTH).and_then(Value::as_u64).unwrap_or(base_depth);
        out.push((depth, gamma, interior(&mean_over_seeds(&samples))));
    }
    out
}

/// The per-depth interior check (module docs).
pub fn interior_check(l: u64, all: &[(u64, f64, Option<Interior>)]) -> Check {
    let mine: Vec<_> = all.iter().filter(|a| a.0 == l).collect();
    let bad: Vec<String> = mine
        .iter()
        .filter(|a| !a.2.is_some_and(|i| i.pass()))
        .map(|a| match a.2 {
            Some(i) => format!(
                "γ = {}: η* {} (below {}, at {}, above {}, edge {})",
                fmt(a.1),
                fmt(i.lr),
                i.below.map_or("none".into(), fmt),
                fmt(i.loss),
                i.above.map_or("none".into(), fmt),
                i.edge.map_or("none".into(), fmt)
            ),
            None => format!("γ = {}: no eligible rung", fmt(a.1)),
        })
        .collect();
    Check::holds(
        format!("L = {l}: η* interior at every γ ({} γ)", mine.len()),
        !mine.is_empty() && bad.is_empty(),
        if bad.is_empty() {
            "all".into()
        } else {
            bad.join("; ")
        },
        format!("loss higher on the rung on each side; edge ≥ {EDGE_MARGIN}·η*"),
        SOURCE,
    )
}

/// (L, γ, η*) of every group with an η* (L = `base_depth` without a depth axis).
pub fn eta_stars(best: &[GroupBest], base_depth: u64) -> Vec<(u64, f64, f64)> {
    best.iter()
        .filter_map(|g| {
            let get = |k: &str| group_value(g, k);
            let gamma = get(GAMMA).and_then(Value::as_f64)?;
            let depth = get(DEPTH).and_then(Value::as_u64).unwrap_or(base_depth);
            Some((depth, gamma, g.eta?.lr_refined))
        })
        .collect()
}

/// The lazy (γ ≤ 0.0316) and rich (γ ≥ 10) fits of depth `l`.
pub fn regime_fits(stars: &[(u64, f64, f64)], l: u64) -> (Option<Fit>, Option<Fit>) {
    let pts = |keep: &dyn Fn(f64) -> bool| -> Vec<(f64, f64)> {
        stars
            .iter()
            .filter(|s| s.0 == l && keep(s.1))
            .map(|s| (s.1, s.2))
            .collect()
    };
    (
        loglog_fit(&pts(&|g| g <= LAZY_MAX)),
        loglog_fit(&pts(&|g| g >= RICH_MIN)),
    )
}

/// The settings of one version, read from `experiments/richness-sweep/{reduced,full}.toml`:
/// which sweep file runs, and whether the issue-14 claims gate. The grids (γ, depth,
/// seeds, the η₀ ladder) are in the sweep files, so that `eos sweep` runs the same
/// cells by hand.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The sweep file in `experiments/richness-sweep/`.
    pub sweep: String,
    /// Cells trained at once.
    pub workers: usize,
    /// Whether the issue-14 claims (plateau growth ≥ 3×, interior η*, collapse) gate (full) or
    /// are reported as NOTE lines (reduced: it gates only what holds robustly at its
    /// size; docs/reproductions.md, "Changed after seeing data").
    pub gate_claims: bool,
    /// The CNN part (issue 14; the full version): its sweep file and L.
    #[serde(default)]
    pub cnn: Option<CnnPart>,
}

/// The CNN part of a version: the sweep file in `experiments/richness-sweep/` (its
/// cells in `OUT/richness-sweep/sweep-cnn`) and the network's L (weight layers: 2/L
/// is the expected rich slope).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CnnPart {
    pub sweep: String,
    pub depth: u64,
}

impl Settings {
    /// `check` as it counts in this version: an issue-14 claim is a NOTE in the
    /// reduced one.
    pub fn claim(&self, check: Check) -> Check {
        if self.gate_claims {
            check
        } else {
            check.informative()
        }
    }
}

/// What a finished sweep measured, per (L, γ): the input of [`checks`] (issue 11:
/// measure → checks → report).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Measurements {
    /// (L, γ, η*) of every group with an η* ([`eta_stars`]).
    pub stars: Vec<(u64, f64, f64)>,
    /// The depths with an η*, ascending.
    pub depths: Vec<u64>,
    /// (L, γ, seed-mean escape step, seed-mean drops) where every seed escapes.
    pub plateau: Vec<(u64, f64, f64, f64)>,
    /// Every group at its η* ([`AtStar`]).
    pub at: Vec<AtStar>,
    /// Where each group's argmin sits on its ladder ([`interior_failures`]).
    pub inter: Vec<(u64, f64, Option<Interior>)>,
}

impl Measurements {
    /// Reads the measurements of the sweep in `out` from its result rows and metrics;
    /// `base_depth`: L of the groups without a depth axis (the base config's).
    pub fn read(out: &Path, rows: &[CellRow], base_depth: u64) -> Result<Self> {
        let best = best_per_group(rows, "optim.lr", "train.seed");
        let stars = eta_stars(&best, base_depth);
        let mut depths: Vec<u64> = stars.iter().map(|s| s.0).collect();
        depths.sort_unstable();
        depths.dedup();
        let at = at_eta_star(out, rows, &best, base_depth)?;
        Ok(Self {
            plateau: plateaus(&at),
            at,
            inter: interior_failures(rows, &best, base_depth),
            stars,
            depths,
        })
    }
}

/// The checks of every depth: a pure function of the measurements and the version's
/// settings (module docs; which claims gate is [`Settings::claim`]).
pub fn checks(m: &Measurements, set: &Settings) -> Vec<Check> {
    let mut out = Vec::new();
    for &l in &m.depths {
        out.extend(slope_checks(&m.stars, l));
        out.push(set.claim(plateau_check(l, &m.plateau)));
        out.push(set.claim(interior_check(l, &m.inter)));
        out.push(set.claim(collapse_check(l, &m.at)));
        out.push(staircase_report(l, &m.plateau));
        out.push(best_gamma_report(l, &m.at));
    }
    out
}

/// Runs (or continues) the sweep file `file` into `OUT/richness-sweep/<folder>` and
/// returns that directory; a failed cell is an error.
fn run_sweep(ctx: &Ctx, file: &str, folder: &str, workers: usize) -> Result<PathBuf> {
    let spec = ctx.config(file);
    let out = ctx.dir.join(folder);
    if ctx.fresh && out.exists() {
        std::fs::remove_dir_all(&out).map_err(|e| Error::io(&out, "clear", e))?;
    }
    eprintln!(
        "[{}] sweeping {} into {}",
        ctx.name,
        spec.display(),
        out.display()
    );
    let summary = sweep::sweep(&SweepOptions {
        spec,
        out: Some(out.clone()),
        workers,
        exe: ctx.exe.clone(),
        // Cells trained in-process get their plots as `eos train` draws them.
        on_done: Some(|d: &Path| {
            if let Err(e) = eos_report::report(&[d.to_path_buf()], &Default::default()) {
                eprintln!("warning: could not plot {}: {e:#}", d.display());
            }
        }),
        ..SweepOptions::default()
    })?;
    let failed = summary
        .rows
        .iter()
        .filter(|r| r.status == Status::Failed)
        .count();
    if failed > 0 {
        return Err(Error::run(
            out.join("results.csv"),
            format!("{failed} sweep cell(s) failed"),
        ));
    }
    Ok(out)
}

/// Measure (run or reuse the sweep, read it) → [`checks`] → figures.
/// Then, where the settings have a CNN part, the same for its sweep ([`cnn_checks`]).
pub fn run(ctx: &Ctx) -> Result<Vec<Check>> {
    let set: Settings = ctx.settings()?;
    let out = run_sweep(ctx, &set.sweep, "sweep", set.workers)?;
    let rows = read_rows(&out.join("results.jsonl"))?;
    let m = Measurements::read(&out, &rows, BASE_DEPTH)?;
    let mut checks = checks(&m, &set);
    figures(ctx, &m, &rows, &out)?;
    if let Some(cnn) = &set.cnn {
        let out = run_sweep(ctx, &cnn.sweep, "sweep-cnn", set.workers)?;
        let rows = read_rows(&out.join("results.jsonl"))?;
        let m = Measurements::read(&out, &rows, cnn.depth)?;
        checks.extend(cnn_checks(&m));
        cnn_figures(ctx, &m, &out)?;
    }
    Ok(checks)
}

/// The checks of the CNN part (issue 14): the two slope checks of each depth gate
/// (thresholds as the MLP's, committed before the run), the interior η* and the best
/// γ are reported (its ladder is 1.5 decades deep, not the authors' 3; one seed).
pub fn cnn_checks(m: &Measurements) -> Vec<Check> {
    let mut out = Vec::new();
    for &l in &m.depths {
        out.extend(slope_checks(&m.stars, l));
        out.push(interior_check(l, &m.inter).informative());
        out.push(best_gamma_report(l, &m.at));
    }
    for c in &mut out {
        c.what = format!("CNN {}", c.what);
        c.source = format!("{}; CNN: {CNN_SOURCE}", c.source);
    }
    out
}

/// The lazy (slope 2) and rich (slope 2/L) checks of depth `l`, ±15 %.
pub fn slope_checks(stars: &[(u64, f64, f64)], l: u64) -> [Check; 2] {
    let (lazy, rich) = regime_fits(stars, l);
    let expect_rich = 2.0 / l as f64;
    let slope = |f: &Option<Fit>| f.map_or(f64::NAN, |f| f.slope);
    let n = |f: &Option<Fit>| f.map_or(0, |f| f.n);
    [
        Check::within(
            format!(
                "L = {l}: slope of ln η* on ln γ, γ ≤ 0.0316 (n = {})",
                n(&lazy)
            ),
            slope(&lazy),
            2.0 * 0.85,
            2.0 * 1.15,
            SOURCE,
        ),
        Check::within(
            format!(
                "L = {l}: slope of ln η* on ln γ, γ ≥ 10 (n = {}; 2/L = {})",
                n(&rich),
                fmt(expect_rich)
            ),
            slope(&rich),
            expect_rich * 0.85,
            expect_rich * 1.15,
            SOURCE,
        ),
    ]
}

/// The plateau-growth check of depth `l`: escape step at the largest rich γ over the
/// one at the smallest, at least [`PLATEAU_GROWTH`].
pub fn plateau_check(l: u64, plateau: &[(u64, f64, f64, f64)]) -> Check {
    let rich: Vec<(f64, f64)> = plateau
        .iter()
        .filter(|p| p.0 == l && p.1 >= RICH_MIN)
        .map(|p| (p.1, p.2))
        .collect();
    // Fewer than two rich points (no η*, or a seed that never escapes) fails.
    let (a, b) = match (rich.first(), rich.last()) {
        (Some(&a), Some(&b)) if rich.len() >= 2 => (a, b),
        _ => ((RICH_MIN, f64::NAN), (f64::NAN, f64::NAN)),
    };
    let ratio = b.1 / a.1;
    Check::holds(
        format!(
            "L = {l}: plateau at η* grows with γ: escape step at γ = {} over γ = {} ({} rich points)",
            fmt(b.0),
            fmt(a.0),
            rich.len()
        ),
        ratio >= PLATEAU_GROWTH,
        format!("{} ({} → {} steps)", fmt(ratio), fmt(a.1), fmt(b.1)),
        format!("≥ {PLATEAU_GROWTH}"),
        PLATEAU_SOURCE,
    )
}

/// The staircase counter of depth `l` per γ (reported, not gated).
fn staircase_report(l: u64, plateau: &[(u64, f64, f64, f64)]) -> Check {
    let drops: Vec<String> = plateau
        .iter()
        .filter(|p| p.0 == l)
        .map(|p| format!("γ {}: {}", fmt(p.1), fmt(p.3)))
        .collect();
    Check::holds(
        format!("L = {l}: staircase, distinct loss drops at η* (seed mean)"),
        true,
        drops.join("; "),
        "reported (not gated)",
        PLATEAU_SOURCE,
    )
    .informative()
}

/// The η*-vs-γ figure with the fits, the plateau figure and the sweep's own panels
/// (final loss vs η per γ, loss curves at η*).
fn figures(ctx: &Ctx, a: &Measurements, rows: &[CellRow], out: &Path) -> Result<()> {
    let mut plateau_fig =
        Figure::new("richness-sweep: the initial plateau at η* (steps until the loss halves)")
            .x_label("γ")
            .y_label("escape step (seed mean)")
            .x_log()
            .y_log();
    let mut fig =
        Figure::new("richness-sweep: η* vs γ (online SGD, mean-field/μP, centred, 2000 steps)")
            .x_label("γ")
            .y_label("η* (η₀ of the lowest final loss)")
            .x_log()
            .y_log();
    for &l in &a.depths {
        let escape = a.plateau.iter().filter(|p| p.0 == l);
        let escape = escape.map(|p| (p.1, p.2)).collect();
        plateau_fig.add(format!("L = {l}"), escape, Style::LinePoints);
        eta_star_series(&mut fig, &a.stars, l);
    }
    fig.notes.push(format!(
        "{} cells, {} diverged",
        rows.len(),
        rows.iter().filter(|r| r.status == Status::Diverged).count()
    ));
    ctx.save(&fig, "eta_star")?;
    ctx.save(&plateau_fig, "plateau")?;
    ctx.save(&collapse_figure(a), "collapse")?;
    sweep_panels(ctx, out, "sweep", "loss_at_eta_star")
}

/// The sweep's own panels of `out` into `figures/<folder>`, its loss curves at η*
/// copied as the figure `name`.
fn sweep_panels(ctx: &Ctx, out: &Path, folder: &str, name: &str) -> Result<()> {
    let (files, _) = eos_report::sweep_plots::plot_sweep(
        out,
        &ctx.dir.join("figures").join(folder),
        &eos_report::SweepPlotOptions {
            split: 1.0,
            x_key: Some(GAMMA.into()),
            refined: true,
        },
    )?;
    for f in files.iter().filter(|f| {
        f.file_stem().is_some_and(|s| s == "loss_at_eta_star")
            && f.extension().is_some_and(|e| e == "png")
    }) {
        ctx.copy_png(f, name)?;
    }
    Ok(())
}

/// The CNN part's η*-vs-γ figure with its fits, and its loss curves at η*.
fn cnn_figures(ctx: &Ctx, m: &Measurements, out: &Path) -> Result<()> {
    let mut fig = Figure::new("richness-sweep: η* vs γ, the authors' CNN on Fashion-MNIST")
        .x_label("γ")
        .y_label("η* (η₀ of the lowest final loss)")
        .x_log()
        .y_log();
    for &l in &m.depths {
        eta_star_series(&mut fig, &m.stars, l);
    }
    ctx.save(&fig, "cnn_eta_star")?;
    sweep_panels(ctx, out, "sweep-cnn", "cnn_loss_at_eta_star")
}

/// The large-γ loss curves at η* (smoothed) against t/τ(γ), every depth.
fn collapse_figure(a: &Measurements) -> Figure {
    let mut fig = Figure::new("richness-sweep: large-γ loss at η* against rescaled time t/τ(γ)")
        .x_label("t / τ(γ) (steps of the reference γ)")
        .y_label("loss (seed mean, smoothed)")
        .x_log()
        .y_log();
    for &l in &a.depths {
        let Some((reference, fits)) = collapse_fits(&a.at, l) else {
            continue;
        };
        let taus = std::iter::once((reference, 1.0))
            .chain(fits.iter().filter_map(|(g, f)| Some((*g, f.as_ref()?.tau))));
        for (g, tau) in taus {
            let Some(at) = a.at.iter().find(|x| x.depth == l && x.gamma == g) else {
                continue;
            };
            let pts = smooth_log(&at.curve)
                .iter()
                .filter(|p| p.0 > 0.0)
                .map(|p| (p.0 / tau, 10f64.powf(p.1)))
                .collect();
            let name = format!("L = {l}, γ = {}, τ = {}", fmt(g), fmt(tau));
            fig.add(name, pts, Style::Line);
        }
    }
    fig
}

/// η* of depth `l` and its two fits, added to `fig`.
fn eta_star_series(fig: &mut Figure, stars: &[(u64, f64, f64)], l: u64) {
    let pts: Vec<(f64, f64)> = stars
        .iter()
        .filter(|s| s.0 == l)
        .map(|s| (s.1, s.2))
        .collect();
    fig.add(format!("η*, L = {l}"), pts, Style::LinePoints);
    let (lazy, rich) = regime_fits(stars, l);
    for (f, lo, hi, what) in [(lazy, 1e-4, 0.0316, "γ²"), (rich, 10.0, 1e4, "γ^(2/L)")] {
        if let Some(f) = f {
            fig.add(
                format!("L = {l} fit {what}: slope {}", fmt(f.slope)),
                vec![(lo, f.eval(lo)), (hi, f.eval(hi))],
                Style::Dashed,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eos_sweep::fit::EtaStar;

    fn group(depth: Option<u64>, gamma: f64, lr: f64) -> GroupBest {
        let mut g = vec![(GAMMA.to_string(), serde_json::json!(gamma))];
        if let Some(d) = depth {
            g.insert(0, (DEPTH.to_string(), serde_json::json!(d)));
        }
        GroupBest {
            group: g,
            eta: Some(EtaStar {
                lr,
                loss: 1.0,
                lr_refined: lr,
                n_lr: 5,
                n_eligible: 3,
            }),
            cells: 5,
            diverged: 2,
        }
    }

    #[test]
    fn escape_step_is_where_the_smoothed_loss_halves() {
        // Plateau at 1.0 until step 40, then 0.1; the 5-point mean first drops below
        // 0.5 at the third low point (mean of 1, 1, 0.1, 0.1, 0.1 = 0.46).
        let loss: Vec<(f64, f64)> = (0..10)
            .map(|i| (10.0 * i as f64, if i < 4 { 1.0 } else { 0.1 }))
            .collect();
        assert_eq!(escape_step(&loss), Some(60.0));
        // A single low spike does not count.
        let mut spike = vec![(0.0, 1.0); 8];
        spike[3] = (30.0, 0.0);
        for (i, p) in spike.iter_mut().enumerate() {
            p.0 = 10.0 * i as f64;
        }
        assert_eq!(escape_step(&spike), None);
        assert_eq!(escape_step(&[]), None);
    }

    #[test]
    fn fits_follow_the_two_regimes() {
        // η* = γ² below 1 and 3·γ^(2/3) above, depth 3 from the base config.
        let gammas: [f64; 8] = [1e-3, 1e-2, 3e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0];
        let best: Vec<GroupBest> = gammas
            .iter()
            .map(|&g| {
                let lr = if g < 1.0 {
                    g * g
                } else {
                    3.0 * g.powf(2.0 / 3.0)
                };
                group(None, g, lr)
            })
            .collect();
        let stars = eta_stars(&best, BASE_DEPTH);
        assert_eq!(stars.len(), 8);
        assert!(stars.iter().all(|s| s.0 == BASE_DEPTH));
        let (lazy, rich) = regime_fits(&stars, 3);
        assert!((lazy.unwrap().slope - 2.0).abs() < 1e-12);
        assert_eq!(lazy.unwrap().n, 3);
        assert!((rich.unwrap().slope - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(rich.unwrap().n, 3);
        // A depth axis separates the fits.
        let best2 = vec![group(Some(2), 10.0, 1.0), group(Some(2), 100.0, 10.0)];
        let (_, rich2) = regime_fits(&eta_stars(&best2, BASE_DEPTH), 2);
        assert!((rich2.unwrap().slope - 1.0).abs() < 1e-12);
        assert!(regime_fits(&eta_stars(&best2, BASE_DEPTH), 3).1.is_none());
    }

    #[test]
    fn interior_needs_higher_neighbours_and_room_to_the_edge() {
        let m = |v: &[(f64, Option<f64>)]| interior(v).unwrap();
        // 1e-3 < 3.2e-3 (best) < 1e-2; first diverged rung 3.2e-2 = 10 × η*.
        let ok = m(&[
            (1e-3, Some(0.5)),
            (3.2e-3, Some(0.2)),
            (1e-2, Some(0.3)),
            (3.2e-2, None),
        ]);
        assert_eq!(
            (ok.lr, ok.below, ok.above, ok.edge),
            (3.2e-3, Some(0.5), Some(0.3), Some(3.2e-2))
        );
        assert!(ok.pass());
        // The best rung is the last stable one: no rung above, not interior.
        let edge = m(&[(1e-3, Some(0.5)), (3.2e-3, Some(0.2)), (1e-2, None)]);
        assert_eq!(edge.above, None);
        assert!(!edge.pass());
        // A higher rung above, but the edge only 2× away.
        let close = m(&[
            (1e-3, Some(0.5)),
            (2e-3, Some(0.2)),
            (3e-3, Some(0.3)),
            (4e-3, None),
        ]);
        assert!(!close.pass());
        assert!(interior(&[(1e-3, None)]).is_none());
    }

    /// A plateau at 1 that drops to 0.01 around step `t0` (logged every 10 steps to
    /// 2 000), as the large-γ curves.
    fn step_curve(t0: f64, floor: f64) -> Vec<(f64, f64)> {
        (0..=200)
            .map(|i| {
                let t = 10.0 * i as f64;
                let x = ((t - t0) / (0.2 * t0)).clamp(-50.0, 50.0);
                (t, floor + (1.0 - floor) / (1.0 + x.exp()))
            })
            .collect()
    }

    fn at(gamma: f64, curve: Vec<(f64, f64)>, final_loss: f64) -> AtStar {
        AtStar {
            depth: 3,
            gamma,
            escape: None,
            drops: 0.0,
            curve,
            final_loss,
        }
    }

    #[test]
    fn smoothing_and_seed_means() {
        let c = vec![(0.0, 1.0), (10.0, 10.0), (20.0, 100.0), (30.0, 1000.0)];
        let s = smooth_log(&c);
        // Windows of up to 5 points: {0,1,2}, {0..3}, {0..3}, {1,2,3}.
        assert_eq!(s.len(), 4);
        assert!((s[0].1 - 1.0).abs() < 1e-12);
        assert!((s[1].1 - 1.5).abs() < 1e-12);
        assert!((s[3].1 - 2.0).abs() < 1e-12);
        let m = seed_mean_curve(&[vec![(0.0, 1.0), (10.0, 3.0)], vec![(0.0, 3.0)]]);
        assert_eq!(m, vec![(0.0, 2.0)]);
        assert_eq!(interp(&c, 15.0), Some(55.0));
        assert_eq!(interp(&c, 31.0), None);
        assert_eq!(interp(&c, -1.0), None);
    }

    #[test]
    fn fit_tau_finds_the_stretch() {
        let r = smooth_log(&step_curve(100.0, 0.01));
        let c = smooth_log(&step_curve(400.0, 0.01));
        let f = fit_tau(&r, &c).unwrap();
        assert!((f.tau / 4.0 - 1.0).abs() < 0.03, "τ {}", f.tau);
        assert!(f.rescaled < 0.02 && f.unrescaled > 0.5, "{f:?}");
        assert!(f.pass());
        // A curve that drops to a 10× higher floor does not collapse on the reference.
        let other = smooth_log(&step_curve(400.0, 0.1));
        assert!(!fit_tau(&r, &other).unwrap().pass());
    }

    #[test]
    fn collapse_needs_two_matching_curves() {
        let curves = [(100.0, 100.0), (1000.0, 200.0), (10000.0, 400.0)];
        let ok: Vec<AtStar> = curves
            .iter()
            .map(|&(g, t0)| at(g, step_curve(t0, 0.01), 0.01))
            .collect();
        let c = collapse_check(3, &ok);
        assert!(c.pass, "{c:?}");
        assert!(!c.informative);
        // Only one large γ besides the reference: fails; γ = 10 is not large.
        let mut two = ok[..2].to_vec();
        two.push(at(10.0, step_curve(50.0, 0.01), 0.01));
        assert!(!collapse_check(3, &two).pass);
        // One curve with another floor: fails.
        let mut bad = ok.clone();
        bad[2].curve = step_curve(400.0, 0.1);
        assert!(!collapse_check(3, &bad).pass);
        // Depth 2 has no curves.
        assert!(!collapse_check(2, &ok).pass);
        // A γ whose curve already coincides with the reference (τ = 1, gap at the
        // noise level) passes when another needs the rescaling; the first rule (ratio
        // per γ) failed it.
        let fit = |tau, rescaled, unrescaled, n| {
            Some(Collapse {
                tau,
                rescaled,
                unrescaled,
                n,
            })
        };
        let same = fit(1.0, 0.05, 0.05, 200);
        let list = [(1e3, same), (1e4, fit(3.3, 0.078, 0.69, 60))];
        assert!(!same.unwrap().pass());
        assert!(collapse_holds(&list));
        let (after, before) = pooled(&list);
        let want = |a: f64, b: f64| ((200.0 * a * a + 60.0 * b * b) / 260.0).sqrt();
        assert!((after - want(0.05, 0.078)).abs() < 1e-12);
        assert!((before - want(0.05, 0.69)).abs() < 1e-12);
        // Nothing to rescale (every γ already coincides): fails; so does a gap > 0.1.
        assert!(!collapse_holds(&[(1e3, same), (1e4, same)]));
        assert!(!collapse_holds(&[
            (1e3, same),
            (1e4, fit(3.3, 0.11, 2.0, 60))
        ]));
        assert!(!collapse_holds(&[(1e4, fit(3.3, 0.078, 0.69, 60))]));
    }

    #[test]
    fn best_gamma_is_the_lowest_final_loss() {
        let v = vec![
            at(0.1, vec![], 0.3),
            at(100.0, vec![], 0.05),
            at(1000.0, vec![], 0.08),
        ];
        let c = best_gamma_report(3, &v);
        assert!(c.pass && c.informative);
        assert!(c.what.contains("γ = 100 (0.05)"), "{}", c.what);
        let lazy = vec![at(0.1, vec![], 0.01), at(100.0, vec![], 0.05)];
        assert!(!best_gamma_report(3, &lazy).pass);
    }

    #[test]
    fn reduced_reports_the_claims_full_gates_them() {
        let c = || Check::holds("x", false, "m", "e", SOURCE);
        let reduced: Settings = crate::settings::of("richness-sweep", false);
        let full: Settings = crate::settings::of("richness-sweep", true);
        assert!(reduced.claim(c()).informative);
        assert!(!full.claim(c()).informative);
        assert_eq!((full.sweep.as_str(), full.workers), ("sweep-full.toml", 2));
        assert_eq!((reduced.sweep.as_str(), reduced.workers), ("sweep.toml", 2));
        let cnn = CnnPart {
            sweep: "sweep-cnn.toml".into(),
            depth: 4,
        };
        assert_eq!((full.cnn, reduced.cnn), (Some(cnn), None));
    }

    /// Hand-made measurements of depth 3 at which every check passes: lazy slope
    /// `lazy`, rich slope `rich` (η* = γ^slope), escape steps 100 → 100·`growth`,
    /// interior argmins with the edge `edge`·η* away, and the step curves of
    /// [`collapse_needs_two_matching_curves`].
    fn measured(lazy: f64, rich: f64, growth: f64, edge: f64) -> Measurements {
        let lazy_g: [f64; 3] = [1e-4, 1e-3, 1e-2];
        let rich_g: [f64; 4] = [10.0, 100.0, 1000.0, 10000.0];
        let stars = (lazy_g.iter().map(|&g| (3, g, g.powf(lazy))))
            .chain(rich_g.iter().map(|&g| (3, g, g.powf(rich))))
            .collect::<Vec<_>>();
        let inter = stars
            .iter()
            .map(|&(l, g, lr)| {
                let i = Interior {
                    lr,
                    below: Some(0.2),
                    loss: 0.1,
                    above: Some(0.3),
                    edge: Some(edge * lr),
                };
                (l, g, Some(i))
            })
            .collect();
        let t0 = [(100.0, 100.0), (1000.0, 200.0), (10000.0, 400.0)];
        Measurements {
            stars,
            depths: vec![3],
            plateau: vec![(3, 10.0, 100.0, 1.0), (3, 1e4, 100.0 * growth, 1.0)],
            at: t0
                .iter()
                .map(|&(g, t)| at(g, step_curve(t, 0.01), 0.01))
                .collect(),
            inter,
        }
    }

    fn version(gate_claims: bool) -> Settings {
        Settings {
            sweep: "sweep.toml".into(),
            workers: 1,
            gate_claims,
            cnn: None,
        }
    }

    /// (pass, informative) of the checks of `m` in the full (gating) version.
    fn verdicts(m: &Measurements, gate: bool) -> Vec<(bool, bool)> {
        let c = checks(m, &version(gate));
        c.iter().map(|c| (c.pass, c.informative)).collect()
    }

    #[test]
    fn checks_pass_and_fail_around_each_threshold() {
        let two3 = 2.0 / 3.0;
        let ok = measured(2.0, two3, 3.0, EDGE_MARGIN);
        let c = checks(&ok, &version(true));
        assert_eq!(c.len(), 7);
        assert!(c[0]
            .what
            .starts_with("L = 3: slope of ln η* on ln γ, γ ≤ 0.0316 (n = 3)"));
        assert!(
            c[1].what.contains("γ ≥ 10 (n = 4; 2/L = 0.6667)"),
            "{}",
            c[1].what
        );
        assert!(c[2].what.contains("plateau") && c[3].what.contains("interior"));
        assert!(c[4].what.contains("collapse"));
        let gating = [true, true, true, true, true, false, false];
        assert_eq!(verdicts(&ok, true)[..5], [(true, false); 5]);
        assert_eq!(c.iter().map(|c| !c.informative).collect::<Vec<_>>(), gating);
        // Slopes: ±15 % of 2 and of 2/L, each side.
        let slope = |lazy, rich| {
            let v = verdicts(&measured(lazy, rich, 3.0, EDGE_MARGIN), true);
            (v[0].0, v[1].0)
        };
        assert_eq!(slope(1.71, two3), (true, true));
        assert_eq!(slope(1.69, two3), (false, true));
        assert_eq!(slope(2.29, two3), (true, true));
        assert_eq!(slope(2.31, two3), (false, true));
        assert_eq!(slope(2.0, 0.86 * two3), (true, true));
        assert_eq!(slope(2.0, 0.84 * two3), (true, false));
        assert_eq!(slope(2.0, 1.14 * two3), (true, true));
        assert_eq!(slope(2.0, 1.16 * two3), (true, false));
        // Plateau growth ≥ 3 (the ratio itself), interior edge ≥ 3.16·η*.
        let v = |growth, edge| verdicts(&measured(2.0, two3, growth, edge), true);
        assert!(v(3.0, EDGE_MARGIN)[2].0 && !v(2.99, EDGE_MARGIN)[2].0);
        assert!(!v(3.0, 3.15)[3].0 && v(3.0, 3.17)[3].0);
        // A lower loss one rung below: not interior.
        let mut low = ok.clone();
        low.inter[4].2.as_mut().unwrap().below = Some(0.05);
        assert!(!verdicts(&low, true)[3].0);
        // A large-γ curve with another floor: no collapse.
        let mut apart = ok.clone();
        apart.at[2].curve = step_curve(400.0, 0.1);
        assert!(!verdicts(&apart, true)[4].0);
    }

    #[test]
    fn cnn_checks_gate_the_slopes_of_l_4() {
        // Depth 4 from the CNN part's settings (no depth axis in its sweep).
        let cnn = |rich: f64| {
            let mut m = measured(2.0, rich, 3.0, EDGE_MARGIN);
            m.stars.iter_mut().for_each(|s| s.0 = 4);
            m.inter.iter_mut().for_each(|i| i.0 = 4);
            m.at.iter_mut().for_each(|a| a.depth = 4);
            m.depths = vec![4];
            cnn_checks(&m)
        };
        let c = cnn(0.5);
        assert_eq!(c.len(), 4);
        assert!(c[1]
            .what
            .starts_with("CNN L = 4: slope of ln η* on ln γ, γ ≥ 10 (n = 4; 2/L = 0.5)"));
        assert!(c[0].source.contains("CNN: the authors' CNN"));
        let v: Vec<(bool, bool)> = c.iter().map(|c| (c.pass, c.informative)).collect();
        assert_eq!(
            v,
            [(true, false), (true, false), (true, true), (true, true)]
        );
        assert_eq!(c[1].expected, "in [0.425, 0.575]");
        let rich_passes = |r: f64| cnn(r)[1].pass;
        assert!(rich_passes(0.43) && !rich_passes(0.42));
        assert!(rich_passes(0.57) && !rich_passes(0.58));
        // A non-interior η* is a NOTE, not a failure.
        let mut m = measured(2.0, 0.5, 3.0, 2.0);
        m.depths = vec![3];
        let c = cnn_checks(&m);
        assert!(!c[2].pass && c[2].informative);
    }

    #[test]
    fn reduced_version_reports_the_claims_and_gates_the_slopes() {
        let mut bad = measured(2.5, 0.3, 1.0, 2.0);
        bad.at[2].curve = step_curve(400.0, 0.1);
        let full = verdicts(&bad, true);
        let reduced = verdicts(&bad, false);
        assert_eq!(full[..5], [(false, false); 5]);
        assert_eq!(reduced[..2], [(false, false); 2]);
        assert_eq!(reduced[2..5], [(false, true); 3]);
        // No depth measured: no checks.
        assert!(checks(&Measurements::default(), &version(true)).is_empty());
    }

    #[test]
    fn count_drops_counts_separate_falls() {
        // 400 points: plateau, fall 1 → 0.1 over 40 points, plateau, fall to 0.01, plateau.
        let loss: Vec<(f64, f64)> = (0..400)
            .map(|i| {
                let e = match i {
                    0..100 => 0.0,
                    100..140 => -((i - 100) as f64) / 40.0,
                    140..250 => -1.0,
                    250..290 => -1.0 - ((i - 250) as f64) / 40.0,
                    _ => -2.0,
                };
                (i as f64, 10f64.powf(e))
            })
            .collect();
        assert_eq!(count_drops(&loss), 2);
        // A smooth power-law decay is one drop; a flat curve none.
        let smooth: Vec<(f64, f64)> = (1..=400).map(|i| (i as f64, 1.0 / i as f64)).collect();
        assert_eq!(count_drops(&smooth), 1);
        assert_eq!(count_drops(&vec![(0.0, 1.0); 400]), 0);
    }
}
