//! Networks of layers with exact, hand-written derivative rules.
//!
//! A [`Network`] is a sequence of layers (a [`LayerKind`] each; `residual` holds a
//! sequence of its own). Every layer y = F(x; p) implements [`Layer`]:
//!
//! | rule | computes | used by |
//! |---|---|---|
//! | `forward` | y and a cache | everything |
//! | `vjp` | x̄ = (∂F/∂x)ᵀ ȳ, p̄ += (∂F/∂p)ᵀ ȳ | gradient, Jᵀu |
//! | `jvp` | ẏ = ∂F/∂x ẋ + ∂F/∂p v | J v, R{f} |
//! | `tangent_vjp` | R{x̄}, R{p̄} (the derivative of the `vjp` along (ẋ, v, R{ȳ})) | H v |
//! | `jet` | (y, ẏ, ÿ, y⃛) along θ + t v from the input's jet | c0..c3 |
//!
//! With these, Pearlmutter's R-operator gives H v = R{∇θ L} for any stack (Pearlmutter
//! 1994): a forward pass, a tangent forward pass (ẋ_0 = 0), the output cotangent
//! ȳ = ∇_f ℓ / N and its tangent R{ȳ} = ∇²_f ℓ ḟ / N, then one reverse sweep of
//! `tangent_vjp`. Taylor coefficients c_j = (1/j!) dʲ/dtʲ L(θ + t v) come from the
//! output jet and [`crate::Loss::jet_sums`] (THEORY.md §8).
//!
//! Every rule takes a [`Workspace`]: today it only says how many φ derivatives a forward
//! pass keeps; a fused implementation keeps its preallocated buffers there (reused
//! across steps and chunks) and computes into them instead of allocating.

pub mod act;
pub mod attention;
pub mod conv2d;
pub mod coord_pair;
pub mod dense;
pub mod embedding;
pub mod file;
pub mod flatten;
pub mod groups;
mod im2col;
pub mod jet;
pub mod layernorm;
pub mod params;
mod passes;
pub mod pool;
pub mod residual;
pub mod spec;
pub mod symmetric_pair;

use std::fmt;

use candle_core::{DType, Device, Tensor};

pub use act::ActLayer;
pub use attention::{Attention, AttentionScale};
pub use conv2d::Conv2d;
pub use coord_pair::CoordPair;
pub use dense::Dense;
pub use embedding::{Embedding, PosEmbedding};
pub use file::{is_net_file, load_net, load_net_bytes, net_bytes, save_net, NetCase};
pub use flatten::Flatten;
pub use jet::Jet;
pub use layernorm::LayerNorm;
pub use params::NetParams;
pub use passes::{NetHvpOutput, NetHvpPrimal};
pub use pool::{AvgPool2d, MaxPool2d};
pub use residual::Residual;
pub use spec::{
    check_limits, layers_json, parse_layers, MAX_DIM, MAX_JSON_BYTES, MAX_LAYERS, MAX_NESTING,
};
pub use symmetric_pair::SymmetricPair;

use crate::mlp::DEFAULT_CHUNK;
use crate::{invalid, rng, Result};

/// What a layer keeps from its forward pass for the derivative rules. `t` are tensors
/// (or zeros, `None`) whose meaning each layer documents; `inner` holds the caches of
/// nested layers (a residual's body); `shape` a shape to restore (flatten).
#[derive(Debug, Clone, Default)]
pub struct Cache {
    pub t: Vec<Option<Tensor>>,
    pub inner: Vec<Cache>,
    pub shape: Vec<usize>,
}

impl Cache {
    pub fn of(t: Vec<Tensor>) -> Self {
        Self {
            t: t.into_iter().map(Some).collect(),
            ..Self::default()
        }
    }

    /// Entry `i`, which the layer's forward pass must have stored.
    pub fn get(&self, i: usize) -> Result<&Tensor> {
        match self.t.get(i) {
            Some(Some(t)) => Ok(t),
            _ => invalid(format!(
                "cache entry {i} missing (forward pass of lower order?)"
            )),
        }
    }
}

