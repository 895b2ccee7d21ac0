//! Hidden-width patterns: how wide each hidden layer is.
//!
//! For an MLP with `L` weight layers (`depth = L`, layers `0 … L−1`) the hidden widths
//! are the entries `k = 1 … L−1` of the width vector (`n_k` is the output width of
//! layer `k − 1`) and
//!
//! ```text
//! n_k = round(n₁ · k^p)        (round half away from zero, f64::round)
//! ```
//!
//! with `n₁` the base width and `p` the pattern's exponent: `p = 0` constant,
//! `p = 1` linear, `p = 2` quadratic (Terjék, arXiv 2502.13110: the pattern that,
//! with depthwise gradient scaling, trains beyond the EoS; THEORY.md §6), any real
//! `p` polynomial. An explicit list gives the hidden widths directly. The full width
//! vector is `[n₀, n₁, …, n_{L−1}, n_L]` with `n₀` the input and `n_L` the output
//! dimension; `L = 1` has no hidden layer (`[n₀, n₁]`).
//!
//! Example (`n₁ = 16`, `L = 4`): constant `[·, 16, 16, 16, ·]`, linear
//! `[·, 16, 32, 48, ·]`, quadratic `[·, 16, 64, 144, ·]`.
//!
//! ```toml
//! [widths]
//! depth = 4
//! base_width = 16
//! pattern = { kind = "polynomial", p = 1.5 }
//! ```

use serde::{Deserialize, Serialize};

use crate::{invalid, Result};

/// The widest layer accepted: a layer this wide could not be stored anyway, so a wider
/// one is a configuration mistake (e.g. a huge exponent).
pub const MAX_WIDTH: usize = u32::MAX as usize;

/// How hidden widths grow with depth. Deserialised from a table with a `kind` key.
///
/// All variants are struct variants so that `deny_unknown_fields` also rejects stray
/// keys next to `kind = "constant"` (serde ignores them for unit variants).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum WidthPattern {
    /// `n_l = n₁` (p = 0).
    Constant {},
    /// `n_l = n₁ · l` (p = 1).
    Linear {},
    /// `n_l = n₁ · l²` (p = 2), Terjék's pattern for training beyond the EoS.
    Quadratic {},
    /// `n_l = round(n₁ · l^p)` for any finite real `p`.
    Polynomial {
        /// The exponent `p`.
        p: f64,
    },
    /// The hidden widths `[n₁, …, n_{L−1}]` themselves (`L − 1` entries; the base
    /// width is not used).
    Explicit {
        /// `[n₁, …, n_{L−1}]`.
        hidden: Vec<usize>,
    },
}

impl Default for WidthPattern {
    /// Constant width.
    fn default() -> Self {
        WidthPattern::Constant {}
    }
}

impl WidthPattern {
    /// The exponent `p` of `n_l = round(n₁ · l^p)`; `None` for an explicit list.
    pub fn exponent(&self) -> Option<f64> {
        match self {
            WidthPattern::Constant {} => Some(0.0),
            WidthPattern::Linear {} => Some(1.0),
            WidthPattern::Quadratic {} => Some(2.0),
            WidthPattern::Polynomial { p } => Some(*p),
            WidthPattern::Explicit { .. } => None,
        }
    }

    /// The hidden widths `[n₁, …, n_{L−1}]` for `depth = L` weight layers and base
    /// width `n₁`.
    pub fn hidden_widths(&self, base_width: usize, depth: usize) -> Result<Vec<usize>> {
        if depth == 0 {
            return invalid("widths.depth", depth, "at least 1 weight layer");
        }
        let count = depth - 1;
        if let WidthPattern::Explicit { hidden } = self {
            if hidden.len() != count {
                return invalid(
                    "widths.pattern.hidden",
                    format!("{} widths {hidden:?}", hidden.len()),
                    format!("depth − 1 = {count} hidden widths"),
                );
            }
            if let Some(i) = hidden.iter().position(|&n| n == 0 || n > MAX_WIDTH) {
                return invalid(
                    format!("widths.pattern.hidden[{i}]"),
                    hidden[i],
                    format!("a width in 1..={MAX_WIDTH}"),
                );
            }
            return Ok(hidden.clone());
        }
        let p = self
            .exponent()
            .expect("only an explicit pattern has no exponent");
        if !p.is_finite() {
            return invalid("widths.pattern.p", p, "a finite exponent");
        }
        if base_width == 0 || base_width > MAX_WIDTH {
            return invalid(
                "widths.base_width",
                base_width,
                format!("a width in 1..={MAX_WIDTH}"),
            );
        }
        (1..=count)
            .map(|l| {
                let n = (base_width as f64 * (l as f64).powf(p)).round();
                if n >= 1.0 && n <= MAX_WIDTH as f64 {
                    Ok(n as usize)
                } else {
                    invalid(
                        format!("widths[{l}] (hidden width, the output of layer {})", l - 1),
                        format!("round({base_width} · {l}^{p}) = {n}"),
                        format!("a width in 1..={MAX_WIDTH}"),
                    )
                }
            })
            .collect()
    }
}

