//! Schedule configuration as data (TOML), and the builder.
//!
//! ```toml
//! [schedule]
//! kind = "warmup"            # constant | warmup | cosine | step_decay | exponential
//! steps = 100                #   | c_over_lambda0 | geometry_aware
//! [schedule.then]
//! kind = "cosine"
//! lr = 0.1
//! steps = 10000
//! lr_min = 0.0               # default 0
//!
//! # schedule = { kind = "constant", lr = 0.05 }
//! # schedule = { kind = "step_decay", lr = 0.1, every = 1000, factor = 0.1 }  # factor default 0.1
//! # schedule = { kind = "exponential", lr = 0.1, gamma = 0.999 }
//! # schedule = { kind = "c_over_lambda0", c = 3.0 }
//! # schedule = { kind = "geometry_aware", lr_max = 1.0 }   # c = 2.5, ema = 0.9, lr_min = 0,
//! #                                       # source = "sharpness", lr_init = NaN until observed
//! #                                       # (source = "noise_kernel": c is a target K(η, B))
//! ```
//!
//! Unknown keys are errors naming the key; out-of-range values are errors naming the
//! key (`schedule.then.lr: got -1; expected …`).

use serde::{Deserialize, Serialize};

use super::{
    COverLambda0, Constant, Cosine, Exponential, GeometryAware, Schedule, SharpnessSource,
    StepDecay, Warmup,
};
use crate::{invalid, Error, Result};

/// Which schedule, with its parameters. Deserialised from a table with a `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ScheduleConfig {
    /// `η_t = lr`.
    Constant {
        /// η.
        lr: f64,
    },
    /// `η_t = min(1, (t+1)/steps) · then(t)`.
    Warmup {
        /// Warmup length W (0: none).
        steps: u64,
        /// The schedule being warmed up.
        then: Box<ScheduleConfig>,
    },
    /// Cosine decay from `lr` to `lr_min` over `steps`.
    Cosine {
        /// Initial η.
        lr: f64,
        /// Decay length T.
        steps: u64,
        /// Final η (default 0).
        #[serde(default)]
        lr_min: f64,
    },
    /// `lr · factor^{⌊t/every⌋}`.
    StepDecay {
        /// Initial η.
        lr: f64,
        /// Steps between decays.
        every: u64,
        /// Multiplier at each decay (default 0.1).
        #[serde(default = "default_step_factor")]
        factor: f64,
    },
    /// `lr · gammaᵗ`.
    Exponential {
        /// Initial η.
        lr: f64,
        /// Per-step factor γ.
        gamma: f64,
    },
    /// `c / λ₀` with λ₀ the first observed sharpness.
    #[serde(rename = "c_over_lambda0")]
    COverLambda0 {
        /// c = η λ₀.
        c: f64,
    },
    /// `clamp(c / EMA(λ), lr_min, lr_max)` (**(inferred)** defaults).
    GeometryAware {
        /// Target η λ (default 2.5).
        #[serde(default = "default_target_c")]
        c: f64,
        /// EMA coefficient β (default 0.9).
        #[serde(default = "default_ema")]
        ema: f64,
        /// Lower clamp (default 0).
        #[serde(default)]
        lr_min: f64,
        /// Upper clamp (required).
        lr_max: f64,
        /// η before the first observation (default: none, `lr` is NaN until then).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lr_init: Option<f64>,
        /// Which curvature to follow (default `sharpness`).
        #[serde(default)]
        source: SharpnessSource,
    },
}

fn default_step_factor() -> f64 {
    0.1
}
fn default_target_c() -> f64 {
    2.5
}
fn default_ema() -> f64 {
    0.9
}

impl ScheduleConfig {
    /// Builds the schedule; errors name the key (`schedule.lr`, `schedule.then.c`, …).
    pub fn build(&self) -> Result<Box<dyn Schedule>> {
        self.build_at("schedule.")
    }

