//! The exact row-space reduction of an MLP's first layer (issue 15 goal 4).
//!
//! With z₀ = m₀ x W₀ᵀ + b₀, every gradient and every Hessian column has its W₀ block of
//! the form `C X` (C `[out₀, n]`, X the batch `[n, d]`: hvp.rs, `(Hv)_{W_0} =
//! (m_0/n) R{δ_0}ᵀ X` since R{h_0} = 0). So S = {W₀ block ∈ rowspace(X)} × (all other
//! parameters) is invariant under H and contains its range, and H is 0 on S^⊥: H's
//! nonzero eigenpairs are exactly those of H restricted to S. When n < d, S is smaller.
//!
//! Coordinates on rowspace(X) (pivoted Cholesky, Higham, "Accuracy and Stability of
//! Numerical Algorithms", 2nd ed., §10.3): G = X Xᵀ (f64) = P L Lᵀ Pᵀ with L `[n, r]`
//! lower trapezoidal and L₁ its leading `[r, r]` block (pivots whose Schur-complement
//! diagonal falls below `rel_tol · max diag G` are dropped: r is the numerical rank).
//! Then
//!
//! ```text
//! B = X_pᵀ L₁⁻ᵀ   (X_p = P₁ᵀ X: the r pivot rows)   has BᵀB = I and X B = P L =: Y,
//! ```
//!
//! so a reduced block D `[out₀, r]` stands for V₀ = D Bᵀ (embedding) and a full block V₀
//! has coordinates D = V₀ B (projection); B is formed once per batch by forward
//! substitution (B L₁ᵀ = X_pᵀ, no inverse), the inner product is the Frobenius one on D,
//! and in the R-operator `x V₀ᵀ = Y Dᵀ` and `R{δ₀}ᵀ X B = R{δ₀}ᵀ Y`: the first layer's
//! products cost n·r·out₀ instead of n·d·out₀ ([`crate::Mlp::hvp_rowspace`]).

use candle_core::{DType, Device, Tensor};

use crate::{invalid, LayerParams, ParamVec, Result};

/// Default relative pivot tolerance: a row direction whose squared norm outside the
/// span of the pivot rows is below `ROW_TOL · max_i ‖x_i‖²` is dropped (a singular value
/// of X below 10⁻⁶ of the largest row norm, e.g. an exactly duplicated row).
pub const ROW_TOL: f64 = 1e-12;

/// An orthonormal basis B of the row space of a batch's inputs X (see the module docs).
#[derive(Debug, Clone)]
pub struct RowBasis {
    n: usize,
    d: usize,
    /// The r pivot rows, in pivot order.
    piv: Vec<usize>,
    /// B `[d, r]`, f64 on the CPU.
    b: Tensor,
    /// B in f32 when X is f32 (the embedding then runs in the model's precision).
    b32: Option<Tensor>,
    /// Y = X B = P L `[n, r]`, in X's dtype and on its device.
    y: Tensor,
}

/// Pivoted Cholesky of the row-major `[n, n]` Gram matrix `g`: the pivots and
/// Y `[n, r]` (row-major, row i for sample i) with Y Yᵀ = G on the kept directions.
/// Left-looking, so column k costs one dot product of length k per remaining row.
fn pivoted_cholesky(g: &[f64], n: usize, rel_tol: f64) -> (Vec<usize>, Vec<f64>) {
    let mut diag: Vec<f64> = (0..n).map(|i| g[i * n + i]).collect();
    let top = diag.iter().fold(0.0f64, |m, &v| m.max(v));
    let mut full = vec![0.0; n * n]; // row i: Y[i, 0..k]
    let mut piv = Vec::new();
    let mut used = vec![false; n];
    while piv.len() < n {
        let (p, dp) = (0..n).filter(|&i| !used[i]).map(|i| (i, diag[i])).fold(
            (usize::MAX, f64::NEG_INFINITY),
            |a, b| if b.1 > a.1 { b } else { a },
        );
        if p == usize::MAX || dp.is_nan() || dp <= rel_tol * top {
            break;
        }
        let k = piv.len();
        let s = dp.sqrt();
        used[p] = true;
        full[p * n + k] = s;
        let yp = full[p * n..p * n + k].to_vec();
        for i in (0..n).filter(|&i| !used[i]) {
            let v = (g[i * n + p] - dot(&full[i * n..i * n + k], &yp)) / s;
            full[i * n + k] = v;
            diag[i] -= v * v;
        }
        piv.push(p);
    }
    let r = piv.len();
    let mut y = vec![0.0; n * r];
    for i in 0..n {
        y[i * r..(i + 1) * r].copy_from_slice(&full[i * n..i * n + r]);
    }
    (piv, y)
}

