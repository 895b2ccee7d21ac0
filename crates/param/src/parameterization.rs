//! Parameterizations: SP, NTK, μP, mean-field with richness γ, and νP, as tables.
//!
//! Each turns the widths `[n₀, …, n_L]`, a base learning rate η₀ and the activation's
//! gain `g` into a [`Scalings`] table: per layer `(init_std σ, multiplier m,
//! lr_scale λ)` with `z_l = m_l · h_l W_lᵀ + b_l` (layer `l = 0 … L−1`, fan-in
//! `n_l`; see the crate docs), `W_l ~ N(0, σ_l²)`, step
//! `lr · λ_l` (see [`crate::scalings`]). `d = n₀`; the gain applies to layers
//! followed by the activation, the readout uses 1 ([`crate::gain`]). In abc form
//! (`W = n^{−a} w`, `w ~ N(0, n^{−2b})`, step `η n^{−c}`, `n` = the layer's
//! width-sized dimension, [`crate::abc`]):
//!
//! | scheme | layer | a | b | c | m | σ | λ (lr) |
//! |---|---|---|---|---|---|---|---|
//! | SP | input | 0 | 0 | 0 | 1 | g/√d | 1 (η₀) |
//! | | hidden | 0 | ½ | 0 | 1 | g/√n_l | 1 |
//! | | output | 0 | ½ | 0 | 1 | 1/√n_{L−1} | 1 |
//! | NTK | input | 0 | 0 | 0 | g/√d | 1 | 1 (η₀) |
//! | | hidden | ½ | 0 | 0 | g/√n_l | 1 | 1 |
//! | | output | ½ | 0 | 0 | 1/√n_{L−1} | 1 | 1 |
//! | μP | input | −½ | ½ | 0 | √n₁ | g/√(d n₁) | 1 (η₀) |
//! | | hidden | 0 | ½ | 0 | 1 | g/√n_l | 1 |
//! | | output | ½ | ½ | 0 | 1/√n_{L−1} | 1/√n_{L−1} | 1 |
//! | mean-field(γ) | input | 0 | 0 | −1 | 1/√d | g | n₁/N (lr = N η₀) |
//! | | hidden | ½ | 0 | −1 | 1/√n_l | g | n_l/N |
//! | | output | 1 | 0 | −1 | 1/n_{L−1} | 1 | 1; output × 1/γ |
//! | νP | all | as SP | | | 1 | as SP (He) | 1; normalised updates |
//!
//! Sources:
//! - **SP** (PyTorch-style fan-in init, He et al. 2015 gain) and **NTK** (Jacot et al.
//!   2018: `z = (σ_w/√n) W h`, `W ~ N(0, 1)`) in abc form: Yang & Hu 2021
//!   ("Tensor Programs IV", arXiv 2011.14522), §3, whose SP is stable only with
//!   `c = 1` (lr ∝ 1/n, Theorem 4.1); ours keeps `c = 0` (a width-independent lr, as
//!   in practice and in the EoS papers).
//! - **μP**: TP IV, Definition 5.1 (layers counted from 1 there): `a₁ = −½`,
//!   `a_l = 0` (2 ≤ l ≤ L−1), `a_L = ½`, `b_l = ½`, `c = 0`; i.e. our input layer 0,
//!   hidden layers 1 … L−2 and readout L−1. The per-layer fan-in/fan-out form is TP V
//!   (Yang et al. 2022, arXiv 2203.03466), Table 9 (multiplier form) and Table 3
//!   (effective form: init var 1/fan_in, 1/fan_in², 1/fan_in and SGD lr fan_out,
//!   1/fan_in, 1 for input, output, hidden; "all biases" like input weights, SGD lr
//!   fan_out). THEORY.md §7 cites "Tensor Programs IV, Table 3" for this table: the
//!   exponents are TP IV's Definition 5.1, the fan-in/fan-out table is TP V's Table 3.
//!   Our constants `g/√d` are width-independent and leave the exponents alone.
//! - **mean-field(γ)**: Atanasov, Meterez, Simon, Pehlevan, arXiv 2410.04642, code
//!   Pehlevan-Group/Richness_Sweep `vision_tasks/models.py` (`StdLinear`:
//!   `W ~ N(0,1)`, forward `(W h + b)/√fan_in`; `FinalLinear`: `(W h + b)/fan_in`;
//!   `MLP.forward`: `/ gamma0`; `CenteredModel`) and `vision_tasks.py`
//!   (`SGD(lr = N * eta0)`). `N` is the hidden width; for unequal widths
//!   (**inferred**: Richness_Sweep's MLP has equal widths) we take `N = n_{L−1}` (the
//!   readout's fan-in) and give each layer `λ_l = n_l^{abc}/N`, so every layer keeps
//!   `c = −1` in its own width (equal to Richness_Sweep when the hidden widths are
//!   equal). Richness_Sweep's biases sit inside the scaling, i.e.
//!   `β_l = m_l`; in our form (`+ b_l`) that is `bias_lr_scale = m_l² λ_l`. At γ = 1
//!   it is μP up to the abc symmetry θ = ½ (`(a, b, c) → (a + ½, b − ½, c − 1)`,
//!   THEORY.md §3/§7) and, beyond exponents, equal to μP's concrete table except the
//!   input layer's lr, which differs by the width-independent factor `1/d`.
//! - **νP** (Terjék, arXiv 2502.13110 v1; THEORY.md §6), all **(inferred)**: SP's
//!   table with the activation's gain, per-layer normalised updates, lr = the
//!   relative change per step, quadratic widths by default; every rule and its
//!   source are in [`crate::nup`].
//!
//! Layer networks (eos-train's network.rs) give explicit rows instead of widths
//! ([`Parameterization::scalings_of`]: each weight tensor's role, fan-in, fan-out and
//! activation gain, e.g. an embedding as an input row with fan-in 1, attention as
//! hidden rows); every row is evaluated by the same table above, the readout being the
//! last output row.
//!
//! Biases start at 0 in every scheme. Bias lr scales: 1 for SP, NTK, νP; `fan_out`
//! for μP (TP V Table 3); `m_l² λ_l` for mean-field (above).
//!
//! ```toml
//! [parameterization]
//! kind = "mean_field"      # sp | ntk | mup | mean_field | nup
//! gamma = 0.1
//! center = true
//! ```

