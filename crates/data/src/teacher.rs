//! Teacher–student data: Gaussian inputs labelled by a fixed random network.
//!
//! ```text
//! x ~ N(0, s² I_d)
//! h_0 = x,  h_l = φ(W_l h_{l−1} + b_l)  (l < L),  f = W_L h_{L−1} + b_L
//! W_l[o, i] ~ N(0, g² / n_{l−1})        (LeCun-style fan-in scaling, gain g = 1)
//! b_l ~ N(0, σ_b²)                      (σ_b = 0 by default: no bias)
//! ```
//!
//! With no hidden layers this is the **linear teacher** `f = W x`. Output modes:
//!
//! - regression: `y = f(x) + σ_ε ε`, `ε ~ N(0, I_k)` (`σ_ε` = `noise_std`);
//! - classes: `c = argmax_k f_k(x)` for `k > 1`, `c = 1[f(x) > 0]` for `k = 1`
//!   (2 classes); each label is independently replaced with probability
//!   `label_noise` by a different class drawn uniformly; targets encoded as asked.
//!
//! This is the generated stream that stands in for the MNIST-1M / CIFAR-5M online
//! streams of Atanasov et al. (THEORY.md §3); the fan-in init and unit input scale are
//! **(inferred)** project defaults, every one of them configurable. The forward pass is
//! a plain f64 loop (no BLAS), exact and independent of the thread count.

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::dataset::Dataset;
use crate::error::{DataError, Result};
use crate::generator::{gaussian, maybe_flip, Generator};
use crate::targets::Targets;
use eos_model::rng::{derived_rng, Purpose};

/// The teacher's hidden-layer nonlinearity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TeacherActivation {
    /// `tanh(z)` (the default).
    #[default]
    Tanh,
    /// `max(z, 0)`.
    Relu,
    /// `z` (a deep linear teacher).
    Identity,
}

impl TeacherActivation {
    fn apply(self, z: f64) -> f64 {
        match self {
            TeacherActivation::Tanh => z.tanh(),
            TeacherActivation::Relu => z.max(0.0),
            TeacherActivation::Identity => z,
        }
    }
}

/// What the teacher's output becomes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TeacherOutput {
    /// Regression targets `f(x) + noise_std · ε`.
    Regression {
        /// Standard deviation of the additive Gaussian output noise.
        noise_std: f64,
    },
    /// Class labels from the output's argmax (or sign for one output).
    Classes {
        /// Probability that a label is replaced by a different class.
        label_noise: f64,
        /// Target encoding of the labels.
        targets: Targets,
    },
}

/// The shape and scales of a teacher network.
///
/// Its serde form is the flat `[data] kind = "teacher"` table of a config
/// ([`TeacherKeys`]: `classes = true` selects [`TeacherOutput::Classes`]); unknown keys
/// are rejected by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "TeacherKeys", into = "TeacherKeys")]
pub struct TeacherConfig {
    /// Input dimension `d`.
    pub input_dim: usize,
    /// Hidden widths (empty: a linear teacher).
    pub hidden: Vec<usize>,
    /// Output dimension `k`.
    pub output_dim: usize,
    /// Hidden nonlinearity.
    pub activation: TeacherActivation,
    /// Standard deviation `s` of each input coordinate.
    pub input_std: f64,
    /// Weight gain `g`: `W ~ N(0, g²/fan_in)`.
    pub weight_gain: f64,
    /// Bias standard deviation `σ_b` (0: no bias).
    pub bias_std: f64,
    /// Regression or classes.
    pub output: TeacherOutput,
}

impl TeacherConfig {
    /// A linear regression teacher `y = W x` with `d` inputs and `k` outputs, no noise.
    pub fn linear(input_dim: usize, output_dim: usize) -> Self {
        TeacherConfig {
            input_dim,
            hidden: Vec::new(),
            output_dim,
            activation: TeacherActivation::Identity,
            input_std: 1.0,
            weight_gain: 1.0,
            bias_std: 0.0,
            output: TeacherOutput::Regression { noise_std: 0.0 },
        }
    }

