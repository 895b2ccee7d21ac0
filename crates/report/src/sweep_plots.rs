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
use super::plot::{Figure, Style};
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
    let sweep = Sweep::read(dir)?;
    let mut files = Vec::new();
    let mut lines = Vec::new();
    let loss = sweep.loss_figure();
    if !loss.is_empty() {
        files.extend(loss.save(out, "loss_vs_lr")?);
    }
    if let Some(x_key) = sweep.x_key(opts) {
        let (fig, text) = eta_star_figure(&sweep.name, &sweep.best, &x_key, opts);
        lines.extend(text);
        if !fig.is_empty() {
            files.extend(fig.save(out, &format!("eta_star_vs_{}", short(&x_key)))?);
        }
    }
    let curves = sweep.curves_figure()?;
    if !curves.is_empty() {
        files.extend(curves.save(out, "loss_at_eta_star")?);
    }
    Ok((files, lines))
}

/// A sweep directory read back: its cells, the best η of each group, its keys.
struct Sweep<'a> {
    dir: &'a Path,
    /// The directory's name, for the titles.
    name: String,
    rows: Vec<CellRow>,
    best: Vec<GroupBest>,
    lr_key: String,
    seed_key: String,
}

impl<'a> Sweep<'a> {
    fn read(dir: &'a Path) -> crate::Result<Self> {
        let rows = read_rows(&dir.join("results.jsonl"))?;
        let (lr_key, seed_key) = manifest(dir)?;
        let best = best_per_group(&rows, &lr_key, &seed_key);
        Ok(Self {
            dir,
            name: super::run_plots::dir_name(dir),
            rows,
            best,
            lr_key,
            seed_key,
        })
    }

    /// The cells of group `g` (every lr and seed).
    fn group_rows<'s>(&'s self, g: &'s GroupBest) -> impl Iterator<Item = &'s CellRow> + 's {
        let (lr_key, seed_key) = (self.lr_key.as_str(), self.seed_key.as_str());
        self.rows.iter().filter(move |r| {
            let n = r
                .values
                .keys()
                .filter(|k| *k != lr_key && *k != seed_key)
                .count();
            n == g.group.len() && g.group.iter().all(|(k, v)| r.values.get(k) == Some(v))
        })
    }

    /// Final loss (mean over the finished seeds) vs η, one series per group.
    fn loss_figure(&self) -> Figure {
        let mut loss = Figure::new(format!("{}: final loss vs learning rate", self.name))
            .x_label(format!("η ({})", self.lr_key))
            .y_label("final loss (mean over seeds)")
            .x_log()
            .y_log();
        for g in &self.best {
            let samples: Vec<(f64, Option<f64>)> = self
                .group_rows(g)
                .filter_map(|r| {
                    Some((
                        r.values.get(&self.lr_key)?.as_f64()?,
                        r.final_loss.filter(|_| r.status == Status::Finished),
                    ))
                })
                .collect();
            let pts = eos_sweep::fit::mean_over_seeds(&samples)
                .into_iter()
                .filter_map(|(lr, l)| Some((lr, l?)))
                .collect();
            loss.add(label(&g.group), pts, Style::LinePoints);
        }
        let diverged: usize = self.best.iter().map(|g| g.diverged).sum();
        loss.notes.push(format!(
            "{} cells, {diverged} diverged (not drawn)",
            self.rows.len()
        ));
        loss
    }

    /// The x key of the η* panel: `--x-key`, else the group key containing `gamma`,
    /// else the first group key; none when it is not a group key.
    fn x_key(&self, opts: &SweepPlotOptions) -> Option<String> {
        let group_keys: Vec<String> = self
            .best
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
        x_key.filter(|k| group_keys.contains(k))
    }

    /// Loss vs step of the first finished seed at η*, one series per group.
    fn curves_figure(&self) -> crate::Result<Figure> {
        let mut curves = Figure::new(format!("{}: loss at η*", self.name))
            .x_label("step")
            .y_label("loss")
            .y_log();
        for g in &self.best {
            let Some(e) = g.eta else { continue };
            let at = self.group_rows(g).find(|r| {
                r.values.get(&self.lr_key).and_then(Value::as_f64) == Some(e.lr)
                    && r.status == Status::Finished
            });
            let path = at
                .map(|r| self.dir.join(&r.dir).join("metrics.jsonl"))
                .filter(|p| p.exists());
            if let Some(p) = path {
                let pts = Metrics::read(&p)?.scalar("loss");
                let name = format!("{} (η*={})", label(&g.group), compact(e.lr));
                curves.add(name, pts, Style::Line);
            }
        }
        Ok(curves)
    }
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
    let mut fig = Figure::new(format!("{name}: {which} vs {xs}"))
        .x_label(format!("{xs} ({x_key})"))
        .y_label("η*")
        .x_log()
        .y_log();
    let mut lines = Vec::new();
    for (l, mut pts) in eta_star_points(best, x_key, opts.refined) {
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (lo, hi) = regime_slopes(&pts, opts.split);
        let tag = if l == "all" {
            String::new()
        } else {
            format!(" [{l}]")
        };
        let slope = |f: Option<Fit>, side: &str| slope_text(f, &xs, side, opts.split);
        let text = format!("{}; {}{tag}", slope(lo, "<"), slope(hi, ">"));
        fig.notes.push(text.clone());
        lines.push(format!("{name}: {which}: {text}"));
        for (fit, side) in [(lo, "<"), (hi, ">")] {
            let Some(f) = fit else { continue };
            let label = format!(
                "fit {xs} {side} {}: slope {:.3}{tag}",
                compact(opts.split),
                f.slope
            );
            fig.add(label, fit_line(&f, &pts, side, opts.split), Style::Dashed);
        }
        let name = if l == "all" {
            "η*".to_string()
        } else {
            format!("η* [{l}]")
        };
        fig.add(name, pts, Style::Points);
    }
    (fig, lines)
}

/// The (x, η*) points of each combination of the group keys other than `x_key`, by
/// its label, in the order of `best`.
fn eta_star_points(
    best: &[GroupBest],
    x_key: &str,
    refined: bool,
) -> Vec<(String, Vec<(f64, f64)>)> {
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
        let y = if refined { e.lr_refined } else { e.lr };
        match series.iter_mut().find(|(n, _)| *n == l) {
            Some((_, p)) => p.push((x, y)),
            None => series.push((l, vec![(x, y)])),
        }
    }
    series
}

/// "`xs` `side` split: slope s (n=k)", or why there is no slope.
fn slope_text(f: Option<Fit>, xs: &str, side: &str, split: f64) -> String {
    match f {
        Some(f) => format!(
            "{xs} {side} {}: slope {:.3} (n={})",
            compact(split),
            f.slope,
            f.n
        ),
        None => format!(
            "{xs} {side} {}: slope n/a (fewer than 2 points)",
            compact(split)
        ),
    }
}

/// The fit `f` evaluated at the x of the points on its `side` ("<" or ">") of `split`.
fn fit_line(f: &Fit, pts: &[(f64, f64)], side: &str, split: f64) -> Vec<(f64, f64)> {
    pts.iter()
        .map(|p| p.0)
        .filter(|&x| if side == "<" { x < split } else { x > split })
        .map(|x| (x, f.eval(x)))
        .collect()
}
