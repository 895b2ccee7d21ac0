//! Symmetric linear operators on parameter space, seen as flat `f64` vectors.
//!
//! Every algorithm in this crate (power iteration, Lanczos, Hutchinson, SLQ) sees a
//! symmetric operator `A: R^P -> R^P` only through `apply` (and optionally the
//! batched `apply_block`). Vectors are flat `f64` slices in the parameter order of
//! [`eos_model::ParamVec::to_f64_vec`]: recurrences and reorthogonalisation run in
//! f64 whatever the model's dtype (THEORY.md §8, "Precision").

use crate::Result;

/// A symmetric linear map `A: R^dim -> R^dim`.
pub trait LinearOperator {
    /// The dimension `P` of the space.
    fn dim(&self) -> usize;

    /// `A v` for one vector `v` of length `dim()`.
    fn apply(&self, v: &[f64]) -> Result<Vec<f64>>;

    /// `A v_j` for several vectors at once. Operators that can share work across
    /// vectors (one forward pass for k Hessian-vector products) override this.
    fn apply_block(&self, vs: &[Vec<f64>]) -> Result<Vec<Vec<f64>>> {
        vs.iter().map(|v| self.apply(v)).collect()
    }
}

/// A dense symmetric matrix as an operator (row-major `dim x dim`); the reference
/// against which the iterative methods are tested.
#[derive(Debug, Clone)]
pub struct DenseOperator {
    pub n: usize,
    pub a: Vec<f64>,
}

impl DenseOperator {
    pub fn new(n: usize, a: Vec<f64>) -> Self {
        assert_eq!(a.len(), n * n, "DenseOperator: matrix must be n x n");
        Self { n, a }
    }

    pub fn get(&self, i: usize, j: usize) -> f64 {
        self.a[i * self.n + j]
    }
}

impl LinearOperator for DenseOperator {
    fn dim(&self) -> usize {
        self.n
    }

    fn apply(&self, v: &[f64]) -> Result<Vec<f64>> {
        Ok((0..self.n)
            .map(|i| {
                let row = &self.a[i * self.n..(i + 1) * self.n];
                row.iter().zip(v).map(|(a, b)| a * b).sum()
            })
            .collect())
    }
}
