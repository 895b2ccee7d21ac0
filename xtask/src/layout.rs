//! `cargo xtask layout`: the checks of the code's shape that the compiler does not do.
//!
//! - **No module cycle**: inside every crate, the `crate::…` / `super::…` paths of the
//!   files of one top-level module (`src/x.rs` or `src/x/`) give edges x → y between
//!   top-level modules; the graph must be acyclic (the crate root, which declares
//!   and re-exports the modules, is not a node). Cargo already rejects crate cycles.
//! - **Every source file has a header**: each `.rs` file under `crates/`, `xtask/`
//!   and `benches/` starts with a `//!` comment.
//! - **The code map is complete**: every folder under a crate's `src/` (and every
//!   crate) is named in `docs/ARCHITECTURE.md`.
//! - **No long function**: no `fn` in non-test code is over 80 lines, numerical
//!   kernels excepted ([`crate::fnlen`], issue 11).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Runs the four checks on the workspace at `root`; one error lists every failure.
pub fn check(root: &Path) -> Result<()> {
    let mut problems = Vec::new();
    let crates = crate_dirs(root)?;
    for dir in &crates {
        problems.extend(module_cycles(dir)?);
    }
    for top in ["crates", "xtask", "benches"] {
        let files = rust_files(&root.join(top))?;
        problems.extend(crate::fnlen::check(root, &files)?);
        for f in files {
            let text = std::fs::read_to_string(&f)
                .with_context(|| format!("{}: cannot read", f.display()))?;
            if !text.trim_start().starts_with("//!") {
                problems.push(format!(
                    "{}: no `//!` header saying what the file is for",
                    rel(root, &f)
                ));
            }
        }
    }
    let arch_path = root.join("docs/ARCHITECTURE.md");
    let arch = std::fs::read_to_string(&arch_path)
        .with_context(|| format!("{}: cannot read", arch_path.display()))?;
    for dir in &crates {
        let name = rel(root, dir);
        if !arch.contains(&name) {
            problems.push(format!(
                "docs/ARCHITECTURE.md: crate folder `{name}` not named"
            ));
        }
        for sub in folders(&dir.join("src"))? {
            let name = rel(root, &sub);
            if !arch.contains(&name) {
                problems.push(format!("docs/ARCHITECTURE.md: folder `{name}/` not named"));
            }
        }
    }
    if !problems.is_empty() {
        bail!("layout check failed:\n  {}", problems.join("\n  "));
    }
    eprintln!(
        "layout: no module cycle, every file has a header, ARCHITECTURE.md names every folder, \
         no function over {} lines",
        crate::fnlen::MAX_FN_LINES
    );
    Ok(())
}

fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root)
        .unwrap_or(p)
        .to_string_lossy()
        .into_owned()
}

/// The crate folders: `crates/*`, `benches`, `xtask` (those with a `src/`).
fn crate_dirs(root: &Path) -> Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(root.join("crates"))
        .context("crates/: cannot list")?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("src").is_dir())
        .collect();
    out.sort();
    out.extend(
        ["benches", "xtask"]
            .map(|d| root.join(d))
            .into_iter()
            .filter(|p| p.join("src").is_dir()),
    );
    Ok(out)
}

/// Every folder below `dir` (not `dir` itself), sorted.
fn folders(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).with_context(|| format!("{}: cannot list", d.display()))? {
            let p = e?.path();
            if p.is_dir() {
                out.push(p.clone());
                stack.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Every `.rs` file below `dir`, skipping `target/` folders.
fn rust_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    if !dir.is_dir() {
        return Ok(out);
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).with_context(|| format!("{}: cannot list", d.display()))? {
            let p = e?.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n != "target") {
                    stack.push(p);
                }
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The module path of a file below `src/`: `src/a/b.rs` → [a, b]; `mod.rs`, `lib.rs`
/// and `main.rs` name their folder.
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap_or(file);
    let mut parts: Vec<String> = rel
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .collect();
    if let Some(last) = parts.pop() {
        let stem = last.trim_end_matches(".rs").to_string();
        let root_file = parts.is_empty() && (stem == "lib" || stem == "main");
        if stem != "mod" && !root_file {
            parts.push(stem);
        }
    }
    parts
}

/// The cycles between the top-level modules of the crate in `dir`, one line each.
pub fn module_cycles(dir: &Path) -> Result<Vec<String>> {
    let src = dir.join("src");
    let files = rust_files(&src)?;
    let tops: BTreeSet<String> = files
        .iter()
        .filter_map(|f| module_path(&src, f).first().cloned())
        .collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let path = module_path(&src, f);
        let Some(from) = path.first() else {
            continue; // the crate root
        };
        let text = std::fs::read_to_string(f)?;
        for target in referenced_modules(&text, &path) {
            if target != *from && tops.contains(&target) {
                edges.entry(from.clone()).or_default().insert(target);
            }
        }
    }
    Ok(find_cycles(&edges)
        .into_iter()
        .map(|c| format!("{}: module cycle {}", dir.display(), c.join(" → ")))
        .collect())
}

