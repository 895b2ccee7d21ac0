//! `beyond-eos`: νP with a quadratic hidden-width pattern trained by SGD beyond the
//! edge of stability (Terjék, "Feature Learning Beyond the Edge of Stability", arXiv
//! 2502.13110 v2, abstract; THEORY.md §6, §9). The full text is not available to us:
//! every setting the abstract and its summaries do not give is **(inferred)** and a
//! key of `experiments/beyond-eos/nup.toml` (docs/reproductions.md, "Issue 13 rework",
//! where these gates were committed before the runs that test them).
//!
//! Runs per seed (Fashion-MNIST standing in for MNIST, MSE, ReLU MLP without biases,
//! widths 784-16-64-144-10, batch 128):
//! - `nup`: νP (per-layer normalised updates ‖ΔW_l‖ = η‖W_l‖), η = η_ν = `optim.lr`;
//! - `sgd-<lr>`: standard SGD (SP, same network and init) over a grid of lr, and at
//!   lr = η_ν (the "same η" control); the *best EoS baseline* is the grid lr whose
//!   seeds all finish with the highest mean final test accuracy;
//! - `nup-const`: νP at η_ν with constant hidden widths 64 (NOTE only).
//!
//! Full: seeds 0, 1, 2, n = 4 096, 1 500 steps, grid {0.001, 0.003, 0.01, 0.03, 0.1,
//! 0.3}. Reduced: seed 0, n = 1 024, 300 steps, grid {0.003, 0.01, 0.03} (both grids
//! extended downwards after the first reduced run: docs/reproductions.md, "Changed
//! after seeing data"). Gates of the full version:
//! - B1: every `nup` seed finishes, every logged loss finite, mean loss of the last
//!   tenth < the step-0 loss;
//! - B2: every `nup` seed: median η·λ_eff over the second half ≥ 3 and ≥ 50 % of the
//!   effective-sharpness probes (step > 0) with η·λ_eff > 2, where λ_eff =
//!   λ_max(P^−½ H P^−½) with the step's preconditioner (THEORY.md §9);
//! - B3: `sgd` at lr = η_ν diverges or reaches a loss ≥ 2× its step-0 loss, every seed;
//! - B4: mean final soft rank of the last hidden layer: `nup` > best baseline;
//! - B5: mean final test accuracy: `nup` > best baseline;
//! - B6: mean final λ_max(H): `nup` < best baseline;
//! - B7: at the seed-0 `nup` run's four checkpoints, along its own update rule (a νP
//!   step on the first 128 training images, f64), the median of
//!   |L(θ+Δθ) − (c0+c1+c2+c3)| / |L(θ+Δθ) − c0| ≤ 0.1;
//! - B8: at its final checkpoint, the log-log slope of |L(θ+sΔθ) − Σ c_k(s)| over
//!   s = 2^−k, k = 0…7 (errors > 1e-13, ≥ 3 points) in [3.5, 4.5] (Taylor: O(η⁴)).
//!
//! NOTE (diagnosis of B7/B8, never gating): the share of hidden preactivation signs
//! (ReLU kinks) each scaled step flips on the Taylor batch, and the slope over the
//! flip-free scales.
//!
//! The reduced version gates only R1 (= B1 for its one `nup` run) and R2 (every
//! effective-sharpness probe of `nup` finite; with P = I the `sgd` run's
//! `effective_sharpness` equals its `sharpness` to a relative 1e-9); B1–B8 are NOTEs.
//!
//! `run` trains, reduces the runs to [`Measurements`] and judges them with
//! [`checks`], a pure function (issue 11) unit-tested on hand-made measurements.

use std::num::NonZeroU64;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use eos_train::config::Config;
use eos_train::{build, data, Status};

use super::terjek::{
    claim, constant_widths, eta_lambda, last_tenth_loss as late_loss, mean, over_seeds,
    second_half, sgd, Sizes,
};
use super::{fmt, median, Check, Ctx, Error, Result, Run};
use eos_report::plot::{Figure, Style};
use eos_sweep::fit::loglog_fit;
use serde::Deserialize;

const SOURCE: &str = "Terjék 2025 (arXiv 2502.13110 v2), abstract; THEORY.md §6, §9";
const CONFIG: &str = "nup.toml";
/// Scales s = 2^−k of the Taylor check (B8).
const TAYLOR_SCALES: u32 = 8;

/// A per-run measurement.
type Measure<'a> = &'a dyn Fn(&RunMeasured) -> f64;
/// (s, |error|) along the scaled update.
type Curve = Vec<(f64, f64)>;