/// Per-pass state handed to every rule. `order` is the highest φ derivative a forward
/// pass keeps (1 for gradients, 2 for H v). A fused implementation adds its buffers.
#[derive(Debug, Default)]
pub struct Workspace {
    pub order: usize,
}

impl Workspace {
    pub fn new(order: usize) -> Self {
        Self { order }
    }
}

/// Accumulators for one layer's parameter blocks (aligned with its parameter list), or
/// nothing when the caller does not want them (then nothing is computed).
#[derive(Debug)]
pub struct Grads<'a> {
    slots: Option<&'a mut [Option<Tensor>]>,
}

impl<'a> Grads<'a> {
    pub fn new(slots: &'a mut [Option<Tensor>]) -> Self {
        Self { slots: Some(slots) }
    }

    pub fn none() -> Self {
        Self { slots: None }
    }

    pub fn wanted(&self) -> bool {
        self.slots.is_some()
    }

    /// Adds `f()` into slot `i` (f is not called when nothing is wanted).
    pub fn add(&mut self, i: usize, f: impl FnOnce() -> Result<Tensor>) -> Result<()> {
        if let Some(s) = self.slots.as_deref_mut() {
            let t = f()?;
            s[i] = Some(match s[i].take() {
                Some(a) => (a + t)?,
                None => t,
            });
        }
        Ok(())
    }

    /// The slots `start .. start + len` (for a nested layer).
    pub fn sub(&mut self, start: usize, len: usize) -> Grads<'_> {
        Grads {
            slots: self
                .slots
                .as_deref_mut()
                .map(|s| &mut s[start..start + len]),
        }
    }
}

/// The tangent inputs of [`Layer::tangent_vjp`]: the direction's blocks for this layer,
/// the input tangent ẋ (`None`: zero) and what `jvp` returned as tangent cache.
#[derive(Debug, Clone, Copy)]
pub struct Tan<'a> {
    pub v: &'a [Tensor],
    pub xt: Option<&'a Tensor>,
    pub tc: &'a Cache,
}

/// The cotangent ȳ, its tangent R{ȳ}, and whether x̄ and R{x̄} are wanted.
#[derive(Debug, Clone, Copy)]
pub struct Back<'a> {
    pub dy: &'a Tensor,
    pub rdy: &'a Tensor,
    pub need_dx: bool,
}

/// The sinks of the reverse tangent sweep: the gradient (optional) and H v.
#[derive(Debug)]
pub struct Sinks<'a> {
    pub grad: Grads<'a>,
    pub hv: Grads<'a>,
}

impl Sinks<'_> {
    pub fn sub(&mut self, start: usize, len: usize) -> Sinks<'_> {
        Sinks {
            grad: self.grad.sub(start, len),
            hv: self.hv.sub(start, len),
        }
    }
}

/// A parameter's name (relative to a layer or a path) and shape.
pub type ParamShape = (String, Vec<usize>);

/// How a parameter is initialised by [`Network::random`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    /// N(0, std²).
    Normal(f64),
    /// N(0, bias_std²) (biases).
    Bias,
    /// 1 + N(0, bias_std²) (normalisation gains).
    One,
}

