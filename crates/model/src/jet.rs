//! Taylor coefficients of the loss along a direction, by Taylor-mode (jet)
//! propagation through the network (Griewank & Walther, "Evaluating Derivatives",
//! ch. 13; THEORY.md §8).
//!
//! Along θ(t) = θ + t v every quantity q(t) is carried as its jet (q, q̇, q̈, q⃛)
//! (derivatives at t = 0). A layer with weights W + tV, b + tc maps input jets to
//!
//! ```text
//! z = m h Wᵀ + b        ż = m (ḣ Wᵀ + h Vᵀ) + c
//! z̈ = m (ḧ Wᵀ + 2 ḣ Vᵀ)   z⃛ = m (h⃛ Wᵀ + 3 ḧ Vᵀ)
//! ```
//!
//! (Leibniz rule; W is linear in t) and the activation by Faà di Bruno:
//! `φ̇ = φ'ż`, `φ̈ = φ''ż² + φ'z̈`, `φ⃛ = φ'''ż³ + 3φ''żz̈ + φ'z⃛`. The input is constant
//! (ḣ_0 = ḧ_0 = h⃛_0 = 0), so the first layer's z̈, z⃛ vanish. The loss's jet comes from
//! [`crate::Loss::jet_sums`]. Then `c_j = (1/j!) dʲ/dtʲ L(θ + t v)|₀`:
//! c0 = L, c1 = ⟨∇L, v⟩, c2 = ½ vᵀHv, c3 = (1/6) ∇³L[v, v, v].

use candle_core::Tensor;

use crate::fused::{fuse, Steps};
use crate::{Batch, Loss, Mlp, ParamVec, Result};

/// A jet of order ≤ 3; `None` entries are identically zero.
#[derive(Debug, Clone)]
pub(crate) struct Jet {
    pub t: [Option<Tensor>; 4],
}

fn add(a: Option<Tensor>, b: Option<Tensor>) -> Result<Option<Tensor>> {
    Ok(match (a, b) {
        (Some(a), Some(b)) => Some((a + b)?),
        (a, None) => a,
        (None, b) => b,
    })
}

/// `m (a Vᵀ · k + b Wᵀ)` for optional inputs a, b (`None`: zero), fused after the products.
fn tangent_term(
    a: Option<&Tensor>,
    k: f64,
    v: &Tensor,
    b: Option<&Tensor>,
    w: &Tensor,
    m: f64,
) -> Result<Option<Tensor>> {
    let av = a.map(|a| a.matmul(&v.t()?)).transpose()?;
    let bw = b.map(|b| b.matmul(&w.t()?)).transpose()?;
    Ok(match (av, bw) {
        (None, None) => None,
        (Some(av), None) => Some(fuse(av, None, None, Steps::scale(m * k), None)?),
        (None, Some(bw)) => Some(fuse(bw, None, None, Steps::scale(m), None)?),
        (Some(av), Some(bw)) => {
            let av = if k != 1.0 {
                fuse(av, None, None, Steps::scale(k), None)?
            } else {
                av
            };
            Some(fuse(av, Some(&bw), None, Steps::scale(m), None)?)
        }
    })
}