/// ⟨a, b⟩ with four partial sums (vectorisable; a fixed order, so deterministic).
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0f64; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let tail: f64 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for ((s, p), q) in acc.iter_mut().zip(x).zip(y) {
            *s += p * q;
        }
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// Solves `row · L₁ᵀ = row` in place for every row-major row of length r of `rows`
/// (forward substitution, L₁ r×r row-major lower triangular), the rows split over
/// [`crate::threads::count`] threads (each row alone, so the result does not depend on
/// the thread count).
fn forward_substitute(l1: &[f64], r: usize, rows: &mut [f64]) {
    let solve = |part: &mut [f64]| {
        for row in part.chunks_mut(r) {
            for j in 0..r {
                let v = row[j] - dot(&l1[j * r..j * r + j], &row[..j]);
                row[j] = v / l1[j * r + j];
            }
        }
    };
    let m = rows.len() / r;
    let threads = crate::threads::count().min(m).max(1);
    let per = m.div_ceil(threads) * r;
    std::thread::scope(|sc| {
        let mut parts = rows.chunks_mut(per.max(r));
        let first = parts.next();
        for part in parts {
            sc.spawn(move || solve(part));
        }
        if let Some(part) = first {
            solve(part);
        }
    });
}

impl RowBasis {
    /// The basis of the rows of `x` (`[n, d]`, any float dtype and device), dropping
    /// pivots below `rel_tol` (≥ 0; [`ROW_TOL`] is the default).
    pub fn new(x: &Tensor, rel_tol: f64) -> Result<Self> {
        let dims = x.dims();
        if dims.len() != 2 || dims[0] == 0 || dims[1] == 0 {
            return invalid(format!(
                "RowBasis: x has shape {dims:?}, expected [n, d] with n, d ≥ 1"
            ));
        }
        if !(0.0..1.0).contains(&rel_tol) {
            return invalid(format!(
                "RowBasis: rel_tol = {rel_tol}, expected 0 ≤ tol < 1"
            ));
        }
        let (n, d) = (dims[0], dims[1]);
        let x64 = x.to_device(&Device::Cpu)?.to_dtype(DType::F64)?;
        let g = x64.matmul(&x64.t()?)?.flatten_all()?.to_vec1::<f64>()?;
        let (piv, y) = pivoted_cholesky(&g, n, rel_tol);
        let r = piv.len();
        if r == 0 {
            return invalid("RowBasis: every row of x is zero (rank 0), expected rank ≥ 1");
        }
        let mut l1 = vec![0.0; r * r];
        for (k, &p) in piv.iter().enumerate() {
            l1[k * r..(k + 1) * r].copy_from_slice(&y[p * r..(p + 1) * r]);
        }
        let idx = Tensor::from_vec(
            piv.iter().map(|&p| p as u32).collect::<Vec<_>>(),
            r,
            &Device::Cpu,
        )?;
        let mut b = x64
            .index_select(&idx, 0)?
            .t()?
            .contiguous()?
            .flatten_all()?
            .to_vec1::<f64>()?;
        forward_substitute(&l1, r, &mut b);
        let b = Tensor::from_vec(b, (d, r), &Device::Cpu)?;
        let y = Tensor::from_vec(y, (n, r), &Device::Cpu)?
            .to_dtype(x.dtype())?
            .to_device(x.device())?;
        let b32 = match x.dtype() {
            DType::F32 => Some(b.to_dtype(DType::F32)?),
            _ => None,
        };
        Ok(Self {
            n,
            d,
            piv,
            b,
            b32,
            y,
        })
    }

