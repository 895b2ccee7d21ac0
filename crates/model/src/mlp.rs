//! The multilayer perceptron and its forward pass.
//!
//! `h_0 = x`, `z_l = m_l · h_l W_lᵀ + b_l` (l = 0 … L−1), `h_{l+1} = φ(z_l)` for
//! l < L−1, and the output `f = z_{L−1} − offset` (the optional per-sample offset
//! implements centred models `f_θ − f_{θ₀}`, Atanasov et al.). Weights are `[out, in]`
//! (the interchange layout), multipliers `m_l` are plain numbers (the abc-form's
//! `n^{−a}` factors), and the samples of a batch are processed in chunks of
//! `chunk_size` rows so memory stays bounded for large n.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use candle_core::{DType, Device, Tensor};

use crate::activation::Act;
use crate::fused::{fuse, Steps};
use crate::{invalid, rng, Activation, LayerParams, ParamVec, Result};

/// Inputs, targets and an optional output offset (`[n, K]`, subtracted from f).
#[derive(Debug, Clone)]
pub struct Batch {
    pub x: Tensor,
    pub y: Tensor,
    pub offset: Option<Tensor>,
}

impl Batch {
    pub fn new(x: Tensor, y: Tensor) -> Self {
        Self { x, y, offset: None }
    }

