//! Ensembles: the loss and exact gradient of E MLPs of one shape, each on its own batch,
//! in one pass with the members stacked along a leading axis (issue 15, goal 3).
//!
//! Member e has its own parameters θ_e, multipliers m_{e,l} and batch (x_e, y_e,
//! offset_e). Activations are stacked as `[E, c, n_l]`, weights as `[E, n_{l+1}, n_l]`,
//! and every layer's product is one batched matmul (candle's 3-D matmul: one gemm per
//! member with the shapes and strides of the 2-D call); every element-wise step is one
//! pass over all members, each with its own m_{e,l} and bias. The formulas are those of
//! backprop (`grad.rs`, THEORY.md §8; Rumelhart, Hinton & Williams 1986):
//!
//! ```text
//! z_l = m_l · h_l W_lᵀ + b_l,  h_{l+1} = φ(z_l),  f = z_{L−1} − offset
//! δ_{L−1} = ∇_f ℓ / n,  δ_{l−1} = (m_l δ_l W_l) ⊙ φ'(z_{l−1})
//! ∂L/∂W_l = m_l δ_lᵀ h_l,  ∂L/∂b_l = Σᵢ δ_l
//! ```
//!
//! **Exactness.** Every step repeats the operations of [`Mlp::loss_and_grad`] on a batch
//! of one part (the fused kernel's order: scale, bias, activation, mask; `m` applied
//! before or after the weight-gradient product by the same rule as `mlp::outer`; the
//! loss through [`Loss::eval`] itself; bias sums in row order), so each member's loss
//! and gradient equal a lone call's **bit for bit** (tested in `tests/ensemble.rs`).
//! The stacked path takes relu-family and identity activations on contiguous f32/f64
//! CPU tensors whose batch is one part ([`Mlp`]'s chunking and row split); any other
//! member is computed alone by [`Mlp::loss_and_grad`] (the same result by definition).

use candle_core::{CpuStorage, DType, Device, Storage, Tensor, WithDType};

use crate::{Activation, Batch, LayerParams, Loss, Mlp, ParamVec, Result};

/// Element types of the stacked passes.
trait Elem: WithDType + PartialOrd + std::ops::AddAssign {
    fn slice(s: &CpuStorage) -> Option<&[Self]>;
    fn of(x: f64) -> Self;
}

impl Elem for f32 {
    fn slice(s: &CpuStorage) -> Option<&[Self]> {
        match s {
            CpuStorage::F32(v) => Some(v),
            _ => None,
        }
    }
    fn of(x: f64) -> Self {
        x as f32
    }
}

impl Elem for f64 {
    fn slice(s: &CpuStorage) -> Option<&[Self]> {
        match s {
            CpuStorage::F64(v) => Some(v),
            _ => None,
        }
    }
    fn of(x: f64) -> Self {
        x
    }
}

/// The values of a contiguous CPU tensor of element type `T` (copied).
fn values<T: Elem>(t: &Tensor) -> Result<Vec<T>> {
    let (storage, layout) = t.storage_and_layout();
    let (o, n) = (layout.start_offset(), t.elem_count());
    match (&*storage, t.is_contiguous()) {
        (Storage::Cpu(s), true) => match T::slice(s) {
            Some(v) => Ok(v[o..o + n].to_vec()),
            None => crate::invalid(format!("ensemble: expected {:?} values", T::DTYPE)),
        },
        _ => crate::invalid("ensemble: expected a contiguous CPU tensor"),
    }
}

/// The shape of the stacked path: members with equal keys are stacked together.
#[derive(Debug, Clone, PartialEq)]
struct Key {
    widths: Vec<usize>,
    bias: Vec<bool>,
    dtype: DType,
    /// The relu-family slope below 0, or `None` for the identity.
    low: Option<f64>,
    rows: usize,
}

