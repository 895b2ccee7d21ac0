//! The curvature operators of a model on a fixed batch, as [`LinearOperator`]s:
//!
//! - [`HessianOp`]: `v ↦ H v` with `H = ∇²L(θ)` of the loss on the batch (the full
//!   training set or a fixed minibatch), exact by the R-operator (eos-model `hvp`);
//! - [`GaussNewtonOp`]: `v ↦ G v`, `G = (1/n) Σᵢ Jᵢᵀ ∇²_f ℓᵢ Jᵢ` (Schraudolph 2002),
//!   positive semi-definite for convex losses; for mse its nonzero spectrum is that of
//!   the normalised NTK Gram matrix Θ/n (THEORY.md §4).
//!
//! Vectors cross the boundary as flat f64 (`ParamVec::to_f64_vec` order), so the
//! Lanczos recurrences run in f64 whatever the model's dtype.
//!
//! The operator is fixed (model, batch and loss do not change during its life), so the
//! Hessian product's direction-independent half — forward pass, loss and backpropagated
//! δ_l ([`eos_model::HvpPrimal`]) — is computed at the first product and reused by every
//! further one, when it fits in [`PRIMAL_CACHE_BYTES`]: each product then costs only the
//! tangent passes (≈ 2/3 of a full R-operator pass for a wide first layer).

use std::cell::{Cell, RefCell};

use eos_model::{Batch, Loss, Mlp, Model, ParamSpace};

use crate::{Error, LinearOperator, Result};

/// Which curvature matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curvature {
    Hessian,
    GaussNewton,
}

/// A curvature matrix of `model`'s loss on `batch`, for any [`Model`] (an [`Mlp`], the
/// default, or an `eos_model::Network`).
#[derive(Debug)]
pub struct ModelOperator<'a, M: Model = Mlp> {
    pub model: &'a M,
    pub batch: &'a Batch,
    pub loss: Loss,
    pub kind: Curvature,
    applications: Cell<usize>,
    /// The cached primal pass and what it was computed for (model, batch, loss).
    primal: RefCell<Option<(PrimalKey, M::Primal)>>,
    /// The cache is off (it would not fit in the budget).
    no_cache: Cell<bool>,
    /// The cache budget in bytes (`None`: [`primal_cache_budget`]).
    cache_limit: Option<usize>,
}

/// Most bytes the cached primal pass of a [`ModelOperator`] may hold by default; larger
/// problems recompute it at every product. The environment variable
/// `EOS_PRIMAL_CACHE_MIB` overrides it (0 turns the cache off: memory then stays
/// bounded by the chunk size at 3U + 7s per product instead of 2U + 6s).
pub const PRIMAL_CACHE_BYTES: usize = 1 << 30;

/// The environment variable that sets the primal cache budget in MiB.
pub const PRIMAL_CACHE_ENV: &str = "EOS_PRIMAL_CACHE_MIB";

/// A primal cache budget in MiB as written in [`PRIMAL_CACHE_ENV`], in bytes.
pub fn parse_cache_mib(s: &str) -> Result<usize> {
    s.trim()
        .parse::<usize>()
        .ok()
        .and_then(|m| m.checked_mul(1 << 20))
        .ok_or_else(|| Error::Invalid {
            what: PRIMAL_CACHE_ENV.into(),
            found: format!("`{s}`"),
            expected: "a whole number of MiB (0 turns the primal cache off)".into(),
        })
}

/// The primal cache budget in bytes: [`PRIMAL_CACHE_ENV`] if set, else
/// [`PRIMAL_CACHE_BYTES`].
pub fn primal_cache_budget() -> Result<usize> {
    match std::env::var(PRIMAL_CACHE_ENV) {
        Ok(s) => parse_cache_mib(&s),
        Err(_) => Ok(PRIMAL_CACHE_BYTES),
    }
}

/// Identifies what a cached primal pass was computed for: the addresses of the borrowed
/// model and batch (immutable while borrowed), the loss and the chunk size.
type PrimalKey = (usize, usize, Loss, usize);