    pub fn len(&self) -> usize {
        self.x.dims()[0]
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Rows `start .. start + len` (views, no copy).
    pub fn rows(&self, start: usize, len: usize) -> Result<Self> {
        Ok(Self {
            x: self.x.narrow(0, start, len)?,
            y: self.y.narrow(0, start, len)?,
            offset: self
                .offset
                .as_ref()
                .map(|o| o.narrow(0, start, len))
                .transpose()?,
        })
    }

    /// The rows `idx` (in that order; a copy).
    pub fn select(&self, idx: &[usize]) -> Result<Self> {
        let ids: Vec<u32> = idx.iter().map(|&i| i as u32).collect();
        let ids = Tensor::from_vec(ids, idx.len(), self.x.device())?;
        Ok(Self {
            x: self.x.index_select(&ids, 0)?,
            y: self.y.index_select(&ids, 0)?,
            offset: self
                .offset
                .as_ref()
                .map(|o| o.index_select(&ids, 0))
                .transpose()?,
        })
    }

    pub fn to(&self, dtype: DType, device: &Device) -> Result<Self> {
        let conv = |t: &Tensor| -> Result<Tensor> { Ok(t.to_dtype(dtype)?.to_device(device)?) };
        Ok(Self {
            x: conv(&self.x)?,
            y: conv(&self.y)?,
            offset: self.offset.as_ref().map(conv).transpose()?,
        })
    }
}

/// What a random initialisation needs.
#[derive(Debug, Clone)]
pub struct MlpSpec {
    /// `[n_0 (input), n_1, …, n_L (output)]`.
    pub widths: Vec<usize>,
    pub activation: Activation,
    pub bias: bool,
    /// Forward multiplier per layer (`None`: all 1).
    pub multipliers: Option<Vec<f64>>,
    /// Init standard deviation per layer (`None`: 1/√fan_in).
    pub init_std: Option<Vec<f64>>,
    /// Init standard deviation of the biases (0: biases start at zero).
    pub bias_std: f64,
}

impl MlpSpec {
    pub fn new(widths: &[usize], activation: Activation, bias: bool) -> Self {
        Self {
            widths: widths.to_vec(),
            activation,
            bias,
            multipliers: None,
            init_std: None,
            bias_std: 0.0,
        }
    }
}

/// A multilayer perceptron.
#[derive(Debug, Clone)]
pub struct Mlp {
    pub params: ParamVec,
    pub multipliers: Vec<f64>,
    pub activation: Activation,
    /// Rows per chunk in every pass over a batch.
    pub chunk_size: usize,
}

/// Default rows per chunk: large enough for efficient matmuls, small enough that a
/// chunk's activations of a 4096-wide network stay in the tens of MiB.
pub const DEFAULT_CHUNK: usize = 2048;

/// Layers with at most this many weights (`in · out`) count as narrow: the passes then
/// split the rows over threads (`Mlp::parts`) and each product runs single-threaded.
pub const NARROW: usize = 1 << 16;

/// Fewest rows of a part: below this a chunk is not split further.
const MIN_PART_ROWS: usize = 32;

/// Activations cached by the forward pass over one chunk.
#[derive(Debug)]
pub(crate) struct Cache {
    /// `hs[l]` is the input of layer l (`hs[0] = x`).
    pub hs: Vec<Tensor>,
    /// The last layer's pre-activation z_{L−1}; the output is `out − offset`.
    pub out: Tensor,
    /// φ derivatives at the hidden pre-activations z_0 … z_{L−2}.
    pub acts: Vec<Act>,
}

/// `m · t`, skipping the pass when m = 1.
pub(crate) fn scaled(t: Tensor, m: f64) -> Result<Tensor> {
    Ok(if m != 1.0 { t.affine(m, 0.0)? } else { t })
}

/// `m · dᵀ h` (`[out, in]`), the weight-gradient product (m applied to the smaller of
/// d and the result).
pub(crate) fn outer(d: &Tensor, h: &Tensor, m: f64) -> Result<Tensor> {
    if m != 1.0 && d.elem_count() < d.dim(1)? * h.dim(1)? {
        return Ok(d.affine(m, 0.0)?.t()?.matmul(h)?);
    }
    scaled(d.t()?.matmul(h)?, m)
}

/// `m · h Wᵀ + b` for the last layer (one fused pass after the product).
pub(crate) fn linear_out(h: &Tensor, w: &Tensor, m: f64, b: Option<&Tensor>) -> Result<Tensor> {
    fuse(h.matmul(&w.t()?)?, None, b, Steps::scale(m), None)
}

/// Σ over rows (one host pass for CPU tensors, else a matmul with a ones row: dim-0
/// sums are slow in candle).
pub(crate) fn row_sum(d: &Tensor) -> Result<Tensor> {
    if let Some(t) = crate::host::row_sum(d) {
        return t;
    }
    let c = d.dims()[0];
    let ones = Tensor::ones((1, c), d.dtype(), d.device())?;
    Ok(ones.matmul(d)?.squeeze(0)?)
}

/// Adds `t` into an optional accumulator (in place: the accumulator holds only fresh
/// temporaries that no other tensor shares).
pub(crate) fn acc(slot: &mut Option<Tensor>, t: Tensor) -> Result<()> {
    *slot = Some(match slot.take() {
        Some(s) => fuse(s, Some(&t), None, Steps::scale(1.0), None)?,
        None => t,
    });
    Ok(())
}

/// Buffers a pass keeps between calls (`crate::hvp_host`'s, type-erased here so that
/// the primal pass can hold them without depending on that module).
pub(crate) trait Buffers: Send {
    /// Bytes held.
    fn bytes(&self) -> usize;
    fn as_any_mut(&mut self) -> &mut dyn std::any::Any;
}

/// A slot for [`Buffers`], filled on first use (one per part of a cached primal).
#[derive(Default)]
pub(crate) struct Workspace(pub Mutex<Option<Box<dyn Buffers>>>);

impl std::fmt::Debug for Workspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Workspace({} bytes)", self.bytes())
    }
}

impl Workspace {
    /// Bytes held by the buffers (0 before the first use).
    pub fn bytes(&self) -> usize {
        let g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        g.as_ref().map_or(0, |b| b.bytes())
    }
}

/// Per-layer accumulators for weight and bias blocks of a [`ParamVec`].
#[derive(Debug)]
pub(crate) struct ParamAcc {
    w: Vec<Option<Tensor>>,
    b: Vec<Option<Tensor>>,
}

