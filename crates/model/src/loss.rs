//! Per-sample losses ℓ(f, y) and their derivatives in the output f, up to third order.
//! The training loss is L = (1/n) Σᵢ ℓ(fᵢ, yᵢ).
//!
//! | name | ℓ(f, y) | ∇ℓ | ∇²ℓ · a |
//! |---|---|---|---|
//! | `mse` | ½‖f − y‖² (Cohen et al. 2021) | r = f − y | a |
//! | `mse_mean_all` | (1/K)‖f − y‖² (PyTorch `MSELoss()`, Richness_Sweep) | (2/K) r | (2/K) a |
//! | `cross_entropy` | s·lse(f) − y·f, s = Σₖ yₖ (= 1 for one-hot y) | s p − y | s (p⊙a − p (p·a)) |
//! | `logistic` | Σₖ softplus(−yₖ fₖ), y ∈ {±1} | −y σ(u), u = −y f | y² σ(u)σ(−u) ⊙ a |
//!
//! Third order (needed by the jets): mse has ℓ''' = 0; cross-entropy's third
//! directional derivative is the third cumulant s(E_p\[a³\] − 3E_p\[a²\]E_p\[a\] + 2E_p\[a\]³);
//! logistic has ℓ''' = −y³ σ(u)σ(−u)(1 − 2σ(u)) per coordinate.

use candle_core::{Tensor, D};

use crate::{activation::sigmoid, invalid, Result};

/// A loss function of the network output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    Mse,
    MseMeanAll,
    CrossEntropy,
    Logistic,
}

/// The loss evaluated on a chunk: value and gradient in f, plus what the higher
/// derivatives need.
#[derive(Debug)]
pub struct LossEval {
    /// Σ over the chunk's samples of ℓ(fᵢ, yᵢ).
    pub value_sum: f64,
    /// ∂ℓ/∂f per sample, `[c, K]`.
    pub grad: Tensor,
    aux: Aux,
}

#[derive(Debug)]
enum Aux {
    /// ℓ = (alpha/2)‖f − y‖²
    Quadratic { alpha: f64 },
    /// softmax p and label mass s = Σₖ yₖ (`[c, 1]`)
    Softmax { p: Tensor, s: Tensor },
    /// per coordinate: ℓ'' and ℓ'''
    Logistic { d2: Tensor, d3: Tensor },
}

fn sum_f64(t: &Tensor) -> Result<f64> {
    Ok(t.sum_all()?
        .to_dtype(candle_core::DType::F64)?
        .to_scalar::<f64>()?)
}

