//! Layer lists as JSON, the `model` metadata of the eos-net/1 format: a list of layer
//! objects `{"type": ..., fields}`. Fields and defaults (a field may be omitted where a
//! default is given):
//!
//! | type | fields |
//! |---|---|
//! | `dense` | `out`, `bias` = true, `multiplier` = 1 |
//! | `conv2d` | `out`, `kernel`, `stride` = 1, `padding` = 0, `bias` = true, `multiplier` = 1 |
//! | `act` | `fn` = "relu" |
//! | `avgpool2d`, `maxpool2d` | `kernel` |
//! | `flatten` | |
//! | `residual` | `body` (a list of layer objects) |
//! | `layernorm` | `eps` = 1e-5, `affine` = true |
//! | `embedding` | `vocab`, `dim` |
//! | `pos_embedding` | `len`, `dim` |
//! | `attention` | `heads`, `causal` = true, `scale` = "sqrt" (or "mup": 1/(d/H)) |
//! | `symmetric_pair` | `out`, `fn` = "relu" |
//! | `coord_pair` | `fn` = "relu" |
//!
//! Unknown types and unknown fields are errors naming the layer's path.
//!
//! Limits (issue 16: a hostile file must get an error, never a stack overflow, an
//! exponential shape walk or an allocation beyond the machine): at most
//! [`MAX_NESTING`] residual blocks inside one another (checked on the JSON text before
//! it is parsed), [`MAX_JSON_BYTES`] of text, [`MAX_LAYERS`] layer objects in all,
//! and every size field and every dimension of a shape at most [`MAX_DIM`].
//! [`check_limits`] applies the nesting and layer-count limits to layer lists built in
//! code as well (`Network::new`, `Network::random`).

use serde_json::{json, Map, Value};

use super::{
    ActLayer, Attention, AttentionScale, AvgPool2d, Conv2d, CoordPair, Dense, Embedding, Flatten,
    LayerKind, LayerNorm, MaxPool2d, PosEmbedding, Residual, SymmetricPair,
};
use crate::{invalid, Activation, Result};

/// Residual blocks inside one another at most (a `residual` whose body holds a
/// `residual` nests 2 deep).
pub const MAX_NESTING: usize = 16;
/// Layer objects in one model at most, counted at every nesting level.
pub const MAX_LAYERS: usize = 10_000;
/// Bytes of a layer list's JSON text at most (1 MiB; [`MAX_LAYERS`] layers take far
/// less): bounds the memory of the parsed JSON before any of it is read.
pub const MAX_JSON_BYTES: usize = 1 << 20;
/// Any size field (`out`, `kernel`, `vocab`, …) and any dimension of a shape at most
/// (2³¹): sums and products of a few of them cannot overflow.
pub const MAX_DIM: usize = 1 << 31;

const TYPES: &str = "dense, conv2d, act, avgpool2d, maxpool2d, flatten, residual, layernorm, \
                     embedding, pos_embedding, attention, symmetric_pair, coord_pair";

/// Parses a JSON list of layer objects within the limits ([`MAX_NESTING`],
/// [`MAX_JSON_BYTES`], [`MAX_LAYERS`], [`MAX_DIM`]).
pub fn parse_layers(json: &str) -> Result<Vec<LayerKind>> {
    // A layer list nests two JSON levels per residual (`{"body": [ … ]}`) inside the
    // outer list and object; deeper text is refused before serde walks it.
    let (depth, allowed) = (json_depth(json), 2 * MAX_NESTING + 2);
    if depth > allowed {
        return invalid(format!(
            "model: JSON nested {depth} levels deep; a layer list allows at most \
             {MAX_NESTING} residual blocks inside one another ({allowed} levels)"
        ));
    }
    if json.len() > MAX_JSON_BYTES {
        return invalid(format!(
            "model: {} bytes of JSON, over the limit of {MAX_JSON_BYTES}",
            json.len()
        ));
    }
    let v: Value = serde_json::from_str(json)
        .map_err(|e| crate::Error::Invalid(format!("model: not valid JSON: {e}")))?;
    let layers = parse_list(&v, "layers.")?;
    check_limits(&layers)?;
    Ok(layers)
}

