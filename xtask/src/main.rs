//! Build orchestration: `cargo xtask <command>` (alias in `.cargo/config.toml`).
//!
//! - `ci`: fmt check, clippy with `-D warnings`, the whole test suite;
//! - `data`: installs/locates the offline datasets (Debian `dataset-fashion-mnist`);
//! - `bench [--suite S] [--peer]`: `eos bench` in release, optionally beside the JAX peer;
//! - `cuda-check`: installs a CUDA toolkit from PyPI's NVIDIA wheels into
//!   `target/cuda-venv` and runs `cargo check --workspace --features cuda`.
//!
//! No math lives here: xtask only runs cargo, the eos binary and installers.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

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
        Some("data") => data(),
        Some("bench") => bench(&rest),
        Some("cuda-check") => cuda_check(),
        _ => {
            eprintln!(
                "usage: cargo xtask <command>\n\n  ci           fmt check + clippy -D warnings + all tests\n  \
                 data         install/locate offline datasets (Fashion-MNIST)\n  \
                 bench [--suite S] [--peer]   eos bench (release), optionally with the JAX peer\n  \
                 cuda-check   cargo check --features cuda with a CUDA toolkit from PyPI"
            );
            bail!("unknown or missing command");
        }
    }
}

fn ci() -> Result<()> {
    run(cargo().args(["fmt", "--all", "--check"]))?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    run(cargo().args(["test", "--workspace"]))
}

const FASHION_DIRS: [&str; 2] = [
    "/usr/share/dataset-fashion-mnist",
    "/usr/share/datasets/fashion-mnist",
];

fn data() -> Result<()> {
    let have = |d: &str| {
        Path::new(d).join("train-images-idx3-ubyte.gz").exists()
            || Path::new(d).join("train-images-idx3-ubyte").exists()
    };
    if FASHION_DIRS.iter().any(|d| have(d)) {
        eprintln!("Fashion-MNIST is installed");
    } else {
        eprintln!("installing Fashion-MNIST from Debian (dataset-fashion-mnist)");
        run(Command::new("apt-get").arg("update").arg("-qq"))?;
        run(Command::new("apt-get").args(["install", "-y", "-qq", "dataset-fashion-mnist"]))?;
    }
    let out = Command::new("dpkg")
        .args(["-L", "dataset-fashion-mnist"])
        .output()?;
    for line in String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("ubyte"))
    {
        println!("{line}");
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
    run(cargo().args(["build", "--release", "-p", "eos-runner"]))?;
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

fn cuda_check() -> Result<()> {
    let venv = root().join("target/cuda-venv");
    let py = venv.join("bin/python");
    if !py.exists() {
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    }
    run(Command::new(venv.join("bin/pip")).args([
        "install",
        "-q",
        "nvidia-cuda-nvcc==13.*",
        "nvidia-cuda-runtime==13.*",
        "nvidia-cublas==13.*",
        "nvidia-curand==13.*",
    ]))?;
    // The wheels put nvcc, headers and libraries under site-packages/nvidia/…
    let out = Command::new(&py)
        .args([
            "-c",
            "import nvidia, os; print(os.path.dirname(nvidia.__path__[0]) + '/nvidia')",
        ])
        .output()?;
    let nv = PathBuf::from(String::from_utf8(out.stdout)?.trim());
    let cuda_root =
        find_cuda_root(&nv).with_context(|| format!("no nvcc under {}", nv.display()))?;
    let bin = cuda_root.join("bin");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    run(cargo()
        .args(["check", "--workspace", "--features", "eos-runner/cuda"])
        .env("PATH", path)
        .env("CUDA_ROOT", &cuda_root)
        .env("CUDA_PATH", &cuda_root)
        .env("CUDA_TOOLKIT_ROOT_DIR", &cuda_root)
        .env("CUDARC_CUDA_VERSION", "13000")
        .env("CUDA_COMPUTE_CAP", "90"))
}

fn find_cuda_root(nv: &Path) -> Option<PathBuf> {
    for sub in ["cu13", "cuda_nvcc", ""] {
        let d = nv.join(sub);
        if d.join("bin/nvcc").exists() {
            return Some(d);
        }
    }
    None
}
