//! The datasets (or online stream) that `[data]` ([`crate::config::DataConfig`])
//! describes, f64 on the host until the runner casts them once.
//!
//! Generated kinds (teacher, mixture, sparse_coding, random_labels) draw the task
//! (teacher weights, means) from `data.seed` (default `train.seed`) and the samples
//! from seeds derived from it; `online = true` makes a stream that draws a fresh
//! batch at every step, a pure function of (seed, step) (Atanasov et al.'s online
//! SGD, THEORY.md §3), while `n` samples stay fixed for the probes and evaluation.

use std::path::PathBuf;

use crate::error::{Context, Error};
use candle_core::{DType, Device};
use eos_data::{
    class_subset, fashion_mnist_dir, load_fashion_mnist_from, Dataset, GaussianMixture, Generator,
    Split, Standardizer, Stream, Targets, Teacher,
};
use eos_model::rng::derive_seed;
use eos_model::Batch;

use crate::build::streams;
use crate::config::{Config, DataConfig, ImageKeys};

/// A boxed generator (any of the synthetic distributions).
pub type AnyGenerator = Box<dyn Generator>;

/// The data of a run, f64 on the host (cast once by the runner).
pub struct Data {
    pub train: Dataset,
    pub test: Option<Dataset>,
    /// Online SGD: fresh batches from this stream (the train set is the probes'
    /// fixed reference set).
    pub stream: Option<Stream<AnyGenerator>>,
}

impl std::fmt::Debug for Data {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Data")
            .field("train", &self.train.name)
            .field("n", &self.train.len())
            .field("online", &self.stream.is_some())
            .finish()
    }
}

fn data_err(e: eos_data::DataError) -> Error {
    Error::Context {
        context: "data".into(),
        inner: Box::new(e.into()),
    }
}

/// Builds the datasets (or stream) the config describes.
///
/// Image data keep their shape `[n, C, H, W]` when the model is a layer network whose
/// first layer is convolutional (presets cnn and resnet, or `layers` starting with
/// `conv2d`); otherwise they are flat `[n, C·H·W]`.
pub fn build_data(cfg: &Config) -> crate::Result<Data> {
    let seed = cfg.train.seed;
    let image = cfg.model.wants_images();
    let (gen, n, test_n, online, task_seed): (AnyGenerator, _, _, _, _) = match &cfg.data {
        DataConfig::FashionMnist(d) => return image_data(d.keys(), false, image),
        DataConfig::Cifar10(d) => return image_data(d.keys(), true, image),
        DataConfig::File(f) => return file_data(f),
        DataConfig::Sort(d) => {
            let g = eos_data::SortTask::new(d.generator.len, d.generator.vocab)
                .map_err(|e| Error::config("data.len", format!("{e}")))?;
            (Box::new(g), d.n, d.test_n, d.online, d.seed.unwrap_or(seed))
        }
        DataConfig::Teacher(d) => {
            let s = d.seed.unwrap_or(seed);
            let g = Teacher::new(d.generator.clone(), s).map_err(data_err)?;
            (Box::new(g), d.n, d.test_n, d.online, s)
        }
        DataConfig::Mixture(d) => {
            let s = d.seed.unwrap_or(seed);
            let g = GaussianMixture::new(d.generator, s).map_err(data_err)?;
            (Box::new(g), d.n, d.test_n, d.online, s)
        }
        DataConfig::SparseCoding(d) => {
            let g = d.generator;
            (Box::new(g), d.n, d.test_n, d.online, d.seed.unwrap_or(seed))
        }
        DataConfig::RandomLabels(d) => {
            let g = d.generator;
            (Box::new(g), d.n, d.test_n, d.online, d.seed.unwrap_or(seed))
        }
    };
    if n == 0 {
        return Err(Error::config(
            "data.n",
            "got 0; expected ≥ 1 training samples",
        ));
    }
    let train = gen
        .dataset(n, derive_seed(task_seed, streams::DATA_TRAIN))
        .map_err(data_err)?;
    let test = (test_n > 0)
        .then(|| gen.dataset(test_n, derive_seed(task_seed, streams::DATA_TEST)))
        .transpose()
        .map_err(data_err)?;
    let stream = if online {
        let b = cfg
            .train
            .batch_size
            .ok_or_else(|| Error::config("train.batch_size", "needed by online data"))?;
        let s = Stream::new(gen, b, derive_seed(task_seed, streams::DATA_STREAM));
        Some(s.map_err(data_err)?)
    } else {
        None
    };
    Ok(Data {
        train,
        test,
        stream,
    })
}

