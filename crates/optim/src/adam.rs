//! Adam (Kingma & Ba 2015, "Adam: A Method for Stochastic Optimization", Algorithm 1)
//! and AdamW (Loshchilov & Hutter 2019), in PyTorch's `torch.optim.Adam`/`AdamW` form:
//!
//! ```text
//! m_t = β₁ m_{t−1} + (1 − β₁) ĝ_t,      v_t = β₂ v_{t−1} + (1 − β₂) ĝ_t²   (m₀ = v₀ = 0)
//! d_t = (m_t / (1 − β₁ᵗ)) / (√v_t / √(1 − β₂ᵗ) + ε)     (bias-corrected m̂ / (√v̂ + ε))
//! Δθ_l = −η λ_l (d_l + w_dec θ_l)
//! ```
//!
//! Adam's weight decay is the L2 term inside `ĝ` ([`crate::WeightDecay::L2`]);
//! AdamW's is decoupled ([`crate::WeightDecay::Decoupled`]). Defaults (PyTorch):
//! `β₁ = 0.9`, `β₂ = 0.999`, `ε = 1e-8`. Depthwise gradient scaling is not offered:
//! Adam's direction is invariant to a per-layer factor on the gradient (up to ε).

use std::collections::HashMap;

use candle_core::Tensor;
use eos_model::ParamVec;

use crate::optimizer::{check_lr, CommonOptions, Optimizer, Step};
use crate::state::{align, named, read_buffer, read_steps, steps_tensor, ADAM_M, ADAM_V};
use crate::weight_decay::WeightDecay;
use crate::{invalid, Error, Result};

/// Adam's hyperparameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamParams {
    /// β₁ ∈ [0, 1) (default 0.9).
    pub beta1: f64,
    /// β₂ ∈ [0, 1) (default 0.999).
    pub beta2: f64,
    /// ε > 0 (default 1e-8).
    pub eps: f64,
}

impl Default for AdamParams {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

/// Adam or AdamW (by the kind of [`CommonOptions::weight_decay`]).
#[derive(Debug, Clone)]
pub struct Adam {
    hyper: AdamParams,
    options: CommonOptions,
    m: Option<ParamVec>,
    v: Option<ParamVec>,
    steps: u64,
}

impl Adam {
    /// An Adam optimizer; errors (naming the key) on out-of-range hyperparameters.
    pub fn new(hyper: AdamParams, options: CommonOptions) -> Result<Self> {
        for (key, b) in [
            ("optimizer.beta1", hyper.beta1),
            ("optimizer.beta2", hyper.beta2),
        ] {
            if !(0.0..1.0).contains(&b) {
                return invalid(key, b, "a number in [0, 1)");
            }
        }
        if !(hyper.eps.is_finite() && hyper.eps > 0.0) {
            return invalid("optimizer.eps", hyper.eps, "a finite number > 0");
        }
        options.validate()?;
        Ok(Self {
            hyper,
            options,
            m: None,
            v: None,
            steps: 0,
        })
    }

    /// The moments `(m, v)` (after at least one step).
    pub fn moments(&self) -> Option<(&ParamVec, &ParamVec)> {
        self.m.as_ref().zip(self.v.as_ref())
    }
}

impl Optimizer for Adam {
    fn name(&self) -> &'static str {
        match self.options.weight_decay {
            WeightDecay::Decoupled(_) => "adamw",
            _ => "adam",
        }
    }

