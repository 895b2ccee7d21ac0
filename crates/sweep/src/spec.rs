//! `SWEEP.toml`: parsing and validation (format in [`super`]), and the cells it
//! describes.
//!
//! Keys of `[set]` and `[grid]` may be quoted dotted keys (`"optim.lr" = …`) or TOML
//! tables (`optim.lr = …`, `[grid.optim]`): both are flattened to dotted keys. Every
//! error names the sweep file and the key.

use std::path::{Path, PathBuf};

use crate::error::{spec_err, Context, Error};
use serde::Deserialize;
use toml::{Table, Value};

use super::grid::{self, Cell};
use eos_train::metrics::read::DEFAULT_FINAL_FRACTION;

/// `[eta_search]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EtaSearch {
    pub max: f64,
    #[serde(default = "default_per_decade")]
    pub per_decade: u32,
    #[serde(default = "default_decades_below")]
    pub decades_below: f64,
    #[serde(default)]
    pub min: Option<f64>,
}

/// The checks of an `[eta_search]` table: no lr axis in `[grid]`, `max` > 0,
/// `per_decade` ≥ 1, `decades_below` ≥ 0, 0 < `min` ≤ `max`.
fn check_eta_search(
    s: &EtaSearch,
    grid: &[(String, Vec<Value>)],
    lr_key: &str,
    path: &Path,
) -> crate::Result<()> {
    if grid.iter().any(|(k, _)| k == lr_key) {
        return Err(spec_err(
            path,
            format!("[grid] key `{lr_key}`"),
            "remove it, [eta_search] chooses the learning rates",
        ));
    }
    if !(s.max > 0.0 && s.max.is_finite()) {
        return Err(spec_err(
            path,
            "key `eta_search.max`",
            format!("expected a positive number, got {}", s.max),
        ));
    }
    if s.per_decade == 0 {
        return Err(spec_err(
            path,
            "key `eta_search.per_decade`",
            "expected at least 1",
        ));
    }
    if !(s.decades_below >= 0.0 && s.decades_below.is_finite()) {
        return Err(spec_err(
            path,
            "key `eta_search.decades_below`",
            "expected a number ≥ 0",
        ));
    }
    if let Some(m) = s.min.filter(|m| !(*m > 0.0 && *m <= s.max)) {
        return Err(spec_err(
            path,
            "key `eta_search.min`",
            format!("expected 0 < min ≤ max, got {m}"),
        ));
    }
    Ok(())
}