    /// The numerical rank r of X (the reduced first-layer width).
    pub fn rank(&self) -> usize {
        self.piv.len()
    }

    /// The rows n of X.
    pub fn rows(&self) -> usize {
        self.n
    }

    /// The input dimension d of X.
    pub fn input_dim(&self) -> usize {
        self.d
    }

    /// Y = X B = P L (`[n, r]`, X's dtype and device): the first layer's input in the
    /// reduced coordinates.
    pub fn y(&self) -> &Tensor {
        &self.y
    }

    /// V₀ = D Bᵀ for a row-major block D of `m` rows of length r:
    /// the row-major `[m, d]` full block (f64 values). The product runs in X's precision
    /// when X is f32 (B and D rounded to f32, relative error ≈ 10⁻⁷, the rounding of
    /// the f32 model's own products; half the time of the f64 product), else in f64.
    pub fn embed(&self, dm: &[f64], m: usize) -> Result<Vec<f64>> {
        let r = self.rank();
        if dm.len() != m * r {
            return invalid(format!(
                "RowBasis::embed: {} values, expected {m} × r = {}",
                dm.len(),
                m * r
            ));
        }
        let dm = Tensor::from_slice(dm, (m, r), &Device::Cpu)?;
        let v0 = match &self.b32 {
            Some(b32) => dm
                .to_dtype(DType::F32)?
                .matmul(&b32.t()?)?
                .to_dtype(DType::F64)?,
            None => dm.matmul(&self.b.t()?)?,
        };
        Ok(v0.flatten_all()?.to_vec1::<f64>()?)
    }

    /// D = V₀ B for a row-major full block V₀ of `m` rows of length d:
    /// the row-major `[m, r]` coordinates of its projection onto rowspace(X).
    pub fn project(&self, v: &[f64], m: usize) -> Result<Vec<f64>> {
        if v.len() != m * self.d {
            return invalid(format!(
                "RowBasis::project: {} values, expected {m} × d = {}",
                v.len(),
                m * self.d
            ));
        }
        let v = Tensor::from_slice(v, (m, self.d), &Device::Cpu)?;
        Ok(v.matmul(&self.b)?.flatten_all()?.to_vec1::<f64>()?)
    }

    /// Flat reduced vectors (`ParamVec::to_f64_vec` order of [`RowBasis::reduced_zeros`]:
    /// the first layer's weight D `[out₀, r]` first) as flat full vectors: D ↦ D Bᵀ, the
    /// rest copied. All vectors' first blocks go through one product.
    pub fn embed_flat(&self, vs: &[Vec<f64>], out0: usize) -> Result<Vec<Vec<f64>>> {
        let a = out0 * self.rank();
        Ok(self
            .map_first_blocks(vs, a, |blocks| self.embed(blocks, vs.len() * out0))?
            .into_iter()
            .zip(vs)
            .map(|(w, v)| w.into_iter().chain(v[a..].iter().copied()).collect())
            .collect())
    }

    /// Flat full vectors as flat reduced ones: V₀ ↦ V₀ B (the coordinates of V₀'s
    /// projection onto rowspace(X)), the rest copied.
    pub fn project_flat(&self, vs: &[Vec<f64>], out0: usize) -> Result<Vec<Vec<f64>>> {
        let b = out0 * self.d;
        Ok(self
            .map_first_blocks(vs, b, |blocks| self.project(blocks, vs.len() * out0))?
            .into_iter()
            .zip(vs)
            .map(|(w, v)| w.into_iter().chain(v[b..].iter().copied()).collect())
            .collect())
    }

    /// `f` on the first `len` values of every vector stacked, split back per vector.
    fn map_first_blocks(
        &self,
        vs: &[Vec<f64>],
        len: usize,
        f: impl FnOnce(&[f64]) -> Result<Vec<f64>>,
    ) -> Result<Vec<Vec<f64>>> {
        if vs.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(v) = vs.iter().find(|v| v.len() < len) {
            return invalid(format!(
                "RowBasis: a vector of length {}, expected at least the first block's {len}",
                v.len()
            ));
        }
        let stacked: Vec<f64> = vs.iter().flat_map(|v| v[..len].iter().copied()).collect();
        let out = f(&stacked)?;
        let per = out.len() / vs.len().max(1);
        Ok(out.chunks(per.max(1)).map(<[f64]>::to_vec).collect())
    }

