//! Criterion benches of eos (see `benches/core.rs`); the shapes are the suites of
//! `eos bench` (`eos_runner::bench`). Run with `cargo bench -p eos-benches`.
