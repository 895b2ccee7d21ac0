//! `[data]`: the schema of the data section (a table with `kind`); the datasets it
//! describes are built by [`crate::data`].

use std::path::PathBuf;

use eos_data::{Targets, TeacherActivation};
use serde::{Deserialize, Serialize};

fn yes() -> bool {
    true
}

/// `[data]`: where the samples come from (a table with `kind`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum DataConfig {
    /// Gaussian inputs labelled by a random (linear or MLP) teacher network.
    Teacher(TeacherData),
    /// Gaussian-mixture classification.
    Mixture(MixtureData),
    /// The sparse-coding model of Ahn et al. (THEORY.md §5).
    SparseCoding(SparseCodingData),
    /// Gaussian inputs with random labels.
    RandomLabels(RandomLabelsData),
    /// Fashion-MNIST from the Debian package or `dir`.
    FashionMnist(FashionMnistData),
    /// CIFAR-10 (binary version) from `dir` or `$EOS_DATA_DIR/cifar-10-batches-bin`.
    Cifar10(Cifar10Data),
    /// The sorting task (eos-data's `SortTask`): ids `[n, T]`, one-hot `[n, T, V]`.
    Sort(SortData),
    /// `x` and `y` read from a file (safetensors, `.npz`, a `.npy` pair).
    File(eos_data::FileConfig),
}

macro_rules! generated_data {
    ($(#[$doc:meta])* $name:ident { $($body:tt)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            /// Training samples (with `online`: the fixed reference set the probes use).
            pub n: usize,
            /// Test samples from the same distribution (default 0: no test set).
            #[serde(default)]
            pub test_n: usize,
            /// Online SGD: a fresh batch of `train.batch_size` samples every step.
            #[serde(default)]
            pub online: bool,
            /// Seed of the task (teacher weights, means) and of the samples
            /// (default: `train.seed`).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub seed: Option<u64>,
            $($body)*
        }
    };
}

generated_data!(
    /// `kind = "teacher"`.
    TeacherData {
        pub input_dim: usize,
        /// Teacher hidden widths (default none: a linear teacher).
        #[serde(default)]
        pub hidden: Vec<usize>,
        #[serde(default = "one")]
        pub output_dim: usize,
        #[serde(default)]
        pub activation: TeacherActivation,
        #[serde(default = "unit")]
        pub input_std: f64,
        #[serde(default = "unit")]
        pub weight_gain: f64,
        #[serde(default)]
        pub bias_std: f64,
        /// Regression output noise (ignored with `classes`).
        #[serde(default)]
        pub noise_std: f64,
        /// Labels from the teacher's argmax (or sign) instead of regression targets.
        #[serde(default)]
        pub classes: bool,
        #[serde(default)]
        pub label_noise: f64,
        #[serde(default)]
        pub targets: Targets,
    }
);

generated_data!(
    /// `kind = "mixture"`.
    MixtureData {
        #[serde(default = "twenty")]
        pub dim: usize,
        #[serde(default = "two")]
        pub num_classes: usize,
        #[serde(default = "three")]
        pub separation: f64,
        #[serde(default = "unit")]
        pub noise_std: f64,
        #[serde(default)]
        pub targets: Targets,
    }
);

generated_data!(
    /// `kind = "sparse_coding"`.
    SparseCodingData {
        #[serde(default = "two_hundred")]
        pub dim: usize,
        #[serde(default = "three")]
        pub signal: f64,
        /// Noise variance per coordinate (default 1/dim).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub noise_var: Option<f64>,
        #[serde(default = "signed")]
        pub targets: Targets,
    }
);

generated_data!(
    /// `kind = "random_labels"`.
    RandomLabelsData {
        #[serde(default = "twenty")]
        pub dim: usize,
        #[serde(default = "two")]
        pub num_classes: usize,
        #[serde(default = "unit")]
        pub input_std: f64,
        #[serde(default)]
        pub targets: Targets,
    }
);

generated_data!(
    /// `kind = "sort"`: sequences of `len` tokens from `vocab` ids, targets the sorted
    /// sequence (cross-entropy at every position).
    SortData {
        /// Sequence length T.
        pub len: usize,
        /// Vocabulary size V.
        pub vocab: usize,
    }
);

/// The keys of an image data set (`fashion_mnist`, `cifar10`), as the loader reads them.
#[derive(Debug, Clone, Copy)]
pub struct ImageKeys<'a> {
    pub n: Option<usize>,
    pub test_n: usize,
    pub standardize: bool,
    pub classes: Option<&'a [u32]>,
    pub targets: Targets,
    pub dir: Option<&'a std::path::Path>,
}

macro_rules! image_data {
    ($(#[$doc:meta])* $name:ident, $train_n:literal, $dir_doc:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            #[doc = concat!("The first n training images (default all ", $train_n, ").")]
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub n: Option<usize>,
            /// The first test_n test images (default 0: no test set).
            #[serde(default)]
            pub test_n: usize,
            /// Per-feature standardisation with training statistics (default true).
            #[serde(default = "yes")]
            pub standardize: bool,
            /// Keep only these classes, relabelled 0, 1, … (default all 10).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub classes: Option<Vec<u32>>,
            #[serde(default)]
            pub targets: Targets,
            #[doc = $dir_doc]
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub dir: Option<PathBuf>,
        }

        impl $name {
            /// The keys the image loader reads.
            pub fn keys(&self) -> ImageKeys<'_> {
                ImageKeys {
                    n: self.n,
                    test_n: self.test_n,
                    standardize: self.standardize,
                    classes: self.classes.as_deref(),
                    targets: self.targets,
                    dir: self.dir.as_deref(),
                }
            }
        }
    };
}

image_data!(
    /// `kind = "fashion_mnist"` (Cohen et al. use n = 5 000).
    FashionMnistData,
    "60 000",
    "Directory with the IDX files (default: `$EOS_DATA_DIR/fashion-mnist`, then the Debian package's)."
);

image_data!(
    /// `kind = "cifar10"`: the binary version of CIFAR-10.
    Cifar10Data,
    "50 000",
    "Directory with the binary batches (default: `$EOS_DATA_DIR/cifar-10-batches-bin`)."
);

fn one() -> usize {
    1
}
fn two() -> usize {
    2
}
fn twenty() -> usize {
    20
}
fn two_hundred() -> usize {
    200
}
fn unit() -> f64 {
    1.0
}
fn three() -> f64 {
    3.0
}
fn signed() -> Targets {
    Targets::Signed
}