fn default_per_decade() -> u32 {
    2
}
fn default_decades_below() -> f64 {
    3.0
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    base: PathBuf,
    #[serde(default)]
    lr_key: Option<String>,
    #[serde(default)]
    seed_key: Option<String>,
    #[serde(default)]
    final_fraction: Option<f64>,
    #[serde(default)]
    set: Table,
    #[serde(default)]
    grid: Table,
    #[serde(default)]
    eta_search: Option<EtaSearch>,
    #[serde(default)]
    slurm: Option<SlurmSpec>,
    #[serde(default)]
    ensemble: Option<bool>,
    #[serde(default)]
    ensemble_size: Option<usize>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SlurmSpec {
    #[serde(default)]
    options: Vec<String>,
}

/// A validated `SWEEP.toml`.
#[derive(Debug, Clone)]
pub struct SweepSpec {
    /// The sweep file.
    pub path: PathBuf,
    /// The base config, resolved against the sweep file's folder.
    pub base: PathBuf,
    pub lr_key: String,
    pub seed_key: String,
    pub final_fraction: f64,
    /// Fixed `key=value` overrides.
    pub set: Vec<String>,
    /// Grid axes, sorted by key.
    pub grid: Vec<(String, Vec<Value>)>,
    pub eta_search: Option<EtaSearch>,
    pub slurm_options: Vec<String>,
    /// Train the cells of a job in-process as one ensemble (`ensemble`, default true;
    /// `eos_train::ensemble`), else one `eos train` child per cell.
    pub ensemble: bool,
    /// At most this many cells per ensemble (`ensemble_size`, default
    /// [`DEFAULT_ENSEMBLE_SIZE`]).
    pub ensemble_size: usize,
}

/// Cells per ensemble unless `ensemble_size` says otherwise.
pub const DEFAULT_ENSEMBLE_SIZE: usize = 32;

impl SweepSpec {
    /// Reads and validates a sweep file; errors name the file and the key.
    pub fn load(path: &Path) -> crate::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read the sweep file", path.display()))?;
        Self::parse(&text, path)
    }

    /// Validates sweep-file text; `path` locates the base config and names errors.
    pub fn parse(text: &str, path: &Path) -> crate::Result<Self> {
        let raw: RawSpec = toml::from_str(text).map_err(|e| Error::SpecFile {
            file: path.to_path_buf(),
            problem: e.to_string(),
        })?;
        let folder = path.parent().unwrap_or(Path::new(""));
        let mut set = Vec::new();
        flatten("", &raw.set, &mut |k, v| set.push(grid::set_arg(&k, &v)));
        let mut grid = Vec::new();
        let mut bad = None;
        flatten("", &raw.grid, &mut |k, v| match v {
            Value::Array(a) if !a.is_empty() => grid.push((k, a)),
            other => {
                let what = format!("got {}", other.type_str());
                bad.get_or_insert(spec_err(
                    path,
                    format!("[grid] key `{k}`"),
                    format!("expected a non-empty array of values, {what}"),
                ));
            }
        });
        if let Some(e) = bad {
            return Err(e);
        }
        grid.sort_by(|a, b| a.0.cmp(&b.0));
        let lr_key = raw.lr_key.unwrap_or_else(|| "optim.lr".into());
        let seed_key = raw.seed_key.unwrap_or_else(|| "train.seed".into());
        let final_fraction = raw.final_fraction.unwrap_or(DEFAULT_FINAL_FRACTION);
        if !(final_fraction > 0.0 && final_fraction <= 1.0) {
            return Err(spec_err(
                path,
                "key `final_fraction`",
                format!("expected a number in (0, 1], got {final_fraction}"),
            ));
        }
        if let Some(s) = &raw.eta_search {
            check_eta_search(s, &grid, &lr_key, path)?;
        }
        let ensemble_size = raw.ensemble_size.unwrap_or(DEFAULT_ENSEMBLE_SIZE);
        if ensemble_size == 0 {
            return Err(spec_err(path, "key `ensemble_size`", "expected at least 1"));
        }
        Ok(Self {
            path: path.to_path_buf(),
            base: folder.join(&raw.base),
            lr_key,
            seed_key,
            final_fraction,
            set,
            grid,
            eta_search: raw.eta_search,
            slurm_options: raw.slurm.unwrap_or_default().options,
            ensemble: raw.ensemble.unwrap_or(true),
            ensemble_size,
        })
    }

    /// Every key a cell sets, sorted (the grid keys, plus the lr key under a search).
    pub fn keys(&self) -> Vec<String> {
        let mut k: Vec<String> = self.grid.iter().map(|(k, _)| k.clone()).collect();
        if self.eta_search.is_some() {
            k.push(self.lr_key.clone());
        }
        k.sort();
        k
    }

    /// A cell from values in any order (sorted here).
    pub fn cell(&self, mut values: Vec<(String, Value)>) -> Cell {
        values.sort_by(|a, b| a.0.cmp(&b.0));
        Cell::new(values, &grid::short_names(&self.keys()))
    }

    /// The cells of a plain grid (without `[eta_search]`), in a fixed order.
    pub fn cells(&self) -> crate::Result<Vec<Cell>> {
        let cells: Vec<Cell> = grid::product(&self.grid)
            .into_iter()
            .map(|v| self.cell(v))
            .collect();
        grid::check_unique(&cells)?;
        Ok(cells)
    }

    /// Under `[eta_search]`: the groups (grid values without the seed) and the seeds.
    pub fn search_groups(&self) -> (Vec<grid::Values>, Vec<Option<Value>>) {
        let others: Vec<(String, Vec<Value>)> = self
            .grid
            .iter()
            .filter(|(k, _)| *k != self.seed_key)
            .cloned()
            .collect();
        let seeds = match self.grid.iter().find(|(k, _)| *k == self.seed_key) {
            Some((_, v)) => v.iter().cloned().map(Some).collect(),
            None => vec![None],
        };
        (grid::product(&others), seeds)
    }

    /// The cell of `group` at learning rate `lr` and `seed`.
    pub fn search_cell(&self, group: &[(String, Value)], lr: f64, seed: &Option<Value>) -> Cell {
        let mut v = group.to_vec();
        v.push((self.lr_key.clone(), Value::Float(lr)));
        if let Some(s) = seed {
            v.push((self.seed_key.clone(), s.clone()));
        }
        self.cell(v)
    }
}

