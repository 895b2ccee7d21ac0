//! Ensembles of runs (issue 15, goal 3): E runs trained in lockstep in one process,
//! each a full [`Trainer`] with its own config, η, γ, seed, data stream, probes, run
//! directory and files, their steps computed together.
//!
//! Step t of every active member:
//!
//! ```text
//! B_e,t        member e's minibatch (`Trainer::batch`), computed once per distinct
//!              config-without-learning-rate: members that differ only in η share it
//! L_e, g_e     eos_model::ensemble::loss_and_grad_many: each member's own
//!              `loss_and_grad`, or (`stack`) the MLP members of one shape stacked
//!              along a leading axis (batched matmuls), others alone
//! ‖g_e‖        eos_model::params::norms: the members' gradient norms as interleaved
//!              sums (each bit-identical to a lone `g_e.norm()`)
//! the rest     `Trainer::step_with_norm`: divergence check, probes, optimizer, metrics line
//! ```
//!
//! A member that diverges ends `diverged` at that step while the others go on; one that
//! fails ends as a lone run would (status `interrupted` with the reason); each member
//! checkpoints and ends exactly as [`crate::train`] would. Every member's files equal a
//! lone run's bit for bit (except `time_s` and the timestamps of `meta.json`): the
//! stacked pass repeats the lone pass's operations per member, and everything else is
//! the lone trainer's own code (`tests/ensemble.rs`).

use eos_model::{ensemble, Batch, Loss, Mlp, Model, ParamVec};

use crate::model::TrainModel;
use crate::trainer::{Summary, TrainArgs, Trainer};

/// One member in training: its index in the ensemble, its trainer, its last step.
struct Member {
    index: usize,
    trainer: Trainer,
    stop: u64,
    /// Members with equal keys draw equal minibatches (see [`batch_key`]).
    key: String,
}

/// What a run's minibatches depend on: its `[model]` (θ₀, for the offset of centred
/// models), `[data]` and `[train]` (seeds, batch size, dtype) tables; members with equal
/// keys (e.g. differing only in η) share them. Conservative: a key that does not affect
/// the minibatches only means less sharing.
fn batch_key(t: &Trainer) -> String {
    let text = t.config().to_toml().unwrap_or_default();
    match text.parse::<toml::Table>() {
        Ok(mut table) => {
            table.retain(|k, _| ["model", "data", "train"].contains(&k));
            table.to_string()
        }
        // Never shared.
        Err(_) => format!("{t:p}"),
    }
}

/// Trains the runs of `members` as one ensemble; `stack` computes the gradients in one
/// stacked pass, else each member's alone (same results). `on_done(i, result)` is
/// called as member i ends; the results are returned in member order.
pub fn train_ensemble(
    members: &[TrainArgs],
    stack: bool,
    on_done: &dyn Fn(usize, &crate::Result<Summary>),
) -> Vec<crate::Result<Summary>> {
    let mut results: Vec<Option<crate::Result<Summary>>> = members.iter().map(|_| None).collect();
    let mut active = Vec::new();
    for (index, args) in members.iter().enumerate() {
        match Trainer::open(args) {
            Ok(trainer) if trainer.step >= args.stop_after.unwrap_or(trainer.total) => {
                // Nothing left to do (a resumed run at its end).
                let r = trainer.finish(None);
                on_done(index, &r);
                results[index] = Some(r);
            }
            Ok(trainer) => {
                let stop = args
                    .stop_after
                    .map_or(trainer.total, |k| k.min(trainer.total));
                let key = batch_key(&trainer);
                active.push(Member {
                    index,
                    trainer,
                    stop,
                    key,
                });
            }
            Err(e) => {
                let r = Err(e);
                on_done(index, &r);
                results[index] = Some(r);
            }
        }
    }
    while !active.is_empty() {
        let (go_on, ended) = step_all(active, stack);
        active = go_on;
        for (index, r) in ended {
            on_done(index, &r);
            results[index] = Some(r);
        }
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(crate::Error::Request("member not run".into()))))
        .collect()
}