/// The derivative rules of one layer type. `p` are the layer's parameter tensors in the
/// order of [`Layer::param_shapes`]; tensors carry the samples on axis 0.
pub trait Layer: fmt::Debug + Send + Sync {
    /// The type name of the file format (`dense`, `act`, ...).
    fn kind(&self) -> &'static str;
    /// Number of parameter tensors (including nested layers').
    fn n_params(&self) -> usize;
    /// The per-sample output shape for a per-sample input shape (an error names what
    /// does not chain).
    fn out_shape(&self, input: &[usize]) -> Result<Vec<usize>>;
    /// `(name relative to the layer's path, shape)` of each parameter, in flat order.
    fn param_shapes(&self, input: &[usize]) -> Result<Vec<ParamShape>>;
    /// [`Layer::out_shape`] and [`Layer::param_shapes`] at once; a layer with nested
    /// layers overrides it to walk them once (so nested blocks cost linear time, not
    /// 2^depth).
    fn shapes(&self, input: &[usize]) -> Result<(Vec<usize>, Vec<ParamShape>)> {
        Ok((self.out_shape(input)?, self.param_shapes(input)?))
    }
    /// The initialisation of the parameter `name` with `shape`.
    fn init(&self, name: &str, shape: &[usize]) -> Init {
        if name.ends_with("bias") {
            Init::Bias
        } else {
            let fan_in: usize = shape[1..].iter().product();
            Init::Normal(1.0 / (fan_in.max(1) as f64).sqrt())
        }
    }
    /// y = F(x; p) and the cache of the derivative rules.
    fn forward(&self, p: &[Tensor], x: &Tensor, ws: &mut Workspace) -> Result<(Tensor, Cache)>;
    /// Accumulates p̄ into `g`; returns x̄ when `need_dx`.
    fn vjp(
        &self,
        p: &[Tensor],
        c: &Cache,
        dy: &Tensor,
        need_dx: bool,
        g: &mut Grads,
        ws: &mut Workspace,
    ) -> Result<Option<Tensor>>;
    /// ẏ (`None`: zero) and a tangent cache for `tangent_vjp`.
    fn jvp(
        &self,
        p: &[Tensor],
        v: &[Tensor],
        c: &Cache,
        xt: Option<&Tensor>,
        ws: &mut Workspace,
    ) -> Result<(Option<Tensor>, Cache)>;
    /// The reverse sweep of the R-operator: accumulates p̄ into `s.grad` (if wanted) and
    /// R{p̄} into `s.hv`; returns (x̄, R{x̄}) when `b.need_dx`.
    fn tangent_vjp(
        &self,
        p: &[Tensor],
        c: &Cache,
        t: Tan,
        b: Back,
        s: &mut Sinks,
        ws: &mut Workspace,
    ) -> Result<(Option<Tensor>, Option<Tensor>)>;
    /// The output jet along θ + t v from the input jet `x`.
    fn jet(&self, p: &[Tensor], v: &[Tensor], x: &Jet, ws: &mut Workspace) -> Result<Jet>;
}

/// Every layer type.
#[derive(Debug, Clone)]
pub enum LayerKind {
    Dense(Dense),
    Act(ActLayer),
    Flatten(Flatten),
    Residual(Residual),
    SymmetricPair(SymmetricPair),
    CoordPair(CoordPair),
    LayerNorm(LayerNorm),
    Conv2d(Conv2d),
    AvgPool2d(AvgPool2d),
    MaxPool2d(MaxPool2d),
    Embedding(Embedding),
    PosEmbedding(PosEmbedding),
    Attention(Attention),
}

impl LayerKind {
    pub fn layer(&self) -> &dyn Layer {
        match self {
            Self::Dense(l) => l,
            Self::Act(l) => l,
            Self::Flatten(l) => l,
            Self::Residual(l) => l,
            Self::SymmetricPair(l) => l,
            Self::CoordPair(l) => l,
            Self::LayerNorm(l) => l,
            Self::Conv2d(l) => l,
            Self::AvgPool2d(l) => l,
            Self::MaxPool2d(l) => l,
            Self::Embedding(l) => l,
            Self::PosEmbedding(l) => l,
            Self::Attention(l) => l,
        }
    }
}

/// The start of each layer's block in a flat parameter list (and the total at the end).
pub(crate) fn offsets(layers: &[LayerKind]) -> Vec<usize> {
    let mut o = vec![0];
    for l in layers {
        o.push(o[o.len() - 1] + l.layer().n_params());
    }
    o
}