/// The settings of one version, read from `experiments/beyond-eos/{reduced,full}.toml`
/// (the `--set` overrides come from here).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub sizes: Sizes,
    pub steps: u64,
    /// Checkpoints per run, evenly spaced (B7, B8 read them); at least 1.
    pub checkpoints: NonZeroU64,
    /// The hidden width of the `nup-const` runs.
    pub constant_width: usize,
    /// Rows of the Taylor checks' batch (the first training images).
    pub taylor_rows: usize,
}

impl Settings {
    /// The overrides of a run of `seed`: the version's sizes, then `extra`.
    fn with(&self, seed: u64, extra: Vec<String>) -> Vec<String> {
        let mut v = self.sizes.base(seed, self.steps);
        v.push(format!(
            "train.checkpoint_every={}",
            self.steps / self.checkpoints.get()
        ));
        v.extend(extra);
        v
    }

    /// `nup`: the config as it is (νP, quadratic widths, η_ν = `optim.lr`).
    pub fn nup(&self, seed: u64) -> Vec<String> {
        self.with(seed, vec![])
    }

    /// `nup-const`: νP with constant hidden widths.
    pub fn nup_constant(&self, seed: u64) -> Vec<String> {
        self.with(seed, constant_widths(self.constant_width))
    }

    /// `sgd-*`: standard SGD (SP) on the same network at `lr`.
    pub fn sgd(&self, seed: u64, lr: f64) -> Vec<String> {
        self.with(seed, sgd(lr))
    }

    /// The config of the Taylor checks (f64, the same data).
    pub fn taylor(&self) -> Vec<String> {
        let mut v = vec!["train.dtype=\"f64\"".to_string()];
        v.extend(self.sizes.data());
        v
    }
}

/// Every run, by seed (index i ↔ `sizes.seeds[i]`).
struct Runs {
    eta: f64,
    nup: Vec<Run>,
    konst: Vec<Run>,
    /// `sgd` at lr = η_ν.
    same: Vec<Run>,
    grid: Vec<(f64, Vec<Run>)>,
}

fn train_all(ctx: &Ctx, p: &Settings) -> Result<Runs> {
    let mut r = Runs {
        eta: f64::NAN,
        nup: vec![],
        konst: vec![],
        same: vec![],
        grid: p.sizes.grid.iter().map(|&lr| (lr, vec![])).collect(),
    };
    for &seed in &p.sizes.seeds {
        let nup = ctx.train(&format!("nup-s{seed}"), CONFIG, &p.nup(seed))?;
        // η_ν as the run applied it (the config's optim.lr).
        r.eta = nup.series("lr").first().map_or(f64::NAN, |q| q.1);
        r.nup.push(nup);
        let name = format!("nup-const-s{seed}");
        r.konst
            .push(ctx.train(&name, CONFIG, &p.nup_constant(seed))?);
        let name = format!("sgd-same-s{seed}");
        r.same.push(ctx.train(&name, CONFIG, &p.sgd(seed, r.eta))?);
        for (lr, runs) in r.grid.iter_mut() {
            let name = format!("sgd-{lr}-s{seed}");
            runs.push(ctx.train(&name, CONFIG, &p.sgd(seed, *lr))?);
        }
    }
    Ok(r)
}

fn last(run: &Run, key: &str) -> f64 {
    run.series(key).last().map_or(f64::NAN, |p| p.1)
}

/// The soft rank of the last hidden layer at the last probe.
fn last_soft_rank(run: &Run) -> f64 {
    run.metrics
        .lines
        .iter()
        .rev()
        .find_map(|l| l.get("soft_rank")?.as_array()?.last()?.as_f64())
        .unwrap_or(f64::NAN)
}

/// What one run measured: the quantities the checks read.
#[derive(Debug, Clone, PartialEq)]
pub struct RunMeasured {
    pub status: Status,
    /// Every logged line has a (finite) loss.
    pub finite: bool,
    /// The loss at step 0 and the largest loss after it.
    pub loss0: f64,
    pub peak: f64,
    /// The mean loss over the last tenth.
    pub late_loss: f64,
    /// Median η·λ_eff over the second half.
    pub el_median: f64,
    /// The share of effective-sharpness probes (step > 0) with η·λ_eff > 2.
    pub el_share: f64,
    /// η·λ_eff at the last probe.
    pub el_final: f64,
    /// At the last probe: the last hidden layer's soft rank, test accuracy, λ_max(H).
    pub soft_rank: f64,
    pub test_accuracy: f64,
    pub sharpness: f64,
}

impl RunMeasured {
    fn diverged(&self) -> bool {
        self.status == Status::Diverged
    }

    fn finished_finite(&self) -> bool {
        self.status == Status::Finished && self.finite
    }

    /// "<status> <step-0 loss> → <late loss>".
    fn losses(&self) -> String {
        format!(
            "{} {} → {}",
            self.status,
            fmt(self.loss0),
            fmt(self.late_loss)
        )
    }
}

