//! `cargo xtask cuda-check [--build]`: type-checks (and with `--build` links) the
//! `cuda` feature on a machine without a GPU or a system CUDA toolkit, with a toolkit
//! assembled from PyPI's NVIDIA wheels; see docs/performance.md#cuda.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::{cargo, root, run};

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
pub fn cuda_check(rest: &[&str]) -> Result<()> {
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

    step(1, &format!("Python venv {}", venv.display()));
    let (py, pip) = ensure_venv(&venv)?;
    let mut wheels: Vec<&str> = CHECK_WHEELS.to_vec();
    if build {
        wheels.extend(LINK_WHEELS);
    }
    step(
        2,
        &format!("CUDA 13 toolkit from PyPI: {}", wheels.join(" ")),
    );
    let cuda_root = ensure_wheels(&venv, &py, &pip, &wheels, build)?;

    let env_or = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_string());
    let compute_cap = env_or("CUDA_COMPUTE_CAP", DEFAULT_CUDA_COMPUTE_CAP);
    step(3, &format!("toolkit {}", cuda_root.display()));
    prepare_toolkit(&cuda_root, &venv, &compute_cap, build)?;

    let check_target = target.join("cuda-check");
    let env = CudaEnv::new(&cuda_root, compute_cap, &check_target);
    step(
        4,
        "cargo check --workspace --all-targets --features cuda, with",
    );
    env.print(&cuda_root);
    let t = Instant::now();
    run(&mut env.cargo(&[
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
        run(&mut env.cargo(&[
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

/// Step 1: the venv in `venv` (made with `$PYTHON -m venv`, or reused); its python and pip.
fn ensure_venv(venv: &Path) -> Result<(PathBuf, PathBuf)> {
    let py = venv.join("bin/python");
    let pip = venv.join("bin/pip");
    if py.exists() {
        eprintln!("  present, reused");
    } else {
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        match Command::new(&python).args(["-m", "venv"]).arg(venv).status() {
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
    Ok((py, pip))
}

/// Step 2: `pip install` of `wheels` unless the stamp file lists them and the toolkit is
/// there; returns the toolkit root.
fn ensure_wheels(
    venv: &Path,
    py: &Path,
    pip: &Path,
    wheels: &[&str],
    build: bool,
) -> Result<PathBuf> {
    let stamp = venv.join(".eos-cuda-wheels");
    let have = std::fs::read_to_string(&stamp).unwrap_or_default();
    let stamped = |w: &str| have.lines().any(|l| l.trim() == w);
    let libs_ok =
        |root: &Path| !build || LINK_LIBS.iter().all(|l| versioned_lib(root, l).is_some());
    let mut cuda_root = find_cuda_root(py).filter(|r| libs_ok(r));
    if wheels.iter().all(|w| stamped(w)) && cuda_root.is_some() {
        eprintln!(
            "  installed, pip skipped (remove {} to reinstall)",
            stamp.display()
        );
    } else {
        let t = Instant::now();
        pip_install(py, pip, wheels)?;
        eprintln!("  pip: {:.1?}", t.elapsed());
        cuda_root = find_cuda_root(py).filter(|r| libs_ok(r));
        if cuda_root.is_some() {
            let mut lines: Vec<&str> = have
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            for w in wheels {
                if !lines.contains(w) {
                    lines.push(w);
                }
            }
            std::fs::write(&stamp, lines.join("\n") + "\n")?;
        }
    }
    cuda_root.with_context(|| {
        format!(
            "after pip install, no toolkit (bin/nvcc{}) under {}'s site-packages/nvidia/{{cu13,cuda_nvcc}}",
            if build { " and lib/libcublas.so.*, …" } else { "" },
            venv.display()
        )
    })
}

/// Step 3: nvcc runs, the headers are there, a probe kernel compiles; with `build`, the
/// unversioned library links and the libcuda stub for the linker.
fn prepare_toolkit(cuda_root: &Path, venv: &Path, compute_cap: &str, build: bool) -> Result<()> {
    let t = Instant::now();
    let release = check_toolkit(cuda_root, &venv.join("eos-probe"), compute_cap)?;
    eprintln!("  nvcc: {release}; headers present; probe kernel compiled for sm_{compute_cap}");
    if build {
        for name in LINK_LIBS {
            link_unversioned(cuda_root, name)?;
        }
        make_libcuda_stub(cuda_root, &venv.join("eos-probe"))?;
        eprintln!(
            "  link: lib/lib{{{}}}.so -> the wheels' versioned files; lib/libcuda.so: stub (soname libcuda.so.1)",
            LINK_LIBS.join(",")
        );
    }
    eprintln!("  {:.1?}", t.elapsed());
    Ok(())
}

/// The environment of the CUDA cargo commands (printed, so any of them can be re-run by hand).
struct CudaEnv {
    path: String,
    vars: Vec<(&'static str, String)>,
}

impl CudaEnv {
    fn new(cuda_root: &Path, compute_cap: String, check_target: &Path) -> Self {
        let cudarc_version = std::env::var("CUDARC_CUDA_VERSION")
            .unwrap_or_else(|_| DEFAULT_CUDARC_CUDA_VERSION.to_string());
        let root_s = cuda_root.display().to_string();
        let path = format!(
            "{}:{}",
            cuda_root.join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let vars = vec![
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
            ("NVCC", cuda_root.join("bin/nvcc").display().to_string()),
            ("CUDA_COMPUTE_CAP", compute_cap),
            ("CARGO_TARGET_DIR", check_target.display().to_string()),
        ];
        Self { path, vars }
    }

    fn print(&self, cuda_root: &Path) {
        for (k, v) in &self.vars {
            eprintln!("  {k}={v}");
        }
        eprintln!("  PATH={}:$PATH", cuda_root.join("bin").display());
    }

    fn cargo(&self, args: &[&str]) -> Command {
        let mut cmd = cargo();
        cmd.args(args).env("PATH", &self.path);
        for (k, v) in &self.vars {
            cmd.env(k, v);
        }
        cmd
    }
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

/// Prints the shared libraries `eos` needs (`readelf -d`), when readelf is there.
fn print_needed(eos: &Path) {
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
}

/// Runs the freshly built binary: `probe --device auto` must succeed; `probe --device
/// cuda` must succeed with a GPU and end with one clear error (exit 1, no panic) without
/// one. Without a driver, the stub stands in for it (`cuInit` returns
/// `CUDA_ERROR_STUB_LIBRARY`), as a driver without a GPU would.
fn smoke_eos(eos: &Path, root: &Path, venv: &Path) -> Result<()> {
    print_needed(eos);
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