/// The key of a member that the stacked path takes, or why it does not.
fn key(mlp: &Mlp, batch: &Batch) -> std::result::Result<Key, String> {
    let low = match mlp.activation {
        Activation::Relu => Some(0.0),
        Activation::LeakyRelu(a) => Some(a),
        Activation::Identity => None,
        other => {
            return Err(format!(
                "activation {other:?} (relu family or identity only)"
            ))
        }
    };
    let dtype = mlp.dtype();
    if !matches!(dtype, DType::F32 | DType::F64) || !mlp.device().is_cpu() {
        return Err("not an f32/f64 CPU model".into());
    }
    let n = batch.len();
    if mlp.parts(n).len() != 1 {
        return Err(format!("{n} rows are more than one part of a pass"));
    }
    if !batch.x.is_contiguous() || mlp.check_batch(batch).is_err() {
        return Err("the batch does not fit the model".into());
    }
    Ok(Key {
        widths: mlp.widths(),
        bias: mlp.params.layers.iter().map(|l| l.bias.is_some()).collect(),
        dtype,
        low,
        rows: n,
    })
}

/// Why `mlp` on `batch` would be computed alone rather than stacked (`None`: stacked).
pub fn unstackable(mlp: &Mlp, batch: &Batch) -> Option<String> {
    key(mlp, batch).err()
}

/// The loss and gradient of every member `(mlp, batch)`, in order, each equal bit for bit
/// to `mlp.loss_and_grad(batch, loss)`. With `stack`, members of one shape run as one
/// stacked pass; without, each member is `mlp.loss_and_grad` itself (its fused
/// in-place kernels: faster than the stacked pass on the richness-sweep shapes,
/// docs/performance.md).
pub fn loss_and_grad_many(
    members: &[(&Mlp, &Batch)],
    loss: Loss,
    stack: bool,
) -> Result<Vec<(f64, ParamVec)>> {
    let keys: Vec<Option<Key>> = members.iter().map(|(m, b)| key(m, b).ok()).collect();
    let mut out: Vec<Option<(f64, ParamVec)>> = (0..members.len()).map(|_| None).collect();
    for i in 0..members.len() {
        if out[i].is_some() {
            continue;
        }
        let (Some(k), true) = (&keys[i], stack) else {
            let (m, b) = members[i];
            out[i] = Some(m.loss_and_grad(b, loss)?);
            continue;
        };
        let group: Vec<usize> = (i..members.len())
            .filter(|&j| out[j].is_none() && keys[j].as_ref() == Some(k))
            .collect();
        let sub: Vec<(&Mlp, &Batch)> = group.iter().map(|&j| members[j]).collect();
        let res = match k.dtype {
            DType::F32 => Stacked::<f32>::run(&sub, k, loss)?,
            _ => Stacked::<f64>::run(&sub, k, loss)?,
        };
        for (j, r) in group.into_iter().zip(res) {
            out[j] = Some(r);
        }
    }
    Ok(out.into_iter().flatten().collect())
}

/// `[E, …]` from E tensors of one shape (a view when E = 1).
fn stack(ts: &[Tensor]) -> Result<Tensor> {
    Ok(match ts {
        [t] => t.unsqueeze(0)?,
        _ => Tensor::stack(ts, 0)?,
    })
}

/// One stacked pass over the members of a key.
struct Stacked<'a, T> {
    members: &'a [(&'a Mlp, &'a Batch)],
    key: &'a Key,
    /// Per layer: the stacked weights `[E, out, in]`.
    ws: Vec<Tensor>,
    _t: std::marker::PhantomData<T>,
}