/// R2: the effective-sharpness probes of the seed-0 `nup` run and of the SGD run
/// (P = I) with the most sharpness probes.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeMeasured {
    /// Finite η·λ_eff values and lines with `effective_sharpness` (νP).
    pub nup_finite: usize,
    pub nup_probes: usize,
    /// The SGD run's `sharpness` and `effective_sharpness` probes.
    pub sgd_sharpness: usize,
    pub sgd_effective: usize,
    /// The largest |λ − λ_eff| / λ over the SGD run's probes.
    pub worst: f64,
}

/// B7, B8 (seed-0 `nup` run): per checkpoint, B7's relative error of the full step
/// and the Taylor points over the scales.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaylorMeasured {
    pub rel: Vec<f64>,
    pub points: Vec<Vec<TaylorPoint>>,
}

/// What the runs measured; [`checks`] judges it.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurements {
    /// The full version: the claims gate (NOTEs in the reduced one).
    pub full: bool,
    /// η_ν as the `nup` runs applied it.
    pub eta: f64,
    /// By seed: `nup`, `nup-const`, `sgd` at η_ν, and `sgd` per grid lr.
    pub nup: Vec<RunMeasured>,
    pub konst: Vec<RunMeasured>,
    pub same: Vec<RunMeasured>,
    pub grid: Vec<(f64, Vec<RunMeasured>)>,
    pub probe: ProbeMeasured,
    pub taylor: TaylorMeasured,
}

/// The loss at step 0 and the largest loss after it.
fn spike(run: &Run) -> (f64, f64) {
    let l = run.series("loss");
    let l0 = l.first().map_or(f64::NAN, |p| p.1);
    (l0, l.iter().skip(1).map(|p| p.1).fold(0.0, f64::max))
}

fn measure_run(x: &Run) -> RunMeasured {
    let (loss0, peak) = spike(x);
    let el = eta_lambda(x, "effective_sharpness");
    let after: Vec<f64> = el.iter().filter(|p| p.0 > 0.0).map(|p| p.1).collect();
    RunMeasured {
        status: x.status,
        finite: x.series("loss").len() == x.metrics.lines.len(),
        loss0,
        peak,
        late_loss: late_loss(x),
        el_median: median(second_half(&el)),
        el_share: after.iter().filter(|v| **v > 2.0).count() as f64 / after.len().max(1) as f64,
        el_final: el.last().map_or(f64::NAN, |p| p.1),
        soft_rank: last_soft_rank(x),
        test_accuracy: last(x, "test_accuracy"),
        sharpness: last(x, "sharpness"),
    }
}

fn measure_runs(runs: &[Run]) -> Vec<RunMeasured> {
    runs.iter().map(measure_run).collect()
}

fn measure_probe(r: &Runs) -> ProbeMeasured {
    let nup = &r.nup[0];
    let n_nup = (nup.metrics.lines.iter())
        .filter(|l| l.get("effective_sharpness").is_some())
        .count();
    // The SGD run (P = I) with the most probes: the same-η one may diverge early.
    let s = (r.grid.iter().map(|g| &g.1[0]))
        .chain(std::iter::once(&r.same[0]))
        .max_by_key(|x| x.series("sharpness").len())
        .unwrap_or(&r.same[0]);
    let (a, b) = (s.series("sharpness"), s.series("effective_sharpness"));
    let worst = (a.iter().zip(&b))
        .map(|(x, y)| ((x.1 - y.1) / x.1).abs())
        .fold(0.0, f64::max);
    ProbeMeasured {
        nup_finite: eta_lambda(nup, "effective_sharpness").len(),
        nup_probes: n_nup,
        sgd_sharpness: a.len(),
        sgd_effective: b.len(),
        worst,
    }
}

/// The checks of the measurements (module docs): a pure function.
pub fn checks(m: &Measurements) -> Vec<Check> {
    let mut out = stability_checks(m);
    out.push(probe_check(&m.probe));
    out.push(control_check(m));
    out.extend(comparison_checks(m));
    out.push(constant_note(&m.konst));
    out.extend(taylor_checks(m.full, &m.taylor));
    out
}

