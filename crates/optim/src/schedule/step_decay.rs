//! Step decay (PyTorch's `StepLR`): the rate is multiplied by `f` every `k` steps.
//!
//! ```text
//! η_t = η · f^{⌊t / k⌋}
//! ```

use super::Schedule;
use crate::schedule::config::{non_negative, positive};
use crate::{invalid, Result};

/// `η · factor^{⌊t / every⌋}`.
#[derive(Debug, Clone, PartialEq)]
pub struct StepDecay {
    lr: f64,
    every: u64,
    factor: f64,
}

impl StepDecay {
    /// Errors unless `lr ≥ 0`, `factor > 0` are finite and `every ≥ 1`.
    pub fn new(lr: f64, every: u64, factor: f64) -> Result<Self> {
        non_negative("schedule.lr", lr)?;
        positive("schedule.factor", factor)?;
        if every == 0 {
            return invalid("schedule.every", 0, "a number of steps ≥ 1");
        }
        Ok(Self { lr, every, factor })
    }
}

impl Schedule for StepDecay {
    fn lr(&self, step: u64) -> f64 {
        self.lr * self.factor.powf((step / self.every) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_at_each_boundary() {
        let s = StepDecay::new(1.0, 10, 0.5).unwrap();
        let at = |t| s.lr(t);
        assert_eq!(
            [at(0), at(9), at(10), at(19), at(20), at(35)],
            [1.0, 1.0, 0.5, 0.5, 0.25, 0.125]
        );
        assert!(StepDecay::new(1.0, 0, 0.5).is_err());
        assert!(StepDecay::new(1.0, 5, 0.0).is_err());
    }
}