/// Output shape and `(path, shape)` of every parameter of a sequence at `prefix`
/// (`layers.` at the top level, `layers.{i}.body.` inside a residual).
pub(crate) fn seq_shapes(
    layers: &[LayerKind],
    input: &[usize],
    prefix: &str,
) -> Result<(Vec<usize>, Vec<ParamShape>)> {
    let mut shape = input.to_vec();
    check_dims(&shape).map_err(|e| crate::Error::Invalid(format!("{prefix}0: input {e}")))?;
    let mut params = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let l = l.layer();
        let ctx =
            |e: crate::Error| crate::Error::Invalid(format!("{prefix}{i} ({}): {e}", l.kind()));
        let (out, ps) = l.shapes(&shape).map_err(ctx)?;
        for (n, s) in ps {
            params.push((format!("{prefix}{i}.{n}"), s));
        }
        shape = out;
        check_dims(&shape).map_err(|e| ctx(crate::Error::Invalid(format!("output {e}"))))?;
    }
    Ok((shape, params))
}

/// A per-sample shape of at most [`spec::MAX_DIM`] numbers (so every dimension is
/// within the limit too, and a forward pass's memory is bounded per sample).
fn check_dims(shape: &[usize]) -> Result<()> {
    match shape.iter().try_fold(1usize, |p, &d| p.checked_mul(d)) {
        Some(n) if n <= spec::MAX_DIM => Ok(()),
        _ => invalid(format!(
            "shape {shape:?} holds more than {} numbers per sample (the limit)",
            spec::MAX_DIM
        )),
    }
}

/// The number of elements of `shape`, an error when it does not fit a `usize`.
pub(crate) fn numel(name: &str, shape: &[usize]) -> Result<usize> {
    match shape.iter().try_fold(1usize, |p, &d| p.checked_mul(d)) {
        Some(n) => Ok(n),
        None => invalid(format!(
            "{name}: shape {shape:?} has more elements than memory can address"
        )),
    }
}

/// The number of parameters of `layers` on per-sample inputs of shape `input`, from
/// the shapes alone (nothing is allocated; saturating, so any list gives a number).
pub fn param_count(layers: &[LayerKind], input: &[usize]) -> Result<u128> {
    spec::check_limits(layers)?;
    let (_, shapes) = seq_shapes(layers, input, "layers.")?;
    Ok(shapes
        .iter()
        .map(|(_, s)| s.iter().fold(1u128, |p, &d| p.saturating_mul(d as u128)))
        .fold(0, u128::saturating_add))
}

/// The forward pass of a sequence; `inner` of the returned cache holds each layer's.
pub(crate) fn seq_forward(
    layers: &[LayerKind],
    p: &[Tensor],
    x: &Tensor,
    ws: &mut Workspace,
) -> Result<(Tensor, Cache)> {
    let off = offsets(layers);
    let mut h = x.clone();
    let mut inner = Vec::with_capacity(layers.len());
    for (i, l) in layers.iter().enumerate() {
        let (y, c) = l.layer().forward(&p[off[i]..off[i + 1]], &h, ws)?;
        inner.push(c);
        h = y;
    }
    Ok((
        h,
        Cache {
            inner,
            ..Cache::default()
        },
    ))
}

/// x̄ of a sequence (when `need_dx`), accumulating p̄ into `g`.
pub(crate) fn seq_vjp(
    layers: &[LayerKind],
    p: &[Tensor],
    c: &Cache,
    dy: &Tensor,
    need_dx: bool,
    g: &mut Grads,
    ws: &mut Workspace,
) -> Result<Option<Tensor>> {
    let off = offsets(layers);
    let mut d = dy.clone();
    for i in (0..layers.len()).rev() {
        let need = need_dx || i > 0;
        let (a, b) = (off[i], off[i + 1]);
        let dx =
            layers[i]
                .layer()
                .vjp(&p[a..b], &c.inner[i], &d, need, &mut g.sub(a, b - a), ws)?;
        match dx {
            Some(dx) => d = dx,
            None if need => return invalid(format!("layer {i} returned no input cotangent")),
            None => return Ok(None),
        }
    }
    Ok(Some(d))
}