/// B1/R1 and B2: stable training beyond the EoS in η·λ_eff.
fn stability_checks(m: &Measurements) -> Vec<Check> {
    let ok = (m.nup.iter()).all(|x| x.finished_finite() && x.late_loss < x.loss0);
    let losses: Vec<String> = m.nup.iter().map(RunMeasured::losses).collect();
    let med: Vec<f64> = m.nup.iter().map(|x| x.el_median).collect();
    let frac: Vec<f64> = m.nup.iter().map(|x| x.el_share).collect();
    vec![
        Check::holds(
            format!(
                "B1/R1 νP (η = {}): finishes, every loss finite, loss falls",
                m.eta
            ),
            ok,
            losses.join("; "),
            "every seed finished, late loss < step-0 loss",
            SOURCE,
        ),
        claim(
            m.full,
            Check::holds(
                "B2 νP: median η·λ_eff over the second half; share of probes with η·λ_eff > 2",
                med.iter().all(|m| *m >= 3.0) && frac.iter().all(|f| *f >= 0.5),
                format!("median {}; share {}", over_seeds(&med), over_seeds(&frac)),
                "every seed: median ≥ 3 and share ≥ 0.5",
                SOURCE,
            ),
        ),
    ]
}

/// R2: the effective-sharpness probe measures what it claims.
fn probe_check(p: &ProbeMeasured) -> Check {
    let (a, b) = (p.sgd_sharpness, p.sgd_effective);
    Check::holds(
        "R2 effective sharpness: finite at every νP probe; equals sharpness when P = I (SGD)",
        p.nup_finite == p.nup_probes && p.nup_probes > 0 && a == b && a > 0 && p.worst <= 1e-9,
        format!(
            "{} of {} νP probes finite; SGD: {} probes, max relative difference {}",
            p.nup_finite,
            p.nup_probes,
            a,
            fmt(p.worst)
        ),
        "all finite; difference ≤ 1e-9",
        "THEORY.md §9; docs/config.md (effective_sharpness)",
    )
}

/// B3: standard SGD at the same η explodes.
fn control_check(m: &Measurements) -> Check {
    let each: Vec<String> = (m.same.iter())
        .map(|x| {
            let (status, peak, l0) = (x.status, fmt(x.peak), fmt(x.loss0));
            format!("{status}, peak {peak} (step 0: {l0})")
        })
        .collect();
    let pass = (m.same.iter()).all(|x| x.diverged() || x.peak >= 2.0 * x.loss0);
    claim(
        m.full,
        Check::holds(
            format!(
                "B3 standard SGD (SP) on the same network at lr = η = {}",
                m.eta
            ),
            pass,
            each.join("; "),
            "every seed diverges or reaches ≥ 2× its step-0 loss",
            SOURCE,
        ),
    )
}

/// The grid lr whose seeds all finish with the highest mean final test accuracy.
fn best_baseline(grid: &[(f64, Vec<RunMeasured>)]) -> Option<(f64, &[RunMeasured])> {
    grid.iter()
        .filter(|(_, runs)| runs.iter().all(|x| x.status == Status::Finished))
        .map(|(lr, runs)| {
            let acc: Vec<f64> = runs.iter().map(|x| x.test_accuracy).collect();
            (*lr, runs.as_slice(), mean(&acc))
        })
        .filter(|p| p.2.is_finite())
        .max_by(|a, b| a.2.total_cmp(&b.2))
        .map(|(lr, runs, _)| (lr, runs))
}

/// B4–B6 against the best EoS baseline, and the NOTE on η·λ_eff.
fn comparison_checks(m: &Measurements) -> Vec<Check> {
    let Some((lr, base)) = best_baseline(&m.grid) else {
        return vec![claim(
            m.full,
            Check::holds(
                "B4-B6 best EoS baseline",
                false,
                "no grid lr finished on every seed",
                "a baseline",
                SOURCE,
            ),
        )];
    };
    let per = |runs: &[RunMeasured], f: Measure| runs.iter().map(f).collect::<Vec<_>>();
    let cases: [(&str, Measure, bool); 3] = [
        (
            "B4 final soft rank of the last hidden layer",
            &|x| x.soft_rank,
            true,
        ),
        ("B5 final test accuracy", &|x| x.test_accuracy, true),
        ("B6 final sharpness λ_max(H)", &|x| x.sharpness, false),
    ];
    let mut out = Vec::new();
    for (what, f, higher) in cases {
        let (a, b) = (per(&m.nup, f), per(base, f));
        let (pass, expected) = if higher {
            (mean(&a) > mean(&b), "νP higher (mean)")
        } else {
            (mean(&a) < mean(&b), "νP lower (mean)")
        };
        out.push(claim(
            m.full,
            Check::holds(
                format!("{what}: νP vs best EoS baseline (SGD lr = {lr})"),
                pass,
                format!("{} vs {}", over_seeds(&a), over_seeds(&b)),
                expected,
                SOURCE,
            ),
        ));
    }
    let (a, b) = (per(&m.nup, &|x| x.el_final), per(base, &|x| x.el_final));
    out.push(
        Check::holds(
            "final η·λ_eff: νP vs best baseline (units differ: νP's P⁻¹ carries ‖W‖/‖g‖)",
            mean(&a) < mean(&b),
            format!("{} vs {}", over_seeds(&a), over_seeds(&b)),
            "νP lower",
            SOURCE,
        )
        .informative(),
    );
    out
}

