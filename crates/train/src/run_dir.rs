//! The run directory: its default name, `meta.json`, timestamps, the progress bar.
//!
//! `meta.json` records what is needed to reproduce and to judge a run: eos version,
//! git commit (when the working directory is a git checkout), device, dtype, thread
//! count, seed, start/end times (UTC), the status (`running` while it trains — a run
//! killed hard keeps it —, then `finished`, `diverged` or `interrupted`) and why.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Context, Error};
use serde::{Deserialize, Serialize};

/// The state of a run, as `meta.json` (`status`), the sweep tables and the
/// reproductions spell it: the only representation of a run's status in eos.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Training (or killed while training: `meta.json` is not updated by a kill).
    Running,
    /// All steps done.
    Finished,
    /// The loss exceeded `train.divergence_threshold` (or is not finite).
    Diverged,
    /// Stopped by Ctrl-C or `--stop-after`; continue with `--resume`.
    Interrupted,
    /// A sweep cell whose `eos train` child failed (never written to `meta.json`).
    Failed,
    /// A sweep cell that has not run yet (never written to `meta.json`).
    NotRun,
}

impl Status {
    /// Every status, in declaration order.
    pub const ALL: [Status; 6] = [
        Status::Running,
        Status::Finished,
        Status::Diverged,
        Status::Interrupted,
        Status::Failed,
        Status::NotRun,
    ];

    /// The name written to `meta.json` and the sweep tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Finished => "finished",
            Status::Diverged => "diverged",
            Status::Interrupted => "interrupted",
            Status::Failed => "failed",
            Status::NotRun => "not_run",
        }
    }

    /// Whether the run ended for good (`finished` or `diverged`): a sweep or a
    /// reproduction reuses it instead of training again.
    pub fn is_done(self) -> bool {
        matches!(self, Status::Finished | Status::Diverged)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Status {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Status::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Status::ALL.iter().map(|s| s.as_str()).collect();
                format!(
                    "unknown status `{s}` (expected one of {})",
                    names.join(", ")
                )
            })
    }
}

/// The content of `meta.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    pub version: String,
    #[serde(default)]
    pub git_hash: Option<String>,
    pub device: String,
    pub dtype: String,
    pub threads: usize,
    pub seed: u64,
    pub n_params: usize,
    pub widths: Vec<usize>,
    pub total_steps: u64,
    pub start_time: String,
    #[serde(default)]
    pub end_time: Option<String>,
    pub status: Status,
    #[serde(default)]
    pub reason: Option<String>,
    /// Steps completed (the last checkpoint or the step the run stopped at).
    #[serde(default)]
    pub steps_done: u64,
    /// UTC times at which the run was resumed, with the checkpoint step.
    #[serde(default)]
    pub resumed: Vec<(String, u64)>,
}

impl Meta {
    /// The metadata of a new run of `mlp` (status `running`).
    /// `widths`: the MLP's widths (empty for a layer network).
    pub fn new(
        device: &str,
        dtype: candle_core::DType,
        seed: u64,
        n_params: usize,
        widths: Vec<usize>,
        total: u64,
    ) -> Meta {
        Meta {
            version: env!("CARGO_PKG_VERSION").into(),
            git_hash: git_hash(),
            device: device.into(),
            dtype: format!("{dtype:?}").to_lowercase(),
            threads: eos_model::threads::count(),
            seed,
            n_params,
            widths,
            total_steps: total,
            start_time: now_rfc3339(),
            end_time: None,
            status: Status::Running,
            reason: None,
            steps_done: 0,
            resumed: Vec::new(),
        }
    }

    /// Writes `dir/meta.json` atomically.
    pub fn write(&self, dir: &Path) -> crate::Result<()> {
        let s = serde_json::to_string_pretty(self)?;
        eos_model::io::write_atomic(&dir.join("meta.json"), s.as_bytes())?;
        Ok(())
    }

    /// Reads `dir/meta.json`.
    pub fn read(dir: &Path) -> crate::Result<Meta> {
        let p = dir.join("meta.json");
        let s =
            std::fs::read_to_string(&p).with_context(|| format!("{}: cannot read", p.display()))?;
        serde_json::from_str(&s).with_context(|| format!("{}: not a run's meta.json", p.display()))
    }
}

/// Days since 1970-01-01 → (year, month, day) (H. Hinnant's `civil_from_days`).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// (y, mo, d, h, mi, s) of a Unix time in UTC.
fn utc(secs: u64) -> (i64, u32, u32, u64, u64, u64) {
    let (y, mo, d) = civil((secs / 86_400) as i64);
    let s = secs % 86_400;
    (y, mo, d, s / 3600, s / 60 % 60, s % 60)
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The current UTC time as RFC 3339 (`2025-01-31T12:00:00Z`).
pub fn now_rfc3339() -> String {
    let (y, mo, d, h, mi, s) = utc(now_secs());
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// `runs/<config-stem>-<YYYYmmdd-HHMMSS>` (UTC).
pub fn default_dir(config: &Path) -> PathBuf {
    let stem = config.file_stem().and_then(|s| s.to_str()).unwrap_or("run");
    let (y, mo, d, h, mi, s) = utc(now_secs());
    PathBuf::from("runs").join(format!("{stem}-{y:04}{mo:02}{d:02}-{h:02}{mi:02}{s:02}"))
}

/// The commit of the current directory's git checkout, if there is one.
pub fn git_hash() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()?;
    let h = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !h.is_empty()).then_some(h)
}

/// On `--resume`: errors unless `resolved` (the config now) equals the run's
/// `config.resolved.toml` up to `train.steps` / `train.epochs` (a run may be extended).
pub fn check_same_config(dir: &Path, resolved: &str) -> crate::Result<()> {
    let p = dir.join("config.resolved.toml");
    let old = std::fs::read_to_string(&p).with_context(|| {
        format!(
            "{}: cannot read (is {} a run directory?)",
            p.display(),
            dir.display()
        )
    })?;
    let strip = |text: &str| -> crate::Result<toml::Table> {
        let mut t: toml::Table = text
            .parse()
            .with_context(|| format!("{}: not valid TOML", p.display()))?;
        if let Some(toml::Value::Table(train)) = t.get_mut("train") {
            train.remove("steps");
            train.remove("epochs");
        }
        Ok(t)
    };
    let (a, b) = (strip(&old)?, strip(resolved)?);
    let mut diffs = Vec::new();
    diff_keys("", &a, &b, &mut diffs);
    if !diffs.is_empty() {
        return Err(Error::Request(format!("--resume: the config differs from {} at {}; only train.steps / train.epochs may change", p.display(),
            diffs.join(", "))));
    }
    Ok(())
}

fn diff_keys(prefix: &str, a: &toml::Table, b: &toml::Table, out: &mut Vec<String>) {
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    for k in keys {
        let name = format!("{prefix}{k}");
        match (a.get(k), b.get(k)) {
            (Some(toml::Value::Table(x)), Some(toml::Value::Table(y))) => {
                diff_keys(&format!("{name}."), x, y, out)
            }
            (x, y) if x != y => out.push(format!("`{name}`")),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar() {
        // 1970-01-01 and 2000-03-01 (day 11 017), 2024-02-29 (day 19 782).
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(11_017), (2000, 3, 1));
        assert_eq!(civil(19_782), (2024, 2, 29));
        assert_eq!(utc(86_399), (1970, 1, 1, 23, 59, 59));
    }
}
