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

use crate::mlp::linear;
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

fn mul(a: &Option<Tensor>, b: &Tensor) -> Result<Option<Tensor>> {
    Ok(match a {
        Some(a) => Some((a * b)?),
        None => None,
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
            let lin = |t: &Option<Tensor>, w: &Tensor, scale: f64| -> Result<Option<Tensor>> {
                t.as_ref()
                    .map(|t| linear(t, w, m * scale, None))
                    .transpose()
            };
            let h0 = h.t[0].as_ref().expect("primal is always present");
            let z0 = linear(h0, &p.weight, m, p.bias.as_ref())?;
            let mut z1 = add(
                lin(&h.t[1], &p.weight, 1.0)?,
                Some(linear(h0, &dv.weight, m, dv.bias.as_ref())?),
            )?;
            let mut z2 = None;
            let mut z3 = None;
            if order >= 2 {
                z2 = add(
                    lin(&h.t[2], &p.weight, 1.0)?,
                    lin(&h.t[1], &dv.weight, 2.0)?,
                )?;
            }
            if order >= 3 {
                z3 = add(
                    lin(&h.t[3], &p.weight, 1.0)?,
                    lin(&h.t[2], &dv.weight, 3.0)?,
                )?;
            }
            if l + 1 == depth {
                return Ok(Jet {
                    t: [Some(z0), z1.take(), z2, z3],
                });
            }
            let a = self.activation.derivs(&z0, order)?;
            let z1t = z1.take().expect("ż always has the h Vᵀ term");
            let mut out = [Some(a.d0.clone()), Some((&z1t * &a.d1)?), None, None];
            if order >= 2 {
                let mut h2 = mul(&z2, &a.d1)?;
                if let Some(d2) = &a.d2 {
                    h2 = add(h2, Some((z1t.sqr()? * d2)?))?;
                }
                out[2] = h2;
            }
            if order >= 3 {
                let mut h3 = mul(&z3, &a.d1)?;
                if let Some(d2) = &a.d2 {
                    if let Some(z2) = &z2 {
                        h3 = add(h3, Some(((&z1t * z2)? * d2)?.affine(3.0, 0.0)?))?;
                    }
                }
                if let Some(d3) = &a.d3 {
                    h3 = add(h3, Some((z1t.powf(3.0)? * d3)?))?;
                }
                out[3] = h3;
            }
            h = Jet { t: out };
        }
        unreachable!("the loop returns at the last layer")
    }

    /// `[c0, c1, c2, c3]` with `c_j = (1/j!) dʲ/dtʲ L(θ + t v)` at t = 0.
    pub fn taylor(&self, batch: &Batch, loss: Loss, v: &ParamVec) -> Result<[f64; 4]> {
        self.check_batch(batch)?;
        self.params.check_same_structure(v)?;
        let n = batch.len();
        let mut sums = [0.0f64; 4];
        for (s, c) in self.chunks(n) {
            let b = batch.rows(s, c)?;
            let jet = self.output_jet(&b.x, v, 3)?;
            let mut f = jet.t[0].clone().expect("primal");
            if let Some(o) = &b.offset {
                f = (f - o)?;
            }
            let ev = loss.eval(&f, &b.y)?;
            let a = jet.t[1].as_ref().expect("first-order output tangent");
            let [d1, d2, d3] = loss.jet_sums(&ev, a, jet.t[2].as_ref(), jet.t[3].as_ref())?;
            sums[0] += ev.value_sum;
            sums[1] += d1;
            sums[2] += d2;
            sums[3] += d3;
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
