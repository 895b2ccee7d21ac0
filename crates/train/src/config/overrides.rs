//! TOML plumbing for configs: `--set a.b=value` overrides on the value tree, and
//! deserialisation whose errors name the dotted key.
//!
//! Overrides are applied to the parsed tree (`toml::Table`) before deserialising: the
//! value is read as a TOML value (`0.05`, `true`, `[64, 64]`, `{ kind = "sgd" }`) and
//! falls back to a plain string (`relu`), missing tables are created. The tree is then
//! written back to TOML text and deserialised from it, so that serde errors come with
//! a byte span; [`key_at`] turns the span into the dotted key it points at.

use crate::error::Error;
use serde::de::DeserializeOwned;
use toml::{Table, Value};

/// Parses TOML text into a table; errors name `origin` and the line.
pub fn parse(text: &str, origin: &str) -> crate::Result<Table> {
    text.parse::<Table>()
        .map_err(|e| Error::Syntax(format!("not valid TOML: {e}")).in_config(origin))
}

/// Parses the value of an override: a TOML value, or else the raw text as a string.
pub fn parse_value(raw: &str) -> Value {
    let raw = raw.trim();
    match format!("v = {raw}").parse::<Table>() {
        Ok(mut t) => t.remove("v").unwrap_or_else(|| Value::String(raw.into())),
        Err(_) => Value::String(raw.into()),
    }
}

/// Applies one `a.b.c=value` override to `table`.
pub fn apply(table: &mut Table, set: &str) -> crate::Result<()> {
    let (key, raw) = set.split_once('=').ok_or_else(|| {
        Error::Syntax(format!(
            "--set `{set}`: expected KEY=VALUE, e.g. optim.lr=0.05"
        ))
    })?;
    let key = key.trim();
    let parts: Vec<&str> = key.split('.').map(str::trim).collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(Error::Syntax(format!(
            "--set `{set}`: `{key}` is not a dotted key like train.steps"
        )));
    }
    let (last, parents) = parts.split_last().expect("split yields at least one part");
    let mut node = table;
    for (i, p) in parents.iter().enumerate() {
        let entry = node
            .entry(p.to_string())
            .or_insert_with(|| Value::Table(Table::new()));
        node = match entry {
            Value::Table(t) => t,
            other => {
                return Err(Error::Syntax(format!(
                    "--set `{set}`: `{}` is a {}, not a table",
                    parts[..=i].join("."),
                    other.type_str()
                )))
            }
        };
    }
    // A value that opens an array, a table or a quoted string is meant as TOML: its
    // syntax error is the message (not a string where a list was expected).
    let opens = |c: char| raw.trim_start().starts_with(c);
    if ['[', '{', '"', '\''].into_iter().any(opens) {
        if let Err(e) = format!("v = {}", raw.trim()).parse::<Table>() {
            return Err(Error::Syntax(format!(
                "--set `{set}`: the value is not valid TOML: {}",
                e.message().trim()
            )));
        }
    }
    node.insert(last.to_string(), parse_value(raw));
    Ok(())
}

/// Deserialises `table` into `T`; errors are `origin: key `a.b`: message`.
pub fn from_table<T: DeserializeOwned>(table: &Table, origin: &str) -> crate::Result<T> {
    let text = toml::to_string(table)?;
    toml::from_str::<T>(&text).map_err(|e| {
        let msg = e.message().trim().to_string();
        // An empty span is an error of the top-level table (e.g. a missing section).
        let span = e.span().filter(|s| !s.is_empty());
        match span.map(|s| key_at(&text, s.start)) {
            Some(k) if !k.is_empty() => {
                let k = refine(table, &k, &msg).unwrap_or(k);
                // [optim] is read in two parts: `kind` and `lr` are valid there too.
                let msg = match k == "optim" && msg.starts_with("unknown field") {
                    true => msg.replacen("expected one of ", "expected one of `kind`, `lr`, ", 1),
                    false => msg,
                };
                Error::Schema {
                    key: k,
                    problem: msg,
                }
                .in_config(origin)
            }
            _ => Error::Syntax(msg).in_config(origin),
        }
    })
}

