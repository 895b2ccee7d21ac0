//! `[probes.*]`: the schema of the probe section. Each probe has its own `every`
//! (0: off, the default); see [`crate::probes`] for what each one measures.

use eos_hessian::SoftRankKind;
use serde::{Deserialize, Serialize};

fn one() -> usize {
    1
}
fn yes() -> bool {
    true
}

/// `[probes.*]`: each probe has its own `every` (0: off, the default).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbesConfig {
    #[serde(default)]
    pub sharpness: SharpnessProbe,
    /// Top-k eigenvalues of P^{−½} H P^{−½} with the optimizer's preconditioner P of
    /// the step (`effective_sharpness`; [`crate::effective`]); same fields as
    /// `sharpness`, its own `every`, Ritz vectors and probe subset.
    #[serde(default)]
    pub effective_sharpness: SharpnessProbe,
    #[serde(default)]
    pub taylor: EveryProbe,
    #[serde(default)]
    pub batch_sharpness: BatchSharpnessProbe,
    #[serde(default)]
    pub ntk_trace: SubsetProbe,
    #[serde(default)]
    pub hessian_trace: HessianTraceProbe,
    /// The stochastic-EoS noise kernel norm K(η, B) (THEORY.md §4, inferred formula).
    #[serde(default)]
    pub s_eos: SEosProbe,
    #[serde(default)]
    pub soft_rank: SoftRankProbe,
    /// RMS of each hidden layer's preactivations (`preact_rms`; [`crate::preact`]).
    #[serde(default)]
    pub preact_rms: SubsetProbe,
    #[serde(default)]
    pub update_cosine: EveryProbe,
    /// Per-layer weight and update norms.
    #[serde(default)]
    pub norms: EveryProbe,
    /// train_accuracy, test_loss, test_accuracy (and train_loss on the full set).
    #[serde(default)]
    pub eval: EveryProbe,
}

/// A probe with only an interval.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EveryProbe {
    #[serde(default)]
    pub every: u64,
}

/// A probe on the training set or a fixed subset of it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubsetProbe {
    #[serde(default)]
    pub every: u64,
    /// A fixed seeded subset of this many training samples (0: all).
    #[serde(default)]
    pub subset: usize,
}

/// Top-k Hessian eigenvalues by Lanczos, warm-started from the previous Ritz vectors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharpnessProbe {
    #[serde(default)]
    pub every: u64,
    #[serde(default = "one")]
    pub k: usize,
    #[serde(default)]
    pub subset: usize,
    #[serde(default = "default_max_iter")]
    pub max_iter: usize,
    #[serde(default = "default_tol")]
    pub tol: f64,
    #[serde(default = "yes")]
    pub warm_start: bool,
    /// Vectors per product block: 0 runs single-vector Lanczos (the default), b ≥ 1 block
    /// Lanczos (`eos_hessian::block_lanczos`) with b Hessian-vector products per
    /// R-operator pass, warm-started from the previous k Ritz vectors as a block.
    #[serde(default)]
    pub block: usize,
    /// `"off"` (the default) or `"auto"`: Lanczos on the Hessian restricted to the first
    /// layer's row space of the probe set (`eos_hessian::RowspaceOperator`, exact) when
    /// the model is an MLP and the probe set has fewer rows than inputs; else as "off".
    #[serde(default, skip_serializing_if = "RowspaceMode::is_off")]
    pub rowspace: RowspaceMode,
}

/// `probes.sharpness.rowspace`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RowspaceMode {
    /// Lanczos on the full Hessian.
    #[default]
    Off,
    /// The row-space reduction where it applies (MLP, probe rows n < input width d).
    Auto,
}

impl RowspaceMode {
    pub fn is_off(&self) -> bool {
        *self == Self::Off
    }
}

fn default_max_iter() -> usize {
    100
}
fn default_tol() -> f64 {
    1e-6
}

impl Default for SharpnessProbe {
    fn default() -> Self {
        Self {
            every: 0,
            k: 1,
            subset: 0,
            max_iter: default_max_iter(),
            tol: default_tol(),
            warm_start: true,
            block: 0,
            rowspace: RowspaceMode::Off,
        }
    }
}

/// E_B[g_Bᵀ H_B g_B / ‖g_B‖²] over random minibatches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchSharpnessProbe {
    #[serde(default)]
    pub every: u64,
    /// Minibatches averaged (default 8).
    #[serde(default = "eight")]
    pub batches: usize,
    /// Their size (default `train.batch_size`, the full set for GD).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<usize>,
}

fn eight() -> usize {
    8
}

impl Default for BatchSharpnessProbe {
    fn default() -> Self {
        Self {
            every: 0,
            batches: eight(),
            batch_size: None,
        }
    }
}

/// tr H by Hutchinson (Rademacher probes) or exactly (P HVPs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HessianTraceProbe {
    #[serde(default)]
    pub every: u64,
    #[serde(default)]
    pub subset: usize,
    /// Rademacher probes (default 16).
    #[serde(default = "sixteen")]
    pub samples: usize,
    /// Σ eᵢᵀHeᵢ over all P coordinates instead (small models only).
    #[serde(default)]
    pub exact: bool,
}

fn sixteen() -> usize {
    16
}

impl Default for HessianTraceProbe {
    fn default() -> Self {
        Self {
            every: 0,
            subset: 0,
            samples: sixteen(),
            exact: false,
        }
    }
}

/// Soft rank of each hidden layer's features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SoftRankProbe {
    #[serde(default)]
    pub every: u64,
    /// participation_ratio (default) | stable | entropy.
    #[serde(default)]
    pub kind: SoftRankKind,
    /// Fixed subset of the training set (default 512; 0: all).
    #[serde(default = "five_twelve")]
    pub subset: usize,
}

fn five_twelve() -> usize {
    512
}

impl Default for SoftRankProbe {
    fn default() -> Self {
        Self {
            every: 0,
            kind: SoftRankKind::default(),
            subset: five_twelve(),
        }
    }
}

/// The noise kernel norm K(η, B) = (1/B − 1/n) Σᵢ ηλᵢ/(2 − ηλᵢ) of the stochastic EoS
/// (Agarwala & Pennington; formula **inferred**, THEORY.md §4), from the trace of the
/// Gauss-Newton matrix G and, with `k` > 0, its top-k eigenvalues by Lanczos (the rest
/// enters through the small-ηλ form η·tr/2).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SEosProbe {
    #[serde(default)]
    pub every: u64,
    /// Top eigenvalues of G taken exactly (0: the trace-only form K ≈ (1/B − 1/n)·η·tr G/2).
    #[serde(default)]
    pub k: usize,
    /// A fixed subset of the training set (0: all).
    #[serde(default)]
    pub subset: usize,
}
