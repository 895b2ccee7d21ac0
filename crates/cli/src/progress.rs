//! The progress bar of `eos train` on a terminal (indicatif): step, loss, sharpness
//! against 2/η. Nothing is drawn when stderr is not a terminal.
//!
//! [`ProductProgress`]: progress lines of the long stages of `eos probe` (Lanczos,
//! the exact trace) on stderr, terminal or not; stdout (the `--json` object) is never
//! touched.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

/// Progress lines `eos probe: STAGE D/T Hessian-vector products, S s elapsed` on stderr
/// for stages of at least `min` products: the first product, then at most one line
/// per `every`, and the last (`D = T`; Lanczos may converge before its bound `T`).
#[derive(Debug)]
pub struct ProductProgress {
    min: usize,
    every: Duration,
    /// The current stage, when it started, when a line was last printed.
    state: Mutex<Option<(&'static str, Instant, Instant)>>,
}

impl ProductProgress {
    pub fn new(min: usize, every: Duration) -> Self {
        Self {
            min,
            every,
            state: Mutex::new(None),
        }
    }

    /// After product `done` of at most `total` in `stage`.
    pub fn report(&self, stage: &'static str, done: usize, total: usize) {
        if total < self.min {
            return;
        }
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let start = match *state {
            Some((s, start, last)) if s == stage => {
                if done < total && now.duration_since(last) < self.every {
                    return;
                }
                start
            }
            _ => now,
        };
        *state = Some((stage, start, now));
        eprintln!(
            "eos probe: {stage} {done}/{total} Hessian-vector products, {:.1} s elapsed",
            now.duration_since(start).as_secs_f64()
        );
    }
}
