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
//!
//! The forward pass, the loss and the backpropagated δ_l do not depend on v: they form the
//! [`HvpPrimal`] of a batch, which [`Mlp::hvp_with`] reuses across directions (power
//! iteration, Lanczos), so that each further product costs only the tangent passes
//! (for the first layer 2 of the 3 products: h_0 V_0ᵀ and R{δ_0}ᵀ h_0). The 1/n of the
//! mean is applied to the output cotangents δ_{L−1}, R{δ_{L−1}} (`[c, K]`), and the
//! additions, multipliers and φ' are applied in place in one pass after each product.

use candle_core::Tensor;

use crate::fused::{fuse, Steps};
use crate::loss::LossEval;
use crate::mlp::{outer, row_sum, Cache, ParamAcc, Workspace};
use crate::rowspace::RowBasis;
use crate::{invalid, Batch, Loss, Mlp, ParamVec, Result};

/// What one R-operator pass returns.
#[derive(Debug)]
pub struct HvpOutput {
    pub loss: f64,
    /// ∇L when asked for (costs one extra weight-gradient product per layer).
    pub grad: Option<ParamVec>,
    pub hvp: ParamVec,
}

/// The direction-independent part of H v on one chunk of rows.
#[derive(Debug)]
pub(crate) struct PrimalChunk {
    pub start: usize,
    pub len: usize,
    pub cache: Cache,
    pub ev: LossEval,
    /// δ_l (times 1/n) for l = 0 … L−1; δ_0 only when asked for (the tangent pass does
    /// not need it unless φ'' ≠ 0 at layer 0, since R{h_0} = 0).
    pub deltas: Vec<Option<Tensor>>,
    /// g_l = m_l δ_l W_l (times 1/n) for l ≥ 1 where φ'' ≠ 0 at layer l−1.
    pub gs: Vec<Option<Tensor>>,
    /// Buffers of the host tangent passes (`crate::hvp_host`), reused across directions.
    pub ws: Workspace,
}

/// The parts of H v that do not depend on v (forward pass, loss, δ_l) for one model,
/// batch and loss; see [`Mlp::hvp_primal`] and [`Mlp::hvp_with`].
#[derive(Debug)]
pub struct HvpPrimal {
    pub(crate) chunks: Vec<PrimalChunk>,
    pub(crate) n: usize,
    pub(crate) loss: Loss,
    /// The loss L(θ) on the batch.
    pub loss_value: f64,
}

impl HvpPrimal {
    /// Bytes held by the cached tensors (an estimate: shared tensors count once each
    /// time they are held).
    pub fn bytes(&self) -> usize {
        let size = |t: &Tensor| t.elem_count() * t.dtype().size_in_bytes();
        self.chunks
            .iter()
            .map(|c| {
                c.cache.hs[1..].iter().map(size).sum::<usize>()
                    + c.deltas.iter().flatten().map(size).sum::<usize>()
                    + c.gs.iter().flatten().map(size).sum::<usize>()
                    + c.cache
                        .acts
                        .iter()
                        .map(|a| a.d2.iter().chain(&a.d3).map(size).sum::<usize>())
                        .sum::<usize>()
                    + c.ws.bytes()
            })
            .sum()
    }
}

/// The tangent forward pass of one chunk.
struct Tangent {
    /// R{h_l} (None for l = 0).
    rh: Vec<Option<Tensor>>,
    /// R{z_l} of the hidden layers where φ'' ≠ 0 (else None).
    rz: Vec<Option<Tensor>>,
    /// R{z_{L−1}} = R{f}.
    out: Tensor,
}

impl Mlp {
    /// H v, the exact Hessian of the loss times `v`.
    pub fn hvp(&self, batch: &Batch, loss: Loss, v: &ParamVec) -> Result<ParamVec> {
        Ok(self.hvp_full(batch, loss, v, false)?.hvp)
    }

    /// The forward pass, loss and backpropagated δ_l on `batch`, to compute H v for many
    /// v with [`Mlp::hvp_with`]. Holds about two activations per hidden unit and sample.
    pub fn hvp_primal(&self, batch: &Batch, loss: Loss) -> Result<HvpPrimal> {
        self.check_batch(batch)?;
        let n = batch.len();
        let inv_n = 1.0 / n as f64;
        let chunks = self.map_parts(&self.parts(n), |s, c| {
            self.primal_chunk(&batch.rows(s, c)?, s, loss, inv_n, false)
        })?;
        let total: f64 = chunks.iter().map(|pc| pc.ev.value_sum).sum();
        Ok(HvpPrimal {
            chunks,
            n,
            loss,
            loss_value: total * inv_n,
        })
    }

    /// H v from a [`HvpPrimal`] computed by this model on this `batch`.
    pub fn hvp_with(&self, primal: &HvpPrimal, batch: &Batch, v: &ParamVec) -> Result<ParamVec> {
        self.params.check_same_structure(v)?;
        self.check_primal(primal, batch)?;
        self.tangent_sum(primal, &batch.x, v, &self.params)
    }

