//! The optimizer interface and the step pipeline every optimizer shares.
//!
//! One step maps parameters `θ`, a gradient `g` and a global learning rate `η` to the
//! update `Δθ` and the next parameters `θ' = θ + Δθ`:
//!
//! ```text
//! ĝ    = g · min(1, c / ‖g‖)            clip by global norm c          (crate::clip)
//! ĝ   += w₂ · θ                         L2 weight decay                (crate::weight_decay)
//! ĝ_l  = s_l · ĝ_l                      depthwise scaling, SGD family  (crate::gradient_scaling)
//! d    = direction(ĝ, state)            SGD: ĝ; momentum: v or ĝ + μv; Adam: m̂/(√v̂ + ε)
//! Δθ_l = −η λ_l (d_l + w_dec · θ_l)     per-layer lr scale λ_l         (crate::lr_scales)
//!                                       and decoupled weight decay w_dec
//! θ'   = θ + Δθ
//! ```
//!
//! `λ_l` is the layer's weight scale for `W_l` and its bias scale for `b_l`. The update
//! is returned exactly as applied, so `θ' − θ = Δθ` holds bit for bit and the probes
//! (Taylor coefficients along `Δθ = −η u`, update cosine) see the true step.
//!
//! State (momentum buffers, Adam moments, the step counter) is saved as named tensors
//! (`optim.steps`, `optim.momentum.layers.{i}.weight`, …; see [`crate::state`]) and
//! restored with [`Optimizer::load_state`] so that a resumed run is bit-identical.

use std::collections::HashMap;

use candle_core::Tensor;
use eos_model::ParamVec;

use crate::clip::clip_global_norm;
use crate::lr_scales::LayerLrScales;
use crate::weight_decay::WeightDecay;
use crate::{invalid, Result};

/// The result of one optimizer step.
#[derive(Debug, Clone)]
pub struct Step {
    /// The new parameters `θ' = θ + Δθ`.
    pub params: ParamVec,
    /// The update `Δθ` that was applied.
    pub update: ParamVec,
    /// Global norm `‖g‖` of the raw gradient, computed when clipping is on.
    pub grad_norm: Option<f64>,
    /// The depthwise gradient-scaling factors `s_l` used in this step, when on.
    pub scale_factors: Option<Vec<f64>>,
}

/// An optimizer over [`ParamVec`]s: stateful, with state that can be saved and
/// restored as named tensors.
pub trait Optimizer: Send + std::fmt::Debug {
    /// A short name (`sgd`, `momentum`, `nesterov`, `adam`, `adamw`).
    fn name(&self) -> &'static str;

    /// One step with global learning rate `lr` (finite, ≥ 0): returns the new
    /// parameters and the update. `grad` must have `params`' structure.
    fn step(&mut self, params: &ParamVec, grad: &ParamVec, lr: f64) -> Result<Step>;

    /// The same step's new parameters only, computed in `grad`'s own storage (the
    /// caller hands over a fresh gradient that nothing else holds and needs no update
    /// Δθ): `Ok(Ok(θ'))` bit-identical to `step(..).params`, with the optimizer's
    /// state advanced as `step` would; `Ok(Err(grad))`, nothing done, where this
    /// optimizer (or its options, or the tensors) has no such path: then call `step`.
    fn step_into_grad(
        &mut self,
        params: &ParamVec,
        grad: ParamVec,
        lr: f64,
    ) -> Result<std::result::Result<ParamVec, ParamVec>> {
        let _ = (params, lr);
        Ok(Err(grad))
    }

    /// Number of steps taken (restored by [`Optimizer::load_state`]).
    fn steps_taken(&self) -> u64;

    /// The optimizer's state as named tensors (`optim.…`), for checkpoints.
    fn state(&self) -> Vec<(String, Tensor)>;

    /// Restores the state written by [`Optimizer::state`]; other names in `state`
    /// (e.g. the model's weights in the same checkpoint) are ignored. Buffers move
    /// to the parameters' device and dtype at the next step.
    fn load_state(&mut self, state: &HashMap<String, Tensor>) -> Result<()>;