/// `v ↦ H v`.
pub type HessianOp<'a, M = Mlp> = ModelOperator<'a, M>;
/// `v ↦ G v`.
pub type GaussNewtonOp<'a, M = Mlp> = ModelOperator<'a, M>;

impl<'a, M: Model> ModelOperator<'a, M> {
    pub fn hessian(model: &'a M, batch: &'a Batch, loss: Loss) -> Self {
        Self::new(model, batch, loss, Curvature::Hessian)
    }

    pub fn gauss_newton(model: &'a M, batch: &'a Batch, loss: Loss) -> Self {
        Self::new(model, batch, loss, Curvature::GaussNewton)
    }

    pub fn new(model: &'a M, batch: &'a Batch, loss: Loss, kind: Curvature) -> Self {
        Self {
            model,
            batch,
            loss,
            kind,
            applications: Cell::new(0),
            primal: RefCell::new(None),
            no_cache: Cell::new(false),
            cache_limit: None,
        }
    }

    /// Sets the primal cache budget in bytes (0: never cache), instead of
    /// [`primal_cache_budget`].
    pub fn with_primal_cache_limit(mut self, bytes: usize) -> Self {
        self.cache_limit = Some(bytes);
        self
    }

    fn key(&self) -> PrimalKey {
        (
            std::ptr::from_ref(self.model) as usize,
            std::ptr::from_ref(self.batch) as usize,
            self.loss,
            self.model.chunk_size(),
        )
    }

    /// H v, from the cached primal pass when it fits.
    fn hessian_product(&self, v: &M::Params) -> Result<M::Params> {
        let mut out = self.hessian_products(std::slice::from_ref(v))?;
        Ok(out.pop().expect("one product per direction"))
    }

    /// H v_i for every v_i, from the cached primal pass when it fits: one
    /// `Model::hvp_with` for a single direction, `Model::hvp_block` for several.
    fn hessian_products(&self, vs: &[M::Params]) -> Result<Vec<M::Params>> {
        self.with_primal(|p| match p {
            None => vs
                .iter()
                .map(|v| Ok(self.model.hvp(self.batch, self.loss, v)?))
                .collect(),
            Some(p) => Ok(match vs {
                [v] => vec![self.model.hvp_with(p, self.batch, v)?],
                _ => self.model.hvp_block(p, self.batch, vs)?,
            }),
        })
    }

    /// `f` of the cached primal pass (computed at the first call), or of `None` when it
    /// does not fit in the cache budget (the caller then recomputes it per product).
    pub(crate) fn with_primal<R>(
        &self,
        f: impl FnOnce(Option<&M::Primal>) -> Result<R>,
    ) -> Result<R> {
        let limit = match self.cache_limit {
            Some(l) => l,
            None => primal_cache_budget()?,
        };
        let too_big = self
            .model
            .primal_estimate(self.batch.len())
            .is_some_and(|e| e > limit);
        if self.no_cache.get() || too_big {
            self.no_cache.set(true);
            return f(None);
        }
        let key = self.key();
        let mut slot = self.primal.borrow_mut();
        if slot.as_ref().is_none_or(|(k, _)| *k != key) {
            *slot = None;
            let p = self.model.hvp_primal(self.batch, self.loss)?;
            if M::primal_bytes(&p) > limit {
                self.no_cache.set(true);
                return f(None);
            }
            *slot = Some((key, p));
        }
        f(slot.as_ref().map(|(_, p)| p))
    }

    /// Bytes held by the cached primal pass ([`eos_model::HvpPrimal::bytes`]), or `None` while none
    /// is cached: before the first Hessian product, for Gauss–Newton, or when it does not
    /// fit in [`PRIMAL_CACHE_BYTES`] and every product recomputes it (a full `hvp`).
    pub fn cached_primal_bytes(&self) -> Option<usize> {
        self.primal
            .borrow()
            .as_ref()
            .map(|(_, p)| M::primal_bytes(p))
    }

    /// How many matrix-vector products this operator has computed.
    pub fn applications(&self) -> usize {
        self.applications.get()
    }

