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
    seq_forward, seq_jet, seq_jvp, seq_tangent_vjp, seq_vjp, Back, Cache, Grads, Jet, NetParams,
    Network, Sinks, Tan, Workspace,
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

/// The direction-independent part of H v on one chunk of samples.
#[derive(Debug)]
struct PrimalChunk {
    start: usize,
    len: usize,
    cache: Cache,
    ev: LossEval,
    out_dims: Vec<usize>,
}

/// The forward passes and losses of a batch, reused by [`Network::hvp_with`] across
/// directions (power iteration, Lanczos); see [`Network::hvp_primal`].
#[derive(Debug)]
pub struct NetHvpPrimal {
    chunks: Vec<PrimalChunk>,
    n: usize,
    loss: Loss,
    /// The loss L(θ) on the batch.
    pub loss_value: f64,
    inv: f64,
}

impl NetHvpPrimal {
    /// Bytes held by the cached layer caches (every chunk, nested caches included).
    pub fn bytes(&self) -> usize {
        fn cache_bytes(c: &Cache) -> usize {
            c.t.iter()
                .flatten()
                .map(|t| t.elem_count() * t.dtype().size_in_bytes())
                .sum::<usize>()
                + c.inner.iter().map(cache_bytes).sum::<usize>()
        }
        self.chunks.iter().map(|c| cache_bytes(&c.cache)).sum()
    }
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

    /// The features feeding the readout: the input of the last top-level `dense`
    /// layer (the readout in Tensor Programs V's sense), as rows `[m, d]` (for
    /// sequences every position is a row, m = n·T); `None` when the network has no
    /// top-level dense layer. The soft-rank probe measures these.
    pub fn readout_features(&self, x: &Tensor) -> Result<Option<Tensor>> {
        let Some(last) = self
            .layers
            .iter()
            .rposition(|l| matches!(l, super::LayerKind::Dense(_)))
        else {
            return Ok(None);
        };
        let body = &self.layers[..last];
        let np = super::offsets(body)[body.len()];
        let mut ws = Workspace::new(0);
        let mut outs = Vec::new();
        for (s, c) in self.chunks(x.dims()[0]) {
            let xc = x.narrow(0, s, c)?;
            let h = seq_forward(body, &self.params.tensors[..np], &xc, &mut ws)?.0;
            outs.push(rows(&h)?);
        }
        Ok(Some(Tensor::cat(&outs, 0)?))
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
        let mut gacc = vec![None; self.params.len()];
        let mut hacc = vec![None; self.params.len()];
        let mut total = 0.0;
        for (s, c) in self.chunks(batch.len()) {
            let pc = self.primal_chunk(&batch.rows(s, c)?, s, loss, &mut ws)?;
            total += pc.ev.value_sum;
            let mut sinks = Sinks {
                grad: if with_grad {
                    Grads::new(&mut gacc)
                } else {
                    Grads::none()
                },
                hv: Grads::new(&mut hacc),
            };
            self.tangent_chunk(&pc, loss, v, inv, &mut sinks, &mut ws)?;
        }
        Ok(NetHvpOutput {
            loss: total * inv,
            grad: with_grad.then(|| self.finish(gacc)).transpose()?,
            hvp: self.finish(hacc)?,
        })
    }

    /// The forward pass and loss of one chunk (workspace order 2).
    fn primal_chunk(
        &self,
        b: &Batch,
        start: usize,
        loss: Loss,
        ws: &mut Workspace,
    ) -> Result<PrimalChunk> {
        let (f, cache) = seq_forward(&self.layers, &self.params.tensors, &b.x, ws)?;
        let (f, ev) = self.eval(f, b, loss)?;
        Ok(PrimalChunk {
            start,
            len: b.len(),
            cache,
            ev,
            out_dims: f.dims().to_vec(),
        })
    }

    /// The tangent passes of one chunk: adds R{∇L} (and ∇L when `sinks.grad` wants it).
    fn tangent_chunk(
        &self,
        pc: &PrimalChunk,
        loss: Loss,
        v: &NetParams,
        inv: f64,
        sinks: &mut Sinks,
        ws: &mut Workspace,
    ) -> Result<()> {
        let (p, vt) = (&self.params.tensors, &v.tensors);
        let (ft, tc) = seq_jvp(&self.layers, p, vt, &pc.cache, None, ws)?;
        let dims = pc.out_dims.as_slice();
        let dy = pc.ev.grad.affine(inv, 0.0)?.reshape(dims)?;
        let rdy = match ft {
            Some(ft) => loss
                .hess_vec(&pc.ev, &rows(&ft)?)?
                .affine(inv, 0.0)?
                .reshape(dims)?,
            None => dy.zeros_like()?,
        };
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
        seq_tangent_vjp(&self.layers, p, &pc.cache, t, bk, sinks, ws)?;
        Ok(())
    }

