//! Taylor jets of order ≤ 3 and their algebra, used by every layer's `jet` rule.
//!
//! A jet of q(t) is (q, q̇, q̈, q⃛): the derivatives at t = 0 (not divided by k!),
//! with `None` for a component that is identically zero. The rules (Griewank &
//! Walther, "Evaluating Derivatives", ch. 13):
//!
//! ```text
//! linear L:      (L q)⁽ᵏ⁾ = L q⁽ᵏ⁾
//! bilinear B:    B(a, b)⁽ᵏ⁾ = Σ_{j ≤ k} C(k, j) B(a⁽ʲ⁾, b⁽ᵏ⁻ʲ⁾)            (Leibniz)
//! composition:   g(a)' = g' ȧ,  g(a)'' = g'' ȧ² + g' ä,
//!                g(a)''' = g''' ȧ³ + 3 g'' ȧ ä + g' a⃛                   (Faà di Bruno)
//! ```

use candle_core::Tensor;

use crate::{invalid, Result};

/// A jet of order `order` (components above it are `None`).
#[derive(Debug, Clone)]
pub struct Jet {
    pub t: [Option<Tensor>; 4],
    pub order: usize,
}

fn add_opt(a: Option<Tensor>, b: Option<Tensor>) -> Result<Option<Tensor>> {
    Ok(match (a, b) {
        (Some(a), Some(b)) => Some(a.broadcast_add(&b)?),
        (a, None) => a,
        (None, b) => b,
    })
}

const BINOM: [[f64; 4]; 4] = [
    [1.0, 0.0, 0.0, 0.0],
    [1.0, 1.0, 0.0, 0.0],
    [1.0, 2.0, 1.0, 0.0],
    [1.0, 3.0, 3.0, 1.0],
];

impl Jet {
    /// A constant (all tangents zero).
    pub fn constant(x: Tensor, order: usize) -> Self {
        Self {
            t: [Some(x), None, None, None],
            order,
        }
    }

    /// A parameter moving along a direction: (p, v, 0, 0).
    pub fn param(p: &Tensor, v: &Tensor, order: usize) -> Self {
        Self {
            t: [Some(p.clone()), (order >= 1).then(|| v.clone()), None, None],
            order,
        }
    }

    /// The value at t = 0.
    pub fn primal(&self) -> Result<&Tensor> {
        match &self.t[0] {
            Some(t) => Ok(t),
            None => invalid("jet without a primal value"),
        }
    }

    /// `L q` for a linear map L, component by component.
    pub fn linear(&self, f: impl Fn(&Tensor) -> Result<Tensor>) -> Result<Self> {
        let mut t: [Option<Tensor>; 4] = Default::default();
        for (k, c) in self.t.iter().enumerate() {
            t[k] = c.as_ref().map(&f).transpose()?;
        }
        Ok(Self {
            t,
            order: self.order,
        })
    }

    /// `a + b` (broadcasting).
    pub fn add(&self, other: &Self) -> Result<Self> {
        let mut t: [Option<Tensor>; 4] = Default::default();
        for (k, slot) in t.iter_mut().enumerate() {
            *slot = add_opt(self.t[k].clone(), other.t[k].clone())?;
        }
        // A tangent present on one side only keeps that side's shape: broadcast it to
        // the primal's (a bias moving along v added to a constant input).
        let shape = t[0].as_ref().map(|p| p.dims().to_vec());
        if let Some(shape) = shape {
            for slot in t.iter_mut().skip(1) {
                if let Some(c) = slot.as_ref().filter(|c| c.dims() != shape.as_slice()) {
                    *slot = Some(c.broadcast_as(shape.as_slice())?.contiguous()?);
                }
            }
        }
        Ok(Self {
            t,
            order: self.order.max(other.order),
        })
    }

    /// `B(self, other)` for a bilinear B, by the Leibniz rule.
    pub fn bilinear(
        &self,
        other: &Self,
        f: impl Fn(&Tensor, &Tensor) -> Result<Tensor>,
    ) -> Result<Self> {
        let order = self.order.max(other.order);
        let mut t: [Option<Tensor>; 4] = Default::default();
        for (k, slot) in t.iter_mut().enumerate().take(order + 1) {
            let mut acc = None;
            for j in 0..=k {
                if let (Some(a), Some(b)) = (&self.t[j], &other.t[k - j]) {
                    let mut term = f(a, b)?;
                    if BINOM[k][j] != 1.0 {
                        term = term.affine(BINOM[k][j], 0.0)?;
                    }
                    acc = add_opt(acc, Some(term))?;
                }
            }
            *slot = acc;
        }
        Ok(Self { t, order })
    }

    /// Elementwise product (broadcasting).
    pub fn mul(&self, other: &Self) -> Result<Self> {
        self.bilinear(other, |a, b| Ok(a.broadcast_mul(b)?))
    }

    /// `g(self)` given `g, g', g'', g'''` at the primal (`d[0]` is the new primal; the
    /// derivatives above the jet's order may be `None`, and `None` means zero).
    pub fn compose(&self, d: [Option<Tensor>; 4]) -> Result<Self> {
        let [g0, g1, g2, g3] = d;
        let mut t: [Option<Tensor>; 4] = [g0, None, None, None];
        let m = |a: &Tensor, b: &Tensor| -> Result<Tensor> { Ok(a.broadcast_mul(b)?) };
        let (a1, a2, a3) = (&self.t[1], &self.t[2], &self.t[3]);
        if self.order >= 1 {
            if let (Some(g1), Some(a1)) = (&g1, a1) {
                t[1] = Some(m(g1, a1)?);
            }
        }
        if self.order >= 2 {
            let mut acc = None;
            if let (Some(g2), Some(a1)) = (&g2, a1) {
                acc = add_opt(acc, Some(m(g2, &a1.sqr()?)?))?;
            }
            if let (Some(g1), Some(a2)) = (&g1, a2) {
                acc = add_opt(acc, Some(m(g1, a2)?))?;
            }
            t[2] = acc;
        }
        if self.order >= 3 {
            let mut acc = None;
            if let (Some(g3), Some(a1)) = (&g3, a1) {
                acc = add_opt(acc, Some(m(g3, &a1.powf(3.0)?)?))?;
            }
            if let (Some(g2), Some(a1), Some(a2)) = (&g2, a1, a2) {
                acc = add_opt(acc, Some(m(g2, &(a1 * a2)?)?.affine(3.0, 0.0)?))?;
            }
            if let (Some(g1), Some(a3)) = (&g1, a3) {
                acc = add_opt(acc, Some(m(g1, a3)?))?;
            }
            t[3] = acc;
        }
        Ok(Self {
            t,
            order: self.order,
        })
    }
}