use serde::{Deserialize, Serialize};

use crate::abc::{Abc, LayerRole};
use crate::gain::Gain;
use crate::nup;
use crate::scalings::{LayerScaling, LrRule, Scalings};
use crate::widths::WidthPattern;
use crate::{invalid, positive, Result};

/// How an MLP's initialisation, multipliers and learning rates scale with width.
/// Deserialised from a table with a `kind` key (`sp`, `ntk`, `mup`, `mean_field`,
/// `nup`); unknown keys are errors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Parameterization {
    /// Standard parameterization: `σ = g/√fan_in`, `m = 1`, `λ = 1`.
    Sp {
        /// Init gain of the layers before an activation (default: the activation's,
        /// i.e. He for ReLU).
        #[serde(default)]
        gain: Gain,
    },
    /// NTK parameterization: `m = g/√fan_in`, `σ = 1`, `λ = 1`.
    Ntk {
        /// `σ_w` of the layers before an activation (default: the activation's).
        #[serde(default)]
        gain: Gain,
    },
    /// Maximal update parameterization for SGD (TP IV Definition 5.1, TP V Table 3).
    #[serde(rename = "mup")]
    MuP {
        /// Init gain of the layers before an activation (default: the activation's).
        #[serde(default)]
        gain: Gain,
    },
    /// Mean-field / μP with richness γ (Richness_Sweep): readout `1/fan_in`, output
    /// `/γ`, lr `N · η₀`.
    MeanField {
        /// Richness γ (γ₀ in the paper's code), > 0: small γ lazy, large γ rich.
        gamma: f64,
        /// Train `f − f₀` with a frozen initial copy (default true, as Richness_Sweep
        /// always does).
        #[serde(default = "default_center")]
        center: bool,
        /// Std of the stored weights before an activation (default 1 = LeCun, as in
        /// Richness_Sweep, whatever the activation).
        #[serde(default = "default_mean_field_gain")]
        gain: Gain,
    },
    /// Normalized update parameterization (Terjék; all **(inferred)**): SP/He init,
    /// per-layer normalised updates, lr = relative change per step.
    #[serde(rename = "nup")]
    NuP {
        /// Init gain before an activation (default: the activation's, the edge of chaos
        /// for ReLU).
        #[serde(default)]
        gain: Gain,
    },
}

fn default_center() -> bool {
    true
}

fn default_mean_field_gain() -> Gain {
    Gain::Lecun
}

impl Default for Parameterization {
    /// SP with the activation's gain.
    fn default() -> Self {
        Parameterization::Sp {
            gain: Gain::Activation,
        }
    }
}

/// One weight tensor to scale: its role, fan-in, fan-out and the gain of the
/// activation that follows it (resolved through the configured [`Gain`]; the output
/// role always uses 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row {
    pub role: LayerRole,
    pub fan_in: usize,
    pub fan_out: usize,
    pub activation_gain: f64,
}

/// Where the width-independent constants of a row go.
#[derive(Clone, Copy, PartialEq)]
enum Place {
    Multiplier,
    InitStd,
}

