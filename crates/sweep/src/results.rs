//! Gathering a sweep's cells into tables.
//!
//! Each cell directory `DIR/cells/<id>/` holds `cell.json` (its id and grid values,
//! written by the sweep before the run starts) next to the run's own files. A row
//! of `results.jsonl` / `results.csv` per cell:
//!
//! | field        | meaning                                                            |
//! |--------------|--------------------------------------------------------------------|
//! | `cell`       | the cell id (= its directory name)                                 |
//! | `values`     | grid key → value (JSONL); one column per key in the CSV            |
//! | `status`     | `meta.json` status, or `failed` (the child errored), or `not_run`  |
//! | `final_loss` | mean of the last `final_fraction` of logged losses (null if non-finite) |
//! | `last_loss`  | the last logged loss                                               |
//! | `steps`      | `steps_done` of `meta.json`, else the last logged step             |
//! | `error`      | why a cell failed                                                  |
//!
//! `best.csv`: one row per group (all keys but the lr and seed keys) with η* — see
//! [`crate::fit`]: seeds averaged first, only cells with status `finished`
//! count, a learning rate with any non-finished seed is not eligible.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::error::Context;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use eos_model::io::write_atomic;
use eos_train::Status;

use crate::fit::{eta_star, EtaStar};
use eos_train::metrics::read::{final_loss, Metrics, RunMeta};

/// The file a cell's directory gets before its run starts.
pub const CELL_FILE: &str = "cell.json";
/// Written when a cell's child process fails; removed when it is retried.
pub const ERROR_FILE: &str = "sweep-error.txt";

/// One row of `results.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellRow {
    pub cell: String,
    /// The cell directory, relative to the sweep directory.
    pub dir: String,
    pub values: Map<String, Value>,
    pub status: Status,
    pub final_loss: Option<f64>,
    pub last_loss: Option<f64>,
    pub steps: Option<u64>,
    #[serde(default)]
    pub error: Option<String>,
}

/// The content of `cell.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CellFile {
    pub id: String,
    pub values: Map<String, Value>,
}

/// Reads one cell directory (`None` if it has no `cell.json`).
pub fn read_cell(dir: &Path, fraction: f64) -> crate::Result<Option<CellRow>> {
    let p = dir.join(CELL_FILE);
    if !p.exists() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(&p).with_context(|| format!("{}: cannot read", p.display()))?;
    let cell: CellFile = serde_json::from_str(&text)
        .with_context(|| format!("{}: expected {{\"id\": …, \"values\": {{…}}}}", p.display()))?;
    let meta = RunMeta::read(dir)?;
    let metrics_path = dir.join("metrics.jsonl");
    let m = if metrics_path.exists() {
        Metrics::read(&metrics_path)?
    } else {
        Metrics::default()
    };
    let losses = m.losses();
    let error = std::fs::read_to_string(dir.join(ERROR_FILE)).ok();
    let status = match (&meta, &error) {
        (Some(m), _) if m.is_done() => m.status,
        (_, Some(_)) => Status::Failed,
        (Some(m), None) => m.status,
        (None, None) => Status::NotRun,
    };
    let steps = meta
        .as_ref()
        .and_then(|m| m.steps_done)
        .filter(|s| *s > 0)
        .or_else(|| m.last_step());
    let done = meta.as_ref().is_some_and(RunMeta::is_done);
    Ok(Some(CellRow {
        dir: format!("cells/{}", cell.id),
        cell: cell.id,
        values: cell.values,
        status,
        final_loss: final_loss(&losses, fraction),
        last_loss: losses.last().copied().filter(|l| l.is_finite()),
        steps,
        error: error.filter(|_| !done).map(|e| e.trim().to_string()),
    }))
}

/// Orders values numerically where both are numbers, else by their JSON text.
pub fn cmp_value(a: &Value, b: &Value) -> std::cmp::Ordering {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        _ => a.to_string().cmp(&b.to_string()),
    }
}

/// Lexicographic [`cmp_value`] over two sequences.
fn cmp_all<'a>(
    a: impl Iterator<Item = &'a Value>,
    b: impl Iterator<Item = &'a Value>,
) -> std::cmp::Ordering {
    let (a, b): (Vec<&Value>, Vec<&Value>) = (a.collect(), b.collect());
    a.iter()
        .zip(&b)
        .map(|(x, y)| cmp_value(x, y))
        .find(|o| o.is_ne())
        .unwrap_or(a.len().cmp(&b.len()))
}

/// Every cell of the sweep in `out` (directories `out/cells/*` with a `cell.json`),
/// sorted by their values (numerically, keys in order), then by id.
pub fn gather(out: &Path, fraction: f64) -> crate::Result<Vec<CellRow>> {
    let cells = out.join("cells");
    if !cells.exists() {
        return Ok(Vec::new());
    }
    let dirs: Vec<_> = std::fs::read_dir(&cells)
        .with_context(|| format!("{}: cannot list", cells.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    let mut rows = Vec::new();
    for d in dirs {
        rows.extend(read_cell(&d, fraction)?);
    }
    rows.sort_by(|a, b| cmp_all(a.values.values(), b.values.values()).then(a.cell.cmp(&b.cell)));
    Ok(rows)
}

/// Reads a `results.jsonl`.
pub fn read_rows(path: &Path) -> crate::Result<Vec<CellRow>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .with_context(|| format!("{}: line {}: not a results row", path.display(), i + 1))
        })
        .collect()
}

/// A group's (key, value) pairs.
pub type Group = Vec<(String, Value)>;

