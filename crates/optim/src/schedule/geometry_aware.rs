//! Geometry-aware catapult schedule ("MLPs at the EOC", Terjék, arXiv 2502.13110 v1;
//! THEORY.md §6). All of it is **(inferred)** from the abstract; every constant is an
//! option.
//!
//! ```text
//! λ̄_1 = λ_1,    λ̄_k = β λ̄_{k−1} + (1 − β) max(λ_k, 0)      (EMA of the observations)
//! η_t = clamp(c / λ̄, η_min, η_max)                             (keep η λ at c)
//! ```
//!
//! Defaults: target `c = 2.5` ∈ (2, 4) (beyond 2/η: the catapult regime, not the EoS),
//! `β = 0.9`, source = the sharpness λ_max (or the directional sharpness along the
//! update, from the Taylor coefficient c₂, or whichever is present: [`SharpnessSource`]),
//! `η_min = 0`, `η_max` required (there is no width-independent safe maximum).
//! A non-positive observation (a flat or concave direction) enters the EMA as 0, which
//! pushes η towards η_max; non-finite observations are ignored. Before the first
//! observation `η = lr_init` if configured, NaN otherwise
//! ([`Schedule::needs_observation`]).
//!
//! Noise-kernel control (`source = "noise_kernel"`; Agarwala & Pennington 2024, arXiv
//! 2404.19261: "controlling the stochastic edge of stability can help optimization";
//! the rule is **inferred**): `c` is then a target K(η, B) and each observation of the
//! `s_eos` probe's spectrum enters the EMA as the curvature `c/η_K`, η_K = the largest
//! η ≤ η_max with K(η, B) ≤ c (`eos_hessian::s_eos_lr`); with `ema = 0`, η = η_K: K is
//! held at c (below it when η_max binds).

use super::{wrong_state, Observation, Schedule, ScheduleState, SharpnessSource};
use crate::schedule::config::{non_negative, positive};
use crate::{invalid, Result};

/// `η = clamp(c / EMA_β(λ), η_min, η_max)`.
#[derive(Debug, Clone, PartialEq)]
pub struct GeometryAware {
    c: f64,
    ema: f64,
    lr_min: f64,
    lr_max: f64,
    lr_init: Option<f64>,
    source: SharpnessSource,
    lambda: Option<f64>,
    observations: u64,
}

impl GeometryAware {
    /// Errors (naming the key) unless `c > 0`, `ema ∈ [0, 1)`, `0 ≤ lr_min ≤ lr_max`
    /// finite, and `lr_init` (if any) finite and ≥ 0.
    pub fn new(
        c: f64,
        ema: f64,
        lr_min: f64,
        lr_max: f64,
        lr_init: Option<f64>,
        source: SharpnessSource,
    ) -> Result<Self> {
        positive("schedule.c", c)?;
        if !(0.0..1.0).contains(&ema) {
            return invalid("schedule.ema", ema, "a number in [0, 1)");
        }
        non_negative("schedule.lr_min", lr_min)?;
        non_negative("schedule.lr_max", lr_max)?;
        if lr_min > lr_max {
            return invalid(
                "schedule.lr_min",
                lr_min,
                format!("≤ schedule.lr_max = {lr_max}"),
            );
        }
        if let Some(l) = lr_init {
            non_negative("schedule.lr_init", l)?;
        }
        Ok(Self {
            c,
            ema,
            lr_min,
            lr_max,
            lr_init,
            source,
            lambda: None,
            observations: 0,
        })
    }

    /// The smoothed curvature λ̄, once observed.
    pub fn lambda(&self) -> Option<f64> {
        self.lambda
    }
}

impl Schedule for GeometryAware {
    fn lr(&self, _step: u64) -> f64 {
        match self.lambda {
            Some(l) => (self.c / l).clamp(self.lr_min, self.lr_max),
            None => self.lr_init.unwrap_or(f64::NAN),
        }
    }

    fn observe(&mut self, obs: &Observation) {
        let Some(x) = self
            .source
            .pick(obs, self.c, self.lr_max)
            .filter(|x| x.is_finite())
        else {
            return;
        };
        let x = x.max(0.0);
        self.lambda = Some(match self.lambda {
            None => x,
            Some(l) => self.ema * l + (1.0 - self.ema) * x,
        });
        self.observations += 1;
    }

    fn needs_observation(&self) -> bool {
        self.lambda.is_none() && self.lr_init.is_none()
    }

    fn state(&self) -> ScheduleState {
        ScheduleState::GeometryAware {
            lambda: self.lambda,
            observations: self.observations,
        }
    }