/// The top-level modules named by the `crate::x` and `super::…::x` paths of a file
/// whose module path is `path` (comment lines skipped).
fn referenced_modules(text: &str, path: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        let code = code.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::").or_else(|| rest.find("super::")) {
            let (is_crate, skip) = match (rest.find("crate::"), rest.find("super::")) {
                (Some(c), Some(s)) if c < s => (true, c),
                (Some(c), None) => (true, c),
                (_, Some(s)) => (false, s),
                _ => (true, i),
            };
            let before = rest[..skip].chars().last();
            let after = &rest[skip..];
            rest = &after[7..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue; // e.g. `eos_crate::` or `$crate::` or part of a longer path
            }
            // Resolve to a path from the crate root.
            let mut depth = if is_crate {
                0
            } else {
                path.len().saturating_sub(1)
            };
            let mut tail = rest;
            if !is_crate {
                while let Some(t) = tail.strip_prefix("super::") {
                    depth = depth.saturating_sub(1);
                    tail = t;
                }
            }
            if depth > 0 {
                continue; // inside the file's own top-level module
            }
            out.extend(first_idents(tail));
        }
    }
    out
}

/// The first path segment(s) after `crate::`: `x::…` gives `x`; `{x, y::z}` gives `x`, `y`.
fn first_idents(tail: &str) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    if let Some(group) = tail.strip_prefix('{') {
        let mut out = Vec::new();
        let mut depth = 0usize;
        let mut start = true;
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => break,
                '}' => depth -= 1,
                ',' if depth == 0 => start = true,
                c if start && !c.is_whitespace() => {
                    out.push(ident(&group[i..]));
                    start = false;
                }
                _ => {}
            }
        }
        out.retain(|s| !s.is_empty() && s != "self");
        out
    } else {
        vec![ident(tail)]
    }
}

/// The elementary cycles found by depth-first search (each reported once).
fn find_cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    let mut cycles = Vec::new();
    let mut seen: BTreeSet<Vec<String>> = BTreeSet::new();
    for start in edges.keys() {
        let mut stack = vec![(start.clone(), vec![start.clone()])];
        while let Some((node, trail)) = stack.pop() {
            for next in edges.get(&node).into_iter().flatten() {
                if next == start {
                    let mut key = trail.clone();
                    key.sort();
                    if seen.insert(key) {
                        let mut c = trail.clone();
                        c.push(start.clone());
                        cycles.push(c);
                    }
                } else if !trail.contains(next) && next > start {
                    let mut t = trail.clone();
                    t.push(next.clone());
                    stack.push((next.clone(), t));
                }
            }
        }
    }
    cycles
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(pairs: &[(&str, &str)]) -> BTreeMap<String, BTreeSet<String>> {
        let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, b) in pairs {
            g.entry(a.to_string()).or_default().insert(b.to_string());
        }
        g
    }

    #[test]
    fn finds_cycles_and_accepts_dags() {
        assert!(find_cycles(&graph(&[("a", "b"), ("b", "c"), ("a", "c")])).is_empty());
        let c = find_cycles(&graph(&[("a", "b"), ("b", "c"), ("c", "a")]));
        assert_eq!(c, vec![vec!["a", "b", "c", "a"]]);
    }

    #[test]
    fn paths_resolve_to_top_level_modules() {
        let p = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let r = referenced_modules("use crate::{config::Config, data, self};", &p(&["train"]));
        assert_eq!(r, vec!["config", "data"]);
        // `super::` from src/a/b.rs stays inside a; from src/a.rs it is the root.
        assert!(referenced_modules("use super::x::Y;", &p(&["a", "b"])).is_empty());
        assert_eq!(
            referenced_modules("use super::x::Y;", &p(&["a"])),
            vec!["x"]
        );
        assert_eq!(
            referenced_modules("use super::super::x;", &p(&["a", "b"])),
            vec!["x"]
        );
        assert!(referenced_modules("// crate::x", &p(&["a"])).is_empty());
        assert!(referenced_modules("eos_crate::x", &p(&["a"])).is_empty());
    }

    #[test]
    fn the_workspace_has_no_module_cycle() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let mut found = Vec::new();
        for dir in crate_dirs(root).unwrap() {
            found.extend(module_cycles(&dir).unwrap());
        }
        assert!(found.is_empty(), "{}", found.join("\n"));
    }
}
