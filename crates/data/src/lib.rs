//! `eos-data`: datasets as candle tensors for edge-of-stability experiments.
//!
//! A [`Dataset`] is `x [n, d]`, `y [n, k]` — or any `[n, …]` (images `[n, C, H, W]`,
//! token ids `[n, T]`, per-position targets `[n, T, V]`) — in f64 on the CPU (the
//! runner casts once with [`Dataset::to`]), plus optional class labels. It comes from
//!
//! - **synthetic generators** ([`Generator`]): teacher networks ([`Teacher`], linear or
//!   MLP), Gaussian mixtures ([`GaussianMixture`]), the sparse-coding model of Ahn et
//!   al. ([`SparseCoding`]), random labels ([`RandomLabels`]); as fixed datasets or as
//!   online [`Stream`]s;
//! - **files**: IDX ([`idx`], MNIST / Fashion-MNIST, gzip or plain), CIFAR-10 binary
//!   batches ([`cifar`]), `.npy` ([`npy`]), safetensors ([`tensors_file`]); every error
//!   names the file and what was expected ([`DataError`]);
//! - **Fashion-MNIST offline** ([`fashion_mnist`]), found in `$EOS_DATA_DIR` or where
//!   the Debian package `dataset-fashion-mnist` installs it.
//!
//! - **the `file` kind** ([`file`](mod@file)): `x`, `y` of a safetensors / `.npz` / `.npy`-pair
//!   file with `x`'s full shape kept (images, token ids), for networks beyond the MLP;
//! - **the sorting task** ([`sort`]): token ids `x [n, T]`, one-hot sorted `y [n, T, V]`.
//!
//! Image files can keep their shape `[n, C, H, W]` ([`InputShape`], [`shape`]).
//!
//! Then [`transforms`] (standardisation with training statistics, class subsets, label
//! noise, flattening), target encodings ([`Targets`]) and seeded minibatch
//! [`Sampler`]s. All randomness is derived from `(seed, purpose, index)`
//! ([`eos_model::rng::derived_rng`]), so
//! every batch is reproducible and a resumed run draws what the original would have.
//!
//! A seeded Gaussian-mixture dataset and the minibatches of two SGD steps (the same
//! seed gives the same data and the same batches on any machine):
//!
//! ```
//! use eos_data::{GaussianMixture, Generator, MixtureConfig, Sampler, Sampling};
//!
//! let mixture = GaussianMixture::new(MixtureConfig { dim: 4, num_classes: 3, ..Default::default() }, 7)?;
//! let data = mixture.dataset(100, 7)?;
//! assert_eq!((data.len(), data.input_dim(), data.target_dim()), (100, 4, 3));
//! let sampler = Sampler::new(data.len(), Sampling::WithReplacement { batch_size: 8 }, 7)?;
//! let batch = data.subset(&sampler.batch(0))?;
//! assert_eq!(batch.x.dims(), &[8, 4]);
//! assert_eq!(sampler.batch(1), Sampler::new(100, Sampling::WithReplacement { batch_size: 8 }, 7)?.batch(1));
//! assert_eq!(data.x_vec()?, mixture.dataset(100, 7)?.x_vec()?);
//! # Ok::<(), eos_data::DataError>(())
//! ```

pub mod arrays;
pub mod cifar;
pub mod dataset;
pub mod error;
pub mod fashion_mnist;
pub mod file;
pub mod generator;
pub mod idx;
pub mod mixture;
pub mod npy;
pub mod npz;
pub mod random_labels;
pub mod read;
pub mod sampler;
pub mod shape;
pub mod sort;
pub mod sparse_coding;
pub mod stream;
pub mod targets;
pub mod teacher;
pub mod tensors_file;
pub mod transforms;

#[cfg(test)]
mod testing;

pub use cifar::{cifar10_files, load_cifar10, load_cifar10_shaped, CIFAR10_CHW, CIFAR10_CLASSES};
pub use dataset::{Dataset, Split};
pub use error::{DataError, Result};
pub use fashion_mnist::{
    fashion_mnist_dir, load_fashion_mnist, load_fashion_mnist_from, load_fashion_mnist_from_shaped,
    load_fashion_mnist_shaped, FASHION_MNIST_CHW,
};
pub use file::{load_file_dataset, FileConfig, FileFormat};
pub use generator::Generator;
pub use idx::load_idx;
pub use mixture::{GaussianMixture, MixtureConfig};
pub use npy::{load_npy_dataset, read_npy, write_npy_f64};
pub use npz::{load_npz_dataset, read_npz};
pub use random_labels::RandomLabels;
pub use sampler::{Sampler, Sampling};
pub use shape::{shape_images, InputShape};
pub use sort::{SortConfig, SortTask};
pub use sparse_coding::{SparseCoding, SparseCodingKeys};
pub use stream::Stream;
pub use targets::{one_hot, Targets};
pub use teacher::{Teacher, TeacherActivation, TeacherConfig, TeacherKeys, TeacherOutput};
pub use tensors_file::{load_safetensors_dataset, load_safetensors_named};
pub use transforms::{class_subset, flatten, label_noise, standardize, Standardizer};
