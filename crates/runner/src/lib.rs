//! eos-runner: the `eos` command-line instrument.
//!
//! - [`probe`]: every curvature measurement on one saved model + batch;
//! - [`bench`]: timings of the core operations on the standard suites.

pub mod bench;
pub mod example;
pub mod probe;
