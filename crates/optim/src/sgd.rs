//! SGD, heavy-ball momentum (Polyak 1964) and Nesterov momentum (Sutskever, Martens,
//! Dahl & Hinton 2013), in PyTorch's `torch.optim.SGD` form (no dampening):
//!
//! ```text
//! plain:      d_t = ĝ_t
//! heavy ball: v_t = μ v_{t−1} + ĝ_t  (v_1 = ĝ_1),   d_t = v_t
//! Nesterov:   v_t = μ v_{t−1} + ĝ_t  (v_1 = ĝ_1),   d_t = ĝ_t + μ v_t
//! Δθ_l = −η λ_l (d_l + w_dec θ_l)
//! ```
//!
//! `ĝ` is the gradient after clipping, the L2 term and the depthwise scaling (see
//! [`crate::optimizer`]). With a constant lr the heavy-ball form equals the
//! "velocity" form `u ← μ u − η g, θ ← θ + u` with `u = −η v`; with a changing lr
//! the lr multiplies the buffer at each step (as in PyTorch).

use std::collections::HashMap;

use candle_core::Tensor;
use eos_model::ParamVec;

use crate::gradient_scaling::GradientScaling;
use crate::optimizer::{check_lr, CommonOptions, Optimizer, Step};
use crate::state::{align, named, read_buffer, read_steps, steps_tensor, MOMENTUM};
use crate::{invalid, Error, Result};

/// Which momentum an [`Sgd`] uses.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub enum Momentum {
    /// Plain SGD.
    #[default]
    None,
    /// Heavy-ball momentum with coefficient `beta` ∈ [0, 1).
    HeavyBall {
        /// μ.
        beta: f64,
    },
    /// Nesterov momentum with coefficient `beta` ∈ [0, 1).
    Nesterov {
        /// μ.
        beta: f64,
    },
}

/// SGD with optional (heavy-ball or Nesterov) momentum and depthwise gradient scaling.
#[derive(Debug, Clone)]
pub struct Sgd {
    momentum: Momentum,
    options: CommonOptions,
    scaling: GradientScaling,
    buffer: Option<ParamVec>,
    steps: u64,
    /// The depthwise factors `s_l` of the last step (for the preconditioner).
    last_factors: Option<Vec<f64>>,
}

impl Sgd {
    /// An SGD optimizer; errors (naming the key) on out-of-range hyperparameters.
    pub fn new(
        momentum: Momentum,
        options: CommonOptions,
        scaling: GradientScaling,
    ) -> Result<Self> {
        if let Momentum::HeavyBall { beta } | Momentum::Nesterov { beta } = momentum {
            if !(0.0..1.0).contains(&beta) {
                return invalid("optimizer.momentum", beta, "a number in [0, 1)");
            }
        }
        options.validate()?;
        scaling.validate()?;
        Ok(Self {
            momentum,
            options,
            scaling,
            buffer: None,
            steps: 0,
            last_factors: None,
        })
    }

    /// Plain SGD `θ' = θ − η g`, no options.
    pub fn plain() -> Self {
        Self::new(
            Momentum::None,
            CommonOptions::default(),
            GradientScaling::None,
        )
        .expect("the default options are valid")
    }

    /// The momentum buffer `v` (after at least one step with momentum).
    pub fn buffer(&self) -> Option<&ParamVec> {
        self.buffer.as_ref()
    }
}