/// One step of every member; returns the members that go on and the results of those
/// that ended.
fn step_all(
    members: Vec<Member>,
    stack: bool,
) -> (Vec<Member>, Vec<(usize, crate::Result<Summary>)>) {
    let mut go_on = Vec::with_capacity(members.len());
    let mut ended = Vec::new();
    let batches = shared_batches(&members);
    let grads = gradients(&members, &batches, stack);
    let norms = grad_norms(&grads);
    for (((mut m, b), g), n) in members.into_iter().zip(batches).zip(grads).zip(norms) {
        let r = b
            .and_then(|b| g.map(|(l, g)| (b, l, g)))
            .and_then(|(b, l, g)| m.trainer.step_with_norm(b, l, g, n?));
        let r = r.and_then(|div| match div {
            Some(reason) => Ok(Some(reason)),
            None => m
                .trainer
                .after_step(m.stop)
                .map(|end| end.then(String::new)),
        });
        match r {
            Ok(None) => go_on.push(m),
            Ok(Some(reason)) => {
                let diverged = (!reason.is_empty()).then_some(reason);
                ended.push((m.index, m.trainer.finish(diverged)));
            }
            Err(e) => ended.push((m.index, Err(m.trainer.fail(e)))),
        }
    }
    (go_on, ended)
}

/// ‖g‖ of every member's gradient, computed together ([`eos_model::params::norms`]:
/// interleaved sums, each bit-identical to `g.norm()`); members without a gradient get
/// a placeholder they never read.
fn grad_norms(grads: &[Grad]) -> Vec<crate::Result<f64>> {
    let have: Vec<&ParamVec> = grads
        .iter()
        .filter_map(|g| g.as_ref().ok().map(|(_, g)| g))
        .collect();
    let mut found = match eos_model::params::norms(&have) {
        Ok(v) => v.into_iter().map(Ok).collect::<Vec<_>>(),
        Err(e) => {
            let msg = e.to_string();
            let err = |_| Err(crate::Error::Request(format!("gradient norm: {msg}")));
            (0..have.len()).map(err).collect()
        }
    }
    .into_iter();
    grads
        .iter()
        .map(|g| match g {
            Ok(_) => found.next().unwrap_or(Ok(f64::NAN)),
            Err(_) => Ok(f64::NAN),
        })
        .collect()
}

/// Each member's minibatch of its current step, computed once per [`batch_key`].
fn shared_batches(members: &[Member]) -> Vec<crate::Result<Batch>> {
    let mut made: Vec<(&str, u64, Batch)> = Vec::new();
    members
        .iter()
        .map(|m| {
            let t = m.trainer.step;
            if let Some((_, _, b)) = made.iter().find(|(k, s, _)| *k == m.key && *s == t) {
                return Ok(b.clone());
            }
            let b = m.trainer.batch(t)?;
            made.push((&m.key, t, b.clone()));
            Ok(b)
        })
        .collect()
}

type Grad = crate::Result<(f64, ParamVec)>;

/// Loss and gradient of every member on its batch: the MLP members with one loss in one
/// [`ensemble::loss_and_grad_many`] call, the others alone.
fn gradients(members: &[Member], batches: &[crate::Result<Batch>], stack: bool) -> Vec<Grad> {
    let mut out: Vec<Option<Grad>> = members.iter().map(|_| None).collect();
    let mut losses: Vec<Loss> = Vec::new();
    for m in members {
        if !losses.contains(&m.trainer.loss()) {
            losses.push(m.trainer.loss());
        }
    }
    for loss in losses {
        let mut idx = Vec::new();
        let mut pairs: Vec<(&Mlp, &Batch)> = Vec::new();
        for (i, (m, b)) in members.iter().zip(batches).enumerate() {
            match (m.trainer.model(), b) {
                (TrainModel::Mlp(mlp), Ok(b)) if m.trainer.loss() == loss => {
                    idx.push(i);
                    pairs.push((mlp, b));
                }
                _ => {}
            }
        }
        match ensemble::loss_and_grad_many(&pairs, loss, stack) {
            Ok(rs) => {
                for (i, r) in idx.into_iter().zip(rs) {
                    out[i] = Some(Ok(r));
                }
            }
            Err(e) => {
                let msg = e.to_string();
                for i in idx {
                    let e = crate::Error::Request(format!("ensemble pass: {msg}"));
                    out[i] = Some(Err(e));
                }
            }
        }
    }
    out.into_iter()
        .zip(members.iter().zip(batches))
        .map(|(g, (m, b))| match g {
            Some(g) => g,
            None => match b {
                Ok(b) => Ok(m.trainer.model().loss_and_grad(b, m.trainer.loss())?),
                Err(_) => Err(crate::Error::Request("no minibatch".into())),
            },
        })
        .collect()
}