/// η* of one group of cells.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupBest {
    /// The group's (key, value) pairs (all keys but the lr and seed keys).
    pub group: Group,
    pub eta: Option<EtaStar>,
    /// Cells in the group, and how many diverged.
    pub cells: usize,
    pub diverged: usize,
}

/// η* per group (groups ordered by their values, numerically where numbers).
pub fn best_per_group(rows: &[CellRow], lr_key: &str, seed_key: &str) -> Vec<GroupBest> {
    let mut groups: BTreeMap<String, (Group, Vec<&CellRow>)> = BTreeMap::new();
    for r in rows {
        let g: Vec<(String, Value)> = r
            .values
            .iter()
            .filter(|(k, _)| *k != lr_key && *k != seed_key)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let key = serde_json::to_string(&g).unwrap_or_default();
        groups
            .entry(key)
            .or_insert_with(|| (g, Vec::new()))
            .1
            .push(r);
    }
    let mut groups: Vec<(Group, Vec<&CellRow>)> = groups.into_values().collect();
    groups.sort_by(|a, b| cmp_all(a.0.iter().map(|p| &p.1), b.0.iter().map(|p| &p.1)));
    groups
        .into_iter()
        .map(|(group, rs)| {
            let samples: Vec<(f64, Option<f64>)> = rs
                .iter()
                .filter_map(|r| {
                    let lr = r.values.get(lr_key)?.as_f64()?;
                    Some((lr, r.final_loss.filter(|_| r.status == Status::Finished)))
                })
                .collect();
            GroupBest {
                group,
                eta: eta_star(&samples),
                cells: rs.len(),
                diverged: rs.iter().filter(|r| r.status == Status::Diverged).count(),
            }
        })
        .collect()
}

/// Writes `results.jsonl`, `results.csv` and `best.csv` into `out` (atomically).
pub fn write_tables(
    out: &Path,
    keys: &[String],
    lr_key: &str,
    seed_key: &str,
    rows: &[CellRow],
) -> crate::Result<()> {
    let mut jsonl = String::new();
    for r in rows {
        jsonl.push_str(&serde_json::to_string(r)?);
        jsonl.push('\n');
    }
    write_atomic(&out.join("results.jsonl"), jsonl.as_bytes())?;

    let mut csv = csv_line(
        ["cell"]
            .into_iter()
            .map(String::from)
            .chain(keys.iter().cloned())
            .chain(["status", "final_loss", "last_loss", "steps", "error"].map(String::from)),
    );
    for r in rows {
        let vals = keys
            .iter()
            .map(|k| r.values.get(k).map(cell_text).unwrap_or_default());
        let tail = [
            num(r.final_loss),
            num(r.last_loss),
            r.steps.map(|s| s.to_string()),
        ]
        .map(Option::unwrap_or_default);
        csv += &csv_line(
            [r.cell.clone()]
                .into_iter()
                .chain(vals)
                .chain([r.status.to_string()])
                .chain(tail)
                .chain([r.error.clone().unwrap_or_default()]),
        );
    }
    write_atomic(&out.join("results.csv"), csv.as_bytes())?;

    let group_keys: Vec<&String> = keys
        .iter()
        .filter(|k| *k != lr_key && *k != seed_key)
        .collect();
    let head = group_keys.iter().map(|k| k.to_string()).chain(
        [
            "best_lr",
            "best_loss",
            "best_lr_refined",
            "lrs",
            "lrs_eligible",
            "cells",
            "diverged",
        ]
        .map(String::from),
    );
    let mut best = csv_line(head);
    for g in best_per_group(rows, lr_key, seed_key) {
        let vals = group_keys.iter().map(|k| {
            let v = g.group.iter().find(|(gk, _)| gk == *k).map(|(_, v)| v);
            v.map(cell_text).unwrap_or_default()
        });
        let e = g.eta;
        let tail = [
            num(e.map(|e| e.lr)),
            num(e.map(|e| e.loss)),
            num(e.map(|e| e.lr_refined)),
            e.map(|e| e.n_lr.to_string()),
            e.map(|e| e.n_eligible.to_string()),
        ]
        .map(Option::unwrap_or_default);
        let counts = [g.cells.to_string(), g.diverged.to_string()];
        best += &csv_line(vals.chain(tail).chain(counts));
    }
    write_atomic(&out.join("best.csv"), best.as_bytes())?;
    Ok(())
}

fn num(v: Option<f64>) -> Option<String> {
    v.map(|x| format!("{x:e}"))
}

/// A JSON value as CSV text: strings bare, everything else as JSON.
fn cell_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn csv_line(fields: impl IntoIterator<Item = String>) -> String {
    let mut line = String::new();
    for (i, f) in fields.into_iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        if f.contains([',', '"', '\n', '\r']) {
            let _ = write!(line, "\"{}\"", f.replace('"', "\"\""));
        } else {
            line.push_str(&f);
        }
    }
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quoting() {
        let l = csv_line(["a".into(), "b,c".into(), "say \"hi\"".into()]);
        assert_eq!(l, "a,\"b,c\",\"say \"\"hi\"\"\"\n");
        assert_eq!(cell_text(&Value::from(0.5)), "0.5");
        assert_eq!(cell_text(&Value::from("relu")), "relu");
        let v = |x: f64| Value::from(x);
        assert!(cmp_value(&v(3.0), &v(10.0)).is_lt());
        assert!(cmp_all([v(1.0), v(3.0)].iter(), [v(1.0), v(10.0)].iter()).is_lt());
        assert!(cmp_value(&Value::from("b"), &Value::from("a")).is_gt());
    }
}
