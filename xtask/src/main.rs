//! Build orchestration: `cargo xtask <command>` (alias in `.cargo/config.toml`).
//!
//! - `ci`: the layout checks, fmt check, clippy with `-D warnings`, `cargo doc` with
//!   `-D warnings`, the whole test suite, the reduced reproductions;
//! - `layout`: no module cycle, a `//!` header in every file, every `src/` folder
//!   named in docs/ARCHITECTURE.md, no function over 80 lines ([`layout`], [`fnlen`]);
//! - `doc`: `cargo doc --workspace --no-deps` with `RUSTDOCFLAGS=-D warnings`;
//! - `data`: installs/locates the offline datasets (Debian `dataset-fashion-mnist`);
//! - `bench [--suite S] [--peer]`: `eos bench` in release, optionally beside the JAX peer;
//! - `repro <name|all> [--full]`: the seed papers' reproductions (`eos repro`, release);
//! - `cuda-check [--build]`: installs a CUDA toolkit from PyPI's NVIDIA wheels into
//!   `target/cuda-venv` and runs `cargo check --workspace --all-targets --features cuda`
//!   (target dir `target/cuda-check`); `--build` also builds the `eos` binary with CUDA
//!   and runs `eos probe --device auto|cuda` on it.
//!
//! No math lives here: xtask only runs cargo, the eos binary and installers.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

mod cuda;
mod fnlen;
mod layout;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace root")
        .to_path_buf()
}

fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("$ {cmd:?}");
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
    match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("layout") => layout::check(&root()),
        Some("doc") => doc(),
        Some("data") => data(),
        Some("bench") => bench(&rest),
        Some("cuda-check") => cuda::cuda_check(&rest),
        Some("repro") => repro(&rest),
        Some("fuzz") => fuzz(&rest),
        _ => {
            eprintln!(
                "usage: cargo xtask <command>\n\n  ci           layout + fmt check + clippy -D warnings + docs + all tests\n  \
                 layout       no module cycle, //! headers, ARCHITECTURE.md names every folder, fns <= 80 lines\n  \
                 doc          cargo doc --workspace --no-deps with RUSTDOCFLAGS=-D warnings\n  \
                 data         install/locate offline datasets (Fashion-MNIST)\n  \
                 bench [--suite S] [--peer]   eos bench (release), optionally with the JAX peer\n  \
                 cuda-check [--build]   cargo check --features cuda with a CUDA toolkit from PyPI\n               \
                 (--build: also cargo build the eos binary and run eos probe --device auto|cuda)\n  \
                 repro <name|all> [--full]   reproduce the seed papers (docs/reproductions.md)"
            );
            bail!("unknown or missing command");
        }
    }
}

fn ci() -> Result<()> {
    // The real-data tests and the reduced reproductions read Fashion-MNIST: install
    // or locate it first, so that the README's test command works on a fresh machine.
    data()?;
    layout::check(&root())?;
    run(cargo().args(["fmt", "--all", "--check"]))?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    doc()?;
    run(cargo().args(["test", "--workspace"]))?;
    fuzz(&["all", "--iters", "20000", "--max-seconds", "8"])?;
    // The reduced reproductions: each checks a paper's headline result in numbers.
    repro(&["all"])
}

/// `cargo xtask fuzz [target|all] [--iters N] [--seed S] [--max-seconds M] …`: builds
/// `eos-fuzz` in release and runs it (default: every target, 100 000 inputs each);
/// see docs/fuzzing.md. CI runs 20 000 inputs per target, at most 8 s each.
fn fuzz(args: &[&str]) -> Result<()> {
    run(cargo().args(["build", "--release", "-p", "eos-fuzz"]))?;
    let mut cmd = Command::new(root().join("target/release/eos-fuzz"));
    cmd.current_dir(root());
    if args.first().is_none_or(|a| a.starts_with("--")) {
        cmd.arg("all");
    }
    if !args.contains(&"--iters") {
        cmd.args(["--iters", "100000"]);
    }
    run(cmd.args(args))
}