    /// An MLP regression teacher with the given hidden widths and nonlinearity.
    pub fn mlp(
        input_dim: usize,
        hidden: Vec<usize>,
        output_dim: usize,
        activation: TeacherActivation,
    ) -> Self {
        TeacherConfig {
            hidden,
            activation,
            ..TeacherConfig::linear(input_dim, output_dim)
        }
    }
}

/// The flat keys of a teacher config, as a config file spells them (the serde form of
/// [`TeacherConfig`]); every key but `input_dim` has a default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeacherKeys {
    /// Input dimension `d`.
    pub input_dim: usize,
    /// Hidden widths (default none: a linear teacher).
    #[serde(default)]
    pub hidden: Vec<usize>,
    /// Output dimension `k` (default 1).
    #[serde(default = "one")]
    pub output_dim: usize,
    /// Hidden nonlinearity (default tanh).
    #[serde(default)]
    pub activation: TeacherActivation,
    /// Input standard deviation `s` (default 1).
    #[serde(default = "unit")]
    pub input_std: f64,
    /// Weight gain `g` (default 1).
    #[serde(default = "unit")]
    pub weight_gain: f64,
    /// Bias standard deviation `σ_b` (default 0).
    #[serde(default)]
    pub bias_std: f64,
    /// Regression output noise (ignored with `classes`).
    #[serde(default)]
    pub noise_std: f64,
    /// Labels from the teacher's argmax (or sign) instead of regression targets.
    #[serde(default)]
    pub classes: bool,
    /// Label-noise probability (with `classes`).
    #[serde(default)]
    pub label_noise: f64,
    /// Target encoding (with `classes`; default one-hot).
    #[serde(default)]
    pub targets: Targets,
}

fn one() -> usize {
    1
}
fn unit() -> f64 {
    1.0
}

impl From<TeacherKeys> for TeacherConfig {
    fn from(k: TeacherKeys) -> Self {
        let output = if k.classes {
            TeacherOutput::Classes {
                label_noise: k.label_noise,
                targets: k.targets,
            }
        } else {
            TeacherOutput::Regression {
                noise_std: k.noise_std,
            }
        };
        TeacherConfig {
            input_dim: k.input_dim,
            hidden: k.hidden,
            output_dim: k.output_dim,
            activation: k.activation,
            input_std: k.input_std,
            weight_gain: k.weight_gain,
            bias_std: k.bias_std,
            output,
        }
    }
}

impl From<TeacherConfig> for TeacherKeys {
    fn from(c: TeacherConfig) -> Self {
        let (classes, noise_std, label_noise, targets) = match c.output {
            TeacherOutput::Regression { noise_std } => (false, noise_std, 0.0, Targets::default()),
            TeacherOutput::Classes {
                label_noise,
                targets,
            } => (true, 0.0, label_noise, targets),
        };
        TeacherKeys {
            input_dim: c.input_dim,
            hidden: c.hidden,
            output_dim: c.output_dim,
            activation: c.activation,
            input_std: c.input_std,
            weight_gain: c.weight_gain,
            bias_std: c.bias_std,
            noise_std,
            classes,
            label_noise,
            targets,
        }
    }
}

/// A fixed random teacher network; a [`Generator`] of teacher-labelled data.
#[derive(Debug, Clone, PartialEq)]
pub struct Teacher {
    config: TeacherConfig,
    /// Per layer: weights `[out, in]` row-major and biases `[out]`.
    layers: Vec<(Vec<f64>, Vec<f64>)>,
}

