//! `eos report` and `eos sweep` on hand-written run and cell directories, and on a
//! fake `eos train` (a shell script with known divergence thresholds and losses), so
//! that the logic is tested apart from the training stack. The fake writes the same
//! files as `eos train`: `meta.json` (status) and `metrics.jsonl` (losses). One test
//! runs a 2 × 2 sweep through the real `eos train`
//! (now in crates/cli/tests/end_to_end.rs, next to the binary).

use std::fs;
use std::path::{Path, PathBuf};

use eos_report::{report, ReportOptions};
use eos_sweep::results::read_rows;
use eos_sweep::{sweep, SweepOptions};
use eos_train::testing::{nonempty, scratch};
use serde_json::{json, Value};

fn tmp(name: &str) -> PathBuf {
    scratch(env!("CARGO_TARGET_TMPDIR"), name)
}

/// A run directory with the fields of the `eos train` contract, a null, lines
/// without probes and a partial last line (as a killed run leaves).
fn write_run(dir: &Path, with_taylor: bool) {
    fs::create_dir_all(dir).unwrap();
    let mut text = String::new();
    for t in 0..20 {
        let (tf, loss) = (f64::from(t), 2.0 * 0.8f64.powi(t));
        let mut o = json!({"step": t, "epoch": 0, "loss": loss, "lr": 0.1, "grad_norm": 1.0,
                           "time_s": 0.1, "two_over_lr": 20.0});
        if t % 2 == 0 {
            o["sharpness"] = json!(5.0 + tf);
            o["top_eigenvalues"] = json!([5.0 + tf, 1.0]);
            o["soft_rank"] = json!([10.0 - tf / 4.0, 2.5]);
            o["update_cosine"] = if t == 0 {
                Value::Null
            } else {
                json!(1.0 / (1.0 + tf))
            };
            if with_taylor {
                o["taylor"] = json!([loss, -0.1 * loss, 0.02 * loss, -0.001 * loss]);
            }
        }
        text += &format!("{o}\n");
    }
    text += "{\"step\":20,\"loss\":";
    fs::write(dir.join("metrics.jsonl"), text).unwrap();
    let meta = r#"{"status":"finished","seed":0,"steps_done":20}"#;
    fs::write(dir.join("meta.json"), meta).unwrap();
}

#[test]
fn report_on_a_hand_written_run() {
    let root = tmp("run");
    let run = root.join("run-a");
    write_run(&run, true);
    let out = report(std::slice::from_ref(&run), &ReportOptions::default()).unwrap();
    for stem in ["loss", "sharpness", "taylor", "soft_rank", "update_cosine"] {
        let png = nonempty(&run.join("plots").join(format!("{stem}.png")));
        assert_eq!(&png[..4], b"\x89PNG", "{stem}.png");
        let svg =
            String::from_utf8(nonempty(&run.join("plots").join(format!("{stem}.svg")))).unwrap();
        assert!(
            svg.contains("<svg") && svg.contains("<text"),
            "{stem}.svg has no text"
        );
    }
    assert_eq!(out.files.len(), 10);

    // Without Taylor coefficients that panel is skipped; --out with two dirs nests.
    let run_b = root.join("run-b");
    write_run(&run_b, false);
    let opts = ReportOptions {
        out: Some(root.join("all")),
        ..ReportOptions::default()
    };
    let out = report(&[run.clone(), run_b], &opts).unwrap();
    assert_eq!(out.files.len(), 18);
    assert!(root.join("all/run-b/loss.png").exists());
    assert!(!root.join("all/run-b/taylor.png").exists());

    let e = report(&[root.join("nothing")], &ReportOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("nothing") && e.contains("metrics.jsonl"), "{e}");
}

/// A stand-in for `eos train`: η diverges above 4γ², the final loss is
/// exp((ln η − ln γ²)²) (so η* = γ²), every call is logged to `DIR/calls.txt`.
const FAKE_TRAIN: &str = r#"#!/bin/sh
shift 2
out=""; lr=""; g=1; resume=""
while [ $# -gt 0 ]; do
  case "$1" in
    --set) case "$2" in optim.lr=*) lr="${2#*=}";; model.parameterization.gamma=*) g="${2#*=}";; esac; shift 2;;
    --out) out="$2"; shift 2;;
    --resume) resume=" resume"; shift;;
    *) shift;;
  esac
