//! `eos-fuzz`: fuzzing of eos's file readers on stable Rust, without libFuzzer.
//!
//! Each target ([`targets::TARGETS`]) reads one file format. Inputs are valid files
//! generated in code ([`corpus`]), mutated at the structure and byte level
//! ([`mutate`]), all from a seed; the [`driver`] checks that every input gives an error
//! or a valid result, never a panic, a hang or an allocation beyond a bound
//! (counted by [`alloc`]). docs/fuzzing.md records the full runs.

pub mod alloc;
pub mod corpus;
pub mod driver;
pub mod mutate;
pub mod net_corpus;
pub mod targets;

pub use driver::{run_target, Config, Report};
pub use targets::{target, Outcome, Target, TARGETS};
