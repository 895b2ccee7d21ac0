//! `eos train` end to end on tiny configs: the run files and their keys, determinism,
//! kill-and-resume, config errors, divergence, and probe values on a model whose
//! Hessian is known in closed form.

use candle_core::{DType, Device};
use eos_train::config::Config;
use eos_train::testing::{args, metrics, run, TinyCase, TINY};
use eos_train::{data, train, Status};

#[test]
fn a_run_writes_its_files_with_the_contract_keys() {
    let TinyCase { dir, config: cfg } = TinyCase::new("train-files");
    let out = dir.join("run");
    let s = run(&cfg, &out, &[]);
    assert_eq!((s.status, s.steps_done), (Status::Finished, 12));
    assert!(out.join("config.resolved.toml").is_file());
    let resolved =
        Config::load(&out.join("config.resolved.toml"), &[]).expect("resolved config loads");
    assert_eq!(resolved, Config::load(&cfg, &[]).expect("config"));
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("meta.json")).unwrap()).unwrap();
    for k in [
        "version",
        "device",
        "dtype",
        "threads",
        "seed",
        "start_time",
        "end_time",
        "reason",
    ] {
        assert!(meta.get(k).is_some(), "meta.json lacks {k}: {meta}");
    }
    assert_eq!(meta["status"], "finished");
    let lines = metrics(&out);
    assert_eq!(lines.len(), 12);
    for (t, l) in lines.iter().enumerate() {
        assert_eq!(l["step"], t as u64);
        for k in [
            "epoch",
            "loss",
            "lr",
            "grad_norm",
            "two_over_lr",
            "taylor",
            "update_cosine",
        ] {
            assert!(l.get(k).is_some(), "step {t} lacks {k}: {l}");
        }
        assert_eq!(l["taylor"].as_array().map(|a| a.len()), Some(4));
        assert_eq!(l["taylor"][0], l["loss"], "c0 is the minibatch loss");
    }
    assert_eq!(
        lines[0]["update_cosine"],
        serde_json::Value::Null,
        "undefined at θ_t = θ₀"
    );
    assert!(lines[1]["update_cosine"].is_f64());
    let l0 = &lines[0];
    for k in [
        "sharpness",
        "top_eigenvalues",
        "batch_sharpness",
        "ntk_trace",
        "hessian_trace",
        "soft_rank",
        "weight_norms",
        "update_norms",
        "train_accuracy",
        "test_loss",
        "test_accuracy",
    ] {
        assert!(l0.get(k).is_some(), "step 0 lacks {k}: {l0}");
    }
    assert_eq!(
        l0["soft_rank"].as_array().map(|a| a.len()),
        Some(2),
        "one per hidden layer"
    );
    assert_eq!(l0["top_eigenvalues"].as_array().map(|a| a.len()), Some(2));
    // preact_rms: one positive finite value per hidden layer, every 3 steps (its value
    // on a known network is tested in eos_train::preact).
    for (t, l) in lines.iter().enumerate() {
        let p = l.get("preact_rms").and_then(|v| v.as_array());
        assert_eq!(p.is_some(), t % 3 == 0, "step {t}: {l}");
        if let Some(p) = p {
            assert_eq!(p.len(), 2, "one per hidden layer: {l}");
            assert!(p
                .iter()
                .all(|v| v.as_f64().is_some_and(|x| x > 0.0 && x.is_finite())));
        }
    }
    assert!(
        lines[1].get("sharpness").is_none(),
        "sharpness runs every 2 steps"
    );
    // Checkpoints in the interchange format, readable by eos-model.
    for step in [4, 8, 12] {
        let p = out.join("ckpt").join(format!("step-{step}.safetensors"));
        let case = eos_model::load_case(&p, None, &Device::Cpu).expect("checkpoint loads");
        assert_eq!(case.mlp.widths(), [4, 8, 8, 3]);
        assert!(case.extra.contains_key("theta0.layers.0.weight"));
        assert!(case.extra.contains_key("optim.momentum.layers.0.weight"));
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn identical_runs_and_kill_and_resume_give_identical_metrics() {
    let TinyCase { dir, config: cfg } = TinyCase::new("train-resume");
    let (a, b, c, d) = (dir.join("a"), dir.join("b"), dir.join("c"), dir.join("d"));
    run(&cfg, &a, &[]);
    run(&cfg, &b, &[]);
    assert_eq!(
        metrics(&a),
        metrics(&b),
        "same config and seed, same metrics"
    );
    // Stopped at step 6 (a checkpoint is written there), then resumed.
    let mut stop = args(&cfg, &c, &[]);
    stop.stop_after = Some(6);
    assert_eq!(train(&stop).unwrap().status, Status::Interrupted);
    assert_eq!(metrics(&c).len(), 6);
    let mut resume = args(&cfg, &c, &[]);
    resume.resume = true;
    assert_eq!(train(&resume).unwrap().status, Status::Finished);
    assert_eq!(metrics(&a), metrics(&c), "stop + resume = uninterrupted");
    // Momentum SGD has no preconditioner: the effective sharpness is the sharpness.
    let lines = metrics(&a);
    let both = lines
        .iter()
        .filter(|l| l.get("effective_sharpness").is_some());
    assert_eq!(both.clone().count(), 6);
    for l in both {
        assert_eq!(l["effective_sharpness"], l["sharpness"]);
        assert_eq!(l["effective_top_eigenvalues"], l["top_eigenvalues"]);
    }
    // "Killed" at step 10: no checkpoint beyond step 8 and a torn last line.
    stop.out = Some(d.clone());
    stop.stop_after = Some(10);
    train(&stop).unwrap();
    std::fs::remove_file(d.join("ckpt/step-10.safetensors")).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(d.join("metrics.jsonl"))
        .unwrap();
    std::io::Write::write_all(&mut f, b"{\"step\":10,\"lo").unwrap();
    resume.out = Some(d.clone());
    train(&resume).unwrap();
    assert_eq!(
        metrics(&a),
        metrics(&d),
        "resume from step 8 truncates and recomputes 8, 9"
    );
    // A changed config is refused on resume, a longer run is allowed.
    let e = train(&args(&cfg, &d, &["optim.momentum=0.5"]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("already holds a run"), "{e}");
    resume.set = vec!["optim.momentum=0.5".into()];
    let e = train(&resume).unwrap_err().to_string();
    assert!(e.contains("`optim.momentum`"), "{e}");
    resume.set = vec!["train.steps=14".into()];
    assert_eq!(train(&resume).unwrap().steps_done, 14);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn config_errors_name_the_file_and_the_key() {
    let case = TinyCase::new("train-errors");
    let dir = case.dir.clone();
    let err = |text: &str, set: &[&str]| -> String {
        let cfg = case.write_config(text);
        let e = train(&args(&cfg, &dir.join("never"), set)).unwrap_err();
        format!("{e:#}")
    };
    let typo = TINY.replace("momentum = 0.9", "momentun = 0.9");
    let e = err(&typo, &[]);
    assert!(e.contains("exp.toml") && e.contains("momentun"), "{e}");
    let e = err(&TINY.replace("steps = 12", "steps = \"twelve\""), &[]);
    assert!(e.contains("exp.toml") && e.contains("`train.steps`"), "{e}");
    let e = err(TINY, &["data.n=\"many\""]);
    assert!(
        e.contains("`data.n`") && e.contains("expected usize"),
        "{e}"
    );
    let e = err(TINY, &["data.hiden=[4]"]);
    assert!(
        e.contains("exp.toml") && e.contains("unknown field `hiden`"),
        "{e}"
    );
    let e = err(TINY, &["model.activation=relu6"]);
    assert!(e.contains("model.activation") && e.contains("relu6"), "{e}");
    let e = err(TINY, &["probes.sharpness.every=-1"]);
    assert!(e.contains("probes.sharpness.every"), "{e}");
    let e = err(TINY, &["probes.effective_sharpness.block=2"]);
    assert!(e.contains("probes.effective_sharpness.block"), "{e}");
    let e = err(TINY, &["probes.effective_sharpness.rowspace=\"auto\""]);
    assert!(e.contains("probes.effective_sharpness.rowspace"), "{e}");
    let e = err(
        TINY,
        &[
            "probes.sharpness.rowspace=\"auto\"",
            "probes.sharpness.block=2",
        ],
    );
    assert!(
        e.contains("probes.sharpness.rowspace") && e.contains("block = 0"),
        "{e}"
    );
    let e = err(TINY, &["probes.sharpness.rowspace=\"on\""]);
    assert!(e.contains("rowspace") || e.contains("on"), "{e}");
    let e = err(TINY, &["model.widths=[3, 8, 3]", "model.depth=0"]);
    assert!(e.contains("model.widths"), "{e}");
    let e = err(
        &TINY.replace("depth = 3\nbase_width = 8", "widths = [3, 8, 3]"),
        &[],
    );
    assert!(
        e.contains("exp.toml") && e.contains("model.widths") && e.contains("4 input"),
        "{e}"
    );
    // `[optimizer]` is an alias of `[optim]` that messages never name.
    let alias = TINY.replace("[optim]", "[optimizer]");
    let e = err(&alias, &["optim.momentum=1.5"]);
    assert!(e.contains("given twice"), "{e}");
    let e = err(&alias.replace("momentum = 0.9", "momentum = 1.5"), &[]);
    assert!(
        e.contains("optim.momentum") && !e.contains("optimizer"),
        "{e}"
    );
    let e = err(&alias.replace("momentum = 0.9", "momentun = 0.9"), &[]);
    assert!(e.contains("`optim") && !e.contains("optimizer"), "{e}");
    let e = err(TINY, &["model.pattern.kind=nope"]);
    assert!(e.contains("model.pattern"), "{e}");
    let e = err(TINY, &["bogus=1"]);
    assert!(e.contains("bogus"), "{e}");
    let fm = "[data]\nkind = \"fashion_mnist\"\ndir = \"/nonexistent/fmnist\"\nn = 10\n\
              [model]\ndepth = 1\n[optim]\nlr = 0.1\n[train]\nsteps = 1\n";
    let e = err(fm, &[]);
    assert!(e.contains("/nonexistent/fmnist"), "{e}");
    let missing = train(&args(&dir.join("absent.toml"), &dir.join("x"), &[])).unwrap_err();
    assert!(
        format!("{missing:#}").contains("absent.toml"),
        "{missing:#}"
    );
    assert!(!dir.join("never").exists(), "nothing half-written");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_huge_learning_rate_ends_the_run_as_diverged() {
    let TinyCase { dir, config: cfg } = TinyCase::new("train-diverge");
    let out = dir.join("run");
    let s = run(
        &cfg,
        &out,
        &["optim.lr=1e4", "train.steps=50", "train.checkpoint_every=0"],
    );
    assert_eq!(s.status, Status::Diverged, "{}", s.reason);
    assert!(s.steps_done < 50);
    let meta = std::fs::read_to_string(out.join("meta.json")).unwrap();
    assert!(meta.contains("\"status\": \"diverged\""), "{meta}");
    std::fs::remove_dir_all(&dir).ok();
}

/// A linear model f = xᵀw with the mse loss: L = (1/2n)‖Xw − y‖², so H = XᵀX/n for
/// every θ (known spectrum), ∇³L = 0, and tr H = NTK trace = (1/n)Σ‖xᵢ‖².
const LINEAR: &str = r#"
[model]
widths = [5, 1]
activation = "identity"
bias = false
[data]
kind = "teacher"
n = 40
input_dim = 5
noise_std = 0.3
[optim]
lr = 0.05
[train]
steps = 3
dtype = "f64"
[probes]
sharpness = { every = 1, k = 3, tol = 1e-12 }
taylor = { every = 1 }
hessian_trace = { every = 1, exact = true }
ntk_trace = { every = 1 }
batch_sharpness = { every = 1, batches = 1 }
"#;

#[test]
fn probes_match_a_quadratic_model() {
    let TinyCase {
        dir,
        config: cfg_path,
    } = TinyCase::new("train-quadratic").with_config(LINEAR);
    let cfg = Config::load(&cfg_path, &[]).unwrap();
    let x = data::build_data(&cfg)
        .unwrap()
        .train
        .x
        .to_dtype(DType::F64)
        .unwrap();
    let (n, d) = x.dims2().unwrap();
    let h = (x.t().unwrap().matmul(&x).unwrap() / n as f64).unwrap();
    let h: Vec<f64> = h.flatten_all().unwrap().to_vec1().unwrap();
    let mut eig = eos_hessian::symmetric_eigen(&h, d).unwrap().values;
    eig.reverse();
    let trace: f64 = (0..d).map(|i| h[i * d + i]).sum();
    // Single-vector Lanczos (the default) and block Lanczos (blocks of 3, warm-started).
    for (name, set) in [
        ("run", &[][..]),
        ("block", &["probes.sharpness.block=3"][..]),
    ] {
        let out = dir.join(name);
        run(&cfg_path, &out, set);
        check_quadratic_lines(&metrics(&out), &eig, trace);
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// `probes.sharpness.rowspace = "auto"` on an MLP whose probe set has fewer rows (32)
/// than inputs (40): the row-space Lanczos finds the top eigenvalues of the full one at
/// every probe (f64, tol 1e-10), and training is untouched.
#[test]
fn rowspace_sharpness_matches_the_full_operator() {
    let case = TinyCase::new("train-rowspace");
    let set = [
        "data.input_dim=40",
        "train.dtype=\"f64\"",
        "probes.sharpness.tol=1e-10",
        "probes.sharpness.max_iter=300",
    ];
    let (off, auto) = (case.dir.join("off"), case.dir.join("auto"));
    case.run(&off, &set);
    let mut with = set.to_vec();
    with.push("probes.sharpness.rowspace=\"auto\"");
    case.run(&auto, &with);
    let (a, b) = (metrics(&off), metrics(&auto));
    assert_eq!(a.len(), b.len());
    let mut probes = 0;
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x["loss"], y["loss"], "training is unchanged");
        let (Some(tx), Some(ty)) = (
            x["top_eigenvalues"].as_array(),
            y["top_eigenvalues"].as_array(),
        ) else {
            continue;
        };
        probes += 1;
        for (p, q) in tx.iter().zip(ty) {
            let (p, q) = (p.as_f64().unwrap(), q.as_f64().unwrap());
            assert!((p - q).abs() <= 1e-8 * p.abs(), "{tx:?} vs {ty:?}");
        }
    }
    assert!(probes >= 5, "{probes} sharpness probes");
    std::fs::remove_dir_all(&case.dir).ok();
}

/// The probe values of [`LINEAR`]'s run against the closed forms (`eig` descending).
fn check_quadratic_lines(lines: &[serde_json::Value], eig: &[f64], trace: f64) {
    let d = eig.len();
    // f64 with Lanczos tol 1e-12: 1e-9 relative.
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
    for l in lines {
        let top: Vec<f64> = serde_json::from_value(l["top_eigenvalues"].clone()).unwrap();
        for (a, b) in top.iter().zip(eig) {
            assert!(close(*a, *b), "Ritz {top:?} vs eig(XᵀX/n) {eig:?}");
        }
        assert!(close(l["hessian_trace"].as_f64().unwrap(), trace));
        assert!(close(l["ntk_trace"].as_f64().unwrap(), trace));
        let bs = l["batch_sharpness"].as_f64().unwrap();
        assert!(
            bs <= eig[0] * (1.0 + 1e-9) && bs >= eig[d - 1] * (1.0 - 1e-9),
            "{bs}"
        );
        assert!(l["taylor"][3].as_f64().unwrap().abs() < 1e-12, "∇³L = 0");
        assert!(close(l["two_over_lr"].as_f64().unwrap(), 40.0));
    }
    // GD on a quadratic: L(θ + Δθ) = c0 + c1 + c2 exactly; the next line's loss is it.
    for w in lines.windows(2) {
        let c: Vec<f64> = serde_json::from_value(w[0]["taylor"].clone()).unwrap();
        let next = w[1]["loss"].as_f64().unwrap();
        assert!(
            (c[0] + c[1] + c[2] - next).abs() < 1e-12 * next,
            "{c:?} vs {next}"
        );
    }
}

/// The geometry-aware schedule with `source = "noise_kernel"` holds K(η, B) at its
/// target c at every `s_eos` probe (η re-solved from that probe's spectrum before the
/// step) and keeps η between probes.
#[test]
fn noise_kernel_schedule_holds_k_at_the_target() {
    let TinyCase { dir, config: cfg } = TinyCase::new("train-k-control");
    let out = dir.join("run");
    let s = run(
        &cfg,
        &out,
        &[
            "optim={ kind = \"sgd\" }",
            "schedule={ kind = \"geometry_aware\", source = \"noise_kernel\", c = 0.2, ema = 0.0, lr_max = 100.0 }",
            "probes.s_eos={ every = 3, k = 1 }",
            "train.batch_size=8",
        ],
    );
    assert_eq!(s.status, Status::Finished, "{}", s.reason);
    let (mut probes, mut lr_at_probe) = (0, f64::NAN);
    for l in &metrics(&out) {
        let lr = l["lr"].as_f64().unwrap();
        if let Some(k) = l["s_eos_k"].as_f64() {
            assert!((k - 0.2).abs() < 1e-9 && lr < 100.0, "{l}");
            (probes, lr_at_probe) = (probes + 1, lr);
        } else {
            assert_eq!(lr, lr_at_probe, "η kept between probes: {l}");
        }
    }
    assert_eq!(probes, 4, "probes at steps 0, 3, 6, 9");
    std::fs::remove_dir_all(&dir).ok();
}