/// `cargo xtask doc`: the API docs of every crate, with rustdoc warnings (broken
/// intra-doc links, bare URLs, …) as errors.
fn doc() -> Result<()> {
    run(cargo()
        .args(["doc", "--workspace", "--no-deps"])
        .env("RUSTDOCFLAGS", "-D warnings"))
}

/// `cargo xtask repro <name…|all> [--full] [--fresh]`: builds `eos` in release and
/// runs `eos repro`; with `--full`, the figures also go to `docs/figures/`.
fn repro(args: &[&str]) -> Result<()> {
    if args.iter().all(|a| a.starts_with("--")) {
        bail!(
            "usage: cargo xtask repro <cohen-eos|catapult|richness-sweep|\
             conservative-sharpening|threshold-neurons|beyond-eos|nup-eoc|all>… [--full] [--fresh]"
        );
    }
    data()?;
    run(cargo().args(["build", "--release", "-p", "eos-cli"]))?;
    let exe = root().join("target/release/eos");
    let mut cmd = Command::new(exe);
    cmd.current_dir(root()).arg("repro").args(args);
    if args.contains(&"--full") {
        cmd.args(["--figures", "docs/figures"]);
    }
    run(&mut cmd)
}

const FASHION_DIRS: [&str; 2] = [
    "/usr/share/dataset-fashion-mnist",
    "/usr/share/datasets/fashion-mnist",
];

/// `cargo xtask data`: locates Fashion-MNIST (`$EOS_DATA_DIR/fashion-mnist` or the
/// Debian package's folder) or installs Debian's `dataset-fashion-mnist`.
fn data() -> Result<()> {
    let have = |d: &Path| {
        d.join("train-images-idx3-ubyte.gz").exists() || d.join("train-images-idx3-ubyte").exists()
    };
    let mut dirs: Vec<PathBuf> = FASHION_DIRS.iter().map(PathBuf::from).collect();
    if let Some(root) = std::env::var_os("EOS_DATA_DIR") {
        dirs.insert(0, PathBuf::from(root).join("fashion-mnist"));
    }
    if let Some(d) = dirs.iter().find(|d| have(d)) {
        eprintln!("Fashion-MNIST found in {}", d.display());
        return Ok(());
    }
    eprintln!("installing Fashion-MNIST from Debian (dataset-fashion-mnist)");
    let apt = |args: &[&str]| {
        run(Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive"))
    };
    apt(&["update", "-qq"])
        .and_then(|_| apt(&["install", "-y", "-qq", "dataset-fashion-mnist"]))
        .context(
            "could not install Debian's dataset-fashion-mnist (needs root and apt); install \
             it by hand or put the four IDX files in $EOS_DATA_DIR/fashion-mnist",
        )?;
    if !dirs.iter().any(|d| have(d)) {
        bail!("dataset-fashion-mnist installed, but its files are in none of {dirs:?}");
    }
    Ok(())
}

fn bench(rest: &[&str]) -> Result<()> {
    let mut suite = "small".to_string();
    let mut peer = false;
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        match *a {
            "--suite" => suite = it.next().context("--suite needs a value")?.to_string(),
            "--peer" => peer = true,
            other => bail!("bench: unknown argument `{other}`"),
        }
    }
    run(cargo().args(["build", "--release", "-p", "eos-cli"]))?;
    let eos = root().join("target/release/eos");
    run(Command::new("taskset")
        .args(["-c", "0,1"])
        .arg(&eos)
        .args(["bench", "--suite", &suite, "--json"]))?;
    if peer {
        let venv = root().join("target/jax-venv");
        let py = venv.join("bin/python");
        if !py.exists() {
            run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
            run(Command::new(venv.join("bin/pip")).args(["install", "-q", "jax[cpu]", "numpy"]))?;
        }
        let script = root().join("../shared/peers/jax_bench.py");
        run(Command::new("taskset")
            .args(["-c", "0,1"])
            .arg(&py)
            .arg(script)
            .args(["--suites", &suite]))?;
    }
    Ok(())
}
