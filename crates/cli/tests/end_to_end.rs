//! End-to-end tests through the `eos` binary: Ctrl-C during `eos train` (checkpoint,
//! status `interrupted`, then a bit-identical resume), and a sweep whose cells run the
//! real `eos train`, then plotted.

use std::fs;
use std::path::{Path, PathBuf};

use eos_report::{report, ReportOptions};
use eos_sweep::{sweep, SweepOptions};
use eos_train::testing::{args, metrics, nonempty, run, scratch, TinyCase};
use eos_train::{train, Status};

#[test]
fn ctrl_c_checkpoints_and_ends_interrupted_then_resume_matches() {
    let TinyCase { dir, config: cfg } = TinyCase::new("train-sigint");
    let (full, cut) = (dir.join("full"), dir.join("cut"));
    run(
        &cfg,
        &full,
        &["train.steps=1500", "train.checkpoint_every=0"],
    );
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_eos"))
        .arg("train")
        .arg(&cfg)
        .args([
            "--set",
            "train.steps=1500",
            "--set",
            "train.checkpoint_every=0",
            "--out",
        ])
        .arg(&cut)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until training is under way, then send SIGINT (what Ctrl-C sends).
    let metrics_file = cut.join("metrics.jsonl");
    for _ in 0..200 {
        let lines = std::fs::read_to_string(&metrics_file)
            .map(|t| t.lines().count())
            .unwrap_or(0);
        if lines > 5 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let ok = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let code = child.wait().unwrap().code();
    // 130 when the signal stopped the run (0 if it had finished before the signal).
    assert!(matches!(code, Some(130) | Some(0)), "exit status {code:?}");
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cut.join("meta.json")).unwrap()).unwrap();
    let done = meta["steps_done"].as_u64().unwrap();
    if done < 1500 {
        assert_eq!(meta["status"], "interrupted");
        assert!(cut.join(format!("ckpt/step-{done}.safetensors")).exists());
        let mut resume = args(
            &cfg,
            &cut,
            &["train.steps=1500", "train.checkpoint_every=0"],
        );
        resume.resume = true;
        assert_eq!(train(&resume).unwrap().status, Status::Finished);
    }
    assert_eq!(
        metrics(&full),
        metrics(&cut),
        "interrupt + resume = uninterrupted"
    );
    std::fs::remove_dir_all(&dir).ok();
}

fn tmp(name: &str) -> PathBuf {
    scratch(env!("CARGO_TARGET_TMPDIR"), name)
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

/// A 2 × 2 sweep (γ × η) through the real `eos train` (20 steps of a tiny
/// mean-field MLP), on 2 workers; a restart runs nothing; the report plots it.
#[test]
fn sweep_and_report_through_eos_train() {
    let root = tmp("e2e");
    let base = "loss = \"mse_mean_all\"\n\
        [model]\ndepth = 3\nbase_width = 16\nactivation = \"relu\"\n\
        parameterization = { kind = \"mean_field\", gamma = 1.0 }\n\
        [data]\nkind = \"teacher\"\nn = 64\ntest_n = 16\ninput_dim = 8\nhidden = [16]\noutput_dim = 1\n\
        [optim]\nkind = \"sgd\"\nlr = 0.1\n\
        [train]\nsteps = 20\nbatch_size = 16\nseed = 0\nlog_every = 2\n";
    fs::write(root.join("base.toml"), base).unwrap();
    let spec = root.join("tiny.toml");
    let grid = "base = \"base.toml\"\n[grid]\n\
        \"model.parameterization.gamma\" = [0.1, 1.0]\n\"optim.lr\" = [0.01, 0.1]\n";
    fs::write(&spec, grid).unwrap();
    let out = root.join("out");
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_eos"));
    let opts = SweepOptions {
        device: Some("cpu".into()),
        ..options(&spec, &out, 2, exe)
    };
    let s = sweep(&opts).unwrap();
    assert_eq!(s.rows.len(), 4);
    for r in &s.rows {
        assert!(
            r.status.as_str() == "finished" || r.status.as_str() == "diverged",
            "{r:?}"
        );
        assert!(out.join(&r.dir).join("metrics.jsonl").exists());
        assert!(
            r.status.as_str() != "finished" || (r.final_loss.is_some() && r.steps == Some(20)),
            "{r:?}"
        );
    }
    let logs = |o: &Path| -> Vec<u64> {
        s.rows
            .iter()
            .map(|r| {
                fs::metadata(o.join(&r.dir).join("train.log"))
                    .unwrap()
                    .len()
            })
            .collect()
    };
    let before = logs(&out);
    sweep(&opts).unwrap();
    assert_eq!(
        logs(&out),
        before,
        "a restart must not run finished cells again"
    );
    assert_eq!(
        fs::read_to_string(out.join("best.csv"))
            .unwrap()
            .lines()
            .count(),
        3
    );
    report(std::slice::from_ref(&out), &ReportOptions::default()).unwrap();
    nonempty(&out.join("plots/loss_vs_lr.png"));
    nonempty(&out.join("plots/eta_star_vs_gamma.svg"));
}
