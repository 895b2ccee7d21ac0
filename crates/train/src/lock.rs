//! One writer per directory: `DIR/.lock`, created atomically (`O_CREAT|O_EXCL`)
//! before anything else is written, holding the writer's PID, host and start time,
//! and removed when the [`DirLock`] is dropped (the run or the sweep ends, or fails).
//!
//! A lock whose PID is no longer alive on this host (a `kill -9`) is stale: it is
//! taken over with a warning. A lock held by a live process, or written by another
//! host (the PID cannot be checked), refuses the second writer with a message that
//! names the holder.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::Error;

/// The lock file's name inside the directory.
pub const LOCK_FILE: &str = ".lock";

/// Who holds a lock, as written in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    pub start: String,
}

impl Holder {
    fn parse(text: &str) -> Option<Holder> {
        let get = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(k)?.strip_prefix('='))
                .map(str::trim)
        };
        Some(Holder {
            pid: get("pid")?.parse().ok()?,
            host: get("host")?.to_string(),
            start: get("start").unwrap_or("?").to_string(),
        })
    }

    /// Whether the holder is certainly gone: same host, and no `/proc/PID`.
    fn is_stale(&self) -> bool {
        let proc_fs = Path::new("/proc/self").exists();
        proc_fs && self.host == host() && !Path::new("/proc").join(self.pid.to_string()).exists()
    }
}

/// This machine's host name (`/proc/sys/kernel/hostname`, `$HOSTNAME`, or `unknown`).
pub fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

/// The live holder of `dir`'s lock, if another process holds it.
pub fn holder(dir: &Path) -> Option<Holder> {
    let text = std::fs::read_to_string(dir.join(LOCK_FILE)).ok()?;
    let h = Holder::parse(&text)?;
    (!h.is_stale() && h.pid != std::process::id()).then_some(h)
}

/// An exclusive lock on a directory; dropping it removes the lock file.
#[derive(Debug)]
pub struct DirLock {
    path: PathBuf,
}

impl DirLock {
    /// Takes `dir/.lock` (creating `dir`); `what` names the writer in messages
    /// (`run`, `sweep`). Refused while another live process holds it.
    pub fn acquire(dir: &Path, what: &str) -> crate::Result<DirLock> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::file(dir, format!("cannot create: {e}")))?;
        let path = dir.join(LOCK_FILE);
        for _ in 0..3 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    let text = format!(
                        "pid={}\nhost={}\nstart={}\n",
                        std::process::id(),
                        host(),
                        crate::run_dir::now_rfc3339()
                    );
                    f.write_all(text.as_bytes())
                        .and_then(|_| f.sync_all())
                        .map_err(|e| Error::file(&path, format!("cannot write: {e}")))?;
                    return Ok(DirLock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    match Holder::parse(&text) {
                        Some(h) if h.is_stale() => {
                            tracing::warn!(
                                "{}: stale lock of PID {} (no such process); taking it over",
                                path.display(),
                                h.pid
                            );
                            // Remove only the lock read above (another writer may have
                            // replaced it meanwhile).
                            if std::fs::read_to_string(&path).ok().as_deref() == Some(&text) {
                                let _ = std::fs::remove_file(&path);
                            }
                        }
                        Some(h) => return Err(locked(dir, what, &h)),
                        None => {
                            return Err(Error::file(
                                &path,
                                format!(
                                    "another {what} may be writing {} (unreadable lock `{}`); \
                                     remove the file if no eos process runs there",
                                    dir.display(),
                                    text.trim()
                                ),
                            ))
                        }
                    }
                }
                Err(e) => return Err(Error::file(&path, format!("cannot create: {e}"))),
            }
        }
        Err(Error::file(&path, "cannot take the lock (contended)"))
    }
}

/// Removes the temporary files (`*.tmp-PID`) that a killed or failed writer left in
/// `dir` and `dir/ckpt` (called with the lock held, so no live writer owns them).
pub fn remove_stale_temps(dir: &Path) {
    for d in [dir.to_path_buf(), dir.join("ckpt")] {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let is_temp = name
                .to_str()
                .and_then(|n| n.rsplit_once(".tmp-"))
                .is_some_and(|(_, pid)| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()));
            if is_temp {
                tracing::warn!("{}: removing a leftover temporary file", e.path().display());
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

fn locked(dir: &Path, what: &str, h: &Holder) -> Error {
    Error::Request(format!(
        "{}: another {what} is writing it (PID {} on {}, since {}); wait for it to end or \
         choose another --out",
        dir.display(),
        h.pid,
        h.host,
        h.start
    ))
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("eos-lock-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn second_writer_refused_naming_the_pid_then_released() {
        let d = tmp("second");
        let l = DirLock::acquire(&d, "run").unwrap();
        // A lock held by a live process (this one, written as if by PID 1: init).
        std::fs::write(
            d.join(LOCK_FILE),
            format!("pid=1\nhost={}\nstart=x\n", host()),
        )
        .unwrap();
        let e = DirLock::acquire(&d, "run").unwrap_err().to_string();
        assert!(e.contains("PID 1 on"), "{e}");
        drop(l);
        assert!(!d.join(LOCK_FILE).exists());
        let _l = DirLock::acquire(&d, "run").unwrap();
        std::fs::remove_dir_all(&d).ok();
    }

    #[test]
    fn stale_lock_is_taken_over() {
        let d = tmp("stale");
        std::fs::create_dir_all(&d).unwrap();
        // PID 4 000 000 exceeds Linux's pid_max: no such process.
        std::fs::write(
            d.join(LOCK_FILE),
            format!("pid=4000000\nhost={}\nstart=x\n", host()),
        )
        .unwrap();
        let l = DirLock::acquire(&d, "run").unwrap();
        let text = std::fs::read_to_string(d.join(LOCK_FILE)).unwrap();
        assert_eq!(Holder::parse(&text).unwrap().pid, std::process::id());
        drop(l);
        std::fs::remove_dir_all(&d).ok();
    }
}
