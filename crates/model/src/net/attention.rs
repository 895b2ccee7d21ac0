//! `attention {heads, causal, scale}`: multi-head self-attention on `[n, T, d]` without
//! biases (Vaswani et al. 2017). `qkv.weight` `[3d, d]` (rows: all queries, then keys,
//! then values; head h owns the contiguous block h·d/H .. (h+1)·d/H of each),
//! `proj.weight` `[d, d]`. Per head, with M the causal mask (j ≤ i) or all ones and the
//! logit scale s = 1/√(d/H) (`scale = "sqrt"`, the default, Vaswani et al.) or
//! s = 1/(d/H) (`scale = "mup"`, μP's attention, Tensor Programs V, Yang et al. 2022,
//! arXiv 2203.03466, §J.2 / Definition 4.1: q·k grows like d/H once q and k are
//! correlated by training, so 1/(d/H) keeps the logits O(1) as the width grows). s is a
//! constant of the layer, so every rule below holds for both:
//!
//! ```text
//! [q k v] = x Wᵀ_qkv,  S = s q kᵀ,  A = softmax_M(S) = M e^S / Σ_j M e^S,  O = A v,
//! y = merge(O) Pᵀ
//! backward: P̄ = ȳᵀ O,  Ō = ȳ P,  Ā = Ō vᵀ,  v̄ = Aᵀ Ō,  S̄ = A ⊙ (Ā − rowsum(Ā ⊙ A)),
//!           q̄ = s S̄ k,  k̄ = s S̄ᵀ q,  W̄_qkv = [q̄ k̄ v̄]ᵀ x,  x̄ = [q̄ k̄ v̄] W_qkv
//! tangent:  [q̇ k̇ v̇] = ẋ Wᵀ + x Vᵀ,  Ṡ = s (q̇ kᵀ + q k̇ᵀ),  Ȧ = A ⊙ (Ṡ − rowsum(A ⊙ Ṡ)),
//!           Ȯ = Ȧ v + A v̇,  ẏ = Ȯ Pᵀ + O V_Pᵀ
//! R-op:     R{Ō} = R{ȳ} P + ȳ V_P,  R{Ā} = R{Ō} vᵀ + Ō v̇ᵀ,  R{v̄} = Ȧᵀ Ō + Aᵀ R{Ō},
//!           R{S̄} = Ȧ ⊙ (Ā − rowsum(Ā ⊙ A)) + A ⊙ (R{Ā} − rowsum(R{Ā} ⊙ A + Ā ⊙ Ȧ)),
//!           R{q̄} = s (R{S̄} k + S̄ k̇),  R{k̄} = s (R{S̄}ᵀ q + S̄ᵀ q̇),
//!           R{W̄_qkv} = R{[q̄ k̄ v̄]}ᵀ x + [q̄ k̄ v̄]ᵀ ẋ,  R{x̄} = R{[q̄ k̄ v̄]} W + [q̄ k̄ v̄] V,
//!           R{P̄} = R{ȳ}ᵀ O + ȳᵀ Ȯ
//! jet:      products by Leibniz; e^{S − c} (c the row maximum at t = 0, a constant) and
//!           1/Σ by Faà di Bruno.
//! ```
//!
//! (Pearlmutter 1994 for the R-op; flash attention has no double backward, pytorch issue
//! #116350.) Cache: x, q, k, v, A, O; tangent cache: q̇, k̇, v̇, Ȧ, Ȯ.
//! Parameterization: both weights are hidden layers (fan_in d; TP V Table 3), in
//! eos-param's effective form (crates/train/src/network.rs).

use candle_core::{Tensor, D};

use super::dense::{mm, mm_t, outer};
use super::{Back, Cache, Grads, Jet, Layer, ParamShape, Sinks, Tan, Workspace};
use crate::{invalid, Result};

/// Multi-head self-attention.
#[derive(Debug, Clone, PartialEq)]
pub struct Attention {
    pub heads: usize,
    pub causal: bool,
    pub scale: AttentionScale,
}

/// The attention logit scale s of a head of width d/H.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AttentionScale {
    /// s = 1/√(d/H) (Vaswani et al. 2017).
    #[default]
    Sqrt,
    /// s = 1/(d/H) (μP, Tensor Programs V §J.2).
    Mup,
}