/// ẏ of a sequence from ẋ; the tangent cache holds each layer's input tangent in `t`
/// and each layer's tangent cache in `inner`.
pub(crate) fn seq_jvp(
    layers: &[LayerKind],
    p: &[Tensor],
    v: &[Tensor],
    c: &Cache,
    xt: Option<&Tensor>,
    ws: &mut Workspace,
) -> Result<(Option<Tensor>, Cache)> {
    let off = offsets(layers);
    let mut h = xt.cloned();
    let mut tc = Cache::default();
    for (i, l) in layers.iter().enumerate() {
        let (a, b) = (off[i], off[i + 1]);
        let (y, lc) = l
            .layer()
            .jvp(&p[a..b], &v[a..b], &c.inner[i], h.as_ref(), ws)?;
        tc.t.push(h);
        tc.inner.push(lc);
        h = y;
    }
    Ok((h, tc))
}

/// The reverse tangent sweep of a sequence (see [`Layer::tangent_vjp`]).
pub(crate) fn seq_tangent_vjp(
    layers: &[LayerKind],
    p: &[Tensor],
    c: &Cache,
    t: Tan,
    b: Back,
    s: &mut Sinks,
    ws: &mut Workspace,
) -> Result<(Option<Tensor>, Option<Tensor>)> {
    let off = offsets(layers);
    let (mut d, mut rd) = (b.dy.clone(), b.rdy.clone());
    for i in (0..layers.len()).rev() {
        let need = b.need_dx || i > 0;
        let (lo, hi) = (off[i], off[i + 1]);
        let lt = Tan {
            v: &t.v[lo..hi],
            xt: t.tc.t[i].as_ref(),
            tc: &t.tc.inner[i],
        };
        let lb = Back {
            dy: &d,
            rdy: &rd,
            need_dx: need,
        };
        let (dx, rdx) = layers[i].layer().tangent_vjp(
            &p[lo..hi],
            &c.inner[i],
            lt,
            lb,
            &mut s.sub(lo, hi - lo),
            ws,
        )?;
        if !need {
            return Ok((None, None));
        }
        match (dx, rdx) {
            (Some(dx), Some(rdx)) => (d, rd) = (dx, rdx),
            _ => return invalid(format!("layer {i} returned no input cotangent")),
        }
    }
    Ok((Some(d), Some(rd)))
}

/// The output jet of a sequence.
pub(crate) fn seq_jet(
    layers: &[LayerKind],
    p: &[Tensor],
    v: &[Tensor],
    x: Jet,
    ws: &mut Workspace,
) -> Result<Jet> {
    let off = offsets(layers);
    let mut h = x;
    for (i, l) in layers.iter().enumerate() {
        let (a, b) = (off[i], off[i + 1]);
        h = l.layer().jet(&p[a..b], &v[a..b], &h, ws)?;
    }
    Ok(h)
}

/// The bytes [`Network::random`] holds at its peak for parameter tensors of `sizes`
/// elements: every parameter in the model's dtype plus two f64 copies (the draws and
/// the scaled values) of the largest tensor.
pub fn random_bytes(sizes: &[usize], dtype_bytes: usize) -> u128 {
    let total: u128 = sizes.iter().map(|&n| n as u128).sum();
    let largest = sizes.iter().copied().max().unwrap_or(0) as u128;
    total * dtype_bytes as u128 + 2 * 8 * largest
}

/// A network: layers, the per-sample input shape, parameters, and the chunk size of
/// every pass over a batch.
#[derive(Debug, Clone)]
pub struct Network {
    pub layers: Vec<LayerKind>,
    /// Per-sample input shape (`[d]`, `[C, H, W]`, `[T]` for ids).
    pub input_shape: Vec<usize>,
    pub params: NetParams,
    /// Rows (samples) per chunk.
    pub chunk_size: usize,
}

