//! Compute device selection: `cpu`, `cuda` (when compiled with the `cuda` feature)
//! or `auto` (CUDA when compiled in and a GPU answers, else the CPU).
//!
//! candle's `cuda_is_available()` only says whether CUDA support was compiled in, so
//! `auto` asks for device 0 and treats every failure as "no GPU". The failures are of
//! two kinds, and both are turned into an error value here:
//! - the driver is there but unusable (no GPU, no `/dev/nvidia*`, the toolkit's stub
//!   `libcuda.so`, a driver older than the kernels' PTX): `Device::new_cuda` returns an
//!   error;
//! - cudarc loads the driver library at run time (its `dynamic-loading` mode) and
//!   cannot find it: cudarc panics. The call is made under
//!   [`std::panic::catch_unwind`], with the panic message captured instead of printed.
//!
//! candle 0.11 links cudarc in its `dynamic-linking` mode: a binary built with
//! `--features cuda` has `libcuda.so.1` (and cuBLAS, cuRAND) as `DT_NEEDED` entries,
//! and on a machine without the NVIDIA driver the dynamic loader refuses to start it
//! before `main` runs. No code in eos can catch that; a CPU-only machine runs the
//! default (CPU) build. When CUDA is unusable, the message says whether `libcuda.so.1`
//! was found ([`find_libcuda`]).

use std::panic::{self, UnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use candle_core::Device;

use crate::{Error, Result};

/// Resolves a `--device` value. `auto` never fails: a missing driver or GPU falls back
/// to the CPU (with a warning on stderr when CUDA was compiled in). `cuda` fails with a
/// clear message when CUDA is unavailable; neither panics.
pub fn pick_device(name: &str) -> Result<Device> {
    match name {
        "cpu" => Ok(Device::Cpu),
        "cuda" | "gpu" => {
            cuda_device().map_err(|why| Error::Invalid(format!("--device cuda: {why}")))
        }
        "auto" => match cuda_device() {
            Ok(device) => Ok(device),
            Err(why) => {
                if cfg!(feature = "cuda") {
                    // eos-model has no logger; the runner's tracing filter would hide a
                    // `warn!` by default, and this choice must be visible.
                    eprintln!("warning: --device auto: {why}; using the CPU");
                }
                Ok(Device::Cpu)
            }
        },
        other => Err(Error::Invalid(format!(
            "--device: unknown device `{other}` (expected auto, cpu or cuda)"
        ))),
    }
}

/// CUDA device 0, or why it cannot be had (a sentence without the `--device` prefix).
fn cuda_device() -> std::result::Result<Device, String> {
    if !cfg!(feature = "cuda") {
        return Err("this binary was built without the `cuda` feature \
                    (rebuild with `--features cuda`)"
            .into());
    }
    match catch_panic(|| Device::new_cuda(0)) {
        Ok(Ok(device)) => Ok(device),
        // The first line: with RUST_BACKTRACE set, candle appends a backtrace.
        Ok(Err(e)) => Err(format!(
            "no usable CUDA device: {}{}",
            e.to_string().lines().next().unwrap_or_default(),
            driver_hint()
        )),
        Err(panic) => Err(format!(
            "the CUDA driver could not be loaded: {panic}{}",
            driver_hint()
        )),
    }
}

/// Runs `f`; a panic becomes `Err(its message)` and is not printed (the panic hook is
/// swapped for a silent one for the duration of the call, under a lock so concurrent
/// callers cannot lose the original hook).
pub(crate) fn catch_panic<T>(f: impl FnOnce() -> T + UnwindSafe) -> std::result::Result<T, String> {
    static HOOK: Mutex<()> = Mutex::new(());
    let _serial = HOOK.lock().unwrap_or_else(|e| e.into_inner());
    let hook = panic::take_hook();
    panic::set_hook(Box::new(|_| {}));
    let out = panic::catch_unwind(f);
    panic::set_hook(hook);
    out.map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic without a message".into())
    })
}