impl Loss {
    /// Parses `mse`, `mse_mean_all`, `cross_entropy` (or `ce`), `logistic`.
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s.trim() {
            "mse" => Self::Mse,
            "mse_mean_all" => Self::MseMeanAll,
            "cross_entropy" | "ce" => Self::CrossEntropy,
            "logistic" => Self::Logistic,
            other => {
                return invalid(format!(
                    "unknown loss `{other}` (expected mse, mse_mean_all, cross_entropy or logistic)"
                ))
            }
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Mse => "mse",
            Self::MseMeanAll => "mse_mean_all",
            Self::CrossEntropy => "cross_entropy",
            Self::Logistic => "logistic",
        }
    }

    /// Evaluates ℓ and ∂ℓ/∂f on a chunk (`f`, `y`: `[c, K]`).
    pub fn eval(&self, f: &Tensor, y: &Tensor) -> Result<LossEval> {
        match self {
            Self::Mse | Self::MseMeanAll => {
                let k = f.dim(1)? as f64;
                let alpha = if *self == Self::Mse { 1.0 } else { 2.0 / k };
                let r = (f - y)?;
                let value_sum = 0.5 * alpha * sum_f64(&r.sqr()?)?;
                let grad = if alpha == 1.0 {
                    r
                } else {
                    r.affine(alpha, 0.0)?
                };
                Ok(LossEval {
                    value_sum,
                    grad,
                    aux: Aux::Quadratic { alpha },
                })
            }
            Self::CrossEntropy => {
                let mx = f.max_keepdim(D::Minus1)?;
                let e = f.broadcast_sub(&mx)?.exp()?;
                let se = e.sum_keepdim(D::Minus1)?;
                let lse = (mx + se.log()?)?;
                let p = e.broadcast_div(&se)?;
                let s = y.sum_keepdim(D::Minus1)?;
                let value_sum = sum_f64(&(&lse * &s)?)? - sum_f64(&(y * f)?)?;
                let grad = (p.broadcast_mul(&s)? - y)?;
                Ok(LossEval {
                    value_sum,
                    grad,
                    aux: Aux::Softmax { p, s },
                })
            }
            Self::Logistic => {
                let u = (y * f)?.neg()?;
                // softplus(u) = relu(u) + log(1 + e^{−|u|})
                let sp = (u.relu()? + (u.abs()?.neg()?.exp()? + 1.0)?.log()?)?;
                let value_sum = sum_f64(&sp)?;
                let s = sigmoid(&u)?; // σ(u)
                let grad = (y * &s)?.neg()?;
                let ss = (&s * s.affine(-1.0, 1.0)?)?; // σ(u)σ(−u)
                let y2 = y.sqr()?;
                let d2 = (&y2 * &ss)?;
                let d3 = ((y2 * y)? * (ss * s.affine(-2.0, 1.0)?)?)?.neg()?;
                Ok(LossEval {
                    value_sum,
                    grad,
                    aux: Aux::Logistic { d2, d3 },
                })
            }
        }
    }

    /// ∇²_f ℓ · a per sample (`a`: `[c, K]`).
    pub fn hess_vec(&self, ev: &LossEval, a: &Tensor) -> Result<Tensor> {
        Ok(match &ev.aux {
            Aux::Quadratic { alpha } => {
                if *alpha == 1.0 {
                    a.clone()
                } else {
                    a.affine(*alpha, 0.0)?
                }
            }
            Aux::Softmax { p, s } => {
                let pa = (p * a)?;
                let mean = pa.sum_keepdim(D::Minus1)?;
                (pa - p.broadcast_mul(&mean)?)?.broadcast_mul(s)?
            }
            Aux::Logistic { d2, .. } => (d2 * a)?,
        })
    }

    /// Sums over the chunk of the derivatives dʲ/dtʲ ℓ(f(t)), j = 1, 2, 3, given the
    /// output jet f(t) = f + a t + b t²/2 + c t³/6:
    /// d1 = ℓ'\[a\], d2 = ℓ''\[a,a\] + ℓ'\[b\], d3 = ℓ'''\[a,a,a\] + 3ℓ''\[a,b\] + ℓ'\[c\].
    pub fn jet_sums(
        &self,
        ev: &LossEval,
        a: &Tensor,
        b: Option<&Tensor>,
        c: Option<&Tensor>,
    ) -> Result<[f64; 3]> {
        let g = &ev.grad;
        let lin = |t: Option<&Tensor>| -> Result<f64> {
            match t {
                Some(t) => sum_f64(&(g * t)?),
                None => Ok(0.0),
            }
        };
        let d1 = sum_f64(&(g * a)?)?;
        let ha = self.hess_vec(ev, a)?;
        let aa = sum_f64(&(&ha * a)?)?;
        let ab = match b {
            Some(b) => sum_f64(&(&ha * b)?)?,
            None => 0.0,
        };
        let aaa = match &ev.aux {
            Aux::Quadratic { .. } => 0.0,
            Aux::Softmax { p, s } => {
                let m1 = (p * a)?.sum_keepdim(D::Minus1)?;
                let m2 = (p * a.sqr()?)?.sum_keepdim(D::Minus1)?;
                let m3 = (p * a.powf(3.0)?)?.sum_keepdim(D::Minus1)?;
                let k3 =
                    ((m3 - (m2 * &m1)?.affine(3.0, 0.0)?)? + m1.powf(3.0)?.affine(2.0, 0.0)?)?;
                sum_f64(&(k3 * s)?)?
            }
            Aux::Logistic { d3, .. } => sum_f64(&(d3 * a.powf(3.0)?)?)?,
        };
        Ok([d1, aa + lin(b)?, aaa + 3.0 * ab + lin(c)?])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    const ALL: [Loss; 4] = [
        Loss::Mse,
        Loss::MseMeanAll,
        Loss::CrossEntropy,
        Loss::Logistic,
    ];

    fn t(v: &[f64], k: usize) -> Tensor {
        Tensor::from_slice(v, (v.len() / k, k), &Device::Cpu).unwrap()
    }

    fn targets(loss: Loss) -> Tensor {
        match loss {
            Loss::CrossEntropy => t(&[0., 1., 0., 1., 0., 0.], 3),
            Loss::Logistic => t(&[1., -1., -1., 1., 1., -1.], 3),
            _ => t(&[0.3, -1.2, 0.5, 2.0, 0.1, -0.4], 3),
        }
    }

    fn value(loss: Loss, f: &[f64], y: &Tensor) -> f64 {
        loss.eval(&t(f, 3), y).unwrap().value_sum
    }

    /// The loss along f + a t + b t²/2 + c t³/6, by finite differences in t of
    /// order 1..3, against `jet_sums` (and so against eval/hess_vec).
    #[test]
    fn jets_match_finite_differences() {
        let f = [0.4, -0.9, 1.3, -0.2, 0.7, 0.05];
        let a = [0.3, -0.5, 0.8, 1.1, -0.4, 0.6];
        let b = [-0.7, 0.2, 0.5, 0.3, -0.9, 0.4];
        let c = [0.6, 0.1, -0.3, -0.8, 0.25, 0.9];
        for loss in ALL {
            let y = targets(loss);
            let path = |s: f64| -> f64 {
                let ft: Vec<f64> = (0..6)
                    .map(|i| f[i] + a[i] * s + b[i] * s * s / 2.0 + c[i] * s.powi(3) / 6.0)
                    .collect();
                value(loss, &ft, &y)
            };
            let h = 1e-3;
            let d1 = (path(h) - path(-h)) / (2.0 * h);
            let d2 = (path(h) - 2.0 * path(0.0) + path(-h)) / (h * h);
            let d3 = (path(2.0 * h) - 2.0 * path(h) + 2.0 * path(-h) - path(-2.0 * h))
                / (2.0 * h.powi(3));
            let ev = loss.eval(&t(&f, 3), &y).unwrap();
            let [e1, e2, e3] = loss
                .jet_sums(&ev, &t(&a, 3), Some(&t(&b, 3)), Some(&t(&c, 3)))
                .unwrap();
            // O(h²) truncation: 1e-6 relative for d1, d2; d3's stencil also
            // divides rounding by h³ (≈1e-16/1e-9), so 1e-5.
            assert!(
                (e1 - d1).abs() < 1e-6 * (1.0 + d1.abs()),
                "{loss:?} d1 {e1} vs {d1}"
            );
            assert!(
                (e2 - d2).abs() < 1e-5 * (1.0 + d2.abs()),
                "{loss:?} d2 {e2} vs {d2}"
            );
            assert!(
                (e3 - d3).abs() < 1e-4 * (1.0 + d3.abs()),
                "{loss:?} d3 {e3} vs {d3}"
            );
        }
    }

    #[test]
    fn known_values() {
        // mse: ½ Σ (f − y)²
        let y = targets(Loss::Mse);
        let f = [0.0; 6];
        let expect = 0.5
            * [0.3f64, -1.2, 0.5, 2.0, 0.1, -0.4]
                .iter()
                .map(|v| v * v)
                .sum::<f64>();
        assert!((value(Loss::Mse, &f, &y) - expect).abs() < 1e-15);
        // mse_mean_all: (1/K) Σ (f−y)² per sample (K = 3)
        assert!((value(Loss::MseMeanAll, &f, &y) - expect * 2.0 / 3.0).abs() < 1e-15);
        // cross-entropy at f = 0 is log K per sample: 2 log 3
        let ce = value(Loss::CrossEntropy, &f, &targets(Loss::CrossEntropy));
        assert!((ce - 2.0 * 3f64.ln()).abs() < 1e-15);
        // logistic at f = 0 is log 2 per coordinate, and stays finite at huge margins
        let lg = value(Loss::Logistic, &f, &targets(Loss::Logistic));
        assert!((lg - 6.0 * 2f64.ln()).abs() < 1e-15);
        let big = value(
            Loss::Logistic,
            &[-1e3, 1e3, 1e3, -1e3, -1e3, 1e3],
            &targets(Loss::Logistic),
        );
        assert!((big - 6e3).abs() < 1e-9, "{big}");
        let big_ce = value(
            Loss::CrossEntropy,
            &[1e3, 0., 0., 0., 0., 0.],
            &targets(Loss::CrossEntropy),
        );
        assert!((big_ce - (1e3 + 3f64.ln())).abs() < 1e-9, "{big_ce}");
    }

    #[test]
    fn parse_names() {
        for l in ALL {
            assert_eq!(Loss::parse(l.name()).unwrap(), l);
        }
        let e = Loss::parse("hinge").unwrap_err().to_string();
        assert!(e.contains("unknown loss `hinge`"), "{e}");
    }
}
