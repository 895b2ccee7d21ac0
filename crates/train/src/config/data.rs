//! `[data]`: the schema of the data section (a table with `kind`); the datasets it
//! describes are built by [`crate::data`].

use std::path::PathBuf;

use eos_data::{MixtureConfig, RandomLabels, SortTask, SparseCoding, Targets, TeacherConfig};
use serde::de::{DeserializeOwned, Deserializer, Error as _};
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

/// A generated data kind: the sample keys (`n`, `test_n`, `online`, `seed`) and, in the
/// same flat `[data]` table, the keys of eos-data's own generator config `G`
/// ([`TeacherConfig`], [`MixtureConfig`], [`SparseCoding`], [`RandomLabels`],
/// [`SortTask`]), which rejects unknown keys by name.
///
/// Deserialised by hand: serde's `flatten` cannot be combined with
/// `deny_unknown_fields`, so the sample keys are taken out of the table and the rest
/// goes to `G`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Generated<G> {
    /// Training samples (with `online`: the fixed reference set the probes use).
    pub n: usize,
    /// Test samples from the same distribution (default 0: no test set).
    pub test_n: usize,
    /// Online SGD: a fresh batch of `train.batch_size` samples every step.
    pub online: bool,
    /// Seed of the task (teacher weights, means) and of the samples
    /// (default: `train.seed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// The generator's own keys.
    #[serde(flatten)]
    pub generator: G,
}

/// The sample keys of a [`Generated`] table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SampleKeys {
    n: usize,
    #[serde(default)]
    test_n: usize,
    #[serde(default)]
    online: bool,
    #[serde(default)]
    seed: Option<u64>,
}

const SAMPLE_KEYS: [&str; 4] = ["n", "test_n", "online", "seed"];

impl<'de, G: DeserializeOwned> Deserialize<'de> for Generated<G> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut rest = toml::Table::deserialize(d)?;
        let sample: toml::Table = SAMPLE_KEYS
            .iter()
            .filter_map(|k| rest.remove(*k).map(|v| (k.to_string(), v)))
            .collect();
        let s = SampleKeys::deserialize(toml::Value::Table(sample)).map_err(D::Error::custom)?;
        let generator = G::deserialize(toml::Value::Table(rest)).map_err(|e| {
            // The generator knows only its own keys; the sample keys are valid too.
            let msg = e.message().trim();
            match msg.starts_with("unknown field") {
                true => D::Error::custom(msg.replacen(
                    "expected one of ",
                    "expected one of `n`, `test_n`, `online`, `seed`, ",
                    1,
                )),
                false => D::Error::custom(msg),
            }
        })?;
        Ok(Generated {
            n: s.n,
            test_n: s.test_n,
            online: s.online,
            seed: s.seed,
            generator,
        })
    }
}