impl ParamAcc {
    pub fn new(depth: usize) -> Self {
        Self {
            w: vec![None; depth],
            b: vec![None; depth],
        }
    }

    pub fn add_w(&mut self, i: usize, t: Tensor) -> Result<()> {
        acc(&mut self.w[i], t)
    }

    pub fn add_b(&mut self, i: usize, t: Tensor) -> Result<()> {
        acc(&mut self.b[i], t)
    }

    /// Adds the sums of `other` (same depth) into these, layer by layer.
    pub fn merge(&mut self, other: ParamAcc) -> Result<()> {
        for (i, (w, b)) in other.w.into_iter().zip(other.b).enumerate() {
            if let Some(w) = w {
                self.add_w(i, w)?;
            }
            if let Some(b) = b {
                self.add_b(i, b)?;
            }
        }
        Ok(())
    }

    /// The accumulated sums times `scale`, with `template`'s structure.
    pub fn finish(self, template: &ParamVec, scale: f64) -> Result<ParamVec> {
        let mut layers = Vec::with_capacity(template.layers.len());
        for ((l, w), b) in template.layers.iter().zip(self.w).zip(self.b) {
            let w = match w {
                Some(w) => scaled(w, scale)?,
                None => l.weight.zeros_like()?,
            };
            let bias = match (&l.bias, b) {
                (Some(_), Some(b)) => Some(scaled(b, scale)?),
                (Some(t), None) => Some(t.zeros_like()?),
                (None, _) => None,
            };
            layers.push(LayerParams { weight: w, bias });
        }
        Ok(ParamVec { layers })
    }
}

impl Mlp {
    /// Wraps parameters, checking that consecutive layers fit together.
    pub fn new(params: ParamVec, multipliers: Vec<f64>, activation: Activation) -> Result<Self> {
        // Fix the thread count before the first matmul (crate::threads).
        crate::threads::init();
        if params.layers.is_empty() {
            return invalid("an MLP needs at least one layer");
        }
        if multipliers.len() != params.layers.len() {
            return invalid(format!(
                "multipliers: {} values for {} layers",
                multipliers.len(),
                params.layers.len()
            ));
        }
        let dtype = params.dtype();
        for (i, l) in params.layers.iter().enumerate() {
            let dims = l.weight.dims();
            if dims.len() != 2 {
                return invalid(format!(
                    "layers.{i}.weight: expected 2 dims [out, in], got {dims:?}"
                ));
            }
            if l.weight.dtype() != dtype {
                return invalid(format!(
                    "layers.{i}.weight: dtype {:?} differs from layers.0.weight ({dtype:?})",
                    l.weight.dtype()
                ));
            }
            if i > 0 {
                let prev_out = params.layers[i - 1].weight.dims()[0];
                if dims[1] != prev_out {
                    return invalid(format!(
                        "layers.{i}.weight: shape {dims:?} has {} inputs, expected {prev_out} \
                         (the outputs of layers.{}.weight)",
                        dims[1],
                        i - 1
                    ));
                }
            }
            if let Some(b) = &l.bias {
                if b.dims() != [dims[0]] {
                    return invalid(format!(
                        "layers.{i}.bias: shape {:?}, expected [{}]",
                        b.dims(),
                        dims[0]
                    ));
                }
            }
        }
        Ok(Self {
            params,
            multipliers,
            activation,
            chunk_size: DEFAULT_CHUNK,
        })
    }

