//! abc-parametrizations: width exponents of multiplier, init scale and learning rate.
//!
//! Yang & Hu 2021, "Tensor Programs IV: Feature Learning in Infinite-Width Neural
//! Networks" (arXiv 2011.14522), §3: layer `l`'s weight is (layers 0-based, as in
//! the crate docs; TP IV counts from 1)
//!
//! ```text
//! W_l = n^{−a_l} · w_l,     w_l ~ N(0, n^{−2 b_l}),     SGD step on w_l: η · n^{−c_l}
//! ```
//!
//! (the paper has one global `c`; a per-layer `c_l` is the same family as TP V's
//! per-layer learning rates). What SGD does depends only on two combinations, the
//! *effective* init scale and learning rate of `W_l` itself:
//!
//! ```text
//! std(W_l) ∝ n^{−(a_l + b_l)},     ΔW_l = −η n^{−(2 a_l + c_l)} ∇_{W_l} L
//! ```
//!
//! because `∇_w L = n^{−a} ∇_W L` and `ΔW = n^{−a} Δw`. Hence the symmetry
//! (TP IV, Eq. 5): `(a, b, c) → (a + θ, b − θ, c − 2θ)` leaves SGD training
//! unchanged. μP and mean-field are one class under it (θ = ½); NTK and TP IV's
//! stable SP (lr `∝ 1/n`, `c = 1`) are another, while SP at a width-independent
//! lr (`c = 0`, what practice does) is in neither and blows up as `n → ∞`
//! (TP IV, Theorem 4.1).
//!
//! Which `n`: TP IV's MLP has one width `n` and a fixed input dimension. For concrete,
//! unequal widths each layer uses the dimension that grows with width (TP V,
//! Yang et al. 2022, arXiv 2203.03466, Tables 3 and 9): an *input* layer (`d → n₁`)
//! uses its fan-out `n₁`, *hidden* and *output* layers `l` their fan-in `n_l`
//! ([`LayerRole::abc_width`]). Width-independent constants (`1/√d`, a gain) multiply
//! these powers and do not change the exponents.

use serde::{Deserialize, Serialize};

/// Where a weight layer sits, which decides its row in an abc table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LayerRole {
    /// Layer 0, `n₀ = d → n₁`: finite fan-in, width-sized fan-out.
    Input,
    /// Layers `1 … L−2`, `n_l → n_{l+1}`: both dimensions width-sized.
    Hidden,
    /// Layer `L−1`, `n_{L−1} → n_L`: width-sized fan-in, finite fan-out. A depth-1
    /// network's single layer is an output layer.
    Output,
}

impl LayerRole {
    /// The role of layer `index` (0-based) in a network of `depth` weight layers.
    pub fn of(index: usize, depth: usize) -> LayerRole {
        if index + 1 == depth {
            LayerRole::Output
        } else if index == 0 {
            LayerRole::Input
        } else {
            LayerRole::Hidden
        }
    }

    /// The `n` of the abc form for a layer `fan_in → fan_out`: fan-out for an input
    /// layer, fan-in otherwise.
    pub fn abc_width(&self, fan_in: usize, fan_out: usize) -> usize {
        match self {
            LayerRole::Input => fan_out,
            LayerRole::Hidden | LayerRole::Output => fan_in,
        }
    }
}

/// One layer's exponents `(a, b, c)`: multiplier `n^{−a}`, init std `n^{−b}`, lr
/// scale `n^{−c}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Abc {
    /// Multiplier exponent: `W = n^{−a} w`.
    pub a: f64,
    /// Init exponent: `w ~ N(0, n^{−2b})`.
    pub b: f64,
    /// Learning-rate exponent: the step on `w` is `η n^{−c}`.
    pub c: f64,
}

impl Abc {
    /// `(a, b, c)`.
    pub const fn new(a: f64, b: f64, c: f64) -> Abc {
        Abc { a, b, c }
    }

    /// The SGD-equivalent exponents `(a + θ, b − θ, c − 2θ)` (TP IV, Eq. 5).
    pub fn shifted(&self, theta: f64) -> Abc {
        Abc::new(self.a + theta, self.b - theta, self.c - 2.0 * theta)
    }

    /// Exponent of the effective init std of `W`: `std(W) ∝ n^{−(a+b)}`.
    pub fn effective_init(&self) -> f64 {
        self.a + self.b
    }

    /// Exponent of the effective SGD learning rate of `W`: `n^{−(2a+c)}`.
    pub fn effective_lr(&self) -> f64 {
        2.0 * self.a + self.c
    }

    /// `(multiplier, init_std, lr_scale) = (n^{−a}, n^{−b}, n^{−c})` at width `n`.
    pub fn at(&self, n: f64) -> (f64, f64, f64) {
        (n.powf(-self.a), n.powf(-self.b), n.powf(-self.c))
    }

    /// Whether two layers train identically under SGD (same effective exponents),
    /// within `tol`.
    pub fn sgd_equivalent(&self, other: &Abc, tol: f64) -> bool {
        (self.effective_init() - other.effective_init()).abs() <= tol
            && (self.effective_lr() - other.effective_lr()).abs() <= tol
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles() {
        assert_eq!(LayerRole::of(0, 3), LayerRole::Input);
        assert_eq!(LayerRole::of(1, 3), LayerRole::Hidden);
        assert_eq!(LayerRole::of(2, 3), LayerRole::Output);
        assert_eq!(LayerRole::of(0, 1), LayerRole::Output);
        assert_eq!(LayerRole::of(0, 2), LayerRole::Input);
        assert_eq!(LayerRole::Input.abc_width(10, 64), 64);
        assert_eq!(LayerRole::Hidden.abc_width(64, 128), 64);
        assert_eq!(LayerRole::Output.abc_width(128, 1), 128);
    }

    #[test]
    fn symmetry_keeps_effective_exponents() {
        let x = Abc::new(-0.5, 0.5, 0.0);
        for theta in [-1.0, -0.5, 0.25, 2.0] {
            assert!(x.sgd_equivalent(&x.shifted(theta), 1e-15));
        }
        assert!(!x.sgd_equivalent(&Abc::new(0.0, 0.5, 0.0), 1e-15));
        // n = 64: (64^{1/2}, 64^{-1/2}, 1) = (8, 1/8, 1); exact in f64.
        assert_eq!(x.at(64.0), (8.0, 0.125, 1.0));
    }
}
