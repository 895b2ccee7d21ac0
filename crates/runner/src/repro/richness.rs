//! `richness-sweep`: the optimal learning rate across the feature-learning strength γ
//! (Atanasov, Meterez, Simon, Pehlevan, arXiv 2410.04642; THEORY.md §3).
//!
//! `eos sweep experiments/richness-sweep/sweep.toml` (reduced: depth L = 3, 13 γ from
//! 10⁻⁴ to 10³, 2 seeds) or `sweep-full.toml` (L ∈ {2, 3, 4}, 15 γ, 3 seeds), each γ
//! with the divergence-aware η₀ ladder (4 rungs per decade). η* per (L, γ) is the
//! parabolic refinement of the grid argmin of the seed-mean final loss
//! ([`crate::report::fit`]). Checks per L: the least-squares log-log slope of η* on γ
//! over γ ≤ 0.0316 (γ ≪ 1: the crossover starts near 0.1) is 2 ± 15 %, over γ ≥ 10
//! it is 2/L ± 15 %.

use serde_json::Value;

use super::{fmt, Check, Ctx};
use crate::report::fit::{loglog_fit, Fit};
use crate::report::plot::{Figure, Series, Style};
use crate::sweep::results::{best_per_group, read_rows, GroupBest};
use crate::sweep::{self, SweepOptions};

const SOURCE: &str = "Atanasov et al. 2024, abstract and Fig. 1 (η* ∝ γ² for γ ≪ 1, γ^(2/L) for γ ≫ 1); THEORY.md §3";
const GAMMA: &str = "model.parameterization.gamma";
const DEPTH: &str = "model.depth";
/// The base config's depth (when the sweep has no depth axis).
const BASE_DEPTH: u64 = 3;
/// The largest γ of the lazy fit, and the smallest of the rich fit.
const LAZY_MAX: f64 = 0.0317;
const RICH_MIN: f64 = 9.99;

/// (L, γ, η*) of every group with an η*.
pub fn eta_stars(best: &[GroupBest]) -> Vec<(u64, f64, f64)> {
    best.iter()
        .filter_map(|g| {
            let get = |k: &str| g.group.iter().find(|(key, _)| key == k).map(|(_, v)| v);
            let gamma = get(GAMMA).and_then(Value::as_f64)?;
            let depth = get(DEPTH).and_then(Value::as_u64).unwrap_or(BASE_DEPTH);
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

pub fn run(ctx: &Ctx) -> anyhow::Result<Vec<Check>> {
    let spec = ctx.config(if ctx.full {
        "sweep-full.toml"
    } else {
        "sweep.toml"
    });
    let out = ctx.dir.join("sweep");
    if ctx.fresh && out.exists() {
        std::fs::remove_dir_all(&out)?;
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
        workers: 2,
        exe: ctx.exe.clone(),
        ..SweepOptions::default()
    })?;
    let failed = summary.rows.iter().filter(|r| r.status == "failed").count();
    if failed > 0 {
        anyhow::bail!(
            "{failed} sweep cell(s) failed: see {}",
            out.join("results.csv").display()
        );
    }
    let rows = read_rows(&out.join("results.jsonl"))?;
    let best = best_per_group(&rows, "optim.lr", "train.seed");
    let stars = eta_stars(&best);
    let mut depths: Vec<u64> = stars.iter().map(|s| s.0).collect();
    depths.sort_unstable();
    depths.dedup();

    let mut checks = Vec::new();
    let mut fig = Figure {
        title: "richness-sweep: η* vs γ (SGD, mean-field/μP, centred, 300 steps)".into(),
        x_label: "γ".into(),
        y_label: "η* (η₀ of the lowest final loss)".into(),
        log_x: true,
        log_y: true,
        ..Figure::default()
    };
    for &l in &depths {
        let (lazy, rich) = regime_fits(&stars, l);
        let expect_rich = 2.0 / l as f64;
        let slope = |f: &Option<Fit>| f.map_or(f64::NAN, |f| f.slope);
        checks.push(Check::within(
            format!(
                "L = {l}: slope of ln η* on ln γ, γ ≤ 0.0316 (n = {})",
                lazy.map_or(0, |f| f.n)
            ),
            slope(&lazy),
            2.0 * 0.85,
            2.0 * 1.15,
            SOURCE,
        ));
        checks.push(Check::within(
            format!(
                "L = {l}: slope of ln η* on ln γ, γ ≥ 10 (n = {}; 2/L = {})",
                rich.map_or(0, |f| f.n),
                fmt(expect_rich)
            ),
            slope(&rich),
            expect_rich * 0.85,
            expect_rich * 1.15,
            SOURCE,
        ));
        let pts: Vec<(f64, f64)> = stars
            .iter()
            .filter(|s| s.0 == l)
            .map(|s| (s.1, s.2))
            .collect();
        fig.series
            .push(Series::new(format!("η*, L = {l}"), pts, Style::LinePoints));
        for (f, lo, hi, what) in [(lazy, 1e-4, 0.0316, "γ²"), (rich, 10.0, 1e3, "γ^(2/L)")] {
            if let Some(f) = f {
                fig.series.push(Series::new(
                    format!("L = {l} fit {what}: slope {}", fmt(f.slope)),
                    vec![(lo, f.eval(lo)), (hi, f.eval(hi))],
                    Style::Dashed,
                ));
            }
        }
    }
    fig.notes.push(format!(
        "{} cells, {} diverged",
        rows.len(),
        rows.iter().filter(|r| r.status == "diverged").count()
    ));
    ctx.save(&fig, "eta_star")?;
    // The sweep's own panels (final loss vs η per γ, loss curves at η*).
    let (files, _) = crate::report::sweep_plots::plot_sweep(
        &out,
        &ctx.dir.join("figures").join("sweep"),
        &crate::report::SweepPlotOptions {
            split: 1.0,
            x_key: Some(GAMMA.into()),
            refined: true,
        },
    )?;
    for f in files.iter().filter(|f| {
        f.file_stem().is_some_and(|s| s == "loss_at_eta_star")
            && f.extension().is_some_and(|e| e == "png")
    }) {
        ctx.copy_png(f, "loss_at_eta_star")?;
    }
    Ok(checks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fit::EtaStar;

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
        let stars = eta_stars(&best);
        assert_eq!(stars.len(), 8);
        assert!(stars.iter().all(|s| s.0 == BASE_DEPTH));
        let (lazy, rich) = regime_fits(&stars, 3);
        assert!((lazy.unwrap().slope - 2.0).abs() < 1e-12);
        assert_eq!(lazy.unwrap().n, 3);
        assert!((rich.unwrap().slope - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(rich.unwrap().n, 3);
        // A depth axis separates the fits.
        let best2 = vec![group(Some(2), 10.0, 1.0), group(Some(2), 100.0, 10.0)];
        let (_, rich2) = regime_fits(&eta_stars(&best2), 2);
        assert!((rich2.unwrap().slope - 1.0).abs() < 1e-12);
        assert!(regime_fits(&eta_stars(&best2), 3).1.is_none());
    }
}
