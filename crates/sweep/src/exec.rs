//! Running cells: one child process `eos train BASE --set k=v … --out DIR/cells/<id>`
//! per cell, a pool of N worker threads each waiting on one child at a time, and the
//! Slurm job-array script.
//!
//! Restart safety: a cell whose `meta.json` says `finished` or `diverged` is not run
//! again; one with `meta.json` and `metrics.jsonl` but another status (`running`
//! after a hard kill, `interrupted`) is continued with `--resume`; a failure (child
//! exit status ≠ 0) is written to `sweep-error.txt` in the cell and retried on the
//! next sweep. The child's stdout and stderr go to `train.log` in the cell.
//!
//! With N > 1 workers and no `RAYON_NUM_THREADS` in the environment, each child gets
//! `RAYON_NUM_THREADS = max(1, cores / N)` so that the workers do not oversubscribe
//! the CPU.

use std::collections::VecDeque;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};

use crate::error::{Context, Error};
use serde_json::{Map, Value};

use eos_train::Status;

use super::grid::Cell;
use eos_model::io::write_atomic;

use super::results::{CellFile, CELL_FILE, ERROR_FILE};
use eos_train::metrics::read::RunMeta;

/// How a cell ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Finished,
    Diverged,
    /// The sweep was interrupted (Ctrl-C, SIGTERM, SIGHUP): the child checkpointed
    /// and ended `interrupted`, or the cell was not started.
    Interrupted,
    /// The child failed, or the run ended otherwise (`interrupted`); the message says.
    Failed(String),
}

/// What every child needs: the `eos` executable, the base config, fixed overrides.
#[derive(Debug, Clone)]
pub struct Launcher {
    pub exe: PathBuf,
    pub base: PathBuf,
    /// `key=value` overrides applied to every cell before the cell's own.
    pub fixed: Vec<String>,
    /// `DIR/cells`.
    pub cells_dir: PathBuf,
    /// `--device` for the children.
    pub device: Option<String>,
    /// `RAYON_NUM_THREADS` for the children.
    pub threads: Option<usize>,
    /// Train cells in-process as ensembles ([`Launcher::run_many`]) instead of children.
    pub ensemble: bool,
    /// Called with a cell's directory when the cell ended in-process (the CLI plots it,
    /// as `eos train` does).
    pub on_done: Option<fn(&Path)>,
}

impl Launcher {
    /// The directory of `cell`.
    pub fn dir(&self, cell: &Cell) -> PathBuf {
        self.cells_dir.join(&cell.id)
    }

    /// The outcome recorded in `cell`'s directory, if its run is done.
    pub fn done(&self, cell: &Cell) -> crate::Result<Option<Outcome>> {
        Ok(RunMeta::read(&self.dir(cell))?.and_then(|m| status_outcome(m.status)))
    }

    /// Runs `cell` unless it is done, and prints one line on how it ended (or that
    /// it was done before); never errors (a failure is an [`Outcome`]).
    pub fn run(&self, cell: &Cell) -> Outcome {
        self.run_many(std::slice::from_ref(cell))
            .pop()
            .unwrap_or(Outcome::Interrupted)
    }

    /// Runs the cells that are not done — in-process as one ensemble
    /// (`eos_train::ensemble`) when [`Launcher::ensemble`] is set, else one child each
    /// — and prints one line per cell on how it ended (or that it was done before);
    /// the outcomes in cell order. Never errors (a failure is an [`Outcome`]).
    pub fn run_many(&self, cells: &[Cell]) -> Vec<Outcome> {
        let mut out: Vec<Option<(Outcome, &str)>> = cells.iter().map(|_| None).collect();
        let mut todo = Vec::new();
        for (i, cell) in cells.iter().enumerate() {
            out[i] = match self.done(cell) {
                Ok(Some(o)) => Some((o, " (done before)")),
                Ok(None) if interrupted() => Some((Outcome::Interrupted, "")),
                Ok(None) => match self.writer_elsewhere(cell) {
                    Some(o) => Some((o, "")),
                    None if self.ensemble => match self.prepare(cell) {
                        Ok(resume) => {
                            todo.push((i, resume));
                            None
                        }
                        Err(e) => Some((self.failed(cell, e), "")),
                    },
                    None => Some((
                        self.try_run(cell).unwrap_or_else(|e| self.failed(cell, e)),
                        "",
                    )),
                },
                Err(e) => Some((self.failed(cell, e), "")),
            };
            if let Some((o, before)) = &out[i] {
                report(cell, o, before);
            }
        }
        if !todo.is_empty() {
            let outcomes = self.run_ensemble(cells, &todo);
            for ((i, _), o) in todo.into_iter().zip(outcomes) {
                out[i] = Some((o, ""));
            }
        }
        out.into_iter()
            .map(|o| o.map_or(Outcome::Interrupted, |o| o.0))
            .collect()
    }

