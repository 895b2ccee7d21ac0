//! The `effective_sharpness` probe: the top-k eigenvalues of `P^{−½} H P^{−½}` at θ_t.
//!
//! An update θ_{t+1} = θ_t − η P_t⁻¹ g_t with a diagonal preconditioner `P_t`
//! (per-layer lr scales, depthwise gradient scaling, νP's normalisation, Adam's
//! `1/(√v̂ + ε)`) is stable on the local quadratic while `η · λ_max(P^{−½} H P^{−½})
//! ≤ 2` (Cohen et al. 2022, arXiv 2207.14484, §3; `eos_hessian::preconditioned`), so
//! `η λ_eff = 2` is the edge of stability of such a run, not `η λ_max(H) = 2`.
//!
//! The probe runs after the optimizer's step t (so `P_t = m⁻¹` is the one of the
//! update θ_t → θ_{t+1}, from `Optimizer::preconditioner`) and before θ moves: the
//! Hessian is the one at θ_t on the probe set, the same point as `sharpness`.
//! Lanczos is warm-started from this probe's own Ritz vectors (they live in the
//! scaled coordinates, so they are kept apart from the plain sharpness probe's and
//! checkpointed as `probe.ritz_eff`); its random start comes from the sharpness
//! probe's seed stream, so with `P = I` and the same probe set the two probes return
//! the same numbers bit for bit. When the optimizer cannot report `P_t` yet
//! (`eos_optim::Error::State`: e.g. per-layer-normalised scaling right after a
//! resume) the line gets `effective_sharpness: null` and `effective_sharpness_note`.

use candle_core::Tensor;
use eos_hessian::{effective_sharpness, LanczosConfig, ModelOperator, Which};
use eos_model::rng::derive_seed;
use eos_model::{Batch, Loss, Model, ParamVec};

use crate::build::streams;
use crate::config::SharpnessProbe;
use crate::error::Context;
use crate::metrics::Line;

/// The state of the effective-sharpness probe.
#[derive(Debug)]
pub struct EffectiveProbe {
    pub cfg: SharpnessProbe,
    loss: Loss,
    seed: u64,
    set: Batch,
    /// The latest Ritz vectors of `P^{−½} H P^{−½}` (warm start of the next probe).
    pub ritz: Vec<Vec<f64>>,
}

impl EffectiveProbe {
    /// The probe on `set` (the training set or its seeded subset).
    pub fn new(cfg: &SharpnessProbe, loss: Loss, seed: u64, set: Batch) -> Self {
        Self {
            cfg: cfg.clone(),
            loss,
            seed,
            set,
            ritz: Vec::new(),
        }
    }

    /// Whether the probe runs at `step`.
    pub fn due(&self, step: u64) -> bool {
        self.cfg.every > 0 && step % self.cfg.every == 0
    }