    fn load_state(&mut self, state: &ScheduleState) -> Result<()> {
        match state {
            ScheduleState::GeometryAware {
                lambda,
                observations,
            } => {
                (self.lambda, self.observations) = (*lambda, *observations);
                Ok(())
            }
            s => wrong_state("geometry_aware", s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched(source: SharpnessSource) -> GeometryAware {
        GeometryAware::new(2.5, 0.9, 1e-3, 1.0, None, source).unwrap()
    }

    #[test]
    fn converges_to_c_over_lambda_for_constant_observations() {
        let mut s = sched(SharpnessSource::Sharpness);
        assert!(s.needs_observation() && s.lr(0).is_nan());
        // first observation initialises the EMA: η = 2.5/10
        s.observe(&Observation::at(0).with_sharpness(10.0));
        assert_eq!(s.lr(0), 0.25);
        // second: λ̄ = 0.9·10 + 0.1·20 = 11
        s.observe(&Observation::at(1).with_sharpness(20.0));
        assert!((s.lambda().unwrap() - 11.0).abs() < 1e-14);
        // constant λ = 50: λ̄ − 50 = 0.9^k (11 − 50) → 0 (0.9^400 · 39 ≈ 2e-17)
        for t in 2..402 {
            s.observe(&Observation::at(t).with_sharpness(50.0));
        }
        assert!((s.lr(402) - 0.05).abs() < 1e-12, "{}", s.lr(402));
        assert!((s.lr(402) * 50.0 - 2.5).abs() < 1e-10);
        // observations without the chosen source are ignored
        s.observe(&Observation::at(403).with_directional_sharpness(1.0));
        assert!((s.lambda().unwrap() - 50.0).abs() < 1e-10);
    }

    #[test]
    fn respects_the_clamps() {
        let mut s = sched(SharpnessSource::DirectionalSharpness);
        // λ = 1: c/λ = 2.5 > η_max = 1
        s.observe(&Observation::at(0).with_directional_sharpness(1.0));
        assert_eq!(s.lr(0), 1.0);
        // λ = 1e6: 2.5e-6 < η_min = 1e-3
        let mut s = sched(SharpnessSource::Latest);
        s.observe(&Observation::at(0).with_directional_sharpness(1e6));
        assert_eq!(s.lr(0), 1e-3);
        // negative curvature enters as 0: η → η_max
        let mut s = sched(SharpnessSource::DirectionalSharpness);
        s.observe(&Observation::at(0).with_directional_sharpness(-3.0));
        assert_eq!((s.lambda(), s.lr(0)), (Some(0.0), 1.0));
        // lr_init before the first observation
        let s =
            GeometryAware::new(2.5, 0.9, 0.0, 1.0, Some(0.01), SharpnessSource::Sharpness).unwrap();
        assert!(!s.needs_observation());
        assert_eq!(s.lr(0), 0.01);
    }

    #[test]
    fn noise_kernel_control_holds_k_at_the_target() {
        use crate::schedule::NoiseKernelSpectrum;
        // K = (1/8 − 1/1000)·(ηλ₁/(2 − ηλ₁) + η·300/2), λ₁ = 30; η_max = 0.05.
        let spectrum = NoiseKernelSpectrum {
            top: vec![30.0],
            rest_trace: 300.0,
            batch: 8,
            n: 1000,
        };
        let k = |lr: f64| eos_hessian::s_eos_k(&[30.0], 300.0, lr, 8, 1000).unwrap();
        assert!(k(0.05) > 0.5); // the constant rate would sit above the target
        let mut s =
            GeometryAware::new(0.5, 0.0, 0.0, 0.05, None, SharpnessSource::NoiseKernel).unwrap();
        // A sharpness-only observation is ignored: no rate yet.
        s.observe(&Observation::at(0).with_sharpness(30.0));
        assert!(s.needs_observation());
        s.observe(&Observation::at(0).with_noise_kernel(spectrum.clone()));
        let lr = s.lr(0);
        assert!(lr < 0.05 && (k(lr) - 0.5).abs() < 1e-9, "{lr} {}", k(lr));
        // A flatter spectrum whose K stays below 0.5 up to η_max: η = η_max.
        let flat = NoiseKernelSpectrum {
            top: vec![1.0],
            rest_trace: 10.0,
            ..spectrum
        };
        s.observe(&Observation::at(10).with_noise_kernel(flat));
        assert!((s.lr(10) - 0.05).abs() < 1e-15, "{}", s.lr(10));
    }

    #[test]
    fn validation_and_state() {
        let e = GeometryAware::new(2.5, 1.0, 0.0, 1.0, None, SharpnessSource::Sharpness)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("schedule.ema: got 1"), "{e}");
        let e = GeometryAware::new(2.5, 0.9, 2.0, 1.0, None, SharpnessSource::Sharpness)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("schedule.lr_min: got 2; expected ≤ schedule.lr_max = 1"),
            "{e}"
        );
        let mut s = sched(SharpnessSource::Sharpness);
        for (t, l) in [3.7, 12.1, 8.9].into_iter().enumerate() {
            s.observe(&Observation::at(t as u64).with_sharpness(l));
        }
        let mut r = sched(SharpnessSource::Sharpness);
        r.load_state(&s.state()).unwrap();
        for t in 3..6 {
            s.observe(&Observation::at(t).with_sharpness(5.0 + t as f64));
            r.observe(&Observation::at(t).with_sharpness(5.0 + t as f64));
        }
        assert_eq!(r.lr(6).to_bits(), s.lr(6).to_bits());
        assert_eq!(r.state(), s.state());
    }
}