/// The directory of the CIFAR-10 binary batches: `$EOS_DATA_DIR/cifar-10-batches-bin`.
fn cifar10_dir() -> crate::Result<PathBuf> {
    let base = std::env::var_os("EOS_DATA_DIR").ok_or_else(|| {
        Error::config(
            "data.dir",
            "missing for cifar10 and EOS_DATA_DIR is not set; expected the folder \
             cifar-10-batches-bin of the binary CIFAR-10 archive (eos does not download it)",
        )
    })?;
    Ok(PathBuf::from(base).join("cifar-10-batches-bin"))
}

/// Fashion-MNIST or CIFAR-10: class subset → first n (train) / test_n (test) →
/// standardise with the training statistics (Cohen et al.'s protocol, THEORY.md §1).
fn image_data(d: ImageKeys<'_>, cifar: bool, image: bool) -> crate::Result<Data> {
    let dir = match (d.dir, cifar) {
        (Some(dir), _) => dir.to_path_buf(),
        (None, false) => fashion_mnist_dir().context("data (fashion_mnist)")?,
        (None, true) => cifar10_dir()?,
    };
    let load = |split| -> crate::Result<Dataset> {
        // One-hot first: the requested encoding may only fit the class subset (±1).
        let ds = if cifar {
            let files = eos_data::cifar10_files(&dir, split);
            eos_data::load_cifar10(&files, Targets::OneHot, "cifar10")
        } else {
            load_fashion_mnist_from(&dir, split, Targets::OneHot)
        }
        .map_err(|e| Error::config("data.dir", format!("{e}")))?;
        match d.classes {
            Some(c) => class_subset(&ds, c, d.targets)
                .map_err(|e| Error::config("data.classes", format!("{e}"))),
            None if d.targets == Targets::OneHot => Ok(ds),
            None => ds
                .with_targets(d.targets)
                .map_err(|e| Error::config("data.targets", format!("{e}"))),
        }
    };
    let mut train = load(Split::Train)?;
    if let Some(n) = d.n {
        train = train
            .first_n(n)
            .map_err(|e| Error::config("data.n", format!("{e}")))?;
    }
    let mut test = if d.test_n > 0 {
        let t = load(Split::Test)?;
        Some(
            t.first_n(d.test_n)
                .map_err(|e| Error::config("data.test_n", format!("{e}")))?,
        )
    } else {
        None
    };
    if d.standardize {
        let s = Standardizer::fit(&train).map_err(data_err)?;
        train = s.apply(&train).map_err(data_err)?;
        test = test.map(|t| s.apply(&t)).transpose().map_err(data_err)?;
    }
    if image {
        // Standardised per pixel on the flat vectors, then shaped NCHW.
        let chw = if cifar {
            eos_data::CIFAR10_CHW
        } else {
            eos_data::FASHION_MNIST_CHW
        };
        let shape =
            |ds| eos_data::shape_images(ds, eos_data::InputShape::Image, chw).map_err(data_err);
        train = shape(train)?;
        test = test.map(shape).transpose()?;
    }
    Ok(Data {
        train,
        test,
        stream: None,
    })
}

/// `kind = "file"`: the `x` and `y` of a file, as stored (no test set).
fn file_data(f: &eos_data::FileConfig) -> crate::Result<Data> {
    let train =
        eos_data::load_file_dataset(f).map_err(|e| Error::config("data.path", format!("{e}")))?;
    Ok(Data {
        train,
        test: None,
        stream: None,
    })
}

/// A dataset as a [`Batch`] in the run's dtype, on its device.
pub fn to_batch(ds: &Dataset, dtype: DType, device: &Device) -> crate::Result<Batch> {
    let d = ds.to(dtype, device).map_err(data_err)?;
    Ok(Batch::new(d.x, d.y))
}
