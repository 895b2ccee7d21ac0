//! Reading a run directory: `metrics.jsonl` and `meta.json`, tolerant of what a
//! live, crashed or older run may leave behind.
//!
//! `metrics.jsonl` holds one JSON object per logged step (names in the `eos train`
//! contract: `step`, `loss`, `lr`, `two_over_lr`, `sharpness`, `taylor`, `soft_rank`,
//! …). Any field may be missing or `null` on a line; a line that is not a JSON object
//! (e.g. the partial last line of a killed run) is skipped and counted. A series is
//! the list of `(step, value)` pairs of the lines where the value is a finite number;
//! a line without `step` uses its index.
//!
//! The *final loss* of a run is the mean of the last `⌈f · n⌉` logged losses
//! (`n` lines with a `loss` field, `f` = `final_fraction`, default 0.1): a plain
//! last value would be dominated by the oscillations of a run at the edge of
//! stability. It is `None` when any of those losses is null or non-finite.

use std::path::Path;

use crate::error::{Context, Error};
use serde_json::{Map, Value};

use crate::run_dir::Status;

/// The default fraction of the logged losses averaged into the final loss.
pub const DEFAULT_FINAL_FRACTION: f64 = 0.1;

/// The parsed lines of one `metrics.jsonl`.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    /// The JSON objects, in file order.
    pub lines: Vec<Map<String, Value>>,
    /// Lines that were not JSON objects (skipped).
    pub skipped: usize,
}

impl Metrics {
    /// Parses JSONL text; bad lines are skipped and counted, never an error.
    pub fn parse(text: &str) -> Self {
        let mut m = Metrics::default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            match serde_json::from_str::<Value>(line) {
                Ok(Value::Object(o)) => m.lines.push(o),
                _ => m.skipped += 1,
            }
        }
        m
    }

    /// Reads `path` (a `metrics.jsonl`).
    pub fn read(path: &Path) -> crate::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        Ok(Self::parse(&text))
    }

    /// The x coordinate of line `i`: its `step`, else its index.
    fn x(&self, i: usize) -> f64 {
        self.lines[i]
            .get("step")
            .and_then(Value::as_f64)
            .unwrap_or(i as f64)
    }

    /// `(step, value)` for every line where `key` is a finite number.
    pub fn scalar(&self, key: &str) -> Vec<(f64, f64)> {
        self.collect(|o| o.get(key).and_then(Value::as_f64))
    }

    /// `(step, key[index])` for every line where `key` is an array whose element
    /// `index` is a finite number.
    pub fn element(&self, key: &str, index: usize) -> Vec<(f64, f64)> {
        self.collect(|o| {
            o.get(key)
                .and_then(Value::as_array)
                .and_then(|a| a.get(index))
                .and_then(Value::as_f64)
        })
    }

    /// The largest length of `key` over the lines where it is an array (0 if never).
    pub fn width(&self, key: &str) -> usize {
        self.lines
            .iter()
            .filter_map(|o| o.get(key).and_then(Value::as_array).map(Vec::len))
            .max()
            .unwrap_or(0)
    }

    /// The 2/η line: `two_over_lr` where logged, else `2 / lr` (positive lr only).
    pub fn two_over_lr(&self) -> Vec<(f64, f64)> {
        self.collect(|o| {
            o.get("two_over_lr").and_then(Value::as_f64).or_else(|| {
                o.get("lr")
                    .and_then(Value::as_f64)
                    .filter(|lr| *lr > 0.0)
                    .map(|lr| 2.0 / lr)
            })
        })
    }

    /// Every line's `loss`, in order: `NaN` where it is `null` or not a number, lines
    /// without a `loss` field left out.
    pub fn losses(&self) -> Vec<f64> {
        self.lines
            .iter()
            .filter_map(|o| o.get("loss").map(|v| v.as_f64().unwrap_or(f64::NAN)))
            .collect()
    }

    /// The largest `step` logged.
    pub fn last_step(&self) -> Option<u64> {
        self.lines
            .iter()
            .filter_map(|o| o.get("step").and_then(Value::as_u64))
            .max()
    }

    fn collect(&self, f: impl Fn(&Map<String, Value>) -> Option<f64>) -> Vec<(f64, f64)> {
        (0..self.lines.len())
            .filter_map(|i| {
                f(&self.lines[i])
                    .filter(|v| v.is_finite())
                    .map(|v| (self.x(i), v))
            })
            .collect()
    }
}