impl Mlp {
    /// Propagates the jet of order `order` (1..=3) of the output along `v` for the
    /// inputs `x`; returns the output jet (entry 0 is f, without offset).
    pub(crate) fn output_jet(&self, x: &Tensor, v: &ParamVec, order: usize) -> Result<Jet> {
        let depth = self.depth();
        let mut h = Jet {
            t: [Some(x.clone()), None, None, None],
        };
        for (l, (p, dv)) in self.params.layers.iter().zip(&v.layers).enumerate() {
            let m = self.multipliers[l];
            let h0 = h.t[0].take().expect("primal is always present");
            let p0 = h0.matmul(&p.weight.t()?)?;
            // ż = m (ḣ Wᵀ + h Vᵀ) + c
            let hv = h0.matmul(&dv.weight.t()?)?;
            let hw = h.t[1]
                .as_ref()
                .map(|t| t.matmul(&p.weight.t()?))
                .transpose()?;
            let z1 = fuse(hv, hw.as_ref(), dv.bias.as_ref(), Steps::scale(m), None)?;
            // z̈ = m (ḧ Wᵀ + 2 ḣ Vᵀ),  z⃛ = m (h⃛ Wᵀ + 3 ḧ Vᵀ)
            let z2 = if order >= 2 {
                tangent_term(
                    h.t[1].as_ref(),
                    2.0,
                    &dv.weight,
                    h.t[2].as_ref(),
                    &p.weight,
                    m,
                )?
            } else {
                None
            };
            let z3 = if order >= 3 {
                tangent_term(
                    h.t[2].as_ref(),
                    3.0,
                    &dv.weight,
                    h.t[3].as_ref(),
                    &p.weight,
                    m,
                )?
            } else {
                None
            };
            if l + 1 == depth {
                let z0 = fuse(p0, None, p.bias.as_ref(), Steps::scale(m), None)?;
                return Ok(Jet {
                    t: [Some(z0), Some(z1), z2, z3],
                });
            }
            let (h_next, act) = self.activation.layer(p0, m, p.bias.as_ref(), order)?;
            let a = act.expect("order ≥ 1 gives φ'");
            let out = if a.d2.is_none() && a.d3.is_none() {
                // φ'' = φ''' = 0 (relu family, identity): every tangent is z ⊙ φ', in place.
                [
                    Some(h_next),
                    Some(a.mul_d1(z1)?),
                    z2.map(|t| a.mul_d1(t)).transpose()?,
                    z3.map(|t| a.mul_d1(t)).transpose()?,
                ]
            } else {
                let d1 = a.d1.to_tensor(&z1)?;
                let mut out = [Some(h_next), Some((&z1 * &d1)?), None, None];
                if order >= 2 {
                    let mut h2 = z2.as_ref().map(|z2| z2 * &d1).transpose()?;
                    if let Some(d2) = &a.d2 {
                        h2 = add(h2, Some((z1.sqr()? * d2)?))?;
                    }
                    out[2] = h2;
                }
                if order >= 3 {
                    let mut h3 = z3.as_ref().map(|z3| z3 * &d1).transpose()?;
                    if let Some(d2) = &a.d2 {
                        if let Some(z2) = &z2 {
                            h3 = add(h3, Some(((&z1 * z2)? * d2)?.affine(3.0, 0.0)?))?;
                        }
                    }
                    if let Some(d3) = &a.d3 {
                        h3 = add(h3, Some((z1.powf(3.0)? * d3)?))?;
                    }
                    out[3] = h3;
                }
                out
            };
            h = Jet { t: out };
        }
        unreachable!("the loop returns at the last layer")
    }

    /// `[c0, c1, c2, c3]` with `c_j = (1/j!) dʲ/dtʲ L(θ + t v)` at t = 0.
    pub fn taylor(&self, batch: &Batch, loss: Loss, v: &ParamVec) -> Result<[f64; 4]> {
        self.check_batch(batch)?;
        self.params.check_same_structure(v)?;
        let n = batch.len();
        let parts = self.parts(n);
        let res = self.map_parts(&parts, |s, c| {
            let b = batch.rows(s, c)?;
            let jet = self.output_jet(&b.x, v, 3)?;
            let mut f = jet.t[0].clone().expect("primal");
            if let Some(o) = &b.offset {
                f = (f - o)?;
            }
            let ev = loss.eval(&f, &b.y)?;
            let a = jet.t[1].as_ref().expect("first-order output tangent");
            let [d1, d2, d3] = loss.jet_sums(&ev, a, jet.t[2].as_ref(), jet.t[3].as_ref())?;
            Ok([ev.value_sum, d1, d2, d3])
        })?;
        let mut sums = [0.0f64; 4];
        for r in res {
            for (s, x) in sums.iter_mut().zip(r) {
                *s += x;
            }
        }
        let n = n as f64;
        Ok([
            sums[0] / n,
            sums[1] / n,
            sums[2] / (2.0 * n),
            sums[3] / (6.0 * n),
        ])
    }

    /// The third directional derivative d³/dt³ L(θ + t v) = ∇³L[v, v, v].
    pub fn third_derivative(&self, batch: &Batch, loss: Loss, v: &ParamVec) -> Result<f64> {
        Ok(6.0 * self.taylor(batch, loss, v)?[3])
    }
}
