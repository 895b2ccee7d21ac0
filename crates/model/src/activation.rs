//! Activations φ and their derivatives φ', φ'', φ''' (needed by the gradient, the
//! R-operator HVP and the third-order jets).
//!
//! | name | φ(z) | notes |
//! |---|---|---|
//! | `relu` | max(z, 0) | φ'' = φ''' = 0 (the Hessian of the piecewise-linear net) |
//! | `leaky_relu:a` | max(z, a z), 0 ≤ a ≤ 1 | φ' = a below 0 |
//! | `identity` | z | |
//! | `tanh` | tanh z | φ' = 1 − t², φ'' = −2tφ', φ''' = −2φ'² + 4t²φ' |
//! | `gelu` | ½ z (1 + tanh u), u = √(2/π)(z + 0.044715 z³) | tanh form (Hendrycks & Gimpel 2016) |
//! | `silu` | z σ(z) | σ' = σ(1−σ) |
//!
//! At the kink of relu/leaky_relu the derivative at exactly z = 0 is taken from the
//! left (φ'(0) = 0 resp. a), as in PyTorch and JAX.
//!
//! On contiguous f32/f64 CPU tensors tanh and σ come from the vectorised kernels of
//! `crate::vmath` (f64 within 5·10⁻¹⁶ relative of libm, f32 within 2 ulp), and tanh's
//! φ, φ', φ'', φ''' are built in one vectorised pass each with the same formulas (and
//! the same rounding) as the candle ops used on other devices.

use candle_core::{Device, Tensor};

use crate::fused::{fuse, Steps, D1};
use crate::host::{with_host, Host};
use crate::vmath::{self, Fast};
use crate::{invalid, Result};

/// A pointwise activation function.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    Relu,
    LeakyRelu(f64),
    Identity,
    Tanh,
    Gelu,
    Silu,
}

/// φ(z) and its derivatives; `None` marks a derivative that is identically zero.
#[derive(Debug, Clone)]
pub struct ActDerivs {
    pub d0: Tensor,
    pub d1: Tensor,
    pub d2: Option<Tensor>,
    pub d3: Option<Tensor>,
}

/// φ' (and φ'', φ''' when asked) at a hidden layer's pre-activation, in the form the
/// passes use: for the relu family φ' is a mask read from the output h = φ(z) (one tensor
/// less, and one pass less to build it).
#[derive(Debug, Clone)]
pub(crate) struct Act {
    pub d1: D1,
    pub d2: Option<Tensor>,
    pub d3: Option<Tensor>,
}

impl Act {
    /// `t ⊙ φ'` for a fresh temporary `t` (in place where possible).
    pub fn mul_d1(&self, t: Tensor) -> Result<Tensor> {
        fuse(t, None, None, Steps::scale(1.0), Some(&self.d1))
    }

    /// `t ⊙ φ'` without modifying `t`.
    pub fn mul_d1_copy(&self, t: &Tensor) -> Result<Tensor> {
        Ok(match &self.d1 {
            D1::One => t.clone(),
            D1::Dense(d) => (t * d)?,
            m @ D1::Mask { .. } => (t * m.to_tensor(t)?)?,
        })
    }
}

const GELU_K: f64 = 0.797_884_560_802_865_4; // √(2/π)
const GELU_A: f64 = 0.044_715;

impl Activation {
    /// Parses `relu`, `leaky_relu` (slope 0.01), `leaky_relu:0.1`, `identity`
    /// (or `linear`), `tanh`, `gelu`, `silu`.
    pub fn parse(s: &str) -> Result<Self> {
        let s = s.trim();
        if let Some(slope) = s.strip_prefix("leaky_relu:") {
            return match slope.parse::<f64>() {
                Ok(a) if (0.0..=1.0).contains(&a) => Ok(Self::LeakyRelu(a)),
                _ => invalid(format!(
                    "activation `{s}`: the leaky_relu slope must be a number in [0, 1]"
                )),
            };
        }
        Ok(match s {
            "relu" => Self::Relu,
            "leaky_relu" => Self::LeakyRelu(0.01),
            "identity" | "linear" => Self::Identity,
            "tanh" => Self::Tanh,
            "gelu" => Self::Gelu,
            "silu" | "swish" => Self::Silu,
            _ => {
                return invalid(format!(
                    "unknown activation `{s}` (expected relu, leaky_relu[:slope], identity, tanh, gelu or silu)"
                ))
            }
        })
    }

