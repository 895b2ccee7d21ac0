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
type Measure<'a> = &'a dyn Fn(&Run) -> f64;
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

/// The loss at step 0 and the largest loss after it.
fn spike(run: &Run) -> (f64, f64) {
    let l = run.series("loss");
    let l0 = l.first().map_or(f64::NAN, |p| p.1);
    (l0, l.iter().skip(1).map(|p| p.1).fold(0.0, f64::max))
}

fn finished_finite(run: &Run) -> bool {
    run.status == Status::Finished && run.series("loss").len() == run.metrics.lines.len()
}

/// B1/R1 and B2: stable training beyond the EoS in η·λ_eff.
fn stability_checks(ctx: &Ctx, r: &Runs) -> Vec<Check> {
    let ok: Vec<bool> = r
        .nup
        .iter()
        .map(|x| finished_finite(x) && late_loss(x) < spike(x).0)
        .collect();
    let losses: Vec<String> = r
        .nup
        .iter()
        .map(|x| format!("{} {} → {}", x.status, fmt(spike(x).0), fmt(late_loss(x))))
        .collect();
    let mut out = vec![Check::holds(
        format!(
            "B1/R1 νP (η = {}): finishes, every loss finite, loss falls",
            r.eta
        ),
        ok.iter().all(|b| *b),
        losses.join("; "),
        "every seed finished, late loss < step-0 loss",
        SOURCE,
    )];
    let med: Vec<f64> = r
        .nup
        .iter()
        .map(|x| median(second_half(&eta_lambda(x, "effective_sharpness"))))
        .collect();
    let frac: Vec<f64> = r
        .nup
        .iter()
        .map(|x| {
            let el: Vec<f64> = eta_lambda(x, "effective_sharpness")
                .into_iter()
                .filter(|p| p.0 > 0.0)
                .map(|p| p.1)
                .collect();
            el.iter().filter(|v| **v > 2.0).count() as f64 / el.len().max(1) as f64
        })
        .collect();
    out.push(claim(
        ctx.full,
        Check::holds(
            "B2 νP: median η·λ_eff over the second half; share of probes with η·λ_eff > 2",
            med.iter().all(|m| *m >= 3.0) && frac.iter().all(|f| *f >= 0.5),
            format!("median {}; share {}", over_seeds(&med), over_seeds(&frac)),
            "every seed: median ≥ 3 and share ≥ 0.5",
            SOURCE,
        ),
    ));
    out
}

/// R2: the effective-sharpness probe measures what it claims.
fn probe_checks(r: &Runs) -> Check {
    let eff = eta_lambda(&r.nup[0], "effective_sharpness");
    let n_nup = r.nup[0]
        .metrics
        .lines
        .iter()
        .filter(|l| l.get("effective_sharpness").is_some())
        .count();
    // The SGD run (P = I) with the most probes: the same-η one may diverge early.
    let s = r
        .grid
        .iter()
        .map(|g| &g.1[0])
        .chain(std::iter::once(&r.same[0]))
        .max_by_key(|x| x.series("sharpness").len())
        .unwrap_or(&r.same[0]);
    let (a, b) = (s.series("sharpness"), s.series("effective_sharpness"));
    let worst = a
        .iter()
        .zip(&b)
        .map(|(x, y)| ((x.1 - y.1) / x.1).abs())
        .fold(0.0, f64::max);
    Check::holds(
        "R2 effective sharpness: finite at every νP probe; equals sharpness when P = I (SGD)",
        eff.len() == n_nup && n_nup > 0 && a.len() == b.len() && !a.is_empty() && worst <= 1e-9,
        format!(
            "{} of {} νP probes finite; SGD: {} probes, max relative difference {}",
            eff.len(),
            n_nup,
            a.len(),
            fmt(worst)
        ),
        "all finite; difference ≤ 1e-9",
        "THEORY.md §9; docs/config.md (effective_sharpness)",
    )
}

/// B3: standard SGD at the same η explodes.
fn control_check(ctx: &Ctx, r: &Runs) -> Check {
    let each: Vec<String> = r
        .same
        .iter()
        .map(|x| {
            let (l0, peak) = spike(x);
            format!("{}, peak {} (step 0: {})", x.status, fmt(peak), fmt(l0))
        })
        .collect();
    let pass = r.same.iter().all(|x| {
        let (l0, peak) = spike(x);
        x.diverged() || peak >= 2.0 * l0
    });
    claim(
        ctx.full,
        Check::holds(
            format!(
                "B3 standard SGD (SP) on the same network at lr = η = {}",
                r.eta
            ),
            pass,
            each.join("; "),
            "every seed diverges or reaches ≥ 2× its step-0 loss",
            SOURCE,
        ),
    )
}

/// The grid lr whose seeds all finish with the highest mean final test accuracy.
fn best_baseline(r: &Runs) -> Option<(f64, &Vec<Run>)> {
    r.grid
        .iter()
        .filter(|(_, runs)| runs.iter().all(|x| x.status == Status::Finished))
        .map(|(lr, runs)| {
            let acc: Vec<f64> = runs.iter().map(|x| last(x, "test_accuracy")).collect();
            (*lr, runs, mean(&acc))
        })
        .filter(|p| p.2.is_finite())
        .max_by(|a, b| a.2.total_cmp(&b.2))
        .map(|(lr, runs, _)| (lr, runs))
}

