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

use candle_core::{CpuStorage, DType, InplaceOp2, InplaceOp3, Layout, Tensor, WithDType};

use crate::fused::{fuse, Steps, D1};
use crate::hvp::{HvpPrimal, PrimalChunk};
use crate::mlp::{outer, row_sum};
use crate::{invalid, Batch, LayerParams, Mlp, ParamVec, Result};

/// The k directions of one layer in the two stacked forms the pass needs.
struct LayerBlock {
    /// `[V_1; …; V_k]`, `[k·out, in]`.
    rows: Tensor,
    /// `[V_1 | … | V_k]`, `[out, k·in]` (layers l ≥ 1 only: `δ_0` is never formed).
    cols: Option<Tensor>,
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

/// What [`shared`] does to each element `x` of a `[n, k·w]` block tensor, with `s` the
/// element of the shared `[n, w]` source in the same row and column within its block
/// (and `a` the block-shaped source's element for `MulAdd`).
#[derive(Debug, Clone, Copy)]
enum Shared {
    /// `x ← x` where `s > 0`, else `low · x` (φ' of the relu family from h = φ(z)).
    Mask(f64),
    /// `x ← x · s` (dense φ').
    Dense,
    /// `x ← x + a · s` (the φ'' term `R{z} ⊙ g ⊙ φ''`).
    MulAdd,
}

/// One pass over the rows of `dst` (`[n, k·w]`), `s` `[n, w]`, `a` `[n, k·w]` (MulAdd).
fn shared_rows<T: WithDType>(dst: &mut [T], w: usize, s: &[T], a: &[T], kind: Shared) {
    let kw = dst.len() / (s.len() / w).max(1);
    for (r, row) in dst.chunks_exact_mut(kw).enumerate() {
        let sr = &s[r * w..(r + 1) * w];
        match kind {
            Shared::Mask(low) => {
                let low = T::from_f64(low);
                for blk in row.chunks_exact_mut(w) {
                    for (x, &h) in blk.iter_mut().zip(sr) {
                        *x = if h > T::zero() { *x } else { *x * low };
                    }
                }
            }
            Shared::Dense => {
                for blk in row.chunks_exact_mut(w) {
                    for (x, &d) in blk.iter_mut().zip(sr) {
                        *x *= d;
                    }
                }
            }
            Shared::MulAdd => {
                let ar = &a[r * kw..(r + 1) * kw];
                for (blk, ab) in row.chunks_exact_mut(w).zip(ar.chunks_exact(w)) {
                    for ((x, &av), &d) in blk.iter_mut().zip(ab).zip(sr) {
                        *x += av * d;
                    }
                }
            }
        }
    }
}

/// [`shared_rows`] split over [`crate::threads::count`] threads by rows when large.
fn shared_run<T: WithDType>(dst: &mut [T], w: usize, s: &[T], a: &[T], kind: Shared) {
    let n = s.len() / w.max(1);
    let threads = crate::threads::count().min(n).max(1);
    if threads == 1 || dst.len() < SHARED_PAR_MIN {
        return shared_rows(dst, w, s, a, kind);
    }
    let kw = dst.len() / n;
    let per = n.div_ceil(threads);
    std::thread::scope(|sc| {
        for (i, part) in dst.chunks_mut(per * kw).enumerate() {
            let rows = part.len() / kw;
            let sp = &s[i * per * w..(i * per + rows) * w];
            let ap = if a.is_empty() {
                a
            } else {
                &a[i * per * kw..(i * per + rows) * kw]
            };
            sc.spawn(move || shared_rows(part, w, sp, ap, kind));
        }
    });
}

/// Elements of a block tensor from which [`shared_run`] splits the rows over threads.
const SHARED_PAR_MIN: usize = 1 << 18;

/// The in-place op behind [`shared`]: `w`, the block width.
#[derive(Debug, Clone, Copy)]
struct SharedOp {
    kind: Shared,
    w: usize,
}

fn host_slice<'a, T: WithDType>(s: &'a CpuStorage, l: &Layout) -> candle_core::Result<&'a [T]> {
    let v = s.as_slice::<T>()?;
    Ok(&v[l.start_offset()..l.start_offset() + l.shape().elem_count()])
}

