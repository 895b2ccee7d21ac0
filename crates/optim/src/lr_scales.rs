//! Per-layer learning-rate scales (THEORY.md §7; Yang & Hu 2021, "Tensor Programs
//! IV", Table 3: the `c` exponents of an abc-parametrization).
//!
//! ```text
//! W_l ← W_l − η · λ_l · d_{W_l},     b_l ← b_l − η · β_l · d_{b_l}
//! ```
//!
//! `λ_l` (weights) and `β_l` (biases) come from the parameterization
//! ([`eos_param::Scalings`]: `lr_scale` and `bias_lr_scale` of each layer); pass the
//! form the model runs, i.e. after [`eos_param::Scalings::fold_output_scale`]. Every
//! optimizer takes them as an option ([`crate::CommonOptions::lr_scales`]).

use eos_param::Scalings;

use crate::{invalid, Result};

/// One lr factor per layer for the weights and one for the biases.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerLrScales {
    /// `λ_l`, one per weight layer, input layer first.
    pub weights: Vec<f64>,
    /// `β_l`, one per layer (ignored for layers without a bias).
    pub biases: Vec<f64>,
}

impl LayerLrScales {
    /// Scales from explicit factors; errors unless both lists have the same length
    /// and every factor is finite and ≥ 0.
    pub fn new(weights: Vec<f64>, biases: Vec<f64>) -> Result<Self> {
        let s = Self { weights, biases };
        s.validate()?;
        Ok(s)
    }

    /// 1 for every layer.
    pub fn uniform(depth: usize) -> Self {
        Self {
            weights: vec![1.0; depth],
            biases: vec![1.0; depth],
        }
    }

    /// `lr_scale` and `bias_lr_scale` of each layer of a parameterization.
    pub fn from_scalings(scalings: &Scalings) -> Self {
        Self {
            weights: scalings.lr_scales(),
            biases: scalings.layers.iter().map(|l| l.bias_lr_scale).collect(),
        }
    }

    /// Number of layers.
    pub fn depth(&self) -> usize {
        self.weights.len()
    }

    /// Errors unless both lists have the same length and every factor is finite, ≥ 0.
    pub fn validate(&self) -> Result<()> {
        if self.weights.len() != self.biases.len() {
            return invalid(
                "lr_scales.biases",
                format!("{} factors", self.biases.len()),
                format!("one per layer ({})", self.weights.len()),
            );
        }
        for (key, v) in [
            ("lr_scales.weights", &self.weights),
            ("lr_scales.biases", &self.biases),
        ] {
            if let Some((i, x)) = v
                .iter()
                .enumerate()
                .find(|(_, x)| !(x.is_finite() && **x >= 0.0))
            {
                return invalid(format!("{key}[{i}]"), x, "a finite factor ≥ 0");
            }
        }
        Ok(())
    }

    /// Errors unless there is one factor per layer of a `depth`-layer network.
    pub fn check_depth(&self, depth: usize) -> Result<()> {
        if self.depth() == depth {
            Ok(())
        } else {
            invalid(
                "lr_scales",
                format!("{} layers", self.depth()),
                format!("one factor per layer of the model ({depth})"),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_entry() {
        assert!(LayerLrScales::new(vec![1.0, 2.0], vec![1.0, 1.0]).is_ok());
        let e = LayerLrScales::new(vec![1.0], vec![1.0, 1.0])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("lr_scales.biases: got 2 factors; expected one per layer (1)"),
            "{e}"
        );
        let e = LayerLrScales::new(vec![1.0, f64::NAN], vec![1.0, 1.0])
            .unwrap_err()
            .to_string();
        assert!(e.contains("lr_scales.weights[1]: got NaN"), "{e}");
        let e = LayerLrScales::uniform(2)
            .check_depth(3)
            .unwrap_err()
            .to_string();
        assert!(e.contains("one factor per layer of the model (3)"), "{e}");
    }
}