impl<'a, T: Elem> Stacked<'a, T> {
    fn run(
        members: &'a [(&'a Mlp, &'a Batch)],
        key: &'a Key,
        loss: Loss,
    ) -> Result<Vec<(f64, ParamVec)>> {
        let depth = key.widths.len() - 1;
        let ws = (0..depth)
            .map(|l| {
                let w: Vec<Tensor> = members
                    .iter()
                    .map(|(m, _)| m.params.layers[l].weight.clone())
                    .collect();
                stack(&w)
            })
            .collect::<Result<_>>()?;
        let s = Self {
            members,
            key,
            ws,
            _t: std::marker::PhantomData,
        };
        let hs = s.forward()?;
        let (values, delta) = s.loss_delta(&hs[depth], loss)?;
        let grads = s.backward(&hs, delta)?;
        Ok(values.into_iter().zip(grads).collect())
    }

    fn e(&self) -> usize {
        self.members.len()
    }

    fn mult(&self, e: usize, l: usize) -> T {
        T::of(self.members[e].0.multipliers[l])
    }

    /// Member e's bias of layer l as `T` (exact: f32 → f64 → f32 round-trips).
    fn bias(&self, e: usize, l: usize) -> Result<Option<Vec<T>>> {
        self.members[e].0.params.layers[l]
            .bias
            .as_ref()
            .map(|b| {
                let v = crate::host::values_f64(b)?;
                Ok(v.into_iter().map(T::of).collect())
            })
            .transpose()
    }

    /// `[x_e; …]`, then `h_{l+1} = φ(m h_l W_lᵀ + b)` per layer; the last entry is the
    /// output layer's `z` (before the offset).
    fn forward(&self) -> Result<Vec<Tensor>> {
        let xs: Vec<Tensor> = self.members.iter().map(|(_, b)| b.x.clone()).collect();
        let mut hs = vec![stack(&xs)?];
        let depth = self.ws.len();
        for l in 0..depth {
            let p = hs[l].matmul(&self.ws[l].t()?)?;
            let act = if l + 1 < depth {
                Some(self.key.low)
            } else {
                None
            };
            hs.push(self.affine_act(&p, l, act)?);
        }
        Ok(hs)
    }

    /// `v ← m_e v + b_e`, then (with `act`) the relu family `v > 0 ? v : low · v`
    /// (`Some(None)`: identity), in the fused kernel's order.
    fn affine_act(&self, p: &Tensor, l: usize, act: Option<Option<f64>>) -> Result<Tensor> {
        let (e_n, cols) = (self.e(), self.key.widths[l + 1]);
        let mut v = values::<T>(p)?;
        let per = v.len() / e_n;
        for e in 0..e_n {
            let (m, b) = (self.mult(e, l), self.bias(e, l)?);
            let low = act.flatten().map(T::of);
            for row in v[e * per..(e + 1) * per].chunks_exact_mut(cols) {
                for (i, x) in row.iter_mut().enumerate() {
                    let mut y = *x * m;
                    if let Some(b) = &b {
                        y += b[i];
                    }
                    if let Some(low) = low {
                        y = if y > T::zero() { y } else { y * low };
                    }
                    *x = y;
                }
            }
        }
        Ok(Tensor::from_vec(v, p.dims(), &Device::Cpu)?)
    }

    /// Per member: ℓ through [`Loss::eval`] on `z_e − offset_e`; the loss sums over n and
    /// the stacked `δ_{L−1} = ∇_f ℓ / n`.
    fn loss_delta(&self, z: &Tensor, loss: Loss) -> Result<(Vec<f64>, Tensor)> {
        let mut values = Vec::with_capacity(self.e());
        let mut deltas = Vec::with_capacity(self.e());
        for (e, (_, b)) in self.members.iter().enumerate() {
            let ze = z.get(e)?;
            let f = match &b.offset {
                Some(o) => (ze - o)?,
                None => ze,
            };
            let ev = loss.eval(&f, &b.y)?;
            let inv_n = 1.0 / b.len() as f64;
            let total = 0.0 + ev.value_sum;
            values.push(total * inv_n);
            deltas.push(ev.grad.affine(inv_n, 0.0)?);
        }
        Ok((values, stack(&deltas)?))
    }

