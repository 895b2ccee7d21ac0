//! `eos bench --run CONFIG` (issue 15, goal 2): a whole training run timed end to end,
//! with its probes and without them, so that the share of time spent in probes is
//! measured rather than guessed.
//!
//! Each repetition runs `eos train CONFIG` (with the `--set` overrides) twice into
//! fresh temporary run directories: once as configured and once with every probe off
//! (`probes.<name>.every = 0`). Times are those of the training loop — from the
//! trainer's first callback (data, model and run directory ready) to its last — so the
//! one-off setup is excluded, and the loop's metrics lines and checkpoints are
//! included. With `only`, the probes not named are switched off in the first run as
//! well (e.g. `sharpness,taylor`: the protocol of the JAX peer
//! `benches/jax/quickstart.py`). The probe share is `1 − bare / with` of the medians.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use eos_train::{Config, TrainArgs};
use serde::Serialize;

/// What `eos bench --run` was asked to time.
#[derive(Debug, Clone, Default)]
pub struct RunBench {
    pub config: PathBuf,
    /// `--set` overrides, applied to both runs.
    pub set: Vec<String>,
    /// Keep only these probes on (their names in `[probes]`); `None`: as configured.
    pub only: Option<Vec<String>>,
    /// Timed repetitions of each variant (median).
    pub reps: usize,
    pub device: String,
}

/// The timings of a whole run.
#[derive(Debug, Clone, Serialize)]
pub struct RunBenchResult {
    pub config: String,
    pub steps: u64,
    /// The probes that ran (their `every`).
    pub probes: Vec<(String, u64)>,
    pub threads: usize,
    /// Median seconds of the loop with the probes.
    pub wall_s: f64,
    pub steps_per_s: f64,
    /// Median seconds of the loop with every probe off.
    pub bare_wall_s: f64,
    pub bare_steps_per_s: f64,
    /// `1 − bare_wall_s / wall_s`.
    pub probe_share: f64,
    /// Every timed run, with and without probes.
    pub walls_s: Vec<f64>,
    pub bare_walls_s: Vec<f64>,
}

/// `(name, every)` of each probe in `cfg` (from its serialised `[probes]` table, so a new
/// probe is covered without a list to keep in step).
pub fn probe_intervals(cfg: &Config) -> anyhow::Result<Vec<(String, u64)>> {
    let v = serde_json::to_value(&cfg.probes)?;
    let obj = v
        .as_object()
        .context("[probes] did not serialise to a table")?;
    Ok(obj
        .iter()
        .map(|(k, p)| {
            (
                k.clone(),
                p.get("every").and_then(|e| e.as_u64()).unwrap_or(0),
            )
        })
        .collect())
}

/// The overrides that switch off every probe not in `keep`.
fn probes_off(all: &[(String, u64)], keep: &[String]) -> Vec<String> {
    all.iter()
        .filter(|(name, every)| *every > 0 && !keep.contains(name))
        .map(|(name, _)| format!("probes.{name}.every=0"))
        .collect()
}

/// Seconds and steps of the training loop of one run into `dir` (removed before and
/// after).
fn time_run(config: &Path, set: &[String], device: &str, dir: &Path) -> anyhow::Result<(f64, u64)> {
    let _ = std::fs::remove_dir_all(dir);
    let args = TrainArgs {
        config: config.to_path_buf(),
        set: set.to_vec(),
        out: Some(dir.to_path_buf()),
        device: device.to_string(),
        ..TrainArgs::default()
    };
    let (mut first, mut last) = (None, None);
    let summary = eos_train::train_with(&args, |t| {
        let now = Instant::now();
        first.get_or_insert((now, t.step));
        last = Some((now, t.step));
    });
    let _ = std::fs::remove_dir_all(dir);
    let summary = summary?;
    if summary.status != eos_train::Status::Finished {
        bail!(
            "{}: the run ended {:?}: {}",
            config.display(),
            summary.status,
            summary.reason
        );
    }
    match (first, last) {
        (Some((a, s0)), Some((b, s1))) if s1 > s0 => Ok(((b - a).as_secs_f64(), s1 - s0)),
        _ => bail!("{}: the trainer reported no step", config.display()),
    }
}

