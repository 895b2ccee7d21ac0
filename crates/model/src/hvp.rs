//! The exact Hessian-vector product by Pearlmutter's R-operator (Pearlmutter 1994,
//! "Fast exact multiplication by the Hessian"; THEORY.md §8).
//!
//! For a direction v = (V_l, c_l), R{·} = d/dt (·)(θ + t v) at t = 0. Forward tangent:
//!
//! ```text
//! R{h_0} = 0,  R{z_l} = m_l (R{h_l} W_lᵀ + h_l V_lᵀ) + c_l,  R{h_{l+1}} = φ'(z_l) ⊙ R{z_l}
//! ```
//!
//! Backward tangent, from R{δ_{L−1}} = ∇²_f ℓ · R{f}:
//!
//! ```text
//! g_l    = m_l δ_l W_l                      (so δ_{l−1} = g_l ⊙ φ'(z_{l−1}))
//! R{δ_{l−1}} = m_l (R{δ_l} W_l + δ_l V_l) ⊙ φ'(z_{l−1}) + g_l ⊙ φ''(z_{l−1}) ⊙ R{z_{l−1}}
//! (Hv)_{W_l} = (m_l / n) (R{δ_l}ᵀ h_l + δ_lᵀ R{h_l}),   (Hv)_{b_l} = (1/n) Σᵢ R{δ_l}
//! ```
//!
//! ReLU has φ'' = 0, so its second-derivative term is skipped (the Hessian of the
//! piecewise-linear network). Cost: one forward, one tangent forward, one backward and
//! one tangent backward: ≈ 2 gradients.

use candle_core::Tensor;

use crate::mlp::{acc, linear, outer, row_sum, scaled, ParamAcc};
use crate::{Batch, Loss, Mlp, ParamVec, Result};

/// What one R-operator pass returns.
#[derive(Debug)]
pub struct HvpOutput {
    pub loss: f64,
    /// ∇L when asked for (costs one extra weight-gradient product per layer).
    pub grad: Option<ParamVec>,
    pub hvp: ParamVec,
}

impl Mlp {
    /// H v, the exact Hessian of the loss times `v`.
    pub fn hvp(&self, batch: &Batch, loss: Loss, v: &ParamVec) -> Result<ParamVec> {
        Ok(self.hvp_full(batch, loss, v, false)?.hvp)
    }

    /// Loss, optionally the gradient, and H v in one pass.
    pub fn hvp_full(
        &self,
        batch: &Batch,
        loss: Loss,
        v: &ParamVec,
        with_grad: bool,
    ) -> Result<HvpOutput> {
        self.check_batch(batch)?;
        self.params.check_same_structure(v)?;
        let depth = self.depth();
        let n = batch.len();
        let mut total = 0.0;
        let mut hv = ParamAcc::new(depth);
        let mut gr = ParamAcc::new(depth);
        for (s, c) in self.chunks(n) {
            let b = batch.rows(s, c)?;
            let cache = self.forward_cache(&b.x, 2)?;
            // Tangent forward.
            let mut rz: Vec<Tensor> = Vec::with_capacity(depth);
            let mut rh: Vec<Option<Tensor>> = vec![None];
            for (l, (p, dv)) in self.params.layers.iter().zip(&v.layers).enumerate() {
                let m = self.multipliers[l];
                let mut r = linear(&cache.hs[l], &dv.weight, m, dv.bias.as_ref())?;
                if let Some(rh_l) = &rh[l] {
                    r = (r + linear(rh_l, &p.weight, m, None)?)?;
                }
                if l + 1 < depth {
                    rh.push(Some((&r * &cache.acts[l].d1)?));
                }
                rz.push(r);
            }
            let f = self.output(&cache, b.offset.as_ref())?;
            let ev = loss.eval(&f, &b.y)?;
            total += ev.value_sum;
            // Tangent backward.
            let mut rd = loss.hess_vec(&ev, &rz[depth - 1])?;
            let mut d = ev.grad.clone();
            for l in (0..depth).rev() {
                let m = self.multipliers[l];
                let mut w_part = outer(&rd, &cache.hs[l], m)?;
                if let Some(rh_l) = &rh[l] {
                    w_part = (w_part + outer(&d, rh_l, m)?)?;
                }
                hv.add_w(l, w_part)?;
                if self.params.layers[l].bias.is_some() {
                    hv.add_b(l, row_sum(&rd)?)?;
                }
                if with_grad {
                    self.accumulate_grad(&mut gr, &cache, l, &d)?;
                }
                if l > 0 {
                    let w = &self.params.layers[l].weight;
                    let g = scaled(d.matmul(w)?, m)?;
                    let rg = scaled((rd.matmul(w)? + d.matmul(&v.layers[l].weight)?)?, m)?;
                    let act = &cache.acts[l - 1];
                    let mut new_rd = Some((rg * &act.d1)?);
                    if let Some(d2) = &act.d2 {
                        acc(&mut new_rd, ((&g * d2)? * &rz[l - 1])?)?;
                    }
                    d = (g * &act.d1)?;
                    rd = new_rd.expect("set above");
                }
            }
        }
        let inv_n = 1.0 / n as f64;
        Ok(HvpOutput {
            loss: total * inv_n,
            grad: if with_grad {
                Some(gr.finish(&self.params, inv_n)?)
            } else {
                None
            },
            hvp: hv.finish(&self.params, inv_n)?,
        })
    }
}
