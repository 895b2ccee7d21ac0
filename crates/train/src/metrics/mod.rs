//! `metrics.jsonl`: one JSON object per logged step, append-only.
//!
//! Every line has `step`, `epoch`, `loss` (of the step's minibatch at θ_t, the full
//! training loss under GD), `lr` (the global lr of the update θ_t → θ_{t+1}),
//! `two_over_lr`, `grad_norm` (‖∇L_B(θ_t)‖) and `time_s` (wall clock since the run
//! started: the only field that differs between identical runs). Probe fields appear
//! on the steps their probe ran (names in [`Line`]). Non-finite numbers are written as
//! `null` (JSON has no NaN).
//!
//! Each line is written with one `write` and flushed, so a crash leaves at most a
//! partial last line; [`truncate_before`] (on resume) keeps only complete lines of
//! steps before the checkpoint.

pub mod read;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::Context;
use serde::Serialize;

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Line {
    pub step: u64,
    pub epoch: u64,
    pub loss: f64,
    pub lr: f64,
    pub grad_norm: f64,
    pub time_s: f64,
    /// λ_max of the Hessian on the probe set (Lanczos).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sharpness: Option<f64>,
    /// The top-k Ritz values, descending.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_eigenvalues: Option<Vec<f64>>,
    /// λ_max(P^{−½} H P^{−½}) with the preconditioner P of step t (effective_sharpness
    /// probe); `null` when the optimizer cannot report P yet (see the note).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effective_sharpness: Option<Option<f64>>,
    /// Its top-k Ritz values, descending.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effective_top_eigenvalues: Option<Vec<f64>>,
    /// Why `effective_sharpness` is `null` on this line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effective_sharpness_note: Option<String>,
    /// `[c0, c1, c2, c3]` of the minibatch loss along the update Δθ_t.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub taylor: Option<[f64; 4]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_sharpness: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ntk_trace: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hessian_trace: Option<f64>,
    /// tr G of the Gauss-Newton matrix (s_eos probe).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gn_trace: Option<f64>,
    /// The top-k eigenvalues of G (s_eos probe with k > 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gn_top_eigenvalues: Option<Vec<f64>>,
    /// K(η_t, B): the stochastic-EoS noise kernel norm (0 under full-batch GD).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s_eos_k: Option<f64>,
    /// One per hidden layer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub soft_rank: Option<Vec<f64>>,
    /// RMS of the preactivations z_l on the probe set, one per hidden layer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preact_rms: Option<Vec<f64>>,
    /// cos(Δθ_t, θ_t − θ₀); `null` at t = 0 (undefined).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_cosine: Option<Option<f64>>,
    /// The same per layer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_cosine_layers: Option<Vec<Option<f64>>>,
    /// ‖θ_l‖ per layer (weight and bias together).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight_norms: Option<Vec<f64>>,
    /// ‖Δθ_l‖ per layer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_norms: Option<Vec<f64>>,
    /// The mean of each layer's bias vector (norms probe; `null` for a layer without).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bias_mean: Option<Vec<Option<f64>>>,
    /// Loss on the whole training set (eval probe, minibatch runs only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_loss: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_accuracy: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_loss: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_accuracy: Option<f64>,
    /// 2/lr, the EoS threshold of GD.
    pub two_over_lr: f64,
}

impl Line {
    /// Whether any probe field is set.
    pub fn has_probe(&self) -> bool {
        self.sharpness.is_some()
            || self.effective_sharpness.is_some()
            || self.taylor.is_some()
            || self.batch_sharpness.is_some()
            || self.ntk_trace.is_some()
            || self.hessian_trace.is_some()
            || self.gn_trace.is_some()
            || self.soft_rank.is_some()
            || self.preact_rms.is_some()
            || self.update_cosine.is_some()
            || self.weight_norms.is_some()
            || self.train_accuracy.is_some()
            || self.train_loss.is_some()
            || self.test_loss.is_some()
    }
}

/// Appends lines to `metrics.jsonl`, one flushed write per line.
#[derive(Debug)]
pub struct Writer {
    file: File,
    path: PathBuf,
}

impl Writer {
    /// Opens (creating) `path` for appending.
    pub fn open(path: &Path) -> crate::Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("{}: cannot open for appending", path.display()))?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Writes one line and flushes it.
    pub fn write(&mut self, line: &Line) -> crate::Result<()> {
        let mut s = serde_json::to_string(line)?;
        s.push('\n');
        self.file
            .write_all(s.as_bytes())
            .and_then(|_| self.file.flush())
            .with_context(|| format!("{}: cannot write", self.path.display()))
    }
}

/// Keeps the complete lines of `path` whose `step` is below `step` (atomically
/// rewritten); a missing file is left missing. A line that is not a JSON object with
/// a `step` is dropped with a warning naming its line number, and the valid lines
/// after it are kept: a corrupt line never loses the data around it. Returns the
/// number of lines kept.
pub fn truncate_before(path: &Path, step: u64) -> crate::Result<usize> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e).with_context(|| format!("{}: cannot read", path.display())),
    };
    let mut kept = String::new();
    let mut n = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if !line.ends_with('\n') {
            break; // a partial last line from a crash
        }
        let parsed = serde_json::from_str::<serde_json::Value>(line)
            .ok()
            .and_then(|v| v.get("step").and_then(|s| s.as_u64()));
        match parsed {
            Some(s) if s < step => {
                kept.push_str(line);
                n += 1;
            }
            Some(_) => {}
            None => tracing::warn!(
                "{}:{}: not a metrics line (dropped on --resume): {}",
                path.display(),
                i + 1,
                line.trim_end().chars().take(80).collect::<String>()
            ),
        }
    }
    eos_model::io::write_atomic(path, kept.as_bytes())?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_have_the_contract_keys_and_truncation_drops_partial_lines() {
        let line = Line {
            step: 3,
            loss: f64::NAN,
            lr: 0.5,
            two_over_lr: 4.0,
            update_cosine: Some(None),
            ..Default::default()
        };
        let s = serde_json::to_string(&line).unwrap();
        assert!(
            s.starts_with(r#"{"step":3,"epoch":0,"loss":null,"lr":0.5,"grad_norm":0.0"#),
            "{s}"
        );
        assert!(
            s.contains(r#""update_cosine":null"#) && !s.contains("sharpness"),
            "{s}"
        );
        let dir = std::env::temp_dir().join(format!("eos-metrics-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("m.jsonl");
        std::fs::write(&p, "{\"step\":0}\n{\"step\":1}\n{\"step\":2}\n{\"st").unwrap();
        assert_eq!(truncate_before(&p, 2).unwrap(), 2);
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "{\"step\":0}\n{\"step\":1}\n"
        );
        // A corrupt line in the middle: the valid lines after it are kept.
        std::fs::write(
            &p,
            "{\"step\":0}\n{\"st#\n{\"step\":2}\n{\"step\":4}\n{\"step\":6}\n",
        )
        .unwrap();
        assert_eq!(truncate_before(&p, 5).unwrap(), 3);
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "{\"step\":0}\n{\"step\":2}\n{\"step\":4}\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