/// NOTE: νP without the quadratic pattern (constant hidden widths 64).
fn constant_note(konst: &[RunMeasured]) -> Check {
    let km: Vec<f64> = konst.iter().map(|x| x.el_median).collect();
    let kl: Vec<String> = konst.iter().map(RunMeasured::losses).collect();
    Check::holds(
        "νP with constant widths 64 (no quadratic pattern) fails to train",
        (konst.iter()).all(|x| x.diverged() || x.late_loss >= x.loss0),
        format!("{}; median η·λ_eff {}", kl.join("; "), over_seeds(&km)),
        "diverges or the loss does not fall",
        "reading of \"in tandem with a quadratic width pattern\" (abstract 000)",
    )
    .informative()
}

/// The Taylor error at one checkpoint along the scaled update sΔθ.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TaylorPoint {
    pub s: f64,
    /// |L(θ+sΔθ) − Σ_{k≤3} c_k(s)|.
    pub error: f64,
    /// |L(θ+sΔθ) − c0|.
    pub change: f64,
    /// The share of hidden preactivations (ReLU kinks) whose sign sΔθ flips on the batch.
    pub flips: f64,
}

/// The Taylor error at one checkpoint, for each scale s = 2^−k.
pub fn taylor_at(
    cfg: &Config,
    ckpt: &Path,
    batch: &eos_model::Batch,
    dims: (usize, usize),
    lr: f64,
) -> Result<Vec<TaylorPoint>> {
    let case = eos_model::io::load_case(ckpt, Some(DType::F64), &Device::Cpu)?;
    let mlp = case.mlp;
    let setup = build::build_model(cfg, dims.0, dims.1, &Device::Cpu)?;
    let mut opt = build::build_optimizer(cfg, &setup.scalings)?;
    let loss = cfg.loss.loss();
    let (_, g) = mlp.loss_and_grad(batch, loss)?;
    let step = opt
        .step(&mlp.params, &g, lr)
        .map_err(eos_train::Error::from)?;
    let mut out = Vec::new();
    for k in 0..TAYLOR_SCALES {
        let s = 0.5f64.powi(k as i32);
        let delta = step.update.scale(s)?;
        let c = mlp.taylor(batch, loss, &delta)?;
        let moved = mlp.with_params(mlp.params.add(&delta)?)?;
        let actual = moved.loss(batch, loss)?;
        out.push(TaylorPoint {
            s,
            error: (actual - c.iter().sum::<f64>()).abs(),
            change: (actual - c[0]).abs(),
            flips: eos_train::preact::sign_flip_share(&mlp, &moved, &batch.x)?,
        });
    }
    Ok(out)
}

/// The checkpoints of a run, by step.
fn checkpoints(run: &Run) -> Result<Vec<PathBuf>> {
    let dir = run.dir.join("ckpt");
    let mut v: Vec<(u64, PathBuf)> = std::fs::read_dir(&dir)
        .map_err(|e| Error::io(&dir, "list", e))?
        .filter_map(|e| {
            let p = e.ok()?.path();
            let step = p
                .file_stem()?
                .to_str()?
                .strip_prefix("step-")?
                .parse()
                .ok()?;
            Some((step, p))
        })
        .collect();
    v.sort();
    Ok(v.into_iter().map(|p| p.1).collect())
}

/// B7, B8: the Taylor coefficients of the seed-0 `nup` run's own update at each of
/// its checkpoints.
fn measure_taylor(ctx: &Ctx, r: &Runs, p: &Settings) -> Result<TaylorMeasured> {
    let run = &r.nup[0];
    let cfg = Config::load(&ctx.config(CONFIG), &p.taylor())?;
    let d = data::build_data(&cfg)?;
    let all = data::to_batch(&d.train, DType::F64, &Device::Cpu)?;
    let batch = all.rows(0, p.taylor_rows.min(all.len()))?;
    let dims = (d.train.input_dim(), d.train.target_dim());
    let lr = run.series("lr").first().map_or(r.eta, |q| q.1);
    let mut t = TaylorMeasured::default();
    for ck in checkpoints(run)? {
        let e = taylor_at(&cfg, &ck, &batch, dims, lr)?;
        t.rel.push(e[0].error / e[0].change);
        t.points.push(e);
    }
    Ok(t)
}

/// The final checkpoint's (s, error) curve.
fn final_curve(t: &TaylorMeasured) -> Curve {
    let last = t.points.last().cloned().unwrap_or_default();
    last.iter().map(|q| (q.s, q.error)).collect()
}