impl Parameterization {
    /// The `kind` name used in configs.
    pub fn name(&self) -> &'static str {
        match self {
            Parameterization::Sp { .. } => "sp",
            Parameterization::Ntk { .. } => "ntk",
            Parameterization::MuP { .. } => "mup",
            Parameterization::MeanField { .. } => "mean_field",
            Parameterization::NuP { .. } => "nup",
        }
    }

    /// The abc exponents of a layer role (table in the module docs); `None` for νP,
    /// whose normalised step size is set relative to `‖W_l‖`, not by a power of `n`
    /// (its init is SP's row).
    pub fn abc(&self, role: LayerRole) -> Option<Abc> {
        use LayerRole::*;
        let row = match (self, role) {
            (Parameterization::NuP { .. }, _) => return None,
            (Parameterization::Sp { .. }, Input) => Abc::new(0.0, 0.0, 0.0),
            (Parameterization::Sp { .. }, Hidden | Output) => Abc::new(0.0, 0.5, 0.0),
            (Parameterization::Ntk { .. }, Input) => Abc::new(0.0, 0.0, 0.0),
            (Parameterization::Ntk { .. }, Hidden | Output) => Abc::new(0.5, 0.0, 0.0),
            (Parameterization::MuP { .. }, Input) => Abc::new(-0.5, 0.5, 0.0),
            (Parameterization::MuP { .. }, Hidden) => Abc::new(0.0, 0.5, 0.0),
            (Parameterization::MuP { .. }, Output) => Abc::new(0.5, 0.5, 0.0),
            (Parameterization::MeanField { .. }, Input) => Abc::new(0.0, 0.0, -1.0),
            (Parameterization::MeanField { .. }, Hidden) => Abc::new(0.5, 0.0, -1.0),
            (Parameterization::MeanField { .. }, Output) => Abc::new(1.0, 0.0, -1.0),
        };
        Some(row)
    }

    /// The width pattern this scheme is meant for when the config names none:
    /// quadratic for νP (**inferred**, THEORY.md §6: "p = 2 default"), none otherwise.
    pub fn preferred_width_pattern(&self) -> Option<WidthPattern> {
        match self {
            Parameterization::NuP { .. } => Some(nup::WIDTH_PATTERN),
            _ => None,
        }
    }

    /// Check the configured values (γ, explicit gains) without widths.
    pub fn validate(&self) -> Result<()> {
        match self {
            Parameterization::MeanField { gamma, gain, .. } => {
                positive("parameterization.gamma", *gamma)?;
                gain.resolve(1.0, "parameterization.gain").map(|_| ())
            }
            Parameterization::Sp { gain }
            | Parameterization::Ntk { gain }
            | Parameterization::MuP { gain }
            | Parameterization::NuP { gain } => {
                gain.resolve(1.0, "parameterization.gain").map(|_| ())
            }
        }
    }

    /// The per-layer scalings for `widths = [n₀, …, n_L]`, base lr `η₀` and the
    /// activation's gain (e.g. [`crate::gain::RELU`]): [`Self::scalings_of`] with layer
    /// `l`'s row `(LayerRole::of(l, L), n_l, n_{l+1}, activation_gain)`.
    pub fn scalings(
        &self,
        widths: &[usize],
        base_lr: f64,
        activation_gain: f64,
    ) -> Result<Scalings> {
        self.validate()?;
        check_widths(widths)?;
        let depth = widths.len() - 1;
        let rows: Vec<Row> = (0..depth)
            .map(|l| Row {
                role: LayerRole::of(l, depth),
                fan_in: widths[l],
                fan_out: widths[l + 1],
                activation_gain,
            })
            .collect();
        self.scalings_of(&rows, base_lr)
    }

    /// The scalings of explicit rows (one per weight tensor, any roles; layer
    /// networks): each row's table entry at its own fan-in/fan-out and gain. The
    /// readout is the last [`LayerRole::Output`] row: mean-field's `N` is its fan-in
    /// and [`Scalings::fold_output_scale`] folds `1/γ` into it.
    pub fn scalings_of(&self, rows: &[Row], base_lr: f64) -> Result<Scalings> {
        self.validate()?;
        positive("base_lr", base_lr)?;
        if let Some(i) = rows.iter().position(|r| r.fan_in == 0 || r.fan_out == 0) {
            let found = format!("{:?}", rows[i]);
            return invalid(format!("rows[{i}]"), found, "fan-in and fan-out ≥ 1");
        }
        let Some(readout) = rows.iter().rev().find(|r| r.role == LayerRole::Output) else {
            return invalid(
                "rows",
                "no output row",
                "a readout (a row with role output)",
            );
        };
        let readout_fan_in = readout.fan_in;
        let (lr_rule, lr_factor) = match self {
            Parameterization::MeanField { .. } => (
                LrRule::TimesWidth {
                    width: readout_fan_in,
                },
                readout_fan_in as f64,
            ),
            Parameterization::NuP { .. } => (nup::LR_RULE, 1.0),
            _ => (LrRule::Base, 1.0),
        };
        let layers = rows
            .iter()
            .map(|r| {
                let g = self
                    .gain()
                    .resolve(r.activation_gain, "parameterization.gain")?;
                Ok(self.layer(r, g, lr_factor))
            })
            .collect::<Result<Vec<_>>>()?;
        let (output_scale, center) = match self {
            Parameterization::MeanField { gamma, center, .. } => (1.0 / gamma, *center),
            _ => (1.0, false),
        };
        Ok(Scalings {
            layers,
            output_scale,
            center,
            base_lr,
            lr: base_lr * lr_factor,
            lr_rule,
            normalized_updates: matches!(self, Parameterization::NuP { .. }),
        })
    }

    /// The configured init gain.
    pub fn gain(&self) -> Gain {
        match self {
            Parameterization::Sp { gain }
            | Parameterization::Ntk { gain }
            | Parameterization::MuP { gain }
            | Parameterization::MeanField { gain, .. }
            | Parameterization::NuP { gain } => *gain,
        }
    }

    /// Where `g` and `1/√d` go: into the multiplier for NTK (σ_w/√n) and, for the
    /// `1/√d` only, mean-field (Richness_Sweep's `/√fan_in`); into σ otherwise.
    fn places(&self) -> (Place, Place) {
        match self {
            Parameterization::Ntk { .. } => (Place::Multiplier, Place::Multiplier),
            Parameterization::MeanField { .. } => (Place::InitStd, Place::Multiplier),
            _ => (Place::InitStd, Place::InitStd),
        }
    }

    /// The scaling of one row: its abc row (SP's where this parameterization has
    /// none) at its width, the resolved `gain` and `1/√d` placed per
    /// [`Self::places`], the lr exponent divided by `lr_factor`.
    fn layer(&self, r: &Row, gain: f64, lr_factor: f64) -> LayerScaling {
        let (role, fan_in, fan_out) = (r.role, r.fan_in, r.fan_out);
        let sp_table = Parameterization::Sp { gain: Gain::Lecun };
        let abc = self
            .abc(role)
            .or_else(|| sp_table.abc(role))
            .expect("SP has an abc row for every role");
        let n = role.abc_width(fan_in, fan_out) as f64;
        let (mut multiplier, mut init_std, lr_pow) = abc.at(n);
        let g = if role == LayerRole::Output { 1.0 } else { gain };
        let inv_sqrt_d = if role == LayerRole::Input {
            1.0 / (fan_in as f64).sqrt()
        } else {
            1.0
        };
        let (gain_place, fan_in_place) = self.places();
        match gain_place {
            Place::Multiplier => multiplier *= g,
            Place::InitStd => init_std *= g,
        }
        match fan_in_place {
            Place::Multiplier => multiplier *= inv_sqrt_d,
            Place::InitStd => init_std *= inv_sqrt_d,
        }
        let lr_scale = lr_pow / lr_factor;
        let bias_lr_scale = match self {
            Parameterization::MuP { .. } => fan_out as f64,
            Parameterization::MeanField { .. } => multiplier * multiplier * lr_scale,
            _ => 1.0,
        };
        LayerScaling {
            role,
            fan_in,
            fan_out,
            init_std,
            multiplier,
            lr_scale,
            bias_init_std: 0.0,
            bias_lr_scale,
        }
    }
}

