//! Symmetric linear operators on parameter space, seen as flat `f64` vectors.
//!
//! Every algorithm in this crate (power iteration, Lanczos, Hutchinson, SLQ) sees a
//! symmetric operator `A: R^P -> R^P` only through `apply` (and optionally the
//! batched `apply_block`). Vectors are flat `f64` slices in the parameter order of
//! [`eos_model::ParamVec::to_f64_vec`]: recurrences and reorthogonalisation run in
//! f64 whatever the model's dtype (THEORY.md §8, "Precision").
//!
//! [`Observed`] wraps an operator and reports the running count of products to a
//! callback (progress output of long runs, e.g. `eos probe`), leaving every algorithm
//! and every result unchanged.

use std::sync::atomic::{AtomicUsize, Ordering};

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

/// `inner` with `on_products(n)` called after each application, `n` the products so
/// far (a block of k vectors counts k). The products themselves are `inner`'s.
pub struct Observed<'a, A: ?Sized> {
    inner: &'a A,
    done: AtomicUsize,
    on_products: &'a (dyn Fn(usize) + Sync),
}

impl<'a, A: LinearOperator + ?Sized> Observed<'a, A> {
    pub fn new(inner: &'a A, on_products: &'a (dyn Fn(usize) + Sync)) -> Self {
        Self {
            inner,
            done: AtomicUsize::new(0),
            on_products,
        }
    }

    /// Products so far.
    pub fn products(&self) -> usize {
        self.done.load(Ordering::Relaxed)
    }

    fn count(&self, k: usize) {
        let n = self.done.fetch_add(k, Ordering::Relaxed) + k;
        (self.on_products)(n);
    }
}

impl<A: ?Sized> std::fmt::Debug for Observed<'_, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observed")
            .field("products", &self.done.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl<A: LinearOperator + ?Sized> LinearOperator for Observed<'_, A> {
    fn dim(&self) -> usize {
        self.inner.dim()
    }

    fn apply(&self, v: &[f64]) -> Result<Vec<f64>> {
        let r = self.inner.apply(v)?;
        self.count(1);
        Ok(r)
    }

    fn apply_block(&self, vs: &[Vec<f64>]) -> Result<Vec<Vec<f64>>> {
        let r = self.inner.apply_block(vs)?;
        self.count(vs.len());
        Ok(r)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn observed_counts_products_and_changes_nothing() {
        let a = DenseOperator::new(2, vec![2.0, 1.0, 1.0, 3.0]);
        let seen = Mutex::new(Vec::new());
        let record = |n: usize| seen.lock().unwrap().push(n);
        let o = Observed::new(&a, &record);
        assert_eq!(o.dim(), 2);
        assert_eq!(o.apply(&[1.0, 0.0]).unwrap(), vec![2.0, 1.0]);
        let b = o.apply_block(&[vec![0.0, 1.0], vec![1.0, 1.0]]).unwrap();
        assert_eq!(b, vec![vec![1.0, 3.0], vec![3.0, 4.0]]);
        assert_eq!(o.products(), 3);
        assert_eq!(*seen.lock().unwrap(), vec![1, 3]);
    }
}