/// Runs the benchmark: `reps` × (run with probes, run without), alternating.
pub fn run_bench(b: &RunBench) -> anyhow::Result<RunBenchResult> {
    let cfg = Config::load(&b.config, &b.set)?;
    let all = probe_intervals(&cfg)?;
    if let Some(keep) = &b.only {
        for k in keep {
            if !all.iter().any(|(n, _)| n == k) {
                let names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
                bail!("--only: no probe `{k}` (probes: {})", names.join(", "));
            }
        }
    }
    let mut with = b.set.clone();
    if let Some(keep) = &b.only {
        with.extend(probes_off(&all, keep));
    }
    let mut bare = b.set.clone();
    bare.extend(probes_off(&all, &[]));
    let probes: Vec<(String, u64)> = probe_intervals(&Config::load(&b.config, &with)?)?
        .into_iter()
        .filter(|(_, e)| *e > 0)
        .collect();
    let dir = std::env::temp_dir().join(format!("eos-bench-run-{}", std::process::id()));
    let (mut walls, mut bare_walls, mut steps) = (Vec::new(), Vec::new(), 0);
    for _ in 0..b.reps.max(1) {
        let (w, s) = time_run(&b.config, &with, &b.device, &dir)?;
        let (bw, bs) = time_run(&b.config, &bare, &b.device, &dir)?;
        if s != bs {
            bail!(
                "{}: {s} steps with probes, {bs} without",
                b.config.display()
            );
        }
        steps = s;
        walls.push(w);
        bare_walls.push(bw);
    }
    let wall = crate::median(walls.clone());
    let bare_wall = crate::median(bare_walls.clone());
    Ok(RunBenchResult {
        config: b.config.display().to_string(),
        steps,
        probes,
        threads: eos_model::threads::count(),
        wall_s: wall,
        steps_per_s: steps as f64 / wall,
        bare_wall_s: bare_wall,
        bare_steps_per_s: steps as f64 / bare_wall,
        probe_share: 1.0 - bare_wall / wall,
        walls_s: walls,
        bare_walls_s: bare_walls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quickstart() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../experiments/quickstart.toml")
    }

    #[test]
    fn probes_are_read_from_the_config_and_switched_off_by_name() {
        let cfg = Config::load(&quickstart(), &[]).unwrap();
        let all = probe_intervals(&cfg).unwrap();
        let on: Vec<(&str, u64)> = all
            .iter()
            .filter(|(_, e)| *e > 0)
            .map(|(n, e)| (n.as_str(), *e))
            .collect();
        for want in [
            ("sharpness", 20),
            ("taylor", 10),
            ("eval", 100),
            ("norms", 100),
        ] {
            assert!(on.contains(&want), "{want:?} not in {on:?}");
        }
        assert!(all
            .iter()
            .any(|(n, e)| n == "effective_sharpness" && *e == 0));
        let off = probes_off(&all, &["sharpness".into(), "taylor".into()]);
        assert!(off.contains(&"probes.eval.every=0".to_string()), "{off:?}");
        assert!(!off
            .iter()
            .any(|s| s.contains("sharpness.") && !s.contains("batch")));
        assert!(!off.iter().any(|s| s.contains("taylor")));
        // Everything off leaves no probe on.
        let cfg = Config::load(&quickstart(), &probes_off(&all, &[])).unwrap();
        assert!(probe_intervals(&cfg).unwrap().iter().all(|(_, e)| *e == 0));
    }

    #[test]
    fn a_short_run_is_timed_with_and_without_probes() {
        let b = RunBench {
            config: quickstart(),
            set: ["train.steps=12", "data.n=32", "data.test_n=32"]
                .map(String::from)
                .to_vec(),
            only: Some(vec!["sharpness".into(), "taylor".into()]),
            reps: 1,
            device: "cpu".into(),
        };
        let r = run_bench(&b).unwrap();
        assert_eq!(r.steps, 12);
        assert_eq!(
            r.probes,
            [("sharpness".to_string(), 20), ("taylor".to_string(), 10)]
        );
        assert!(r.wall_s > 0.0 && r.bare_wall_s > 0.0, "{r:?}");
        assert_eq!(r.probe_share, 1.0 - r.bare_wall_s / r.wall_s);
        let bad = RunBench {
            only: Some(vec!["sharpnes".into()]),
            ..b
        };
        let e = run_bench(&bad).unwrap_err().to_string();
        assert!(e.contains("no probe `sharpnes`"), "{e}");
    }
}