    fn build_at(&self, prefix: &str) -> Result<Box<dyn Schedule>> {
        let built: Result<Box<dyn Schedule>> = match *self {
            ScheduleConfig::Constant { lr } => Constant::new(lr).map(|s| Box::new(s) as _),
            ScheduleConfig::Warmup { steps, ref then } => {
                return Ok(Box::new(Warmup::new(
                    steps,
                    then.build_at(&format!("{prefix}then."))?,
                )))
            }
            ScheduleConfig::Cosine { lr, steps, lr_min } => {
                Cosine::new(lr, lr_min, steps).map(|s| Box::new(s) as _)
            }
            ScheduleConfig::StepDecay { lr, every, factor } => {
                StepDecay::new(lr, every, factor).map(|s| Box::new(s) as _)
            }
            ScheduleConfig::Exponential { lr, gamma } => {
                Exponential::new(lr, gamma).map(|s| Box::new(s) as _)
            }
            ScheduleConfig::COverLambda0 { c } => COverLambda0::new(c).map(|s| Box::new(s) as _),
            ScheduleConfig::GeometryAware {
                c,
                ema,
                lr_min,
                lr_max,
                lr_init,
                source,
            } => GeometryAware::new(c, ema, lr_min, lr_max, lr_init, source)
                .map(|s| Box::new(s) as _),
        };
        built.map_err(|e| match e {
            Error::Invalid {
                key,
                found,
                expected,
            } => Error::Invalid {
                key: match key.strip_prefix("schedule.") {
                    Some(rest) => format!("{prefix}{rest}"),
                    None => key,
                },
                found,
                expected: expected.replace("schedule.", prefix),
            },
            e => e,
        })
    }
}

/// Builds the schedule a configuration describes (same as [`ScheduleConfig::build`]).
pub fn build(config: &ScheduleConfig) -> Result<Box<dyn Schedule>> {
    config.build()
}

/// `x` if finite and ≥ 0, an error naming `key` otherwise.
pub(crate) fn non_negative(key: &str, x: f64) -> Result<f64> {
    if x.is_finite() && x >= 0.0 {
        Ok(x)
    } else {
        invalid(key, x, "a finite number ≥ 0")
    }
}

