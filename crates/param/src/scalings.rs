//! The resolved per-layer table: init std, forward multiplier and learning-rate scale
//! of every weight layer, plus the output scale and the lr rule.
//!
//! Layer `l = 0 … L−1` (0-based, as in eos-model) computes `z_l = m_l · h_l W_lᵀ + b_l`
//! (`eos-model`'s form) with
//!
//! ```text
//! W_l ~ N(0, init_std_l²),   b_l ~ N(0, bias_init_std_l²),
//! SGD:  W_l ← W_l − lr · lr_scale_l · ∇_{W_l} L,   b_l ← b_l − lr · bias_lr_scale_l · ∇_{b_l} L,
//! f = output_scale · z_{L−1}      (and f − f₀ when `center`).
//! ```
//!
//! Two exact reparametrisations (same function, same SGD trajectory):
//!
//! - **fold the output scale** `s` into the readout ([`Scalings::fold_output_scale`]):
//!   `s (m W h + b) = (s m) W h + b'` with `b' = s b`; `W` and its gradient are
//!   unchanged, and `∇_{b'} L = ∇_b L / s`, so `b'` needs `bias_lr_scale · s²` and
//!   `bias_init_std · s`. `eos-model` has no output scale, so this is the form it takes.
//! - **effective form** ([`Scalings::effective_form`]): store `W̃ = m W` with
//!   multiplier 1; `W̃ ~ N(0, (m·init_std)²)` and, since `∇_W L = m ∇_{W̃} L`, the
//!   step on `W̃` is `m² · lr_scale` (Yang & Hu 2021, the abc symmetry). Exact for
//!   SGD (with or without momentum); per-layer *normalised* updates are invariant to
//!   `m` with the lr scale unchanged, so this form is not for νP.

use serde::{Deserialize, Serialize};

use crate::abc::LayerRole;

/// One weight layer's scalings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerScaling {
    /// Input, hidden or output layer.
    pub role: LayerRole,
    /// `n_l` (layer `l`'s fan-in).
    pub fan_in: usize,
    /// `n_l`.
    pub fan_out: usize,
    /// Standard deviation of the stored weights at initialisation.
    pub init_std: f64,
    /// Forward multiplier `m_l`.
    pub multiplier: f64,
    /// Factor on the global lr for this layer's weights.
    pub lr_scale: f64,
    /// Standard deviation of the stored biases at initialisation (0 in every scheme
    /// here: biases start at zero).
    pub bias_init_std: f64,
    /// Factor on the global lr for this layer's bias (in the form above, where the
    /// bias is not multiplied by `m_l`).
    pub bias_lr_scale: f64,
}

impl LayerScaling {
    /// `m · init_std`: the init std of the weight the layer actually applies.
    pub fn effective_init_std(&self) -> f64 {
        self.multiplier * self.init_std
    }

    /// `m² · lr_scale`: the SGD lr factor on the applied weight `m W`.
    pub fn effective_lr_scale(&self) -> f64 {
        self.multiplier * self.multiplier * self.lr_scale
    }
}

/// How the global lr was obtained from the configured base lr.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LrRule {
    /// `lr = base_lr`.
    Base,
    /// `lr = width · base_lr` (Richness_Sweep's `N · η₀`, N the hidden width).
    TimesWidth {
        /// The `N` used.
        width: usize,
    },
    /// `lr = base_lr`, meaning the relative change `‖ΔW_l‖_F / ‖W_l‖_F` of every
    /// layer per step (νP: per-layer normalised updates).
    RelativeChange,
}

/// The resolved scalings of a whole network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scalings {
    /// One entry per weight layer, input first.
    pub layers: Vec<LayerScaling>,
    /// `f = output_scale · z_{L−1}` (`1/γ` for mean-field, 1 otherwise).
    pub output_scale: f64,
    /// Train the centred model `f(x) − f₀(x)` (a frozen copy of the initial network).
    pub center: bool,
    /// The configured base learning rate (η₀).
    pub base_lr: f64,
    /// The global learning rate; layer `l`'s weights step with `lr · lr_scale_l`.
    pub lr: f64,
    /// How `lr` follows from `base_lr`.
    pub lr_rule: LrRule,
    /// Per-layer normalised updates: the optimizer multiplies layer `l`'s gradient by
    /// `s_l = ‖W_l‖_F / ‖g_l‖_F` (see [`crate::nup`]), so that `lr` is
    /// the relative change per step (νP).
    pub normalized_updates: bool,
}

impl Scalings {
    /// Number of weight layers `L`.
    pub fn depth(&self) -> usize {
        self.layers.len()
    }

    /// `[n₀, …, n_L]`.
    pub fn widths(&self) -> Vec<usize> {
        let mut w: Vec<usize> = self.layers.iter().map(|l| l.fan_in).collect();
        if let Some(last) = self.layers.last() {
            w.push(last.fan_out);
        }
        w
    }

    /// `[m_1, …, m_L]` (output scale not folded in).
    pub fn multipliers(&self) -> Vec<f64> {
        self.layers.iter().map(|l| l.multiplier).collect()
    }

    /// Init std of the stored weights, per layer.
    pub fn init_stds(&self) -> Vec<f64> {
        self.layers.iter().map(|l| l.init_std).collect()
    }

    /// Per-layer lr factors of the weights.
    pub fn lr_scales(&self) -> Vec<f64> {
        self.layers.iter().map(|l| l.lr_scale).collect()
    }

    /// `lr · lr_scale_l`: the step size of each layer's weights.
    pub fn layer_lrs(&self) -> Vec<f64> {
        self.layers.iter().map(|l| self.lr * l.lr_scale).collect()
    }