/// B7, B8 and their diagnosis NOTE.
fn taylor_checks(full: bool, t: &TaylorMeasured) -> Vec<Check> {
    let curve = final_curve(t);
    let slope = error_slope(&curve);
    let note = kink_note(&t.points, &t.rel);
    let m = median(t.rel.clone());
    let shown: Vec<String> = t.rel.iter().map(|x| fmt(*x)).collect();
    let mut b8 = Check::within(
        "B8 … the same error over Δθ scaled by s = 2^−k, k = 0…7: log-log slope (final checkpoint)",
        slope,
        3.5,
        4.5,
        "Taylor's theorem (remainder O(η⁴)); abstract 000",
    );
    let errs: Vec<String> = curve.iter().map(|q| fmt(q.1)).collect();
    b8.measured = format!("{} (errors {})", b8.measured, errs.join(", "));
    vec![
        claim(
            full,
            Check::holds(
                "B7 ReLU νP run, its own update at its checkpoints: |L(θ+Δθ) − Σ_{k≤3} c_k| / |L(θ+Δθ) − c0|",
                m <= 0.1,
                format!("median {m:.4} (checkpoints: {})", shown.join(", ")),
                "median ≤ 0.1",
                SOURCE,
            ),
        ),
        claim(full, b8),
        note,
    ]
}

/// The log-log slope of the errors > 1e-13 against s (NaN with fewer than 3).
fn error_slope(curve: &[(f64, f64)]) -> f64 {
    let usable: Vec<(f64, f64)> = curve.iter().copied().filter(|q| q.1 > 1e-13).collect();
    if usable.len() >= 3 {
        loglog_fit(&usable).map_or(f64::NAN, |f| f.slope)
    } else {
        f64::NAN
    }
}

/// NOTE (issue 13, task 4; B7/B8 unchanged): are the ReLU kinks crossed by the step
/// what breaks the cubic model? The share of preactivation signs flipped by the full
/// step at each checkpoint, B7's relative error at the checkpoints the step crosses
/// no kink, and the final checkpoint's slope over the scales that cross none.
fn kink_note(points: &[Vec<TaylorPoint>], rel: &[f64]) -> Check {
    let flips: Vec<String> = points.iter().map(|e| fmt(e[0].flips)).collect();
    let clean_rel: Vec<f64> = (points.iter().zip(rel))
        .filter(|(e, _)| e[0].flips == 0.0)
        .map(|(_, r)| *r)
        .collect();
    let last = points.last().cloned().unwrap_or_default();
    let clean: Curve = (last.iter())
        .filter(|q| q.flips == 0.0)
        .map(|q| (q.s, q.error))
        .collect();
    let per_s: Vec<String> = last
        .iter()
        .map(|q| format!("{}: {}", q.s, fmt(q.flips)))
        .collect();
    let slope = error_slope(&clean);
    Check::holds(
        "B7/B8 diagnosis: ReLU sign flips of the hidden preactivations over the step θ → θ+sΔθ",
        (3.5..=4.5).contains(&slope),
        format!(
            "flipped share at s = 1 per checkpoint {}; B7 error where none flip: {} of {} checkpoints, median {}; final checkpoint, share per s ({}); slope over the {} flip-free scales {}",
            flips.join(", "),
            clean_rel.len(),
            rel.len(),
            fmt(median(clean_rel.clone())),
            per_s.join(", "),
            clean.len(),
            fmt(slope)
        ),
        "slope in [3.5, 4.5] once no kink is crossed",
        "Taylor's theorem on a piecewise-polynomial loss (diagnosis, not a claim of the paper)",
    )
    .informative()
}

