//! eos-train: the training engine of eos as a library.
//!
//! - [`config`]: the TOML schema of `eos train`, `--set` overrides, the resolved config;
//! - [`data`] and [`build`]: the data set, model, optimizer, schedule and sampler of a config;
//! - [`trainer`]: the training loop ([`train`]), resumable bit for bit;
//! - [`probes`]: the curvature measurements taken during training;
//! - [`run_dir`], [`metrics`], [`checkpoint`]: the run directory (`meta.json` with its
//!   [`Status`], `metrics.jsonl` writer and reader, checkpoints);
//! - [`probe`] and [`example`]: the library side of `eos probe` and `eos example`;
//! - [`stats`]: small statistics shared by every crate above this one (the median).

pub mod build;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod error;
pub mod example;
pub mod metrics;
pub mod probe;
pub mod probes;
pub mod run_dir;
pub mod stats;
pub mod trainer;

pub use config::Config;
pub use error::{Error, Result};
pub use run_dir::Status;
pub use trainer::{interrupt, train, Summary, TrainArgs};
