//! `embedding {vocab, dim}` on integer ids `[n, T]` and `pos_embedding {len, dim}`.
//!
//! ```text
//! embedding:      y[n,t] = E[id[n,t]]           E `[vocab, dim]`
//!                 Ē[i] = Σ_{id[n,t] = i} ȳ[n,t],  ẏ = V[id],  R{Ē} = scatter(R{ȳ}),
//!                 jet: y⁽ᵏ⁾ = (E + tV)⁽ᵏ⁾[id] (linear in E)
//! pos_embedding:  y[n,t] = x[n,t] + P[t]         P `[len, dim]`, T ≤ len
//!                 x̄ = ȳ,  P̄[t] = Σ_n ȳ[n,t] (zero for t ≥ T),  ẏ = ẋ + V[:T]
//! ```
//!
//! Ids arrive in the batch's x (any dtype holding whole numbers); they are checked to
//! be whole numbers in [0, vocab) on every forward pass, with an error naming the first
//! bad one. The embedding has no input cotangent, so it must be the first layer.
//! Parameterization: both are input layers (Tensor Programs V: entries of order 1).

use candle_core::{DType, Tensor};

use super::{Back, Cache, Grads, Init, Jet, Layer, ParamShape, Sinks, Tan, Workspace};
use crate::{invalid, Result};

/// Token embedding.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedding {
    pub vocab: usize,
    pub dim: usize,
}

/// Learned positional embedding, added.
#[derive(Debug, Clone, PartialEq)]
pub struct PosEmbedding {
    pub len: usize,
    pub dim: usize,
}

impl Embedding {
    /// The ids of `x` as a flat `u32` tensor, or an error for a bad id.
    fn ids(&self, x: &Tensor) -> Result<Tensor> {
        let vals = x.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?;
        for (i, &v) in vals.iter().enumerate() {
            if v.fract() != 0.0 || v < 0.0 || v >= self.vocab as f64 {
                return invalid(format!(
                    "x: entry {i} is {v}, expected a whole number id in [0, {})",
                    self.vocab
                ));
            }
        }
        let ids: Vec<u32> = vals.iter().map(|&v| v as u32).collect();
        Ok(Tensor::from_vec(ids, vals.len(), x.device())?)
    }

    fn gather(&self, ids: &Tensor, e: &Tensor, shape: &[usize]) -> Result<Tensor> {
        let mut s = shape.to_vec();
        s.push(self.dim);
        Ok(e.index_select(ids, 0)?.reshape(s)?)
    }

    fn scatter(&self, ids: &Tensor, dy: &Tensor, e: &Tensor) -> Result<Tensor> {
        let rows = ids.dim(0)?;
        Ok(e.zeros_like()?
            .index_add(ids, &dy.reshape((rows, self.dim))?, 0)?)
    }

    fn no_dx(need_dx: bool) -> Result<()> {
        if need_dx {
            return invalid("embedding has no input cotangent: it must be the first layer");
        }
        Ok(())
    }
}

impl Layer for Embedding {
    fn kind(&self) -> &'static str {
        "embedding"
    }

    fn n_params(&self) -> usize {
        1
    }

    fn out_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        let mut s = input.to_vec();
        s.push(self.dim);
        Ok(s)
    }

    fn param_shapes(&self, _: &[usize]) -> Result<Vec<ParamShape>> {
        Ok(vec![("weight".into(), vec![self.vocab, self.dim])])
    }

    fn init(&self, _: &str, _: &[usize]) -> Init {
        Init::Normal(1.0)
    }

    fn forward(&self, p: &[Tensor], x: &Tensor, _: &mut Workspace) -> Result<(Tensor, Cache)> {
        let ids = self.ids(x)?;
        let y = self.gather(&ids, &p[0], x.dims())?;
        let c = Cache {
            shape: x.dims().to_vec(),
            ..Cache::of(vec![ids])
        };
        Ok((y, c))
    }

    fn vjp(
        &self,
        p: &[Tensor],
        c: &Cache,
        dy: &Tensor,
        need_dx: bool,
        g: &mut Grads,
        _: &mut Workspace,
    ) -> Result<Option<Tensor>> {
        Self::no_dx(need_dx)?;
        g.add(0, || self.scatter(c.get(0)?, dy, &p[0]))?;
        Ok(None)
    }

    fn jvp(
        &self,
        _: &[Tensor],
        v: &[Tensor],
        c: &Cache,
        _: Option<&Tensor>,
        _: &mut Workspace,
    ) -> Result<(Option<Tensor>, Cache)> {
        let y = self.gather(c.get(0)?, &v[0], &c.shape)?;
        Ok((Some(y), Cache::default()))
    }

    fn tangent_vjp(
        &self,
        p: &[Tensor],
        c: &Cache,
        _: Tan,
        b: Back,
        s: &mut Sinks,
        ws: &mut Workspace,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        self.vjp(p, c, b.dy, b.need_dx, &mut s.grad, ws)?;
        s.hv.add(0, || self.scatter(c.get(0)?, b.rdy, &p[0]))?;
        Ok((None, None))
    }

    fn jet(&self, p: &[Tensor], v: &[Tensor], x: &Jet, _: &mut Workspace) -> Result<Jet> {
        let xs = x.primal()?;
        let ids = self.ids(xs)?;
        Jet::param(&p[0], &v[0], x.order).linear(|e| self.gather(&ids, e, xs.dims()))
    }
}

