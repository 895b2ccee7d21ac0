//! `cohen-eos`: progressive sharpening and the edge of stability under full-batch GD
//! (Cohen et al., ICLR 2021, arXiv 2103.00065; THEORY.md §1).
//!
//! Config `experiments/cohen-eos/fashion-mnist.toml`, one run per η, the loss logged
//! at every step. Reduced: the first 1 000 images, 1 200 steps; full: 5 000 images
//! (Cohen et al.'s size), 4 000 steps; the 2/η of each are in [`Settings`]
//! (`experiments/cohen-eos/{reduced,full}.toml`), chosen from
//! the measured sharpness at step 0 (λ₀, docs/reproductions.md) so that every run
//! that gates sharpening starts below the EoS with a margin: λ₀ ≤ [`MARGIN`] · 2/η.
//!
//! Per η, with λ_t the sharpness probes:
//! - the *EoS phase* starts at the first probe, after the lowest λ of the run's first
//!   half, with λ ≥ 0.95 · 2/η;
//! - progressive sharpening (runs with `sharpen`): λ₀ ≤ [`MARGIN`] · 2/η (the
//!   precondition, a check that can fail) and λ_onset / λ_min ≥ [`RISE_MIN`];
//! - edge of stability: the median λ over the EoS phase within ±[`EOS_BAND`] of 2/η;
//! - non-monotone loss: the fraction of EoS-phase steps t with L_{t+1} > L_t is at
//!   least [`RISE_FRAC_MIN`], and the mean loss over the last tenth of the run is
//!   below its value at the onset.

use super::{fmt, median, Check, Ctx, Result, Run};
use eos_report::plot::{Figure, Style};
use eos_train::Status;
use serde::Deserialize;

const SOURCE: &str = "Cohen et al. 2021, Fig. 1-2; THEORY.md §1";

/// A run gates sharpening only if it starts with λ₀ ≤ MARGIN · 2/η (committed
/// 2026-12-07 before the runs that test it).
pub const MARGIN: f64 = 0.8;
/// λ_onset / λ_min at least this (same commit).
pub const RISE_MIN: f64 = 1.15;
/// The median λ over the EoS phase within ±EOS_BAND of 2/η.
pub const EOS_BAND: f64 = 0.10;
/// At least this fraction of the EoS-phase steps raise the loss (same commit).
pub const RISE_FRAC_MIN: f64 = 0.05;

/// What one η's run shows.
#[derive(Debug, Clone, PartialEq)]
pub struct EosPhase {
    /// The step the EoS phase starts (None: 2/η never reached).
    pub onset: Option<f64>,
    pub lambda0: f64,
    pub lambda_min: f64,
    pub lambda_onset: f64,
    pub median: f64,
    /// Logged steps in the EoS phase where the loss rose.
    pub loss_rises: usize,
    /// `loss_rises` over the number of consecutive logged pairs in the EoS phase.
    pub rise_frac: f64,
    pub loss_onset: f64,
    pub loss_final: f64,
}