fn figures(ctx: &Ctx, r: &Runs, taylor: Curve, steps: u64) -> Result<()> {
    let mut fig = Figure::new("beyond-eos: η·λ_eff (νP) and η·λ_max (SGD, P = I), seed 0")
        .x_label("step")
        .y_label("η · λ")
        .y_log();
    fig.add(
        format!("νP quadratic, η = {}: η·λ_eff", r.eta),
        eta_lambda(&r.nup[0], "effective_sharpness"),
        Style::LinePoints,
    )
    .add(
        "νP quadratic: η·λ_max(H)",
        eta_lambda(&r.nup[0], "sharpness"),
        Style::Line,
    )
    .add(
        "νP constant widths: η·λ_eff",
        eta_lambda(&r.konst[0], "effective_sharpness"),
        Style::Line,
    );
    for (lr, runs) in &r.grid {
        let pts = eta_lambda(&runs[0], "sharpness");
        fig.add(format!("SGD lr = {lr}"), pts, Style::Line);
    }
    fig.hline("2 (EoS)", 2.0, 0.0..=steps as f64);
    ctx.save(&fig, "eta_lambda")?;
    let mut loss = Figure::new("beyond-eos: minibatch loss, seed 0")
        .x_label("step")
        .y_label("loss")
        .y_log();
    loss.add("νP quadratic", r.nup[0].series("loss"), Style::Line)
        .add(
            format!("SGD lr = η = {}", r.eta),
            r.same[0].series("loss"),
            Style::Line,
        );
    for (lr, runs) in &r.grid {
        loss.add(
            format!("SGD lr = {lr}"),
            runs[0].series("loss"),
            Style::Line,
        );
    }
    ctx.save(&loss, "loss")?;
    let mut t =
        Figure::new("beyond-eos: |L(θ+sΔθ) − (c0+c1+c2+c3)|, ReLU νP run, final checkpoint")
            .x_label("s (Δθ = the run's own νP update)")
            .y_label("error")
            .x_log()
            .y_log();
    if let Some(&(s0, e0)) = taylor.first() {
        let ref4 = taylor
            .iter()
            .map(|q| (q.0, e0 * (q.0 / s0).powi(4)))
            .collect();
        t.add("∝ s⁴", ref4, Style::Dashed);
    }
    t.add("error", taylor, Style::LinePoints);
    ctx.save(&t, "taylor_error")
}