impl AttentionScale {
    /// The name in layer objects (`sqrt`, `mup`).
    pub fn name(&self) -> &'static str {
        match self {
            AttentionScale::Sqrt => "sqrt",
            AttentionScale::Mup => "mup",
        }
    }

    /// The scale of the name, None for an unknown one.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "sqrt" => Some(AttentionScale::Sqrt),
            "mup" => Some(AttentionScale::Mup),
            _ => None,
        }
    }

    /// s for heads of width `dh`.
    pub fn of(&self, dh: usize) -> f64 {
        match self {
            AttentionScale::Sqrt => 1.0 / (dh as f64).sqrt(),
            AttentionScale::Mup => 1.0 / dh as f64,
        }
    }
}

fn bmm(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    Ok(a.contiguous()?.matmul(&b.contiguous()?)?)
}

/// `a bᵀ` over the last two axes.
fn bmm_t(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    Ok(a.contiguous()?.matmul(&b.t()?.contiguous()?)?)
}

/// `aᵀ b` over the last two axes.
fn bmm_tn(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    Ok(a.t()?.contiguous()?.matmul(&b.contiguous()?)?)
}

fn rowsum(t: &Tensor) -> Result<Tensor> {
    Ok(t.sum_keepdim(D::Minus1)?)
}

/// A ⊙ (G − rowsum(G ⊙ A)): the softmax's Jacobian (symmetric) applied to G.
fn softmax_jac(a: &Tensor, g: &Tensor) -> Result<Tensor> {
    Ok((a * g.broadcast_sub(&rowsum(&(g * a)?)?)?)?)
}

impl Attention {
    fn dims(&self, x: &Tensor) -> Result<(usize, usize, usize, usize)> {
        let (n, t, d) = x.dims3()?;
        Ok((n, t, self.heads, d / self.heads))
    }

    /// `[n, T, d]` → `[n, H, T, d/H]`.
    fn split(&self, t: &Tensor) -> Result<Tensor> {
        let (n, tt, h, dh) = self.dims(t)?;
        Ok(t.reshape((n, tt, h, dh))?.transpose(1, 2)?.contiguous()?)
    }

    /// `[n, H, T, d/H]` → `[n, T, d]`.
    fn merge(t: &Tensor) -> Result<Tensor> {
        let (n, h, tt, dh) = t.dims4()?;
        Ok(t.transpose(1, 2)?.contiguous()?.reshape((n, tt, h * dh))?)
    }

    /// Queries, keys and values (per head) of a `[n, T, 3d]` tensor.
    fn qkv(&self, t: &Tensor) -> Result<[Tensor; 3]> {
        let d = t.dim(2)? / 3;
        let part = |i: usize| self.split(&t.narrow(2, i * d, d)?);
        Ok([part(0)?, part(1)?, part(2)?])
    }

    fn scale(&self, x: &Tensor) -> Result<f64> {
        Ok(self.scale.of(x.dim(2)? / self.heads))
    }

    /// The mask M `[T, T]` (None without causality) and its additive form
    /// (0 or −1e30) for the row maxima.
    fn mask(&self, s: &Tensor) -> Result<Option<(Tensor, Tensor)>> {
        if !self.causal {
            return Ok(None);
        }
        let t = s.dim(D::Minus1)?;
        let m = Tensor::tril2(t, s.dtype(), s.device())?;
        let neg = m.affine(1e30, -1e30)?;
        Ok(Some((m, neg)))
    }

    /// The row maxima of S over the allowed entries (a constant shift).
    fn row_max(s: &Tensor, mask: Option<&(Tensor, Tensor)>) -> Result<Tensor> {
        Ok(match mask {
            Some((_, neg)) => s.broadcast_add(neg)?.max_keepdim(D::Minus1)?,
            None => s.max_keepdim(D::Minus1)?,
        })
    }

    fn softmax(&self, s: &Tensor) -> Result<Tensor> {
        let mask = self.mask(s)?;
        let mut e = s.broadcast_sub(&Self::row_max(s, mask.as_ref())?)?.exp()?;
        if let Some((m, _)) = &mask {
            e = e.broadcast_mul(m)?;
        }
        Ok(e.broadcast_div(&rowsum(&e)?)?)
    }

