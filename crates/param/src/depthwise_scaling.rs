//! Depthwise gradient scaling (Terjék, arXiv 2502.13110 v2; THEORY.md §6), as data.
//!
//! Before the SGD step, layer `l`'s gradient is multiplied by a factor `s_l`:
//!
//! ```text
//! W_l ← W_l − η · λ_l · s_l · g_l
//! ```
//!
//! Two families, both **(inferred)** from the abstract (the paper's formulas are not
//! public in a form we could read):
//!
//! - `width_power { q }`: static factors `s_l = (n_l / n̄)^{−q}` with `n̄` the
//!   arithmetic mean of the hidden widths `n₁ … n_{L−1}` and `n_l` the layer's
//!   *hidden width*: its fan-out `n_{l+1}` for layers `l = 0 … L−2` (the hidden
//!   width it produces) and its fan-in `n_{L−1}` for the readout `l = L−1`
//!   (whose fan-out is the fixed output dimension). Default `q = 1` (THEORY.md §6:
//!   "q = 1 with the quadratic pattern"); with constant widths every `s_l = 1`.
//!   Example, widths `[10, 16, 64, 144, 1]` (quadratic, `n₁ = 16`), `q = 1`:
//!   `n̄ = 224/3`, `s = (4.667, 1.167, 0.5185, 0.5185)`.
//!   A network without hidden layers (`L = 1`) gets `s = 1`.
//! - `per_layer_normalized`: `s_l = ‖W_l‖_F / ‖g_l‖_F` (LARS-like), so
//!   `‖ΔW_l‖_F = η λ_l ‖W_l‖_F`: η is the relative change per step. Dynamic: the
//!   optimizer computes it every step with [`crate::nup::normalized_factor`]; this crate only
//!   marks it ([`LayerFactors::PerLayerNormalized`]).
//!
//! ```toml
//! # e.g. in the optimizer's section of an experiment config
//! [gradient_scaling]
//! kind = "width_power"     # none | width_power | per_layer_normalized
//! q = 1.0
//! ```

use serde::{Deserialize, Serialize};

use crate::{invalid, Result};

/// Which depthwise gradient scaling the optimizer applies. Deserialised from a table
/// with a `kind` key; unknown keys are errors (every variant is a struct variant for
/// that: serde ignores stray keys next to a unit variant's tag).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum DepthwiseScaling {
    /// `s_l = 1`.
    None {},
    /// `s_l = (n_l / n̄)^{−q}` (static; **(inferred)**).
    WidthPower {
        /// The exponent `q` (default 1, **(inferred)**).
        #[serde(default = "default_q")]
        q: f64,
    },
    /// `s_l = ‖W_l‖_F / ‖g_l‖_F` every step (dynamic; **(inferred)**).
    PerLayerNormalized {},
}

fn default_q() -> f64 {
    1.0
}

impl Default for DepthwiseScaling {
    /// No scaling.
    fn default() -> Self {
        DepthwiseScaling::None {}
    }
}

/// The factors a [`DepthwiseScaling`] resolves to for given widths.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum LayerFactors {
    /// Fixed `s_l`, one per weight layer.
    Static(Vec<f64>),
    /// Computed by the optimizer each step as [`crate::nup::normalized_factor`]`(‖W_l‖, ‖g_l‖)`.
    PerLayerNormalized,
}

impl DepthwiseScaling {
    /// The factors for `widths = [n₀, …, n_L]`.
    pub fn factors(&self, widths: &[usize]) -> Result<LayerFactors> {
        if widths.len() < 2 || widths.contains(&0) {
            return invalid(
                "widths",
                format!("{widths:?}"),
                "at least [input, output], every width ≥ 1",
            );
        }
        let depth = widths.len() - 1;
        match *self {
            DepthwiseScaling::None {} => Ok(LayerFactors::Static(vec![1.0; depth])),
            DepthwiseScaling::PerLayerNormalized {} => Ok(LayerFactors::PerLayerNormalized),
            DepthwiseScaling::WidthPower { q } => {
                if !q.is_finite() {
                    return invalid("gradient_scaling.q", q, "a finite exponent");
                }
                let hidden = &widths[1..depth];
                if hidden.is_empty() {
                    return Ok(LayerFactors::Static(vec![1.0]));
                }
                let mean = hidden.iter().map(|&n| n as f64).sum::<f64>() / hidden.len() as f64;
                Ok(LayerFactors::Static(
                    (0..depth)
                        .map(|l| {
                            let n = layer_width(widths, l) as f64;
                            (n / mean).powf(-q)
                        })
                        .collect(),
                ))
            }
        }
    }
}

