//! The exact gradient of the loss by reverse-mode differentiation (backprop).
//!
//! With δ_l = ∂ℓ/∂z_l per sample (`[c, n_{l+1}]`):
//!
//! ```text
//! δ_{L−1} = ∇_f ℓ,   δ_{l−1} = (m_l δ_l W_l) ⊙ φ'(z_{l−1})
//! ∂L/∂W_l = (m_l / n) δ_lᵀ h_l,   ∂L/∂b_l = (1/n) Σᵢ δ_l
//! ```
//!
//! (THEORY.md §8; Rumelhart, Hinton & Williams 1986.) The input gradient δ_{−1} is never
//! formed: the first layer costs one product less. The 1/n of the mean is applied to
//! δ_{L−1} (`[c, K]`, tiny) rather than to the gradient blocks, and `φ'` with `m_l` are
//! applied in one in-place pass over the product δ_l W_l. The rows are processed in
//! parts (`Mlp::parts`: concurrently on narrow networks) whose sums are added in
//! order.

use candle_core::Tensor;

use crate::fused::{fuse, Steps};
use crate::mlp::{outer, row_sum, Cache, ParamAcc};
use crate::{Batch, Loss, Mlp, ParamVec, Result};

impl Mlp {
    /// Backpropagates the output cotangent `delta` through a cached chunk, calling
    /// `visit(l, δ_l, cache)` for l = L−1 … 0.
    pub(crate) fn backprop(
        &self,
        cache: &Cache,
        delta: Tensor,
        mut visit: impl FnMut(usize, &Tensor) -> Result<()>,
    ) -> Result<()> {
        let mut d = delta;
        for l in (0..self.depth()).rev() {
            visit(l, &d)?;
            if l > 0 {
                let w = &self.params.layers[l].weight;
                d = fuse(
                    d.matmul(w)?,
                    None,
                    None,
                    Steps::scale(self.multipliers[l]),
                    Some(&cache.acts[l - 1].d1),
                )?;
            }
        }
        Ok(())
    }

    /// Accumulates `Σ_chunk` weight/bias contributions of `δ_l` into `acc`.
    pub(crate) fn accumulate_grad(
        &self,
        acc: &mut ParamAcc,
        cache: &Cache,
        l: usize,
        d: &Tensor,
    ) -> Result<()> {
        acc.add_w(l, outer(d, &cache.hs[l], self.multipliers[l])?)?;
        if self.params.layers[l].bias.is_some() {
            acc.add_b(l, row_sum(d)?)?;
        }
        Ok(())
    }

    /// The loss and its exact gradient.
    pub fn loss_and_grad(&self, batch: &Batch, loss: Loss) -> Result<(f64, ParamVec)> {
        self.check_batch(batch)?;
        let n = batch.len();
        let inv_n = 1.0 / n as f64;
        let parts = self.parts(n);
        let res = self.map_parts(&parts, |s, c| {
            let b = batch.rows(s, c)?;
            let cache = self.forward_cache(&b.x, 1)?;
            let f = self.output(&cache, b.offset.as_ref())?;
            let ev = loss.eval(&f, &b.y)?;
            let mut acc = ParamAcc::new(self.depth());
            self.backprop(&cache, ev.grad.affine(inv_n, 0.0)?, |l, d| {
                self.accumulate_grad(&mut acc, &cache, l, d)
            })?;
            Ok((ev.value_sum, acc))
        })?;
        let mut total = 0.0;
        let mut acc = ParamAcc::new(self.depth());
        for (v, a) in res {
            total += v;
            acc.merge(a)?;
        }
        Ok((total * inv_n, acc.finish(&self.params, 1.0)?))
    }

    /// The exact gradient ∇L.
    pub fn grad(&self, batch: &Batch, loss: Loss) -> Result<ParamVec> {
        Ok(self.loss_and_grad(batch, loss)?.1)
    }
}