done
mkdir -p "$out"
echo "$(basename "$out")$resume" >> "$out/../../calls.txt"
awk -v lr="$lr" -v g="$g" -v out="$out" 'BEGIN {
  opt = g * g; st = (lr > 4 * opt) ? "diverged" : "finished";
  d = log(lr) - log(opt); loss = exp(d * d);
  for (i = 0; i < 10; i++) printf "{\"step\":%d,\"loss\":%.17g}\n", i, loss > (out "/metrics.jsonl");
  printf "{\"status\":\"%s\",\"seed\":0,\"steps_done\":10}\n", st > (out "/meta.json");
}'
"#;

#[cfg(unix)]
fn fake_exe(root: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = root.join("fake-eos");
    fs::write(&p, FAKE_TRAIN).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn calls(dir: &Path) -> Vec<String> {
    fs::read_to_string(dir.join("calls.txt"))
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

#[cfg(unix)]
#[test]
fn eta_search_with_a_fake_trainer() {
    let root = tmp("search");
    fs::write(root.join("base.toml"), "").unwrap();
    let spec = root.join("search.toml");
    fs::write(
        &spec,
        // `ensemble = false`: the cells go to the fake `eos train` children.
        "base = \"base.toml\"\nensemble = false\n[grid]\n\"model.parameterization.gamma\" = [0.1, 1.0]\n\
         \"train.seed\" = [0, 1]\n[eta_search]\nmax = 100.0\ndecades_below = 1\n",
    )
    .unwrap();
    let out = root.join("out");
    let opts = options(&spec, &out, 3, fake_exe(&root));
    let s = sweep(&opts).unwrap();
    // γ = 1: rungs 100, 31.6, 10 diverge (> 4), 3.16 is the start, 1 and 0.316 follow;
    // γ = 0.1: 100 … 0.1 diverge (> 0.04), start 0.0316, then 0.01, 0.00316. × 2 seeds.
    assert_eq!(s.rows.len(), 2 * (6 + 10));
    assert_eq!(calls(&out).len(), 32);
    let diverged = s
        .rows
        .iter()
        .filter(|r| r.status.as_str() == "diverged")
        .count();
    assert_eq!(diverged, 2 * (3 + 7));
    let best = fs::read_to_string(out.join("best.csv")).unwrap();
    let lines: Vec<&str> = best.lines().collect();
    assert_eq!(lines[0], "model.parameterization.gamma,best_lr,best_loss,best_lr_refined,lrs,lrs_eligible,cells,diverged");
    let field = |l: &str, i: usize| -> f64 { l.split(',').nth(i).unwrap().parse().unwrap() };
    // η* = γ² exactly on the ladder (f64 rounding of 100 · 10^(−k/2) only).
    for (line, gamma) in [(lines[1], 0.1), (lines[2], 1.0)] {
        assert_eq!(field(line, 0), gamma, "{best}");
        assert!(
            (field(line, 1) / (gamma * gamma) - 1.0).abs() < 1e-12,
            "{best}"
        );
        assert!((field(line, 2) - 1.0).abs() < 1e-12, "{best}");
    }
    assert!(lines[2].ends_with(",6,3,12,6"), "{best}");

    // Restart: nothing runs again.
    sweep(&opts).unwrap();
    assert_eq!(calls(&out).len(), 32);

    // The report of the sweep: loss vs η, η* vs γ with a slope of 2 below γ = 1.5.
    let rep = ReportOptions {
        split: 1.5,
        ..ReportOptions::default()
    };
    let r = report(std::slice::from_ref(&out), &rep).unwrap();
    for stem in ["loss_vs_lr", "eta_star_vs_gamma", "loss_at_eta_star"] {
        nonempty(&out.join("plots").join(format!("{stem}.png")));
        nonempty(&out.join("plots").join(format!("{stem}.svg")));
    }
    assert!(
        r.lines
            .iter()
            .any(|l| l.contains("γ < 1.5: slope 2.000 (n=2)")),
        "{:?}",
        r.lines
    );

    // Slurm: the script names one array task per γ group; --cell runs one group.
    let slurm = sweep(&SweepOptions {
        slurm: true,
        ..opts.clone()
    })
    .unwrap();
    let script = fs::read_to_string(slurm.sbatch.unwrap()).unwrap();
    assert!(
        script.contains("#SBATCH --array=0-1\n")
            && script.contains("--cell \"$SLURM_ARRAY_TASK_ID\""),
        "{script}"
    );
    let e = sweep(&SweepOptions {
        cell: Some(2),
        ..opts
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("--cell 2") && e.contains("2 jobs"), "{e}");
}

/// Writes a cell directory as `eos sweep` + `eos train` would leave it.
fn write_cell(out: &Path, id: &str, lr: f64, seed: u64, status: &str, losses: &[f64]) {
    let d = out.join("cells").join(id);
    fs::create_dir_all(&d).unwrap();
    let cell = json!({"id": id, "values": {"optim.lr": lr, "train.seed": seed}});
    fs::write(d.join("cell.json"), cell.to_string()).unwrap();
    let meta = json!({"status": status, "seed": seed, "steps_done": losses.len()});
    fs::write(d.join("meta.json"), meta.to_string()).unwrap();
    let lines = losses.iter().enumerate();
    let text: String = lines
        .map(|(i, l)| format!("{}\n", json!({"step": i, "loss": l})))
        .collect();
    fs::write(d.join("metrics.jsonl"), text).unwrap();
}

/// Sweep options with a spec, an output directory, workers and an executable.
fn options(spec: &Path, out: &Path, workers: usize, exe: PathBuf) -> SweepOptions {
    let (spec, out) = (spec.to_path_buf(), Some(out.to_path_buf()));
    SweepOptions {
        spec,
        out,
        workers,
        exe,
        ..SweepOptions::default()
    }
}

#[cfg(unix)]
#[test]
fn skip_resume_and_aggregation() {
    let root = tmp("aggregate");
    fs::write(root.join("base.toml"), "").unwrap();
    let spec = root.join("grid.toml");
    fs::write(&spec, "base = \"base.toml\"\nensemble = false\nfinal_fraction = 0.5\n[grid]\n\"optim.lr\" = [0.1, 1.0]\n\"train.seed\" = [0, 1]\n").unwrap();
    let out = root.join("out");
    // lr 0.1: final losses (mean of the last half) 2.5 and 3.5 → 3.0; lr 1.0: seed 0
    // 1.5, seed 1 diverged → not eligible although its mean would be lower.
    for (id, lr, seed, status, losses) in [
        (
            "lr=0.1_seed=0",
            0.1,
            0,
            "finished",
            &[9.0, 9.0, 2.0, 3.0][..],
        ),
        ("lr=0.1_seed=1", 0.1, 1, "finished", &[9.0, 9.0, 4.0, 3.0]),
        ("lr=1_seed=0", 1.0, 0, "finished", &[9.0, 1.0, 1.0, 2.0]),
        ("lr=1_seed=1", 1.0, 1, "diverged", &[9.0, 0.5, f64::NAN]),
    ] {
        write_cell(&out, id, lr, seed, status, losses);
    }

    // Everything is done: no child runs (the executable does not exist).
    let opts = options(&spec, &out, 2, root.join("missing-eos"));
    let s = sweep(&opts).unwrap();
    let status: Vec<&str> = s.rows.iter().map(|r| r.status.as_str()).collect();
    assert_eq!(status, ["finished", "finished", "finished", "diverged"]);
    assert_eq!(s.rows[0].final_loss, Some(2.5));
    assert_eq!(s.rows[3].final_loss, None);
    assert_eq!(s.rows[3].steps, Some(3));
    let csv = fs::read_to_string(out.join("results.csv")).unwrap();
    assert_eq!(
        csv.lines().next().unwrap(),
        "cell,optim.lr,train.seed,status,final_loss,last_loss,steps,error"
    );
    assert_eq!(
        csv.lines().nth(1).unwrap(),
        "lr=0.1_seed=0,0.1,0,finished,2.5e0,3e0,4,"
    );
    let best = fs::read_to_string(out.join("best.csv")).unwrap();
    assert_eq!(best, "best_lr,best_loss,best_lr_refined,lrs,lrs_eligible,cells,diverged\n1e-1,3e0,1e-1,2,1,4,1\n");
    assert_eq!(read_rows(&out.join("results.jsonl")).unwrap(), s.rows);

    // An interrupted cell is resumed; a missing executable is a failed cell, not a crash.
    write_cell(&out, "lr=0.1_seed=1", 0.1, 1, "interrupted", &[9.0]);
    let s = sweep(&opts).unwrap();
    let failed = &s.rows[1];
    assert_eq!(failed.status.as_str(), "failed");
    assert!(
        failed
            .error
            .as_deref()
            .unwrap_or("")
            .contains("missing-eos"),
        "{failed:?}"
    );
    let s = sweep(&SweepOptions {
        exe: fake_exe(&root),
        ..opts
    })
    .unwrap();
    assert_eq!(calls(&out), ["lr=0.1_seed=1 resume"]);
    assert_eq!(s.rows[1].status.as_str(), "finished");
    assert_eq!(s.rows[1].error, None);
}