    /// `params` with the first layer's weight replaced by zeros `[out₀, r]`: the
    /// structure of reduced vectors.
    pub fn reduced_zeros(&self, params: &ParamVec) -> Result<ParamVec> {
        let mut out = params.zeros_like()?;
        let w = &params.layers[0].weight;
        if w.dim(1)? != self.d {
            return invalid(format!(
                "RowBasis: the first layer has input width {}, expected d = {}",
                w.dim(1)?,
                self.d
            ));
        }
        out.layers[0] = LayerParams {
            weight: Tensor::zeros((w.dim(0)?, self.rank()), w.dtype(), w.device())?,
            bias: out.layers[0].bias.take(),
        };
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{rel_err, tiny_case};
    use crate::{rng, Activation, Batch, Loss, Mlp};

    /// A random reduced vector, its embedding, and the full and reduced products (both
    /// as flat full vectors).
    fn products(mlp: &Mlp, batch: &Batch, basis: &RowBasis, seed: u64) -> (Vec<f64>, Vec<f64>) {
        let out0 = mlp.params.layers[0].weight.dim(0).unwrap();
        let template = basis.reduced_zeros(&mlp.params).unwrap();
        let red = rng::normal_vec(seed, template.numel());
        let full = basis
            .embed_flat(std::slice::from_ref(&red), out0)
            .unwrap()
            .remove(0);
        let primal = mlp.hvp_primal(batch, Loss::Mse).unwrap();
        let v = ParamVec::from_f64_slice(&mlp.params, &full).unwrap();
        let hv = mlp
            .hvp_with(&primal, batch, &v)
            .unwrap()
            .to_f64_vec()
            .unwrap();
        let vr = ParamVec::from_f64_slice(&template, &red).unwrap();
        let hr = mlp.hvp_rowspace(&primal, batch, basis, &vr).unwrap();
        let hr = basis
            .embed_flat(&[hr.to_f64_vec().unwrap()], out0)
            .unwrap()
            .remove(0);
        (hv, hr)
    }

    fn check(widths: &[usize], act: Activation, bias: bool, n: usize, chunk: usize) {
        let (mut mlp, batch) = tiny_case(widths, act, Loss::Mse, bias, n, 3, DType::F64).unwrap();
        mlp.chunk_size = chunk;
        let basis = RowBasis::new(&batch.x, ROW_TOL).unwrap();
        assert_eq!(basis.rank(), n.min(widths[0]));
        let (hv, hr) = products(&mlp, &batch, &basis, 11);
        assert!(
            hv.iter().map(|v| v.abs()).sum::<f64>() > 1e-3,
            "a nonzero product"
        );
        let e = rel_err(&hr, &hv);
        assert!(e < 1e-12, "{widths:?} {act:?}: {e:e}");
    }

    #[test]
    fn reduced_products_equal_full_products_on_the_subspace() {
        check(&[12, 6, 3], Activation::Tanh, true, 5, 2048);
        check(&[12, 6, 3], Activation::Relu, false, 5, 2048);
        check(&[12, 7, 5, 2], Activation::Tanh, true, 7, 2); // 4 chunks
    }

    #[test]
    fn the_basis_is_orthonormal_and_reproduces_x() {
        let (_, batch) = tiny_case(
            &[9, 4, 2],
            Activation::Tanh,
            Loss::Mse,
            true,
            4,
            1,
            DType::F64,
        )
        .unwrap();
        let b = RowBasis::new(&batch.x, ROW_TOL).unwrap();
        // B's columns: embed the unit coordinates (one output row each).
        let cols = b
            .embed(
                &{
                    let mut e = vec![0.0; 16];
                    (0..4).for_each(|i| e[i * 4 + i] = 1.0);
                    e
                },
                4,
            )
            .unwrap();
        for i in 0..4 {
            for j in 0..4 {
                let dot: f64 = (0..9).map(|k| cols[i * 9 + k] * cols[j * 9 + k]).sum();
                assert!(
                    (dot - f64::from(u8::from(i == j))).abs() < 1e-12,
                    "{i} {j} {dot}"
                );
            }
        }
        // X B = Y: row i of X times column j of B.
        let x = batch.x.to_vec2::<f64>().unwrap();
        let y = b.y().to_vec2::<f64>().unwrap();
        for i in 0..4 {
            for j in 0..4 {
                let xb: f64 = (0..9).map(|k| x[i][k] * cols[j * 9 + k]).sum();
                assert!((xb - y[i][j]).abs() < 1e-12, "{xb} vs {}", y[i][j]);
            }
        }
        // project ∘ embed = identity.
        let d = rng::normal_vec(5, 12);
        let back = b.project(&b.embed(&d, 3).unwrap(), 3).unwrap();
        assert!(rel_err(&back, &d) < 1e-13);
    }

    #[test]
    fn f32_inputs_embed_in_f32_to_f32_rounding() {
        let (_, batch) = tiny_case(
            &[40, 6, 2],
            Activation::Tanh,
            Loss::Mse,
            true,
            9,
            1,
            DType::F64,
        )
        .unwrap();
        let x32 = batch.x.to_dtype(DType::F32).unwrap();
        let (b64, b32) = (
            RowBasis::new(&x32.to_dtype(DType::F64).unwrap(), ROW_TOL).unwrap(),
            RowBasis::new(&x32, ROW_TOL).unwrap(),
        );
        assert!(b64.b32.is_none() && b32.b32.is_some());
        let d = rng::normal_vec(3, 6 * 9);
        let (e64, e32) = (b64.embed(&d, 6).unwrap(), b32.embed(&d, 6).unwrap());
        assert_eq!(e32.len(), 6 * 40);
        let e = rel_err(&e32, &e64);
        assert!(e > 0.0 && e < 1e-6, "f32 embedding off by {e:e}");
    }

    #[test]
    fn duplicated_rows_lower_the_rank_and_keep_the_products() {
        let (mlp, batch) = tiny_case(
            &[12, 6, 3],
            Activation::Tanh,
            Loss::Mse,
            true,
            5,
            4,
            DType::F64,
        )
        .unwrap();
        let dup = batch.select(&[0, 1, 2, 1, 3, 0]).unwrap();
        assert_eq!(dup.x.dims(), &[6, 12]);
        let basis = RowBasis::new(&dup.x, ROW_TOL).unwrap();
        assert_eq!(basis.rank(), 4);
        let (hv, hr) = products(&mlp, &dup, &basis, 12);
        assert!(rel_err(&hr, &hv) < 1e-12, "{}", rel_err(&hr, &hv));
    }

    #[test]
    fn bad_inputs_are_refused() {
        let (mlp, batch) = tiny_case(
            &[12, 6, 3],
            Activation::Tanh,
            Loss::Mse,
            true,
            5,
            4,
            DType::F64,
        )
        .unwrap();
        let x0 = Tensor::zeros((3, 4), DType::F64, &Device::Cpu).unwrap();
        assert!(RowBasis::new(&x0, ROW_TOL)
            .unwrap_err()
            .to_string()
            .contains("rank 0"));
        assert!(RowBasis::new(&batch.x, -1.0).is_err());
        let basis = RowBasis::new(&batch.x, ROW_TOL).unwrap();
        let primal = mlp.hvp_primal(&batch, Loss::Mse).unwrap();
        // A full vector is not a reduced one.
        let err = mlp
            .hvp_rowspace(&primal, &batch, &basis, &mlp.params)
            .unwrap_err();
        assert!(err.to_string().contains("layers.0.weight"), "{err}");
        // A basis of other rows.
        let other = RowBasis::new(&batch.x.narrow(0, 0, 4).unwrap(), ROW_TOL).unwrap();
        let v = other.reduced_zeros(&mlp.params).unwrap();
        let err = mlp.hvp_rowspace(&primal, &batch, &other, &v).unwrap_err();
        assert!(err.to_string().contains("4 rows"), "{err}");
        assert!(basis.embed(&[1.0; 3], 1).is_err());
        assert!(basis.project_flat(&[vec![0.0; 5]], 6).is_err());
    }
}
