//! Output Jacobian products: JVP `J v`, VJP `Jᵀ u`, the Gauss-Newton product and the
//! trace of the neural tangent kernel (THEORY.md §8).
//!
//! With J_i = ∂f(x_i)/∂θ (`K × P` per sample):
//!
//! ```text
//! jvp:  (J v)_i = d/dt f(x_i; θ + t v)               forward tangent (jet of order 1)
//! vjp:  Jᵀ u = Σ_i J_iᵀ u_i                          backprop with δ_{L−1} = u
//! G v = (1/n) Σ_i J_iᵀ ∇²_f ℓ_i J_i v                Gauss-Newton (Schraudolph 2002)
//! tr Θ / n = (1/n) Σ_i Σ_k ‖∂f_ik/∂θ‖²
//! ```
//!
//! The NTK trace is exact and cheap: per sample ∂f_ik/∂W_l = m_l δ^{(k)}_{i,l} h_{i,l}ᵀ is
//! rank one, so ‖∂f_ik/∂W_l‖² = m_l² ‖δ^{(k)}_{i,l}‖² ‖h_{i,l}‖², and one backward pass
//! per output k (δ_{L−1} = e_k) gives every sample's norm at once.

use candle_core::{DType, Tensor, D};

use crate::mlp::ParamAcc;
use crate::{Batch, Loss, Mlp, ParamVec, Result};

impl Mlp {
    /// `J v` for the inputs `x` (`[n, n_L]`).
    pub fn jvp(&self, x: &Tensor, v: &ParamVec) -> Result<Tensor> {
        self.params.check_same_structure(v)?;
        let mut outs = Vec::new();
        for (s, c) in self.chunks(x.dims()[0]) {
            let jet = self.output_jet(&x.narrow(0, s, c)?, v, 1)?;
            outs.push(jet.t[1].clone().expect("first-order tangent"));
        }
        Ok(Tensor::cat(&outs, 0)?)
    }

    /// `Jᵀ u = Σ_i J_iᵀ u_i` for output cotangents `u` (`[n, n_L]`); no 1/n.
    pub fn vjp(&self, x: &Tensor, u: &Tensor) -> Result<ParamVec> {
        let mut acc = ParamAcc::new(self.depth());
        for (s, c) in self.chunks(x.dims()[0]) {
            let cache = self.forward_cache(&x.narrow(0, s, c)?, 1)?;
            self.backprop(&cache, u.narrow(0, s, c)?, |l, d| {
                self.accumulate_grad(&mut acc, &cache, l, d)
            })?;
        }
        acc.finish(&self.params, 1.0)
    }

    /// The Gauss-Newton product `G v = (1/n) Jᵀ (∇²_f ℓ) J v`.
    pub fn gnvp(&self, batch: &Batch, loss: Loss, v: &ParamVec) -> Result<ParamVec> {
        self.check_batch(batch)?;
        self.params.check_same_structure(v)?;
        let n = batch.len();
        let mut acc = ParamAcc::new(self.depth());
        for (s, c) in self.chunks(n) {
            let b = batch.rows(s, c)?;
            let cache = self.forward_cache(&b.x, 1)?;
            let jv = self.jvp_cached(&cache, &b.x, v)?;
            let f = self.output(&cache, b.offset.as_ref())?;
            let ev = loss.eval(&f, &b.y)?;
            let hjv = loss.hess_vec(&ev, &jv)?.affine(1.0 / n as f64, 0.0)?;
            self.backprop(&cache, hjv, |l, d| {
                self.accumulate_grad(&mut acc, &cache, l, d)
            })?;
        }
        acc.finish(&self.params, 1.0)
    }

    /// `(1/n) Σ_i Σ_k ‖∂f_ik/∂θ‖²`, exactly (one backward pass per output).
    pub fn ntk_trace(&self, x: &Tensor) -> Result<f64> {
        let n = x.dims()[0];
        let k_out = *self.widths().last().expect("widths");
        let mut total = 0.0;
        for (s, c) in self.chunks(n) {
            let cache = self.forward_cache(&x.narrow(0, s, c)?, 1)?;
            // ‖h_{i,l}‖² (+1 for the bias), per sample and layer.
            let hn: Vec<Tensor> = (0..self.depth())
                .map(|l| {
                    let mut t = cache.hs[l].sqr()?.sum_keepdim(D::Minus1)?;
                    if self.params.layers[l].bias.is_some() {
                        t = (t.affine(self.multipliers[l].powi(2), 0.0)? + 1.0)?;
                    } else {
                        t = t.affine(self.multipliers[l].powi(2), 0.0)?;
                    }
                    Ok(t)
                })
                .collect::<Result<_>>()?;
            for k in 0..k_out {
                let mut e = vec![0.0f64; k_out];
                e[k] = 1.0;
                let ek = Tensor::from_vec(e, (1, k_out), &candle_core::Device::Cpu)?
                    .to_dtype(self.dtype())?
                    .to_device(self.device())?
                    .broadcast_as((c, k_out))?
                    .contiguous()?;
                self.backprop(&cache, ek, |l, d| {
                    let dn = d.sqr()?.sum_keepdim(D::Minus1)?;
                    total += (dn * &hn[l])?
                        .sum_all()?
                        .to_dtype(DType::F64)?
                        .to_scalar::<f64>()?;
                    Ok(())
                })?;
            }
        }
        Ok(total / n as f64)
    }
}
