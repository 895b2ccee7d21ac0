//! The panels of a sweep directory (one with `results.jsonl`, see [`eos_sweep`]):
//!
//! | file                | content                                                       |
//! |---------------------|---------------------------------------------------------------|
//! | `loss_vs_lr`        | final loss (mean over seeds) vs η, one line per group, log-log |
//! | `eta_star_vs_<x>`   | η* vs the x key (γ by default) with the fitted log-log slopes |
//! |                     | for x < split and x > split (THEORY.md §3: 2 and 2/L)          |
//! | `loss_at_eta_star`  | loss vs step of the first seed at η*, one line per group       |
//!
//! The x key of the η* plot is `--x-key`, else the group key whose name contains
//! `gamma`, else the first group key; the other group keys (if any) split the points
//! into separate series, each with its own fits. The slopes are also returned as text
//! lines for stdout.

use std::path::{Path, PathBuf};

use crate::error::Error;
use serde_json::Value;

use super::axis::compact;
use super::plot::{Figure, Series, Style};
use eos_sweep::fit::{regime_slopes, Fit};
use eos_sweep::results::{best_per_group, read_rows, CellRow, GroupBest};
use eos_train::metrics::read::Metrics;
use eos_train::Status;

/// Settings of the sweep panels.
#[derive(Debug, Clone)]
pub struct SweepPlotOptions {
    /// x < split is the γ ≪ 1 regime, x > split the γ ≫ 1 regime.
    pub split: f64,
    pub x_key: Option<String>,
    /// Use the parabolic refinement of η* instead of the grid argmin.
    pub refined: bool,
}

/// The keys `sweep.json` records (defaults when it is missing).
fn manifest(dir: &Path) -> crate::Result<(String, String)> {
    let p = dir.join("sweep.json");
    if !p.exists() {
        return Ok(("optim.lr".into(), "train.seed".into()));
    }
    let text =
        std::fs::read_to_string(&p).map_err(|e| Error::file(&p, format!("cannot read: {e}")))?;
    let v: Value =
        serde_json::from_str(&text).map_err(|e| Error::file(&p, format!("not valid JSON: {e}")))?;
    let key = |k: &str, d: &str| v.get(k).and_then(Value::as_str).unwrap_or(d).to_string();
    Ok((key("lr_key", "optim.lr"), key("seed_key", "train.seed")))
}

fn short(key: &str) -> &str {
    key.rsplit('.').next().unwrap_or(key)
}

fn label(group: &[(String, Value)]) -> String {
    let parts: Vec<String> = group
        .iter()
        .map(|(k, v)| {
            let name = if short(k) == "gamma" { "γ" } else { short(k) };
            let val = v.as_f64().map(compact).unwrap_or_else(|| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            });
            format!("{name}={val}")
        })
        .collect();
    if parts.is_empty() {
        "all".into()
    } else {
        parts.join(", ")
    }
}

/// Writes the sweep panels of `dir` into `out`; returns the files and the slope lines.
pub fn plot_sweep(
    dir: &Path,
    out: &Path,
    opts: &SweepPlotOptions,
) -> crate::Result<(Vec<PathBuf>, Vec<String>)> {
    let rows = read_rows(&dir.join("results.jsonl"))?;
    let (lr_key, seed_key) = manifest(dir)?;
    let best = best_per_group(&rows, &lr_key, &seed_key);
    let name = super::run_plots::dir_name(dir);
    let mut files = Vec::new();
    let mut lines = Vec::new();

    let mut loss = Figure {
        title: format!("{name}: final loss vs learning rate"),
        x_label: format!("η ({lr_key})"),
        y_label: "final loss (mean over seeds)".into(),
        log_x: true,
        log_y: true,
        ..Figure::default()
    };
    for g in &best {
        let samples: Vec<(f64, Option<f64>)> = group_rows(&rows, g, &lr_key, &seed_key)
            .filter_map(|r| {
                Some((
                    r.values.get(&lr_key)?.as_f64()?,
                    r.final_loss.filter(|_| r.status == Status::Finished),
                ))
            })
            .collect();
        let pts = eos_sweep::fit::mean_over_seeds(&samples)
            .into_iter()
            .filter_map(|(lr, l)| Some((lr, l?)))
            .collect();
        loss.series
            .push(Series::new(label(&g.group), pts, Style::LinePoints));
    }
    let diverged: usize = best.iter().map(|g| g.diverged).sum();
    loss.notes.push(format!(
        "{} cells, {diverged} diverged (not drawn)",
        rows.len()
    ));
    if !loss.is_empty() {
        files.extend(loss.save(out, "loss_vs_lr")?);
    }

    let group_keys: Vec<String> = best
        .first()
        .map(|g| g.group.iter().map(|(k, _)| k.clone()).collect())
        .unwrap_or_default();
    let x_key = opts.x_key.clone().or_else(|| {
        group_keys
            .iter()
            .find(|k| k.contains("gamma"))
            .or(group_keys.first())
            .cloned()
    });
    if let Some(x_key) = x_key.filter(|k| group_keys.contains(k)) {
        let (fig, text) = eta_star_figure(&name, &best, &x_key, opts);
        lines.extend(text);
        if !fig.is_empty() {
            files.extend(fig.save(out, &format!("eta_star_vs_{}", short(&x_key)))?);
        }
    }

    let mut curves = Figure {
        title: format!("{name}: loss at η*"),
        x_label: "step".into(),
        y_label: "loss".into(),
        log_y: true,
        ..Figure::default()
    };
    for g in &best {
        let Some(e) = g.eta else { continue };
        let at = group_rows(&rows, g, &lr_key, &seed_key).find(|r| {
            r.values.get(&lr_key).and_then(Value::as_f64) == Some(e.lr)
                && r.status == Status::Finished
        });
        let path = at
            .map(|r| dir.join(&r.dir).join("metrics.jsonl"))
            .filter(|p| p.exists());
        if let Some(p) = path {
            let pts = Metrics::read(&p)?.scalar("loss");
            curves.series.push(Series::new(
                format!("{} (η*={})", label(&g.group), compact(e.lr)),
                pts,
                Style::Line,
            ));
        }
    }
    if !curves.is_empty() {
        files.extend(curves.save(out, "loss_at_eta_star")?);
    }
    Ok((files, lines))
}