/// The full width vector `[n₀, n₁, …, n_{L−1}, n_L]` of an MLP with `depth = L`
/// weight layers: input dimension, the pattern's hidden widths, output dimension.
pub fn widths(
    input_dim: usize,
    output_dim: usize,
    depth: usize,
    base_width: usize,
    pattern: &WidthPattern,
) -> Result<Vec<usize>> {
    if input_dim == 0 {
        return invalid("input_dim", input_dim, "at least 1");
    }
    if output_dim == 0 {
        return invalid("output_dim", output_dim, "at least 1");
    }
    let hidden = pattern.hidden_widths(base_width, depth)?;
    let mut w = Vec::with_capacity(depth + 1);
    w.push(input_dim);
    w.extend(hidden);
    w.push(output_dim);
    Ok(w)
}

/// The width part of an experiment config: depth, base width and pattern (the input
/// and output dimensions come from the data).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WidthConfig {
    /// Number of weight layers `L` (so `L − 1` hidden layers).
    pub depth: usize,
    /// `n₁`, the first hidden layer's width (unused by an explicit pattern).
    pub base_width: usize,
    /// How the hidden widths grow (default: constant).
    #[serde(default)]
    pub pattern: WidthPattern,
}

impl WidthConfig {
    /// `[n₀, …, n_L]` for this config and the data's dimensions.
    pub fn widths(&self, input_dim: usize, output_dim: usize) -> Result<Vec<usize>> {
        widths(
            input_dim,
            output_dim,
            self.depth,
            self.base_width,
            &self.pattern,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ParamError;

    #[test]
    fn patterns_by_hand() {
        // n₁ = 16, L = 4: hidden widths k = 1, 2, 3.
        let w = |p: WidthPattern| widths(10, 3, 4, 16, &p).unwrap();
        assert_eq!(w(WidthPattern::Constant {}), [10, 16, 16, 16, 3]);
        assert_eq!(w(WidthPattern::Linear {}), [10, 16, 32, 48, 3]);
        assert_eq!(w(WidthPattern::Quadratic {}), [10, 16, 64, 144, 3]);
        // 16 · 2^1.5 = 45.2548… → 45, 16 · 3^1.5 = 83.1384… → 83.
        assert_eq!(w(WidthPattern::Polynomial { p: 1.5 }), [10, 16, 45, 83, 3]);
        // p = 2 as a polynomial is the quadratic pattern.
        assert_eq!(w(WidthPattern::Polynomial { p: 2.0 }), [10, 16, 64, 144, 3]);
        // Negative p shrinks: 16 / 2 = 8, 16 / 3 = 5.33 → 5.
        assert_eq!(w(WidthPattern::Polynomial { p: -1.0 }), [10, 16, 8, 5, 3]);
        assert_eq!(
            w(WidthPattern::Explicit {
                hidden: vec![7, 9, 11]
            }),
            [10, 7, 9, 11, 3]
        );
    }

    #[test]
    fn depth_one_has_no_hidden_layer() {
        assert_eq!(
            widths(5, 2, 1, 64, &WidthPattern::Quadratic {}).unwrap(),
            [5, 2]
        );
    }

    #[test]
    fn rounding_is_half_away_from_zero() {
        // 3 · 2⁻¹ = 1.5 exactly → 2; 3 · 3⁻¹ = 1.
        let w = widths(1, 1, 4, 3, &WidthPattern::Polynomial { p: -1.0 }).unwrap();
        assert_eq!(w, [1, 3, 2, 1, 1]);
    }

    #[test]
    fn errors_name_the_key() {
        let err = |r: Result<Vec<usize>>| match r {
            Err(ParamError::Invalid { key, .. }) => key,
            Ok(w) => panic!("expected an error, got {w:?}"),
        };
        assert_eq!(
            err(widths(10, 1, 0, 16, &WidthPattern::Constant {})),
            "widths.depth"
        );
        assert_eq!(
            err(widths(10, 1, 3, 0, &WidthPattern::Constant {})),
            "widths.base_width"
        );
        assert_eq!(
            err(widths(0, 1, 3, 8, &WidthPattern::Constant {})),
            "input_dim"
        );
        assert_eq!(
            err(widths(
                10,
                1,
                3,
                16,
                &WidthPattern::Explicit { hidden: vec![4] }
            )),
            "widths.pattern.hidden"
        );
        assert_eq!(
            err(widths(
                10,
                1,
                3,
                16,
                &WidthPattern::Explicit { hidden: vec![4, 0] }
            )),
            "widths.pattern.hidden[1]"
        );
        assert_eq!(
            err(widths(
                10,
                1,
                3,
                16,
                &WidthPattern::Polynomial { p: f64::NAN }
            )),
            "widths.pattern.p"
        );
        // 16 · 2^40 exceeds MAX_WIDTH.
        assert!(
            err(widths(10, 1, 3, 16, &WidthPattern::Polynomial { p: 40.0 }))
                .starts_with("widths[2] (hidden width, the output of layer 1)")
        );
        // 16 · 2^-10 rounds to 0.
        assert!(
            err(widths(10, 1, 3, 16, &WidthPattern::Polynomial { p: -10.0 }))
                .starts_with("widths[2] (hidden width, the output of layer 1)")
        );
    }

    #[test]
    fn toml_config() {
        let c: WidthConfig =
            toml::from_str("depth = 4\nbase_width = 16\npattern = { kind = \"quadratic\" }\n")
                .unwrap();
        assert_eq!(c.widths(784, 10).unwrap(), [784, 16, 64, 144, 10]);

        let c: WidthConfig = toml::from_str("depth = 3\nbase_width = 32\n").unwrap();
        assert_eq!(c.pattern, WidthPattern::Constant {});

        let c: WidthConfig = toml::from_str(
            "depth = 3\nbase_width = 0\n[pattern]\nkind = \"explicit\"\nhidden = [5, 6]\n",
        )
        .unwrap();
        assert_eq!(c.widths(2, 1).unwrap(), [2, 5, 6, 1]);

        let c: WidthConfig = toml::from_str(
            "depth = 3\nbase_width = 8\npattern = { kind = \"polynomial\", p = 0.5 }\n",
        )
        .unwrap();
        assert_eq!(c.pattern, WidthPattern::Polynomial { p: 0.5 });
    }

    #[test]
    fn toml_typos_are_errors_naming_the_key() {
        let e = toml::from_str::<WidthConfig>("depth = 3\nbase_widht = 8\n").unwrap_err();
        assert!(e.to_string().contains("base_widht"), "{e}");
        let e = toml::from_str::<WidthConfig>(
            "depth = 3\nbase_width = 8\npattern = { kind = \"polynomial\", q = 2 }\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains('q'), "{e}");
        // A stray key next to a field-less pattern is rejected too.
        let e = toml::from_str::<WidthConfig>(
            "depth = 3\nbase_width = 8\npattern = { kind = \"quadratic\", p = 3 }\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("unknown field `p`"), "{e}");
        let e = toml::from_str::<WidthConfig>(
            "depth = 3\nbase_width = 8\npattern = { kind = \"cubic\" }\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("cubic"), "{e}");
    }

    #[test]
    fn serde_round_trip() {
        let c = WidthConfig {
            depth: 5,
            base_width: 12,
            pattern: WidthPattern::Polynomial { p: 1.25 },
        };
        let s = toml::to_string(&c).unwrap();
        assert_eq!(toml::from_str::<WidthConfig>(&s).unwrap(), c);
    }
}