/// Mean of the last `⌈fraction · n⌉` (at least one) of `losses`; `None` when there
/// are none or any of them is non-finite.
pub fn final_loss(losses: &[f64], fraction: f64) -> Option<f64> {
    let n = losses.len();
    if n == 0 {
        return None;
    }
    let k = ((fraction * n as f64).ceil() as usize).clamp(1, n);
    let tail = &losses[n - k..];
    let mean = tail.iter().sum::<f64>() / k as f64;
    (tail.iter().all(|v| v.is_finite()) && mean.is_finite()).then_some(mean)
}

/// What a report or a sweep needs from `meta.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct RunMeta {
    /// As written by `eos train`: running, finished, diverged or interrupted.
    pub status: Status,
    /// Steps completed, when recorded.
    pub steps_done: Option<u64>,
    /// The run's seed, when recorded.
    pub seed: Option<u64>,
}

impl RunMeta {
    /// Reads `dir/meta.json`: `Ok(None)` when there is none, an error naming the file
    /// when it is unreadable or has no string `status`.
    pub fn read(dir: &Path) -> crate::Result<Option<Self>> {
        let p = dir.join("meta.json");
        if !p.exists() {
            return Ok(None);
        }
        let text =
            std::fs::read_to_string(&p).with_context(|| format!("{}: cannot read", p.display()))?;
        let v: Value = serde_json::from_str(&text)
            .with_context(|| format!("{}: not valid JSON", p.display()))?;
        let status = v
            .get("status")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::file(&p, "key `status`: expected a string"))?
            .parse::<Status>()
            .map_err(|e| Error::file(&p, format!("key `status`: {e}")))?;
        Ok(Some(RunMeta {
            status,
            steps_done: v.get("steps_done").and_then(Value::as_u64),
            seed: v.get("seed").and_then(Value::as_u64),
        }))
    }

    /// Whether the run ended for good (`finished` or `diverged`): a sweep skips it.
    pub fn is_done(&self) -> bool {
        self.status.is_done()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerant_parsing() {
        let text = "{\"step\":0,\"loss\":2.0,\"lr\":0.5,\"sharpness\":1.0,\"taylor\":[1,2,3,4]}\n\
                    {\"step\":1,\"loss\":null,\"lr\":0.5,\"soft_rank\":[3.0,null]}\n\
                    not json\n\
                    {\"step\":2,\"loss\":1.0,\"two_over_lr\":3.0,\"soft_rank\":[2.5,1.5]}\n\
                    {\"step\":3,\"lo";
        let m = Metrics::parse(text);
        assert_eq!((m.lines.len(), m.skipped), (3, 2));
        assert_eq!(m.scalar("loss"), vec![(0.0, 2.0), (2.0, 1.0)]);
        assert_eq!(m.element("taylor", 3), vec![(0.0, 4.0)]);
        assert_eq!(m.element("soft_rank", 1), vec![(2.0, 1.5)]);
        assert_eq!(m.width("soft_rank"), 2);
        assert_eq!(m.two_over_lr(), vec![(0.0, 4.0), (1.0, 4.0), (2.0, 3.0)]);
        assert_eq!(m.losses().len(), 3);
        assert!(m.losses()[1].is_nan());
        assert_eq!(m.last_step(), Some(2));
    }

    #[test]
    fn final_loss_is_the_tail_mean() {
        let l: Vec<f64> = (1..=20).map(f64::from).collect();
        // ⌈0.1 · 20⌉ = 2 → mean(19, 20).
        assert_eq!(final_loss(&l, 0.1), Some(19.5));
        // ⌈0.1 · 5⌉ = 1 → the last value; fraction 1 → the mean of all.
        assert_eq!(final_loss(&l[..5], 0.1), Some(5.0));
        assert_eq!(final_loss(&l, 1.0), Some(10.5));
        assert_eq!(final_loss(&[], 0.1), None);
        assert_eq!(final_loss(&[1.0, f64::NAN], 0.5), None);
        assert_eq!(final_loss(&[f64::NAN, 1.0], 0.5), Some(1.0));
    }
}