    /// The canonical name, parseable by [`Activation::parse`].
    pub fn name(&self) -> String {
        match self {
            Self::Relu => "relu".into(),
            Self::LeakyRelu(a) => format!("leaky_relu:{a}"),
            Self::Identity => "identity".into(),
            Self::Tanh => "tanh".into(),
            Self::Gelu => "gelu".into(),
            Self::Silu => "silu".into(),
        }
    }

    /// True when φ is positively homogeneous (φ(cz) = cφ(z) for c > 0).
    pub fn is_homogeneous(&self) -> bool {
        matches!(self, Self::Relu | Self::LeakyRelu(_) | Self::Identity)
    }

    /// φ(z).
    pub fn forward(&self, z: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Self::Relu => z.relu()?,
            Self::LeakyRelu(a) => z.maximum(&z.affine(*a, 0.0)?)?,
            Self::Identity => z.clone(),
            Self::Tanh => tanh(z)?,
            Self::Gelu => {
                let u = gelu_u(z)?;
                (z * tanh(&u)?.affine(0.5, 0.5)?)?
            }
            Self::Silu => (z * sigmoid(z)?)?,
        })
    }

    /// The slope below 0 of a relu-family activation (`None` for the others).
    fn relu_low(&self) -> Option<f64> {
        match self {
            Self::Relu => Some(0.0),
            Self::LeakyRelu(a) => Some(*a),
            _ => None,
        }
    }

    /// A hidden layer from the fresh matmul output `p = h Wᵀ`: `h' = φ(m p + b)` and,
    /// for `order ≥ 1`, φ' (… up to `order`) at `z = m p + b`. `p` is consumed (and
    /// overwritten where possible).
    pub(crate) fn layer(
        &self,
        p: Tensor,
        m: f64,
        b: Option<&Tensor>,
        order: usize,
    ) -> Result<(Tensor, Option<Act>)> {
        let steps = Steps::scale(m);
        if let Some(low) = self.relu_low() {
            let h = fuse(
                p,
                None,
                b,
                Steps {
                    act_low: Some(low),
                    ..steps
                },
                None,
            )?;
            let act = (order >= 1).then(|| Act {
                d1: D1::Mask { h: h.clone(), low },
                d2: None,
                d3: None,
            });
            return Ok((h, act));
        }
        let z = fuse(p, None, b, steps, None)?;
        if *self == Self::Identity {
            let act = (order >= 1).then_some(Act {
                d1: D1::One,
                d2: None,
                d3: None,
            });
            return Ok((z, act));
        }
        if order == 0 {
            return Ok((self.forward(&z)?, None));
        }
        let d = self.derivs(&z, order)?;
        Ok((
            d.d0,
            Some(Act {
                d1: D1::Dense(d.d1),
                d2: d.d2,
                d3: d.d3,
            }),
        ))
    }

    /// φ and its derivatives up to `order` (1..=3); higher ones are left `None`.
    pub fn derivs(&self, z: &Tensor, order: usize) -> Result<ActDerivs> {
        if *self == Self::Tanh {
            if let Some(d) = tanh_derivs_host(z, order) {
                return d;
            }
        }
        let (d0, d1, d2, d3) = match self {
            Self::Relu => {
                let mask = z.gt(0.0)?.to_dtype(z.dtype())?;
                ((z * &mask)?, mask, None, None)
            }
            Self::LeakyRelu(a) => {
                let mask = z.gt(0.0)?.to_dtype(z.dtype())?;
                let d1 = mask.affine(1.0 - a, *a)?;
                ((z * &d1)?, d1, None, None)
            }
            Self::Identity => (z.clone(), z.ones_like()?, None, None),
            Self::Tanh => {
                let t = z.tanh()?;
                let d1 = t.sqr()?.affine(-1.0, 1.0)?;
                let d2 = if order >= 2 {
                    Some((&t * &d1)?.affine(-2.0, 0.0)?)
                } else {
                    None
                };
                let d3 = if order >= 3 {
                    // −2φ'² + 4t²φ' = φ'(4t² − 2φ')
                    Some((&d1 * (t.sqr()?.affine(4.0, 0.0)? - d1.affine(2.0, 0.0)?)?)?)
                } else {
                    None
                };
                (t, d1, d2, d3)
            }
            Self::Silu => {
                let s = sigmoid(z)?;
                let s1 = (&s * s.affine(-1.0, 1.0)?)?; // σ'
                let d0 = (z * &s)?;
                let d1 = (&s + (z * &s1)?)?;
                let (d2, d3) = if order >= 2 {
                    let s2 = (&s1 * s.affine(-2.0, 1.0)?)?; // σ''
                    let d2 = (s1.affine(2.0, 0.0)? + (z * &s2)?)?;
                    let d3 = if order >= 3 {
                        // σ''' = σ'(1 − 6σ + 6σ²)
                        let q = (s.sqr()?.affine(6.0, 1.0)? - s.affine(6.0, 0.0)?)?;
                        let s3 = (&s1 * q)?;
                        Some((s2.affine(3.0, 0.0)? + (z * s3)?)?)
                    } else {
                        None
                    };
                    (Some(d2), d3)
                } else {
                    (None, None)
                };
                (d0, d1, d2, d3)
            }
            Self::Gelu => {
                // φ = ½ z (1 + T), T = tanh(u(z)); with g1 = 1 − T², g2 = −2T g1,
                // g3 = −2g1² + 4T²g1 the derivatives of tanh at u:
                // T' = g1 u', T'' = g2 u'² + g1 u'', T''' = g3 u'³ + 3 g2 u' u'' + g1 u'''
                // φ' = ½(1 + T) + ½ z T', φ'' = T' + ½ z T'', φ''' = 3/2 T'' + ½ z T'''.
                let t = tanh(&gelu_u(z)?)?;
                let z2 = z.sqr()?;
                let u1 = z2.affine(3.0 * GELU_A * GELU_K, GELU_K)?;
                let g1 = t.sqr()?.affine(-1.0, 1.0)?;
                let t1 = (&g1 * &u1)?;
                let d0 = (z * t.affine(0.5, 0.5)?)?;
                let d1 = (t.affine(0.5, 0.5)? + (z * &t1)?.affine(0.5, 0.0)?)?;
                let (d2, d3) = if order >= 2 {
                    let g2 = (&t * &g1)?.affine(-2.0, 0.0)?;
                    let u2 = z.affine(6.0 * GELU_A * GELU_K, 0.0)?;
                    let t2 = ((&g2 * u1.sqr()?)? + (&g1 * &u2)?)?;
                    let d2 = (&t1 + (z * &t2)?.affine(0.5, 0.0)?)?;
                    let d3 = if order >= 3 {
                        let u3 = 6.0 * GELU_A * GELU_K;
                        let g3 = (&g1 * (t.sqr()?.affine(4.0, 0.0)? - g1.affine(2.0, 0.0)?)?)?;
                        let t3 = ((&g3 * u1.powf(3.0)?)?
                            + (&g2 * (&u1 * &u2)?)?.affine(3.0, 0.0)?
                            + g1.affine(u3, 0.0)?)?;
                        Some((t2.affine(1.5, 0.0)? + (z * t3)?.affine(0.5, 0.0)?)?)
                    } else {
                        None
                    };
                    (Some(d2), d3)
                } else {
                    (None, None)
                };
                (d0, d1, d2, d3)
            }
        };
        Ok(ActDerivs { d0, d1, d2, d3 })
    }
}