/// A clause for the error message: whether the NVIDIA driver library is there.
fn driver_hint() -> String {
    match find_libcuda() {
        Some(path) => format!(" (driver library: {})", path.display()),
        None => " (the NVIDIA driver library libcuda.so.1 was not found: \
                 no NVIDIA driver on this machine, or not on the library path)"
            .into(),
    }
}

/// Where `libcuda.so.1` is: the copy mapped into this process if there is one (always
/// the case for a `dynamic-linking` build that started), else the first one in the
/// directories the dynamic loader searches (`loader_dirs`). Best effort, Linux only;
/// it only words error messages and never decides whether CUDA is tried.
pub fn find_libcuda() -> Option<PathBuf> {
    if let Ok(maps) = std::fs::read_to_string("/proc/self/maps") {
        if let Some(path) = mapped_library(&maps, "libcuda.so") {
            return Some(path);
        }
    }
    find_in_dirs("libcuda.so.1", &loader_dirs())
}

/// The path of the first mapped file whose name starts with `stem`, from the text of
/// `/proc/self/maps` (the path is the sixth field).
fn mapped_library(maps: &str, stem: &str) -> Option<PathBuf> {
    maps.lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .find(|path| {
            Path::new(path)
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(stem))
        })
        .map(PathBuf::from)
}

/// The first `dir/name` that exists.
fn find_in_dirs(name: &str, dirs: &[PathBuf]) -> Option<PathBuf> {
    dirs.iter().map(|d| d.join(name)).find(|p| p.exists())
}

/// The directories the dynamic loader searches, in its order: `LD_LIBRARY_PATH`, those
/// listed in `/etc/ld.so.conf` (and the files it includes), then the default ones
/// (plus the usual driver locations of containers and WSL).
fn loader_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var("LD_LIBRARY_PATH")
        .unwrap_or_default()
        .split(':')
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .collect();
    ld_so_conf(Path::new("/etc/ld.so.conf"), &mut dirs, 0);
    for d in [
        "/lib/x86_64-linux-gnu",
        "/usr/lib/x86_64-linux-gnu",
        "/lib/aarch64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/lib64",
        "/usr/lib64",
        "/lib",
        "/usr/lib",
        "/usr/local/nvidia/lib64",
        "/usr/lib/wsl/lib",
    ] {
        dirs.push(PathBuf::from(d));
    }
    dirs
}

/// Appends the directories of an `ld.so.conf`-style file, following `include` lines
/// (with a `*` in the file name) to a small depth.
fn ld_so_conf(file: &Path, dirs: &mut Vec<PathBuf>, depth: usize) {
    let Ok(text) = std::fs::read_to_string(file) else {
        return;
    };
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if let Some(pattern) = line.strip_prefix("include") {
            if depth < 4 {
                for f in glob_file_names(pattern.trim()) {
                    ld_so_conf(&f, dirs, depth + 1);
                }
            }
        } else if line.starts_with('/') {
            dirs.push(PathBuf::from(line));
        }
    }
}

/// The files matched by `dir/prefix*suffix` (one `*`, in the file name only), sorted;
/// a pattern without `*` is returned as it is.
fn glob_file_names(pattern: &str) -> Vec<PathBuf> {
    let path = Path::new(pattern);
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return Vec::new();
    };
    let Some((prefix, suffix)) = name.split_once('*') else {
        return vec![path.to_path_buf()];
    };
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix) && n.ends_with(suffix))
        })
        .collect();
    out.sort();
    out
}