impl PosEmbedding {
    /// P[:T] for inputs `[n, T, dim]`.
    fn rows(p: &Tensor, x_dims: &[usize]) -> Result<Tensor> {
        Ok(p.narrow(0, 0, x_dims[1])?)
    }

    /// Σ_n ȳ[n, t], padded with zero rows to `[len, dim]`.
    fn grad(&self, dy: &Tensor) -> Result<Tensor> {
        let s = dy.sum(0)?;
        let t = s.dim(0)?;
        Ok(s.pad_with_zeros(0, 0, self.len - t)?)
    }
}

impl Layer for PosEmbedding {
    fn kind(&self) -> &'static str {
        "pos_embedding"
    }

    fn n_params(&self) -> usize {
        1
    }

    fn out_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        match input {
            &[t, d] if t <= self.len && d == self.dim => Ok(input.to_vec()),
            _ => invalid(format!(
                "pos_embedding needs inputs [T ≤ {}, {}], got {input:?}",
                self.len, self.dim
            )),
        }
    }

    fn param_shapes(&self, _: &[usize]) -> Result<Vec<ParamShape>> {
        Ok(vec![("weight".into(), vec![self.len, self.dim])])
    }

    fn init(&self, _: &str, _: &[usize]) -> Init {
        Init::Normal(1.0)
    }

    fn forward(&self, p: &[Tensor], x: &Tensor, _: &mut Workspace) -> Result<(Tensor, Cache)> {
        let y = x.broadcast_add(&Self::rows(&p[0], x.dims())?)?;
        let c = Cache {
            shape: x.dims().to_vec(),
            ..Cache::default()
        };
        Ok((y, c))
    }

    fn vjp(
        &self,
        _: &[Tensor],
        _: &Cache,
        dy: &Tensor,
        need_dx: bool,
        g: &mut Grads,
        _: &mut Workspace,
    ) -> Result<Option<Tensor>> {
        g.add(0, || self.grad(dy))?;
        Ok(need_dx.then(|| dy.clone()))
    }

    fn jvp(
        &self,
        _: &[Tensor],
        v: &[Tensor],
        c: &Cache,
        xt: Option<&Tensor>,
        _: &mut Workspace,
    ) -> Result<(Option<Tensor>, Cache)> {
        let pv = Self::rows(&v[0], &c.shape)?;
        let y = match xt {
            Some(xt) => xt.broadcast_add(&pv)?,
            None => pv.broadcast_as(c.shape.as_slice())?.contiguous()?,
        };
        Ok((Some(y), Cache::default()))
    }

    fn tangent_vjp(
        &self,
        p: &[Tensor],
        c: &Cache,
        _: Tan,
        b: Back,
        s: &mut Sinks,
        ws: &mut Workspace,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let dx = self.vjp(p, c, b.dy, b.need_dx, &mut s.grad, ws)?;
        s.hv.add(0, || self.grad(b.rdy))?;
        Ok((dx, b.need_dx.then(|| b.rdy.clone())))
    }

    fn jet(&self, p: &[Tensor], v: &[Tensor], x: &Jet, _: &mut Workspace) -> Result<Jet> {
        let dims = x.primal()?.dims().to_vec();
        let pj = Jet::param(&p[0], &v[0], x.order).linear(|t| Self::rows(t, &dims))?;
        x.add(&pj)
    }
}
