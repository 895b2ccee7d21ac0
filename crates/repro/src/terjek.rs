//! What the two Terjék reproductions share (`beyond.rs`: arXiv 2502.13110 v2;
//! `nup_eoc.rs`: v1; THEORY.md §6, §9): the sizes of a version ([`Sizes`]: seeds,
//! training and test images, the constant-η grid of standard SGD) and the `--set`
//! overrides they imply, the standard-SGD (SP) overrides, and the series arithmetic
//! both gate on: η_t·λ_t at the probes, the second half of a series, the mean of the
//! last tenth of the logged losses, seed means.

use serde::Deserialize;

use super::{fmt, Check, Run};

/// Standard SGD (SP, He init, no per-layer scaling) instead of the config's νP.
pub const SP: &str = "model.parameterization={kind=\"sp\"}";

/// The sizes both reproductions draw from one version (reduced or full): the `[sizes]`
/// table of `experiments/{beyond-eos,nup-eoc}/{reduced,full}.toml`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sizes {
    pub seeds: Vec<u64>,
    /// Training images (`data.n`).
    pub n: usize,
    /// Test images (`data.test_n`).
    pub test_n: usize,
    /// The constant learning rates of standard SGD (the EoS baselines).
    pub grid: Vec<f64>,
}

impl Sizes {
    /// The data-size overrides.
    pub fn data(&self) -> Vec<String> {
        vec![
            format!("data.n={}", self.n),
            format!("data.test_n={}", self.test_n),
        ]
    }

    /// The overrides every run of `seed` with `steps` steps starts from.
    pub fn base(&self, seed: u64, steps: u64) -> Vec<String> {
        let mut v = vec![format!("train.steps={steps}"), format!("train.seed={seed}")];
        v.extend(self.data());
        v
    }
}

/// Standard SGD (SP) at learning rate `lr`.
pub fn sgd(lr: f64) -> Vec<String> {
    vec![SP.into(), lr_set(lr)]
}

/// `optim.lr=<lr>`.
pub fn lr_set(lr: f64) -> String {
    format!("optim.lr={lr}")
}

/// Constant hidden widths `w` instead of the config's pattern.
pub fn constant_widths(w: usize) -> Vec<String> {
    vec![
        "model.pattern={kind=\"constant\"}".into(),
        format!("model.base_width={w}"),
    ]
}

/// A claim's check: gating in the full version (`full`), a NOTE in the reduced one.
pub fn claim(full: bool, c: Check) -> Check {
    if full {
        c
    } else {
        c.informative()
    }
}

/// (step, lr_t · `key`_t) at the probes of `key` (`sharpness`, `effective_sharpness`).
pub fn eta_lambda(run: &Run, key: &str) -> Vec<(f64, f64)> {
    let lr: std::collections::HashMap<u64, f64> = run
        .series("lr")
        .into_iter()
        .map(|(t, v)| (t as u64, v))
        .collect();
    run.series(key)
        .into_iter()
        .filter_map(|(t, l)| Some((t, lr.get(&(t as u64))? * l)))
        .collect()
}

/// The values at steps ≥ half the last step.
pub fn second_half(v: &[(f64, f64)]) -> Vec<f64> {
    let t_end = v.last().map_or(0.0, |p| p.0);
    v.iter()
        .filter(|p| p.0 >= t_end / 2.0)
        .map(|p| p.1)
        .collect()
}

/// The arithmetic mean (NaN when empty).
pub fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// Mean of the logged minibatch losses over the last tenth of the run.
pub fn last_tenth_loss(run: &Run) -> f64 {
    let l = run.series("loss");
    let t_end = l.last().map_or(0.0, |p| p.0);
    let v: Vec<f64> = l
        .iter()
        .filter(|p| p.0 >= 0.9 * t_end)
        .map(|p| p.1)
        .collect();
    mean(&v)
}

/// "m (a, b, c)": the mean over seeds and each seed's value.
pub fn over_seeds(v: &[f64]) -> String {
    let each: Vec<String> = v.iter().map(|x| fmt(*x)).collect();
    format!("{} ({})", fmt(mean(v)), each.join(", "))
}

/// The committed sizes of each version (for the tests of the settings files).
#[cfg(test)]
pub fn committed_sizes(full: bool) -> Sizes {
    if full {
        Sizes {
            seeds: vec![0, 1, 2],
            n: 4096,
            test_n: 2000,
            grid: vec![0.001, 0.003, 0.01, 0.03, 0.1, 0.3],
        }
    } else {
        Sizes {
            seeds: vec![0],
            n: 1024,
            test_n: 500,
            grid: vec![0.003, 0.01, 0.03],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_half_means_and_overrides() {
        let v = vec![(0.0, 1.0), (10.0, 2.0), (20.0, 3.0), (40.0, 5.0)];
        assert_eq!(second_half(&v), vec![3.0, 5.0]);
        assert_eq!(mean(&[1.0, 2.0, 6.0]), 3.0);
        assert_eq!(over_seeds(&[1.0, 3.0]), "2 (1, 3)");
        assert_eq!(
            committed_sizes(false).base(0, 300),
            [
                "train.steps=300",
                "train.seed=0",
                "data.n=1024",
                "data.test_n=500"
            ]
        );
        assert_eq!(sgd(0.01), [SP, "optim.lr=0.01"]);
    }
}