    /// δ from the output down: per layer the weight and bias gradients, then
    /// `δ_{l−1} = (m δ_l W_l) ⊙ φ'` while l > 0.
    fn backward(&self, hs: &[Tensor], delta: Tensor) -> Result<Vec<ParamVec>> {
        let depth = self.ws.len();
        let mut layers: Vec<Vec<LayerParams>> = vec![Vec::with_capacity(depth); self.e()];
        let mut d = delta;
        for l in (0..depth).rev() {
            let gw = self.weight_grad(&d, &hs[l], l)?;
            let gb = self.bias_grad(&d, l)?;
            for (e, ls) in layers.iter_mut().enumerate() {
                ls.push(LayerParams {
                    weight: gw.get(e)?,
                    bias: gb[e].clone(),
                });
            }
            if l > 0 {
                let q = d.matmul(&self.ws[l])?;
                d = self.scale_mask(&q, &hs[l], l)?;
            }
        }
        Ok(layers
            .into_iter()
            .map(|mut ls| {
                ls.reverse();
                ParamVec { layers: ls }
            })
            .collect())
    }

    /// `m dᵀ h` per member, m applied to d before the product where d is the smaller
    /// (the rule of `mlp::outer`), else to the product.
    fn weight_grad(&self, d: &Tensor, h: &Tensor, l: usize) -> Result<Tensor> {
        let (rows, out, inp) = (self.key.rows, self.key.widths[l + 1], self.key.widths[l]);
        let before = rows * out < out * inp;
        let scale = |t: &Tensor, pick: bool| -> Result<Tensor> {
            let needs = (0..self.e()).any(|e| self.members[e].0.multipliers[l] != 1.0);
            if !needs || !pick {
                return Ok(t.clone());
            }
            let mut v = values::<T>(t)?;
            let per = v.len() / self.e();
            for e in 0..self.e() {
                let m = self.members[e].0.multipliers[l];
                if m != 1.0 {
                    let (mul, add) = (T::of(m), T::of(0.0));
                    for x in &mut v[e * per..(e + 1) * per] {
                        *x = *x * mul + add;
                    }
                }
            }
            Ok(Tensor::from_vec(v, t.dims(), &Device::Cpu)?)
        };
        let dp = scale(d, before)?;
        let g = dp.t()?.matmul(h)?;
        scale(&g, !before)
    }

    /// `Σ_i δ_{e,i}` in row order, per member with a bias in layer l.
    fn bias_grad(&self, d: &Tensor, l: usize) -> Result<Vec<Option<Tensor>>> {
        if !self.key.bias[l] {
            return Ok(vec![None; self.e()]);
        }
        let cols = self.key.widths[l + 1];
        let v = values::<T>(d)?;
        let per = v.len() / self.e();
        (0..self.e())
            .map(|e| {
                let mut s = vec![T::zero(); cols];
                for row in v[e * per..(e + 1) * per].chunks_exact(cols) {
                    for (o, x) in s.iter_mut().zip(row) {
                        *o += *x;
                    }
                }
                Ok(Some(Tensor::from_vec(s, cols, &Device::Cpu)?))
            })
            .collect()
    }

    /// `v ← m_e v`, then the relu-family mask of `h` (`h > 0 ? v : low · v`).
    fn scale_mask(&self, q: &Tensor, h: &Tensor, l: usize) -> Result<Tensor> {
        let mut v = values::<T>(q)?;
        let hv = values::<T>(h)?;
        let per = v.len() / self.e();
        let low = self.key.low.map(T::of);
        for e in 0..self.e() {
            let m = self.mult(e, l);
            let span = e * per..(e + 1) * per;
            for (x, hx) in v[span.clone()].iter_mut().zip(&hv[span]) {
                let mut y = *x * m;
                if let Some(low) = low {
                    y = if *hx > T::zero() { y } else { y * low };
                }
                *x = y;
            }
        }
        Ok(Tensor::from_vec(v, q.dims(), &Device::Cpu)?)
    }
}
