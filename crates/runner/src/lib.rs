//! eos-runner: the `eos` command-line instrument.
//!
//! - [`probe`]: every curvature measurement on one saved model + batch;
//! - [`bench`](mod@bench): timings of the core operations on the standard suites;
//! - [`sweep`]: grids of `eos train` runs gathered into tables with η* per group;
//! - [`report`]: PNG/SVG plots of runs and sweeps;
//! - [`repro`]: the seed papers' headline results, run, checked and plotted.

pub mod bench;
pub mod config;
pub mod example;
pub mod probe;
pub mod report;
pub mod repro;
pub mod sweep;
pub mod train;
