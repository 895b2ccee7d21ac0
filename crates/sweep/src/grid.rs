//! Grid cells: the Cartesian product of the `[grid]` values, readable cell ids, the
//! `--set` arguments of a cell, and the learning-rate ladder of `[eta_search]`.
//!
//! A cell id joins `name=value` for every key in sorted key order, e.g.
//! `gamma=0.1_lr=0.316228_seed=0`: `name` is the last segment of the dotted key (the
//! whole key where two keys share a last segment), floats are rounded to 6
//! significant digits, and characters outside `[A-Za-z0-9.+=-]` become `-`. The id
//! depends only on the values, so growing a grid keeps the old cells' directories.
//!
//! The ladder of THEORY.md §3 (2 points per decade, from large to small) is
//! η_k = η_max · 10^(−k / per_decade), k = 0, 1, …

use crate::error::Error;
use toml::Value;

/// (dotted key, value) pairs, in key order.
pub type Values = Vec<(String, Value)>;

/// One run of the sweep: its id and its (key, value) overrides in key order.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub id: String,
    pub values: Vec<(String, Value)>,
}

impl Cell {
    /// A cell from its values (in key order); `names` are the keys' short names.
    pub fn new(values: Vec<(String, Value)>, names: &[(String, String)]) -> Self {
        let id = cell_id(&values, names);
        Self { id, values }
    }

    /// The `--set key=value` arguments of this cell.
    pub fn set_args(&self) -> Vec<String> {
        self.values.iter().map(|(k, v)| set_arg(k, v)).collect()
    }

    /// The value of `key`, if the cell sets it.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.values.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

/// Every combination of the axes' values (the last axis varies fastest).
pub fn product(axes: &[(String, Vec<Value>)]) -> Vec<Vec<(String, Value)>> {
    let mut out: Vec<Vec<(String, Value)>> = vec![Vec::new()];
    for (key, values) in axes {
        out = out
            .into_iter()
            .flat_map(|prefix| {
                values.iter().map(move |v| {
                    let mut p = prefix.clone();
                    p.push((key.clone(), v.clone()));
                    p
                })
            })
            .collect();
    }
    out
}

/// (key, short name) for each key: its last dotted segment, or the whole key when
/// another key has the same last segment.
pub fn short_names(keys: &[String]) -> Vec<(String, String)> {
    let last = |k: &str| k.rsplit('.').next().unwrap_or(k).to_string();
    keys.iter()
        .map(|k| {
            let clash = keys.iter().filter(|o| last(o) == last(k)).count() > 1;
            (k.clone(), if clash { k.clone() } else { last(k) })
        })
        .collect()
}

/// The id of a cell with these values (see the module docs); `base` when empty.
pub fn cell_id(values: &[(String, Value)], names: &[(String, String)]) -> String {
    if values.is_empty() {
        return "base".into();
    }
    values
        .iter()
        .map(|(k, v)| {
            let name = names
                .iter()
                .find(|(key, _)| key == k)
                .map_or(k.as_str(), |(_, n)| n.as_str());
            sanitize(&format!("{name}={}", label(v)))
        })
        .collect::<Vec<_>>()
        .join("_")
}

/// Errors if two cells share an id (values equal to 6 significant digits).
pub fn check_unique(cells: &[Cell]) -> crate::Result<()> {
    let mut ids: Vec<&str> = cells.iter().map(|c| c.id.as_str()).collect();
    ids.sort_unstable();
    if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
        return Err(Error::request(format!(
            "two grid cells get the id `{}`: their values agree to 6 significant digits; \
             make them differ more",
            w[0]
        )));
    }
    Ok(())
}

/// A short, file-name-safe rendering of a value for ids.
pub fn label(v: &Value) -> String {
    match v {
        Value::Float(f) => float_label(*f),
        Value::Integer(i) => i.to_string(),
        Value::Boolean(b) => b.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(label).collect::<Vec<_>>().join("x"),
        other => other.to_string(),
    }
}