impl Teacher {
    /// Draws the teacher's weights from `seed` (a pure function of `(config, seed)`).
    pub fn new(config: TeacherConfig, seed: u64) -> Result<Self> {
        let mut widths = vec![config.input_dim];
        widths.extend(&config.hidden);
        widths.push(config.output_dim);
        if widths.contains(&0) {
            return Err(DataError::Invalid(format!(
                "teacher widths {widths:?} must all be positive"
            )));
        }
        if let TeacherOutput::Classes { label_noise, .. } = config.output {
            if !(0.0..=1.0).contains(&label_noise) {
                return Err(DataError::Invalid(format!(
                    "teacher label_noise {label_noise} outside [0, 1]"
                )));
            }
        }
        let mut rng = derived_rng(seed, Purpose::Teacher, 0);
        let layers = widths
            .windows(2)
            .map(|w| {
                let std = config.weight_gain / (w[0] as f64).sqrt();
                (
                    gaussian(&mut rng, w[0] * w[1], std),
                    gaussian(&mut rng, w[1], config.bias_std),
                )
            })
            .collect();
        Ok(Teacher { config, layers })
    }

    /// The configuration.
    pub fn config(&self) -> &TeacherConfig {
        &self.config
    }

    /// The teacher's outputs `f(x)` for `n` row-major inputs, `[n, k]` row-major.
    pub fn forward(&self, x: &[f64]) -> Vec<f64> {
        let d = self.config.input_dim;
        let last = self.layers.len() - 1;
        let mut out = Vec::with_capacity(x.len() / d * self.config.output_dim);
        for row in x.chunks_exact(d) {
            let mut h = row.to_vec();
            for (l, (w, b)) in self.layers.iter().enumerate() {
                let fan_in = h.len();
                let mut z: Vec<f64> = w
                    .chunks_exact(fan_in)
                    .zip(b)
                    .map(|(wo, bo)| wo.iter().zip(&h).map(|(a, c)| a * c).sum::<f64>() + bo)
                    .collect();
                if l < last {
                    z.iter_mut()
                        .for_each(|v| *v = self.config.activation.apply(*v));
                }
                h = z;
            }
            out.extend(h);
        }
        out
    }

    fn name(&self) -> String {
        let c = &self.config;
        let kind = if c.hidden.is_empty() { "linear" } else { "mlp" };
        format!(
            "teacher-{kind}(d={}, hidden={:?}, k={})",
            c.input_dim, c.hidden, c.output_dim
        )
    }
}

impl Generator for Teacher {
    fn sample(&self, n: usize, rng: &mut ChaCha8Rng) -> Result<Dataset> {
        let c = &self.config;
        let x = gaussian(rng, n * c.input_dim, c.input_std);
        let f = self.forward(&x);
        match c.output {
            TeacherOutput::Regression { noise_std } => {
                let noise = gaussian(rng, f.len(), noise_std);
                let y = f.iter().zip(&noise).map(|(a, e)| a + e).collect();
                Dataset::regression(x, c.input_dim, y, c.output_dim, self.name())
            }
            TeacherOutput::Classes {
                label_noise,
                targets,
            } => {
                let k = c.output_dim.max(2);
                let labels = f
                    .chunks_exact(c.output_dim)
                    .map(|out| {
                        let clean = if out.len() == 1 {
                            u32::from(out[0] > 0.0)
                        } else {
                            argmax(out)
                        };
                        maybe_flip(rng, clean, k, label_noise)
                    })
                    .collect();
                Dataset::classification(x, c.input_dim, labels, k, targets, self.name())
            }
        }
    }
}