/// The deepest nesting of `[` and `{` in a JSON text (brackets inside strings skipped).
fn json_depth(text: &str) -> usize {
    let (mut depth, mut max, mut in_str, mut escaped) = (0usize, 0usize, false, false);
    for b in text.bytes() {
        if in_str {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_str = false,
                _ => {}
            }
        } else {
            match b {
                b'"' => in_str = true,
                b'[' | b'{' => {
                    depth += 1;
                    max = max.max(depth);
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
    }
    max
}

/// Refuses layer lists with more than [`MAX_NESTING`] residual blocks inside one
/// another or more than [`MAX_LAYERS`] layers; the error names the path and the limit.
/// Never recurses deeper than the limit.
pub fn check_limits(layers: &[LayerKind]) -> Result<()> {
    let mut count = 0;
    walk_limits(layers, 0, &mut count, "layers.")
}

fn walk_limits(layers: &[LayerKind], depth: usize, count: &mut usize, prefix: &str) -> Result<()> {
    for (i, l) in layers.iter().enumerate() {
        *count += 1;
        if *count > MAX_LAYERS {
            return invalid(format!(
                "{prefix}{i}: more than {MAX_LAYERS} layers (the limit of a model)"
            ));
        }
        if let LayerKind::Residual(r) = l {
            if depth + 1 > MAX_NESTING {
                return invalid(format!(
                    "{prefix}{i} (residual): more than {MAX_NESTING} residual blocks inside \
                     one another (the limit of a model)"
                ));
            }
            walk_limits(&r.body, depth + 1, count, &format!("{prefix}{i}.body."))?;
        }
    }
    Ok(())
}

fn parse_list(v: &Value, prefix: &str) -> Result<Vec<LayerKind>> {
    let Some(items) = v.as_array() else {
        return invalid(format!("{prefix}: expected a JSON list of layer objects"));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| parse_layer(item, &format!("{prefix}{i}")))
        .collect()
}

/// Reads the fields of one layer object, checking that no other field is present.
struct Fields<'a> {
    obj: &'a Map<String, Value>,
    path: &'a str,
    kind: &'a str,
    used: Vec<&'static str>,
}

impl Fields<'_> {
    fn get(&mut self, key: &'static str) -> Option<&Value> {
        self.used.push(key);
        self.obj.get(key)
    }

    fn err<T>(&self, msg: String) -> Result<T> {
        invalid(format!("{} ({}): {msg}", self.path, self.kind))
    }

    fn usize(&mut self, key: &'static str, default: Option<usize>) -> Result<usize> {
        match (self.get(key).cloned(), default) {
            (Some(v), _) => match v.as_u64() {
                Some(u) if u <= MAX_DIM as u64 => Ok(u as usize),
                Some(u) => self.err(format!("`{key}` is {u}, over the limit of {MAX_DIM}")),
                None => self.err(format!("`{key}` is {v}, expected a non-negative integer")),
            },
            (None, Some(d)) => Ok(d),
            (None, None) => self.err(format!("missing field `{key}`")),
        }
    }

    fn f64(&mut self, key: &'static str, default: f64) -> Result<f64> {
        match self.get(key).cloned() {
            Some(v) => match v.as_f64() {
                Some(x) => Ok(x),
                None => self.err(format!("`{key}` is {v}, expected a number")),
            },
            None => Ok(default),
        }
    }

    fn bool(&mut self, key: &'static str, default: bool) -> Result<bool> {
        match self.get(key).cloned() {
            Some(v) => match v.as_bool() {
                Some(b) => Ok(b),
                None => self.err(format!("`{key}` is {v}, expected true or false")),
            },
            None => Ok(default),
        }
    }

    fn act(&mut self) -> Result<Activation> {
        match self.get("fn").cloned() {
            Some(Value::String(s)) => match Activation::parse(&s) {
                Ok(a) => Ok(a),
                Err(e) => self.err(e.to_string()),
            },
            Some(v) => self.err(format!("`fn` is {v}, expected an activation name")),
            None => Ok(Activation::Relu),
        }
    }

    fn attention_scale(&mut self) -> Result<AttentionScale> {
        match self.get("scale").cloned() {
            Some(Value::String(s)) => match AttentionScale::parse(&s) {
                Some(a) => Ok(a),
                None => self.err(format!("`scale` is \"{s}\", expected \"sqrt\" or \"mup\"")),
            },
            Some(v) => self.err(format!("`scale` is {v}, expected \"sqrt\" or \"mup\"")),
            None => Ok(AttentionScale::Sqrt),
        }
    }

    /// Errors on a field no rule read.
    fn finish(self) -> Result<()> {
        for k in self.obj.keys() {
            if k != "type" && !self.used.contains(&k.as_str()) {
                return self.err(format!("unknown field `{k}`"));
            }
        }
        Ok(())
    }
}