    /// H v in the first layer's row-space coordinates ([`crate::rowspace`]): `v`'s
    /// first weight block is a reduced D `[out₀, r]` standing for V₀ = D Bᵀ, and the
    /// result's is (H v)_{W₀} B. The tangent passes of [`Mlp::hvp_with`] with the
    /// first layer's input X replaced by Y = X B (`x V₀ᵀ = Y Dᵀ`, `R{δ₀}ᵀ X B = R{δ₀}ᵀ
    /// Y`); exact, since (H v)_{W₀} lies in rowspace(X).
    pub fn hvp_rowspace(
        &self,
        primal: &HvpPrimal,
        batch: &Batch,
        basis: &RowBasis,
        v: &ParamVec,
    ) -> Result<ParamVec> {
        self.check_primal(primal, batch)?;
        if basis.rows() != batch.len() {
            return invalid(format!(
                "hvp_rowspace: the row basis has {} rows, expected the batch's {}",
                basis.rows(),
                batch.len()
            ));
        }
        basis.reduced_zeros(&self.params)?.check_same_structure(v)?;
        self.tangent_sum(primal, basis.y(), v, v)
    }

    /// Σ over chunks of the tangent passes, the first layer's input rows taken from
    /// `first` (`[n, ·]`); the result has `template`'s structure.
    fn tangent_sum(
        &self,
        primal: &HvpPrimal,
        first: &Tensor,
        v: &ParamVec,
        template: &ParamVec,
    ) -> Result<ParamVec> {
        let inv_n = 1.0 / primal.n as f64;
        let idx: Vec<(usize, usize)> = (0..primal.chunks.len()).map(|k| (k, 1)).collect();
        let res = self.map_parts(&idx, |k, _| {
            let pc = &primal.chunks[k];
            let x = first.narrow(0, pc.start, pc.len)?;
            let mut hv = ParamAcc::new(self.depth());
            if !self.tangent_host(pc, &x, primal.loss, v, inv_n, &mut hv)? {
                self.tangent_chunk(pc, &x, primal.loss, v, inv_n, &mut hv)?;
            }
            Ok(hv)
        })?;
        let mut hv = ParamAcc::new(self.depth());
        for part in res {
            hv.merge(part)?;
        }
        hv.finish(template, 1.0)
    }

    /// Errors unless `primal` was computed on `batch` with this model's chunking.
    pub(crate) fn check_primal(&self, primal: &HvpPrimal, batch: &Batch) -> Result<()> {
        let parts = self.parts(batch.len());
        let fits = primal.n == batch.len()
            && primal.chunks.len() == parts.len()
            && primal
                .chunks
                .iter()
                .zip(&parts)
                .all(|(c, &(s, len))| c.start == s && c.len == len);
        if !fits {
            return invalid(
                "hvp_with: the primal pass was computed for another batch or chunk size",
            );
        }
        Ok(())
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
        let inv_n = 1.0 / n as f64;
        let res = self.map_parts(&self.parts(n), |s, c| {
            let b = batch.rows(s, c)?;
            let pc = self.primal_chunk(&b, s, loss, inv_n, with_grad)?;
            let mut gr = ParamAcc::new(depth);
            if with_grad {
                for (l, d) in pc.deltas.iter().enumerate() {
                    let d = d.as_ref().expect("all δ_l are kept with the gradient");
                    self.accumulate_grad(&mut gr, &pc.cache, l, d)?;
                }
            }
            let mut hv = ParamAcc::new(depth);
            self.tangent_chunk(&pc, &b.x, loss, v, inv_n, &mut hv)?;
            Ok((pc.ev.value_sum, gr, hv))
        })?;
        let mut total = 0.0;
        let mut hv = ParamAcc::new(depth);
        let mut gr = ParamAcc::new(depth);
        for (value, g, h) in res {
            total += value;
            gr.merge(g)?;
            hv.merge(h)?;
        }
        Ok(HvpOutput {
            loss: total * inv_n,
            grad: if with_grad {
                Some(gr.finish(&self.params, 1.0)?)
            } else {
                None
            },
            hvp: hv.finish(&self.params, 1.0)?,
        })
    }

