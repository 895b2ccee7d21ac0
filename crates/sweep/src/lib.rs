//! eos-sweep: `eos sweep SWEEP.toml`, a grid of `eos train` runs, restart-safe, gathered into
//! one table with η* per group (DESIGN.md "Runner", THEORY.md §3).
//!
//! ```toml
//! base = "quickstart.toml"          # the config every cell starts from (relative to this file)
//! lr_key = "optim.lr"               # default; the key η* is taken over
//! seed_key = "train.seed"           # default; averaged over before η* is taken
//! final_fraction = 0.1              # final loss = mean of the last 10 % of logged losses
//!
//! [set]                             # optional: overrides for every cell
//! "train.steps" = 500
//!
//! [grid]                            # dotted key → array of values (quoted or as tables)
//! "model.parameterization.gamma" = [0.01, 0.1, 1.0, 10.0]
//! "optim.lr" = [0.01, 0.1, 1.0]
//! "train.seed" = [0, 1]
//!
//! [eta_search]                      # optional, instead of an lr axis in [grid]
//! max = 10.0                        # the largest η tried
//! per_decade = 2                    # ladder η_k = max · 10^(−k/per_decade)
//! decades_below = 3                 # decades run below the first stable η
//! min = 1e-8                        # give up below this (default max · 1e-12)
//!
//! [slurm]                           # optional: extra #SBATCH lines for --slurm
//! options = ["--time=02:00:00", "--cpus-per-task=4"]
//! ```
//!
//! **Divergence-aware search** (THEORY.md §3, Atanasov et al.): for each group (the
//! grid values other than the seed), η walks the ladder from `max` down, all seeds at
//! each rung; the first rung where every seed `finished` is the start, and the
//! `decades_below · per_decade` rungs below it then run (in parallel). Every rung
//! tried, diverged ones included, is a result row. A failed child stops its group.
//!
//! Output in DIR (default `runs/<sweep-stem>`): `sweep.json` (keys and settings, for
//! `eos report`), `cells/<id>/` (one run each, see [`grid`] for ids and
//! [`exec`] for restarts), `results.csv`, `results.jsonl`, `best.csv` ([`results`]).
//!
//! The cells of a grid, without running them:
//!
//! ```
//! use std::path::Path;
//! use eos_sweep::SweepSpec;
//!
//! let text = "base = \"quickstart.toml\"\n[grid]\n\"optim.lr\" = [0.01, 0.1]\n\"train.seed\" = [0, 1]\n";
//! let spec = SweepSpec::parse(text, Path::new("experiments/gamma.toml"))?;
//! let cells = spec.cells()?;
//! assert_eq!(cells.len(), 4);
//! assert_eq!(spec.keys(), ["optim.lr", "train.seed"]);
//! # Ok::<(), eos_sweep::Error>(())
//! ```

pub mod error;
pub mod exec;
pub mod fit;
pub mod grid;
pub mod results;
pub mod spec;

use std::path::{Path, PathBuf};

use crate::error::Context;
use toml::Value;

pub use error::{Error, Result};
pub use exec::{interrupt, interrupted};
use exec::{Launcher, Outcome};
use grid::Cell;
pub use spec::{EtaSearch, SweepSpec};

/// What `eos sweep` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct SweepOptions {
    pub spec: PathBuf,
    /// Output directory (default `runs/<sweep-stem>`).
    pub out: Option<PathBuf>,
    pub workers: usize,
    /// The `eos` executable the cells run (the CLI passes its own path).
    pub exe: PathBuf,
    /// Run only job `i` (a cell, or a group under `[eta_search]`): Slurm array tasks.
    pub cell: Option<usize>,
    /// Write `DIR/sweep.sbatch` instead of running.
    pub slurm: bool,
    /// Only gather the tables from the cells already there.
    pub gather: bool,
    /// `--device` for the children.
    pub device: Option<String>,
    /// Called with the directory of each cell trained in-process (as an ensemble
    /// member) when it ends: the CLI draws its plots there, as `eos train` does.
    pub on_done: Option<fn(&Path)>,
}

/// What a sweep did.
#[derive(Debug, Clone)]
pub struct SweepSummary {
    pub out: PathBuf,
    pub rows: Vec<results::CellRow>,
    /// The Slurm script, when `slurm` was asked for.
    pub sbatch: Option<PathBuf>,
}

enum Job {
    /// Cells run together (one ensemble, or one child each when ensembles are off).
    Cells(Vec<Cell>),
    Group(usize),
}

