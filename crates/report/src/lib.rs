//! eos-report: `eos report DIR…`, PNG and SVG plots of runs and sweeps (DESIGN.md "Runner").
//!
//! - a **run directory** (has `metrics.jsonl`): loss, sharpness with the 2/η line,
//!   Taylor coefficients, soft rank per layer, update cosine ([`run_plots`]);
//! - a **sweep directory** (has `results.jsonl`, written by `eos sweep`): loss vs η
//!   per γ, η* vs γ with the fitted log-log slopes below and above a split, loss
//!   curves at η* ([`sweep_plots`], math in [`eos_sweep::fit`]).
//!
//! Plots go to `DIR/plots/`, or to `--out` (`--out/<dir name>/` when several
//! directories are given). A panel whose data is absent is skipped. Text is drawn
//! with a font compiled into the binary ([`plot`]): no system font is needed.
//!
//! The plots of a run directory (here a `metrics.jsonl` of three lines written by hand;
//! `eos train` writes the same keys):
//!
//! ```
//! use eos_report::{report, ReportOptions};
//!
//! let run = std::env::temp_dir().join(format!("eos-report-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&run)?;
//! std::fs::write(
//!     run.join("metrics.jsonl"),
//!     "{\"step\":0,\"loss\":1.0,\"lr\":0.1,\"sharpness\":12.0}\n\
//!      {\"step\":1,\"loss\":0.8,\"lr\":0.1,\"sharpness\":19.0}\n\
//!      {\"step\":2,\"loss\":0.7,\"lr\":0.1,\"sharpness\":21.0}\n",
//! )?;
//! let out = report(&[run.clone()], &ReportOptions::default())?;
//! let names: Vec<&str> = out.files.iter().filter_map(|f| f.file_name()?.to_str()).collect();
//! assert_eq!(names, ["loss.png", "loss.svg", "sharpness.png", "sharpness.svg"]);
//! assert!(run.join("plots/sharpness.png").exists());
//! std::fs::remove_dir_all(&run)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod axis;
pub mod error;
pub mod plot;
pub mod run_plots;
pub mod sweep_plots;

use std::path::{Path, PathBuf};

pub use error::{Error, Result};
pub use sweep_plots::SweepPlotOptions;

/// What `eos report` was asked to do.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    pub out: Option<PathBuf>,
    /// The split between the γ ≪ 1 and γ ≫ 1 fits.
    pub split: f64,
    /// The x key of the η* plot (default: the group key containing `gamma`).
    pub x_key: Option<String>,
    /// Plot the parabolic refinement of η* instead of the grid argmin.
    pub refined: bool,
}

impl Default for ReportOptions {
    fn default() -> Self {
        Self {
            out: None,
            split: 1.0,
            x_key: None,
            refined: false,
        }
    }
}

/// What a report wrote.
#[derive(Debug, Clone, Default)]
pub struct ReportOutput {
    pub files: Vec<PathBuf>,
    /// Text for stdout (the fitted slopes of sweeps).
    pub lines: Vec<String>,
}

/// Where the plots of `dir` go.
fn out_dir(dir: &Path, opts: &ReportOptions, several: bool) -> PathBuf {
    match &opts.out {
        Some(o) if several => o.join(run_plots::dir_name(dir)),
        Some(o) => o.clone(),
        None => dir.join("plots"),
    }
}

/// Plots every directory of `dirs` (runs or sweeps).
pub fn report(dirs: &[PathBuf], opts: &ReportOptions) -> crate::Result<ReportOutput> {
    if dirs.is_empty() {
        return Err(Error::NoDirectory);
    }
    let mut out = ReportOutput::default();
    let several = dirs.len() > 1;
    for dir in dirs {
        let target = out_dir(dir, opts, several);
        if dir.join("results.jsonl").exists() {
            let sopts = SweepPlotOptions {
                split: opts.split,
                x_key: opts.x_key.clone(),
                refined: opts.refined,
            };
            let (files, lines) = sweep_plots::plot_sweep(dir, &target, &sopts)?;
            out.files.extend(files);
            out.lines.extend(lines);
        } else if dir.join("metrics.jsonl").exists() {
            out.files.extend(run_plots::plot_run(dir, &target)?);
        } else {
            return Err(Error::NotARunOrSweep(dir.clone()));
        }
    }
    Ok(out)
}