/// Errors inside a table that serde buffers (a table with `kind`) point at the table;
/// for `invalid type|value: <found>` the key is the one leaf of that table holding
/// the found value.
fn refine(table: &Table, key: &str, msg: &str) -> Option<String> {
    let rest = msg
        .strip_prefix("invalid type: ")
        .or_else(|| msg.strip_prefix("invalid value: "))?;
    let found = match rest.split_once('"') {
        Some((_, tail)) if rest.starts_with("string") => tail.rsplit_once('"')?.0.to_string(),
        _ => rest.split('`').nth(1)?.to_string(),
    };
    let mut node = table;
    for part in key.split('.') {
        node = node.get(part)?.as_table()?;
    }
    let mut hits = Vec::new();
    leaves(node, key, &found, &mut hits);
    (hits.len() == 1).then(|| hits.remove(0))
}

fn leaves(t: &Table, prefix: &str, found: &str, hits: &mut Vec<String>) {
    for (k, v) in t {
        let name = format!("{prefix}.{k}");
        match v {
            Value::Table(sub) => leaves(sub, &name, found, hits),
            Value::String(s) if s == found => hits.push(name),
            Value::Integer(i) if i.to_string() == found => hits.push(name),
            Value::Float(x) if x.to_string() == found => hits.push(name),
            Value::Boolean(b) if b.to_string() == found => hits.push(name),
            _ => {}
        }
    }
}

/// The dotted key of the TOML line holding byte `offset` of `text`: the enclosing
/// `[table]` header plus the line's `key =` (or the header itself).
pub fn key_at(text: &str, offset: usize) -> String {
    let mut header = String::new();
    let mut start = 0;
    for line in text.split_inclusive('\n') {
        let end = start + line.len();
        let t = line.trim();
        let is_header = t.starts_with('[');
        if is_header {
            header = t.trim_matches(|c| c == '[' || c == ']').trim().to_string();
        }
        if offset < end {
            if is_header {
                return header;
            }
            let key = t.split_once('=').map(|(k, _)| k.trim().trim_matches('"'));
            return match key {
                Some(k) if header.is_empty() => k.to_string(),
                Some(k) => format!("{header}.{k}"),
                None => header,
            };
        }
        start = end;
    }
    header
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_create_tables_and_parse_values() {
        let mut t = parse("[a]\nx = 1\n", "f").unwrap();
        apply(&mut t, "a.x=2.5").unwrap();
        apply(&mut t, "b.c.d = relu").unwrap();
        apply(&mut t, "a.w=[1, 2]").unwrap();
        assert_eq!(t["a"]["x"].as_float(), Some(2.5));
        assert_eq!(t["b"]["c"]["d"].as_str(), Some("relu"));
        assert_eq!(t["a"]["w"].as_array().map(|a| a.len()), Some(2));
        let e = apply(&mut t, "a.x.y=1").unwrap_err().to_string();
        assert!(e.contains("`a.x` is a float, not a table"), "{e}");
        assert!(apply(&mut t, "novalue").is_err());
        assert!(apply(&mut t, "a..b=1").is_err());
    }

    #[test]
    fn errors_inside_tagged_tables_name_the_leaf() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Top {
            data: Data,
        }
        #[derive(Debug, serde::Deserialize)]
        #[serde(tag = "kind")]
        #[allow(dead_code)]
        enum Data {
            A { n: usize, m: usize },
        }
        for (set, key) in [("data.n=\"abc\"", "data.n"), ("data.m=-3", "data.m")] {
            let mut t = parse("[data]\nkind = \"A\"\nn = 1\nm = 2\n", "f").unwrap();
            apply(&mut t, set).unwrap();
            let e = from_table::<Top>(&t, "f").unwrap_err().to_string();
            assert!(e.contains(&format!("key `{key}`")), "{e}");
        }
    }

    #[test]
    fn missing_top_level_fields_name_no_key() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Top {
            a: Table,
            b: Table,
        }
        let t = parse("[a]\nx = 1\n", "f").unwrap();
        let e = from_table::<Top>(&t, "f").unwrap_err().to_string();
        assert_eq!(e, "f: missing field `b`");
    }

    #[test]
    fn keys_from_offsets() {
        let text = "top = 1\n[train]\nsteps = \"x\"\n[probes.sharpness]\nevery = 2\n";
        assert_eq!(key_at(text, 2), "top");
        assert_eq!(key_at(text, text.find("\"x\"").unwrap()), "train.steps");
        assert_eq!(
            key_at(text, text.find("[probes").unwrap()),
            "probes.sharpness"
        );
        assert_eq!(
            key_at(text, text.find("every").unwrap()),
            "probes.sharpness.every"
        );
    }
}