fn group_rows<'a>(
    rows: &'a [CellRow],
    g: &'a GroupBest,
    lr_key: &'a str,
    seed_key: &'a str,
) -> impl Iterator<Item = &'a CellRow> + 'a {
    rows.iter().filter(move |r| {
        let n = r
            .values
            .keys()
            .filter(|k| *k != lr_key && *k != seed_key)
            .count();
        n == g.group.len() && g.group.iter().all(|(k, v)| r.values.get(k) == Some(v))
    })
}

/// η* vs `x_key`, one series per combination of the other group keys, with fits.
fn eta_star_figure(
    name: &str,
    best: &[GroupBest],
    x_key: &str,
    opts: &SweepPlotOptions,
) -> (Figure, Vec<String>) {
    let which = if opts.refined {
        "η* (parabolic refinement)"
    } else {
        "η* (grid argmin)"
    };
    let xs = if short(x_key) == "gamma" {
        "γ".to_string()
    } else {
        short(x_key).to_string()
    };
    let mut fig = Figure {
        title: format!("{name}: {which} vs {xs}"),
        x_label: format!("{xs} ({x_key})"),
        y_label: "η*".into(),
        log_x: true,
        log_y: true,
        ..Figure::default()
    };
    let mut series: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for g in best {
        let (Some(x), Some(e)) = (
            g.group
                .iter()
                .find(|(k, _)| k == x_key)
                .and_then(|(_, v)| v.as_f64()),
            g.eta,
        ) else {
            continue;
        };
        let rest: Vec<(String, Value)> = g
            .group
            .iter()
            .filter(|(k, _)| k != x_key)
            .cloned()
            .collect();
        let l = label(&rest);
        let y = if opts.refined { e.lr_refined } else { e.lr };
        match series.iter_mut().find(|(n, _)| *n == l) {
            Some((_, p)) => p.push((x, y)),
            None => series.push((l, vec![(x, y)])),
        }
    }
    let mut lines = Vec::new();
    for (l, mut pts) in series {
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (lo, hi) = regime_slopes(&pts, opts.split);
        let tag = if l == "all" {
            String::new()
        } else {
            format!(" [{l}]")
        };
        let fmt = |f: Option<Fit>, side: &str| match f {
            Some(f) => format!(
                "{xs} {side} {}: slope {:.3} (n={})",
                compact(opts.split),
                f.slope,
                f.n
            ),
            None => format!(
                "{xs} {side} {}: slope n/a (fewer than 2 points)",
                compact(opts.split)
            ),
        };
        let text = format!("{}; {}{tag}", fmt(lo, "<"), fmt(hi, ">"));
        fig.notes.push(text.clone());
        lines.push(format!("{name}: {which}: {text}"));
        for (fit, side) in [(lo, "<"), (hi, ">")] {
            let Some(f) = fit else { continue };
            let inside: Vec<f64> = pts
                .iter()
                .map(|p| p.0)
                .filter(|&x| {
                    if side == "<" {
                        x < opts.split
                    } else {
                        x > opts.split
                    }
                })
                .collect();
            let line = inside.iter().map(|&x| (x, f.eval(x))).collect();
            fig.series.push(Series::new(
                format!(
                    "fit {xs} {side} {}: slope {:.3}{tag}",
                    compact(opts.split),
                    f.slope
                ),
                line,
                Style::Dashed,
            ));
        }
        let name = if l == "all" {
            "η*".to_string()
        } else {
            format!("η* [{l}]")
        };
        fig.series.push(Series::new(name, pts, Style::Points));
    }
    (fig, lines)
}
