//! Depthwise gradient scaling (Terjék, arXiv 2502.13110 v2; THEORY.md §6), applied.
//!
//! Before the SGD (or momentum) step, layer `l`'s gradient is multiplied by `s_l`:
//!
//! ```text
//! ĝ_l = s_l · g_l          (weight and bias of layer l alike)
//! static:                s_l from eos_param::DepthwiseScaling::factors(widths),
//!                        e.g. width_power: s_l = (n_l / n̄)^{−q}
//! per_layer_normalized:  s_l = ‖W_l‖_F / ‖g_{W_l}‖_F, every step
//!                        ⇒ plain SGD moves ‖ΔW_l‖_F = η λ_l ‖W_l‖_F
//! ```
//!
//! The factors themselves are defined in [`eos_param::depthwise_scaling`] (and νP's
//! normalised factor in [`eos_param::nup`]); this file
//! only applies them. **(inferred)**: the normalised factor is computed from the
//! weight alone (the gradient after clipping and the L2 term) and applied to the
//! layer's bias too, so that a zero-initialised bias still moves; the paper's
//! networks have no biases.

use eos_model::ParamVec;
use eos_param::nup::normalized_factor;
use eos_param::{DepthwiseScaling, LayerFactors};

use crate::{invalid, Result};

/// The depthwise scaling an SGD-family optimizer applies.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum GradientScaling {
    /// `s_l = 1` (no pass over the gradient).
    #[default]
    None,
    /// Fixed factors, one per layer.
    Static(Vec<f64>),
    /// `s_l = ‖W_l‖_F / ‖g_{W_l}‖_F`, computed every step.
    PerLayerNormalized,
}

impl From<LayerFactors> for GradientScaling {
    fn from(f: LayerFactors) -> Self {
        match f {
            LayerFactors::Static(s) => GradientScaling::Static(s),
            LayerFactors::PerLayerNormalized => GradientScaling::PerLayerNormalized,
        }
    }
}

impl GradientScaling {
    /// Resolves a configured scaling for a network with `widths = [n₀, …, n_L]`
    /// (`none` gives [`GradientScaling::None`]).
    pub fn resolve(scaling: &DepthwiseScaling, widths: &[usize]) -> Result<Self> {
        match scaling {
            DepthwiseScaling::None {} => Ok(GradientScaling::None),
            DepthwiseScaling::PerLayerNormalized {} => Ok(GradientScaling::PerLayerNormalized),
            s => Ok(s.factors(widths)?.into()),
        }
    }

    /// Errors unless static factors are finite and ≥ 0.
    pub fn validate(&self) -> Result<()> {
        if let GradientScaling::Static(s) = self {
            if let Some((i, x)) = s
                .iter()
                .enumerate()
                .find(|(_, x)| !(x.is_finite() && **x >= 0.0))
            {
                return invalid(
                    format!("optimizer.gradient_scaling[{i}]"),
                    x,
                    "a finite factor ≥ 0",
                );
            }
        }
        Ok(())
    }

    /// `(ĝ, Some(s))` with `ĝ_l = s_l g_l`, or `(g, None)` without scaling.
    pub fn apply(
        &self,
        params: &ParamVec,
        grad: &ParamVec,
    ) -> Result<(ParamVec, Option<Vec<f64>>)> {
        let factors = match self {
            GradientScaling::None => return Ok((grad.clone(), None)),
            GradientScaling::Static(s) => {
                if s.len() != grad.layers.len() {
                    return invalid(
                        "optimizer.gradient_scaling",
                        format!("{} factors", s.len()),
                        format!("one per layer of the model ({})", grad.layers.len()),
                    );
                }
                s.clone()
            }
            GradientScaling::PerLayerNormalized => params
                .layers
                .iter()
                .zip(&grad.layers)
                .map(|(p, g)| {
                    Ok(normalized_factor(
                        frobenius(&p.weight)?,
                        frobenius(&g.weight)?,
                    ))
                })
                .collect::<Result<Vec<f64>>>()?,
        };
        let mut out = grad.clone();
        for (l, s) in out.layers.iter_mut().zip(&factors) {
            if *s != 1.0 {
                l.weight = l.weight.affine(*s, 0.0)?;
                if let Some(b) = &l.bias {
                    l.bias = Some(b.affine(*s, 0.0)?);
                }
            }
        }
        Ok((out, Some(factors)))
    }
}