/// A short name for metadata: `cpu` or `cuda:0`.
pub fn device_name(device: &Device) -> String {
    match device {
        Device::Cpu => "cpu".into(),
        Device::Cuda(_) => "cuda:0".into(),
        Device::Metal(_) => "metal".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_and_auto_resolve_and_unknown_is_an_error() {
        assert!(matches!(pick_device("cpu").unwrap(), Device::Cpu));
        let auto = pick_device("auto").unwrap();
        if !cfg!(feature = "cuda") {
            assert!(matches!(auto, Device::Cpu));
            let e = pick_device("cuda").unwrap_err().to_string();
            assert!(e.contains("without the `cuda` feature"), "{e}");
        }
        let e = pick_device("tpu").unwrap_err().to_string();
        assert!(e.contains("unknown device `tpu`"), "{e}");
        assert_eq!(device_name(&Device::Cpu), "cpu");
    }

    /// On a machine without a GPU (as CI is) both requests end without a panic: `auto`
    /// on the CPU, `cuda` with one error naming the cause. With a GPU, `cuda` succeeds.
    #[test]
    fn cuda_requests_never_panic() {
        let auto = catch_panic(|| pick_device("auto")).expect("auto panicked");
        let cuda = catch_panic(|| pick_device("cuda")).expect("cuda panicked");
        match cuda {
            Ok(d) => assert!(matches!(d, Device::Cuda(_))),
            Err(e) => {
                let e = e.to_string();
                assert!(e.starts_with("--device cuda: "), "{e}");
                assert!(matches!(auto.unwrap(), Device::Cpu));
            }
        }
    }

    #[test]
    fn a_panic_becomes_an_error_with_its_message() {
        let r: std::result::Result<(), String> =
            catch_panic(|| panic!("Unable to dynamically load the \"cuda\" shared library"));
        assert!(r.unwrap_err().contains("dynamically load"));
        let n = 7;
        let r = catch_panic(move || panic!("code {n}"));
        assert_eq!(r.unwrap_err(), "code 7");
        assert_eq!(catch_panic(|| 3), Ok(3));
        // The hook is restored: a later panic is reported as usual (not checked here,
        // the test harness would show it), and catching again still works.
        assert!(catch_panic(|| panic!("again")).is_err());
    }

    #[test]
    fn libcuda_is_found_in_maps_and_directories() {
        let maps = "\
7f00-7f01 r--p 00000000 08:01 42 /usr/lib/x86_64-linux-gnu/libc.so.6
7f02-7f03 r-xp 00000000 08:01 43 /usr/lib/x86_64-linux-gnu/libcuda.so.580.65.06
7f04-7f05 rw-p 00000000 00:00 0
";
        assert_eq!(
            mapped_library(maps, "libcuda.so"),
            Some(PathBuf::from(
                "/usr/lib/x86_64-linux-gnu/libcuda.so.580.65.06"
            ))
        );
        assert_eq!(mapped_library(maps, "libcublas.so"), None);

        let tmp = std::env::temp_dir().join(format!("eos-device-test-{}", std::process::id()));
        let (a, b) = (tmp.join("a"), tmp.join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(b.join("libcuda.so.1"), b"").unwrap();
        let dirs = [a.clone(), b.clone()];
        assert_eq!(
            find_in_dirs("libcuda.so.1", &dirs),
            Some(b.join("libcuda.so.1"))
        );
        assert_eq!(find_in_dirs("libcuda.so.1", &dirs[..1]), None);

        // ld.so.conf with an include glob and comments.
        let conf_d = tmp.join("conf.d");
        std::fs::create_dir_all(&conf_d).unwrap();
        std::fs::write(conf_d.join("2-cuda.conf"), "/opt/b # driver\n").unwrap();
        std::fs::write(conf_d.join("1-x.conf"), "# nothing\n/opt/a\n").unwrap();
        std::fs::write(conf_d.join("skip.txt"), "/opt/no\n").unwrap();
        let conf = tmp.join("ld.so.conf");
        std::fs::write(
            &conf,
            format!("include {}/*.conf\n/opt/c\n", conf_d.display()),
        )
        .unwrap();
        let mut found = Vec::new();
        ld_so_conf(&conf, &mut found, 0);
        assert_eq!(
            found,
            ["/opt/a", "/opt/b", "/opt/c"].map(PathBuf::from).to_vec()
        );
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
