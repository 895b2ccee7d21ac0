//! Exponential decay (PyTorch's `ExponentialLR`): `η_t = η · γᵗ`.

use super::Schedule;
use crate::schedule::config::{non_negative, positive};
use crate::Result;

/// `η · γᵗ`.
#[derive(Debug, Clone, PartialEq)]
pub struct Exponential {
    lr: f64,
    gamma: f64,
}

impl Exponential {
    /// Errors unless `lr ≥ 0` and `gamma > 0` are finite.
    pub fn new(lr: f64, gamma: f64) -> Result<Self> {
        non_negative("schedule.lr", lr)?;
        positive("schedule.gamma", gamma)?;
        Ok(Self { lr, gamma })
    }
}

impl Schedule for Exponential {
    fn lr(&self, step: u64) -> f64 {
        self.lr * self.gamma.powf(step as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn powers_of_gamma() {
        let s = Exponential::new(2.0, 0.9).unwrap();
        assert_eq!(s.lr(0), 2.0);
        assert!((s.lr(2) - 1.62).abs() < 1e-15);
        // 2 · 0.9¹⁰ = 2 · 0.3486784401
        assert!((s.lr(10) - 0.6973568802).abs() < 1e-15);
        assert!(Exponential::new(1.0, -0.5).is_err());
    }
}