/// `‖t‖_F`, accumulated in f64.
pub(crate) fn frobenius(t: &candle_core::Tensor) -> Result<f64> {
    let t = t.to_dtype(candle_core::DType::F64)?;
    Ok(t.sqr()?.sum_all()?.to_scalar::<f64>()?.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{flat, layered};
    use crate::{CommonOptions, Momentum, Optimizer, Sgd};

    /// widths [2, 1, 3, 1]: W₁ [1, 2], W₂ [3, 1], W₃ [1, 3] (no biases).
    fn net(values: &[f64]) -> ParamVec {
        layered(&[((1, 2), false), ((3, 1), false), ((1, 3), false)], values)
    }

    #[test]
    fn static_width_power_factors_multiply_layer_gradients() {
        // width_power q = 1, widths [2, 1, 3, 1]: hidden widths 1, 3, n̄ = 2;
        // s = (n̄/n₁, n̄/n₂, n̄/n₂ (readout fan-in)) = (2, 2/3, 2/3).
        let widths = [2, 1, 3, 1];
        let scaling =
            GradientScaling::resolve(&DepthwiseScaling::WidthPower { q: 1.0 }, &widths).unwrap();
        let s = [2.0, 2.0 / 3.0, 2.0 / 3.0];
        assert_eq!(scaling, GradientScaling::Static(s.to_vec()));
        let theta = net(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
        let g: Vec<f64> = vec![0.5, -1.0, 1.5, -2.0, 2.5, -3.0, 3.5, -4.0];
        let mut opt = Sgd::new(Momentum::None, CommonOptions::default(), scaling).unwrap();
        let step = opt.step(&theta, &net(&g), 0.1).unwrap();
        assert_eq!(step.scale_factors.as_deref(), Some(&s[..]));
        let layer_of = [0, 0, 1, 1, 1, 2, 2, 2];
        let (t0, u) = (flat(&theta), flat(&step.update));
        for i in 0..8 {
            let want = -0.1 * (s[layer_of[i]] * g[i]);
            assert!(
                (u[i] - want).abs() <= 1e-15 * want.abs(),
                "{i}: {} vs {want}",
                u[i]
            );
            assert_eq!(flat(&step.params)[i], t0[i] + u[i]);
        }
    }

    #[test]
    fn per_layer_normalized_moves_each_layer_by_lr_times_its_norm() {
        let theta = net(&[1.0, -2.0, 0.5, 3.0, -1.5, 0.25, 2.0, -0.75]);
        let grad = net(&[0.3, 0.1, -4.0, 2.0, 1.0, 0.01, -0.02, 0.03]);
        for momentum in [Momentum::None, Momentum::HeavyBall { beta: 0.0 }] {
            let mut opt = Sgd::new(
                momentum,
                CommonOptions::default(),
                GradientScaling::PerLayerNormalized,
            )
            .unwrap();
            let lr = 0.05;
            let step = opt.step(&theta, &grad, lr).unwrap();
            let (wn, un) = (
                theta.layer_norms_sq().unwrap(),
                step.update.layer_norms_sq().unwrap(),
            );
            for l in 0..3 {
                // ‖ΔW_l‖ = lr ‖W_l‖ (f64: 1e-12 relative, a few roundings of a norm)
                let (want, got) = (lr * wn[l].sqrt(), un[l].sqrt());
                assert!(
                    (got - want).abs() < 1e-12 * want,
                    "layer {l}: {got} vs {want}"
                );
            }
        }
        // a zero gradient layer gets factor 0 (no division by zero)
        let mut g0 = flat(&grad);
        g0[0] = 0.0;
        g0[1] = 0.0;
        let (_, s) = GradientScaling::PerLayerNormalized
            .apply(&theta, &net(&g0))
            .unwrap();
        assert_eq!(s.unwrap()[0], 0.0);
    }

    #[test]
    fn wrong_number_of_static_factors_is_an_error() {
        let theta = net(&[0.0; 8]);
        let e = GradientScaling::Static(vec![1.0, 2.0])
            .apply(&theta, &theta)
            .unwrap_err()
            .to_string();
        assert!(e.contains("optimizer.gradient_scaling: got 2 factors; expected one per layer of the model (3)"), "{e}");
    }
}