    /// `lr · bias_lr_scale_l`: the step size of each layer's bias.
    pub fn bias_lrs(&self) -> Vec<f64> {
        self.layers
            .iter()
            .map(|l| self.lr * l.bias_lr_scale)
            .collect()
    }

    /// The same network with `output_scale` folded into the readout (the last
    /// [`LayerRole::Output`] layer, the last layer of an MLP: multiplier `s · m_L`, bias
    /// init `s · std`, bias lr `s² ·`), so `output_scale` becomes 1. This is the form
    /// `eos-model` runs.
    pub fn fold_output_scale(&self) -> Scalings {
        let s = self.output_scale;
        let mut out = self.clone();
        let readout = out
            .layers
            .iter_mut()
            .rev()
            .find(|l| l.role == LayerRole::Output);
        if let Some(last) = readout {
            last.multiplier *= s;
            last.bias_init_std *= s.abs();
            last.bias_lr_scale *= s * s;
            out.output_scale = 1.0;
        }
        out
    }

    /// The SGD-equivalent form with every multiplier 1 (`init_std ← m · init_std`,
    /// `lr_scale ← m² · lr_scale`); biases are unchanged. Not valid with
    /// `normalized_updates`, whose steps do not depend on `m`.
    pub fn effective_form(&self) -> Scalings {
        let mut out = self.clone();
        for l in &mut out.layers {
            l.init_std = l.effective_init_std();
            l.lr_scale = l.effective_lr_scale();
            l.multiplier = 1.0;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{normals, rel, TinyMlp};

    fn layer(role: LayerRole, fan_in: usize, fan_out: usize, m: f64, std: f64) -> LayerScaling {
        LayerScaling {
            role,
            fan_in,
            fan_out,
            init_std: std,
            multiplier: m,
            lr_scale: 0.5 + m,
            bias_init_std: 0.3,
            bias_lr_scale: 1.5,
        }
    }

    fn example() -> Scalings {
        Scalings {
            layers: vec![
                layer(LayerRole::Input, 3, 6, 0.7, 0.4),
                layer(LayerRole::Hidden, 6, 5, 1.3, 0.5),
                layer(LayerRole::Output, 5, 2, 0.2, 0.9),
            ],
            output_scale: 2.5,
            center: false,
            base_lr: 0.05,
            lr: 0.05,
            lr_rule: LrRule::Base,
            normalized_updates: false,
        }
    }

    #[test]
    fn accessors_and_folding_by_hand() {
        let s = example();
        assert_eq!(s.depth(), 3);
        assert_eq!(s.widths(), [3, 6, 5, 2]);
        assert_eq!(s.multipliers(), [0.7, 1.3, 0.2]);
        assert_eq!(s.init_stds(), [0.4, 0.5, 0.9]);
        // lr · (0.5 + m) = 0.05 · 1.2, 0.05 · 1.8, 0.05 · 0.7.
        let want = [0.06, 0.09, 0.035];
        for (a, b) in s.layer_lrs().iter().zip(want) {
            assert!(rel(*a, b) < 1e-15);
        }
        let f = s.fold_output_scale();
        assert_eq!(f.output_scale, 1.0);
        // Readout: m 0.2 · 2.5 = 0.5, bias std 0.3 · 2.5 = 0.75, bias lr 1.5 · 6.25.
        assert!(rel(f.layers[2].multiplier, 0.5) < 1e-15);
        assert!(rel(f.layers[2].bias_init_std, 0.75) < 1e-15);
        assert!(rel(f.layers[2].bias_lr_scale, 9.375) < 1e-15);
        assert_eq!(f.layers[..2], s.layers[..2]);
        // Effective form: m = 1, σ = m σ, λ = m² λ (input: 0.28, 0.49 · 1.2 = 0.588).
        let e = s.effective_form();
        assert_eq!(e.multipliers(), [1.0; 3]);
        assert!(rel(e.layers[0].init_std, 0.28) < 1e-15);
        assert!(rel(e.layers[0].lr_scale, 0.588) < 1e-15);
    }

    #[test]
    fn folding_is_exact_along_sgd() {
        // The unfolded network (f = s · z_L, nonzero bias init) and the folded one
        // follow the same trajectory: three mse steps, f64 rounding only.
        let s = example();
        let f = s.fold_output_scale();
        let mut a = TinyMlp::from_scalings(&s, 11, true);
        let mut b = TinyMlp::from_scalings(&f, 11, true);
        let x = normals(5, 0, 12);
        let y = normals(5, 1, 8);
        let xs: Vec<Vec<f64>> = x.chunks(3).map(|c| c.to_vec()).collect();
        let ys: Vec<Vec<f64>> = y.chunks(2).map(|c| c.to_vec()).collect();
        for _ in 0..3 {
            a.mse_step(&xs, &ys, &s.layer_lrs(), &s.bias_lrs());
            b.mse_step(&xs, &ys, &f.layer_lrs(), &f.bias_lrs());
        }
        for x in &xs {
            for (u, v) in a.output(x).iter().zip(b.output(x)) {
                assert!(rel(*u, v) < 1e-12, "{u} vs {v}");
            }
        }
    }

    #[test]
    fn serde_round_trip() {
        let s = Scalings {
            lr_rule: LrRule::TimesWidth { width: 64 },
            ..example()
        };
        let text = toml::to_string(&s).unwrap();
        assert_eq!(toml::from_str::<Scalings>(&text).unwrap(), s, "{text}");
    }
}
