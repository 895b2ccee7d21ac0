//! Linear warmup composed with any schedule (Goyal et al. 2017, "Accurate, Large
//! Minibatch SGD", §2.2 gradual warmup):
//!
//! ```text
//! η_t = min(1, (t + 1) / W) · inner(t)
//! ```
//!
//! The inner schedule is evaluated at the absolute step `t` (a cosine over `T` steps
//! wrapped in a warmup of `W` still ends at `T`). Step 0 already moves (`η_0 =
//! inner(0)/W`) and the full rate is reached at `t = W − 1`; `W = 0` is no warmup.
//! Observations and state pass through to the inner schedule.

use super::{wrong_state, Observation, Schedule, ScheduleState};
use crate::Result;

/// Linear warmup over `steps` steps, then (multiplying) `then`.
#[derive(Debug)]
pub struct Warmup {
    steps: u64,
    then: Box<dyn Schedule>,
}

impl Warmup {
    /// Warmup of `steps` steps in front of `then`.
    pub fn new(steps: u64, then: Box<dyn Schedule>) -> Self {
        Self { steps, then }
    }

    /// The warmup factor `min(1, (t + 1) / W)`.
    pub fn factor(&self, step: u64) -> f64 {
        if step >= self.steps {
            1.0
        } else {
            (step + 1) as f64 / self.steps as f64
        }
    }
}

impl Schedule for Warmup {
    fn lr(&self, step: u64) -> f64 {
        self.factor(step) * self.then.lr(step)
    }

    fn observe(&mut self, obs: &Observation) {
        self.then.observe(obs);
    }

    fn needs_observation(&self) -> bool {
        self.then.needs_observation()
    }

    fn state(&self) -> ScheduleState {
        ScheduleState::Warmup {
            then: Box::new(self.then.state()),
        }
    }

    fn load_state(&mut self, state: &ScheduleState) -> Result<()> {
        match state {
            ScheduleState::Warmup { then } => self.then.load_state(then),
            s => wrong_state("warmup", s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::{COverLambda0, Constant, Cosine};

    #[test]
    fn linear_ramp_then_the_inner_schedule() {
        // W = 4 in front of η = 0.1: 0.025, 0.05, 0.075, 0.1, 0.1, …
        let s = Warmup::new(4, Box::new(Constant::new(0.1).unwrap()));
        let got: Vec<f64> = (0..6).map(|t| s.lr(t)).collect();
        let want = [0.025, 0.05, 0.075, 0.1, 0.1, 0.1];
        for (g, w) in got.iter().zip(want) {
            // f64: (t+1)/W · η rounds twice, 1e-15 relative
            assert!((g - w).abs() < 1e-15 * w, "{got:?}");
        }
        // the ramp is linear: equal increments
        assert!(((s.lr(2) - s.lr(1)) - (s.lr(1) - s.lr(0))).abs() < 1e-16);
        // the inner schedule runs on the absolute step
        let c = Warmup::new(10, Box::new(Cosine::new(1.0, 0.0, 100).unwrap()));
        assert_eq!(c.lr(50), Cosine::new(1.0, 0.0, 100).unwrap().lr(50));
        assert!((c.lr(4) - 0.5 * Cosine::new(1.0, 0.0, 100).unwrap().lr(4)).abs() < 1e-16);
        // W = 0: no warmup
        assert_eq!(
            Warmup::new(0, Box::new(Constant::new(0.1).unwrap())).lr(0),
            0.1
        );
    }

    #[test]
    fn observations_and_state_pass_through() {
        let mut s = Warmup::new(2, Box::new(COverLambda0::new(2.0).unwrap()));
        assert!(s.needs_observation() && s.lr(0).is_nan());
        s.observe(&Observation::at(0).with_sharpness(40.0));
        assert_eq!(s.lr(0), 0.5 * 0.05);
        let st = s.state();
        let mut r = Warmup::new(2, Box::new(COverLambda0::new(2.0).unwrap()));
        r.load_state(&st).unwrap();
        assert_eq!(r.lr(5), s.lr(5));
    }
}