/// Reads the EoS phase from the sharpness and loss series (module docs).
pub fn eos_phase(sharp: &[(f64, f64)], loss: &[(f64, f64)], two: f64) -> EosPhase {
    let half = sharp.len().div_ceil(2).max(1).min(sharp.len());
    let i_min = sharp[..half]
        .iter()
        .enumerate()
        .min_by(|a, b| a.1 .1.total_cmp(&b.1 .1))
        .map_or(0, |(i, _)| i);
    let lambda_min = sharp.get(i_min).map_or(f64::NAN, |p| p.1);
    let on = (i_min..sharp.len()).find(|&i| sharp[i].1 >= 0.95 * two);
    let mut out = EosPhase {
        onset: None,
        lambda0: sharp.first().map_or(f64::NAN, |p| p.1),
        lambda_min,
        lambda_onset: f64::NAN,
        median: f64::NAN,
        loss_rises: 0,
        rise_frac: f64::NAN,
        loss_onset: f64::NAN,
        loss_final: f64::NAN,
    };
    let Some(on) = on else { return out };
    let t0 = sharp[on].0;
    out.onset = Some(t0);
    out.lambda_onset = sharp[on].1;
    out.median = median(sharp[on..].iter().map(|p| p.1));
    let tail: Vec<f64> = loss.iter().filter(|p| p.0 >= t0).map(|p| p.1).collect();
    out.loss_rises = tail.windows(2).filter(|w| w[1] > w[0]).count();
    out.rise_frac = out.loss_rises as f64 / tail.len().saturating_sub(1).max(1) as f64;
    out.loss_onset = tail.first().copied().unwrap_or(f64::NAN);
    let k = loss.len().div_ceil(10).max(1);
    out.loss_final = loss[loss.len().saturating_sub(k)..]
        .iter()
        .map(|p| p.1)
        .sum::<f64>()
        / k as f64;
    out
}

/// One η of the plan: 2/η and whether the run gates progressive sharpening.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Eta {
    pub two: f64,
    pub sharpen: bool,
}

/// The settings of each version, read from `experiments/cohen-eos/{reduced,full}.toml`
/// (issue 11: data, not `--set` strings in the code); an absent key keeps the config
/// file's value.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// One run per η, in this order.
    pub etas: Vec<Eta>,
    /// Training images (`data.n`; the config: Cohen et al.'s 5 000).
    pub n: Option<usize>,
    /// Steps (`train.steps`; the config: 4 000).
    pub steps: Option<u64>,
    /// Test-set evaluation period (`probes.eval.every`; 0: none).
    pub eval_every: Option<u64>,
}

impl Settings {
    /// The config overrides of the run at `eta`: the loss logged at every step.
    pub fn overrides(&self, eta: Eta) -> Vec<String> {
        let mut s = Vec::new();
        if let Some(n) = self.n {
            s.push(format!("data.n={n}"));
        }
        if let Some(t) = self.steps {
            s.push(format!("train.steps={t}"));
        }
        s.push("train.log_every=1".into());
        if let Some(e) = self.eval_every {
            s.push(format!("probes.eval.every={e}"));
        }
        s.push(format!("optim.lr={}", 2.0 / eta.two));
        s
    }
}

/// What one η's run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    pub eta: Eta,
    pub status: Status,
    pub phase: EosPhase,
}

/// What the runs measured, one entry per η in the order of the settings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Measurements {
    pub runs: Vec<Measured>,
}

/// The checks of every run: a pure function of the measurements (module docs).
pub fn checks(m: &Measurements) -> Vec<Check> {
    m.runs
        .iter()
        .flat_map(|r| {
            let finished = r.status == Status::Finished;
            eta_checks(r.eta, finished, &r.status.to_string(), &r.phase)
        })
        .collect()
}

/// The checks of one η's run (module docs); `finished`: the run's status.
pub fn eta_checks(eta: Eta, finished: bool, status: &str, p: &EosPhase) -> Vec<Check> {
    let two = eta.two;
    let tag = format!("2/η = {two}");
    let mut out = vec![
        Check::holds(
            format!("{tag}: run finished"),
            finished,
            status,
            "finished",
            SOURCE,
        ),
        Check::holds(
            format!("{tag}: λ_max reaches 0.95·2/η"),
            p.onset.is_some(),
            p.onset.map_or("never".into(), |t| format!("at step {t}")),
            "yes",
            SOURCE,
        ),
    ];
    if eta.sharpen {
        out.push(Check::holds(
            format!("{tag}: starts below the EoS, λ₀/(2/η)"),
            p.lambda0 <= MARGIN * two,
            fmt(p.lambda0 / two),
            format!("≤ {MARGIN}"),
            SOURCE,
        ));
        let rise = p.lambda_onset / p.lambda_min;
        out.push(Check::holds(
            format!("{tag}: progressive sharpening λ_onset/λ_min"),
            rise >= RISE_MIN,
            format!(
                "{} (λ₀ {}, λ_min {})",
                fmt(rise),
                fmt(p.lambda0),
                fmt(p.lambda_min)
            ),
            format!("≥ {RISE_MIN}"),
            SOURCE,
        ));
    }
    out.push(Check::within(
        format!("{tag}: median λ_max over the EoS phase"),
        p.median,
        (1.0 - EOS_BAND) * two,
        (1.0 + EOS_BAND) * two,
        SOURCE,
    ));
    out.push(Check::holds(
        format!("{tag}: loss non-monotone yet decreasing in the EoS phase"),
        p.rise_frac >= RISE_FRAC_MIN && p.loss_final < p.loss_onset,
        format!(
            "rises on {} of steps ({}); {} → {}",
            fmt(p.rise_frac),
            p.loss_rises,
            fmt(p.loss_onset),
            fmt(p.loss_final)
        ),
        format!("≥ {RISE_FRAC_MIN}; final < onset"),
        SOURCE,
    ));
    out
}