    /// A failure when a process of an earlier sweep (killed hard) still writes `cell`.
    fn writer_elsewhere(&self, cell: &Cell) -> Option<Outcome> {
        let h = eos_train::lock::holder(&self.dir(cell))?;
        Some(Outcome::Failed(format!(
            "another process (PID {} on {}) is writing {}; not started",
            h.pid,
            h.host,
            self.dir(cell).display()
        )))
    }

    /// Trains the cells `todo` (index into `cells`, resume) in-process as one ensemble;
    /// their outcomes, each reported as it ends.
    fn run_ensemble(&self, cells: &[Cell], todo: &[(usize, bool)]) -> Vec<Outcome> {
        let args: Vec<eos_train::TrainArgs> = todo
            .iter()
            .map(|&(i, resume)| eos_train::TrainArgs {
                config: self.base.clone(),
                set: self
                    .fixed
                    .iter()
                    .cloned()
                    .chain(cells[i].set_args())
                    .collect(),
                out: Some(self.dir(&cells[i])),
                resume,
                device: self.device.clone().unwrap_or_else(|| "auto".into()),
                stop_after: None,
            })
            .collect();
        let size = todo.len();
        let outcomes: Mutex<Vec<Option<Outcome>>> = Mutex::new(vec![None; size]);
        let on_done = |k: usize, r: &eos_train::Result<eos_train::Summary>| {
            let cell = &cells[todo[k].0];
            let o = self.member_outcome(cell, r, size);
            report(cell, &o, "");
            outcomes.lock().unwrap_or_else(|p| p.into_inner())[k] = Some(o);
        };
        // `EOS_ENSEMBLE_STACK=1`: the stacked gradient pass (same results; slower than
        // per-member products on the richness-sweep shapes, docs/performance.md).
        let stack = std::env::var("EOS_ENSEMBLE_STACK").is_ok_and(|v| v.trim() == "1");
        eos_train::ensemble::train_ensemble(&args, stack, &on_done);
        let outcomes = outcomes.into_inner().unwrap_or_else(|p| p.into_inner());
        outcomes
            .into_iter()
            .map(|o| o.unwrap_or(Outcome::Interrupted))
            .collect()
    }

    /// The outcome of an ensemble member, with its `train.log` (how it ended) and, when
    /// it trained, the [`Launcher::on_done`] hook.
    fn member_outcome(
        &self,
        cell: &Cell,
        r: &eos_train::Result<eos_train::Summary>,
        size: usize,
    ) -> Outcome {
        let dir = self.dir(cell);
        let line = match r {
            Ok(s) => format!(
                "{}: {} (last loss {:.6e}); metrics in {} (trained in-process in an \
                 ensemble of {size})\n",
                s.status,
                s.reason,
                s.last_loss,
                dir.join("metrics.jsonl").display()
            ),
            Err(e) => format!("error: {e:#}\n"),
        };
        let _ = write_atomic(&dir.join("train.log"), line.as_bytes());
        match r {
            Ok(s) => {
                if let Some(hook) = self.on_done {
                    hook(&dir);
                }
                match status_outcome(s.status) {
                    Some(o) => o,
                    None if interrupted() => Outcome::Interrupted,
                    None => self.failed(
                        cell,
                        Error::Cell {
                            cell: cell.id.clone(),
                            problem: format!("the run ended with status `{}`", s.status),
                        },
                    ),
                }
            }
            Err(e) => self.failed(
                cell,
                Error::Cell {
                    cell: cell.id.clone(),
                    problem: format!("{e:#}"),
                },
            ),
        }
    }

    fn failed(&self, cell: &Cell, e: crate::Error) -> Outcome {
        let msg = format!("{e:#}");
        let _ = write_atomic(&self.dir(cell).join(ERROR_FILE), msg.as_bytes());
        Outcome::Failed(msg)
    }

