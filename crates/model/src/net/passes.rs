//! Network-level passes built from the layer rules: the loss, its gradient, the
//! R-operator HVP, output JVP/VJP and the Taylor coefficients c0..c3, over chunks of
//! samples.
//!
//! Outputs with leading axes (`[n, K]`, `[n, T, K]`) are flattened to N = n·T rows of
//! the last axis; the loss is the mean over all N rows of ℓ(f_r, y_r) (`mse` = ½‖f − y‖²
//! per row, `cross_entropy` with one-hot rows). So the output cotangent is ∇_f ℓ / N
//! and its tangent ∇²_f ℓ ḟ / N (Pearlmutter 1994; THEORY.md §8), and
//! c_j = (1/j!) Σ_r dʲ/dtʲ ℓ(f_r(t)) / N from the output jet.

use candle_core::Tensor;

use super::{
    seq_forward, seq_jet, seq_jvp, seq_tangent_vjp, seq_vjp, Back, Grads, Jet, NetParams, Network,
    Sinks, Tan, Workspace,
};
use crate::loss::LossEval;
use crate::{invalid, Batch, Loss, Result};

/// What one R-operator pass returns.
#[derive(Debug)]
pub struct NetHvpOutput {
    pub loss: f64,
    /// ∇L when asked for.
    pub grad: Option<NetParams>,
    pub hvp: NetParams,
}

/// `[…, K]` → `[rows, K]`.
fn rows(t: &Tensor) -> Result<Tensor> {
    let k = t.dims()[t.rank() - 1];
    Ok(t.reshape((t.elem_count() / k.max(1), k))?)
}

impl Network {
    /// `(start, len)` of each chunk of `n` samples.
    fn chunks(&self, n: usize) -> impl Iterator<Item = (usize, usize)> {
        let c = self.chunk_size.max(1);
        (0..n.div_ceil(c)).map(move |k| (k * c, c.min(n - k * c)))
    }

    /// Rows of the loss per sample (the product of the output's leading axes).
    fn positions(&self) -> Result<usize> {
        let s = self.output_shape()?;
        Ok(s[..s.len() - 1].iter().product())
    }

    /// Errors unless `batch` fits the network.
    pub fn check_batch(&self, batch: &Batch) -> Result<()> {
        let n = batch.len();
        if n == 0 {
            return invalid("the batch is empty");
        }
        let mut xs = vec![n];
        xs.extend(&self.input_shape);
        if batch.x.dims() != xs.as_slice() {
            return invalid(format!("x: shape {:?}, expected {xs:?}", batch.x.dims()));
        }
        let mut ys = vec![n];
        ys.extend(self.output_shape()?);
        if batch.y.dims() != ys.as_slice() {
            return invalid(format!("y: shape {:?}, expected {ys:?}", batch.y.dims()));
        }
        if let Some(o) = &batch.offset {
            if o.dims() != ys.as_slice() {
                return invalid(format!("offset: shape {:?}, expected {ys:?}", o.dims()));
            }
        }
        Ok(())
    }

    fn check_dir(&self, v: &NetParams) -> Result<()> {
        self.params.check_same_structure(v)
    }

