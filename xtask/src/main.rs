//! Build orchestration: `cargo xtask <command>` (alias in `.cargo/config.toml`).
//!
//! - `ci`: fmt check, clippy with `-D warnings`, the whole test suite;
//! - `data`: installs/locates the offline datasets (Debian `dataset-fashion-mnist`);
//! - `bench [--suite S] [--peer]`: `eos bench` in release, optionally beside the JAX peer;
//! - `repro <name|all> [--full]`: the seed papers' reproductions (`eos repro`, release);
//! - `cuda-check`: installs a CUDA toolkit from PyPI's NVIDIA wheels into
//!   `target/cuda-venv` and runs `cargo check --workspace --all-targets --features cuda`
//!   (target dir `target/cuda-check`).
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
        Some("repro") => repro(&rest),
        _ => {
            eprintln!(
                "usage: cargo xtask <command>\n\n  ci           fmt check + clippy -D warnings + all tests\n  \
                 data         install/locate offline datasets (Fashion-MNIST)\n  \
                 bench [--suite S] [--peer]   eos bench (release), optionally with the JAX peer\n  \
                 cuda-check   cargo check --features cuda with a CUDA toolkit from PyPI\n  \
                 repro <name|all> [--full]   reproduce the seed papers (docs/reproductions.md)"
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
    run(cargo().args(["test", "--workspace"]))?;
    // The reduced reproductions: each checks a paper's headline result in numbers.
    repro(&["all"])
}

/// `cargo xtask repro <name…|all> [--full] [--fresh]`: builds `eos` in release and
/// runs `eos repro`; with `--full`, the figures also go to `docs/figures/`.
fn repro(args: &[&str]) -> Result<()> {
    if args.iter().all(|a| a.starts_with("--")) {
        bail!(
            "usage: cargo xtask repro <cohen-eos|catapult|richness-sweep|\
             threshold-neurons|beyond-eos|all>… [--full] [--fresh]"
        );
    }
    run(cargo().args(["build", "--release", "-p", "eos-runner"]))?;
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

/// PyPI wheels that make up the toolkit `cuda-check` needs. Since CUDA 13 they all
/// install into one toolkit-like tree, `site-packages/nvidia/cu13/{bin,include,lib,nvvm}`
/// (nvcc's own `nvcc.profile` points it at `include/` and `include/cccl`):
/// - nvcc (pulls in nvidia-nvvm for cicc/libdevice and nvidia-cuda-crt for crt headers);
/// - the runtime: `cuda_runtime.h`, `cuda.h`, `cuda_fp16.h`/`cuda_bf16.h`/`cuda_fp8.h`;
/// - CCCL: thrust, cub and `cuda/std/…`, used by candle-kernels' reduce and MoE kernels.
///
/// cuBLAS and cuRAND are not needed: cudarc's bindings are Rust, and `cargo check`
/// never links, so their (large) wheels are left out.
const CUDA_WHEELS: [&str; 3] = [
    "nvidia-cuda-nvcc==13.*",
    "nvidia-cuda-runtime==13.*",
    "nvidia-cuda-cccl==13.*",
];

/// cudarc's binding set (`CUDARC_CUDA_VERSION`, `{major}0{minor}0`) when the caller does
/// not choose one. cudarc accepts only versions it knows (0.19.10: up to 13.4) and panics
/// on others, so this is not derived from the wheels' nvcc (13.5 at the time of writing):
/// 13.0's API is the baseline every CUDA 13 driver provides.
const DEFAULT_CUDARC_CUDA_VERSION: &str = "13000";
/// Kernels are built for the H100s/H200s this project is lent (sm_90a).
const DEFAULT_CUDA_COMPUTE_CAP: &str = "90";

/// `cargo check --workspace --features cuda` against a CUDA toolkit from PyPI's NVIDIA
/// wheels, no GPU and no system toolkit needed.
///
/// 1. a venv in `target/cuda-venv` (skipped when present);
/// 2. `pip install` of [`CUDA_WHEELS`] (skipped when the stamp file records the same list
///    and nvcc is there);
/// 3. `cargo check` with its own target dir, `target/cuda-check`, so the CUDA build (whose
///    candle-kernels build script runs nvcc on every kernel) never invalidates `target/debug`.
///
/// Every `cargo check --features cuda` needs the same environment; it is printed so the
/// check can be re-run by hand.
fn cuda_check() -> Result<()> {
    let t0 = std::time::Instant::now();
    let target = root().join("target");
    let venv = target.join("cuda-venv");
    let py = venv.join("bin/python");
    let pip = venv.join("bin/pip");

    eprintln!("cuda-check [1/3] Python venv {}", venv.display());
    if py.exists() {
        eprintln!("  present, reused");
    } else {
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        let made = Command::new(&python)
            .args(["-m", "venv"])
            .arg(&venv)
            .status();
        match made {
            Ok(s) if s.success() => {}
            Ok(s) => bail!(
                "`{python} -m venv {}` failed ({s}): the venv module (Debian: python3-venv) is needed",
                venv.display()
            ),
            Err(e) => bail!(
                "cannot run `{python}` ({e}): cuda-check needs Python 3 with venv and pip \
                 (Debian: apt-get install python3-venv python3-pip; or set PYTHON=…)"
            ),
        }
    }
    if !pip.exists() {
        bail!(
            "no pip in {} (the venv was made without ensurepip: Debian's python3-venv provides it); \
             remove {} and run again",
            venv.display(),
            venv.display()
        );
    }

    eprintln!(
        "cuda-check [2/3] CUDA 13 toolkit from PyPI: {}",
        CUDA_WHEELS.join(" ")
    );
    let stamp = venv.join(".eos-cuda-wheels");
    let want = CUDA_WHEELS.join("\n");
    let have = std::fs::read_to_string(&stamp).unwrap_or_default();
    let mut cuda_root = find_cuda_root(&py);
    if have.trim() == want && cuda_root.is_some() {
        eprintln!(
            "  installed, pip skipped (remove {} to reinstall)",
            stamp.display()
        );
    } else {
        let t = std::time::Instant::now();
        run(Command::new(&pip)
            .args([
                "install",
                "--progress-bar",
                "off",
                "--disable-pip-version-check",
            ])
            .args(CUDA_WHEELS))
        .context("pip could not install the NVIDIA wheels (PyPI unreachable?)")?;
        eprintln!("  pip: {:.0?}", t.elapsed());
        cuda_root = find_cuda_root(&py);
        if cuda_root.is_some() {
            std::fs::write(&stamp, &want)?;
        }
    }
    let cuda_root = cuda_root.with_context(|| {
        format!(
            "no bin/nvcc under {}'s site-packages/nvidia/{{cu13,cuda_nvcc}} after pip install",
            venv.display()
        )
    })?;
    let nvcc = cuda_root.join("bin/nvcc");
    let version = Command::new(&nvcc)
        .arg("--version")
        .output()
        .with_context(|| format!("cannot run {}", nvcc.display()))?;
    if !version.status.success() {
        bail!(
            "{} --version failed: {}",
            nvcc.display(),
            String::from_utf8_lossy(&version.stderr)
        );
    }
    let release = String::from_utf8_lossy(&version.stdout)
        .lines()
        .find(|l| l.contains("release"))
        .unwrap_or("")
        .trim()
        .to_string();
    eprintln!("  toolkit {} ({release})", cuda_root.display());

    let env_or = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_string());
    let cudarc_version = env_or("CUDARC_CUDA_VERSION", DEFAULT_CUDARC_CUDA_VERSION);
    let compute_cap = env_or("CUDA_COMPUTE_CAP", DEFAULT_CUDA_COMPUTE_CAP);
    let check_target = target.join("cuda-check");
    let path = format!(
        "{}:{}",
        cuda_root.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let root_s = cuda_root.display().to_string();
    let envs: Vec<(&str, String)> = vec![
        // cudarc: the binding set; it would otherwise parse `nvcc --version` and panic on
        // a release it does not know. The root variables only add link-search paths.
        ("CUDARC_CUDA_VERSION", cudarc_version),
        ("CUDA_HOME", root_s.clone()),
        ("CUDA_PATH", root_s.clone()),
        ("CUDA_ROOT", root_s.clone()),
        ("CUDA_TOOLKIT_ROOT_DIR", root_s),
        // candle-kernels (cudaforge): nvcc from $NVCC, its arch from CUDA_COMPUTE_CAP
        // (no nvidia-smi here).
        ("NVCC", nvcc.display().to_string()),
        ("CUDA_COMPUTE_CAP", compute_cap),
        ("CARGO_TARGET_DIR", check_target.display().to_string()),
    ];
    eprintln!("cuda-check [3/3] cargo check --workspace --features cuda, with");
    for (k, v) in &envs {
        eprintln!("  {k}={v}");
    }
    eprintln!("  PATH={}:$PATH", cuda_root.join("bin").display());
    let t = std::time::Instant::now();
    let mut cmd = cargo();
    cmd.args([
        "check",
        "--workspace",
        "--all-targets",
        "--features",
        "cuda",
    ])
    .env("PATH", path);
    for (k, v) in &envs {
        cmd.env(k, v);
    }
    run(&mut cmd)?;
    eprintln!(
        "cuda-check: ok (cargo check {:.0?}, total {:.0?})",
        t.elapsed(),
        t0.elapsed()
    );
    Ok(())
}

/// The toolkit root (the folder with `bin/nvcc`) inside the venv's `site-packages/nvidia`:
/// `cu13/` for CUDA 13 wheels, `cuda_nvcc/` for CUDA 12's.
fn find_cuda_root(py: &Path) -> Option<PathBuf> {
    if !py.exists() {
        return None;
    }
    let out = Command::new(py)
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        ])
        .output()
        .ok()?;
    let nv = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim()).join("nvidia");
    ["cu13", "cuda_nvcc"]
        .iter()
        .map(|sub| nv.join(sub))
        .find(|d| d.join("bin/nvcc").exists())
}