/// Runs (or continues, or gathers, or scripts) the sweep of `opts`.
pub fn sweep(opts: &SweepOptions) -> crate::Result<SweepSummary> {
    let spec = SweepSpec::load(&opts.spec)?;
    if !opts.gather && !opts.slurm && !spec.base.is_file() {
        // Once, up front, rather than once per cell.
        return Err(error::spec_err(
            &opts.spec,
            "key `base`",
            format!("{}: no such file", spec.base.display()),
        ));
    }
    let out = out_dir(opts);
    // One sweep per directory (Slurm tasks, `--cell`, share it: each cell is locked
    // by its own `eos train`).
    let _lock = match opts.cell.is_none() && !opts.gather && !opts.slurm {
        true => Some(eos_train::lock::DirLock::acquire(&out, "sweep")?),
        false => None,
    };
    std::fs::create_dir_all(out.join("cells"))
        .with_context(|| format!("{}: cannot create the sweep directory", out.display()))?;
    write_manifest(&spec, &out)?;
    let (groups, seeds) = spec.search_groups();
    let cells = if spec.eta_search.is_none() {
        spec.cells()?
    } else {
        Vec::new()
    };
    let n_jobs = if spec.eta_search.is_some() {
        groups.len()
    } else {
        cells.len()
    };

    if opts.slurm {
        return write_sbatch(opts, &spec, out, n_jobs);
    }
    if !opts.gather {
        let jobs = Jobs {
            spec: &spec,
            out: &out,
            cells: &cells,
            groups: &groups,
            seeds: &seeds,
        };
        run_jobs(opts, &jobs, n_jobs)?;
    }
    let mut rows = results::gather(&out, spec.final_fraction)?;
    add_not_run(&mut rows, &cells)?;
    results::write_tables(&out, &spec.keys(), &spec.lr_key, &spec.seed_key, &rows)?;
    Ok(SweepSummary {
        out,
        rows,
        sbatch: None,
    })
}

/// The output directory: `--out`, or `runs/<sweep-stem>`.
fn out_dir(opts: &SweepOptions) -> PathBuf {
    opts.out.clone().unwrap_or_else(|| {
        let stem = opts
            .spec
            .file_stem()
            .map_or("sweep".into(), |s| s.to_string_lossy().into_owned());
        PathBuf::from("runs").join(stem)
    })
}

/// `--slurm`: writes `out/sweep.sbatch` (an array of `n_jobs` tasks) and `out/slurm/`.
fn write_sbatch(
    opts: &SweepOptions,
    spec: &SweepSpec,
    out: PathBuf,
    n_jobs: usize,
) -> crate::Result<SweepSummary> {
    let abs = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let script = exec::sbatch_script(
        &abs(&opts.exe),
        &abs(&opts.spec),
        &abs(&out),
        n_jobs,
        &spec.slurm_options,
    );
    let path = out.join("sweep.sbatch");
    eos_model::io::write_atomic(&path, script.as_bytes())?;
    std::fs::create_dir_all(out.join("slurm"))?;
    Ok(SweepSummary {
        out,
        rows: Vec::new(),
        sbatch: Some(path),
    })
}

/// What the jobs of a sweep are drawn from.
struct Jobs<'a> {
    spec: &'a SweepSpec,
    out: &'a Path,
    /// The grid cells (empty under `[eta_search]`).
    cells: &'a [Cell],
    /// The η-search groups and the seeds each runs.
    groups: &'a [grid::Values],
    seeds: &'a [Option<Value>],
}

/// Runs every job (or only `--cell i`) on a pool of `opts.workers` children.
fn run_jobs(opts: &SweepOptions, jobs: &Jobs, n_jobs: usize) -> crate::Result<()> {
    let ids: Vec<usize> = match opts.cell {
        Some(i) if i >= n_jobs => {
            return Err(Error::request(format!(
                "--cell {i}: the sweep has {n_jobs} jobs (0 … {})",
                n_jobs.saturating_sub(1)
            )))
        }
        Some(i) => vec![i],
        None => (0..n_jobs).collect(),
    };
    let workers = if opts.cell.is_some() {
        1
    } else {
        opts.workers.max(1)
    };
    let spec = jobs.spec;
    let launcher = Launcher {
        exe: opts.exe.clone(),
        base: spec.base.clone(),
        fixed: spec.set.clone(),
        cells_dir: jobs.out.join("cells"),
        device: opts.device.clone(),
        threads: exec::threads_per_child(workers),
        ensemble: spec.ensemble,
        on_done: opts.on_done,
    };
    let queue: Vec<Job> = match spec.eta_search {
        Some(_) => ids.into_iter().map(Job::Group).collect(),
        None => {
            let cells: Vec<Cell> = ids.into_iter().map(|i| jobs.cells[i].clone()).collect();
            ensembles(cells, spec, workers)
                .into_iter()
                .map(Job::Cells)
                .collect()
        }
    };
    exec::run_pool(queue, workers, |job, push| match job {
        Job::Cells(c) => {
            launcher.run_many(&c);
        }
        Job::Group(g) => search_group(spec, &launcher, &jobs.groups[g], jobs.seeds, &|c| {
            for e in ensembles(c, spec, workers) {
                push(Job::Cells(e));
            }
        }),
    });
    Ok(())
}