/// B4–B6 against the best EoS baseline, and the NOTEs.
fn comparison_checks(ctx: &Ctx, r: &Runs) -> Vec<Check> {
    let Some((lr, base)) = best_baseline(r) else {
        return vec![claim(
            ctx.full,
            Check::holds(
                "B4-B6 best EoS baseline",
                false,
                "no grid lr finished on every seed",
                "a baseline",
                SOURCE,
            ),
        )];
    };
    let per = |runs: &[Run], f: &dyn Fn(&Run) -> f64| runs.iter().map(f).collect::<Vec<_>>();
    let mut out = Vec::new();
    let cases: [(&str, Measure, bool); 3] = [
        (
            "B4 final soft rank of the last hidden layer",
            &last_soft_rank,
            true,
        ),
        (
            "B5 final test accuracy",
            &|x| last(x, "test_accuracy"),
            true,
        ),
        (
            "B6 final sharpness λ_max(H)",
            &|x| last(x, "sharpness"),
            false,
        ),
    ];
    for (what, f, higher) in cases {
        let (a, b) = (per(&r.nup, f), per(base, f));
        let pass = if higher {
            mean(&a) > mean(&b)
        } else {
            mean(&a) < mean(&b)
        };
        out.push(claim(
            ctx.full,
            Check::holds(
                format!("{what}: νP vs best EoS baseline (SGD lr = {lr})"),
                pass,
                format!("{} vs {}", over_seeds(&a), over_seeds(&b)),
                if higher {
                    "νP higher (mean)"
                } else {
                    "νP lower (mean)"
                },
                SOURCE,
            ),
        ));
    }
    let el = |x: &Run| {
        eta_lambda(x, "effective_sharpness")
            .last()
            .map_or(f64::NAN, |p| p.1)
    };
    out.push(
        Check::holds(
            "final η·λ_eff: νP vs best baseline (units differ: νP's P⁻¹ carries ‖W‖/‖g‖)",
            mean(&per(&r.nup, &el)) < mean(&per(base, &el)),
            format!(
                "{} vs {}",
                over_seeds(&per(&r.nup, &el)),
                over_seeds(&per(base, &el))
            ),
            "νP lower",
            SOURCE,
        )
        .informative(),
    );
    out
}

/// NOTE: νP without the quadratic pattern (constant hidden widths 64).
fn constant_note(r: &Runs) -> Check {
    let km: Vec<f64> = r
        .konst
        .iter()
        .map(|x| median(second_half(&eta_lambda(x, "effective_sharpness"))))
        .collect();
    let kl: Vec<String> = r
        .konst
        .iter()
        .map(|x| format!("{} {} → {}", x.status, fmt(spike(x).0), fmt(late_loss(x))))
        .collect();
    Check::holds(
        "νP with constant widths 64 (no quadratic pattern) fails to train",
        r.konst
            .iter()
            .all(|x| x.diverged() || late_loss(x) >= spike(x).0),
        format!("{}; median η·λ_eff {}", kl.join("; "), over_seeds(&km)),
        "diverges or the loss does not fall",
        "reading of \"in tandem with a quadratic width pattern\" (abstract 000)",
    )
    .informative()
}

/// The Taylor error at one checkpoint along the scaled update sΔθ.
#[derive(Debug, Clone, Copy)]
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

/// B7, B8: the Taylor coefficients on the trained ReLU run; returns the checks and
/// the final checkpoint's (s, error) curve for the figure.
fn taylor_checks(ctx: &Ctx, r: &Runs, p: &Settings) -> Result<(Vec<Check>, Curve)> {
    let run = &r.nup[0];
    let cfg = Config::load(&ctx.config(CONFIG), &p.taylor())?;
    let d = data::build_data(&cfg)?;
    let all = data::to_batch(&d.train, DType::F64, &Device::Cpu)?;
    let batch = all.rows(0, p.taylor_rows.min(all.len()))?;
    let dims = (d.train.input_dim(), d.train.target_dim());
    let lr = run.series("lr").first().map_or(r.eta, |q| q.1);
    let mut rel = Vec::new();
    let mut points = Vec::new();
    for ck in checkpoints(run)? {
        let e = taylor_at(&cfg, &ck, &batch, dims, lr)?;
        rel.push(e[0].error / e[0].change);
        points.push(e);
    }
    let last = points.last().cloned().unwrap_or_default();
    let curve: Curve = last.iter().map(|q| (q.s, q.error)).collect();
    let slope = error_slope(&curve);
    let note = kink_note(&points, &rel);
    let m = median(rel.clone());
    let shown: Vec<String> = rel.iter().map(|x| fmt(*x)).collect();
    let mut b8 = Check::within(
        "B8 … the same error over Δθ scaled by s = 2^−k, k = 0…7: log-log slope (final checkpoint)",
        slope,
        3.5,
        4.5,
        "Taylor's theorem (remainder O(η⁴)); abstract 000",
    );
    let errs: Vec<String> = curve.iter().map(|q| fmt(q.1)).collect();
    b8.measured = format!("{} (errors {})", b8.measured, errs.join(", "));
    let checks = vec![
        claim(
            ctx.full,
            Check::holds(
                "B7 ReLU νP run, its own update at its checkpoints: |L(θ+Δθ) − Σ_{k≤3} c_k| / |L(θ+Δθ) − c0|",
                m <= 0.1,
                format!("median {m:.4} (checkpoints: {})", shown.join(", ")),
                "median ≤ 0.1",
                SOURCE,
            ),
        ),
        claim(ctx.full, b8),
        note,
    ];
    Ok((checks, curve))
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
    let mut checks = stability_checks(ctx, &r);
    checks.push(probe_checks(&r));
    checks.push(control_check(ctx, &r));
    checks.extend(comparison_checks(ctx, &r));
    checks.push(constant_note(&r));
    let (tc, curve) = taylor_checks(ctx, &r, &p)?;
    checks.extend(tc);
    figures(ctx, &r, curve, p.steps)?;
    Ok(checks)
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
}