/// `f` rounded to 6 significant digits: plain in [1e-4, 1e6), else `1.5e-7` style.
pub fn float_label(f: f64) -> String {
    if !f.is_finite() || f == 0.0 {
        return f.to_string();
    }
    let r: f64 = format!("{f:.5e}").parse().unwrap_or(f);
    if (1e-4..1e6).contains(&r.abs()) {
        r.to_string()
    } else {
        format!("{r:e}")
    }
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '+' | '=' | '-' => c,
            _ => '-',
        })
        .collect()
}

/// `key=value` for `eos train --set`, the value as TOML: floats in exponent form
/// (always read back as floats, full precision), strings quoted.
pub fn set_arg(key: &str, v: &Value) -> String {
    match v {
        Value::Float(f) if f.is_finite() => format!("{key}={f:e}"),
        other => format!("{key}={other}"),
    }
}

/// η_k = max · 10^(−k / per_decade).
pub fn ladder(max: f64, per_decade: u32, k: usize) -> f64 {
    max * 10f64.powf(-(k as f64) / f64::from(per_decade.max(1)))
}

/// The ladder from `max` down to `min` (inclusive up to rounding).
pub fn ladder_to(max: f64, per_decade: u32, min: f64) -> Vec<f64> {
    (0..)
        .map(|k| ladder(max, per_decade, k))
        .take_while(|&lr| lr >= min * (1.0 - 1e-9) && lr > 0.0)
        .take(10_000)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(x: f64) -> Value {
        Value::Float(x)
    }

    #[test]
    fn ids_and_set_args() {
        let keys = vec![
            "model.parameterization.gamma".to_string(),
            "optim.lr".to_string(),
            "train.seed".to_string(),
        ];
        let names = short_names(&keys);
        let values = vec![
            (keys[0].clone(), f(0.01)),
            (keys[1].clone(), f(10f64.powf(-0.5))),
            (keys[2].clone(), Value::Integer(3)),
        ];
        let c = Cell::new(values, &names);
        assert_eq!(c.id, "gamma=0.01_lr=0.316228_seed=3");
        assert_eq!(
            c.set_args(),
            [
                "model.parameterization.gamma=1e-2",
                "optim.lr=3.1622776601683794e-1",
                "train.seed=3"
            ]
        );
        assert_eq!(
            set_arg("model.activation", &Value::String("relu".into())),
            "model.activation=\"relu\""
        );
        let clash = short_names(&["a.lr".into(), "b.lr".into(), "c.x".into()]);
        assert_eq!(clash[0].1, "a.lr");
        assert_eq!(clash[2].1, "x");
        assert_eq!(float_label(1e-7), "1e-7");
        assert_eq!(float_label(2.5e6), "2.5e6");
        assert_eq!(float_label(1.0), "1");
        assert_eq!(
            label(&Value::Array(vec![Value::Integer(64), Value::Integer(32)])),
            "64x32"
        );
        assert_eq!(sanitize("act=a/b c"), "act=a-b-c");
        assert_eq!(cell_id(&[], &[]), "base");
    }

    #[test]
    fn product_order_and_uniqueness() {
        let axes = vec![
            ("a".to_string(), vec![Value::Integer(1), Value::Integer(2)]),
            ("b".to_string(), vec![f(0.5), f(0.25), f(0.125)]),
        ];
        let p = product(&axes);
        assert_eq!(p.len(), 6);
        assert_eq!(
            p[1],
            vec![("a".into(), Value::Integer(1)), ("b".into(), f(0.25))]
        );
        let names = short_names(&["a".into(), "b".into()]);
        let cells: Vec<Cell> = p.into_iter().map(|v| Cell::new(v, &names)).collect();
        assert!(check_unique(&cells).is_ok());
        let twins = vec![
            Cell::new(vec![("b".into(), f(0.1234561))], &names),
            Cell::new(vec![("b".into(), f(0.1234562))], &names),
        ];
        assert!(check_unique(&twins).is_err());
    }

    #[test]
    fn ladder_two_per_decade() {
        let l = ladder_to(1.0, 2, 1e-2);
        assert_eq!(l.len(), 5);
        assert!((l[1] - 10f64.powf(-0.5)).abs() < 1e-16);
        assert!((l[4] - 1e-2).abs() < 1e-17);
        assert!((ladder(10.0, 2, 7) - 10f64.powf(-2.5)).abs() < 1e-15);
    }
}
