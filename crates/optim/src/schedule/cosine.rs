//! Cosine decay (Loshchilov & Hutter 2017, "SGDR", eq. 5, one cycle, no restarts):
//!
//! ```text
//! η_t = η_min + ½ (η − η_min) (1 + cos(π · min(t, T) / T))
//! ```
//!
//! `η_0 = η`, `η_{T/2} = (η + η_min)/2`, `η_t = η_min` for `t ≥ T`.

use super::Schedule;
use crate::schedule::config::non_negative;
use crate::{invalid, Result};

/// Cosine decay from `lr` to `lr_min` over `steps` steps.
#[derive(Debug, Clone, PartialEq)]
pub struct Cosine {
    lr: f64,
    lr_min: f64,
    steps: u64,
}

impl Cosine {
    /// Errors unless `lr ≥ lr_min ≥ 0` are finite and `steps ≥ 1`.
    pub fn new(lr: f64, lr_min: f64, steps: u64) -> Result<Self> {
        non_negative("schedule.lr", lr)?;
        non_negative("schedule.lr_min", lr_min)?;
        if lr_min > lr {
            return invalid("schedule.lr_min", lr_min, format!("≤ schedule.lr = {lr}"));
        }
        if steps == 0 {
            return invalid("schedule.steps", 0, "a number of steps ≥ 1");
        }
        Ok(Self { lr, lr_min, steps })
    }
}

impl Schedule for Cosine {
    fn lr(&self, step: u64) -> f64 {
        let x = step.min(self.steps) as f64 / self.steps as f64;
        self.lr_min + 0.5 * (self.lr - self.lr_min) * (1.0 + (std::f64::consts::PI * x).cos())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_at_start_quarter_half_end() {
        let s = Cosine::new(1.0, 0.1, 100).unwrap();
        assert_eq!(s.lr(0), 1.0);
        // half-way: the midpoint (cos(π/2) = 6e-17 in f64: 1e-15 absolute)
        assert!((s.lr(50) - 0.55).abs() < 1e-15, "{}", s.lr(50));
        // a quarter: 0.1 + 0.45 (1 + cos(π/4)) = 0.1 + 0.45 · 1.7071067811865475
        assert!((s.lr(25) - 0.868198051533946).abs() < 1e-15, "{}", s.lr(25));
        assert!((s.lr(100) - 0.1).abs() < 1e-16);
        assert_eq!(s.lr(100), s.lr(1000));
        assert!(s.lr(30) > s.lr(31));
        let e = Cosine::new(1.0, 2.0, 10).unwrap_err().to_string();
        assert!(e.starts_with("schedule.lr_min: got 2"), "{e}");
        assert!(Cosine::new(1.0, 0.0, 0).is_err());
    }
}
