//! Reliability through the `eos` binary (issue 16): one writer per run directory,
//! exit statuses (2 diverged, 130 interrupted by SIGTERM), sweeps that stop on a
//! signal, leftover temporary files, and flags that must be refused at once.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

fn eos() -> Command {
    Command::new(env!("CARGO_BIN_EXE_eos"))
}

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("reliability")
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A small full-batch run; long enough (`steps`) to be signalled while it trains.
fn config(dir: &Path) -> PathBuf {
    let p = dir.join("exp.toml");
    std::fs::write(
        &p,
        "loss = \"mse\"\n[model]\ndepth = 3\nbase_width = 8\nactivation = \"tanh\"\n\
         [data]\nkind = \"teacher\"\nn = 32\ninput_dim = 4\nhidden = [6]\noutput_dim = 2\n\
         [optim]\nkind = \"sgd\"\nlr = 0.05\n[train]\nsteps = 20\ncheckpoint_every = 5\n\
         [probes]\nsharpness = { every = 1, k = 1 }\n",
    )
    .unwrap();
    p
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn meta(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("meta.json")).unwrap()).unwrap()
}

/// Starts `eos train CFG --out OUT --set train.steps=STEPS` in the background.
fn spawn_train(cfg: &Path, out: &Path, steps: u64) -> Child {
    eos()
        .arg("train")
        .arg(cfg)
        .args(["--device", "cpu", "--set", &format!("train.steps={steps}")])
        .arg("--out")
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits (polling, no time assertion) until `file` has more than `n` lines.
fn wait_lines(file: &Path, n: usize) {
    for _ in 0..3000 {
        let lines = std::fs::read_to_string(file).map_or(0, |t| t.lines().count());
        if lines > n {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("{} never reached {n} lines", file.display());
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

#[test]
fn second_writer_is_refused_naming_the_holder_pid() {
    let dir = scratch("lock");
    let cfg = config(&dir);
    let out = dir.join("run");
    let mut first = spawn_train(&cfg, &out, 1_000_000);
    wait_lines(&out.join("metrics.jsonl"), 2);
    let second = eos()
        .arg("train")
        .arg(&cfg)
        .args(["--device", "cpu", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let msg = text(&second);
    assert_eq!(second.status.code(), Some(1), "{msg}");
    assert!(
        msg.contains(&format!("PID {}", first.id())),
        "names the holder: {msg}"
    );
    // A resume while the first still runs is refused too.
    let third = eos()
        .arg("train")
        .arg(&cfg)
        .args(["--device", "cpu", "--resume", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(text(&third).contains(&format!("PID {}", first.id())));
    // SIGTERM is handled like Ctrl-C: checkpoint, `interrupted`, exit status 130.
    signal(&first, "-TERM");
    assert_eq!(first.wait().unwrap().code(), Some(130));
    let m = meta(&out);
    assert_eq!(m["status"], "interrupted");
    let done = m["steps_done"].as_u64().unwrap();
    assert!(out.join(format!("ckpt/step-{done}.safetensors")).exists());
    assert!(!out.join(".lock").exists(), "the lock is released on exit");
    // Every metrics line once: no second writer got in.
    let steps: Vec<u64> = std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["step"]
                .as_u64()
                .unwrap()
        })
        .collect();
    let mut sorted = steps.clone();
    sorted.dedup();
    assert_eq!(steps, sorted, "no step written twice");
}

#[test]
fn sighup_and_kill_9_leave_a_resumable_run_and_no_temp_files() {
    let dir = scratch("hup");
    let cfg = config(&dir);
    let out = dir.join("run");
    let mut child = spawn_train(&cfg, &out, 1_000_000);
    wait_lines(&out.join("metrics.jsonl"), 2);
    signal(&child, "-HUP");
    assert_eq!(child.wait().unwrap().code(), Some(130));
    assert_eq!(meta(&out)["status"], "interrupted");
    // A kill -9 leaves a stale lock and temporary files: the next start cleans both.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    std::fs::write(
        out.join(".lock"),
        format!("pid=4000000\nhost={}\nstart=x\n", host.trim()),
    )
    .unwrap();
    std::fs::write(out.join("meta.tmp-4000000"), "partial").unwrap();
    std::fs::write(out.join("ckpt/step-99.tmp-4000000"), "partial").unwrap();
    let done = meta(&out)["steps_done"].as_u64().unwrap();
    let r = eos()
        .arg("train")
        .arg(&cfg)
        .args([
            "--device",
            "cpu",
            "--set",
            &format!("train.steps={}", done + 3),
        ])
        .args(["--resume", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", text(&r));
    assert_eq!(meta(&out)["status"], "finished");
    assert!(!out.join("meta.tmp-4000000").exists());
    assert!(!out.join("ckpt/step-99.tmp-4000000").exists());
    assert!(!out.join(".lock").exists());
}

#[test]
fn diverged_run_exits_2() {
    let dir = scratch("diverge");
    let cfg = config(&dir);
    let o = eos()
        .arg("train")
        .arg(&cfg)
        .args(["--device", "cpu", "--set", "optim.lr=1e6", "--out"])
        .arg(dir.join("run"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert_eq!(meta(&dir.join("run"))["status"], "diverged");
}

#[test]
fn bad_flags_are_refused_at_once() {
    let dir = scratch("flags");
    let chunk = eos().args(["probe", "--chunk", "0"]).output().unwrap();
    assert_eq!(chunk.status.code(), Some(2), "clap usage error");
    assert!(
        text(&chunk).contains("must be at least 1"),
        "{}",
        text(&chunk)
    );
    let k = eos().args(["probe", "--k", "100000"]).output().unwrap();
    assert_eq!(k.status.code(), Some(1));
    assert!(
        text(&k).contains("--k 100000: must be between 1 and"),
        "{}",
        text(&k)
    );
    let spec = dir.join("s.toml");
    std::fs::write(&spec, "base = \"b.toml\"\n[grid]\n\"optim.lr\" = [0.1]\n").unwrap();
    let w = eos()
        .arg("sweep")
        .arg(&spec)
        .args(["--workers", "0"])
        .output()
        .unwrap();
    assert_eq!(w.status.code(), Some(2));
    assert!(text(&w).contains("must be at least 1"));
    // `eos example` keeps an existing file unless --force.
    let victim = dir.join("victim.toml");
    std::fs::write(&victim, "precious").unwrap();
    let e = eos().arg("example").arg(&victim).output().unwrap();
    assert_eq!(e.status.code(), Some(1));
    assert!(text(&e).contains("--force"));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    let f = eos()
        .arg("example")
        .arg(&victim)
        .arg("--force")
        .output()
        .unwrap();
    assert!(f.status.success());
    assert_ne!(std::fs::read(&victim).unwrap(), b"precious");
}

#[test]
fn sweep_stops_on_sigterm_and_records_interrupted() {
    let dir = scratch("sweep");
    let cfg = config(&dir);
    let spec = dir.join("s.toml");
    std::fs::write(
        &spec,
        "base = \"exp.toml\"\n[set]\n\"train.steps\" = 1000000\n\
         [grid]\n\"optim.lr\" = [0.01, 0.02]\n",
    )
    .unwrap();
    assert!(cfg.exists());
    let out = dir.join("out");
    let mut sweep = eos()
        .arg("sweep")
        .arg(&spec)
        .args(["--device", "cpu", "--out"])
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait for the first cell's child to train, then SIGTERM the parent only.
    let cell = loop {
        let found = std::fs::read_dir(out.join("cells")).ok().and_then(|mut d| {
            d.find_map(|e| {
                let p = e.ok()?.path();
                p.join("metrics.jsonl").exists().then_some(p)
            })
        });
        match found {
            Some(p) => break p,
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    wait_lines(&cell.join("metrics.jsonl"), 2);
    // A second sweep on the same directory is refused while the first runs.
    let second = eos()
        .arg("sweep")
        .arg(&spec)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        text(&second).contains(&format!("PID {}", sweep.id())),
        "{}",
        text(&second)
    );
    signal(&sweep, "-TERM");
    assert_eq!(sweep.wait().unwrap().code(), Some(130));
    assert_eq!(
        meta(&cell)["status"],
        "interrupted",
        "the child checkpointed"
    );
    assert!(
        !cell.join("sweep-error.txt").exists(),
        "interrupted, not failed"
    );
    assert!(!cell.join(".lock").exists(), "the child ended");
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    assert!(csv.contains("interrupted"), "{csv}");
    assert!(!csv.contains("failed"), "{csv}");
}

/// Runs `eos train` to the end; returns its output.
fn train_out(cfg: &Path, out: &Path, extra: &[&str]) -> Output {
    eos()
        .arg("train")
        .arg(cfg)
        .args(["--device", "cpu", "--out"])
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn resume_refuses_fewer_steps_reports_the_last_loss_and_skips_a_truncated_checkpoint() {
    let dir = scratch("resume");
    let cfg = config(&dir);
    let (full, cut) = (dir.join("full"), dir.join("cut"));
    assert!(train_out(&cfg, &full, &[]).status.success());
    let o = train_out(&cfg, &cut, &["--stop-after", "15"]);
    assert!(o.status.success(), "{}", text(&o));
    // Fewer steps than are done: refused.
    let fewer = train_out(&cfg, &cut, &["--resume", "--set", "train.steps=10"]);
    assert_eq!(fewer.status.code(), Some(1));
    assert!(
        text(&fewer).contains("has 15 steps done"),
        "{}",
        text(&fewer)
    );
    // The latest checkpoint truncated (step 15): the run restarts from step 10.
    let ckpt = cut.join("ckpt/step-15.safetensors");
    let bytes = std::fs::read(&ckpt).unwrap();
    std::fs::write(&ckpt, &bytes[..bytes.len() / 2]).unwrap();
    let r = train_out(&cfg, &cut, &["--resume"]);
    assert!(r.status.success(), "{}", text(&r));
    assert!(
        text(&r).contains("skipping an unreadable checkpoint"),
        "{}",
        text(&r)
    );
    let lines = |d: &Path| -> Vec<serde_json::Value> {
        std::fs::read_to_string(d.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                v.as_object_mut().unwrap().remove("time_s");
                v
            })
            .collect()
    };
    assert_eq!(lines(&full), lines(&cut), "resume = uninterrupted");
    // Resuming a finished run: nothing to do, the recorded last loss is printed.
    let again = train_out(&cfg, &cut, &["--resume"]);
    assert!(again.status.success());
    assert!(!text(&again).contains("NaN"), "{}", text(&again));
    assert!(text(&again).contains("finished"), "{}", text(&again));
}

#[test]
fn corrupt_metrics_line_keeps_the_valid_lines_and_warns() {
    let dir = scratch("corrupt");
    let cfg = config(&dir);
    let (full, cut) = (dir.join("full"), dir.join("cut"));
    assert!(train_out(&cfg, &full, &[]).status.success());
    assert!(train_out(&cfg, &cut, &["--stop-after", "10"])
        .status
        .success());
    let m = cut.join("metrics.jsonl");
    let text0 = std::fs::read_to_string(&m).unwrap();
    let mut lines: Vec<&str> = text0.lines().collect();
    lines.insert(3, "{\"step\": garbage");
    std::fs::write(&m, lines.join("\n") + "\n").unwrap();
    let r = train_out(&cfg, &cut, &["--resume"]);
    assert!(r.status.success(), "{}", text(&r));
    assert!(
        text(&r).contains("metrics.jsonl:4: not a metrics line"),
        "{}",
        text(&r)
    );
    let strip = |d: &Path| -> Vec<serde_json::Value> {
        std::fs::read_to_string(d.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                v.as_object_mut().unwrap().remove("time_s");
                v
            })
            .collect()
    };
    assert_eq!(strip(&full), strip(&cut), "no valid line lost");
}

#[test]
fn oversized_model_is_refused_before_allocating() {
    let dir = scratch("huge");
    let cfg = config(&dir);
    let out = dir.join("run");
    let o = eos()
        .arg("train")
        .arg(&cfg)
        .args([
            "--device",
            "cpu",
            "--set",
            "model.base_width=20000",
            "--out",
        ])
        .arg(&out)
        .env("EOS_MEMORY_LIMIT", "1G")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let msg = text(&o);
    assert!(msg.contains("model: widths [4, 20000, 20000, 2]"), "{msg}");
    assert!(msg.contains("EOS_MEMORY_LIMIT"), "{msg}");
    assert!(
        !out.join("meta.json").exists(),
        "nothing written, never `running`"
    );
}

#[test]
fn config_and_sweep_messages_name_the_problem() {
    let dir = scratch("messages");
    let cfg = config(&dir);
    let run = |set: &str| text(&train_out(&cfg, &dir.join("never"), &["--set", set]));
    let depth = run("model.depth=0");
    assert!(depth.contains("model.depth: 0;"), "{depth}");
    let lrr = run("optim.lrr=0.1");
    assert!(
        lrr.contains("unknown field `lrr`, expected one of `kind`, `lr`,"),
        "{lrr}"
    );
    let syntax = run("model.widths=[20,64");
    assert!(syntax.contains("the value is not valid TOML"), "{syntax}");
    assert!(!dir.join("never").join("meta.json").exists());
    // A sweep whose base is missing: one error up front, no cell started.
    let spec = dir.join("s.toml");
    std::fs::write(
        &spec,
        "base = \"nope.toml\"\n[grid]\n\"optim.lr\" = [0.1, 0.2]\n",
    )
    .unwrap();
    let out = dir.join("sweep");
    let s = eos()
        .arg("sweep")
        .arg(&spec)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let msg = text(&s);
    assert_eq!(s.status.code(), Some(1));
    assert_eq!(msg.matches("no such file").count(), 1, "{msg}");
    assert!(msg.contains("key `base`"), "{msg}");
    // --gather lists the cells that never ran.
    let spec2 = dir.join("s2.toml");
    std::fs::write(
        &spec2,
        "base = \"exp.toml\"\n[grid]\n\"optim.lr\" = [0.1, 0.2]\n",
    )
    .unwrap();
    let g = eos()
        .arg("sweep")
        .arg(&spec2)
        .arg("--gather")
        .arg("--out")
        .arg(dir.join("sweep2"))
        .output()
        .unwrap();
    assert!(g.status.success(), "{}", text(&g));
    let csv = std::fs::read_to_string(dir.join("sweep2/results.csv")).unwrap();
    assert_eq!(csv.matches("not_run").count(), 2, "{csv}");
}

#[test]
fn probe_file_with_nan_or_unknown_tensors() {
    use candle_core::{DType, Device, Tensor};
    let dir = scratch("nan");
    let file = dir.join("case.safetensors");
    assert!(eos().arg("example").arg(&file).status().unwrap().success());
    let case = eos_model::load_case(&file, None, &Device::Cpu).unwrap();
    let batch = case.batch.clone().unwrap();
    let meta: Vec<(String, String)> = vec![("generator".into(), "test".into())];
    let mystery = Tensor::zeros(3, DType::F64, &Device::Cpu).unwrap();
    let unknown = dir.join("unknown.safetensors");
    let extra = [("mystery".to_string(), mystery)];
    eos_model::save_case(
        &unknown,
        &case.mlp,
        case.loss,
        Some(&batch),
        None,
        &extra,
        &meta,
    )
    .unwrap();
    let o = eos()
        .arg("probe")
        .arg(&unknown)
        .args(["--k", "1"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("not used by eos probe (ignored): `mystery`"),
        "{}",
        text(&o)
    );
    // A NaN in layers.0.weight: named at load.
    let mut params = case.mlp.params.clone();
    let w = &params.layers[0].weight;
    let mut v = w
        .flatten_all()
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap()
        .to_vec1::<f64>()
        .unwrap();
    v[2] = f64::NAN;
    let nan = Tensor::from_vec(v, w.shape(), &Device::Cpu)
        .unwrap()
        .to_dtype(w.dtype())
        .unwrap();
    params.layers[0].weight = nan;
    let mlp = case.mlp.with_params(params).unwrap();
    let bad = dir.join("nan.safetensors");
    eos_model::save_case(&bad, &mlp, case.loss, Some(&batch), None, &[], &meta).unwrap();
    let o = eos().arg("probe").arg(&bad).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("tensor `layers.0.weight`: entry 2 is NaN"),
        "{}",
        text(&o)
    );
}

/// `kill -9` at seeded moments (after a pseudo-random number of metrics lines, fixed
/// by the seed), each followed by `--resume`: the metrics equal the uninterrupted run's.
#[test]
fn kill_9_at_seeded_moments_then_resume_reproduces_the_metrics() {
    let dir = scratch("kill9");
    let cfg = config(&dir);
    let steps = [
        "--set",
        "train.steps=400",
        "--set",
        "train.checkpoint_every=7",
    ];
    let full = dir.join("full");
    assert!(train_out(&cfg, &full, &steps).status.success());
    let cut = dir.join("cut");
    let mut state: u64 = 20_261_207;
    let mut kills = 0;
    for round in 0..4 {
        // splitmix64: the moment of this round's kill, in metrics lines.
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        let at = 20 + (z ^ (z >> 31)) % 60;
        let before =
            std::fs::read_to_string(cut.join("metrics.jsonl")).map_or(0, |t| t.lines().count());
        let mut cmd = eos();
        cmd.arg("train")
            .arg(&cfg)
            .args(["--device", "cpu"])
            .args(steps);
        if round > 0 {
            cmd.arg("--resume");
        }
        let mut child = cmd
            .arg("--out")
            .arg(&cut)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait for `at` new lines (or the end of the run), then kill -9.
        for _ in 0..3000 {
            let n =
                std::fs::read_to_string(cut.join("metrics.jsonl")).map_or(0, |t| t.lines().count());
            if n >= before.saturating_sub(7) + at as usize || child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        if child.try_wait().unwrap().is_none() {
            signal(&child, "-KILL");
            kills += 1;
        }
        child.wait().unwrap();
    }
    let r = train_out(&cfg, &cut, &[steps.as_slice(), &["--resume"]].concat());
    assert!(r.status.success(), "{}", text(&r));
    assert!(kills >= 1, "at least one kill landed mid-run");
    let strip = |d: &Path| -> Vec<serde_json::Value> {
        std::fs::read_to_string(d.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                v.as_object_mut().unwrap().remove("time_s");
                v
            })
            .collect()
    };
    assert_eq!(
        strip(&full),
        strip(&cut),
        "kill -9 + resume = uninterrupted"
    );
    assert_eq!(meta(&cut)["status"], "finished");
}

/// A write that fails mid-run (fault injected without privileges: `ckpt` is a file,
/// so the first checkpoint cannot be written): exit 1, `meta.json` says why and is
/// resumable, no lock and no temporary file are left.
#[test]
fn failed_write_leaves_a_reason_and_no_temp_files() {
    let dir = scratch("fail");
    let cfg = config(&dir);
    let out = dir.join("run");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("ckpt"), "in the way").unwrap();
    let o = train_out(&cfg, &out, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let m = meta(&out);
    assert_eq!(m["status"], "interrupted");
    let reason = m["reason"].as_str().unwrap();
    assert!(reason.starts_with("failed after 0 steps:"), "{reason}");
    let left: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-") || n == ".lock")
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// The crash atomic writes exist for: the process dies after a checkpoint's temporary
/// file is written and before its rename (fault injected by eos-model's
/// `EOS_FAULT_ABORT_BEFORE_RENAME`, an abort). The checkpoint is absent, its temporary
/// file is left; `--resume` removes it, restarts from the previous checkpoint and
/// reproduces the uninterrupted `metrics.jsonl` exactly (all keys but `time_s`).
#[test]
fn abort_between_checkpoint_write_and_rename_then_resume_reproduces_the_metrics() {
    let dir = scratch("rename");
    let cfg = config(&dir);
    let steps = [
        "--set",
        "train.steps=60",
        "--set",
        "train.checkpoint_every=7",
    ];
    let full = dir.join("full");
    assert!(train_out(&cfg, &full, &steps).status.success());
    let cut = dir.join("cut");
    // `ulimit -c 0`: the abort leaves no core file behind.
    let o = Command::new("sh")
        .arg("-c")
        .arg("ulimit -c 0; exec \"$@\"")
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_eos"))
        .arg("train")
        .arg(&cfg)
        .args(["--device", "cpu"])
        .args(steps)
        .arg("--out")
        .arg(&cut)
        .env(
            eos_model::io::FAULT_ABORT_BEFORE_RENAME,
            "step-28.safetensors",
        )
        .output()
        .unwrap();
    assert!(!o.status.success(), "{}", text(&o));
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&o.status),
        Some(6),
        "SIGABRT: {}",
        text(&o)
    );
    let ckpt = cut.join("ckpt");
    let names = |d: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let left = names(&ckpt);
    assert!(
        left.contains(&"step-21.safetensors".to_string()),
        "{left:?}"
    );
    assert!(
        !left.contains(&"step-28.safetensors".to_string()),
        "{left:?}"
    );
    assert!(
        left.iter().any(|n| n.starts_with("step-28.tmp-")),
        "died between the write and the rename: {left:?}"
    );
    assert_eq!(meta(&cut)["status"], "running", "a crash updates nothing");

    let r = train_out(&cfg, &cut, &[steps.as_slice(), &["--resume"]].concat());
    assert!(r.status.success(), "{}", text(&r));
    assert!(
        !names(&ckpt).iter().any(|n| n.contains(".tmp-")),
        "{:?}",
        names(&ckpt)
    );
    let strip = |d: &Path| -> Vec<serde_json::Value> {
        std::fs::read_to_string(d.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                v.as_object_mut().unwrap().remove("time_s");
                v
            })
            .collect()
    };
    let (a, b) = (strip(&full), strip(&cut));
    assert_eq!(a.len(), 60, "one line per step");
    assert_eq!(a, b, "abort before rename + resume = uninterrupted");
    assert_eq!(meta(&cut)["status"], "finished");
}

/// Long Lanczos runs in `eos probe` print progress to stderr (issue 16 item 4): with
/// `--k 130` on a 522-parameter MLP, Lanczos may take 520 products and the exact
/// trace takes 522, both over the 500-product threshold; stdout stays one JSON object.
/// With `--k 2` (at most 200 products) Lanczos prints nothing.
#[test]
fn long_lanczos_in_probe_prints_progress_to_stderr_only() {
    use eos_model::{Activation, Batch, Loss, Mlp, MlpSpec};
    let dir = scratch("probe-progress");
    let file = dir.join("case.safetensors");
    let spec = MlpSpec::new(&[10, 40, 2], Activation::Tanh, true);
    let mlp = Mlp::random(&spec, 3, candle_core::DType::F64, &candle_core::Device::Cpu).unwrap();
    let vals = |n: usize, s: u64| eos_model::rng::normal_vec(s, n);
    let x = candle_core::Tensor::from_vec(vals(16 * 10, 1), (16, 10), &candle_core::Device::Cpu);
    let y = candle_core::Tensor::from_vec(vals(16 * 2, 2), (16, 2), &candle_core::Device::Cpu);
    let batch = Batch::new(x.unwrap(), y.unwrap());
    eos_model::save_case(&file, &mlp, Some(Loss::Mse), Some(&batch), None, &[], &[]).unwrap();
    let run = |k: &str| {
        eos()
            .arg("probe")
            .arg(&file)
            .args(["--json", "--device", "cpu", "--k", k])
            .output()
            .unwrap()
    };
    let o = run("130");
    assert!(o.status.success(), "{}", text(&o));
    let stdout = String::from_utf8(o.stdout.clone()).unwrap();
    assert_eq!(stdout.lines().count(), 1, "one JSON object: {stdout}");
    let j: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(j["n_params"], 522);
    assert_eq!(j["top_eigenvalues"].as_array().unwrap().len(), 130);
    let stderr = String::from_utf8_lossy(&o.stderr);
    let done = j["lanczos_hvps"].as_u64().unwrap();
    for want in [
        "eos probe: lanczos 1/520 Hessian-vector products, 0.0 s elapsed".to_string(),
        "eos probe: exact trace 8/522 Hessian-vector products, 0.0 s elapsed".to_string(),
        "eos probe: exact trace 522/522 Hessian-vector products, ".to_string(),
    ] {
        assert!(stderr.contains(&want), "{want} in {stderr}");
    }
    assert!(done > 130 && done <= 520, "{done}");
    let quiet = run("2");
    assert!(quiet.status.success(), "{}", text(&quiet));
    let stderr = String::from_utf8_lossy(&quiet.stderr);
    assert!(!stderr.contains("lanczos"), "{stderr}");
    assert!(stderr.contains("exact trace 522/522"), "{stderr}");
    serde_json::from_slice::<serde_json::Value>(&quiet.stdout).unwrap();
}