    /// Forward pass, loss and δ_l (times `inv_n`) of one chunk; δ_0 only with `need_d0`
    /// or where the tangent pass needs g_1 (φ'' ≠ 0 at layer 0).
    fn primal_chunk(
        &self,
        b: &Batch,
        start: usize,
        loss: Loss,
        inv_n: f64,
        need_d0: bool,
    ) -> Result<PrimalChunk> {
        let depth = self.depth();
        let cache = self.forward_cache(&b.x, 2)?;
        let f = self.output(&cache, b.offset.as_ref())?;
        let ev = loss.eval(&f, &b.y)?;
        let mut deltas = vec![Some(ev.grad.affine(inv_n, 0.0)?)];
        let mut gs = vec![None; depth];
        for l in (1..depth).rev() {
            let m = self.multipliers[l];
            let act = &cache.acts[l - 1];
            if l == 1 && !need_d0 && act.d2.is_none() {
                // δ_0 W_0 is never formed and R{h_0} = 0: nothing uses δ_0.
                deltas.push(None);
                break;
            }
            let d = deltas
                .last()
                .and_then(Option::as_ref)
                .expect("δ_l for l ≥ 1 is set");
            let p = d.matmul(&self.params.layers[l].weight)?;
            let next = if act.d2.is_some() {
                let g = fuse(p, None, None, Steps::scale(m), None)?;
                let next = act.mul_d1_copy(&g)?;
                gs[l] = Some(g);
                next
            } else {
                fuse(p, None, None, Steps::scale(m), Some(&act.d1))?
            };
            deltas.push(Some(next));
        }
        deltas.reverse();
        Ok(PrimalChunk {
            start,
            len: b.len(),
            cache,
            ev,
            deltas,
            gs,
            ws: Workspace::default(),
        })
    }

    /// The tangent forward pass R{h_l}, R{z_l} over a cached chunk with inputs `x`.
    fn tangent_forward(&self, cache: &Cache, x: &Tensor, v: &ParamVec) -> Result<Tangent> {
        let depth = self.depth();
        let mut rh: Vec<Option<Tensor>> = vec![None];
        let mut rz = Vec::with_capacity(depth);
        for (l, (p, dv)) in self.params.layers.iter().zip(&v.layers).enumerate() {
            let m = self.multipliers[l];
            let h = if l == 0 { x } else { &cache.hs[l] };
            // m (h Vᵀ + R{h} Wᵀ) + c; R{h_0} = 0 saves the first layer's second product.
            let r = h.matmul(&dv.weight.t()?)?;
            let q = rh[l]
                .as_ref()
                .map(|t| t.matmul(&p.weight.t()?))
                .transpose()?;
            let steps = Steps::scale(m);
            if l + 1 == depth {
                let out = fuse(r, q.as_ref(), dv.bias.as_ref(), steps, None)?;
                return Ok(Tangent { rh, rz, out });
            }
            let act = &cache.acts[l];
            if act.d2.is_some() {
                let z = fuse(r, q.as_ref(), dv.bias.as_ref(), steps, None)?;
                rh.push(Some(act.mul_d1_copy(&z)?));
                rz.push(Some(z));
            } else {
                rh.push(Some(fuse(
                    r,
                    q.as_ref(),
                    dv.bias.as_ref(),
                    steps,
                    Some(&act.d1),
                )?));
                rz.push(None);
            }
        }
        unreachable!("the loop returns at the last layer")
    }

    /// Adds one chunk's H v contributions (already divided by n) into `hv`.
    pub(crate) fn tangent_chunk(
        &self,
        pc: &PrimalChunk,
        x: &Tensor,
        loss: Loss,
        v: &ParamVec,
        inv_n: f64,
        hv: &mut ParamAcc,
    ) -> Result<()> {
        let depth = self.depth();
        let cache = &pc.cache;
        let tan = self.tangent_forward(cache, x, v)?;
        let mut rd = loss.hess_vec(&pc.ev, &tan.out)?.affine(inv_n, 0.0)?;
        for l in (0..depth).rev() {
            let m = self.multipliers[l];
            let h = if l == 0 { x } else { &cache.hs[l] };
            let mut w_part = outer(&rd, h, m)?;
            if let Some(rh_l) = &tan.rh[l] {
                let d = pc.deltas[l].as_ref().expect("δ_l for l ≥ 1");
                let other = outer(d, rh_l, m)?;
                w_part = fuse(w_part, Some(&other), None, Steps::scale(1.0), None)?;
            }
            hv.add_w(l, w_part)?;
            if self.params.layers[l].bias.is_some() {
                hv.add_b(l, row_sum(&rd)?)?;
            }
            if l > 0 {
                // m (R{δ_l} W_l + δ_l V_l) ⊙ φ'(z_{l−1}) [+ g_l ⊙ φ'' ⊙ R{z_{l−1}}]
                let d = pc.deltas[l].as_ref().expect("δ_l for l ≥ 1");
                let rg = rd.matmul(&self.params.layers[l].weight)?;
                let q = d.matmul(&v.layers[l].weight)?;
                let act = &cache.acts[l - 1];
                let mut next = fuse(rg, Some(&q), None, Steps::scale(m), Some(&act.d1))?;
                if let (Some(d2), Some(g), Some(rz)) = (&act.d2, &pc.gs[l], &tan.rz[l - 1]) {
                    next = (next + ((g * d2)? * rz)?)?;
                }
                rd = next;
            }
        }
        Ok(())
    }

    /// `J v` (the output tangent R{f}) over a cached chunk with inputs `x`.
    pub(crate) fn jvp_cached(&self, cache: &Cache, x: &Tensor, v: &ParamVec) -> Result<Tensor> {
        Ok(self.tangent_forward(cache, x, v)?.out)
    }
}