/// `widths` has at least [input, output] and no zero width.
fn check_widths(widths: &[usize]) -> Result<()> {
    if widths.len() < 2 {
        return invalid(
            "widths",
            format!("{widths:?}"),
            "at least [input, output] (depth ≥ 1)",
        );
    }
    if let Some(i) = widths.iter().position(|&n| n == 0) {
        return invalid(format!("widths[{i}]"), 0, "a width ≥ 1");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gain::RELU;
    use crate::testing::{normals, rel, rms, TinyMlp};
    use crate::ParamError;
    use LayerRole::{Hidden, Input, Output};

    const ROLES: [LayerRole; 3] = [Input, Hidden, Output];

    fn sp() -> Parameterization {
        Parameterization::Sp {
            gain: Gain::Activation,
        }
    }
    fn ntk() -> Parameterization {
        Parameterization::Ntk {
            gain: Gain::Activation,
        }
    }
    fn mup() -> Parameterization {
        Parameterization::MuP {
            gain: Gain::Activation,
        }
    }
    fn mf(gamma: f64) -> Parameterization {
        Parameterization::MeanField {
            gamma,
            center: true,
            gain: Gain::Lecun,
        }
    }
    fn nup() -> Parameterization {
        Parameterization::NuP {
            gain: Gain::Activation,
        }
    }

    /// f64 tolerance for closed-form values: a few roundings (sqrt, pow, division).
    const TOL: f64 = 1e-12;

    fn close(a: f64, b: f64) -> bool {
        rel(a, b) < TOL
    }

    #[test]
    fn abc_rows_match_tensor_programs_iv() {
        // μP: Yang & Hu 2021 (TP IV), Definition 5.1: a₁ = −½, a_l = 0 for the middle
        // layers, a_{L+1} = ½ (our output layer), b_l = ½ for all l, c = 0.
        assert_eq!(mup().abc(Input), Some(Abc::new(-0.5, 0.5, 0.0)));
        assert_eq!(mup().abc(Hidden), Some(Abc::new(0.0, 0.5, 0.0)));
        assert_eq!(mup().abc(Output), Some(Abc::new(0.5, 0.5, 0.0)));
        // NTP, TP IV §3: a₁ = 0, a_l = ½ (l ≥ 2), b_l = 0, c = 0.
        assert_eq!(ntk().abc(Input), Some(Abc::new(0.0, 0.0, 0.0)));
        assert_eq!(ntk().abc(Hidden), Some(Abc::new(0.5, 0.0, 0.0)));
        assert_eq!(ntk().abc(Output), Some(Abc::new(0.5, 0.0, 0.0)));
        // SP, TP IV §3: a_l = 0, b₁ = 0, b_l = ½ (l ≥ 2); c = 0 here (TP IV's stable SP
        // has c = 1, Theorem 4.1).
        assert_eq!(sp().abc(Input), Some(Abc::new(0.0, 0.0, 0.0)));
        assert_eq!(sp().abc(Hidden), Some(Abc::new(0.0, 0.5, 0.0)));
        assert_eq!(sp().abc(Output), Some(Abc::new(0.0, 0.5, 0.0)));
        // MFP, TP IV §3 (one hidden layer): a₁ = 0, a₂ = 1, b = 0, c = −1; its hidden
        // row is μP's shifted by θ = ½.
        assert_eq!(mf(1.0).abc(Input), Some(Abc::new(0.0, 0.0, -1.0)));
        assert_eq!(mf(1.0).abc(Output), Some(Abc::new(1.0, 0.0, -1.0)));
        assert_eq!(mf(1.0).abc(Hidden), Some(Abc::new(0.5, 0.0, -1.0)));
        assert_eq!(nup().abc(Hidden), None);
    }

    #[test]
    fn mean_field_is_mup_shifted_by_one_half() {
        // THEORY.md §3/§7: Richness_Sweep's form at γ = 1 is μP; in abc terms the
        // symmetry (a, b, c) → (a + ½, b − ½, c − 1) of TP IV Eq. 5.
        for role in ROLES {
            let m = mup().abc(role).unwrap();
            assert_eq!(mf(1.0).abc(role), Some(m.shifted(0.5)), "{role:?}");
            assert!(m.sgd_equivalent(&mf(7.0).abc(role).unwrap(), 0.0));
        }
        // … and SP at c = 0 is not in that class: its readout learns too fast.
        assert!(!mup()
            .abc(Output)
            .unwrap()
            .sgd_equivalent(&sp().abc(Output).unwrap(), 1e-12));
    }

    #[test]
    fn mean_field_at_gamma_one_is_concrete_mup_but_for_the_input_lr() {
        // Effective (SGD-invariant) values, gain 1, widths [10, 64, 64, 1]: hidden and
        // readout layers agree exactly (std 1/8 and 1/64, lr 1 and 1/64 in units of
        // η₀); the input layer's init agrees (1/√10) and its lr differs by the
        // width-independent factor 1/d = 1/10 (μP, TP V Table 3: fan_out = 64;
        // Richness_Sweep: (1/d) · N = 6.4).
        let w = [10, 64, 64, 1];
        let m = Parameterization::MuP { gain: Gain::Lecun }
            .scalings(&w, 1.0, RELU)
            .unwrap();
        let f = Parameterization::MeanField {
            gamma: 1.0,
            center: false,
            gain: Gain::Lecun,
        }
        .scalings(&w, 1.0, RELU)
        .unwrap();
        for l in 0..3 {
            let (a, b) = (&m.layers[l], &f.layers[l]);
            assert!(
                close(a.effective_init_std(), b.effective_init_std()),
                "layer {l}"
            );
            let (lr_m, lr_f) = (m.lr * a.effective_lr_scale(), f.lr * b.effective_lr_scale());
            let want = if l == 0 { 10.0 } else { 1.0 };
            assert!(close(lr_m / lr_f, want), "layer {l}: {lr_m} vs {lr_f}");
        }
        assert_eq!(f.output_scale, 1.0);
    }

    #[test]
    fn concrete_values_follow_the_abc_exponents() {
        // Scale every width-sized dimension by 4 and read the exponents back:
        // log₄(m(4n)/m(n)) = −a etc. Exact up to f64 rounding in pow/ln.
        for p in [sp(), ntk(), mup(), mf(0.3)] {
            let at = |n: usize| p.scalings(&[10, n, n, n, 3], 0.1, RELU).unwrap();
            let (s1, s4) = (at(64), at(256));
            for l in 0..4 {
                let role = s1.layers[l].role;
                let abc = p.abc(role).unwrap();
                let e = |f: &dyn Fn(&Scalings) -> f64| -(f(&s4) / f(&s1)).ln() / 4f64.ln();
                let a = e(&|s| s.layers[l].multiplier);
                let b = e(&|s| s.layers[l].init_std);
                let c = e(&|s| s.lr * s.layers[l].lr_scale);
                assert!((a - abc.a).abs() < 1e-12, "{} layer {l}: a = {a}", p.name());
                assert!((b - abc.b).abs() < 1e-12, "{} layer {l}: b = {b}", p.name());
                assert!((c - abc.c).abs() < 1e-12, "{} layer {l}: c = {c}", p.name());
            }
        }
    }

    #[test]
    fn mup_effective_form_is_tensor_programs_v_table_3() {
        // TP V (Yang et al. 2022), Table 3, μP for SGD, gain 1:
        //   input weights & all biases: init var 1/fan_in,   SGD lr fan_out
        //   output weights:             init var 1/fan_in²,  SGD lr 1/fan_in
        //   hidden weights:             init var 1/fan_in,   SGD lr 1
        let p = Parameterization::MuP { gain: Gain::Lecun };
        let s = p.scalings(&[10, 64, 128, 32, 3], 1.0, RELU).unwrap();
        for l in &s.layers {
            let (fi, fo) = (l.fan_in as f64, l.fan_out as f64);
            let var = l.effective_init_std().powi(2);
            let (want_var, want_lr) = match l.role {
                Input => (1.0 / fi, fo),
                Hidden => (1.0 / fi, 1.0),
                Output => (1.0 / (fi * fi), 1.0 / fi),
            };
            assert!(close(var, want_var), "{l:?}");
            assert!(close(l.effective_lr_scale(), want_lr), "{l:?}");
            assert_eq!(l.bias_lr_scale, fo, "{l:?}");
        }
    }

    #[test]
    fn hand_computed_values_for_10_64_64_1() {
        // widths [10, 64, 64, 1], ReLU gain g = √2, base lr η₀ = 0.1.
        let w = [10, 64, 64, 1];
        let s2 = std::f64::consts::SQRT_2;
        // (init_std, multiplier, lr_scale) per layer.
        let check = |p: Parameterization, want: [(f64, f64, f64); 3], lr: f64| {
            let s = p.scalings(&w, 0.1, RELU).unwrap();
            assert!(close(s.lr, lr), "{}: lr {}", p.name(), s.lr);
            for (l, (got, want)) in s.layers.iter().zip(want).enumerate() {
                let ok = close(got.init_std, want.0)
                    && close(got.multiplier, want.1)
                    && close(got.lr_scale, want.2);
                assert!(ok, "{} layer {l}: got {got:?}, want {want:?}", p.name());
            }
            s
        };
        // SP: σ = √2/√10 = 0.4472135955, √2/√64 = 0.1767766953, readout 1/√64 = 0.125.
        check(
            sp(),
            [
                (s2 / 10f64.sqrt(), 1.0, 1.0),
                (s2 / 8.0, 1.0, 1.0),
                (0.125, 1.0, 1.0),
            ],
            0.1,
        );
        // NTK: m = √2/√10, √2/8, 1/8; σ = 1.
        check(
            ntk(),
            [
                (1.0, s2 / 10f64.sqrt(), 1.0),
                (1.0, s2 / 8.0, 1.0),
                (1.0, 0.125, 1.0),
            ],
            0.1,
        );
        // μP: input m = √64 = 8, σ = √2/√(10·64) = 0.0559016994; hidden as SP;
        // readout m = σ = 1/8 (effective std 1/64, effective lr 1/64).
        let s = check(
            mup(),
            [
                (s2 / 640f64.sqrt(), 8.0, 1.0),
                (s2 / 8.0, 1.0, 1.0),
                (0.125, 0.125, 1.0),
            ],
            0.1,
        );
        assert_eq!(
            s.layers.iter().map(|l| l.bias_lr_scale).collect::<Vec<_>>(),
            [64.0, 64.0, 1.0]
        );
        assert!(close(s.layers[0].effective_lr_scale(), 64.0));
        assert!(close(s.layers[2].effective_lr_scale(), 1.0 / 64.0));
        // Mean-field γ = 0.5 (gain 1): N = 64, lr = 64 · 0.1 = 6.4; m = 1/√10 =
        // 0.316227766, 1/√64 = 1/8, 1/64; σ = 1; λ = 64/64 = 1; output × 1/γ = 2.
        let s = check(
            mf(0.5),
            [
                (1.0, 1.0 / 10f64.sqrt(), 1.0),
                (1.0, 0.125, 1.0),
                (1.0, 1.0 / 64.0, 1.0),
            ],
            6.4,
        );
        assert_eq!(s.output_scale, 2.0);
        assert!(s.center);
        assert_eq!(s.lr_rule, LrRule::TimesWidth { width: 64 });
        // Bias lr = m² λ: 1/10, 1/64, 1/4096.
        let b: Vec<f64> = s.layers.iter().map(|l| l.bias_lr_scale).collect();
        assert!(close(b[0], 0.1) && close(b[1], 1.0 / 64.0) && close(b[2], 1.0 / 4096.0));
        // Folded for eos-model: readout m = 2/64 = 1/32, bias lr 4/4096 = 1/1024.
        let f = s.fold_output_scale();
        assert_eq!(f.output_scale, 1.0);
        assert!(close(f.layers[2].multiplier, 1.0 / 32.0));
        assert!(close(f.layers[2].bias_lr_scale, 1.0 / 1024.0));
        // νP: SP's He table, lr = relative change 0.1, normalised updates.
        let s = check(
            nup(),
            [
                (s2 / 10f64.sqrt(), 1.0, 1.0),
                (s2 / 8.0, 1.0, 1.0),
                (0.125, 1.0, 1.0),
            ],
            0.1,
        );
        assert!(s.normalized_updates);
        assert_eq!(s.lr_rule, LrRule::RelativeChange);
        assert_eq!(
            nup().preferred_width_pattern(),
            Some(WidthPattern::Quadratic {})
        );
        assert_eq!(sp().preferred_width_pattern(), None);
    }

    fn row(role: LayerRole, fan_in: usize, fan_out: usize, g: f64) -> Row {
        Row {
            role,
            fan_in,
            fan_out,
            activation_gain: g,
        }
    }

    #[test]
    fn rows_of_a_transformer_follow_tensor_programs_v_table_3() {
        // d = 16, vocabulary 10: embedding (input, fan_in 1: a one-hot id), attention
        // qkv (hidden 16 → 48), a layernorm gain (input-like, 1 → 16), an MLP dense
        // (hidden 16 → 64, ReLU gain), the readout (16 → 10) placed before the last
        // row (fold and N must find it by role, not by position).
        let rows = [
            row(Input, 1, 16, 1.0),
            row(Hidden, 16, 48, 1.0),
            row(Hidden, 16, 64, RELU),
            row(Output, 16, 10, RELU),
            row(Input, 1, 16, 1.0),
        ];
        // μP's effective form is TP V Table 3 (input-like: var 1/fan_in = 1, SGD lr
        // fan_out = 16; hidden var g²/16, lr 1; output var 1/256, lr 1/16).
        let s = mup().scalings_of(&rows, 1.0).unwrap();
        let want = [(1.0, 16.0), (1.0 / 16.0, 1.0), (2.0 / 16.0, 1.0)];
        for (l, (var, lr)) in s.layers.iter().zip(want) {
            assert!(close(l.effective_init_std().powi(2), var), "{l:?}");
            assert!(close(l.effective_lr_scale(), lr), "{l:?}");
        }
        assert!(close(s.layers[3].effective_init_std(), 1.0 / 16.0));
        assert!(close(s.layers[3].effective_lr_scale(), 1.0 / 16.0));
        assert_eq!(s.layers[4], s.layers[0]);
        // Mean-field γ = 0.5: N = the readout's fan-in 16, lr = 16 η₀; the input-like
        // rows: m = 1/√1 = 1, σ = 1, λ = 16/16 = 1; hidden m = 1/4, λ = 1; readout
        // m = 1/16, folded × 2 = 1/8.
        let s = mf(0.5).scalings_of(&rows, 0.1).unwrap();
        assert!(close(s.lr, 1.6));
        assert_eq!(s.lr_rule, LrRule::TimesWidth { width: 16 });
        let f = s.fold_output_scale();
        let m: Vec<f64> = f.multipliers();
        assert!(
            close(m[0], 1.0) && close(m[1], 0.25) && close(m[3], 0.125),
            "{m:?}"
        );
        assert!(close(m[4], 1.0), "{m:?}");
        // SP: σ = 1 for the embedding (N(0, 1)), 1/4 for attention, √2/4 before ReLU.
        let s = sp().scalings_of(&rows, 1.0).unwrap();
        let std: Vec<f64> = s.init_stds();
        assert!(close(std[0], 1.0) && close(std[1], 0.25) && close(std[2], RELU / 4.0));
        // An explicit gain applies to every row but the readout; LeCun to none.
        let he = Parameterization::Sp { gain: Gain::He };
        assert!(close(
            he.scalings_of(&rows, 1.0).unwrap().layers[0].init_std,
            RELU
        ));
        // Errors: no readout, a zero fan.
        let e = mup().scalings_of(&rows[..3], 1.0).unwrap_err();
        assert!(e.to_string().contains("readout"), "{e}");
        let e = mup()
            .scalings_of(&[row(Output, 0, 3, 1.0)], 1.0)
            .unwrap_err();
        assert!(e.to_string().contains("rows[0]"), "{e}");
    }

    #[test]
    fn gains() {
        let w = [10, 64, 64, 1];
        let s = Parameterization::Sp { gain: Gain::Lecun }
            .scalings(&w, 1.0, RELU)
            .unwrap();
        assert!(close(s.layers[1].init_std, 0.125));
        let s = Parameterization::Sp {
            gain: Gain::Value(2.0),
        }
        .scalings(&w, 1.0, RELU)
        .unwrap();
        assert!(close(s.layers[1].init_std, 0.25));
        assert!(close(s.layers[2].init_std, 0.125), "readout keeps gain 1");
        // Mean-field's gain multiplies σ (default 1 whatever the activation).
        let s = mf(1.0).scalings(&w, 1.0, RELU).unwrap();
        assert_eq!(s.init_stds(), [1.0, 1.0, 1.0]);
        let p = Parameterization::MeanField {
            gamma: 1.0,
            center: false,
            gain: Gain::He,
        };
        let s = p.scalings(&w, 1.0, RELU).unwrap();
        assert!(close(s.layers[1].init_std, RELU) && close(s.layers[2].init_std, 1.0));
    }

    #[test]
    fn invalid_inputs_name_the_key() {
        let key = |r: Result<Scalings>| match r {
            Err(ParamError::Invalid { key, .. }) => key,
            Ok(_) => panic!("expected an error"),
        };
        assert_eq!(
            key(mf(0.0).scalings(&[2, 4, 1], 0.1, RELU)),
            "parameterization.gamma"
        );
        assert_eq!(
            key(mf(f64::INFINITY).scalings(&[2, 4, 1], 0.1, RELU)),
            "parameterization.gamma"
        );
        assert_eq!(key(sp().scalings(&[2], 0.1, RELU)), "widths");
        assert_eq!(key(sp().scalings(&[2, 0, 1], 0.1, RELU)), "widths[1]");
        assert_eq!(key(sp().scalings(&[2, 4, 1], -0.1, RELU)), "base_lr");
        assert_eq!(key(sp().scalings(&[2, 4, 1], 0.1, 0.0)), "activation_gain");
        let p = Parameterization::MuP {
            gain: Gain::Value(f64::NAN),
        };
        assert_eq!(
            key(p.scalings(&[2, 4, 1], 0.1, RELU)),
            "parameterization.gain"
        );
        let e = mf(-1.0).validate().unwrap_err().to_string();
        assert_eq!(
            e,
            "parameterization.gamma: got -1; expected a finite number > 0"
        );
    }

    #[test]
    fn depth_one_is_a_single_output_layer() {
        let s = mup().scalings(&[5, 3], 0.1, RELU).unwrap();
        assert_eq!(s.layers.len(), 1);
        assert_eq!(s.layers[0].role, Output);
        // n = fan_in = 5: m = σ = 1/√5.
        assert!(close(s.layers[0].multiplier, 1.0 / 5f64.sqrt()));
        let s = mf(1.0).scalings(&[5, 3], 0.1, RELU).unwrap();
        assert_eq!(s.lr_rule, LrRule::TimesWidth { width: 5 });
    }

    #[test]
    fn toml_variants() {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Cfg {
            parameterization: Parameterization,
        }
        let p = |s: &str| toml::from_str::<Cfg>(s).map(|c| c.parameterization);
        assert_eq!(p("[parameterization]\nkind = \"sp\"\n").unwrap(), sp());
        assert_eq!(
            p("[parameterization]\nkind = \"sp\"\ngain = \"lecun\"\n").unwrap(),
            Parameterization::Sp { gain: Gain::Lecun }
        );
        assert_eq!(p("[parameterization]\nkind = \"ntk\"\n").unwrap(), ntk());
        assert_eq!(
            p("[parameterization]\nkind = \"mup\"\ngain = { value = 1.3 }\n").unwrap(),
            Parameterization::MuP {
                gain: Gain::Value(1.3)
            }
        );
        assert_eq!(
            p("[parameterization]\nkind = \"mean_field\"\ngamma = 0.01\n").unwrap(),
            Parameterization::MeanField {
                gamma: 0.01,
                center: true,
                gain: Gain::Lecun
            }
        );
        assert_eq!(
            p("parameterization = { kind = \"mean_field\", gamma = 1e3, center = false }").unwrap(),
            Parameterization::MeanField {
                gamma: 1e3,
                center: false,
                gain: Gain::Lecun
            }
        );
        assert_eq!(p("[parameterization]\nkind = \"nup\"\n").unwrap(), nup());
    }

    #[test]
    fn toml_typos_are_errors_naming_the_key() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Cfg {
            #[allow(dead_code)]
            parameterization: Parameterization,
        }
        let err = |s: &str| toml::from_str::<Cfg>(s).unwrap_err().to_string();
        let e = err("[parameterization]\nkind = \"mean_field\"\ngama = 0.1\n");
        assert!(e.contains("unknown field `gama`"), "{e}");
        assert!(
            e.contains("gamma"),
            "the message lists the expected keys: {e}"
        );
        let e = err("[parameterization]\nkind = \"mean_field\"\ncenter = true\n");
        assert!(e.contains("missing field `gamma`"), "{e}");
        let e = err("[parameterization]\nkind = \"ntk\"\ngamma = 1.0\n");
        assert!(e.contains("unknown field `gamma`"), "{e}");
        let e = err("[parameterization]\nkind = \"muP\"\n");
        assert!(e.contains("muP"), "{e}");
        let e = err("[parameterization]\nkind = \"sp\"\ngain = \"kaiming\"\n");
        assert!(e.contains("kaiming"), "{e}");
    }

    #[test]
    fn serde_round_trip() {
        for p in [sp(), ntk(), mup(), mf(0.25), nup()] {
            #[derive(Serialize, Deserialize)]
            struct Cfg {
                parameterization: Parameterization,
            }
            let s = toml::to_string(&Cfg {
                parameterization: p.clone(),
            })
            .unwrap();
            assert_eq!(
                toml::from_str::<Cfg>(&s).unwrap().parameterization,
                p,
                "{s}"
            );
        }
    }

    /// `n_in` inputs `N(0, 1)` and targets `N(0, 1)` of dimension `k` (seeded).
    fn batch(n_in: usize, d: usize, k: usize, seed: u64) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
        let x = normals(seed, 100, n_in * d);
        let y = normals(seed, 101, n_in * k);
        (
            x.chunks(d).map(|c| c.to_vec()).collect(),
            y.chunks(k).map(|c| c.to_vec()).collect(),
        )
    }

    #[test]
    fn mean_field_reproduces_richness_sweep_exactly() {
        // Richness_Sweep's MLP (vision_tasks/models.py), written out: weights and
        // biases stored as drawn (W ~ N(0,1), b = 0), `StdLinear` = (W h + b)/√fan_in,
        // `FinalLinear` = (W h + b)/fan_in, output / γ₀, one SGD lr N·η₀ for every
        // tensor. Two full-batch mse steps (biases move in step 1 and matter in step 2),
        // then outputs on fresh inputs must agree with our folded scalings to f64
        // rounding.
        let (gamma, eta0, widths) = (0.3, 0.02, [5usize, 16, 16, 3]);
        let s = mf(gamma).scalings(&widths, eta0, 1.0).unwrap();
        let ours_s = s.fold_output_scale();
        let mut ours = TinyMlp::from_scalings(&ours_s, 7, true);
        let mut theirs = TinyMlp::from_scalings(&s, 7, true); // same N(0,1) draws
        let n = 16.0;
        theirs.m = vec![1.0 / 5f64.sqrt(), 1.0 / 4.0, 1.0 / 16.0];
        theirs.beta = theirs.m.clone();
        theirs.s = 1.0 / gamma;
        let (xs, ys) = batch(4, 5, 3, 1);
        for _ in 0..2 {
            ours.mse_step(&xs, &ys, &ours_s.layer_lrs(), &ours_s.bias_lrs());
            theirs.mse_step(&xs, &ys, &[n * eta0; 3], &[n * eta0; 3]);
        }
        let (xt, _) = batch(3, 5, 3, 2);
        for x in &xt {
            for (a, b) in ours.output(x).iter().zip(theirs.output(x)) {
                assert!(rel(*a, b) < 1e-12, "{a} vs {b}");
            }
        }
        // The biases did move, so the check covers the bias lr rule.
        assert!(theirs.b.iter().flatten().any(|v| v.abs() > 1e-6));
    }

    #[test]
    fn effective_form_gives_the_same_sgd_trajectory() {
        // The abc symmetry in concrete form: store m·W with multiplier 1, lr × m².
        for p in [sp(), ntk(), mup(), mf(2.0)] {
            let s = p
                .scalings(&[4, 8, 12, 2], 0.05, RELU)
                .unwrap()
                .fold_output_scale();
            let e = s.effective_form();
            let mut a = TinyMlp::from_scalings(&s, 3, true);
            let mut b = TinyMlp::from_scalings(&e, 3, true);
            let (xs, ys) = batch(5, 4, 2, 9);
            for _ in 0..3 {
                a.mse_step(&xs, &ys, &s.layer_lrs(), &s.bias_lrs());
                b.mse_step(&xs, &ys, &e.layer_lrs(), &e.bias_lrs());
            }
            for x in &xs {
                for (u, v) in a.output(x).iter().zip(b.output(x)) {
                    assert!(rel(*u, v) < 1e-11, "{}: {u} vs {v}", p.name());
                }
            }
        }
    }

    /// Per-layer size of one SGD step's contribution to that layer's pre-activation,
    /// `rms(m_l ΔW_l h_l)`, and for hidden-feeding layers its size relative to
    /// `z_l`, `‖m_l ΔW_l h_l‖ / ‖z_l‖`; 3-layer ReLU net `[16, n, n, 1]`, no biases,
    /// one input, step along `+∇f` (linear loss ℓ = −f, so the residual is the same at
    /// every width), averaged over seeds.
    fn update_sizes(p: &Parameterization, n: usize) -> (Vec<f64>, Vec<f64>) {
        let seeds = 0..4u64;
        let mut abs = [0.0; 3];
        let mut relative = [0.0; 2];
        let x = normals(1234, 0, 16);
        for seed in seeds.clone() {
            let s = p.scalings(&[16, n, n, 1], 1.0, RELU).unwrap();
            let net = TinyMlp::from_scalings(&s, seed, true);
            let g = net.grads(std::slice::from_ref(&x), &[vec![-1.0]]);
            let (zs, hs) = net.forward(&x);
            for l in 0..3 {
                let lr = s.lr * s.layers[l].lr_scale;
                let (fi, fo) = (net.widths[l], net.widths[l + 1]);
                let dz: Vec<f64> = (0..fo)
                    .map(|i| {
                        let row = &g.w[l][i * fi..(i + 1) * fi];
                        -lr * net.m[l] * row.iter().zip(&hs[l]).map(|(a, b)| a * b).sum::<f64>()
                    })
                    .collect();
                abs[l] += rms(&dz);
                if l < 2 {
                    relative[l] += rms(&dz) / rms(&zs[l]);
                }
            }
        }
        let k = seeds.count() as f64;
        (
            abs.iter().map(|v| v / k).collect(),
            relative.iter().map(|v| v / k).collect(),
        )
    }

    #[test]
    fn mup_updates_are_width_independent_sp_and_ntk_are_not() {
        // Theory (TP IV §5; scalings per coordinate at width n, one SGD step):
        //   μP:  input Θ(1), hidden Θ(1), readout Θ(1)   — every layer "updated maximally"
        //   SP:  input Θ(n^{-1/2}), hidden Θ(n^{1/2}), readout Θ(n) (c = 0 blows up)
        //   NTK: input Θ(n^{-1/2}), hidden Θ(n^{-1/2}), readout Θ(1) (lazy features)
        // so from n = 64 to n = 1024 (16×) the SP readout grows ~16×, its hidden layer
        // ~4×, and NTK's feature updates shrink ~4×. μP's stay within a factor 2.
        let widths = [64, 256, 1024];
        let sizes = |p: &Parameterization| -> Vec<(Vec<f64>, Vec<f64>)> {
            widths.iter().map(|&n| update_sizes(p, n)).collect()
        };
        let ratio = |v: &[(Vec<f64>, Vec<f64>)], l: usize| v[2].0[l] / v[0].0[l];
        let spread = |v: &[(Vec<f64>, Vec<f64>)], l: usize, relative: bool| {
            let xs: Vec<f64> = v
                .iter()
                .map(|(a, r)| if relative { r[l] } else { a[l] })
                .collect();
            xs.iter().cloned().fold(0.0, f64::max) / xs.iter().cloned().fold(f64::MAX, f64::min)
        };

        let m = sizes(&mup());
        let (s, t) = (sizes(&sp()), sizes(&ntk()));
        for (name, v) in [("μP", &m), ("SP", &s), ("NTK", &t)] {
            for (n, (abs, rel)) in widths.iter().zip(v) {
                eprintln!("{name:>3} n = {n:>4}: rms Δz per layer {abs:.3?}, relative {rel:.3?}");
            }
        }
        for l in 0..3 {
            assert!(spread(&m, l, false) < 2.0, "μP layer {l}: {m:?}");
        }
        for l in 0..2 {
            assert!(spread(&m, l, true) < 2.0, "μP relative, layer {l}: {m:?}");
        }

        assert!(ratio(&s, 0) < 0.5, "SP input should shrink: {s:?}");
        assert!(ratio(&s, 1) > 2.0, "SP hidden should grow: {s:?}");
        assert!(ratio(&s, 2) > 8.0, "SP readout should grow ~n: {s:?}");

        assert!(ratio(&t, 0) < 0.5, "NTK input should shrink: {t:?}");
        assert!(ratio(&t, 1) < 0.5, "NTK hidden should shrink: {t:?}");
        assert!(
            spread(&t, 2, false) < 2.0,
            "NTK function change is Θ(1): {t:?}"
        );
    }

    #[test]
    fn mean_field_output_at_init_is_order_one_over_gamma() {
        // f₀ = (1/γ)(1/N) Σ_i v_i h_i with v_i ~ N(0,1) and E[h²] = ¼ after two ReLU
        // layers of unit-variance pre-activations, so f₀ ~ N(0, 1/(4 γ² N)): exactly
        // ∝ 1/γ for fixed weights, and γ √N f₀ has rms ≈ ½ at every width.
        let x = normals(99, 0, 16);
        let mut acc = Vec::new();
        for n in [64, 256, 1024] {
            let mut sq = 0.0;
            let seeds = 16;
            for seed in 0..seeds {
                let f = |gamma: f64| {
                    let s = mf(gamma).scalings(&[16, n, n, 1], 0.1, RELU).unwrap();
                    TinyMlp::from_scalings(&s, seed, true).output(&x)[0]
                };
                let (f1, f01, f10) = (f(1.0), f(0.1), f(10.0));
                assert!(rel(f01, 10.0 * f1) < 1e-12 && rel(f10, 0.1 * f1) < 1e-12);
                sq += (f1 * (n as f64).sqrt()).powi(2);
            }
            acc.push((sq / seeds as f64).sqrt());
        }
        for v in &acc {
            assert!((0.25..1.0).contains(v), "γ√N·f₀ rms should be ≈ ½: {acc:?}");
        }
    }
}
