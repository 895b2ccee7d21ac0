//! `eos probe` end to end: the JSON keys of the issue, values consistent with the
//! library, `--trace` (exact, Hutchinson within 4 standard errors of it, skipped) and
//! one clear error for bad input.

use std::process::Command;

use candle_core::{DType, Device};
use eos_model::load_case;

fn eos() -> Command {
    Command::new(env!("CARGO_BIN_EXE_eos"))
}

#[test]
fn probe_json_has_every_key_and_matches_the_file() {
    let dir = std::env::temp_dir().join(format!("eos-probe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("case.safetensors");
    let st = eos().args(["example"]).arg(&file).status().unwrap();
    assert!(st.success());
    let out = eos()
        .arg("probe")
        .arg(&file)
        .args(["--json", "--k", "3", "--seed", "4"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "exactly one JSON object");
    let j: serde_json::Value = serde_json::from_str(&text).unwrap();
    for key in [
        "loss",
        "grad_norm",
        "vhv",
        "hvp_norm",
        "top_eigenvalues",
        "hessian_trace",
        "taylor",
        "ntk_trace",
        "n_params",
        "dtype",
        "device",
    ] {
        assert!(j.get(key).is_some(), "missing key {key}");
    }
    let eig: Vec<f64> = serde_json::from_value(j["top_eigenvalues"].clone()).unwrap();
    assert_eq!(eig.len(), 3);
    assert!(eig[0] >= eig[1] && eig[1] >= eig[2]);
    assert_eq!(j["dtype"], "f64");
    assert_eq!(j["device"], "cpu");
    assert_eq!(j["hessian_trace_method"], "exact");
    // The values are those of the library on the same file.
    let case = load_case(&file, None, &Device::Cpu).unwrap();
    let batch = case.batch.unwrap();
    let loss = case.mlp.loss(&batch, case.loss.unwrap()).unwrap();
    assert!((j["loss"].as_f64().unwrap() - loss).abs() < 1e-12 * loss);
    assert_eq!(
        j["n_params"].as_u64().unwrap() as usize,
        case.mlp.params.numel()
    );
    let taylor: Vec<f64> = serde_json::from_value(j["taylor"].clone()).unwrap();
    assert!((taylor[2] - 0.5 * j["vhv"].as_f64().unwrap()).abs() < 1e-10 * taylor[2].abs());
    // The largest eigenvalue bounds vᵀHv for the unit direction.
    assert!(j["vhv"].as_f64().unwrap() <= eig[0] * (1.0 + 1e-9));
    // --dtype f32 computes in f32 and agrees to f32 accuracy.
    let out = eos()
        .arg("probe")
        .arg(&file)
        .args(["--json", "--k", "3", "--seed", "4", "--dtype", "f32"])
        .output()
        .unwrap();
    let j32: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j32["dtype"], "f32");
    let l32 = j32["loss"].as_f64().unwrap();
    assert!((l32 - loss).abs() < 1e-5 * loss);
    let _ = DType::F32;
}

/// `eos probe` of the built-in example (f64, 5 699 parameters) with `extra` flags:
/// the JSON object and stderr.
fn probe_example(extra: &[&str]) -> (serde_json::Value, String) {
    let out = eos()
        .args(["probe", "--json", "--k", "2", "--seed", "3"])
        .args(extra)
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{err}");
    (serde_json::from_slice(&out.stdout).unwrap(), err)
}

#[test]
fn trace_flag_picks_exact_hutchinson_or_none() {
    let (exact, err) = probe_example(&[]);
    assert_eq!(exact["hessian_trace_method"], "exact");
    assert!(exact.get("hessian_trace_stderr").is_none());
    assert!(
        err.contains("exact trace: 5699 HVPs; --trace hutchinson or none is faster")
            && err.contains("exact trace 5699/5699 Hessian-vector products"),
        "{err}"
    );
    let t = exact["hessian_trace"].as_f64().unwrap();
    let (h, err) = probe_example(&["--trace", "hutchinson", "--trace-probes", "2000"]);
    assert_eq!(h["hessian_trace_method"], "hutchinson");
    assert!(
        err.contains("hutchinson 2000/2000") && !err.contains("exact trace"),
        "{err}"
    );
    let est = h["hessian_trace"].as_f64().unwrap();
    let se = h["hessian_trace_stderr"].as_f64().unwrap();
    assert!(
        se > 0.0 && (est - t).abs() < 4.0 * se,
        "{est} ± {se} vs exact {t}"
    );
    assert_eq!(h["top_eigenvalues"], exact["top_eigenvalues"]);
    let (none, err) = probe_example(&["--trace", "none"]);
    assert!(none["hessian_trace"].is_null(), "{none}");
    assert_eq!(none["hessian_trace_method"], "none");
    assert!(none.get("hessian_trace_stderr").is_none());
    assert!(
        !err.contains("Hessian-vector products"),
        "no trace HVPs: {err}"
    );
    assert_eq!(none["top_eigenvalues"], exact["top_eigenvalues"]);
    let out = eos().args(["probe", "--trace", "none"]).output().unwrap();
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("skipped (--trace none)"), "{table}");
}

#[test]
fn bad_input_gives_one_clear_error() {
    let out = eos()
        .args(["probe", "/nonexistent/model.safetensors"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("/nonexistent/model.safetensors") && err.contains("cannot read"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one message: {err}");
    let out = eos().args(["probe", "--device", "tpu"]).output().unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("invalid value 'tpu'") && err.contains("[possible values: auto, cpu, cuda]"),
        "{err}"
    );
    for n in ["0", "1"] {
        let out = eos()
            .args(["probe", "--trace", "hutchinson", "--trace-probes", n])
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(
            err.contains(&format!("invalid value '{n}' for '--trace-probes"))
                && err.contains("must be at least 2"),
            "{err}"
        );
    }
    let out = eos().args(["probe", "--trace", "fast"]).output().unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("[possible values: auto, exact, hutchinson, none]"),
        "{err}"
    );
    let out = eos().args(["bench", "--suite", "huge"]).output().unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("invalid value 'huge'") && err.contains("possible values: small"),
        "{err}"
    );
}

/// The child mode of `eos bench --scaling` (one point, one JSON object with the timings,
/// FLOPs and peak RSS), and its errors.
#[test]
fn bench_scaling_point_prints_one_json_object() {
    let out = eos()
        .args([
            "bench",
            "--scaling",
            "--sweep",
            "n",
            "--point",
            "0",
            "--reps",
            "1",
            "--chunk-size",
            "300",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "exactly one JSON object: {text}");
    let r: eos_benches::suites::ScalingResult = serde_json::from_str(&text).unwrap();
    assert_eq!(r.widths, [784, 512, 512, 10]);
    assert_eq!((r.n, r.chunk_size, r.sweep.as_str()), (1000, 300, "n"));
    assert_eq!(r.data_bytes, 1000 * (784 + 10) * 4);
    for c in [&r.grad, &r.hvp, &r.op] {
        assert_eq!(c.reps, 1);
        assert!(c.secs > 0.0 && c.gflops > 0.0, "{c:?}");
    }
    assert!((r.hvp.gflop - 6.16).abs() < 0.01, "{}", r.hvp.gflop);
    if cfg!(target_os = "linux") {
        assert!(r.hvp.peak_rss_bytes.unwrap() > r.data_bytes);
    }
    let out = eos()
        .args(["bench", "--scaling", "--sweep", "width", "--point", "4"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("--point 4: the sweep has 4 points"));
    let out = eos().args(["bench", "--sweep", "n"]).output().unwrap();
    assert!(!out.status.success(), "--sweep needs --scaling");
}