impl Network {
    /// Wraps parameters, checking names and shapes against the layers.
    pub fn new(layers: Vec<LayerKind>, input_shape: &[usize], params: NetParams) -> Result<Self> {
        crate::threads::init();
        spec::check_limits(&layers)?;
        let (_, shapes) = seq_shapes(&layers, input_shape, "layers.")?;
        let names: Vec<&String> = shapes.iter().map(|(n, _)| n).collect();
        if params.names.iter().collect::<Vec<_>>() != names {
            return invalid(format!(
                "parameters {:?} do not match the layers, expected {names:?}",
                params.names
            ));
        }
        for ((n, s), t) in shapes.iter().zip(&params.tensors) {
            if t.dims() != s.as_slice() {
                return invalid(format!("{n}: shape {:?}, expected {s:?}", t.dims()));
            }
        }
        Ok(Self {
            layers,
            input_shape: input_shape.to_vec(),
            params,
            chunk_size: DEFAULT_CHUNK,
        })
    }

    /// Random parameters from `seed` (each layer's [`Layer::init`]; `bias_std` for
    /// biases and around the unit gains). The parameters are sized from the shapes
    /// first and refused when they exceed the memory limit ([`crate::memory`]).
    pub fn random(
        layers: Vec<LayerKind>,
        input_shape: &[usize],
        seed: u64,
        bias_std: f64,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        Self::check_memory(&layers, input_shape, dtype)?;
        let inits = Self::inits(&layers, input_shape)?;
        let (mut names, mut tensors) = (Vec::new(), Vec::new());
        for (k, (name, shape, init)) in inits.into_iter().enumerate() {
            let n = numel(&name, &shape)?;
            let z = rng::normal_vec(rng::derive_seed(seed, k as u64), n);
            let vals: Vec<f64> = match init {
                Init::Normal(s) => z.iter().map(|v| v * s).collect(),
                Init::Bias => z.iter().map(|v| v * bias_std).collect(),
                Init::One => z.iter().map(|v| 1.0 + v * bias_std).collect(),
            };
            let t = Tensor::from_vec(vals, shape, &Device::Cpu)?;
            tensors.push(t.to_dtype(dtype)?.to_device(device)?);
            names.push(name);
        }
        Self::new(layers, input_shape, NetParams::new(names, tensors)?)
    }

    /// Refuses parameters that do not fit the memory limit: [`random_bytes`] of the
    /// shapes, before anything is allocated.
    fn check_memory(layers: &[LayerKind], input: &[usize], dtype: DType) -> Result<()> {
        spec::check_limits(layers)?;
        let (_, shapes) = seq_shapes(layers, input, "layers.")?;
        let sizes = shapes
            .iter()
            .map(|(n, s)| numel(n, s))
            .collect::<Result<Vec<usize>>>()?;
        let need = random_bytes(&sizes, dtype.size_in_bytes());
        match crate::memory::over_limit(need)? {
            None => Ok(()),
            Some(limit) => {
                let count: u128 = sizes.iter().map(|&n| n as u128).sum();
                let what = format!("the network's {count} parameters ({dtype:?})");
                invalid(crate::memory::refusal(&what, need, limit))
            }
        }
    }

    /// `(path, shape, init)` of every parameter.
    fn inits(layers: &[LayerKind], input: &[usize]) -> Result<Vec<(String, Vec<usize>, Init)>> {
        let mut out = Vec::new();
        let mut shape = input.to_vec();
        for (i, l) in layers.iter().enumerate() {
            let l = l.layer();
            let ctx =
                |e: crate::Error| crate::Error::Invalid(format!("layers.{i} ({}): {e}", l.kind()));
            for (n, s) in l.param_shapes(&shape).map_err(ctx)? {
                let init = l.init(&n, &s);
                out.push((format!("layers.{i}.{n}"), s, init));
            }
            shape = l.out_shape(&shape).map_err(ctx)?;
        }
        Ok(out)
    }

    /// The same architecture with other parameters (same structure required).
    pub fn with_params(&self, params: NetParams) -> Result<Self> {
        self.params.check_same_structure(&params)?;
        Ok(Self {
            params,
            ..self.clone()
        })
    }

    /// The per-sample output shape.
    pub fn output_shape(&self) -> Result<Vec<usize>> {
        Ok(seq_shapes(&self.layers, &self.input_shape, "layers.")?.0)
    }

    pub fn dtype(&self) -> DType {
        self.params.dtype()
    }

    pub fn device(&self) -> Device {
        self.params.device()
    }
}