/// `x` if finite and > 0, an error naming `key` otherwise.
pub(crate) fn positive(key: &str, x: f64) -> Result<f64> {
    if x.is_finite() && x > 0.0 {
        Ok(x)
    } else {
        invalid(key, x, "a finite number > 0")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::{Observation, ScheduleState};

    #[derive(Debug, Deserialize, Serialize)]
    #[serde(deny_unknown_fields)]
    struct Experiment {
        schedule: ScheduleConfig,
    }

    fn parse(s: &str) -> std::result::Result<ScheduleConfig, toml::de::Error> {
        toml::from_str::<Experiment>(s).map(|e| e.schedule)
    }

    #[test]
    fn toml_forms_of_every_kind() {
        let cases = [
            ("{ kind = \"constant\", lr = 0.05 }", ScheduleConfig::Constant { lr: 0.05 }),
            (
                "{ kind = \"cosine\", lr = 1, steps = 100 }",
                ScheduleConfig::Cosine {
                    lr: 1.0,
                    steps: 100,
                    lr_min: 0.0,
                },
            ),
            (
                "{ kind = \"step_decay\", lr = 0.1, every = 30 }",
                ScheduleConfig::StepDecay {
                    lr: 0.1,
                    every: 30,
                    factor: 0.1,
                },
            ),
            (
                "{ kind = \"exponential\", lr = 0.1, gamma = 0.99 }",
                ScheduleConfig::Exponential {
                    lr: 0.1,
                    gamma: 0.99,
                },
            ),
            ("{ kind = \"c_over_lambda0\", c = 3 }", ScheduleConfig::COverLambda0 { c: 3.0 }),
            (
                "{ kind = \"geometry_aware\", lr_max = 0.5 }",
                ScheduleConfig::GeometryAware {
                    c: 2.5,
                    ema: 0.9,
                    lr_min: 0.0,
                    lr_max: 0.5,
                    lr_init: None,
                    source: SharpnessSource::Sharpness,
                },
            ),
            (
                "{ kind = \"geometry_aware\", c = 3.0, ema = 0.5, lr_min = 0.01, lr_max = 2, lr_init = 0.1, source = \"directional_sharpness\" }",
                ScheduleConfig::GeometryAware {
                    c: 3.0,
                    ema: 0.5,
                    lr_min: 0.01,
                    lr_max: 2.0,
                    lr_init: Some(0.1),
                    source: SharpnessSource::DirectionalSharpness,
                },
            ),
        ];
        for (text, want) in cases {
            let got = parse(&format!("schedule = {text}")).unwrap();
            assert_eq!(got, want, "{text}");
            assert!(got.build().is_ok(), "{text}");
            // the resolved config serialises back to the same value
            let back = toml::to_string(&Experiment { schedule: got }).unwrap();
            assert_eq!(parse(&back).unwrap(), want, "{back}");
        }
        // nested warmup, in table form
        let c = parse(
            "[schedule]\nkind = \"warmup\"\nsteps = 10\n[schedule.then]\nkind = \"cosine\"\nlr = 0.1\nsteps = 1000\nlr_min = 0.001\n",
        )
        .unwrap();
        assert_eq!(
            c,
            ScheduleConfig::Warmup {
                steps: 10,
                then: Box::new(ScheduleConfig::Cosine {
                    lr: 0.1,
                    steps: 1000,
                    lr_min: 0.001,
                }),
            }
        );
        let s = c.build().unwrap();
        // step 0 of a 10-step warmup: 1/10 of the cosine's initial 0.1
        assert!((s.lr(0) - 0.01).abs() < 1e-17, "{}", s.lr(0));
        assert_eq!(s.lr(500), Cosine::new(0.1, 0.001, 1000).unwrap().lr(500));
    }

    #[test]
    fn misspelled_keys_and_bad_values_are_named() {
        let e = parse("schedule = { kind = \"constant\", lrr = 0.1 }").unwrap_err();
        assert!(e.to_string().contains("unknown field `lrr`"), "{e}");
        let e =
            parse("schedule = { kind = \"geometry_aware\", lr_max = 1, emma = 0.5 }").unwrap_err();
        assert!(e.to_string().contains("unknown field `emma`"), "{e}");
        let e = parse("schedule = { kind = \"geometry_aware\" }").unwrap_err();
        assert!(e.to_string().contains("missing field `lr_max`"), "{e}");
        let e = parse(
            "[schedule]\nkind = \"warmup\"\nsteps = 10\n[schedule.then]\nkind = \"cosine\"\nlr = 0.1\nstep = 1000\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("unknown field `step`"), "{e}");
        let e = parse("schedule = { kind = \"linear\", lr = 0.1 }").unwrap_err();
        assert!(e.to_string().contains("unknown variant `linear`"), "{e}");
        let e = parse("schedule = { kind = \"cosine\", lr = 0.1, steps = -5 }").unwrap_err();
        assert!(e.to_string().contains("-5"), "{e}");
        // values out of range: the key, nested prefixes included
        let c = parse(
            "[schedule]\nkind = \"warmup\"\nsteps = 10\n[schedule.then]\nkind = \"constant\"\nlr = -1\n",
        )
        .unwrap();
        let e = c.build().unwrap_err().to_string();
        assert_eq!(e, "schedule.then.lr: got -1; expected a finite number ≥ 0");
        let c = parse("schedule = { kind = \"c_over_lambda0\", c = 0 }").unwrap();
        assert!(c
            .build()
            .unwrap_err()
            .to_string()
            .starts_with("schedule.c: got 0"));
    }

    #[test]
    fn state_round_trips_through_toml_bit_for_bit() {
        let c = parse(
            "[schedule]\nkind = \"warmup\"\nsteps = 3\n[schedule.then]\nkind = \"geometry_aware\"\nlr_max = 1\nsource = \"latest\"\n",
        )
        .unwrap();
        let mut a = c.build().unwrap();
        for t in 0..5u64 {
            a.observe(&Observation::at(t).with_directional_sharpness(1.0 / 3.0 + t as f64 * 0.7));
        }
        #[derive(Serialize, Deserialize)]
        struct Ckpt {
            state: ScheduleState,
        }
        let text = toml::to_string(&Ckpt { state: a.state() }).unwrap();
        let state = toml::from_str::<Ckpt>(&text).unwrap().state;
        assert_eq!(state, a.state(), "{text}");
        let mut b = c.build().unwrap();
        b.load_state(&state).unwrap();
        for t in 5..8u64 {
            let o = Observation::at(t).with_sharpness(2.0 + t as f64 / 7.0);
            a.observe(&o);
            b.observe(&o);
            assert_eq!(a.lr(t).to_bits(), b.lr(t).to_bits());
        }
        // a state of another schedule is refused
        let mut other = parse("schedule = { kind = \"c_over_lambda0\", c = 2 }")
            .unwrap()
            .build()
            .unwrap();
        assert!(other.load_state(&state).is_err());
    }
}