    /// A randomly initialised MLP: weights N(0, std_l²) drawn from `seed` on the host
    /// (bit-identical across machines), biases N(0, bias_std²).
    pub fn random(spec: &MlpSpec, seed: u64, dtype: DType, device: &Device) -> Result<Self> {
        let depth = spec.widths.len().saturating_sub(1);
        if depth == 0 {
            return invalid("widths: need at least [input, output]");
        }
        let mults = spec.multipliers.clone().unwrap_or_else(|| vec![1.0; depth]);
        let stds = match &spec.init_std {
            Some(s) => s.clone(),
            None => spec.widths[..depth]
                .iter()
                .map(|&n| 1.0 / (n as f64).sqrt())
                .collect(),
        };
        if stds.len() != depth {
            return invalid(format!(
                "init_std: {} values for {depth} layers",
                stds.len()
            ));
        }
        let mut layers = Vec::with_capacity(depth);
        for i in 0..depth {
            let (fi, fo) = (spec.widths[i], spec.widths[i + 1]);
            let draw = |stream: u64, n: usize, std: f64| -> Result<Vec<f64>> {
                Ok(rng::normal_vec(rng::derive_seed(seed, stream), n)
                    .into_iter()
                    .map(|v| v * std)
                    .collect())
            };
            let w = Tensor::from_vec(
                draw(2 * i as u64, fi * fo, stds[i])?,
                (fo, fi),
                &Device::Cpu,
            )?;
            let b = if spec.bias {
                Some(Tensor::from_vec(
                    draw(2 * i as u64 + 1, fo, spec.bias_std)?,
                    fo,
                    &Device::Cpu,
                )?)
            } else {
                None
            };
            layers.push(LayerParams {
                weight: w.to_dtype(dtype)?.to_device(device)?,
                bias: b
                    .map(|b| b.to_dtype(dtype)?.to_device(device))
                    .transpose()?,
            });
        }
        Self::new(ParamVec { layers }, mults, spec.activation)
    }

    /// The same architecture with other parameters (same structure required).
    pub fn with_params(&self, params: ParamVec) -> Result<Self> {
        self.params.check_same_structure(&params)?;
        Ok(Self {
            params,
            ..self.clone()
        })
    }

    pub fn depth(&self) -> usize {
        self.params.layers.len()
    }

    /// `[n_0, n_1, …, n_L]`.
    pub fn widths(&self) -> Vec<usize> {
        let mut w = vec![self.params.layers[0].weight.dims()[1]];
        w.extend(self.params.layers.iter().map(|l| l.weight.dims()[0]));
        w
    }

    pub fn has_bias(&self) -> bool {
        self.params.layers.iter().any(|l| l.bias.is_some())
    }

    pub fn dtype(&self) -> DType {
        self.params.dtype()
    }

    pub fn device(&self) -> &Device {
        self.params.device()
    }

    /// Errors unless `batch` fits the network (input/output widths, dtype, sizes).
    pub fn check_batch(&self, batch: &Batch) -> Result<()> {
        let w = self.widths();
        let (n_in, n_out) = (w[0], w[w.len() - 1]);
        let xd = batch.x.dims();
        if xd.len() != 2 || xd[1] != n_in {
            return invalid(format!(
                "x: shape {xd:?}, expected [n, {n_in}] (the model's input width)"
            ));
        }
        let yd = batch.y.dims();
        if yd != [xd[0], n_out] {
            return invalid(format!("y: shape {yd:?}, expected [{}, {n_out}]", xd[0]));
        }
        if let Some(o) = &batch.offset {
            if o.dims() != yd {
                return invalid(format!("offset: shape {:?}, expected {yd:?}", o.dims()));
            }
        }
        if batch.x.dtype() != self.dtype() || batch.y.dtype() != self.dtype() {
            return invalid(format!(
                "batch dtype {:?}/{:?} differs from the model's {:?}",
                batch.x.dtype(),
                batch.y.dtype(),
                self.dtype()
            ));
        }
        if xd[0] == 0 {
            return invalid("the batch is empty");
        }
        Ok(())
    }

    /// `(start, len)` of each chunk of `n` rows.
    pub(crate) fn chunks(&self, n: usize) -> impl Iterator<Item = (usize, usize)> {
        let c = self.chunk_size.max(1);
        (0..n.div_ceil(c)).map(move |k| (k * c, c.min(n - k * c)))
    }