/// `kind = "teacher"`: eos-data's [`TeacherConfig`] keys (flat; `classes = true` for
/// labels).
pub type TeacherData = Generated<TeacherConfig>;
/// `kind = "mixture"`: eos-data's [`MixtureConfig`] keys.
pub type MixtureData = Generated<MixtureConfig>;
/// `kind = "sparse_coding"`: eos-data's [`SparseCoding`] keys (`noise_var` default 1/dim).
pub type SparseCodingData = Generated<SparseCoding>;
/// `kind = "random_labels"`: eos-data's [`RandomLabels`] keys.
pub type RandomLabelsData = Generated<RandomLabels>;
/// `kind = "sort"`: sequences of `len` tokens from `vocab` ids, targets the sorted
/// sequence (cross-entropy at every position); eos-data's [`SortTask`] keys.
pub type SortData = Generated<SortTask>;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Doc {
        data: DataConfig,
    }

    /// The resolved `[data]` tables this schema wrote before eos-data owned the
    /// generator keys (from `config.resolved.toml` files of earlier runs): read and
    /// written back unchanged, so `--resume` and the reproductions' run reuse still
    /// match them.
    #[test]
    fn resolved_tables_are_written_back_byte_for_byte() {
        let tables = [
            "[data]\nkind = \"teacher\"\nn = 256\ntest_n = 0\nonline = true\ninput_dim = 16\n\
             hidden = [64]\noutput_dim = 1\nactivation = \"tanh\"\ninput_std = 1.0\n\
             weight_gain = 1.0\nbias_std = 0.0\nnoise_std = 0.0\nclasses = false\n\
             label_noise = 0.0\ntargets = \"one_hot\"\n",
            "[data]\nkind = \"teacher\"\nn = 8\ntest_n = 4\nonline = false\nseed = 3\n\
             input_dim = 2\nhidden = []\noutput_dim = 3\nactivation = \"relu\"\n\
             input_std = 2.0\nweight_gain = 0.5\nbias_std = 0.1\nnoise_std = 0.0\n\
             classes = true\nlabel_noise = 0.25\ntargets = \"signed\"\n",
            "[data]\nkind = \"sparse_coding\"\nn = 300\ntest_n = 2000\nonline = false\n\
             dim = 200\nsignal = 3.0\nnoise_var = 1.0\ntargets = \"signed\"\n",
            "[data]\nkind = \"sparse_coding\"\nn = 30\ntest_n = 0\nonline = false\n\
             dim = 20\nsignal = 3.0\ntargets = \"signed\"\n",
            "[data]\nkind = \"mixture\"\nn = 64\ntest_n = 0\nonline = true\ndim = 20\n\
             num_classes = 2\nseparation = 3.0\nnoise_std = 1.0\ntargets = \"one_hot\"\n",
            "[data]\nkind = \"random_labels\"\nn = 64\ntest_n = 0\nonline = false\n\
             dim = 20\nnum_classes = 2\ninput_std = 1.0\ntargets = \"one_hot\"\n",
            "[data]\nkind = \"sort\"\nn = 64\ntest_n = 8\nonline = false\nlen = 4\nvocab = 5\n",
        ];
        for text in tables {
            let doc: Doc = toml::from_str(text).expect(text);
            assert_eq!(toml::to_string(&doc).expect("serialisable"), text);
        }
    }

    #[test]
    fn defaults_fill_the_generator_keys() {
        let doc: Doc =
            toml::from_str("[data]\nkind = \"teacher\"\nn = 5\ninput_dim = 3\n").expect("valid");
        let DataConfig::Teacher(d) = doc.data else {
            panic!("a teacher: {doc:?}")
        };
        assert_eq!((d.n, d.test_n, d.online, d.seed), (5, 0, false, None));
        assert_eq!(
            d.generator,
            TeacherConfig::mlp(3, vec![], 1, Default::default())
        );
        let doc: Doc =
            toml::from_str("[data]\nkind = \"sparse_coding\"\nn = 5\ndim = 8\n").expect("valid");
        assert_eq!(
            doc.data,
            DataConfig::SparseCoding(Generated {
                n: 5,
                test_n: 0,
                online: false,
                seed: None,
                generator: SparseCoding::with_dim(8),
            })
        );
    }

    #[test]
    fn unknown_and_missing_keys_are_named() {
        let load = |text: &str| -> String {
            let table = crate::config::overrides::parse(text, "f.toml").expect("toml");
            crate::config::overrides::from_table::<Doc>(&table, "f.toml")
                .expect_err(text)
                .to_string()
        };
        let e = load("[data]\nkind = \"teacher\"\nn = 5\ninput_dim = 3\nhiden = [4]\n");
        assert!(
            e.contains("f.toml") && e.contains("unknown field `hiden`"),
            "{e}"
        );
        assert!(e.contains("expected one of `n`, `test_n`, `online`, `seed`, `input_dim`"));
        let e = load("[data]\nkind = \"mixture\"\nn = 5\nclasses = 3\n");
        assert!(e.contains("unknown field `classes`"), "{e}");
        let e = load("[data]\nkind = \"teacher\"\ninput_dim = 3\n");
        assert!(e.contains("missing field `n`"), "{e}");
        let e = load("[data]\nkind = \"sort\"\nn = 5\nlen = 4\n");
        assert!(e.contains("missing field `vocab`"), "{e}");
        let e = load("[data]\nkind = \"random_labels\"\nn = 5\ndim = \"x\"\n");
        assert!(
            e.contains("`data.dim`") && e.contains("expected usize"),
            "{e}"
        );
    }
}