    /// Makes `cell`'s directory ready for a run (no error file, `cell.json` written);
    /// whether the run is to be resumed (it has `meta.json` and `metrics.jsonl`).
    fn prepare(&self, cell: &Cell) -> crate::Result<bool> {
        let dir = self.dir(cell);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("{}: cannot create the cell directory", dir.display()))?;
        let err_file = dir.join(ERROR_FILE);
        if err_file.exists() {
            std::fs::remove_file(&err_file)
                .with_context(|| format!("{}: cannot remove", err_file.display()))?;
        }
        let values: Map<String, Value> = cell
            .values
            .iter()
            .map(|(k, v)| Ok((k.clone(), serde_json::to_value(v)?)))
            .collect::<crate::Result<_>>()?;
        let file = CellFile {
            id: cell.id.clone(),
            values,
        };
        write_atomic(
            &dir.join(CELL_FILE),
            serde_json::to_string_pretty(&file)?.as_bytes(),
        )?;

        Ok(dir.join("meta.json").exists() && dir.join("metrics.jsonl").exists())
    }

    fn try_run(&self, cell: &Cell) -> crate::Result<Outcome> {
        let dir = self.dir(cell);
        let resume = self.prepare(cell)?;
        let mut cmd = Command::new(&self.exe);
        cmd.arg("train").arg(&self.base);
        for s in self.fixed.iter().cloned().chain(cell.set_args()) {
            cmd.arg("--set").arg(s);
        }
        cmd.arg("--out").arg(&dir);
        if resume {
            cmd.arg("--resume");
        }
        if let Some(d) = &self.device {
            cmd.arg("--device").arg(d);
        }
        if let Some(t) = self.threads {
            cmd.env("RAYON_NUM_THREADS", t.to_string());
        }
        let log_path = dir.join("train.log");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("{}: cannot open", log_path.display()))?;
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start `{} train`", self.exe.display()))?;
        let status = wait_child(&mut child)
            .with_context(|| format!("waiting for `{} train`", self.exe.display()))?;
        let meta = RunMeta::read(&dir)?;
        if let Some(o) = meta.as_ref().and_then(|m| status_outcome(m.status)) {
            return Ok(o);
        }
        if interrupted()
            && meta
                .as_ref()
                .is_some_and(|m| m.status == Status::Interrupted)
        {
            return Ok(Outcome::Interrupted);
        }
        let tail = last_lines(&log_path, 5);
        let why = match (&meta, status.success()) {
            (Some(m), true) => format!("the run ended with status `{}`", m.status),
            (_, _) => format!("`eos train` exited with {status}"),
        };
        Err(Error::Cell {
            cell: cell.id.clone(),
            problem: format!("{why}; end of {}:\n{tail}", log_path.display()),
        })
    }
}

/// Prints how `cell` ended (`before`: " (done before)" or "").
fn report(cell: &Cell, o: &Outcome, before: &str) {
    match o {
        Outcome::Finished => eprintln!("{}: finished{before}", cell.id),
        Outcome::Diverged => eprintln!("{}: diverged{before}", cell.id),
        Outcome::Interrupted => eprintln!("{}: interrupted", cell.id),
        Outcome::Failed(e) => eprintln!("{}: FAILED: {e}", cell.id),
    }
}