    fn step(&mut self, params: &ParamVec, grad: &ParamVec, lr: f64) -> Result<Step> {
        check_lr(lr)?;
        let AdamParams { beta1, beta2, eps } = self.hyper;
        let (g, grad_norm) = self.options.prepare(params, grad)?;
        // the moments are replaced only once the whole step has succeeded
        let m = match &self.m {
            Some(m) => align(m.clone(), params)?,
            None => params.zeros_like()?,
        };
        let v = match &self.v {
            Some(v) => align(v.clone(), params)?,
            None => params.zeros_like()?,
        };
        let m = m.zip_map(&g, |m, g| {
            Ok((m.affine(beta1, 0.0)? + g.affine(1.0 - beta1, 0.0)?)?)
        })?;
        let v = v.zip_map(&g, |v, g| {
            Ok((v.affine(beta2, 0.0)? + g.sqr()?.affine(1.0 - beta2, 0.0)?)?)
        })?;
        let t = (self.steps + 1) as f64;
        let bc1 = 1.0 - beta1.powf(t);
        let bc2 = 1.0 - beta2.powf(t);
        let direction = m.zip_map(&v, |m, v| {
            let denom = v.sqrt()?.affine(1.0 / bc2.sqrt(), eps)?;
            Ok((m.affine(1.0 / bc1, 0.0)? / denom)?)
        })?;
        let (update, new) = self.options.apply(params, &direction, lr)?;
        self.m = Some(m);
        self.v = Some(v);
        self.steps += 1;
        Ok(Step {
            params: new,
            update,
            grad_norm,
            scale_factors: None,
        })
    }

    fn steps_taken(&self) -> u64 {
        self.steps
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = vec![steps_tensor(self.steps)];
        if let (Some(m), Some(v)) = (&self.m, &self.v) {
            out.extend(named(ADAM_M, m));
            out.extend(named(ADAM_V, v));
        }
        out
    }

    fn load_state(&mut self, state: &HashMap<String, Tensor>) -> Result<()> {
        let steps = read_steps(state)?;
        let m = read_buffer(state, ADAM_M, steps)?;
        let v = read_buffer(state, ADAM_V, steps)?;
        if let (Some(m), Some(v)) = (&m, &v) {
            m.check_same_structure(v)?;
        }
        (self.m, self.v, self.steps) = (m, v, steps);
        Ok(())
    }