    /// How many parts a chunk of `c` rows is split into for `Mlp::map_parts`: on
    /// narrow networks on the CPU (every layer's `in · out` ≤ [`NARROW`]) the threads
    /// each take a part of the rows with single-threaded products, instead of every
    /// small product being split over threads (issue 15: on 100-64×8-1 the per-product
    /// thread hand-offs took more time than the arithmetic). 1 otherwise.
    fn split(&self, c: usize) -> usize {
        let threads = crate::threads::count();
        if threads < 2 || !self.device().is_cpu() || !self.is_narrow() {
            return 1;
        }
        threads.min(c / MIN_PART_ROWS).max(1)
    }

    /// Whether every layer is narrow (`in · out` ≤ [`NARROW`]).
    pub(crate) fn is_narrow(&self) -> bool {
        self.params
            .layers
            .iter()
            .all(|l| l.weight.elem_count() <= NARROW)
    }

    /// `(start, len)` of the row blocks a pass processes independently: each chunk of
    /// [`Mlp::chunk_size`] rows, split into [`Mlp::split`] near-equal parts. Results
    /// are summed over parts in this order, so they depend on the chunk size and the
    /// thread count only through rounding, and are deterministic for both fixed.
    pub(crate) fn parts(&self, n: usize) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        for (s, c) in self.chunks(n) {
            let p = self.split(c);
            let (base, extra) = (c / p, c % p);
            let mut at = s;
            for k in 0..p {
                let len = base + usize::from(k < extra);
                out.push((at, len));
                at += len;
            }
        }
        out
    }

    /// `f(start, len)` for every part of `Mlp::parts`, results in part order; when a
    /// chunk is split, [`crate::threads::count`] threads take the next part not yet
    /// taken until none is left (a descheduled thread delays nothing: the others take
    /// its parts). Which thread computes a part does not change its result.
    pub(crate) fn map_parts<R: Send>(
        &self,
        parts: &[(usize, usize)],
        f: impl Fn(usize, usize) -> Result<R> + Sync,
    ) -> Result<Vec<R>> {
        let threads = crate::threads::count();
        if threads < 2 || parts.len() < 2 || self.split(self.chunk_size.max(1)) < 2 {
            return parts.iter().map(|&(s, c)| f(s, c)).collect();
        }
        let next = AtomicUsize::new(0);
        let slots: Vec<Mutex<Option<Result<R>>>> = parts.iter().map(|_| Mutex::new(None)).collect();
        let work = || loop {
            let k = next.fetch_add(1, Ordering::Relaxed);
            let Some(&(s, c)) = parts.get(k) else { break };
            let r = f(s, c);
            *slots[k].lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
        };
        std::thread::scope(|sc| {
            for _ in 1..threads.min(parts.len()) {
                sc.spawn(work);
            }
            work();
        });
        slots
            .into_iter()
            .map(|m| {
                m.into_inner()
                    .unwrap_or_else(|e| e.into_inner())
                    .expect("every part was taken")
            })
            .collect()
    }

    /// Forward pass over one chunk keeping what the derivatives need; `order` is the
    /// highest φ derivative kept (0: none).
    pub(crate) fn forward_cache(&self, x: &Tensor, order: usize) -> Result<Cache> {
        let depth = self.depth();
        let mut hs = Vec::with_capacity(depth);
        let mut acts = Vec::with_capacity(depth.saturating_sub(1));
        hs.push(x.clone());
        let (last, hidden) = self.params.layers.split_last().expect("at least one layer");
        for (i, l) in hidden.iter().enumerate() {
            let p = hs[i].matmul(&l.weight.t()?)?;
            let (h, act) = self
                .activation
                .layer(p, self.multipliers[i], l.bias.as_ref(), order)?;
            hs.push(h);
            acts.extend(act);
        }
        let out = linear_out(
            &hs[depth - 1],
            &last.weight,
            self.multipliers[depth - 1],
            last.bias.as_ref(),
        )?;
        Ok(Cache { hs, out, acts })
    }

    /// The output of the last layer minus the batch offset.
    pub(crate) fn output(&self, cache: &Cache, offset: Option<&Tensor>) -> Result<Tensor> {
        let z = &cache.out;
        Ok(match offset {
            Some(o) => (z - o)?,
            None => z.clone(),
        })
    }

    /// The network outputs f(x) (`[n, n_L]`, without offset).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let n = x.dims()[0];
        let mut outs = Vec::new();
        for (s, c) in self.chunks(n) {
            outs.push(self.forward_cache(&x.narrow(0, s, c)?, 0)?.out);
        }
        Ok(Tensor::cat(&outs, 0)?)
    }

    /// The hidden features `h_1 … h_{L−1}` (`[n, n_l]` each), e.g. for the soft rank.
    pub fn features(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let n = x.dims()[0];
        let mut per_layer: Vec<Vec<Tensor>> = vec![Vec::new(); self.depth() - 1];
        for (s, c) in self.chunks(n) {
            let cache = self.forward_cache(&x.narrow(0, s, c)?, 0)?;
            for (l, h) in cache.hs.into_iter().skip(1).enumerate() {
                per_layer[l].push(h);
            }
        }
        per_layer
            .into_iter()
            .map(|v| Ok(Tensor::cat(&v, 0)?))
            .collect()
    }

    /// The loss L(θ) = (1/n) Σ ℓ(fᵢ, yᵢ).
    pub fn loss(&self, batch: &Batch, loss: crate::Loss) -> Result<f64> {
        self.check_batch(batch)?;
        let n = batch.len();
        let mut total = 0.0;
        for (s, c) in self.chunks(n) {
            let b = batch.rows(s, c)?;
            let cache = self.forward_cache(&b.x, 0)?;
            let f = self.output(&cache, b.offset.as_ref())?;
            total += loss.eval(&f, &b.y)?.value_sum;
        }
        Ok(total / n as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Loss;

    /// A narrow network whose chunks are split over threads: the results equal (bit for
    /// bit) those of chunks cut at the same rows, and repeat exactly.
    #[test]
    fn split_parts_match_chunks_at_the_same_rows() {
        let spec = MlpSpec::new(&[5, 16, 16, 3], Activation::Tanh, true);
        let mut mlp = Mlp::random(&spec, 7, DType::F64, &Device::Cpu).unwrap();
        let n = 100;
        let x = Tensor::from_vec(rng::normal_vec(1, n * 5), (n, 5), &Device::Cpu).unwrap();
        let y = Tensor::from_vec(rng::normal_vec(2, n * 3), (n, 3), &Device::Cpu).unwrap();
        let batch = Batch::new(x, y);
        let v = mlp.params.randn_like(3).unwrap();
        let run = |m: &Mlp| {
            let (l, g) = m.loss_and_grad(&batch, Loss::CrossEntropy).unwrap();
            let h = m.hvp_full(&batch, Loss::CrossEntropy, &v, true).unwrap();
            let p = m.hvp_primal(&batch, Loss::CrossEntropy).unwrap();
            let hw = m.hvp_with(&p, &batch, &v).unwrap();
            let t = m.taylor(&batch, Loss::CrossEntropy, &v).unwrap();
            let mut out = vec![l];
            out.extend(g.to_f64_vec().unwrap());
            out.push(h.loss);
            out.extend(h.grad.unwrap().to_f64_vec().unwrap());
            out.extend(h.hvp.to_f64_vec().unwrap());
            out.extend(hw.to_f64_vec().unwrap());
            out.extend(t);
            out
        };
        let parts = mlp.parts(n);
        let first = run(&mlp);
        assert_eq!(first, run(&mlp), "repeatable");
        // The same row blocks as chunks of their own (too small to be split again).
        let len = parts[0].1;
        if parts.len() > 1 && parts.iter().all(|&(_, c)| c == len) {
            mlp.chunk_size = len;
            assert_eq!(mlp.parts(n), parts);
            assert_eq!(first, run(&mlp), "split = chunks at the same rows");
        }
    }
}