fn gelu_u(z: &Tensor) -> Result<Tensor> {
    // u = k (z + a z³) = k z (1 + a z²)
    Ok((z * z.sqr()?.affine(GELU_A * GELU_K, GELU_K)?)?)
}

/// σ(z) = 1 / (1 + e^{−z}); saturates to 0 or 1 without NaN.
pub(crate) fn sigmoid(z: &Tensor) -> Result<Tensor> {
    match host_map(z, vmath::sigmoid, vmath::sigmoid) {
        Some(s) => s,
        None => Ok((z.neg()?.exp()? + 1.0)?.recip()?),
    }
}

/// tanh z (vectorised on host tensors).
fn tanh(z: &Tensor) -> Result<Tensor> {
    match host_map(z, vmath::tanh, vmath::tanh) {
        Some(t) => t,
        None => Ok(z.tanh()?),
    }
}

/// `f` of a contiguous f32/f64 CPU tensor's values, as a tensor of its shape.
fn host_map(
    z: &Tensor,
    f32s: fn(&[f32]) -> Vec<f32>,
    f64s: fn(&[f64]) -> Vec<f64>,
) -> Option<Result<Tensor>> {
    with_host(z, |h| {
        Ok(match h {
            Host::F32(v) => Tensor::from_vec(f32s(v), z.shape(), &Device::Cpu)?,
            Host::F64(v) => Tensor::from_vec(f64s(v), z.shape(), &Device::Cpu)?,
        })
    })
}

