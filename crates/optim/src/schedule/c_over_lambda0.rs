//! `η = c / λ₀` (Kalra & Barkeshli, NeurIPS 2023, "Phase diversity and universality
//! of early training dynamics"; Lewkowycz et al. 2020 for the catapult phases):
//!
//! ```text
//! η_t = c / λ₀,     λ₀ = the sharpness λ_max at initialisation
//! ```
//!
//! `c < 2`: lazy (monotone loss); `2 < c < 4`: catapult for the two-layer linear model
//! (≈ 12 for deep ReLU nets); above: divergence (THEORY.md §2).
//!
//! λ₀ is the `sharpness` of the **first** observation that carries a finite,
//! positive one (the runner measures it at step 0, before the first update); later
//! observations and directional sharpness are ignored. Until then `lr` is NaN and
//! [`Schedule::needs_observation`] is true, so an optimizer step fails loudly rather
//! than training with an undefined rate.

use super::{wrong_state, Observation, Schedule, ScheduleState};
use crate::schedule::config::positive;
use crate::Result;

/// `η = c / λ₀`.
#[derive(Debug, Clone, PartialEq)]
pub struct COverLambda0 {
    c: f64,
    lambda0: Option<f64>,
}

impl COverLambda0 {
    /// Errors unless `c` is finite and > 0.
    pub fn new(c: f64) -> Result<Self> {
        Ok(Self {
            c: positive("schedule.c", c)?,
            lambda0: None,
        })
    }

    /// λ₀, once observed.
    pub fn lambda0(&self) -> Option<f64> {
        self.lambda0
    }
}

impl Schedule for COverLambda0 {
    fn lr(&self, _step: u64) -> f64 {
        self.lambda0.map_or(f64::NAN, |l| self.c / l)
    }

    fn observe(&mut self, obs: &Observation) {
        if self.lambda0.is_none() {
            if let Some(l) = obs.sharpness.filter(|l| l.is_finite() && *l > 0.0) {
                self.lambda0 = Some(l);
            }
        }
    }

    fn needs_observation(&self) -> bool {
        self.lambda0.is_none()
    }

    fn state(&self) -> ScheduleState {
        ScheduleState::COverLambda0 {
            lambda0: self.lambda0,
        }
    }

    fn load_state(&mut self, state: &ScheduleState) -> Result<()> {
        match state {
            ScheduleState::COverLambda0 { lambda0 } => {
                self.lambda0 = *lambda0;
                Ok(())
            }
            s => wrong_state("c_over_lambda0", s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uses_the_first_sharpness_observation() {
        let mut s = COverLambda0::new(2.0).unwrap();
        assert!(s.needs_observation());
        assert!(s.lr(0).is_nan());
        // no sharpness (only directional), or an unusable one: still waiting
        s.observe(&Observation::at(0).with_directional_sharpness(5.0));
        s.observe(&Observation::at(0).with_sharpness(f64::NAN));
        s.observe(&Observation::at(0).with_sharpness(-1.0));
        assert!(s.lr(0).is_nan());
        s.observe(&Observation::at(0).with_sharpness(40.0));
        assert!(!s.needs_observation());
        assert_eq!(s.lr(0), 0.05);
        // later observations do not move it
        s.observe(&Observation::at(10).with_sharpness(80.0));
        assert_eq!((s.lr(10), s.lambda0()), (0.05, Some(40.0)));
    }

    #[test]
    fn state_round_trips() {
        let mut s = COverLambda0::new(3.0).unwrap();
        s.observe(&Observation::at(0).with_sharpness(0.1 + 0.2));
        let mut r = COverLambda0::new(3.0).unwrap();
        r.load_state(&s.state()).unwrap();
        assert_eq!(r.lr(7).to_bits(), s.lr(7).to_bits());
        assert!(r.load_state(&ScheduleState::Stateless {}).is_err());
    }
}
