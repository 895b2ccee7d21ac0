//! Block Hessian-vector products: H v_1, …, H v_k in one R-operator pass over a cached
//! primal (Pearlmutter 1994, as in `hvp.rs`; issue 15 goal 4), so that each layer does
//! a few matrix-matrix products with k·width columns instead of k matrix-vector-like
//! passes with width columns.
//!
//! The k tangents of a chunk of n rows are stored side by side, `[n, k·w]` (row j holds
//! the k directions' rows j one after the other), which is also the row-major `[n·k, w]`,
//! so every product of the single-direction pass becomes one product:
//!
//! ```text
//! h V_lᵀ        → h [V_1; …; V_k]ᵀ                 [n, k·out]
//! R{h} W_lᵀ     → R{h}_[n·k, in] W_lᵀ               [n·k, out] = [n, k·out]
//! R{δ} W_l      → R{δ}_[n·k, out] W_l               [n, k·in]
//! δ V_l         → δ [V_1 | … | V_k]                 [n, k·in]
//! R{δ}ᵀ h       → R{δ}ᵀ h                          [k·out, in]: direction i = rows i·out…
//! δᵀ R{h}       → δᵀ R{h}                           [out, k·in] → [k, out, in]
//! ```
//!
//! φ'(z), φ''(z) and g_l are shared by the k directions (broadcast over the k axis);
//! the loss Hessian acts on each direction's `[n, c]` block. Every H v_i equals
//! [`Mlp::hvp_with`] on v_i up to the rounding of the products (tested to 1e-12 in f64).

use candle_core::Tensor;

use crate::fused::{fuse, Steps};
use crate::hvp::{HvpPrimal, PrimalChunk};
use crate::mlp::{outer, row_sum};
use crate::{invalid, Batch, LayerParams, Mlp, ParamVec, Result};

/// The k directions of one layer in the two stacked forms the pass needs.
struct LayerBlock {
    /// `[V_1; …; V_k]`, `[k·out, in]`.
    rows: Tensor,
    /// `[V_1 | … | V_k]`, `[out, k·in]`.
    cols: Tensor,
    /// `[c_1, …, c_k]`, `[k·out]`.
    bias: Option<Tensor>,
}

/// The stacked tangent forward pass of one chunk.
struct BlockTangent {
    /// R{h_l}, `[n, k·in_l]` (None for l = 0).
    rh: Vec<Option<Tensor>>,
    /// R{z_l} where φ'' ≠ 0, `[n, k·out_l]`.
    rz: Vec<Option<Tensor>>,
    /// R{f}, `[n, k·c]`.
    out: Tensor,
}

/// `t` `[n, k·w]` times `s` `[n, w]`, the same `s` for each of the k blocks.
fn mul_shared(t: &Tensor, s: &Tensor, k: usize) -> Result<Tensor> {
    let (n, w) = s.dims2()?;
    Ok(t.reshape((n, k, w))?
        .broadcast_mul(&s.unsqueeze(1)?)?
        .reshape((n, k * w))?)
}

/// `a` `[n·k, w]`-viewed product with `m` `[w, o]`, returned as `[n, k·o]`.
fn stacked_matmul(a: &Tensor, m: &Tensor, k: usize) -> Result<Tensor> {
    let (n, kw) = a.dims2()?;
    let p = a.reshape((n * k, kw / k))?.matmul(m)?;
    let o = p.dim(1)?;
    Ok(p.reshape((n, k * o))?)
}

impl Mlp {
    /// H v_i for every direction of `vs` from a [`HvpPrimal`] computed by this model on
    /// `batch`: one R-operator pass with k-column-block products.
    pub fn hvp_block(
        &self,
        primal: &HvpPrimal,
        batch: &Batch,
        vs: &[ParamVec],
    ) -> Result<Vec<ParamVec>> {
        if vs.is_empty() {
            return invalid("hvp_block: no directions given");
        }
        for v in vs {
            self.params.check_same_structure(v)?;
        }
        self.check_primal(primal, batch)?;
        let blocks = self.layer_blocks(vs)?;
        let inv_n = 1.0 / primal.n as f64;
        let idx: Vec<(usize, usize)> = (0..primal.chunks.len()).map(|c| (c, 1)).collect();
        let res = self.map_parts(&idx, |c, _| {
            let pc = &primal.chunks[c];
            let x = batch.x.narrow(0, pc.start, pc.len)?;
            self.block_chunk(pc, &x, primal, &blocks, vs.len(), inv_n)
        })?;
        let mut sum: Vec<(Tensor, Option<Tensor>)> = Vec::new();
        for part in res {
            if sum.is_empty() {
                sum = part;
                continue;
            }
            for ((w, b), (pw, pb)) in sum.iter_mut().zip(part) {
                *w = (&*w + pw)?;
                if let (Some(b), Some(pb)) = (b.as_mut(), pb) {
                    *b = (&*b + pb)?;
                }
            }
        }
        self.split_block(&sum, vs.len())
    }