/// `cells` cut into jobs: ensembles of near-equal size, at most `ensemble_size` cells
/// each and at least one per worker where there are enough cells; one cell per job when
/// ensembles are off.
fn ensembles(cells: Vec<Cell>, spec: &SweepSpec, workers: usize) -> Vec<Vec<Cell>> {
    if cells.is_empty() {
        return Vec::new();
    }
    let per = match spec.ensemble {
        true => cells
            .len()
            .div_ceil(workers.max(1))
            .clamp(1, spec.ensemble_size),
        false => 1,
    };
    let jobs = cells.len().div_ceil(per);
    let (base, extra) = (cells.len() / jobs, cells.len() % jobs);
    let mut it = cells.into_iter();
    (0..jobs)
        .map(|k| it.by_ref().take(base + usize::from(k < extra)).collect())
        .collect()
}

/// A `not_run` row for every grid cell that has no directory yet (never started).
fn add_not_run(rows: &mut Vec<results::CellRow>, cells: &[Cell]) -> crate::Result<()> {
    let have: std::collections::HashSet<String> = rows.iter().map(|r| r.cell.clone()).collect();
    for c in cells.iter().filter(|c| !have.contains(&c.id)) {
        let values = c
            .values
            .iter()
            .map(|(k, v)| Ok((k.clone(), serde_json::to_value(v)?)))
            .collect::<crate::Result<_>>()?;
        rows.push(results::CellRow {
            cell: c.id.clone(),
            dir: format!("cells/{}", c.id),
            values,
            status: eos_train::Status::NotRun,
            final_loss: None,
            last_loss: None,
            steps: None,
            error: None,
        });
    }
    Ok(())
}

/// The divergence-aware η ladder of one group (module docs); the rungs below the
/// start go to `push` so that other workers can take them.
fn search_group(
    spec: &SweepSpec,
    launcher: &Launcher,
    group: &[(String, Value)],
    seeds: &[Option<Value>],
    push: &dyn Fn(Vec<Cell>),
) {
    let Some(s) = &spec.eta_search else { return };
    let ladder = grid::ladder_to(s.max, s.per_decade, s.min.unwrap_or(s.max * 1e-12));
    let below = (s.decades_below * f64::from(s.per_decade)).round() as usize;
    for (k, &lr) in ladder.iter().enumerate() {
        // The seeds of a rung together (one ensemble when ensembles are on).
        let cells: Vec<Cell> = seeds
            .iter()
            .map(|seed| spec.search_cell(group, lr, seed))
            .collect();
        let mut stable = true;
        for o in launcher.run_many(&cells) {
            match o {
                Outcome::Finished => {}
                Outcome::Diverged => stable = false,
                Outcome::Failed(_) | Outcome::Interrupted => return,
            }
        }
        if stable {
            let mut rest = Vec::new();
            for j in k + 1..=k + below {
                for seed in seeds {
                    rest.push(spec.search_cell(group, grid::ladder(s.max, s.per_decade, j), seed));
                }
            }
            push(rest);
            return;
        }
    }
    eprintln!(
        "group {group:?}: every η down to {:e} diverged",
        ladder.last().copied().unwrap_or(s.max)
    );
}

/// `DIR/sweep.json`: what `eos report` needs to read the tables.
fn write_manifest(spec: &SweepSpec, out: &Path) -> crate::Result<()> {
    let m = serde_json::json!({
        "spec": spec.path.display().to_string(),
        "base": spec.base.display().to_string(),
        "keys": spec.keys(),
        "lr_key": spec.lr_key,
        "seed_key": spec.seed_key,
        "final_fraction": spec.final_fraction,
        "eta_search": spec.eta_search.as_ref().map(|s| serde_json::json!({
            "max": s.max, "per_decade": s.per_decade, "decades_below": s.decades_below, "min": s.min,
        })),
    });
    eos_model::io::write_atomic(
        &out.join("sweep.json"),
        serde_json::to_string_pretty(&m)?.as_bytes(),
    )?;
    Ok(())
}
