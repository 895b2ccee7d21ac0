//! The ensemble trainer (`eos_train::ensemble`) against lone runs: an ensemble of
//! richness-sweep-like cells (online SGD of a centred mean-field MLP, f64) with
//! different η, γ and seeds — one of them diverging, one with the sharpness and Taylor
//! probes, one a tanh network the stacked pass does not take — writes, for every member,
//! the metrics lines (without `time_s`), the status, reason and steps of a lone
//! `eos_train::train` of the same config, bit for bit; also with `stack = false`.

use std::sync::Mutex;

use eos_train::ensemble::train_ensemble;
use eos_train::testing::{metrics, TinyCase};
use eos_train::Status;

const CELL: &str = r#"
loss = "mse_mean_all"
[model]
depth = 3
base_width = 16
activation = "relu"
parameterization = { kind = "mean_field", gamma = 1.0 }
[data]
kind = "teacher"
n = 32
input_dim = 4
hidden = [8]
activation = "tanh"
output_dim = 1
online = true
[optim]
kind = "sgd"
lr = 0.1
[train]
steps = 40
batch_size = 8
seed = 0
log_every = 3
dtype = "f64"
"#;

/// (overrides, expected status) of the members.
fn members() -> Vec<(Vec<&'static str>, Status)> {
    vec![
        (vec!["optim.lr=0.1"], Status::Finished),
        // Shares member 0's minibatches (same config but η).
        (vec!["optim.lr=0.03"], Status::Finished),
        (
            vec![
                "optim.lr=0.3",
                "model.parameterization.gamma=10.0",
                "train.seed=1",
            ],
            Status::Finished,
        ),
        (vec!["optim.lr=1e5"], Status::Diverged),
        (
            vec![
                "optim.lr=0.05",
                "model.parameterization.gamma=0.1",
                "probes.sharpness.every=7",
                "probes.taylor.every=5",
            ],
            Status::Finished,
        ),
        (
            vec!["optim.lr=0.05", "model.activation=\"tanh\""],
            Status::Finished,
        ),
    ]
}

#[test]
fn ensemble_members_equal_lone_runs_bit_for_bit() {
    let case = TinyCase::new("ensemble").with_config(CELL);
    let ms = members();
    let lone: Vec<_> = ms
        .iter()
        .enumerate()
        .map(|(i, (set, _))| {
            let dir = case.dir.join(format!("lone{i}"));
            let s = eos_train::train(&case.args(&dir, set)).expect("lone run");
            (dir, s)
        })
        .collect();
    for stack in [true, false] {
        let args: Vec<_> = ms
            .iter()
            .enumerate()
            .map(|(i, (set, _))| case.args(&case.dir.join(format!("ens{stack}{i}")), set))
            .collect();
        let done = Mutex::new(Vec::new());
        let res = train_ensemble(&args, stack, &|i, r| {
            done.lock().unwrap().push((i, r.is_ok()));
        });
        assert_eq!(done.lock().unwrap().len(), ms.len());
        for (i, ((r, (dir, s)), (_, status))) in res.iter().zip(&lone).zip(&ms).enumerate() {
            let r = r.as_ref().expect("member trains");
            assert_eq!(r.status, *status, "member {i}");
            assert_eq!(s.status, *status, "lone {i}");
            assert_eq!((&r.reason, r.steps_done), (&s.reason, s.steps_done));
            assert_eq!(r.last_loss.to_bits(), s.last_loss.to_bits(), "member {i}");
            let (a, b) = (metrics(&r.dir), metrics(dir));
            assert!(a.len() >= 2, "member {i}: {} lines", a.len());
            assert_eq!(a, b, "member {i}, stack = {stack}: metrics differ");
        }
        // The probes ran on their member.
        let m4 = metrics(&res[4].as_ref().unwrap().dir);
        assert!(m4.iter().any(|l| l.get("sharpness").is_some()));
        assert!(m4.iter().any(|l| l.get("taylor").is_some()));
    }
}

/// The step without Δθ (plain SGD, no probe reads the update: θ' written into the fresh
/// gradient's storage) against `Optimizer::step` (forced every step by the norms probe,
/// which reads Δθ): the same trajectory bit for bit — every logged step's loss, gradient
/// norm and lr, and the last loss — for a lone run and for ensemble members.
#[test]
fn step_in_place_equals_the_optimizer_step() {
    let case = TinyCase::new("inplace").with_config(CELL);
    let sets: [&[&str]; 2] = [&["optim.lr=0.1"], &["optim.lr=0.1", "probes.norms.every=1"]];
    let runs: Vec<_> = sets
        .iter()
        .enumerate()
        .map(|(i, set)| {
            let dir = case.dir.join(format!("run{i}"));
            eos_train::train(&case.args(&dir, set)).expect("run")
        })
        .collect();
    let args: Vec<_> = sets
        .iter()
        .enumerate()
        .map(|(i, set)| case.args(&case.dir.join(format!("ens{i}")), set))
        .collect();
    let ens = train_ensemble(&args, false, &|_, _| {});
    let fields = |l: &serde_json::Value| {
        let bits = |k: &str| l[k].as_f64().expect(k).to_bits();
        (
            l["step"].as_u64(),
            bits("loss"),
            bits("grad_norm"),
            bits("lr"),
        )
    };
    let plain = metrics(&runs[0].dir);
    assert!(plain.len() >= 10 && plain.iter().all(|l| l.get("update_norms").is_none()));
    for dir in [
        &runs[1].dir,
        &ens[0].as_ref().unwrap().dir,
        &ens[1].as_ref().unwrap().dir,
    ] {
        let other = metrics(dir);
        for l in &plain {
            let m = other
                .iter()
                .find(|m| m["step"] == l["step"])
                .expect("same step");
            assert_eq!(fields(l), fields(m), "{}", dir.display());
        }
    }
    assert!(metrics(&runs[1].dir)
        .iter()
        .all(|l| l.get("update_norms").is_some()));
    let last = |s: &eos_train::Summary| s.last_loss.to_bits();
    assert_eq!(last(&runs[0]), last(&runs[1]));
    assert_eq!(last(&runs[0]), last(ens[1].as_ref().unwrap()));
}