    /// Measures at θ_t (`mlp`) with the lr multiplier `m = P_t⁻¹` the optimizer
    /// reported for step t (`Ok(None)`: the identity; `Err(State)`: not known yet).
    pub fn measure<M: Model<Params = ParamVec>>(
        &mut self,
        step: u64,
        mlp: &M,
        m: eos_optim::Result<Option<ParamVec>>,
        line: &mut Line,
    ) -> crate::Result<()> {
        let m = match m {
            Ok(m) => m.map(|m| m.to_f64_vec()).transpose()?,
            Err(eos_optim::Error::State(why)) => {
                line.effective_sharpness = Some(None);
                line.effective_sharpness_note = Some(why);
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        let op = ModelOperator::hessian(mlp, &self.set, self.loss);
        let (c, p) = (&self.cfg, mlp.params().numel());
        let cfg = LanczosConfig {
            k: c.k.min(p),
            which: Which::Largest,
            max_iter: c.max_iter.max(c.k).min(p),
            tol: c.tol,
            seed: derive_seed(derive_seed(self.seed, streams::LANCZOS), step),
        };
        let warm: &[Vec<f64>] = if c.warm_start { &self.ritz } else { &[] };
        let r = effective_sharpness(&op, m.as_deref(), &cfg, warm)
            .context("effective_sharpness probe (Lanczos on P^-1/2 H P^-1/2)")?;
        line.effective_sharpness = Some(r.eigenvalues.first().copied());
        line.effective_top_eigenvalues = Some(r.eigenvalues);
        self.ritz = r.eigenvectors;
        Ok(())
    }
}

/// Ritz vectors as a `[k, P]` f64 tensor for a checkpoint (`None` when there are none).
pub fn ritz_tensor(ritz: &[Vec<f64>]) -> crate::Result<Option<Tensor>> {
    let Some(first) = ritz.first() else {
        return Ok(None);
    };
    let flat: Vec<f64> = ritz.iter().flatten().copied().collect();
    let dev = candle_core::Device::Cpu;
    Ok(Some(Tensor::from_vec(
        flat,
        (ritz.len(), first.len()),
        &dev,
    )?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::DType;
    use eos_model::testing::{dense_hessian, tiny_case};
    use eos_model::Activation;

    fn probe(set: &Batch) -> EffectiveProbe {
        let cfg = SharpnessProbe {
            every: 1,
            k: 2,
            max_iter: 200,
            tol: 1e-12,
            ..Default::default()
        };
        EffectiveProbe::new(&cfg, Loss::Mse, 7, set.clone())
    }

    /// Per-layer multipliers m = (4, 0.25): the probe's λ_eff is λ_max(D H D) of the
    /// dense Hessian with d = √m, and differs from λ_max(H).
    #[test]
    fn per_layer_scales_match_a_dense_computation() {
        let (mlp, batch) = tiny_case(
            &[3, 4, 2],
            Activation::Relu,
            Loss::Mse,
            true,
            6,
            4,
            DType::F64,
        )
        .unwrap();
        let scales = [4.0, 0.25];
        let m = mlp.params.clone();
        let m = ParamVec {
            layers: m
                .layers
                .iter()
                .zip(scales)
                .map(|(l, s)| eos_model::LayerParams {
                    weight: (l.weight.ones_like().unwrap() * s).unwrap(),
                    bias: l
                        .bias
                        .as_ref()
                        .map(|b| (b.ones_like().unwrap() * s).unwrap()),
                })
                .collect(),
        };
        let d: Vec<f64> = m.to_f64_vec().unwrap().iter().map(|x| x.sqrt()).collect();
        let h = dense_hessian(&mlp, &batch, Loss::Mse).unwrap();
        let p = d.len();
        let dhd: Vec<f64> = (0..p * p).map(|k| d[k / p] * h[k] * d[k % p]).collect();
        let top = |a: &[f64]| {
            let v = eos_hessian::symmetric_eigen(a, p).unwrap().values;
            v[p - 1]
        };
        let (eff_dense, plain_dense) = (top(&dhd), top(&h));
        let mut pr = probe(&batch);
        let mut line = Line::default();
        pr.measure(0, &mlp, Ok(Some(m)), &mut line).unwrap();
        let eff = line.effective_sharpness.unwrap().unwrap();
        assert!(
            (eff - eff_dense).abs() < 1e-9 * eff_dense,
            "{eff} vs {eff_dense}"
        );
        assert!(
            (eff - plain_dense).abs() > 0.05 * plain_dense,
            "λ_eff {eff} should differ from λ_max {plain_dense}"
        );
        assert_eq!(pr.ritz.len(), 2);
        // The identity preconditioner gives the plain sharpness.
        let mut line = Line::default();
        probe(&batch).measure(0, &mlp, Ok(None), &mut line).unwrap();
        let plain = line.effective_sharpness.unwrap().unwrap();
        assert!((plain - plain_dense).abs() < 1e-9 * plain_dense);
    }

    #[test]
    fn an_unknown_preconditioner_gives_null_and_a_note() {
        let (mlp, batch) = tiny_case(
            &[2, 3, 1],
            Activation::Tanh,
            Loss::Mse,
            true,
            4,
            1,
            DType::F64,
        )
        .unwrap();
        let mut line = Line::default();
        let why = eos_optim::Error::State("not yet".into());
        probe(&batch).measure(0, &mlp, Err(why), &mut line).unwrap();
        assert_eq!(line.effective_sharpness, Some(None));
        assert_eq!(line.effective_sharpness_note.as_deref(), Some("not yet"));
        let s = serde_json::to_string(&line).unwrap();
        assert!(s.contains(r#""effective_sharpness":null"#), "{s}");
    }
}