    /// The diagonal preconditioner of the most recent step as the per-coordinate lr
    /// multiplier `m = P⁻¹`, shaped like `params_like`: that step was
    /// `θ_before − θ_after = lr · m ⊙ d̃` with `d̃` the (clipped, L2-augmented)
    /// gradient for SGD and for Adam with `β₁ = 0`. `None` means the identity.
    ///
    /// It folds in the per-layer lr scales `λ_l` (νP's and every abc
    /// parameterization's `c` exponents, see [`crate::lr_scales`]), the depthwise
    /// gradient scaling `s_l` ([`crate::gradient_scaling`]) and Adam's
    /// `1/(√v̂_t + ε)` with the bias correction of step `t` (the frozen `P_t` of
    /// Cohen et al. 2022, arXiv 2207.14484). The effective sharpness is then
    /// `λ_max(M^½ H M^½)` (`eos_hessian::effective_sharpness`), stable while
    /// `η λ_eff ≤ 2`.
    ///
    /// Not folded in, and left to the caller: momentum is not a preconditioner but
    /// moves the threshold itself — heavy ball (`v ← βv + g`) is stable on a
    /// quadratic while `η λ ≤ 2(1 + β)`, Nesterov while `η λ ≤ (2 + 2β)/(1 + 2β)`,
    /// Adam with `β₁` while `η λ_eff ≤ (2 + 2β₁)/(1 − β₁)` (38 for β₁ = 0.9; Cohen
    /// et al. 2022, §3); clipping is a global, gradient-dependent factor; decoupled
    /// weight decay is not a gradient term.
    ///
    /// Errors when the preconditioner is not known yet: Adam before its first step,
    /// per-layer-normalised scaling before its first step (its factors are not part of
    /// the checkpointed state, so also right after a resume).
    fn preconditioner(&self, params_like: &ParamVec) -> Result<Option<ParamVec>>;
}

/// Options every optimizer takes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CommonOptions {
    /// Per-layer lr factors (weights and biases), from the parameterization; `None`
    /// means 1 everywhere.
    pub lr_scales: Option<LayerLrScales>,
    /// Clip the raw gradient to this global norm (`None`: no clipping).
    pub clip_grad_norm: Option<f64>,
    /// L2 or decoupled weight decay.
    pub weight_decay: WeightDecay,
}

impl CommonOptions {
    /// Errors (naming the key) unless the clip norm is finite and > 0, the decay is
    /// finite and ≥ 0 and the lr scales are valid.
    pub fn validate(&self) -> Result<()> {
        if let Some(c) = self.clip_grad_norm {
            if !(c.is_finite() && c > 0.0) {
                return invalid("optimizer.clip_grad_norm", c, "a finite number > 0");
            }
        }
        self.weight_decay.validate()?;
        if let Some(s) = &self.lr_scales {
            s.validate()?;
        }
        Ok(())
    }

    /// Clipping and the L2 term: `(ĝ, ‖g‖ if clipping)`.
    pub(crate) fn prepare(
        &self,
        params: &ParamVec,
        grad: &ParamVec,
    ) -> Result<(ParamVec, Option<f64>)> {
        params.check_same_structure(grad)?;
        let (g, norm) = match self.clip_grad_norm {
            Some(c) => {
                let (g, n) = clip_global_norm(grad, c)?;
                (g, Some(n))
            }
            None => (grad.clone(), None),
        };
        Ok((self.weight_decay.add_l2(params, &g)?, norm))
    }

    /// `λ_l` of layer `i`'s weights (or bias): 1 without `lr_scales`.
    pub(crate) fn lr_scale(&self, i: usize, bias: bool) -> f64 {
        match &self.lr_scales {
            Some(s) if bias => s.biases[i],
            Some(s) => s.weights[i],
            None => 1.0,
        }
    }