pub fn run(ctx: &Ctx) -> Result<Vec<Check>> {
    let set: Settings = ctx.settings()?;
    let mut measured = Measurements::default();
    let mut sharp_fig =
        Figure::new("cohen-eos: sharpness under full-batch GD (Fashion-MNIST, fc-tanh)")
            .x_label("step")
            .y_label("λ_max");
    let mut loss_fig = Figure::new("cohen-eos: training loss")
        .x_label("step")
        .y_label("loss")
        .y_log();
    for &eta in &set.etas {
        let two = eta.two;
        let s = set.overrides(eta);
        let run: Run = ctx.train(&format!("eta-2over{two}"), "fashion-mnist.toml", &s)?;
        let sharp = run.series("sharpness");
        let loss = run.series("loss");
        let phase = eos_phase(&sharp, &loss, two);
        measured.runs.push(Measured {
            eta,
            status: run.status,
            phase,
        });
        sharp_fig
            .add(format!("η = 2/{two}"), sharp, Style::Line)
            .add(
                format!("2/η = {two}"),
                run.series("two_over_lr"),
                Style::Dashed,
            );
        loss_fig.add(format!("η = 2/{two}"), loss, Style::Line);
    }
    ctx.save(&sharp_fig, "sharpness")?;
    ctx.save(&loss_fig, "loss")?;
    Ok(checks(&measured))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phase_of_a_synthetic_run() {
        // Drop 60 → 30, rise to 50 = 2/η by t = 40, hover; loss rises at t = 50.
        let sharp: Vec<(f64, f64)> = [60.0, 30.0, 35.0, 42.0, 49.0, 51.0, 49.5, 50.5, 50.0]
            .iter()
            .enumerate()
            .map(|(i, &v)| (10.0 * i as f64, v))
            .collect();
        let loss: Vec<(f64, f64)> = [1.0, 0.5, 0.4, 0.3, 0.25, 0.3, 0.2, 0.18, 0.1]
            .iter()
            .enumerate()
            .map(|(i, &v)| (10.0 * i as f64, v))
            .collect();
        let p = eos_phase(&sharp, &loss, 50.0);
        assert_eq!(p.onset, Some(40.0));
        assert_eq!(p.lambda_min, 30.0);
        assert_eq!(p.lambda_onset, 49.0);
        assert_eq!(p.median, 50.0);
        assert_eq!(p.loss_rises, 1);
        assert_eq!(p.lambda0, 60.0);
        // 0.25, 0.3, 0.2, 0.18, 0.1: one rise in four steps.
        assert_eq!(p.rise_frac, 0.25);
        assert_eq!((p.loss_onset, p.loss_final), (0.25, 0.1));
        // 2/η never reached.
        assert_eq!(eos_phase(&sharp, &loss, 80.0).onset, None);
    }

    fn phase(lambda0: f64, lambda_min: f64, rise_frac: f64) -> EosPhase {
        EosPhase {
            onset: Some(100.0),
            lambda0,
            lambda_min,
            lambda_onset: 48.0,
            median: 51.0,
            loss_rises: 10,
            rise_frac,
            loss_onset: 0.2,
            loss_final: 0.1,
        }
    }

    #[test]
    fn settings_give_the_overrides_of_each_version() {
        let reduced: Settings = crate::settings::of("cohen-eos", false);
        let e = |two, sharpen| Eta { two, sharpen };
        assert_eq!(
            reduced,
            Settings {
                etas: vec![e(40.0, true), e(70.0, true)],
                n: Some(1000),
                steps: Some(1200),
                eval_every: Some(0),
            }
        );
        assert_eq!(reduced.etas.len(), 2);
        assert_eq!(
            reduced.overrides(reduced.etas[1]),
            [
                "data.n=1000",
                "train.steps=1200",
                "train.log_every=1",
                "probes.eval.every=0",
                "optim.lr=0.02857142857142857",
            ]
        );
        let full: Settings = crate::settings::of("cohen-eos", true);
        assert_eq!(
            full.etas,
            [e(30.0, false), e(50.0, true), e(70.0, true), e(90.0, true)]
        );
        assert_eq!((full.n, full.steps, full.eval_every), (None, None, None));
        assert_eq!(full.etas.iter().filter(|e| e.sharpen).count(), 3);
        assert_eq!(
            full.overrides(full.etas[0]),
            ["train.log_every=1", "optim.lr=0.06666666666666667"]
        );
    }

    #[test]
    fn checks_gate_margin_rise_and_fraction() {
        let eta = Eta {
            two: 50.0,
            sharpen: true,
        };
        let pass = |p: &EosPhase| eta_checks(eta, true, "finished", p).iter().all(|c| c.pass);
        assert!(pass(&phase(30.0, 29.0, 0.3)));
        // λ₀ = 45 > 0.8 · 50: the precondition fails.
        assert!(!pass(&phase(45.0, 40.0, 0.3)));
        // λ_onset/λ_min = 48/43 < 1.15.
        assert!(!pass(&phase(40.0, 43.0, 0.3)));
        // the loss rises on 2 % of the EoS steps only.
        assert!(!pass(&phase(30.0, 29.0, 0.02)));
        // without `sharpen` the start above the EoS is not a check.
        let eos_only = Eta {
            two: 50.0,
            sharpen: false,
        };
        let c = eta_checks(eos_only, true, "finished", &phase(45.0, 40.0, 0.3));
        assert_eq!(c.len(), 4);
        assert!(c.iter().all(|c| c.pass));
    }

    #[test]
    fn checks_of_hand_made_measurements() {
        let e = |two, sharpen| Eta { two, sharpen };
        let run = |eta, status, phase| Measured { eta, status, phase };
        let m = Measurements {
            runs: vec![
                // 2/η = 50: passes every check (6 with `sharpen`).
                run(e(50.0, true), Status::Finished, phase(30.0, 29.0, 0.3)),
                // EoS only (4 checks); diverged, and 2/η = 80 is never reached.
                run(
                    e(80.0, false),
                    Status::Diverged,
                    EosPhase {
                        onset: None,
                        ..phase(30.0, 29.0, 0.3)
                    },
                ),
            ],
        };
        let c = checks(&m);
        assert_eq!(c.len(), 10);
        assert!(c[..6].iter().all(|c| c.pass), "{c:?}");
        assert!(c[0].what.starts_with("2/η = 50: run finished"));
        assert_eq!((c[6].pass, c[6].measured.as_str()), (false, "diverged"));
        assert_eq!((c[7].pass, c[7].measured.as_str()), (false, "never"));
        // The median λ 51 is outside 80 ± 10 %; the loss checks hold.
        assert!(!c[8].pass && c[9].pass);
        assert!(checks(&Measurements::default()).is_empty());
    }
}