    fn layer_blocks(&self, vs: &[ParamVec]) -> Result<Vec<LayerBlock>> {
        (0..self.depth())
            .map(|l| {
                let ws: Vec<&Tensor> = vs.iter().map(|v| &v.layers[l].weight).collect();
                let bs: Option<Vec<&Tensor>> =
                    vs.iter().map(|v| v.layers[l].bias.as_ref()).collect();
                Ok(LayerBlock {
                    rows: Tensor::cat(&ws, 0)?,
                    cols: Tensor::cat(&ws, 1)?,
                    bias: bs.map(|b| Tensor::cat(&b, 0)).transpose()?,
                })
            })
            .collect()
    }

    /// The per-direction parameter vectors of the stacked sums `[k·out, in]`, `[k·out]`.
    fn split_block(&self, sum: &[(Tensor, Option<Tensor>)], k: usize) -> Result<Vec<ParamVec>> {
        (0..k)
            .map(|i| {
                let layers = (self.params.layers.iter().zip(sum))
                    .map(|(p, (w, b))| {
                        let out = p.weight.dim(0)?;
                        let bias = match (&p.bias, b) {
                            (Some(_), Some(b)) => Some(b.narrow(0, i * out, out)?.contiguous()?),
                            (Some(t), None) => Some(t.zeros_like()?),
                            (None, _) => None,
                        };
                        Ok(LayerParams {
                            weight: w.narrow(0, i * out, out)?.contiguous()?,
                            bias,
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(ParamVec { layers })
            })
            .collect()
    }

    /// The stacked tangent forward pass R{h_l}, R{z_l}, R{f} of one cached chunk.
    fn block_forward(
        &self,
        pc: &PrimalChunk,
        x: &Tensor,
        blocks: &[LayerBlock],
        k: usize,
    ) -> Result<BlockTangent> {
        let depth = self.depth();
        let (mut rh, mut rz): (Vec<Option<Tensor>>, _) = (vec![None], Vec::new());
        for (l, (p, vb)) in self.params.layers.iter().zip(blocks).enumerate() {
            let h = if l == 0 { x } else { &pc.cache.hs[l] };
            let r = h.matmul(&vb.rows.t()?)?;
            let q = rh[l]
                .as_ref()
                .map(|t| stacked_matmul(t, &p.weight.t()?, k))
                .transpose()?;
            let steps = Steps::scale(self.multipliers[l]);
            let z = fuse(r, q.as_ref(), vb.bias.as_ref(), steps, None)?;
            if l + 1 == depth {
                return Ok(BlockTangent { rh, rz, out: z });
            }
            let act = &pc.cache.acts[l];
            let d1 = act.d1.to_tensor(&pc.cache.hs[l + 1])?;
            rh.push(Some(mul_shared(&z, &d1, k)?));
            rz.push(act.d2.is_some().then_some(z));
        }
        unreachable!("the loop returns at the last layer")
    }

    /// One chunk's stacked contributions `([k·out, in], [k·out])` per layer (÷ n).
    fn block_chunk(
        &self,
        pc: &PrimalChunk,
        x: &Tensor,
        primal: &HvpPrimal,
        blocks: &[LayerBlock],
        k: usize,
        inv_n: f64,
    ) -> Result<Vec<(Tensor, Option<Tensor>)>> {
        let tan = self.block_forward(pc, x, blocks, k)?;
        let c = tan.out.dim(1)? / k;
        let rds = (0..k)
            .map(|i| {
                let a = tan.out.narrow(1, i * c, c)?.contiguous()?;
                primal.loss.hess_vec(&pc.ev, &a)
            })
            .collect::<Result<Vec<_>>>()?;
        let mut rd = Tensor::cat(&rds, 1)?.affine(inv_n, 0.0)?;
        let mut out = Vec::with_capacity(self.depth());
        for l in (0..self.depth()).rev() {
            let (m, p) = (self.multipliers[l], &self.params.layers[l]);
            let h = if l == 0 { x } else { &pc.cache.hs[l] };
            let mut w = outer(&rd, h, m)?;
            if let Some(rh_l) = &tan.rh[l] {
                let d = pc.deltas[l].as_ref().expect("δ_l for l ≥ 1");
                let (o, i) = p.weight.dims2()?;
                let other = outer(d, rh_l, m)?.reshape((o, k, i))?.transpose(0, 1)?;
                w = (w + other.contiguous()?.reshape((k * o, i))?)?;
            }
            let b = p.bias.as_ref().map(|_| row_sum(&rd)).transpose()?;
            out.push((w, b));
            if l > 0 {
                let d = pc.deltas[l].as_ref().expect("δ_l for l ≥ 1");
                let rg = stacked_matmul(&rd, &p.weight, k)?;
                let q = d.matmul(&blocks[l].cols)?;
                let s = fuse(rg, Some(&q), None, Steps::scale(m), None)?;
                let act = &pc.cache.acts[l - 1];
                let mut next = mul_shared(&s, &act.d1.to_tensor(h)?, k)?;
                if let (Some(d2), Some(g), Some(rz)) = (&act.d2, &pc.gs[l], &tan.rz[l - 1]) {
                    next = (next + mul_shared(rz, &(g * d2)?, k)?)?;
                }
                rd = next;
            }
        }
        out.reverse();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{rel_err, tiny_case};
    use crate::{Activation, Batch, Loss, Mlp, ParamVec};
    use candle_core::DType;

    fn case(act: Activation, loss: Loss, bias: bool) -> (Mlp, Batch, Vec<ParamVec>) {
        let (mut mlp, batch) =
            tiny_case(&[3, 5, 4, 2], act, loss, bias, 11, 7, DType::F64).unwrap();
        mlp.chunk_size = 4; // three chunks
        let vs = (0..3)
            .map(|s| mlp.params.randn_like(100 + s).unwrap())
            .collect();
        (mlp, batch, vs)
    }

    const CASES: [(Activation, Loss, bool); 3] = [
        (Activation::Tanh, Loss::Mse, true),
        (Activation::Relu, Loss::Mse, false),
        (Activation::Gelu, Loss::CrossEntropy, true),
    ];

    /// Every H v_i of the block equals the single-direction product to 1e-12 (f64), for
    /// smooth and relu networks, with and without biases, over several chunks.
    #[test]
    fn block_equals_single_hvps_in_f64() {
        for (act, loss, bias) in CASES {
            let (mlp, batch, vs) = case(act, loss, bias);
            let primal = mlp.hvp_primal(&batch, loss).unwrap();
            let block = mlp.hvp_block(&primal, &batch, &vs).unwrap();
            assert_eq!(block.len(), 3);
            for (v, hb) in vs.iter().zip(&block) {
                let single = mlp
                    .hvp_with(&primal, &batch, v)
                    .unwrap()
                    .to_f64_vec()
                    .unwrap();
                assert!(
                    single.iter().any(|x| x.abs() > 1e-6),
                    "{}: zero product",
                    act.name()
                );
                let err = rel_err(&hb.to_f64_vec().unwrap(), &single);
                assert!(err <= 1e-12, "{}: {err:e}", act.name());
            }
        }
    }

    /// H v_i against central differences of the gradient along v_i (h = 1e-5).
    #[test]
    fn block_matches_central_differences_of_the_gradient() {
        let eps = 1e-5;
        for (act, loss, bias) in CASES {
            let (mlp, batch, vs) = case(act, loss, bias);
            let primal = mlp.hvp_primal(&batch, loss).unwrap();
            let block = mlp.hvp_block(&primal, &batch, &vs).unwrap();
            for (v, hb) in vs.iter().zip(&block) {
                let g = |s: f64| {
                    let p = mlp.params.axpy(s, v).unwrap();
                    let m = mlp.with_params(p).unwrap();
                    m.grad(&batch, loss).unwrap().to_f64_vec().unwrap()
                };
                let (gp, gm) = (g(eps), g(-eps));
                let fd: Vec<f64> = gp
                    .iter()
                    .zip(&gm)
                    .map(|(a, b)| (a - b) / (2.0 * eps))
                    .collect();
                let err = rel_err(&hb.to_f64_vec().unwrap(), &fd);
                assert!(err <= 1e-7, "{}: {err:e}", act.name());
            }
        }
    }

    #[test]
    fn rejects_an_empty_block_and_a_foreign_primal() {
        let (mlp, batch, vs) = case(Activation::Tanh, Loss::Mse, true);
        let primal = mlp.hvp_primal(&batch, Loss::Mse).unwrap();
        let e = mlp.hvp_block(&primal, &batch, &[]).unwrap_err().to_string();
        assert!(e.contains("no directions"), "{e}");
        let other = batch.rows(0, 5).unwrap();
        assert!(mlp.hvp_block(&primal, &other, &vs).is_err());
    }
}
