//! The progress bar of `eos train` on a terminal (indicatif): step, loss, sharpness
//! against 2/η. Nothing is drawn when stderr is not a terminal.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// A progress bar on stderr when it is a terminal; nothing otherwise.
#[derive(Debug)]
pub struct Progress(Option<ProgressBar>);

impl Progress {
    /// A bar at `done` of `total` steps.
    pub fn new(total: u64, done: u64) -> Self {
        if !std::io::stderr().is_terminal() {
            return Self(None);
        }
        let bar = ProgressBar::new(total).with_position(done);
        let style = ProgressStyle::with_template(
            "{bar:30} {pos}/{len} [{elapsed_precise}<{eta_precise}] {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        Self(Some(bar))
    }

    /// Moves to `step` with the latest loss and sharpness.
    pub fn update(&self, step: u64, loss: f64, sharpness: Option<f64>, two_over_lr: f64) {
        if let Some(b) = &self.0 {
            b.set_position(step);
            let sh = sharpness.map(|s| format!("  sharpness {s:.4} (2/η {two_over_lr:.4})"));
            b.set_message(format!("loss {loss:.5e}{}", sh.unwrap_or_default()));
        }
    }

    /// Leaves the bar at its last state.
    pub fn finish(&self) {
        if let Some(b) = &self.0 {
            b.finish();
        }
    }
}
