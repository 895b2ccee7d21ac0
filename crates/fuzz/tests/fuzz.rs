//! The fuzz targets in the test suite: a short seeded run of every target finds no
//! failure and exercises both the accepting and the rejecting paths of each reader;
//! valid inputs are accepted; inputs are a function of (seed, target, index); the
//! driver catches panics, invalid results and allocations over the soft bound, stops
//! the process on a hang or an allocation over the hard limit, and saves the inputs.

use std::path::PathBuf;
use std::time::Duration;

use eos_fuzz::driver::{generate, input_rng};
use eos_fuzz::{run_target, Config, Outcome, Target, TARGETS};

fn config(iters: u64, dir: &str) -> Config {
    Config {
        iters,
        from: 0,
        seed: 20_261_207,
        time_limit: Duration::from_secs(10),
        max_time: None,
        save_dir: std::env::temp_dir().join(format!("eos-fuzz-test-{dir}-{}", std::process::id())),
        max_failures: 10,
    }
}

#[test]
fn every_target_survives_a_short_run_and_both_paths_are_taken() {
    for t in &TARGETS {
        let r = run_target(t, &config(3000, t.name));
        assert!(r.failures.is_empty(), "{}: {:?}", t.name, r.failures);
        assert_eq!(r.inputs, 3000, "{}", t.name);
        assert_eq!(r.accepted + r.rejected, 3000, "{}", t.name);
        // At least 5 % of each: the mutator reaches both the readers' error paths and
        // their success paths.
        assert!(
            r.accepted >= 150,
            "{}: only {} accepted",
            t.name,
            r.accepted
        );
        assert!(
            r.rejected >= 150,
            "{}: only {} rejected",
            t.name,
            r.rejected
        );
    }
}

#[test]
fn valid_inputs_are_accepted() {
    for t in &TARGETS {
        for i in 0..200 {
            let input = (t.valid)(&mut input_rng(5, t.name, i));
            let got = (t.run)(&input);
            assert!(
                matches!(got, Ok(Outcome::Accepted(_))),
                "{} valid input {i} ({} bytes): {got:?}",
                t.name,
                input.len()
            );
        }
    }
}

#[test]
fn inputs_are_a_function_of_seed_target_and_index() {
    for t in &TARGETS {
        assert_eq!(generate(t, 3, 17), generate(t, 3, 17), "{}", t.name);
        let distinct = (0..20)
            .map(|i| generate(t, 3, i))
            .collect::<std::collections::HashSet<_>>()
            .len();
        assert!(
            distinct >= 18,
            "{}: {distinct} distinct inputs of 20",
            t.name
        );
        assert_ne!(generate(t, 3, 17), generate(t, 4, 17), "{}", t.name);
    }
}

/// A target that panics on inputs starting with 1, returns an invalid result on 2,
/// allocates 64 MiB on 3, accepts 0 and rejects the rest.
fn faulty(input: &[u8]) -> Result<Outcome, String> {
    match input.first() {
        Some(0) => Ok(Outcome::Accepted(0)),
        Some(1) => panic!("planted panic"),
        Some(2) => Err("planted invalid result".into()),
        Some(3) => {
            // black_box: without it, an optimised build may elide the allocation.
            let v = std::hint::black_box(vec![1u8; 64 << 20]);
            Ok(Outcome::Accepted(usize::from(v[0])))
        }
        _ => Ok(Outcome::Rejected),
    }
}

static FAULTY: Target = Target {
    name: "faulty",
    about: "test target",
    generate: |rng| vec![rand::Rng::random_range(rng, 0..6u8)],
    valid: |_| vec![0],
    run: faulty,
    effective_len: <[u8]>::len,
    extra_base: 0,
};

#[test]
fn panics_invalid_results_and_big_allocations_are_reported_and_saved() {
    let cfg = Config {
        max_failures: 1000,
        ..config(300, "faulty")
    };
    let r = run_target(&FAULTY, &cfg);
    let first = |i: u64| generate(&FAULTY, cfg.seed, i)[0];
    let expect = |b: u8| (0..300).filter(|&i| first(i) == b).count();
    assert_eq!(r.accepted as usize, expect(0));
    assert_eq!(r.rejected as usize, expect(4) + expect(5));
    assert_eq!(r.failures.len(), expect(1) + expect(2) + expect(3));
    for f in &r.failures {
        let kind = first(f.index);
        let want = [
            "",
            "panic: planted panic",
            "invalid result: planted",
            "allocation: peak",
        ][kind as usize];
        assert!(
            f.message.starts_with(want),
            "input {} ({kind}): {}",
            f.index,
            f.message
        );
        let saved: &PathBuf = f.saved.as_ref().expect("saved");
        assert_eq!(std::fs::read(saved).expect("saved input"), vec![kind]);
    }
    std::fs::remove_dir_all(&cfg.save_dir).ok();
}

/// A target that hangs on inputs starting with 1 and asks for 4 GiB on 2.
fn stuck(input: &[u8]) -> Result<Outcome, String> {
    match input.first() {
        Some(1) => loop {
            std::thread::sleep(Duration::from_millis(10));
        },
        Some(2) => {
            // black_box: without it, an optimised build may elide the allocation.
            let v: Vec<u8> = std::hint::black_box(Vec::with_capacity(4 << 30));
            Ok(Outcome::Accepted(v.capacity()))
        }
        _ => Ok(Outcome::Rejected),
    }
}

/// A target whose inputs are `which` (1 = hang, 2 = huge allocation) a quarter of the
/// time, else 0.
fn stuck_target(which: u8) -> &'static Target {
    let generate: fn(&mut rand_chacha::ChaCha8Rng) -> Vec<u8> = if which == 1 {
        |rng| vec![u8::from(rand::Rng::random_range(rng, 0..4u8) == 3)]
    } else {
        |rng| vec![2 * u8::from(rand::Rng::random_range(rng, 0..4u8) == 3)]
    };
    Box::leak(Box::new(Target {
        name: "stuck",
        about: "test target",
        generate,
        valid: |_| vec![0],
        run: stuck,
        effective_len: <[u8]>::len,
        extra_base: 0,
    }))
}

/// Run in a child process by `hangs_and_huge_allocations_stop_the_process`.
#[test]
#[ignore = "run as a child process by the test below"]
fn child_stuck_run() {
    let which: u8 = std::env::var("EOS_FUZZ_CHILD").map_or(0, |v| v.parse().unwrap_or(0));
    let cfg = Config {
        time_limit: Duration::from_millis(200),
        ..config(1000, "stuck")
    };
    run_target(stuck_target(which), &cfg);
}

#[test]
fn hangs_and_huge_allocations_stop_the_process_with_a_report() {
    for (which, code, report) in [
        (1u8, Some(3), "HANG: target stuck seed 20261207 input #"),
        (
            2,
            None,
            "ALLOCATION BEYOND BOUND: a request of 4294967296 bytes",
        ),
    ] {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--ignored", "--exact", "child_stuck_run", "--nocapture"])
            .env("EOS_FUZZ_CHILD", which.to_string())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        if code.is_some() {
            assert_eq!(out.status.code(), code, "{stderr}");
        }
        assert!(stderr.contains(report), "{stderr}");
        // The message names the saved input, which holds the offending byte.
        let saved = stderr
            .split("input saved to ")
            .nth(1)
            .and_then(|s| s.split(';').next())
            .unwrap_or_else(|| panic!("no saved path in {stderr}"));
        assert_eq!(std::fs::read(saved).unwrap(), vec![which]);
        std::fs::remove_file(saved).ok();
    }
}
