//! eos-train: the training engine of eos as a library.
//!
//! - [`config`]: the TOML schema of `eos train`, `--set` overrides, the resolved config;
//! - [`data`] and [`build`]: the data set, model, optimizer, schedule and sampler of a config;
//! - [`model`]: the model a run trains (an MLP or a layer network) behind one `Model`;
//! - [`trainer`]: the training loop ([`train`]), resumable bit for bit;
//! - [`probes`]: the curvature measurements taken during training ([`preact`]: the
//!   preactivation norms);
//! - [`run_dir`], [`metrics`], [`checkpoint`]: the run directory (`meta.json` with its
//!   [`Status`], `metrics.jsonl` writer and reader, checkpoints);
//! - [`probe`] and [`example`]: the library side of `eos probe` and `eos example`;
//! - [`stats`]: small statistics shared by every crate above this one (the median);
//! - [`error`]: the typed [`Error`] whose messages name the config key or the file.
//!
//! Train a config for a few steps and read the sharpness back:
//!
//! ```
//! use eos_train::{metrics::read::Metrics, train, Status, TrainArgs};
//!
//! let dir = std::env::temp_dir().join(format!("eos-train-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let config = dir.join("tiny.toml");
//! std::fs::write(&config, r#"
//!     [model]
//!     widths = [4, 16, 1]
//!     [data]
//!     kind = "teacher"
//!     n = 64
//!     input_dim = 4
//!     [optim]
//!     lr = 0.05
//!     [train]
//!     steps = 10
//!     [probes.sharpness]
//!     every = 5
//! "#)?;
//! let run = dir.join("run");
//! let s = train(&TrainArgs { config, out: Some(run.clone()), device: "cpu".into(), ..Default::default() })?;
//! assert_eq!(s.status, Status::Finished);
//! let sharpness = Metrics::read(&run.join("metrics.jsonl"))?.scalar("sharpness");
//! assert_eq!(sharpness.len(), 2); // steps 0 and 5
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod build;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod effective;
pub mod ensemble;
pub mod error;
pub mod example;
pub mod interchange;
pub mod lock;
pub mod memory;
pub mod metrics;
pub mod model;
pub mod network;
pub mod preact;
pub mod probe;
pub mod probes;
pub mod run_dir;
pub mod stats;
#[cfg(feature = "testing")]
pub mod testing;
pub mod trainer;

pub use config::Config;
pub use error::{Error, Result};
pub use run_dir::Status;
pub use trainer::{interrupt, train, train_with, Summary, TrainArgs, Trainer};
