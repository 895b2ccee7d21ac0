//! The panels of one run directory, each written as `<name>.png` and `<name>.svg`:
//!
//! | file            | content                                                        |
//! |-----------------|----------------------------------------------------------------|
//! | `loss`          | `loss` (and `train_loss`, `test_loss` if logged), log y, vs step |
//! | `sharpness`     | λ_max (`sharpness`), `batch_sharpness`, λ_max(P^−½HP^−½)         |
//! |                 | (`effective_sharpness`) and the 2/η line (ηλ = 2 and ηλ_eff = 2) |
//! | `taylor`        | c₁, c₂, c₃ of the loss along the update (`taylor[1..4]`)         |
//! | `soft_rank`     | the soft rank of each hidden layer's features                    |
//! | `update_cosine` | cos(Δθₜ, θₜ − θ₀), globally and per layer                        |
//!
//! A panel whose data is absent from `metrics.jsonl` is skipped. The 2/η line may lie
//! far above the sharpness early in a warm-up; the y axis stops at 1.5× the larger of
//! the sharpness maximum and the median 2/η.

use std::path::{Path, PathBuf};

use eos_train::metrics::read::Metrics;
use eos_train::stats::median;

use super::plot::{Figure, Style};

/// The panels of the run with these metrics; `name` goes into the titles.
pub fn figures(m: &Metrics, name: &str) -> Vec<(&'static str, Figure)> {
    let mut out = Vec::new();
    let fig = |title: &str, y: &str| {
        Figure::new(format!("{name}: {title}"))
            .x_label("step")
            .y_label(y)
    };

    let mut loss = fig("loss", "loss").y_log();
    for key in ["loss", "train_loss", "test_loss"] {
        push(&mut loss, key, m.scalar(key), Style::Line);
    }
    out.push(("loss", loss));

    let sharp = m.scalar("sharpness");
    let batch = m.scalar("batch_sharpness");
    let eff = m.scalar("effective_sharpness");
    if !sharp.is_empty() || !batch.is_empty() || !eff.is_empty() {
        let two = m.two_over_lr();
        let peak = sharp.iter().chain(&batch).chain(&eff);
        let peak = peak.map(|p| p.1).fold(0.0, f64::max);
        let mut f = fig("sharpness vs 2/η", "eigenvalue")
            .y_max(1.5 * peak.max(median(two.iter().map(|p| p.1))));
        push(&mut f, "λ_max (sharpness)", sharp, Style::LinePoints);
        push(&mut f, "batch sharpness", batch, Style::Line);
        push(
            &mut f,
            "λ_eff (effective sharpness)",
            eff,
            Style::LinePoints,
        );
        // λ = 2/η is the edge of plain GD, λ_eff = 2/η that of a preconditioned step.
        push(&mut f, "2/η (ηλ = 2, ηλ_eff = 2)", two, Style::Dashed);
        out.push(("sharpness", f));
    }

    let mut taylor = fig("Taylor coefficients along the update", "coefficient");
    for (i, label) in [(1, "c₁"), (2, "c₂"), (3, "c₃")] {
        push(&mut taylor, label, m.element("taylor", i), Style::Line);
    }
    out.push(("taylor", taylor));

    let mut rank = fig("soft rank of hidden features", "soft rank");
    for l in 0..m.width("soft_rank") {
        let label = format!("layer {}", l + 1);
        push(
            &mut rank,
            &label,
            m.element("soft_rank", l),
            Style::LinePoints,
        );
    }
    out.push(("soft_rank", rank));

    let mut cos = fig("update cosine cos(Δθₜ, θₜ − θ₀)", "cosine");
    push(
        &mut cos,
        "all layers",
        m.scalar("update_cosine"),
        Style::Line,
    );
    for l in 0..m.width("update_cosine_layers") {
        let label = format!("layer {}", l + 1);
        let pts = m.element("update_cosine_layers", l);
        push(&mut cos, &label, pts, Style::Dashed);
    }
    out.push(("update_cosine", cos));

    out.retain(|(_, f)| !f.is_empty());
    out
}

/// Writes the panels of run directory `dir` into `out`; returns the files written.
pub fn plot_run(dir: &Path, out: &Path) -> crate::Result<Vec<PathBuf>> {
    let m = Metrics::read(&dir.join("metrics.jsonl"))?;
    if m.skipped > 0 {
        tracing::warn!(
            "{}: {} line(s) are not JSON objects and were skipped",
            dir.join("metrics.jsonl").display(),
            m.skipped
        );
    }
    let name = dir_name(dir);
    let mut files = Vec::new();
    for (stem, f) in figures(&m, &name) {
        files.extend(f.save(out, stem)?);
    }
    Ok(files)
}

/// The last component of `dir` (or the whole path when it has none).
pub fn dir_name(dir: &Path) -> String {
    dir.file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.display().to_string())
}

/// Adds the series unless it is empty (the panel then skips it, colour included).
fn push(f: &mut Figure, name: &str, points: Vec<(f64, f64)>, style: Style) {
    if !points.is_empty() {
        f.add(name, points, style);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panels_follow_the_data() {
        let m = Metrics::parse(
            "{\"step\":0,\"loss\":1.0,\"lr\":0.1}\n\
             {\"step\":5,\"loss\":0.5,\"lr\":0.1,\"sharpness\":12.0,\"soft_rank\":[3.0,2.0]}\n",
        );
        let names: Vec<&str> = figures(&m, "r").iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["loss", "sharpness", "soft_rank"]);
        let sharp = &figures(&m, "r")[1].1;
        // 2/η = 20 is the larger scale: the axis stops at 30.
        assert_eq!(sharp.y_max, Some(30.0));
        assert_eq!(median([3.0, 1.0, 2.0].into_iter()), 2.0);
    }

    #[test]
    fn effective_sharpness_is_drawn_beside_the_sharpness() {
        let m = Metrics::parse(
            "{\"step\":0,\"loss\":1.0,\"lr\":0.1,\"sharpness\":12.0,\"effective_sharpness\":40.0}\n\
             {\"step\":2,\"loss\":0.9,\"lr\":0.1,\"effective_sharpness\":null}\n",
        );
        let figs = figures(&m, "r");
        let sharp = &figs.iter().find(|(n, _)| *n == "sharpness").unwrap().1;
        let names: Vec<&str> = sharp.series.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "λ_max (sharpness)",
                "λ_eff (effective sharpness)",
                "2/η (ηλ = 2, ηλ_eff = 2)"
            ]
        );
        // The null of step 2 is skipped; the axis follows λ_eff = 40 > 2/η = 20.
        assert_eq!(sharp.series[1].points, vec![(0.0, 40.0)]);
        assert_eq!(sharp.y_max, Some(60.0));
    }
}
