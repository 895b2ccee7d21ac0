//! Build orchestration: `cargo xtask <command>` (alias in `.cargo/config.toml`).
//!
//! - `ci`: the layout checks, fmt check, clippy with `-D warnings`, `cargo doc` with
//!   `-D warnings`, the whole test suite, the reduced reproductions;
//! - `layout`: no module cycle, a `//!` header in every file, every `src/` folder
//!   named in docs/ARCHITECTURE.md ([`layout`]);
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
use std::time::Instant;

use anyhow::{bail, Context, Result};

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
        Some("cuda-check") => cuda_check(&rest),
        Some("repro") => repro(&rest),
        Some("fuzz") => fuzz(&rest),
        _ => {
            eprintln!(
                "usage: cargo xtask <command>\n\n  ci           layout + fmt check + clippy -D warnings + docs + all tests\n  \
                 layout       no module cycle, //! headers, ARCHITECTURE.md names every folder\n  \
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
             conservative-sharpening|threshold-neurons|beyond-eos|all>… [--full] [--fresh]"
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

/// PyPI wheels for `cuda-check`. Since CUDA 13 they all install into one toolkit-like
/// tree, `site-packages/nvidia/cu13/{bin,include,lib,nvvm}` (nvcc's own `nvcc.profile`
/// points it at `include/` and `include/cccl`):
/// - nvcc (pulls in nvidia-nvvm for cicc/libdevice and nvidia-cuda-crt for crt headers);
/// - the runtime: `cuda.h`, `cuda_runtime.h`, `cuda_fp16.h`/`cuda_bf16.h`/`cuda_fp8.h`;
/// - CCCL: thrust, cub and `cuda/std/…`, used by candle-kernels' reduce and MoE kernels.
///
/// That is all `cargo check` reads: candle-kernels' build script compiles its kernels with
/// nvcc (PTX, and a static MoE library through the host C++ compiler); cudarc's bindings
/// are Rust and `cargo check` never links, so no cuBLAS/cuRAND header or library is used.
const CHECK_WHEELS: [&str; 3] = [
    "nvidia-cuda-nvcc==13.*",
    "nvidia-cuda-runtime==13.*",
    "nvidia-cuda-cccl==13.*",
];

/// Added by `cuda-check --build` (about 580 MB of wheels): the libraries a `cuda` binary
/// links. candle 0.11 uses cudarc's `dynamic-linking` mode (`-lcuda -lnvrtc -lcurand
/// -lcublas -lcublasLt`) and candle-kernels adds `-lcudart`. cuRAND's versions are 10.x
/// in CUDA 13. libcuda comes with the NVIDIA driver, not with PyPI: a stub is made for
/// the link ([`make_libcuda_stub`]).
const LINK_WHEELS: [&str; 3] = [
    "nvidia-cublas==13.*",
    "nvidia-curand==10.*",
    "nvidia-cuda-nvrtc==13.*",
];

/// The `-l` names of [`LINK_WHEELS`] and the runtime; the wheels ship only versioned
/// files (`libcublas.so.13`), so `lib/lib{name}.so` links are added for the linker.
const LINK_LIBS: [&str; 5] = ["cudart", "nvrtc", "curand", "cublas", "cublasLt"];

/// Headers candle-kernels includes (under the toolkit's `include/`), with their wheel.
const HEADERS: [(&str, &str); 8] = [
    ("cuda.h", "nvidia-cuda-runtime"),
    ("cuda_runtime.h", "nvidia-cuda-runtime"),
    ("cuda_fp16.h", "nvidia-cuda-runtime"),
    ("cuda_bf16.h", "nvidia-cuda-runtime"),
    ("cuda_fp8.h", "nvidia-cuda-runtime"),
    ("cccl/cuda/std/limits", "nvidia-cuda-cccl"),
    ("cccl/cub/cub.cuh", "nvidia-cuda-cccl"),
    ("cccl/thrust/scan.h", "nvidia-cuda-cccl"),
];

/// cudarc's binding set (`CUDARC_CUDA_VERSION`, `{major}0{minor}0`) when the caller does
/// not choose one. cudarc accepts only versions it knows (0.19.10: 11.4 to 13.4) and
/// panics on others, so this is not derived from the wheels' nvcc (13.5 at the time of
/// writing): 13.0's API is the baseline every CUDA 13 driver provides.
const DEFAULT_CUDARC_CUDA_VERSION: &str = "13000";
/// Kernels are built for the H100s/H200s this project is lent (sm_90).
const DEFAULT_CUDA_COMPUTE_CAP: &str = "90";

/// `cargo check --workspace --all-targets --features cuda` against a CUDA toolkit from
/// PyPI's NVIDIA wheels, no GPU and no system toolkit needed; with `--build`, also
/// `cargo build` of the `eos` binary and a smoke run of `eos probe --device auto|cuda`.
///
/// 1. a venv in `target/cuda-venv` (reused when present);
/// 2. `pip install` of [`CHECK_WHEELS`] (+ [`LINK_WHEELS`]), skipped when the stamp file
///    lists them and the toolkit is there;
/// 3. the toolkit: nvcc runs, the headers are there, and nvcc compiles a probe kernel
///    (with the host C++ compiler) the way candle-kernels' build script will;
/// 4. `cargo check` with its own target dir, `target/cuda-check`, so the CUDA build (whose
///    candle-kernels build script runs nvcc on every kernel) never invalidates
///    `target/debug`;
/// 5. (`--build`) `cargo build -p eos-cli --bin eos` in the same target dir, then
///    `eos probe --device auto` (must succeed) and `--device cuda` (must succeed on a
///    GPU, or end with one error, not a panic, without one).
///
/// The environment is printed so any cargo command can be re-run by hand.
fn cuda_check(rest: &[&str]) -> Result<()> {
    let mut build = false;
    for a in rest {
        match *a {
            "--build" => build = true,
            other => bail!("cuda-check: unknown argument `{other}` (expected --build)"),
        }
    }
    let steps = if build { 5 } else { 4 };
    let step = |k: usize, what: &str| eprintln!("cuda-check [{k}/{steps}] {what}");
    let t0 = Instant::now();
    let target = root().join("target");
    let venv = target.join("cuda-venv");
    let py = venv.join("bin/python");
    let pip = venv.join("bin/pip");

    step(1, &format!("Python venv {}", venv.display()));
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

    let mut wheels: Vec<&str> = CHECK_WHEELS.to_vec();
    if build {
        wheels.extend(LINK_WHEELS);
    }
    step(
        2,
        &format!("CUDA 13 toolkit from PyPI: {}", wheels.join(" ")),
    );
    let stamp = venv.join(".eos-cuda-wheels");
    let have = std::fs::read_to_string(&stamp).unwrap_or_default();
    let stamped = |w: &str| have.lines().any(|l| l.trim() == w);
    let libs_ok =
        |root: &Path| !build || LINK_LIBS.iter().all(|l| versioned_lib(root, l).is_some());
    let mut cuda_root = find_cuda_root(&py).filter(|r| libs_ok(r));
    if wheels.iter().all(|w| stamped(w)) && cuda_root.is_some() {
        eprintln!(
            "  installed, pip skipped (remove {} to reinstall)",
            stamp.display()
        );
    } else {
        let t = Instant::now();
        pip_install(&py, &pip, &wheels)?;
        eprintln!("  pip: {:.1?}", t.elapsed());
        cuda_root = find_cuda_root(&py).filter(|r| libs_ok(r));
        if cuda_root.is_some() {
            let mut lines: Vec<&str> = have
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            for w in &wheels {
                if !lines.contains(w) {
                    lines.push(w);
                }
            }
            std::fs::write(&stamp, lines.join("\n") + "\n")?;
        }
    }
    let cuda_root = cuda_root.with_context(|| {
        format!(
            "after pip install, no toolkit (bin/nvcc{}) under {}'s site-packages/nvidia/{{cu13,cuda_nvcc}}",
            if build { " and lib/libcublas.so.*, …" } else { "" },
            venv.display()
        )
    })?;

    let env_or = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_string());
    let cudarc_version = env_or("CUDARC_CUDA_VERSION", DEFAULT_CUDARC_CUDA_VERSION);
    let compute_cap = env_or("CUDA_COMPUTE_CAP", DEFAULT_CUDA_COMPUTE_CAP);

    step(3, &format!("toolkit {}", cuda_root.display()));
    let t = Instant::now();
    let nvcc = cuda_root.join("bin/nvcc");
    let release = check_toolkit(&cuda_root, &venv.join("eos-probe"), &compute_cap)?;
    eprintln!("  nvcc: {release}; headers present; probe kernel compiled for sm_{compute_cap}");
    if build {
        for name in LINK_LIBS {
            link_unversioned(&cuda_root, name)?;
        }
        make_libcuda_stub(&cuda_root, &venv.join("eos-probe"))?;
        eprintln!(
            "  link: lib/lib{{{}}}.so -> the wheels' versioned files; lib/libcuda.so: stub (soname libcuda.so.1)",
            LINK_LIBS.join(",")
        );
    }
    eprintln!("  {:.1?}", t.elapsed());

    let check_target = target.join("cuda-check");
    let path = format!(
        "{}:{}",
        cuda_root.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let root_s = cuda_root.display().to_string();
    let envs: Vec<(&str, String)> = vec![
        // cudarc: the binding set; it would otherwise parse `nvcc --version` and panic on
        // a release it does not know. The root variables give its link-search paths
        // (`$CUDA_ROOT/lib`, used by `cargo build`).
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
    let cuda_cargo = |args: &[&str]| {
        let mut cmd = cargo();
        cmd.args(args).env("PATH", &path);
        for (k, v) in &envs {
            cmd.env(k, v);
        }
        cmd
    };

    step(
        4,
        "cargo check --workspace --all-targets --features cuda, with",
    );
    for (k, v) in &envs {
        eprintln!("  {k}={v}");
    }
    eprintln!("  PATH={}:$PATH", cuda_root.join("bin").display());
    let t = Instant::now();
    run(&mut cuda_cargo(&[
        "check",
        "--workspace",
        "--all-targets",
        "--features",
        "cuda",
    ]))?;
    let check_time = t.elapsed();
    eprintln!("  cargo check: {check_time:.1?}");

    if build {
        step(
            5,
            "cargo build -p eos-cli --bin eos --features cuda, then eos probe",
        );
        let t = Instant::now();
        run(&mut cuda_cargo(&[
            "build",
            "-p",
            "eos-cli",
            "--bin",
            "eos",
            "--features",
            "cuda",
        ]))?;
        eprintln!("  cargo build: {:.1?}", t.elapsed());
        smoke_eos(&check_target.join("debug/eos"), &cuda_root, &venv)?;
    }
    eprintln!(
        "cuda-check: ok (cargo check {check_time:.1?}, total {:.1?})",
        t0.elapsed()
    );
    Ok(())
}

/// `pip install`, with a clear error when the package index cannot be reached.
fn pip_install(py: &Path, pip: &Path, wheels: &[&str]) -> Result<()> {
    let mut cmd = Command::new(pip);
    cmd.args([
        "install",
        "--progress-bar",
        "off",
        "--disable-pip-version-check",
        "--retries",
        "2",
        "--timeout",
        "30",
    ])
    .args(wheels);
    eprintln!("$ {cmd:?}");
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {}", pip.display()))?;
    if status.success() {
        return Ok(());
    }
    let index = pip_index_url(pip);
    let probe = Command::new(py)
        .args([
            "-c",
            "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=20).read(1)",
        ])
        .arg(format!("{}/nvidia-cuda-nvcc/", index.trim_end_matches('/')))
        .output();
    match probe {
        Ok(o) if o.status.success() => bail!(
            "pip install {} failed ({status}) although the package index {index} answers: \
             see pip's messages above",
            wheels.join(" ")
        ),
        Ok(o) => {
            let err = String::from_utf8_lossy(&o.stderr);
            let why = err.lines().last().unwrap_or("no answer").trim();
            bail!(
                "pip could not install the NVIDIA wheels: the package index {index} is unreachable \
                 ({why}). cuda-check downloads them once (PyPI, or a mirror named by \
                 PIP_INDEX_URL / pip.conf), then reuses target/cuda-venv offline"
            )
        }
        Err(e) => bail!(
            "pip install failed ({status}) and {} cannot run: {e}",
            py.display()
        ),
    }
}

/// The index pip uses: `$PIP_INDEX_URL`, else pip's configured `global.index-url`, else PyPI.
fn pip_index_url(pip: &Path) -> String {
    if let Ok(u) = std::env::var("PIP_INDEX_URL") {
        return u;
    }
    Command::new(pip)
        .args(["config", "get", "global.index-url"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "https://pypi.org/simple".into())
}

/// Checks what candle-kernels' build script will use: nvcc runs, the headers it includes
/// are there, and nvcc compiles a kernel that includes them to an object (cicc, ptxas,
/// fatbinary and the host C++ compiler all run). Returns nvcc's release line.
fn check_toolkit(root: &Path, scratch: &Path, compute_cap: &str) -> Result<String> {
    let nvcc = root.join("bin/nvcc");
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
    for (h, wheel) in HEADERS {
        if !root.join("include").join(h).exists() {
            bail!(
                "{}/include/{h} is missing (wheel {wheel}): remove {} and run again",
                root.display(),
                scratch.with_file_name(".eos-cuda-wheels").display()
            );
        }
    }
    std::fs::create_dir_all(scratch)?;
    let src = scratch.join("probe.cu");
    std::fs::write(
        &src,
        "#include <cuda_runtime.h>\n#include <cuda_fp16.h>\n#include <cuda_bf16.h>\n\
         #include <cuda_fp8.h>\n#include <cuda/std/limits>\n\
         extern \"C\" __global__ void eos_probe(float *x, const __half *h) {\n  \
         x[threadIdx.x] = __half2float(h[threadIdx.x]) + cuda::std::numeric_limits<float>::epsilon();\n}\n",
    )?;
    let out = Command::new(&nvcc)
        .arg(format!("-arch=sm_{compute_cap}"))
        .args(["-std=c++17", "-O3", "-c", "-Xcompiler", "-fPIC", "-o"])
        .arg(scratch.join("probe.o"))
        .arg(&src)
        .output()
        .with_context(|| format!("cannot run {}", nvcc.display()))?;
    if !out.status.success() {
        bail!(
            "nvcc cannot compile a probe kernel ({}); candle-kernels' build would fail the same way. \
             nvcc needs a host C++ compiler it supports on PATH (g++ up to 15; Debian: \
             apt-get install g++), or one named by NVCC_CCBIN.\n{}{}",
            src.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(release)
}

/// `lib/lib{name}.so.N` shipped by the wheels (the shortest such name), if any.
fn versioned_lib(root: &Path, name: &str) -> Option<PathBuf> {
    let prefix = format!("lib{name}.so.");
    let mut found: Vec<PathBuf> = std::fs::read_dir(root.join("lib"))
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix))
        })
        .collect();
    found.sort_by_key(|p| p.as_os_str().len());
    found.into_iter().next()
}

/// `lib/lib{name}.so` -> `lib{name}.so.N`, the name `-l{name}` looks for.
fn link_unversioned(root: &Path, name: &str) -> Result<()> {
    let link = root.join(format!("lib/lib{name}.so"));
    if link.exists() {
        return Ok(());
    }
    let target = versioned_lib(root, name)
        .with_context(|| format!("no lib{name}.so.* in {}/lib", root.display()))?;
    let _ = std::fs::remove_file(&link); // a dangling link
    std::os::unix::fs::symlink(target.file_name().expect("a file"), &link)
        .with_context(|| format!("cannot create {}", link.display()))
}

/// `lib/libcuda.so`, a stub of the driver library for the linker (the toolkit's own
/// `lib/stubs/libcuda.so` is not on PyPI): every `cu*` name in `cuda.h` (declared names
/// and the `_v2`… names its macros map them to) as a function returning
/// `CUDA_ERROR_STUB_LIBRARY` (34). Its soname is `libcuda.so.1`, so a binary linked
/// against it loads the real driver at run time. It sits in `lib/` (not `lib/stubs/`)
/// because cudarc's build script only adds search directories that existed when it ran.
fn make_libcuda_stub(root: &Path, scratch: &Path) -> Result<()> {
    let stub = root.join("lib/libcuda.so");
    if stub.exists() {
        return Ok(());
    }
    let mut names = std::collections::BTreeSet::new();
    for h in ["cuda.h", "cudaProfiler.h"] {
        let Ok(text) = std::fs::read_to_string(root.join("include").join(h)) else {
            continue;
        };
        for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            let b = word.as_bytes();
            if b.len() > 2 && word.starts_with("cu") && b[2].is_ascii_uppercase() {
                names.insert(word.to_string());
            }
        }
    }
    if names.len() < 100 {
        bail!(
            "{}/include/cuda.h names only {} driver functions: not a CUDA header?",
            root.display(),
            names.len()
        );
    }
    std::fs::create_dir_all(scratch)?;
    let src = scratch.join("libcuda-stub.c");
    let body: String = names
        .iter()
        .map(|n| format!("int {n}(void) {{ return 34; }}\n"))
        .collect();
    std::fs::write(
        &src,
        format!("/* generated by `cargo xtask cuda-check --build` */\n{body}"),
    )?;
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    run(Command::new(&cc)
        .args(["-shared", "-fPIC", "-O1", "-Wl,-soname,libcuda.so.1", "-o"])
        .arg(&stub)
        .arg(&src))
    .with_context(|| format!("cannot build the libcuda stub with `{cc}` (set CC=…)"))
}

/// Whether the real driver library is where the dynamic loader finds it.
fn driver_installed() -> bool {
    let in_path = std::env::var("LD_LIBRARY_PATH")
        .unwrap_or_default()
        .split(':')
        .any(|d| !d.is_empty() && Path::new(d).join("libcuda.so.1").exists());
    in_path
        || ["/sbin/ldconfig", "ldconfig"].iter().any(|l| {
            Command::new(l)
                .arg("-p")
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("libcuda.so.1 "))
        })
}

