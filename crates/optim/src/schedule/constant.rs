//! Constant learning rate: `η_t = η`.

use super::Schedule;
use crate::Result;

/// `η_t = η`.
#[derive(Debug, Clone, PartialEq)]
pub struct Constant {
    lr: f64,
}

impl Constant {
    /// Errors unless `lr` is finite and ≥ 0.
    pub fn new(lr: f64) -> Result<Self> {
        Ok(Self {
            lr: super::config::non_negative("schedule.lr", lr)?,
        })
    }
}

impl Schedule for Constant {
    fn lr(&self, _step: u64) -> f64 {
        self.lr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_constant() {
        let s = Constant::new(0.1).unwrap();
        assert_eq!([s.lr(0), s.lr(1), s.lr(1_000_000)], [0.1; 3]);
        assert!(!s.needs_observation());
        assert!(Constant::new(f64::INFINITY).is_err());
    }
}