impl Optimizer for Sgd {
    fn name(&self) -> &'static str {
        match self.momentum {
            Momentum::None => "sgd",
            Momentum::HeavyBall { .. } => "momentum",
            Momentum::Nesterov { .. } => "nesterov",
        }
    }

    fn step(&mut self, params: &ParamVec, grad: &ParamVec, lr: f64) -> Result<Step> {
        check_lr(lr)?;
        let (g, grad_norm) = self.options.prepare(params, grad)?;
        let (g, scale_factors) = self.scaling.apply(params, &g)?;
        let mut new_buffer = None;
        let direction = match self.momentum {
            Momentum::None => g,
            Momentum::HeavyBall { beta } | Momentum::Nesterov { beta } => {
                // the buffer is replaced only once the whole step has succeeded
                let v = match &self.buffer {
                    None => g.clone(),
                    Some(v) => g.axpy(beta, &align(v.clone(), params)?)?,
                };
                let d = match self.momentum {
                    Momentum::Nesterov { .. } => g.axpy(beta, &v)?,
                    _ => v.clone(),
                };
                new_buffer = Some(v);
                d
            }
        };
        let (update, params) = self.options.apply(params, &direction, lr)?;
        if new_buffer.is_some() {
            self.buffer = new_buffer;
        }
        self.steps += 1;
        self.last_factors.clone_from(&scale_factors);
        Ok(Step {
            params,
            update,
            grad_norm,
            scale_factors,
        })
    }

    /// Plain SGD without clipping, weight decay or gradient scaling: `θ' = θ + (−η λ_l) g`
    /// in `grad`'s storage, the roundings of [`Optimizer::step`] (`ParamVec::into_step_of`).
    fn step_into_grad(
        &mut self,
        params: &ParamVec,
        grad: ParamVec,
        lr: f64,
    ) -> Result<std::result::Result<ParamVec, ParamVec>> {
        let plain = self.momentum == Momentum::None && self.scaling == GradientScaling::None;
        if !(plain && self.options.plain()) {
            return Ok(Err(grad));
        }
        check_lr(lr)?;
        if let Some(s) = &self.options.lr_scales {
            // The depth check of `CommonOptions::apply`.
            s.check_depth(params.layers.len())?;
        }
        let alpha = |i, bias| -(lr * self.options.lr_scale(i, bias));
        let r = grad.into_step_of(params, alpha)?;
        if r.is_ok() {
            self.steps += 1;
            self.last_factors = None;
        }
        Ok(r)
    }

    fn steps_taken(&self) -> u64 {
        self.steps
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = vec![steps_tensor(self.steps)];
        if let Some(v) = &self.buffer {
            out.extend(named(MOMENTUM, v));
        }
        out
    }

    fn load_state(&mut self, state: &HashMap<String, Tensor>) -> Result<()> {
        let steps = read_steps(state)?;
        self.buffer = match self.momentum {
            Momentum::None => None,
            _ => read_buffer(state, MOMENTUM, steps)?,
        };
        self.steps = steps;
        self.last_factors = None;
        Ok(())
    }

    /// `m_l = λ_l s_l` per layer: lr scales times the depthwise factors (static, or
    /// those the last step computed). Momentum is not folded in (see the trait).
    fn preconditioner(&self, params_like: &ParamVec) -> Result<Option<ParamVec>> {
        let factors = match &self.scaling {
            GradientScaling::None => None,
            GradientScaling::Static(s) => Some(s.as_slice()),
            GradientScaling::PerLayerNormalized => match &self.last_factors {
                Some(s) => Some(s.as_slice()),
                None => {
                    return Err(Error::State(
                        "preconditioner: per-layer-normalised gradient scaling has no \
                         factors before its first step (expected a step first)"
                            .into(),
                    ))
                }
            },
        };
        self.options.layer_multiplier(params_like, factors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, flat, layered, pv1};
    use crate::{LayerLrScales, WeightDecay};

    // The two-step sequences below all start from θ₀ = (1, −2) with the fixed
    // gradients g₁ = (0.5, 1), g₂ = (−1, 0.25) and lr η = 0.1.
    fn run(opt: &mut dyn Optimizer) -> (Vec<f64>, Vec<f64>) {
        let t0 = pv1(&[1.0, -2.0]);
        let t1 = opt.step(&t0, &pv1(&[0.5, 1.0]), 0.1).unwrap().params;
        let t2 = opt.step(&t1, &pv1(&[-1.0, 0.25]), 0.1).unwrap().params;
        (flat(&t1), flat(&t2))
    }

    fn sgd(momentum: Momentum, weight_decay: WeightDecay) -> Sgd {
        let options = CommonOptions {
            weight_decay,
            ..Default::default()
        };
        Sgd::new(momentum, options, GradientScaling::None).unwrap()
    }

    #[test]
    fn plain_sgd_is_params_minus_lr_g_exactly() {
        let theta = layered(
            &[((2, 2), true), ((1, 2), false)],
            &[0.3, -1.7, 2.9, 0.11, 5.0, -6.0, 1e-3, 7.5],
        );
        let g = layered(
            &[((2, 2), true), ((1, 2), false)],
            &[1.25, 0.7, -3.3, 1e5, 0.0, 2.0, -0.9, 1e-8],
        );
        let lr = 0.0123;
        let step = Sgd::plain().step(&theta, &g, lr).unwrap();
        let (t, gv) = (flat(&theta), flat(&g));
        let want: Vec<f64> = t.iter().zip(&gv).map(|(t, g)| t - lr * g).collect();
        assert_eq!(flat(&step.params), want);
        let du: Vec<f64> = gv.iter().map(|g| -(lr * g)).collect();
        assert_eq!(flat(&step.update), du);
        assert!(step.grad_norm.is_none() && step.scale_factors.is_none());
    }

    #[test]
    fn step_into_grad_equals_step_and_advances_the_state() {
        let shapes = [((2, 2), true), ((1, 2), false)];
        let theta = layered(&shapes, &[0.3, -1.7, 2.9, 0.11, 5.0, -6.0, 1e-3, 7.5]);
        let g = layered(&shapes, &[1.25, 0.0, -3.3, 1e5, 0.0, 2.0, -0.9, 1e-8]);
        // a fresh copy: the in-place path writes into the gradient's storage
        let fresh = |g: &ParamVec| g.map(|t| Ok(t.copy()?)).unwrap();
        let options = CommonOptions {
            lr_scales: Some(LayerLrScales::new(vec![2.0, 0.5], vec![3.0, 0.0]).unwrap()),
            ..Default::default()
        };
        for opts in [CommonOptions::default(), options] {
            let mut a = Sgd::new(Momentum::None, opts.clone(), GradientScaling::None).unwrap();
            let mut b = a.clone();
            let want = a.step(&theta, &g, 0.0123).unwrap().params;
            let got = b
                .step_into_grad(&theta, fresh(&g), 0.0123)
                .unwrap()
                .unwrap();
            let bits = |v: &ParamVec| flat(v).iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&want));
            assert_eq!(b.steps_taken(), 1);
            assert!(b.step_into_grad(&theta, fresh(&g), f64::NAN).is_err());
        }
        // momentum, clipping, decay, scaling: no in-place path, the gradient comes back
        let others = [
            sgd(Momentum::HeavyBall { beta: 0.9 }, WeightDecay::None),
            sgd(Momentum::None, WeightDecay::L2(0.1)),
            sgd(Momentum::None, WeightDecay::Decoupled(0.1)),
            Sgd::new(
                Momentum::None,
                CommonOptions::default(),
                GradientScaling::Static(vec![2.0, 1.0]),
            )
            .unwrap(),
        ];
        for mut o in others {
            let back = o
                .step_into_grad(&theta, fresh(&g), 0.1)
                .unwrap()
                .unwrap_err();
            assert_eq!(flat(&back), flat(&g));
            assert_eq!(o.steps_taken(), 0);
        }
    }

    #[test]
    fn heavy_ball_two_steps_by_hand() {
        // v₁ = g₁ = (0.5, 1);            θ₁ = θ₀ − 0.1 v₁ = (0.95, −2.1)
        // v₂ = 0.9 v₁ + g₂ = (−0.55, 1.15); θ₂ = θ₁ − 0.1 v₂ = (1.005, −2.215)
        let (t1, t2) = run(&mut sgd(
            Momentum::HeavyBall { beta: 0.9 },
            WeightDecay::None,
        ));
        assert_close(&t1, &[0.95, -2.1], 1e-15);
        assert_close(&t2, &[1.005, -2.215], 1e-15);
    }

    #[test]
    fn nesterov_two_steps_by_hand() {
        // v₁ = g₁ = (0.5, 1);  d₁ = g₁ + 0.9 v₁ = (0.95, 1.9);  θ₁ = (0.905, −2.19)
        // v₂ = 0.9 v₁ + g₂ = (−0.55, 1.15);  d₂ = g₂ + 0.9 v₂ = (−1.495, 1.285)
        // θ₂ = θ₁ − 0.1 d₂ = (1.0545, −2.3185)
        let (t1, t2) = run(&mut sgd(
            Momentum::Nesterov { beta: 0.9 },
            WeightDecay::None,
        ));
        assert_close(&t1, &[0.905, -2.19], 1e-15);
        assert_close(&t2, &[1.0545, -2.3185], 1e-15);
    }

    #[test]
    fn weight_decay_l2_vs_decoupled() {
        // Plain SGD: θ − η(g + wθ) either way. w = 0.5:
        // θ₁ = (1, −2) − 0.1((0.5, 1) + 0.5(1, −2)) = (0.9, −2)
        // θ₂ = θ₁ − 0.1((−1, 0.25) + 0.5(0.9, −2)) = (0.955, −1.925)
        for wd in [WeightDecay::L2(0.5), WeightDecay::Decoupled(0.5)] {
            let (t1, t2) = run(&mut sgd(Momentum::None, wd));
            assert_close(&t1, &[0.9, -2.0], 1e-15);
            assert_close(&t2, &[0.955, -1.925], 1e-15);
        }
        // Momentum μ = 0.9, L2: ĝ₁ = g₁ + 0.5θ₀ = (1, 0), v₁ = (1, 0), θ₁ = (0.9, −2);
        // ĝ₂ = g₂ + 0.5θ₁ = (−0.55, −0.75), v₂ = 0.9v₁ + ĝ₂ = (0.35, −0.75),
        // θ₂ = θ₁ − 0.1v₂ = (0.865, −1.925).
        let (t1, t2) = run(&mut sgd(
            Momentum::HeavyBall { beta: 0.9 },
            WeightDecay::L2(0.5),
        ));
        assert_close(&t1, &[0.9, -2.0], 1e-15);
        assert_close(&t2, &[0.865, -1.925], 1e-15);
        // Decoupled: v₁ = g₁, Δ₁ = −0.1(v₁ + 0.5θ₀) = (−0.1, 0), θ₁ = (0.9, −2);
        // v₂ = (−0.55, 1.15), Δ₂ = −0.1(v₂ + 0.5θ₁) = (0.01, −0.015), θ₂ = (0.91, −2.015):
        // the decay no longer passes through the buffer.
        let (t1, t2) = run(&mut sgd(
            Momentum::HeavyBall { beta: 0.9 },
            WeightDecay::Decoupled(0.5),
        ));
        assert_close(&t1, &[0.9, -2.0], 1e-15);
        assert_close(&t2, &[0.91, -2.015], 1e-15);
    }

    #[test]
    fn clipping_caps_the_global_norm_of_the_step() {
        let options = CommonOptions {
            clip_grad_norm: Some(1.0),
            ..Default::default()
        };
        let mut opt = Sgd::new(Momentum::None, options, GradientScaling::None).unwrap();
        // g = (3, 4), ‖g‖ = 5 > 1: the step is −η (0.6, 0.8)
        let step = opt.step(&pv1(&[1.0, 1.0]), &pv1(&[3.0, 4.0]), 0.5).unwrap();
        assert_eq!(step.grad_norm, Some(5.0));
        assert_close(&flat(&step.update), &[-0.3, -0.4], 1e-15);
        assert!((step.update.norm().unwrap() - 0.5).abs() < 1e-15);
        // below the cap the step is plain SGD
        let step = opt.step(&pv1(&[1.0, 1.0]), &pv1(&[0.3, 0.4]), 0.5).unwrap();
        assert_eq!(flat(&step.update), [-0.15, -0.2]);
    }

    #[test]
    fn per_layer_lr_scales_apply_to_the_right_layer() {
        // layer 0: W [1, 2] + b [1]; layer 1: W [1, 1] + b [1].
        // weights ×(2, 0.5), biases ×(3, 0): Δ = −η·scale·g with η = 0.1.
        let shapes = [((1, 2), true), ((1, 1), true)];
        let theta = layered(&shapes, &[1.0, 2.0, 3.0, 4.0, 5.0]);
        let g = layered(&shapes, &[1.0, -1.0, 2.0, 4.0, 8.0]);
        let options = CommonOptions {
            lr_scales: Some(LayerLrScales::new(vec![2.0, 0.5], vec![3.0, 0.0]).unwrap()),
            ..Default::default()
        };
        let mut opt = Sgd::new(Momentum::None, options, GradientScaling::None).unwrap();
        let step = opt.step(&theta, &g, 0.1).unwrap();
        // −0.2·(1, −1), −0.3·2, −0.05·4, −0·8
        assert_close(&flat(&step.update)[..4], &[-0.2, 0.2, -0.6, -0.2], 1e-15);
        assert_eq!(flat(&step.update)[4], 0.0);
        assert_close(&flat(&step.params)[..4], &[0.8, 2.2, 2.4, 3.8], 1e-15);
        // a table for another depth is an error
        let options = CommonOptions {
            lr_scales: Some(LayerLrScales::uniform(3)),
            ..Default::default()
        };
        let mut opt = Sgd::new(Momentum::None, options, GradientScaling::None).unwrap();
        assert!(opt.step(&theta, &g, 0.1).is_err());
    }

    #[test]
    fn lr_and_hyperparameters_are_checked() {
        let e = Sgd::plain()
            .step(&pv1(&[1.0]), &pv1(&[1.0]), f64::NAN)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("lr: got NaN"), "{e}");
        let e = Sgd::new(
            Momentum::HeavyBall { beta: 1.0 },
            CommonOptions::default(),
            GradientScaling::None,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("optimizer.momentum: got 1; expected a number in [0, 1)"),
            "{e}"
        );
        let e = Sgd::plain()
            .step(&pv1(&[1.0, 2.0]), &pv1(&[1.0]), 0.1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("layers.0.weight: shape"), "{e}");
    }

    #[test]
    fn preconditioner_reproduces_the_step() {
        use crate::testing::assert_preconditioner_reproduces_step as check;
        // layer 0: W [1, 2] + b [1]; layer 1: W [1, 1] + b [1].
        let shapes = [((1, 2), true), ((1, 1), true)];
        let theta = layered(&shapes, &[1.0, 2.0, 3.0, 4.0, 5.0]);
        let g = layered(&shapes, &[1.0, -1.0, 2.0, 4.0, 8.0]);
        // plain SGD: the identity
        let mut opt = Sgd::plain();
        assert!(opt.preconditioner(&theta).unwrap().is_none());
        check(&mut opt, &theta, &g, 0.1, 4e-16);
        // lr scales (2, 0.5 | 3, 0.25) × static depthwise factors (4, 0.1):
        // m = (8, 8 | 12 | 0.05 | 0.025), and the step is lr·m·g up to two roundings
        let options = CommonOptions {
            lr_scales: Some(LayerLrScales::new(vec![2.0, 0.5], vec![3.0, 0.25]).unwrap()),
            ..Default::default()
        };
        let static_s = GradientScaling::Static(vec![4.0, 0.1]);
        let mut opt = Sgd::new(Momentum::None, options.clone(), static_s).unwrap();
        let m = opt.preconditioner(&theta).unwrap().unwrap();
        assert_close(&flat(&m), &[8.0, 8.0, 12.0, 0.05, 0.025], 1e-15);
        let t1 = check(&mut opt, &theta, &g, 0.1, 4e-16);
        check(&mut opt, &t1, &g, 0.1, 4e-16);
        // per-layer normalised: unknown before the first step, then the step's factors
        let mut opt = Sgd::new(
            Momentum::HeavyBall { beta: 0.0 },
            options,
            GradientScaling::PerLayerNormalized,
        )
        .unwrap();
        let e = opt.preconditioner(&theta).unwrap_err().to_string();
        assert!(e.contains("before its first step"), "{e}");
        check(&mut opt, &theta, &g, 0.1, 4e-16);
    }
}