/// Index of the largest value (the first on ties).
fn argmax(v: &[f64]) -> u32 {
    let mut best = 0;
    for (i, &a) in v.iter().enumerate() {
        if a > v[best] {
            best = i;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_keys_are_flat_with_defaults_and_named_unknowns() {
        let c: TeacherConfig =
            serde_json::from_str(r#"{"input_dim": 4, "classes": true, "label_noise": 0.25}"#)
                .expect("valid keys");
        assert_eq!((c.input_dim, c.output_dim, c.hidden.len()), (4, 1, 0));
        assert_eq!(
            (c.activation, c.input_std, c.bias_std),
            (TeacherActivation::Tanh, 1.0, 0.0)
        );
        assert_eq!(
            c.output,
            TeacherOutput::Classes {
                label_noise: 0.25,
                targets: Targets::OneHot
            }
        );
        let text = serde_json::to_string(&c).expect("serialisable");
        assert!(text.contains(r#""classes":true"#), "{text}");
        let back: TeacherConfig = serde_json::from_str(&text).expect("round trip");
        assert_eq!(back, c);
        let r: TeacherConfig =
            serde_json::from_str(r#"{"input_dim": 2, "noise_std": 0.5}"#).expect("valid keys");
        assert_eq!(r.output, TeacherOutput::Regression { noise_std: 0.5 });
        let e = serde_json::from_str::<TeacherConfig>(r#"{"input_dim": 2, "hiden": [3]}"#)
            .expect_err("a typo");
        assert!(e.to_string().contains("unknown field `hiden`"), "{e}");
        let e = serde_json::from_str::<TeacherConfig>(r#"{"hidden": [3]}"#).expect_err("no d");
        assert!(e.to_string().contains("missing field `input_dim`"), "{e}");
    }

    #[test]
    fn linear_teacher_is_exactly_linear() {
        let t = Teacher::new(TeacherConfig::linear(3, 2), 1).expect("valid");
        let ds = t.dataset(5, 2).expect("valid");
        let (x, y) = (ds.x_vec().expect("f64"), ds.y_vec().expect("f64"));
        // f(a + b) = f(a) + f(b) for a linear teacher without bias: f64 round-off only.
        let sum: Vec<f64> = x[..3].iter().zip(&x[3..6]).map(|(a, b)| a + b).collect();
        let f = t.forward(&sum);
        for o in 0..2 {
            assert!((f[o] - y[o] - y[2 + o]).abs() < 1e-12);
        }
    }

    #[test]
    fn same_seeds_same_data_and_weights_fixed_by_teacher_seed() {
        let cfg = TeacherConfig::mlp(4, vec![8, 8], 1, TeacherActivation::Relu);
        let a = Teacher::new(cfg.clone(), 7).expect("valid");
        let b = Teacher::new(cfg.clone(), 7).expect("valid");
        let c = Teacher::new(cfg, 8).expect("valid");
        let da = a.dataset(10, 1).expect("valid").y_vec().expect("f64");
        assert_eq!(da, b.dataset(10, 1).expect("valid").y_vec().expect("f64"));
        assert_ne!(da, c.dataset(10, 1).expect("valid").y_vec().expect("f64"));
        assert_ne!(da, a.dataset(10, 2).expect("valid").y_vec().expect("f64"));
    }

    #[test]
    fn classes_mode_labels_by_sign_and_noise_flips_about_p() {
        let mut cfg = TeacherConfig::mlp(5, vec![16], 1, TeacherActivation::Tanh);
        cfg.output = TeacherOutput::Classes {
            label_noise: 0.0,
            targets: Targets::Signed,
        };
        let clean = Teacher::new(cfg.clone(), 3).expect("valid");
        let ds = clean.dataset(4000, 9).expect("valid");
        let f = clean.forward(&ds.x_vec().expect("f64"));
        let y = ds.y_vec().expect("f64");
        assert!(f.iter().zip(&y).all(|(a, b)| (*a > 0.0) == (*b > 0.0)));
        cfg.output = TeacherOutput::Classes {
            label_noise: 0.25,
            targets: Targets::Signed,
        };
        let noisy = Teacher::new(cfg, 3)
            .expect("valid")
            .dataset(4000, 9)
            .expect("valid");
        let flipped = noisy
            .labels
            .expect("labels")
            .iter()
            .zip(ds.labels.expect("labels"))
            .filter(|(a, b)| **a != *b)
            .count() as f64
            / 4000.0;
        // Binomial(4000, 0.25): std 0.0068; 5 std.
        assert!((flipped - 0.25).abs() < 0.035, "{flipped}");
    }

    #[test]
    fn invalid_configs_are_rejected() {
        assert!(Teacher::new(TeacherConfig::linear(0, 1), 0).is_err());
        let mut cfg = TeacherConfig::linear(2, 3);
        cfg.output = TeacherOutput::Classes {
            label_noise: 2.0,
            targets: Targets::OneHot,
        };
        assert!(Teacher::new(cfg, 0).is_err());
    }
}