    /// `m = λ_l / (√v_t / √(1 − β₂ᵗ) + ε)`: the denominator of the last step `t`,
    /// computed as the step computes it, times the per-layer lr scale.
    fn preconditioner(&self, params_like: &ParamVec) -> Result<Option<ParamVec>> {
        let Some(v) = &self.v else {
            return Err(Error::State(
                "preconditioner: Adam has no second moment before its first step \
                 (expected a step first)"
                    .into(),
            ));
        };
        let v = align(v.clone(), params_like)?;
        let bc2 = 1.0 - self.hyper.beta2.powf(self.steps as f64);
        let inv = v.map(|v| {
            let denom = v.sqrt()?.affine(1.0 / bc2.sqrt(), self.hyper.eps)?;
            Ok(denom.recip()?)
        })?;
        let Some(scales) = self.options.layer_multiplier(params_like, None)? else {
            return Ok(Some(inv));
        };
        Ok(Some(inv.zip_map(&scales, |a, b| Ok((a * b)?))?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, flat, pv1};

    /// θ₀ = (1, −2), g₁ = (0.5, 1), g₂ = (−1, 0.25), η = 0.1, default β₁, β₂, ε.
    fn run(weight_decay: WeightDecay) -> (Vec<f64>, Vec<f64>) {
        let options = CommonOptions {
            weight_decay,
            ..Default::default()
        };
        let mut opt = Adam::new(AdamParams::default(), options).unwrap();
        let t0 = pv1(&[1.0, -2.0]);
        let t1 = opt.step(&t0, &pv1(&[0.5, 1.0]), 0.1).unwrap().params;
        let t2 = opt.step(&t1, &pv1(&[-1.0, 0.25]), 0.1).unwrap().params;
        (flat(&t1), flat(&t2))
    }

    // Reference values: the same recursion in plain Python floats
    // (`m=b1*m+(1-b1)*g; v=b2*v+(1-b2)*g*g; d=(m/(1-b1**t))/(sqrt(v)/sqrt(1-b2**t)+eps)`),
    // which rounds differently from the tensor ops: tolerance 1e-12 relative.
    #[test]
    fn adam_two_steps_by_hand() {
        // t = 1: m₁ = 0.1 g₁ = (0.05, 0.1), v₁ = 0.001 g₁² = (2.5e-4, 1e-3),
        //   m̂ = (0.5, 1), v̂ = (0.25, 1), d = m̂/(√v̂ + ε) = (0.5/(0.5+1e-8), 1/(1+1e-8))
        //   ≈ (1 − 2e-8, 1 − 1e-8): θ₁ = (0.900000002, −2.099999999).
        // t = 2: m₂ = 0.9 m₁ + 0.1 g₂ = (−0.055, 0.115),
        //   v₂ = 0.999 v₁ + 0.001 g₂² = (1.24975e-3, 1.0615e-3),
        //   1 − β₁² = 0.19, 1 − β₂² = 0.001999: m̂ = (−0.2894737, 0.6052632),
        //   √v̂ = (0.7906881, 0.7287085), d = (−0.3661035, 0.8305975),
        //   θ₂ = θ₁ − 0.1 d = (0.9366104, −2.1830598).
        let (t1, t2) = run(WeightDecay::None);
        assert_close(&t1, &[0.900000002, -2.099999999], 1e-12);
        assert_close(&t2, &[0.9366103542405654, -2.183059751227727], 1e-12);
    }

    #[test]
    fn adam_l2_vs_adamw_decoupled() {
        // L2, w = 0.5: ĝ₁ = g₁ + 0.5 θ₀ = (1, 0): d₁ = (1/(1+1e-8), 0), θ₁ = (0.900000001, −2):
        // the decay is normalised by √v̂ like the gradient.
        let (t1, t2) = run(WeightDecay::L2(0.5));
        assert_close(&t1, &[0.900000001, -2.0], 1e-12);
        assert_close(&t2, &[0.8771703774851737, -1.9255863190461089], 1e-12);
        // decoupled: d₁ ≈ (1, 1) from g₁ alone, plus 0.5 θ₀ = (0.5, −1):
        // θ₁ = θ₀ − 0.1 (1.5, 0) ≈ (0.85, −2) (up to ε terms).
        let (t1, t2) = run(WeightDecay::Decoupled(0.5));
        assert_close(&t1, &[0.8500000019999999, -1.999999999], 1e-12);
        assert_close(&t2, &[0.8441103541405653, -1.9830597512777273], 1e-12);
    }

    #[test]
    fn hyperparameters_are_checked() {
        let bad = AdamParams {
            beta2: 1.0,
            ..Default::default()
        };
        let e = Adam::new(bad, CommonOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("optimizer.beta2: got 1; expected a number in [0, 1)"),
            "{e}"
        );
        let bad = AdamParams {
            eps: 0.0,
            ..Default::default()
        };
        let e = Adam::new(bad, CommonOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("optimizer.eps"), "{e}");
    }

    #[test]
    fn preconditioner_reproduces_the_step_with_beta1_zero() {
        use crate::testing::{assert_preconditioner_reproduces_step as check, layered};
        use crate::LayerLrScales;
        let shapes = [((1, 2), true), ((1, 1), false)];
        let theta = layered(&shapes, &[1.0, -2.0, 0.5, 3.0]);
        let (g1, g2) = (
            layered(&shapes, &[0.5, 1.0, -4.0, 1e-3]),
            layered(&shapes, &[-1.0, 0.25, 2.0, 0.0]),
        );
        let hyper = AdamParams {
            beta1: 0.0,
            ..Default::default()
        };
        let options = CommonOptions {
            lr_scales: Some(LayerLrScales::new(vec![2.0, 0.5], vec![3.0, 1.0]).unwrap()),
            ..Default::default()
        };
        let mut opt = Adam::new(hyper, options).unwrap();
        let e = opt.preconditioner(&theta).unwrap_err().to_string();
        assert!(e.contains("before its first step"), "{e}");
        let t1 = check(&mut opt, &theta, &g1, 0.1, 4e-16);
        // after step 1, v̂ = g₁², so m = λ / (|g₁| + ε) in closed form
        let m = flat(&opt.preconditioner(&theta).unwrap().unwrap());
        let want: Vec<f64> = [(2.0, 0.5), (2.0, 1.0), (3.0, 4.0), (0.5, 1e-3)]
            .iter()
            .map(|(l, g)| l / (g + 1e-8))
            .collect();
        assert_close(&m, &want, 1e-15);
        // step 2 (a zero gradient entry has m = λ/(√v̂ + ε) all the same)
        check(&mut opt, &t1, &g2, 0.1, 4e-16);
    }
}