    /// The product on the model's own parameter vector (no f64 round trip).
    pub fn apply_params(&self, v: &M::Params) -> Result<M::Params> {
        self.applications.set(self.applications.get() + 1);
        Ok(match self.kind {
            Curvature::Hessian => self.hessian_product(v)?,
            Curvature::GaussNewton => self.model.gnvp(self.batch, self.loss, v)?,
        })
    }
}

impl<M: Model> LinearOperator for ModelOperator<'_, M> {
    fn dim(&self) -> usize {
        self.model.n_params()
    }

    fn apply(&self, v: &[f64]) -> Result<Vec<f64>> {
        let v = M::Params::from_f64_slice(self.model.params(), v)?;
        Ok(self.apply_params(&v)?.to_f64_vec()?)
    }

    /// Hessian: one block product ([`eos_model::Model::hvp_block`], a single R-operator pass
    /// for all directions on an MLP); Gauss–Newton: one product per vector.
    fn apply_block(&self, vs: &[Vec<f64>]) -> Result<Vec<Vec<f64>>> {
        if self.kind != Curvature::Hessian || vs.len() < 2 {
            return vs.iter().map(|v| self.apply(v)).collect();
        }
        let ps = vs
            .iter()
            .map(|v| M::Params::from_f64_slice(self.model.params(), v))
            .collect::<eos_model::Result<Vec<_>>>()?;
        self.applications.set(self.applications.get() + vs.len());
        self.hessian_products(&ps)?
            .iter()
            .map(|h| Ok(h.to_f64_vec()?))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::DType;
    use eos_model::testing::{dense_hessian, rel_err, tiny_case};
    use eos_model::{Activation, ParamVec};

    #[test]
    fn a_zero_cache_budget_recomputes_and_agrees() {
        let (mlp, batch) = tiny_case(
            &[3, 4, 2],
            Activation::Tanh,
            Loss::Mse,
            true,
            6,
            4,
            DType::F64,
        )
        .unwrap();
        let cached =
            ModelOperator::hessian(&mlp, &batch, Loss::Mse).with_primal_cache_limit(1 << 20);
        let bounded = ModelOperator::hessian(&mlp, &batch, Loss::Mse).with_primal_cache_limit(0);
        let v: Vec<f64> = (0..cached.dim()).map(|i| (i as f64 * 0.23).sin()).collect();
        let (a, b) = (cached.apply(&v).unwrap(), bounded.apply(&v).unwrap());
        assert!(cached.cached_primal_bytes().unwrap() > 0);
        assert_eq!(bounded.cached_primal_bytes(), None);
        assert!(rel_err(&a, &b) < 1e-14, "{}", rel_err(&a, &b));
        assert_eq!(parse_cache_mib(" 256 ").unwrap(), 256 << 20);
        assert_eq!(parse_cache_mib("0").unwrap(), 0);
        let e = parse_cache_mib("1GiB").unwrap_err().to_string();
        assert!(
            e.contains("EOS_PRIMAL_CACHE_MIB") && e.contains("`1GiB`"),
            "{e}"
        );
        assert!(parse_cache_mib("-1").is_err());
    }

    #[test]
    fn operators_agree_with_model_products() {
        let (mlp, batch) = tiny_case(
            &[3, 4, 2],
            Activation::Tanh,
            Loss::Mse,
            true,
            6,
            4,
            DType::F64,
        )
        .unwrap();
        let h = ModelOperator::hessian(&mlp, &batch, Loss::Mse);
        let p = h.dim();
        assert_eq!(p, 3 * 4 + 4 + 4 * 2 + 2);
        let dense = dense_hessian(&mlp, &batch, Loss::Mse).unwrap();
        let v: Vec<f64> = (0..p).map(|i| (i as f64 * 0.37).sin()).collect();
        assert_eq!(h.cached_primal_bytes(), None);
        let hv = h.apply(&v).unwrap();
        let primal = mlp.hvp_primal(&batch, Loss::Mse).unwrap();
        assert_eq!(h.cached_primal_bytes(), Some(primal.bytes()));
        assert!(primal.bytes() > 0);
        let expect: Vec<f64> = (0..p)
            .map(|i| (0..p).map(|j| dense[i * p + j] * v[j]).sum())
            .collect();
        assert!(rel_err(&hv, &expect) < 1e-12);
        assert_eq!(h.applications(), 1);
        // Further products reuse the cached primal pass: bit-identical to the model's
        // own product, for another direction too.
        let w: Vec<f64> = (0..p).map(|i| (i as f64 * 0.11).cos()).collect();
        let hw = h.apply(&w).unwrap();
        let direct = mlp
            .hvp(
                &batch,
                Loss::Mse,
                &ParamVec::from_f64_slice(&mlp.params, &w).unwrap(),
            )
            .unwrap()
            .to_f64_vec()
            .unwrap();
        assert_eq!(hw, direct);
        assert_eq!(h.apply(&v).unwrap(), hv);
        assert_eq!(h.applications(), 3);
        let g = ModelOperator::gauss_newton(&mlp, &batch, Loss::Mse);
        let gv = g.apply(&v).unwrap();
        let vgv: f64 = v.iter().zip(&gv).map(|(a, b)| a * b).sum();
        assert!(vgv > 0.0, "Gauss-Newton is PSD for mse");
    }

    /// The cached primal pass with several chunks and a smooth activation (φ'' ≠ 0,
    /// so g_l and R{z_l} enter), against the dense Hessian; and a primal pass is
    /// refused for another batch.
    #[test]
    fn cached_products_match_dense_with_chunks() {
        let (mut mlp, batch) = tiny_case(
            &[3, 5, 4, 2],
            Activation::Tanh,
            Loss::CrossEntropy,
            true,
            7,
            11,
            DType::F64,
        )
        .unwrap();
        mlp.chunk_size = 3;
        let h = ModelOperator::hessian(&mlp, &batch, Loss::CrossEntropy);
        let p = h.dim();
        let dense = dense_hessian(&mlp, &batch, Loss::CrossEntropy).unwrap();
        for k in 0..3 {
            let v: Vec<f64> = (0..p).map(|i| ((i + 7 * k) as f64 * 0.29).sin()).collect();
            let hv = h.apply(&v).unwrap();
            let expect: Vec<f64> = (0..p)
                .map(|i| (0..p).map(|j| dense[i * p + j] * v[j]).sum())
                .collect();
            assert!(rel_err(&hv, &expect) < 1e-12);
        }
        let primal = mlp.hvp_primal(&batch, Loss::CrossEntropy).unwrap();
        let fewer = batch.rows(0, 5).unwrap();
        let e = mlp
            .hvp_with(&primal, &fewer, &mlp.params)
            .unwrap_err()
            .to_string();
        assert!(e.contains("another batch"), "{e}");
    }

    /// A block of Hessian products (one `hvp_block` pass) equals the single products
    /// to 1e-12 in f64; Gauss–Newton blocks loop over single products.
    #[test]
    fn block_products_equal_single_products() {
        let (mut mlp, batch) = tiny_case(
            &[3, 5, 4, 2],
            Activation::Tanh,
            Loss::CrossEntropy,
            true,
            7,
            11,
            DType::F64,
        )
        .unwrap();
        mlp.chunk_size = 3;
        for kind in [Curvature::Hessian, Curvature::GaussNewton] {
            let op = ModelOperator::new(&mlp, &batch, Loss::CrossEntropy, kind);
            let p = op.dim();
            let vs: Vec<Vec<f64>> = (0..3)
                .map(|k| (0..p).map(|i| ((i + 5 * k) as f64 * 0.31).cos()).collect())
                .collect();
            let block = op.apply_block(&vs).unwrap();
            assert_eq!(op.applications(), 3);
            for (v, b) in vs.iter().zip(&block) {
                let single = op.apply(v).unwrap();
                assert!(
                    rel_err(b, &single) < 1e-12,
                    "{kind:?}: {}",
                    rel_err(b, &single)
                );
            }
        }
    }
}