    /// The cotangents [q̄ k̄ v̄] merged to `[n, T, 3d]` from Ō (per head).
    fn back_qkv(&self, c: &Cache, s: f64, dob: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
        let (q, k, v, a) = (c.get(1)?, c.get(2)?, c.get(3)?, c.get(4)?);
        let da = bmm_t(dob, v)?;
        let dv = bmm_tn(a, dob)?;
        let ds = softmax_jac(a, &da)?;
        let dq = bmm(&ds, k)?.affine(s, 0.0)?;
        let dk = bmm_tn(&ds, q)?.affine(s, 0.0)?;
        let dqkv = Tensor::cat(
            &[Self::merge(&dq)?, Self::merge(&dk)?, Self::merge(&dv)?],
            2,
        )?;
        Ok((dqkv, da, ds))
    }
}

impl Layer for Attention {
    fn kind(&self) -> &'static str {
        "attention"
    }

    fn n_params(&self) -> usize {
        2
    }

    fn out_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        match input {
            &[_, d] if self.heads > 0 && d % self.heads == 0 => Ok(input.to_vec()),
            _ => invalid(format!(
                "attention with {} heads needs inputs [T, d] with d divisible by the heads, \
                 got {input:?}",
                self.heads
            )),
        }
    }

    fn param_shapes(&self, input: &[usize]) -> Result<Vec<ParamShape>> {
        let d = self.out_shape(input)?[1];
        Ok(vec![
            ("qkv.weight".into(), vec![3 * d, d]),
            ("proj.weight".into(), vec![d, d]),
        ])
    }

    fn forward(&self, p: &[Tensor], x: &Tensor, _: &mut Workspace) -> Result<(Tensor, Cache)> {
        let [q, k, v] = self.qkv(&mm_t(x, &p[0])?)?;
        let a = self.softmax(&bmm_t(&q, &k)?.affine(self.scale(x)?, 0.0)?)?;
        let o = Self::merge(&bmm(&a, &v)?)?;
        let y = mm_t(&o, &p[1])?;
        Ok((y, Cache::of(vec![x.clone(), q, k, v, a, o])))
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
        let x = c.get(0)?;
        g.add(1, || outer(dy, c.get(5)?))?;
        let dob = self.split(&mm(dy, &p[1])?)?;
        let (dqkv, _, _) = self.back_qkv(c, self.scale(x)?, &dob)?;
        g.add(0, || outer(&dqkv, x))?;
        need_dx.then(|| mm(&dqkv, &p[0])).transpose()
    }

    fn jvp(
        &self,
        p: &[Tensor],
        v: &[Tensor],
        c: &Cache,
        xt: Option<&Tensor>,
        _: &mut Workspace,
    ) -> Result<(Option<Tensor>, Cache)> {
        let (x, q, k, vv, a, o) = (
            c.get(0)?,
            c.get(1)?,
            c.get(2)?,
            c.get(3)?,
            c.get(4)?,
            c.get(5)?,
        );
        let mut t = mm_t(x, &v[0])?;
        if let Some(xt) = xt {
            t = (t + mm_t(xt, &p[0])?)?;
        }
        let [qt, kt, vt] = self.qkv(&t)?;
        let st = (bmm_t(&qt, k)? + bmm_t(q, &kt)?)?.affine(self.scale(x)?, 0.0)?;
        let at = softmax_jac(a, &st)?;
        let ot = Self::merge(&(bmm(&at, vv)? + bmm(a, &vt)?)?)?;
        let y = (mm_t(&ot, &p[1])? + mm_t(o, &v[1])?)?;
        Ok((Some(y), Cache::of(vec![qt, kt, vt, at, ot])))
    }

    fn tangent_vjp(
        &self,
        p: &[Tensor],
        c: &Cache,
        t: Tan,
        b: Back,
        s: &mut Sinks,
        _: &mut Workspace,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (x, q, k, vv, a, o) = (
            c.get(0)?,
            c.get(1)?,
            c.get(2)?,
            c.get(3)?,
            c.get(4)?,
            c.get(5)?,
        );
        let tc = t.tc;
        let (qt, kt, vt, at, ot) = (tc.get(0)?, tc.get(1)?, tc.get(2)?, tc.get(3)?, tc.get(4)?);
        let sc = self.scale(x)?;
        // The primal backward (also the gradient when wanted).
        s.grad.add(1, || outer(b.dy, o))?;
        let dob = self.split(&mm(b.dy, &p[1])?)?;
        let (dqkv, da, ds) = self.back_qkv(c, sc, &dob)?;
        s.grad.add(0, || outer(&dqkv, x))?;
        // Its tangent.
        s.hv.add(1, || Ok((outer(b.rdy, o)? + outer(b.dy, ot)?)?))?;
        let rdob = self.split(&(mm(b.rdy, &p[1])? + mm(b.dy, &t.v[1])?)?)?;
        let rda = (bmm_t(&rdob, vv)? + bmm_t(&dob, vt)?)?;
        let rdv = (bmm_tn(at, &dob)? + bmm_tn(a, &rdob)?)?;
        let sig = rowsum(&(&da * a)?)?;
        let inner = (&rda * a)? + (&da * at)?;
        let rds =
            ((at * da.broadcast_sub(&sig)?)? + (a * rda.broadcast_sub(&rowsum(&inner?)?)?)?)?;
        let rdq = (bmm(&rds, k)? + bmm(&ds, kt)?)?.affine(sc, 0.0)?;
        let rdk = (bmm_tn(&rds, q)? + bmm_tn(&ds, qt)?)?.affine(sc, 0.0)?;
        let rdqkv = Tensor::cat(
            &[Self::merge(&rdq)?, Self::merge(&rdk)?, Self::merge(&rdv)?],
            2,
        )?;
        s.hv.add(0, || {
            let mut w = outer(&rdqkv, x)?;
            if let Some(xt) = t.xt {
                w = (w + outer(&dqkv, xt)?)?;
            }
            Ok(w)
        })?;
        if !b.need_dx {
            return Ok((None, None));
        }
        let dx = mm(&dqkv, &p[0])?;
        let rdx = (mm(&rdqkv, &p[0])? + mm(&dqkv, &t.v[0])?)?;
        Ok((Some(dx), Some(rdx)))
    }

    fn jet(&self, p: &[Tensor], v: &[Tensor], x: &Jet, _: &mut Workspace) -> Result<Jet> {
        let o = x.order;
        let sc = self.scale(x.primal()?)?;
        let qkv = x.bilinear(&Jet::param(&p[0], &v[0], o), mm_t)?;
        let d = x.primal()?.dim(2)?;
        let part = |i: usize| qkv.linear(|t| self.split(&t.narrow(2, i * d, d)?));
        let (q, k, vv) = (part(0)?, part(1)?, part(2)?);
        let s = q.bilinear(&k, |a, b| Ok(bmm_t(a, b)?.affine(sc, 0.0)?))?;
        let mask = self.mask(s.primal()?)?;
        let mx = Self::row_max(s.primal()?, mask.as_ref())?;
        let mut shifted = s.clone();
        shifted.t[0] = Some(s.primal()?.broadcast_sub(&mx)?);
        let ex = shifted.primal()?.exp()?;
        let mut e = shifted.compose([
            Some(ex.clone()),
            Some(ex.clone()),
            Some(ex.clone()),
            Some(ex),
        ])?;
        if let Some((m, _)) = &mask {
            e = e.linear(|t| Ok(t.broadcast_mul(m)?))?;
        }
        let den = e.linear(rowsum)?;
        let u = den.primal()?;
        let r = u.recip()?;
        let r2 = r.sqr()?;
        let inv = den.compose([
            Some(r.clone()),
            Some(r2.neg()?),
            Some((&r2 * &r)?.affine(2.0, 0.0)?),
            Some(r2.sqr()?.affine(-6.0, 0.0)?),
        ])?;
        let a = e.mul(&inv)?;
        let out = a.bilinear(&vv, bmm)?.linear(Self::merge)?;
        out.bilinear(&Jet::param(&p[1], &v[1], o), mm_t)
    }
}