impl SharedOp {
    fn exec(
        &self,
        d: &mut CpuStorage,
        dl: &Layout,
        s: (&CpuStorage, &Layout),
        a: Option<(&CpuStorage, &Layout)>,
    ) -> candle_core::Result<()> {
        let (o, len) = (dl.start_offset(), dl.shape().elem_count());
        macro_rules! go {
            ($v:expr, $t:ty) => {{
                let sv = host_slice::<$t>(s.0, s.1)?;
                let av = match a {
                    Some((st, l)) => host_slice::<$t>(st, l)?,
                    None => &[],
                };
                shared_run::<$t>(&mut $v[o..o + len], self.w, sv, av, self.kind);
                Ok(())
            }};
        }
        match d {
            CpuStorage::F32(v) => go!(v, f32),
            CpuStorage::F64(v) => go!(v, f64),
            _ => candle_core::bail!("hvp_block: unsupported dtype"),
        }
    }
}

impl InplaceOp2 for SharedOp {
    fn name(&self) -> &'static str {
        "eos-block-shared"
    }
    fn cpu_fwd(
        &self,
        d: &mut CpuStorage,
        dl: &Layout,
        s: &CpuStorage,
        sl: &Layout,
    ) -> candle_core::Result<()> {
        self.exec(d, dl, (s, sl), None)
    }
}

impl InplaceOp3 for SharedOp {
    fn name(&self) -> &'static str {
        "eos-block-shared"
    }
    fn cpu_fwd(
        &self,
        d: &mut CpuStorage,
        dl: &Layout,
        a: &CpuStorage,
        al: &Layout,
        s: &CpuStorage,
        sl: &Layout,
    ) -> candle_core::Result<()> {
        self.exec(d, dl, (s, sl), Some((a, al)))
    }
}

fn host_ok(t: &Tensor, dtype: DType) -> bool {
    t.device().is_cpu() && t.is_contiguous() && t.dtype() == dtype
}

/// `t` `[n, k·w]` (a fresh temporary: modified in place on the host path) times φ'
/// `[n, w]`, the same φ' for each of the k blocks; `None` for φ' ≡ 1.
fn mul_d1(t: Tensor, d1: &D1, k: usize) -> Result<Tensor> {
    let (src, kind) = match d1 {
        D1::One => return Ok(t),
        D1::Mask { h, low } => (h, Shared::Mask(*low)),
        D1::Dense(d) => (d, Shared::Dense),
    };
    let (n, w) = src.dims2()?;
    let dt = t.dtype();
    if host_ok(&t, dt) && host_ok(src, dt) && matches!(dt, DType::F32 | DType::F64) {
        t.inplace_op2(src, &SharedOp { kind, w })?;
        return Ok(t);
    }
    let d = d1.to_tensor(src)?;
    Ok(t.reshape((n, k, w))?
        .broadcast_mul(&d.unsqueeze(1)?)?
        .reshape((n, k * w))?)
}

/// `t + a ⊙ s` for `t`, `a` `[n, k·w]` and `s` `[n, w]` shared by the k blocks (`t` a
/// fresh temporary, modified in place on the host path).
fn add_mul_shared(t: Tensor, a: &Tensor, s: &Tensor, k: usize) -> Result<Tensor> {
    let (n, w) = s.dims2()?;
    let dt = t.dtype();
    let host = [&t, a, s].iter().all(|x| host_ok(x, dt));
    if host && matches!(dt, DType::F32 | DType::F64) && a.dims() == t.dims() {
        let op = SharedOp {
            kind: Shared::MulAdd,
            w,
        };
        t.inplace_op3(a, s, &op)?;
        return Ok(t);
    }
    let p = a
        .reshape((n, k, w))?
        .broadcast_mul(&s.unsqueeze(1)?)?
        .reshape((n, k * w))?;
    Ok((t + p)?)
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
                    cols: (l > 0).then(|| Tensor::cat(&ws, 1)).transpose()?,
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
            if act.d2.is_some() {
                rh.push(Some(mul_d1(z.copy()?, &act.d1, k)?));
                rz.push(Some(z));
            } else {
                rh.push(Some(mul_d1(z, &act.d1, k)?));
                rz.push(None);
            }
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
                let cols = blocks[l].cols.as_ref().expect("set for l ≥ 1");
                let q = d.matmul(cols)?;
                let s = fuse(rg, Some(&q), None, Steps::scale(m), None)?;
                let act = &pc.cache.acts[l - 1];
                let mut next = mul_d1(s, &act.d1, k)?;
                if let (Some(d2), Some(g), Some(rz)) = (&act.d2, &pc.gs[l], &tan.rz[l - 1]) {
                    next = add_mul_shared(next, rz, &(g * d2)?, k)?;
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
