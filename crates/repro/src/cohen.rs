//! `cohen-eos`: progressive sharpening and the edge of stability under full-batch GD
//! (Cohen et al., ICLR 2021; THEORY.md §1).
//!
//! Config `experiments/cohen-eos/fashion-mnist.toml`, one run per η. Reduced: the
//! first 1 000 images, 2/η ∈ {40, 70}, 1 200 steps. Full: 5 000 images (Cohen et
//! al.'s size), 2/η ∈ {30, 50, 70, 90}, 4 000 steps.
//!
//! Per η, with λ_t the sharpness probes:
//! - the *EoS phase* starts at the first probe, after the lowest λ of the run's first
//!   half, with λ ≥ 0.95 · 2/η;
//! - progressive sharpening: λ at that onset ≥ 1.05 × the lowest λ before it
//!   (informative only when λ at step 0 is already ≥ 0.95 · 2/η: such a run drops to
//!   the EoS at once and has no sharpening phase — at n = 5 000 λ₀ ≈ 68, so the full
//!   version's 2/η = 30 and 50 start above the EoS);
//! - edge of stability: the median λ over the EoS phase within ±10 % of 2/η;
//! - the loss in the EoS phase rises at some logged steps (non-monotone), yet its
//!   mean over the last tenth of the run is below its value at the onset.

use super::{fmt, median, Check, Ctx, Run};
use eos_report::plot::{Figure, Series, Style};
use eos_train::Status;

const SOURCE: &str = "Cohen et al. 2021, Fig. 1-2; THEORY.md §1";

/// What one η's run shows.
#[derive(Debug, Clone, PartialEq)]
pub struct EosPhase {
    /// The step the EoS phase starts (None: 2/η never reached).
    pub onset: Option<f64>,
    pub lambda_min: f64,
    pub lambda_onset: f64,
    pub median: f64,
    /// Logged steps in the EoS phase where the loss rose.
    pub loss_rises: usize,
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
        lambda_min,
        lambda_onset: f64::NAN,
        median: f64::NAN,
        loss_rises: 0,
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
    out.loss_onset = tail.first().copied().unwrap_or(f64::NAN);
    let k = loss.len().div_ceil(10).max(1);
    out.loss_final = loss[loss.len().saturating_sub(k)..]
        .iter()
        .map(|p| p.1)
        .sum::<f64>()
        / k as f64;
    out
}

pub fn run(ctx: &Ctx) -> anyhow::Result<Vec<Check>> {
    let (twos, set): (&[f64], Vec<String>) = if ctx.full {
        (&[30.0, 50.0, 70.0, 90.0], vec![])
    } else {
        (
            &[40.0, 70.0],
            vec![
                "data.n=1000".into(),
                "train.steps=1200".into(),
                "probes.eval.every=0".into(),
            ],
        )
    };
    let mut checks = Vec::new();
    let mut sharp_fig = Figure {
        title: "cohen-eos: sharpness under full-batch GD (Fashion-MNIST, fc-tanh)".into(),
        x_label: "step".into(),
        y_label: "λ_max".into(),
        ..Figure::default()
    };
    let mut loss_fig = Figure {
        title: "cohen-eos: training loss".into(),
        x_label: "step".into(),
        y_label: "loss".into(),
        log_y: true,
        ..Figure::default()
    };
    for &two in twos {
        let lr = 2.0 / two;
        let mut s = set.clone();
        s.push(format!("optim.lr={lr}"));
        let run: Run = ctx.train(&format!("eta-2over{two}"), "fashion-mnist.toml", &s)?;
        let sharp = run.series("sharpness");
        let loss = run.series("loss");
        let p = eos_phase(&sharp, &loss, two);
        let tag = format!("2/η = {two}");
        checks.push(Check::holds(
            format!("{tag}: run finished"),
            run.status == Status::Finished,
            run.status.to_string(),
            "finished",
            SOURCE,
        ));
        checks.push(Check::holds(
            format!("{tag}: λ_max reaches 0.95·2/η"),
            p.onset.is_some(),
            p.onset.map_or("never".into(), |t| format!("at step {t}")),
            "yes",
            SOURCE,
        ));
        let rise = p.lambda_onset / p.lambda_min;
        let lambda0 = sharp.first().map_or(f64::NAN, |p| p.1);
        let sharpening = Check::holds(
            format!("{tag}: progressive sharpening λ_onset/λ_min"),
            rise >= 1.05,
            format!("{} (λ at step 0: {})", fmt(rise), fmt(lambda0)),
            "≥ 1.05",
            SOURCE,
        );
        // A run that starts at or above 2/η falls to the EoS at once: it has no
        // sharpening phase to measure (informative only).
        checks.push(if lambda0 >= 0.95 * two {
            sharpening.informative()
        } else {
            sharpening
        });
        checks.push(Check::within(
            format!("{tag}: median λ_max over the EoS phase"),
            p.median,
            0.9 * two,
            1.1 * two,
            SOURCE,
        ));
        checks.push(Check::holds(
            format!("{tag}: loss non-monotone yet decreasing in the EoS phase"),
            p.loss_rises > 0 && p.loss_final < p.loss_onset,
            format!(
                "{} rises; {} → {}",
                p.loss_rises,
                fmt(p.loss_onset),
                fmt(p.loss_final)
            ),
            "> 0 rises; final < onset",
            SOURCE,
        ));
        sharp_fig
            .series
            .push(Series::new(format!("η = 2/{two}"), sharp, Style::Line));
        sharp_fig.series.push(Series::new(
            format!("2/η = {two}"),
            run.series("two_over_lr"),
            Style::Dashed,
        ));
        loss_fig
            .series
            .push(Series::new(format!("η = 2/{two}"), loss, Style::Line));
    }
    ctx.save(&sharp_fig, "sharpness")?;
    ctx.save(&loss_fig, "loss")?;
    Ok(checks)
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
        assert_eq!((p.loss_onset, p.loss_final), (0.25, 0.1));
        // 2/η never reached.
        assert_eq!(eos_phase(&sharp, &loss, 80.0).onset, None);
    }
}