/// Runs the freshly built binary: `probe --device auto` must succeed; `probe --device
/// cuda` must succeed with a GPU and end with one clear error (exit 1, no panic) without
/// one. Without a driver, the stub stands in for it (`cuInit` returns
/// `CUDA_ERROR_STUB_LIBRARY`), as a driver without a GPU would.
fn smoke_eos(eos: &Path, root: &Path, venv: &Path) -> Result<()> {
    if let Ok(o) = Command::new("readelf").arg("-d").arg(eos).output() {
        let needed: Vec<String> = String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| l.contains("(NEEDED)"))
            .filter_map(|l| {
                l.split('[')
                    .nth(1)
                    .map(|s| s.trim_end_matches(']').to_string())
            })
            .collect();
        eprintln!("  {} needs: {}", eos.display(), needed.join(" "));
    }
    let driver = driver_installed();
    let mut ld_path = root.join("lib").display().to_string();
    if !driver {
        let bare = Command::new(eos)
            .args(["probe", "--device", "auto"])
            .env("LD_LIBRARY_PATH", &ld_path)
            .output()?;
        let err = String::from_utf8_lossy(&bare.stderr);
        eprintln!(
            "  no NVIDIA driver here: without one the binary cannot start ({}): {}",
            bare.status,
            err.lines().next().unwrap_or("").trim()
        );
        let stub_dir = venv.join("eos-probe/driver-stub");
        std::fs::create_dir_all(&stub_dir)?;
        let so1 = stub_dir.join("libcuda.so.1");
        if !so1.exists() {
            std::os::unix::fs::symlink(root.join("lib/libcuda.so"), &so1)?;
        }
        ld_path = format!("{ld_path}:{}", stub_dir.display());
        eprintln!("  with the stub driver ({}) instead:", so1.display());
    }
    let probe = |device: &str| -> Result<std::process::Output> {
        let mut cmd = Command::new(eos);
        cmd.args(["probe", "--device", device, "--json"])
            .env("LD_LIBRARY_PATH", &ld_path);
        eprintln!(
            "  $ LD_LIBRARY_PATH={ld_path} {} probe --device {device} --json",
            eos.display()
        );
        cmd.output()
            .with_context(|| format!("cannot run {}", eos.display()))
    };
    let show = |o: &std::process::Output| {
        for l in String::from_utf8_lossy(&o.stderr).lines() {
            eprintln!("    stderr: {l}");
        }
        let out = String::from_utf8_lossy(&o.stdout);
        let device = out
            .split("\"device\":")
            .nth(1)
            .and_then(|s| s.split(',').next())
            .unwrap_or("?");
        eprintln!("    {} (report device: {device})", o.status);
    };
    let auto = probe("auto")?;
    show(&auto);
    let cuda = probe("cuda")?;
    show(&cuda);
    let panicked =
        |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).contains("panicked");
    if !auto.status.success() || panicked(&auto) {
        bail!("eos probe --device auto failed");
    }
    if panicked(&cuda) {
        bail!("eos probe --device cuda panicked");
    }
    if !cuda.status.success() {
        let err = String::from_utf8_lossy(&cuda.stderr);
        if driver || !err.contains("--device cuda:") {
            bail!("eos probe --device cuda failed");
        }
        eprintln!("  no GPU: auto fell back to the CPU, cuda ended with one error (expected)");
    } else {
        eprintln!("  GPU: both ran on CUDA");
    }
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