/// The hidden width that `width_power` uses for layer `index` (0-based) of a network
/// with widths `[n₀, …, n_L]`: the fan-out for every layer but the readout, the
/// fan-in for the readout.
pub fn layer_width(widths: &[usize], index: usize) -> usize {
    let depth = widths.len() - 1;
    if index + 1 == depth {
        widths[index]
    } else {
        widths[index + 1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn width_power_by_hand() {
        // Quadratic widths, n₁ = 16, L = 4: hidden 16, 64, 144, n̄ = 224/3 = 74.667.
        // Layer widths used: 16, 64, 144 (fan-outs), 144 (readout fan-in).
        // q = 1: s = n̄/n = 4.6667, 1.1667, 0.51852, 0.51852.
        let w = [10, 16, 64, 144, 1];
        let LayerFactors::Static(s) = DepthwiseScaling::WidthPower { q: 1.0 }.factors(&w).unwrap()
        else {
            panic!("static factors expected")
        };
        let nbar = 224.0 / 3.0;
        let want = [nbar / 16.0, nbar / 64.0, nbar / 144.0, nbar / 144.0];
        for (a, b) in s.iter().zip(want) {
            assert!((a - b).abs() < 1e-14 * b, "{s:?}");
        }
        // q = 2 squares them; q = 0 and constant widths give 1.
        let LayerFactors::Static(s2) = DepthwiseScaling::WidthPower { q: 2.0 }.factors(&w).unwrap()
        else {
            panic!()
        };
        assert!((s2[0] - want[0] * want[0]).abs() < 1e-12);
        assert_eq!(
            DepthwiseScaling::WidthPower { q: 1.0 }
                .factors(&[3, 8, 8, 8, 2])
                .unwrap(),
            LayerFactors::Static(vec![1.0; 4])
        );
        assert_eq!(
            DepthwiseScaling::WidthPower { q: 1.0 }
                .factors(&[3, 2])
                .unwrap(),
            LayerFactors::Static(vec![1.0])
        );
    }

    #[test]
    fn other_kinds_and_errors() {
        assert_eq!(
            DepthwiseScaling::None {}.factors(&[3, 5, 2]).unwrap(),
            LayerFactors::Static(vec![1.0, 1.0])
        );
        assert_eq!(
            DepthwiseScaling::PerLayerNormalized {}
                .factors(&[3, 5, 2])
                .unwrap(),
            LayerFactors::PerLayerNormalized
        );
        assert!(DepthwiseScaling::None {}.factors(&[3]).is_err());
        assert!(DepthwiseScaling::None {}.factors(&[3, 0, 1]).is_err());
        assert!(DepthwiseScaling::WidthPower { q: f64::NAN }
            .factors(&[3, 4, 1])
            .is_err());
    }

    #[test]
    fn toml_forms() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Cfg {
            gradient_scaling: DepthwiseScaling,
        }
        let p = |s: &str| toml::from_str::<Cfg>(s).map(|c| c.gradient_scaling);
        assert_eq!(
            p("gradient_scaling = { kind = \"none\" }").unwrap(),
            DepthwiseScaling::None {}
        );
        assert_eq!(
            p("gradient_scaling = { kind = \"width_power\" }").unwrap(),
            DepthwiseScaling::WidthPower { q: 1.0 }
        );
        assert_eq!(
            p("[gradient_scaling]\nkind = \"width_power\"\nq = 0.5\n").unwrap(),
            DepthwiseScaling::WidthPower { q: 0.5 }
        );
        assert_eq!(
            p("gradient_scaling = { kind = \"per_layer_normalized\" }").unwrap(),
            DepthwiseScaling::PerLayerNormalized {}
        );
        let e = p("gradient_scaling = { kind = \"width_power\", p = 1 }").unwrap_err();
        assert!(e.to_string().contains("unknown field `p`"), "{e}");
        let e = p("gradient_scaling = { kind = \"per_layer_normalized\", q = 1 }").unwrap_err();
        assert!(e.to_string().contains("unknown field `q`"), "{e}");
    }
}
