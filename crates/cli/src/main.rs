//! The `eos` command line: parses the arguments ([`args`]), sets up the thread count
//! and the tracing subscriber, and runs one subcommand ([`commands`]). Errors are
//! `anyhow` here and only here: the library crates return typed errors.

// The clap help texts are doc comments written for the terminal (`DIR/<name>.png`).
#![allow(rustdoc::invalid_html_tags)]

mod args;
mod bench;
mod commands;
mod progress;

use clap::Parser;

fn main() {
    // Before any thread starts: decide the thread count once (eos_model::threads).
    eos_model::threads::init();
    tracing_subscriber::fmt()
        // Warnings (a stale lock taken over, a corrupt metrics line) show by default.
        .with_env_filter(
            tracing_subscriber::EnvFilter::builder()
                .with_default_directive(tracing_subscriber::filter::LevelFilter::WARN.into())
                .from_env_lossy(),
        )
        .with_writer(std::io::stderr)
        .init();
    match commands::run(args::Cli::parse().cmd) {
        Ok(0) => {}
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
    }
}