pub fn run(ctx: &Ctx) -> Result<Vec<Check>> {
    let p: Settings = ctx.settings()?;
    let r = train_all(ctx, &p)?;
    let m = Measurements {
        full: ctx.full,
        eta: r.eta,
        nup: measure_runs(&r.nup),
        konst: measure_runs(&r.konst),
        same: measure_runs(&r.same),
        grid: (r.grid.iter())
            .map(|(lr, runs)| (*lr, measure_runs(runs)))
            .collect(),
        probe: measure_probe(&r),
        taylor: measure_taylor(ctx, &r, &p)?,
    };
    figures(ctx, &r, final_curve(&m.taylor), p.steps)?;
    Ok(checks(&m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_give_the_committed_overrides() {
        let p: Settings = crate::settings::of("beyond-eos", false);
        let full: Settings = crate::settings::of("beyond-eos", true);
        assert_eq!(p.sizes, crate::terjek::committed_sizes(false));
        assert_eq!(full.sizes, crate::terjek::committed_sizes(true));
        let rest = |s: &Settings| {
            let c = s.checkpoints.get();
            (s.steps, c, s.constant_width, s.taylor_rows)
        };
        assert_eq!(rest(&full), (1500, 4, 64, 128));
        assert_eq!(rest(&p), (300, 4, 64, 128));

        let base = [
            "train.steps=300",
            "train.seed=1",
            "data.n=1024",
            "data.test_n=500",
            "train.checkpoint_every=75",
        ];
        assert_eq!(p.nup(1), base);
        let mut sgd = base.map(String::from).to_vec();
        sgd.extend([
            "model.parameterization={kind=\"sp\"}".into(),
            "optim.lr=0.03".into(),
        ]);
        assert_eq!(p.sgd(1, 0.03), sgd);
        assert_eq!(p.nup_constant(1)[6], "model.base_width=64");
        assert_eq!(full.nup(0)[4], "train.checkpoint_every=375");
        assert_eq!(
            p.taylor(),
            ["train.dtype=\"f64\"", "data.n=1024", "data.test_n=500"]
        );
    }

    /// A finished run whose loss falls from 1 to 0.5, η·λ_eff at B2's thresholds.
    fn run_m() -> RunMeasured {
        RunMeasured {
            status: Status::Finished,
            finite: true,
            loss0: 1.0,
            peak: 1.0,
            late_loss: 0.5,
            el_median: 3.0,
            el_share: 0.5,
            el_final: 5.0,
            soft_rank: 10.0,
            test_accuracy: 0.8,
            sharpness: 5.0,
        }
    }

    /// The final checkpoint's points with error = 0.01·s^slope, s = 2^−k, no flips.
    fn points(slope: f64) -> Vec<TaylorPoint> {
        (0..TAYLOR_SCALES)
            .map(|k| {
                let s = 0.5f64.powi(k as i32);
                TaylorPoint {
                    s,
                    error: 0.01 * s.powf(slope),
                    change: 1.0,
                    flips: 0.0,
                }
            })
            .collect()
    }

    /// Every gate holds, each at (or, for strict comparisons, just inside) its threshold.
    fn at_thresholds() -> Measurements {
        let base = RunMeasured {
            soft_rank: 9.999,
            test_accuracy: 0.799,
            sharpness: 5.001,
            el_final: 5.001,
            ..run_m()
        };
        let diverged = RunMeasured {
            status: Status::Diverged,
            test_accuracy: 0.9,
            ..run_m()
        };
        Measurements {
            full: true,
            eta: 0.05,
            nup: vec![run_m()],
            konst: vec![RunMeasured {
                late_loss: 1.0,
                ..run_m()
            }],
            // B3: peak = 2 × step-0 loss.
            same: vec![RunMeasured {
                peak: 2.0,
                ..run_m()
            }],
            // lr 0.1 has the higher accuracy but a diverged seed: 0.01 is the baseline.
            grid: vec![(0.01, vec![base]), (0.1, vec![diverged])],
            probe: ProbeMeasured {
                nup_finite: 12,
                nup_probes: 12,
                sgd_sharpness: 12,
                sgd_effective: 12,
                worst: 1e-9,
            },
            taylor: TaylorMeasured {
                // median (0.1 + 0.1)/2 = 0.1.
                rel: vec![0.05, 0.1, 0.1, 0.2],
                points: vec![points(2.0), points(3.5 + 1e-6)],
            },
        }
    }

    #[test]
    fn checks_pass_at_the_thresholds() {
        let c = checks(&at_thresholds());
        let names: Vec<String> = c.iter().map(|c| c.what.chars().take(2).collect()).collect();
        let names_want = [
            "B1", "B2", "R2", "B3", "B4", "B5", "B6", "fi", "νP", "B7", "B8", "B7",
        ];
        assert_eq!(names, names_want);
        let notes: Vec<bool> = c.iter().map(|c| c.informative).collect();
        let notes_want = [
            false, false, false, false, false, false, false, true, true, false, false, true,
        ];
        assert_eq!(notes, notes_want);
        assert!(c.iter().all(|c| c.pass), "{c:?}");
        assert_eq!(c[0].measured, "finished 1 → 0.5");
        assert_eq!(c[3].measured, "finished, peak 2 (step 0: 1)");
        assert!(c[4].what.ends_with("(SGD lr = 0.01)"), "{}", c[4].what);
        assert_eq!(c[4].measured, "10 (10) vs 9.999 (9.999)");
        assert!(
            c[9].measured.starts_with("median 0.1000 "),
            "{}",
            c[9].measured
        );
        assert!(
            c[10].measured.starts_with("3.5 (errors 0.01, "),
            "{}",
            c[10].measured
        );
    }

    #[test]
    fn each_gate_fails_just_past_its_threshold() {
        let fails = |f: &dyn Fn(&mut Measurements), i: usize| {
            let mut m = at_thresholds();
            f(&mut m);
            crate::assert_only_fails(&checks(&m), i);
        };
        fails(&|m| m.nup[0].late_loss = 1.0, 0);
        fails(&|m| m.nup[0].finite = false, 0);
        fails(&|m| m.nup[0].el_median = 2.999_999, 1);
        fails(&|m| m.nup[0].el_share = 0.499_999, 1);
        fails(&|m| m.probe.worst = 1.000_001e-9, 2);
        fails(&|m| m.probe.nup_finite = 11, 2);
        fails(&|m| m.probe.sgd_effective = 11, 2);
        fails(&|m| m.same[0].peak = 1.999_999, 3);
        fails(&|m| m.grid[0].1[0].soft_rank = 10.0, 4);
        fails(&|m| m.grid[0].1[0].test_accuracy = 0.8, 5);
        fails(&|m| m.grid[0].1[0].sharpness = 5.0, 6);
        fails(&|m| m.taylor.rel[2] = 0.100_001, 9);
        fails(&|m| m.taylor.points[1] = points(3.5 - 1e-6), 10);
        fails(&|m| m.taylor.points[1] = points(4.5 + 1e-6), 10);
        // A diverged control passes B3 whatever its peak.
        let mut m = at_thresholds();
        m.same[0] = RunMeasured {
            status: Status::Diverged,
            peak: 1.0,
            ..run_m()
        };
        assert!(checks(&m)[3].pass);
    }

    #[test]
    fn no_baseline_fails_b4_to_b6_and_reduced_claims_are_notes() {
        let mut m = at_thresholds();
        m.grid.remove(0);
        let c = checks(&m);
        assert_eq!(c.len(), 9);
        assert_eq!(
            (c[4].what.as_str(), c[4].pass),
            ("B4-B6 best EoS baseline", false)
        );
        m.full = false;
        m.nup[0].el_median = 1.0;
        let c = checks(&m);
        let gating: Vec<&str> = c
            .iter()
            .filter(|c| !c.informative)
            .map(|c| &c.what[..2])
            .collect();
        assert_eq!(gating, ["B1", "R2"]);
        assert!(c.iter().filter(|c| !c.informative).all(|c| c.pass));
    }
}