    /// The network outputs f(x) (`[n, …]`, without offset).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut ws = Workspace::new(0);
        let mut outs = Vec::new();
        for (s, c) in self.chunks(x.dims()[0]) {
            let xc = x.narrow(0, s, c)?;
            outs.push(seq_forward(&self.layers, &self.params.tensors, &xc, &mut ws)?.0);
        }
        Ok(Tensor::cat(&outs, 0)?)
    }

    /// f − offset and the loss on one chunk.
    fn eval(&self, f: Tensor, b: &Batch, loss: Loss) -> Result<(Tensor, LossEval)> {
        let f = match &b.offset {
            Some(o) => (f - o)?,
            None => f,
        };
        let ev = loss.eval(&rows(&f)?, &rows(&b.y)?)?;
        Ok((f, ev))
    }

    /// The loss L(θ): the mean of ℓ over every sample and position.
    pub fn loss(&self, batch: &Batch, loss: Loss) -> Result<f64> {
        self.check_batch(batch)?;
        let mut ws = Workspace::new(0);
        let mut total = 0.0;
        for (s, c) in self.chunks(batch.len()) {
            let b = batch.rows(s, c)?;
            let (f, _) = seq_forward(&self.layers, &self.params.tensors, &b.x, &mut ws)?;
            total += self.eval(f, &b, loss)?.1.value_sum;
        }
        Ok(total / (batch.len() * self.positions()?) as f64)
    }

    /// Accumulated blocks as a parameter vector (missing blocks are zero).
    fn finish(&self, acc: Vec<Option<Tensor>>) -> Result<NetParams> {
        let tensors = acc
            .into_iter()
            .zip(&self.params.tensors)
            .map(|(a, p)| Ok(a.map_or_else(|| p.zeros_like(), Ok)?))
            .collect::<Result<_>>()?;
        NetParams::new(self.params.names.clone(), tensors)
    }

    /// The loss and its exact gradient.
    pub fn loss_and_grad(&self, batch: &Batch, loss: Loss) -> Result<(f64, NetParams)> {
        self.check_batch(batch)?;
        let inv = 1.0 / (batch.len() * self.positions()?) as f64;
        let mut ws = Workspace::new(1);
        let mut acc = vec![None; self.params.len()];
        let mut total = 0.0;
        for (s, c) in self.chunks(batch.len()) {
            let b = batch.rows(s, c)?;
            let p = &self.params.tensors;
            let (f, cache) = seq_forward(&self.layers, p, &b.x, &mut ws)?;
            let (f, ev) = self.eval(f, &b, loss)?;
            total += ev.value_sum;
            let dy = ev.grad.affine(inv, 0.0)?.reshape(f.dims())?;
            let mut g = Grads::new(&mut acc);
            seq_vjp(&self.layers, p, &cache, &dy, false, &mut g, &mut ws)?;
        }
        Ok((total * inv, self.finish(acc)?))
    }

    /// The exact gradient ∇L.
    pub fn grad(&self, batch: &Batch, loss: Loss) -> Result<NetParams> {
        Ok(self.loss_and_grad(batch, loss)?.1)
    }

    /// H v, the exact Hessian of the loss times `v`.
    pub fn hvp(&self, batch: &Batch, loss: Loss, v: &NetParams) -> Result<NetParams> {
        Ok(self.hvp_full(batch, loss, v, false)?.hvp)
    }

    /// Loss, optionally the gradient, and H v in one pass (R-operator).
    pub fn hvp_full(
        &self,
        batch: &Batch,
        loss: Loss,
        v: &NetParams,
        with_grad: bool,
    ) -> Result<NetHvpOutput> {
        self.check_batch(batch)?;
        self.check_dir(v)?;
        let inv = 1.0 / (batch.len() * self.positions()?) as f64;
        let mut ws = Workspace::new(2);
        let (p, vt) = (&self.params.tensors, &v.tensors);
        let mut gacc = vec![None; self.params.len()];
        let mut hacc = vec![None; self.params.len()];
        let mut total = 0.0;
        for (s, c) in self.chunks(batch.len()) {
            let b = batch.rows(s, c)?;
            let (f, cache) = seq_forward(&self.layers, p, &b.x, &mut ws)?;
            let (f, ev) = self.eval(f, &b, loss)?;
            total += ev.value_sum;
            let (ft, tc) = seq_jvp(&self.layers, p, vt, &cache, None, &mut ws)?;
            let ft = match ft {
                Some(t) => t,
                None => f.zeros_like()?,
            };
            let dy = ev.grad.affine(inv, 0.0)?.reshape(f.dims())?;
            let rdy = loss
                .hess_vec(&ev, &rows(&ft)?)?
                .affine(inv, 0.0)?
                .reshape(f.dims())?;
            let t = Tan {
                v: vt,
                xt: None,
                tc: &tc,
            };
            let bk = Back {
                dy: &dy,
                rdy: &rdy,
                need_dx: false,
            };
            let mut sinks = Sinks {
                grad: if with_grad {
                    Grads::new(&mut gacc)
                } else {
                    Grads::none()
                },
                hv: Grads::new(&mut hacc),
            };
            seq_tangent_vjp(&self.layers, p, &cache, t, bk, &mut sinks, &mut ws)?;
        }
        Ok(NetHvpOutput {
            loss: total * inv,
            grad: with_grad.then(|| self.finish(gacc)).transpose()?,
            hvp: self.finish(hacc)?,
        })
    }

    /// `J v` for the inputs `x` (the output's shape).
    pub fn jvp(&self, x: &Tensor, v: &NetParams) -> Result<Tensor> {
        self.check_dir(v)?;
        let mut ws = Workspace::new(1);
        let (p, vt) = (&self.params.tensors, &v.tensors);
        let mut outs = Vec::new();
        for (s, c) in self.chunks(x.dims()[0]) {
            let xc = x.narrow(0, s, c)?;
            let (f, cache) = seq_forward(&self.layers, p, &xc, &mut ws)?;
            let (ft, _) = seq_jvp(&self.layers, p, vt, &cache, None, &mut ws)?;
            outs.push(match ft {
                Some(t) => t,
                None => f.zeros_like()?,
            });
        }
        Ok(Tensor::cat(&outs, 0)?)
    }

    /// `Jᵀ u = Σ_i J_iᵀ u_i` for output cotangents `u` (the output's shape); no 1/n.
    pub fn vjp(&self, x: &Tensor, u: &Tensor) -> Result<NetParams> {
        let mut ws = Workspace::new(1);
        let p = &self.params.tensors;
        let mut acc = vec![None; self.params.len()];
        for (s, c) in self.chunks(x.dims()[0]) {
            let (_, cache) = seq_forward(&self.layers, p, &x.narrow(0, s, c)?, &mut ws)?;
            let mut g = Grads::new(&mut acc);
            let uc = u.narrow(0, s, c)?;
            seq_vjp(&self.layers, p, &cache, &uc, false, &mut g, &mut ws)?;
        }
        self.finish(acc)
    }

    /// `[c0, c1, c2, c3]` with `c_j = (1/j!) dʲ/dtʲ L(θ + t v)` at t = 0.
    pub fn taylor(&self, batch: &Batch, loss: Loss, v: &NetParams) -> Result<[f64; 4]> {
        self.check_batch(batch)?;
        self.check_dir(v)?;
        let mut ws = Workspace::new(3);
        let (p, vt) = (&self.params.tensors, &v.tensors);
        let mut sums = [0.0f64; 4];
        for (s, c) in self.chunks(batch.len()) {
            let b = batch.rows(s, c)?;
            let jet = seq_jet(&self.layers, p, vt, Jet::constant(b.x.clone(), 3), &mut ws)?;
            let (f, ev) = self.eval(jet.primal()?.clone(), &b, loss)?;
            let comp =
                |k: usize| -> Result<Option<Tensor>> { jet.t[k].as_ref().map(rows).transpose() };
            let a = match comp(1)? {
                Some(a) => a,
                None => rows(&f)?.zeros_like()?,
            };
            let [d1, d2, d3] = loss.jet_sums(&ev, &a, comp(2)?.as_ref(), comp(3)?.as_ref())?;
            sums[0] += ev.value_sum;
            sums[1] += d1;
            sums[2] += d2;
            sums[3] += d3;
        }
        let n = (batch.len() * self.positions()?) as f64;
        Ok([
            sums[0] / n,
            sums[1] / n,
            sums[2] / (2.0 * n),
            sums[3] / (6.0 * n),
        ])
    }

    /// The third directional derivative d³/dt³ L(θ + t v) = ∇³L[v, v, v].
    pub fn third_derivative(&self, batch: &Batch, loss: Loss, v: &NetParams) -> Result<f64> {
        Ok(6.0 * self.taylor(batch, loss, v)?[3])
    }
}