/// Calls `f(dotted key, value)` for every non-table leaf of `t`.
fn flatten(prefix: &str, t: &Table, f: &mut dyn FnMut(String, Value)) {
    for (k, v) in t {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            Value::Table(inner) => flatten(&key, inner, f),
            other => f(key, other.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_parsing_grid_and_ids() {
        let text = r#"
    base = "../base.toml"
    [set]
    train.steps = 50
    [grid]
    "model.parameterization.gamma" = [0.01, 10.0]
    optim.lr = [0.1, 1e-3]
    "train.seed" = [0, 1]
    "model.activation" = ["relu"]
    "#;
        let s = SweepSpec::parse(text, Path::new("sweeps/s.toml")).unwrap();
        assert_eq!(s.base, Path::new("sweeps/../base.toml"));
        assert_eq!(s.set, ["train.steps=50"]);
        let cells = s.cells().unwrap();
        assert_eq!(cells.len(), 8);
        // Keys sorted: model.activation, model.parameterization.gamma, optim.lr, train.seed;
        // the last key varies fastest.
        assert_eq!(cells[0].id, "activation=relu_gamma=0.01_lr=0.1_seed=0");
        assert_eq!(cells[1].id, "activation=relu_gamma=0.01_lr=0.1_seed=1");
        assert_eq!(cells[7].id, "activation=relu_gamma=10_lr=0.001_seed=1");
        assert_eq!(
            cells[7].set_args(),
            [
                "model.activation=\"relu\"",
                "model.parameterization.gamma=1e1",
                "optim.lr=1e-3",
                "train.seed=1"
            ]
        );

        let bad = |t: &str| {
            SweepSpec::parse(t, Path::new("bad.toml"))
                .unwrap_err()
                .to_string()
        };
        let e = bad("base = \"b.toml\"\n[grid]\n\"optim.lr\" = 0.1\n");
        assert!(
            e.contains("bad.toml") && e.contains("`optim.lr`") && e.contains("non-empty array"),
            "{e}"
        );
        let e = bad("base = \"b.toml\"\nworkers = 3\n");
        assert!(e.contains("bad.toml") && e.contains("workers"), "{e}");
        let e = bad("base = \"b.toml\"\n[grid]\n\"optim.lr\" = [1]\n[eta_search]\nmax = 1.0\n");
        assert!(e.contains("[eta_search] chooses"), "{e}");
        let e = bad("base = \"b.toml\"\n[eta_search]\nmax = -1.0\n");
        assert!(e.contains("eta_search.max"), "{e}");
        let e = bad("base = \"b.toml\"\nfinal_fraction = 0.0\n");
        assert!(e.contains("`final_fraction`"), "{e}");
        let e = bad("base = \"b.toml\"\nensemble_size = 0\n");
        assert!(e.contains("`ensemble_size`"), "{e}");
        assert!(s.ensemble && s.ensemble_size == DEFAULT_ENSEMBLE_SIZE);
        let off =
            SweepSpec::parse("base = \"b.toml\"\nensemble = false\n", Path::new("x")).unwrap();
        assert!(!off.ensemble);
    }
}