/// Set by [`interrupt`]: no new cell starts.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// The PIDs of the running children (for [`interrupt`] to forward the signal to).
static CHILDREN: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Stops the sweep: no new cell starts, and every running child gets SIGINT (it
/// checkpoints and ends `interrupted`); the sweep waits for them and returns. Call
/// it from a signal handler thread (the `ctrlc` crate's), not from a signal context.
pub fn interrupt() {
    INTERRUPTED.store(true, Ordering::SeqCst);
    // Cells trained in-process stop after their current step, checkpointed.
    eos_train::interrupt();
    let pids = CHILDREN.lock().unwrap_or_else(|p| p.into_inner()).clone();
    for pid in pids {
        // `kill` the utility: no `unsafe` for libc::kill.
        let _ = Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Whether [`interrupt`] was called.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Waits for `child`, registered in [`CHILDREN`] meanwhile; a child started just after
/// an interrupt is signalled here.
fn wait_child(child: &mut std::process::Child) -> std::io::Result<std::process::ExitStatus> {
    let pid = child.id();
    CHILDREN.lock().unwrap_or_else(|p| p.into_inner()).push(pid);
    if interrupted() {
        let _ = Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status();
    }
    let status = child.wait();
    CHILDREN
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .retain(|&p| p != pid);
    status
}

fn status_outcome(status: Status) -> Option<Outcome> {
    match status {
        Status::Finished => Some(Outcome::Finished),
        Status::Diverged => Some(Outcome::Diverged),
        _ => None,
    }
}

fn last_lines(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// `RAYON_NUM_THREADS` for `workers` children, unless the user set it.
pub fn threads_per_child(workers: usize) -> Option<usize> {
    if workers <= 1 || std::env::var_os("RAYON_NUM_THREADS").is_some() {
        return None;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    Some((cores / workers).max(1))
}

/// A work queue served by `workers` threads; a job may enqueue more jobs.
///
/// `handle(job, push)` runs one job; the pool ends when the queue is empty and no
/// job is running (so none can push more).
pub fn run_pool<J: Send>(jobs: Vec<J>, workers: usize, handle: impl Fn(J, &dyn Fn(J)) + Sync) {
    let state = Mutex::new((VecDeque::from(jobs), 0usize));
    let cv = Condvar::new();
    let push = |j: J| {
        let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
        s.0.push_back(j);
        cv.notify_one();
    };
    std::thread::scope(|scope| {
        for _ in 0..workers.max(1) {
            scope.spawn(|| loop {
                let job = {
                    let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
                    loop {
                        if let Some(j) = s.0.pop_front() {
                            s.1 += 1;
                            break Some(j);
                        }
                        if s.1 == 0 {
                            break None;
                        }
                        s = cv.wait(s).unwrap_or_else(|p| p.into_inner());
                    }
                };
                let Some(job) = job else {
                    cv.notify_all();
                    return;
                };
                handle(job, &push);
                let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
                s.1 -= 1;
                cv.notify_all();
            });
        }
    });
}

/// The text of `DIR/sweep.sbatch`: a job array of `tasks` tasks, task i running
/// `eos sweep SPEC --out DIR --cell i`.
pub fn sbatch_script(
    exe: &Path,
    spec: &Path,
    out: &Path,
    tasks: usize,
    options: &[String],
) -> String {
    let name = spec
        .file_stem()
        .map_or("sweep".into(), |s| s.to_string_lossy().into_owned());
    let q = |p: &Path| shell_quote(&p.display().to_string());
    let mut s = String::from("#!/bin/bash\n");
    s += &format!("#SBATCH --job-name=eos-{name}\n");
    s += &format!("#SBATCH --array=0-{}\n", tasks.saturating_sub(1));
    s += &format!("#SBATCH --output={}/slurm/%A_%a.out\n", out.display());
    for o in options {
        s += &format!("#SBATCH {o}\n");
    }
    s += "#\n# One sweep cell (or, with [eta_search], one learning-rate search) per array\n";
    s += "# index. Each task gathers the tables when it ends; to gather once all are done:\n";
    s += &format!(
        "#   {} sweep {} --out {} --gather\n",
        q(exe),
        q(spec),
        q(out)
    );
    s += "set -euo pipefail\n";
    s += &format!(
        "exec {} sweep {} --out {} --cell \"$SLURM_ARRAY_TASK_ID\"\n",
        q(exe),
        q(spec),
        q(out)
    );
    s
}

fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+=".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn pool_runs_pushed_jobs() {
        let done = AtomicUsize::new(0);
        // Jobs n > 0 push n − 1: 3 → 2 → 1 → 0, and 2 → 1 → 0: 7 jobs in all.
        run_pool(vec![3usize, 2], 3, |n, push| {
            done.fetch_add(1, Ordering::SeqCst);
            if n > 0 {
                push(n - 1);
            }
        });
        assert_eq!(done.load(Ordering::SeqCst), 7);
    }

    #[test]
    fn script() {
        let s = sbatch_script(
            Path::new("/bin/eos"),
            Path::new("/x/my sweep.toml"),
            Path::new("/r/out"),
            12,
            &["--time=01:00:00".into()],
        );
        assert!(s.contains("#SBATCH --array=0-11\n"), "{s}");
        assert!(s.contains("#SBATCH --time=01:00:00\n"));
        assert!(s.contains(
            "exec /bin/eos sweep '/x/my sweep.toml' --out /r/out --cell \"$SLURM_ARRAY_TASK_ID\""
        ));
    }
}