fn parse_layer(v: &Value, path: &str) -> Result<LayerKind> {
    let Some(obj) = v.as_object() else {
        return invalid(format!("{path}: expected a layer object, got {v}"));
    };
    let Some(kind) = obj.get("type").and_then(Value::as_str) else {
        return invalid(format!(
            "{path}: missing string field `type` (one of {TYPES})"
        ));
    };
    let mut f = Fields {
        obj,
        path,
        kind,
        used: vec![],
    };
    let layer = match kind {
        "dense" => LayerKind::Dense(Dense {
            out: f.usize("out", None)?,
            bias: f.bool("bias", true)?,
            multiplier: f.f64("multiplier", 1.0)?,
        }),
        "conv2d" => LayerKind::Conv2d(Conv2d {
            out: f.usize("out", None)?,
            kernel: f.usize("kernel", None)?,
            stride: f.usize("stride", Some(1))?,
            padding: f.usize("padding", Some(0))?,
            bias: f.bool("bias", true)?,
            multiplier: f.f64("multiplier", 1.0)?,
        }),
        "act" => LayerKind::Act(ActLayer { f: f.act()? }),
        "avgpool2d" => LayerKind::AvgPool2d(AvgPool2d {
            kernel: f.usize("kernel", None)?,
        }),
        "maxpool2d" => LayerKind::MaxPool2d(MaxPool2d {
            kernel: f.usize("kernel", None)?,
        }),
        "flatten" => LayerKind::Flatten(Flatten),
        "residual" => {
            // By reference: a clone of the body at every level would copy the nested
            // blocks once per level (fuzz net-case seed 20261207, input 39542).
            f.used.push("body");
            let body = match obj.get("body") {
                Some(b) => parse_list(b, &format!("{path}.body."))?,
                None => return f.err("missing field `body`".into()),
            };
            LayerKind::Residual(Residual { body })
        }
        "layernorm" => LayerKind::LayerNorm(LayerNorm {
            eps: f.f64("eps", 1e-5)?,
            affine: f.bool("affine", true)?,
        }),
        "embedding" => LayerKind::Embedding(Embedding {
            vocab: f.usize("vocab", None)?,
            dim: f.usize("dim", None)?,
        }),
        "pos_embedding" => LayerKind::PosEmbedding(PosEmbedding {
            len: f.usize("len", None)?,
            dim: f.usize("dim", None)?,
        }),
        "attention" => LayerKind::Attention(Attention {
            heads: f.usize("heads", None)?,
            causal: f.bool("causal", true)?,
            scale: f.attention_scale()?,
        }),
        "symmetric_pair" => LayerKind::SymmetricPair(SymmetricPair {
            out: f.usize("out", None)?,
            f: f.act()?,
        }),
        "coord_pair" => LayerKind::CoordPair(CoordPair { f: f.act()? }),
        other => {
            return invalid(format!(
                "{path}: unknown layer type `{other}` (one of {TYPES})"
            ))
        }
    };
    f.finish()?;
    Ok(layer)
}

/// The JSON list of layer objects (every field written out).
pub fn layers_json(layers: &[LayerKind]) -> String {
    Value::Array(layers.iter().map(layer_value).collect()).to_string()
}

fn layer_value(l: &LayerKind) -> Value {
    match l {
        LayerKind::Dense(d) => json!({"type": "dense", "out": d.out, "bias": d.bias,
            "multiplier": d.multiplier}),
        LayerKind::Conv2d(c) => json!({"type": "conv2d", "out": c.out, "kernel": c.kernel,
            "stride": c.stride, "padding": c.padding, "bias": c.bias,
            "multiplier": c.multiplier}),
        LayerKind::Act(a) => json!({"type": "act", "fn": a.f.name()}),
        LayerKind::AvgPool2d(p) => json!({"type": "avgpool2d", "kernel": p.kernel}),
        LayerKind::MaxPool2d(p) => json!({"type": "maxpool2d", "kernel": p.kernel}),
        LayerKind::Flatten(_) => json!({"type": "flatten"}),
        LayerKind::Residual(r) => json!({"type": "residual",
            "body": Value::Array(r.body.iter().map(layer_value).collect())}),
        LayerKind::LayerNorm(n) => json!({"type": "layernorm", "eps": n.eps,
            "affine": n.affine}),
        LayerKind::Embedding(e) => json!({"type": "embedding", "vocab": e.vocab, "dim": e.dim}),
        LayerKind::PosEmbedding(e) => json!({"type": "pos_embedding", "len": e.len,
            "dim": e.dim}),
        LayerKind::Attention(a) => {
            let mut v = json!({"type": "attention", "heads": a.heads, "causal": a.causal});
            // Written only when not the default, so files stay readable by eos-net/1
            // readers that predate the field.
            if a.scale != AttentionScale::Sqrt {
                v["scale"] = json!(a.scale.name());
            }
            v
        }
        LayerKind::SymmetricPair(s) => json!({"type": "symmetric_pair", "out": s.out,
            "fn": s.f.name()}),
        LayerKind::CoordPair(c) => json!({"type": "coord_pair", "fn": c.f.name()}),
    }
}