/// tanh's φ … φ^(order) on a host tensor, one vectorised pass each (`None`: not a host
/// tensor). Same formulas and operation order as the candle path of [`Activation::derivs`].
fn tanh_derivs_host(z: &Tensor, order: usize) -> Option<Result<ActDerivs>> {
    fn go<T: Fast + candle_core::WithDType>(
        v: &[T],
        z: &Tensor,
        order: usize,
    ) -> Result<ActDerivs> {
        let t = vmath::tanh(v);
        let d1: Vec<T> = t.iter().map(|&t| T::from_f64(1.0) - t * t).collect();
        let d2 = (order >= 2).then(|| {
            let m2 = T::from_f64(-2.0);
            t.iter().zip(&d1).map(|(&t, &d)| t * d * m2).collect()
        });
        let d3 = (order >= 3).then(|| {
            let (four, two) = (T::from_f64(4.0), T::from_f64(2.0));
            (t.iter().zip(&d1))
                .map(|(&t, &d)| d * (t * t * four - d * two))
                .collect()
        });
        let ten = |v: Vec<T>| Tensor::from_vec(v, z.shape(), &Device::Cpu);
        Ok(ActDerivs {
            d0: ten(t)?,
            d1: ten(d1)?,
            d2: d2.map(ten).transpose()?,
            d3: d3.map(ten).transpose()?,
        })
    }
    with_host(z, |h| match h {
        Host::F32(v) => go(v, z, order),
        Host::F64(v) => go(v, z, order),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    const ALL: [Activation; 6] = [
        Activation::Relu,
        Activation::LeakyRelu(0.1),
        Activation::Identity,
        Activation::Tanh,
        Activation::Gelu,
        Activation::Silu,
    ];

    fn eval(a: Activation, z: f64, order: usize) -> f64 {
        let t = Tensor::new(&[z], &Device::Cpu).unwrap();
        let d = a.derivs(&t, 3).unwrap();
        let pick = match order {
            0 => Some(d.d0),
            1 => Some(d.d1),
            2 => d.d2,
            _ => d.d3,
        };
        pick.map(|t| t.to_vec1::<f64>().unwrap()[0]).unwrap_or(0.0)
    }

    #[test]
    fn derivatives_match_central_differences_in_f64() {
        // Points away from the kinks; h = 1e-5 gives O(h²) ≈ 1e-10 truncation error.
        let h = 1e-5;
        for a in ALL {
            for &z in &[-2.3, -0.7, 0.4, 1.9] {
                for k in 1..=3 {
                    let fd = (eval(a, z + h, k - 1) - eval(a, z - h, k - 1)) / (2.0 * h);
                    let exact = eval(a, z, k);
                    assert!(
                        (fd - exact).abs() < 1e-7 * (1.0 + exact.abs()),
                        "{} order {k} at {z}: exact {exact} fd {fd}",
                        a.name()
                    );
                }
            }
        }
    }

    /// The vectorised host path (contiguous tensor) and candle's ops (a transposed,
    /// non-contiguous view of the same values) agree to f64 rounding, tails included.
    #[test]
    fn host_kernels_match_candle_ops_in_f64() {
        let v: Vec<f64> = (0..400).map(|i| (i as f64 - 200.0) * 0.11).collect();
        let base = Tensor::from_vec(v, (200, 2), &Device::Cpu).unwrap();
        let strided = base.t().unwrap();
        let host = strided.contiguous().unwrap();
        assert!(!strided.is_contiguous());
        let flat = |t: Option<Tensor>| {
            t.map(|t| t.flatten_all().unwrap().to_vec1::<f64>().unwrap())
                .unwrap_or_default()
        };
        for a in [Activation::Tanh, Activation::Gelu, Activation::Silu] {
            let (f, g) = (a.derivs(&host, 3).unwrap(), a.derivs(&strided, 3).unwrap());
            let pairs = [(f.d0, g.d0), (f.d1, g.d1)]
                .into_iter()
                .map(|(x, y)| (Some(x), Some(y)));
            for (x, y) in pairs.chain([(f.d2, g.d2), (f.d3, g.d3)]) {
                let (x, y) = (flat(x), flat(y));
                assert_eq!(x.len(), 400, "{}", a.name());
                for (p, q) in x.iter().zip(&y) {
                    assert!(
                        (p - q).abs() <= 2e-15 * (1.0 + q.abs()),
                        "{}: {p} vs {q}",
                        a.name()
                    );
                }
            }
        }
    }

    #[test]
    fn forward_matches_d0_and_known_values() {
        let z = Tensor::new(&[-1.5f64, 0.0, 0.8], &Device::Cpu).unwrap();
        for a in ALL {
            let f = a.forward(&z).unwrap().to_vec1::<f64>().unwrap();
            let d0 = a.derivs(&z, 1).unwrap().d0.to_vec1::<f64>().unwrap();
            for (x, y) in f.iter().zip(&d0) {
                assert!((x - y).abs() < 1e-15, "{}", a.name());
            }
        }
        // gelu(1) with the tanh form = 0.8411919906082768 (numpy:
        // 0.5*(1+np.tanh(np.sqrt(2/np.pi)*(1+0.044715))))
        let one = Tensor::new(&[1.0f64], &Device::Cpu).unwrap();
        let g = Activation::Gelu
            .forward(&one)
            .unwrap()
            .to_vec1::<f64>()
            .unwrap()[0];
        assert!((g - 0.841_191_990_608_276_8).abs() < 1e-14, "{g}");
        // silu(1) = 1/(1+e^-1) = 0.7310585786300049
        let s = Activation::Silu
            .forward(&one)
            .unwrap()
            .to_vec1::<f64>()
            .unwrap()[0];
        assert!((s - 0.731_058_578_630_004_9).abs() < 1e-15);
        // saturated sigmoid stays finite
        let big = Tensor::new(&[-800.0f32, 800.0], &Device::Cpu).unwrap();
        let s = Activation::Silu
            .forward(&big)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(s, vec![-0.0, 800.0]);
        assert_eq!(big.dtype(), DType::F32);
    }

    #[test]
    fn parse_round_trips_and_rejects_unknown() {
        for a in ALL {
            assert_eq!(Activation::parse(&a.name()).unwrap(), a);
        }
        let e = Activation::parse("sigmoidal").unwrap_err().to_string();
        assert!(e.contains("unknown activation `sigmoidal`"), "{e}");
        assert!(Activation::parse("leaky_relu:2").is_err());
        assert!(Activation::Relu.is_homogeneous() && !Activation::Tanh.is_homogeneous());
    }
}