    /// Whether the step is `Δθ = −η λ_l g` (no clipping, no weight decay), so that
    /// [`ParamVec::into_step_of`] can compute it in place.
    pub(crate) fn plain(&self) -> bool {
        self.clip_grad_norm.is_none() && self.weight_decay == crate::WeightDecay::None
    }

    /// `Δθ_l = −η λ_l (d_l + w_dec θ_l)` and `θ + Δθ`.
    pub(crate) fn apply(
        &self,
        params: &ParamVec,
        direction: &ParamVec,
        lr: f64,
    ) -> Result<(ParamVec, ParamVec)> {
        params.check_same_structure(direction)?;
        let depth = params.layers.len();
        if let Some(s) = &self.lr_scales {
            s.check_depth(depth)?;
        }
        let wd = self.weight_decay.decoupled_coeff();
        if wd == 0.0 {
            // Δθ = (−η λ_l)·d and θ + Δθ in two host loops, no candle ops (the same roundings).
            let alpha = |i, bias| -(lr * self.lr_scale(i, bias));
            return Ok(params.scaled_step(direction, alpha)?);
        }
        let step = |d: &Tensor, theta: &Tensor, eta: f64| -> Result<Tensor> {
            let d = if wd != 0.0 {
                (d + theta.affine(wd, 0.0)?)?
            } else {
                d.clone()
            };
            Ok(d.affine(-eta, 0.0)?)
        };
        let mut update = direction.clone();
        for (i, (u, p)) in update.layers.iter_mut().zip(&params.layers).enumerate() {
            let (sw, sb) = match &self.lr_scales {
                Some(s) => (s.weights[i], s.biases[i]),
                None => (1.0, 1.0),
            };
            u.weight = step(&u.weight, &p.weight, lr * sw)?;
            if let (Some(b), Some(pb)) = (&u.bias, &p.bias) {
                u.bias = Some(step(b, pb, lr * sb)?);
            }
        }
        let new = params.add(&update)?;
        Ok((update, new))
    }
}

impl CommonOptions {
    /// The per-layer lr multiplier `λ_l · s_l` (weights) and `β_l · s_l` (biases),
    /// shaped like `params_like`, with `s_l` a per-layer factor on the direction
    /// (`None`: 1); `None` when every factor is 1.
    pub(crate) fn layer_multiplier(
        &self,
        params_like: &ParamVec,
        layer_factors: Option<&[f64]>,
    ) -> Result<Option<ParamVec>> {
        let depth = params_like.layers.len();
        if let Some(s) = &self.lr_scales {
            s.check_depth(depth)?;
        }
        if let Some(f) = layer_factors {
            if f.len() != depth {
                return invalid(
                    "optimizer.gradient_scaling",
                    format!("{} factors", f.len()),
                    format!("one per layer of the model ({depth})"),
                );
            }
        }
        let factor = |i: usize, bias: bool| {
            let lr = match &self.lr_scales {
                Some(s) if bias => s.biases[i],
                Some(s) => s.weights[i],
                None => 1.0,
            };
            lr * layer_factors.map_or(1.0, |f| f[i])
        };
        let all_one = (0..depth).all(|i| factor(i, false) == 1.0 && factor(i, true) == 1.0);
        if all_one {
            return Ok(None);
        }
        let mut out = params_like.clone();
        for (i, l) in out.layers.iter_mut().enumerate() {
            l.weight = l.weight.ones_like()?.affine(factor(i, false), 0.0)?;
            if let Some(b) = &l.bias {
                l.bias = Some(b.ones_like()?.affine(factor(i, true), 0.0)?);
            }
        }
        Ok(Some(out))
    }
}

/// Errors unless `lr` is finite and ≥ 0 (a schedule still waiting for its first
/// observation returns NaN; see [`crate::schedule`]).
pub(crate) fn check_lr(lr: f64) -> Result<()> {
    if lr.is_finite() && lr >= 0.0 {
        Ok(())
    } else {
        invalid(
            "lr",
            lr,
            "a finite learning rate ≥ 0 (NaN: a schedule that has not yet observed the sharpness)",
        )
    }
}
