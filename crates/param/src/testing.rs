//! Test helpers: a tiny MLP on plain `Vec<f64>` (no tensors), exact backprop and an
//! SGD step, so the scalings can be checked by running them.
//!
//! Layers 0-based (crate docs): `z_l = m_l · W_l h_l + β_l · b_l` with `h₀ = x`,
//! `h_{l+1} = φ(z_l)` (φ = ReLU or identity) for `l < L−1`, `f = s · z_{L−1}`; weights
//! stored `[fan_out][fan_in]` row-major.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::Scalings;

/// `n` standard normal draws from stream `stream` of `seed` (ChaCha8).
pub fn normals(seed: u64, stream: u64, n: usize) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    (0..n).map(|_| StandardNormal.sample(&mut rng)).collect()
}

/// A plain-Rust MLP.
#[derive(Debug, Clone)]
pub struct TinyMlp {
    pub widths: Vec<usize>,
    pub w: Vec<Vec<f64>>,
    pub b: Vec<Vec<f64>>,
    /// Weight multipliers `m_l`.
    pub m: Vec<f64>,
    /// Bias multipliers `β_l` (1 in eos-model's form).
    pub beta: Vec<f64>,
    /// Output scale `s`.
    pub s: f64,
    pub relu: bool,
}

/// Per-layer gradients (same shapes as the weights and biases).
#[derive(Debug, Clone)]
pub struct Grads {
    pub w: Vec<Vec<f64>>,
    pub b: Vec<Vec<f64>>,
}

impl TinyMlp {
    /// Weights `init_std_l · z` and biases `bias_init_std_l · z` with `z` standard
    /// normal from `seed` (layer `l` uses streams `2l`, `2l + 1`), multipliers and
    /// output scale from `s`, bias multipliers 1.
    pub fn from_scalings(sc: &Scalings, seed: u64, relu: bool) -> TinyMlp {
        let widths = sc.widths();
        let mut w = Vec::new();
        let mut b = Vec::new();
        for (l, ls) in sc.layers.iter().enumerate() {
            let z = normals(seed, 2 * l as u64, ls.fan_in * ls.fan_out);
            w.push(z.iter().map(|v| v * ls.init_std).collect());
            let z = normals(seed, 2 * l as u64 + 1, ls.fan_out);
            b.push(z.iter().map(|v| v * ls.bias_init_std).collect());
        }
        TinyMlp {
            widths,
            w,
            b,
            m: sc.multipliers(),
            beta: vec![1.0; sc.depth()],
            s: sc.output_scale,
            relu,
        }
    }

    fn depth(&self) -> usize {
        self.w.len()
    }

    /// Pre-activations `z_0 … z_{L−1}` and activations `h_0 = x, h_1 … h_{L−1}`.
    pub fn forward(&self, x: &[f64]) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
        let mut hs = vec![x.to_vec()];
        let mut zs = Vec::new();
        for l in 0..self.depth() {
            let (fi, fo) = (self.widths[l], self.widths[l + 1]);
            let h = &hs[l];
            let z: Vec<f64> = (0..fo)
                .map(|i| {
                    let row = &self.w[l][i * fi..(i + 1) * fi];
                    let dot: f64 = row.iter().zip(h).map(|(a, b)| a * b).sum();
                    self.m[l] * dot + self.beta[l] * self.b[l][i]
                })
                .collect();
            if l + 1 < self.depth() {
                hs.push(z.iter().map(|&v| self.phi(v)).collect());
            }
            zs.push(z);
        }
        (zs, hs)
    }

    /// `f(x) = s · z_{L−1}`.
    pub fn output(&self, x: &[f64]) -> Vec<f64> {
        let (zs, _) = self.forward(x);
        zs[self.depth() - 1].iter().map(|v| self.s * v).collect()
    }

    fn phi(&self, z: f64) -> f64 {
        if self.relu {
            z.max(0.0)
        } else {
            z
        }
    }

    fn dphi(&self, z: f64) -> f64 {
        if !self.relu || z > 0.0 {
            1.0
        } else {
            0.0
        }
    }

    /// Gradients of `Σ_i ⟨dl_df_i, f(x_i)⟩` (the caller supplies `∂ℓ/∂f` per sample).
    pub fn grads(&self, xs: &[Vec<f64>], dl_df: &[Vec<f64>]) -> Grads {
        let depth = self.depth();
        let mut g = Grads {
            w: self.w.iter().map(|w| vec![0.0; w.len()]).collect(),
            b: self.b.iter().map(|b| vec![0.0; b.len()]).collect(),
        };
        for (x, df) in xs.iter().zip(dl_df) {
            let (zs, hs) = self.forward(x);
            // δ_{L−1} = ∂ℓ/∂z_{L−1} = s ∂ℓ/∂f.
            let mut delta: Vec<f64> = df.iter().map(|v| self.s * v).collect();
            for l in (0..depth).rev() {
                let (fi, fo) = (self.widths[l], self.widths[l + 1]);
                for i in 0..fo {
                    for j in 0..fi {
                        g.w[l][i * fi + j] += self.m[l] * delta[i] * hs[l][j];
                    }
                    g.b[l][i] += self.beta[l] * delta[i];
                }
                if l > 0 {
                    delta = (0..fi)
                        .map(|j| {
                            let back: f64 = (0..fo).map(|i| self.w[l][i * fi + j] * delta[i]).sum();
                            self.m[l] * back * self.dphi(zs[l - 1][j])
                        })
                        .collect();
                }
            }
        }
        g
    }

    /// `W_l ← W_l − lr_w[l] g_W`, `b_l ← b_l − lr_b[l] g_b`.
    pub fn sgd_step(&mut self, g: &Grads, lr_w: &[f64], lr_b: &[f64]) {
        for l in 0..self.depth() {
            for (w, gw) in self.w[l].iter_mut().zip(&g.w[l]) {
                *w -= lr_w[l] * gw;
            }
            for (b, gb) in self.b[l].iter_mut().zip(&g.b[l]) {
                *b -= lr_b[l] * gb;
            }
        }
    }

    /// One full-batch SGD step on the mse `(1/n) Σ ½‖f(x_i) − y_i‖²` with the scalings'
    /// per-layer step sizes.
    pub fn mse_step(&mut self, xs: &[Vec<f64>], ys: &[Vec<f64>], lr_w: &[f64], lr_b: &[f64]) {
        let n = xs.len() as f64;
        let dl_df: Vec<Vec<f64>> = xs
            .iter()
            .zip(ys)
            .map(|(x, y)| {
                self.output(x)
                    .iter()
                    .zip(y)
                    .map(|(f, y)| (f - y) / n)
                    .collect()
            })
            .collect();
        let g = self.grads(xs, &dl_df);
        self.sgd_step(&g, lr_w, lr_b);
    }
}

/// Relative difference `|a − b| / max(|a|, |b|, tiny)`.
pub fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / a.abs().max(b.abs()).max(1e-300)
}

/// Root mean square.
pub fn rms(v: &[f64]) -> f64 {
    (v.iter().map(|x| x * x).sum::<f64>() / v.len() as f64).sqrt()
}