    /// The forward passes and losses of `batch`, to compute H v for many v with
    /// [`Network::hvp_with`] (holds every layer's cache for every chunk).
    pub fn hvp_primal(&self, batch: &Batch, loss: Loss) -> Result<NetHvpPrimal> {
        self.check_batch(batch)?;
        let mut ws = Workspace::new(2);
        let mut chunks = Vec::new();
        let mut total = 0.0;
        for (s, c) in self.chunks(batch.len()) {
            let pc = self.primal_chunk(&batch.rows(s, c)?, s, loss, &mut ws)?;
            total += pc.ev.value_sum;
            chunks.push(pc);
        }
        let rows = (batch.len() * self.positions()?) as f64;
        Ok(NetHvpPrimal {
            chunks,
            n: batch.len(),
            loss,
            loss_value: total / rows,
            inv: 1.0 / rows,
        })
    }

    /// H v from a [`NetHvpPrimal`] computed by this network on this `batch`.
    pub fn hvp_with(
        &self,
        primal: &NetHvpPrimal,
        batch: &Batch,
        v: &NetParams,
    ) -> Result<NetParams> {
        self.check_dir(v)?;
        let fits = primal.n == batch.len()
            && primal.chunks.len() == batch.len().div_ceil(self.chunk_size.max(1))
            && primal
                .chunks
                .iter()
                .zip(self.chunks(batch.len()))
                .all(|(c, (s, len))| c.start == s && c.len == len);
        if !fits {
            return invalid(
                "hvp_with: the primal pass was computed for another batch or chunk size",
            );
        }
        let mut ws = Workspace::new(2);
        let mut hacc = vec![None; self.params.len()];
        for pc in &primal.chunks {
            let mut sinks = Sinks {
                grad: Grads::none(),
                hv: Grads::new(&mut hacc),
            };
            self.tangent_chunk(pc, primal.loss, v, primal.inv, &mut sinks, &mut ws)?;
        }
        self.finish(hacc)
    }

    /// The Gauss-Newton product `G v = (1/N) Jᵀ (∇²_f ℓ) J v` (Schraudolph 2002).
    pub fn gnvp(&self, batch: &Batch, loss: Loss, v: &NetParams) -> Result<NetParams> {
        self.check_batch(batch)?;
        self.check_dir(v)?;
        let inv = 1.0 / (batch.len() * self.positions()?) as f64;
        let mut ws = Workspace::new(1);
        let (p, vt) = (&self.params.tensors, &v.tensors);
        let mut acc = vec![None; self.params.len()];
        for (s, c) in self.chunks(batch.len()) {
            let b = batch.rows(s, c)?;
            let (f, cache) = seq_forward(&self.layers, p, &b.x, &mut ws)?;
            let (f, ev) = self.eval(f, &b, loss)?;
            let Some(jv) = seq_jvp(&self.layers, p, vt, &cache, None, &mut ws)?.0 else {
                continue;
            };
            let u = loss
                .hess_vec(&ev, &rows(&jv)?)?
                .affine(inv, 0.0)?
                .reshape(f.dims())?;
            let mut g = Grads::new(&mut acc);
            seq_vjp(&self.layers, p, &cache, &u, false, &mut g, &mut ws)?;
        }
        self.finish(acc)
    }

    /// `(1/n) Σ_i Σ_k ‖∂f_ik/∂θ‖²` with n the number of samples and k every output entry
    /// of sample i (all positions and classes), exactly: one backward pass per sample and
    /// output entry (a reference implementation; the MLP has a faster rank-one form).
    pub fn ntk_trace(&self, x: &Tensor) -> Result<f64> {
        let n = x.dims()[0];
        let mut ws = Workspace::new(1);
        let p = &self.params.tensors;
        let mut total = 0.0;
        for i in 0..n {
            let (f, cache) = seq_forward(&self.layers, p, &x.narrow(0, i, 1)?, &mut ws)?;
            let k = f.elem_count();
            for e in 0..k {
                let mut u = vec![0.0; k];
                u[e] = 1.0;
                let u = Tensor::from_vec(u, f.dims(), &candle_core::Device::Cpu)?
                    .to_dtype(f.dtype())?
                    .to_device(f.device())?;
                let mut acc = vec![None; self.params.len()];
                let mut g = Grads::new(&mut acc);
                seq_vjp(&self.layers, p, &cache, &u, false, &mut g, &mut ws)?;
                let row = self.finish(acc)?;
                total += row.dot(&row)?;
            }
        }
        Ok(total / n as f64)
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
