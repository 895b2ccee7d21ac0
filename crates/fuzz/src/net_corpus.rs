//! Valid eos-net/1 files (crates/model/src/net/file.rs), generated in code from the
//! seeded RNG, and mutations of their `model` layer list.
//!
//! A file is one of the architectures `eos example --net cnn|transformer` writes and
//! their relatives — an MLP (dense + act + coord_pair), a CNN (conv2d, act, avg/max pool, flatten,
//! symmetric_pair, dense), a residual LayerNorm MLP, a causal transformer (embedding,
//! pos_embedding, residual attention and MLP blocks) — with random small sizes,
//! parameters from `Network::random`, a batch of 1–3 samples (`x` F32/F64, or I64/I32
//! ids for the transformer), optionally a direction `v.*`. The layer list's JSON can be
//! mutated before it is written into the header: text edits (numbers set to edge
//! values, words replaced by layer types and field names), residual blocks nested
//! 1–50 000 deep around it, and the list repeated up to 11 000 times (over
//! `MAX_LAYERS` and `MAX_JSON_BYTES`).

use candle_core::{DType, Device, Tensor};
use eos_model::net::{parse_layers, LayerKind, Network};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::corpus::{float_data, StFile, StTensor};
use crate::mutate::edit_text;

/// Layer types and field names a text edit may put in place of a quoted word.
const NET_WORDS: [&str; 17] = [
    "residual",
    "body",
    "dense",
    "conv2d",
    "attention",
    "embedding",
    "pos_embedding",
    "flatten",
    "maxpool2d",
    "layernorm",
    "symmetric_pair",
    "coord_pair",
    "heads",
    "kernel",
    "out",
    "type",
    "eos-net/1",
];

/// The layer list (JSON), the per-sample input shape and whether inputs are ids.
fn architecture(rng: &mut ChaCha8Rng) -> (String, Vec<usize>, bool) {
    let mut r = |lo: usize, hi: usize| rng.random_range(lo..=hi);
    match r(0, 3) {
        0 => (
            format!(
                r#"[{{"type": "dense", "out": {}, "bias": {}}}, {{"type": "act", "fn": "tanh"}}, {{"type": "coord_pair", "fn": "relu"}}, {{"type": "dense", "out": {}, "multiplier": 0.5}}]"#,
                r(1, 4),
                r(0, 1) == 1,
                r(1, 3)
            ),
            vec![r(1, 4)],
            false,
        ),
        1 => {
            let (k, p) = (r(1, 3), r(0, 1));
            let hw = r(k.max(2), 5);
            let pool = ["avgpool2d", "maxpool2d"][r(0, 1)];
            (
                format!(
                    r#"[{{"type": "conv2d", "out": {}, "kernel": {k}, "padding": {p}, "stride": {}}}, {{"type": "act", "fn": "relu"}}, {{"type": "{pool}", "kernel": 1}}, {{"type": "flatten"}}, {{"type": "symmetric_pair", "out": {}, "fn": "tanh"}}, {{"type": "dense", "out": {}}}]"#,
                    r(1, 3),
                    r(1, 2),
                    r(1, 3),
                    r(1, 3)
                ),
                vec![r(1, 2), hw, hw],
                false,
            )
        }
        2 => {
            let d = r(1, 4);
            (
                format!(
                    r#"[{{"type": "dense", "out": {d}}}, {{"type": "residual", "body": [{{"type": "layernorm", "affine": {}}}, {{"type": "dense", "out": {}}}, {{"type": "act", "fn": "gelu"}}, {{"type": "dense", "out": {d}}}]}}, {{"type": "dense", "out": {}}}]"#,
                    r(0, 1) == 1,
                    r(1, 4),
                    r(1, 3)
                ),
                vec![r(1, 4)],
                false,
            )
        }
        _ => {
            let (heads, t) = (r(1, 2), r(1, 3));
            let d = heads * r(1, 2);
            (
                format!(
                    r#"[{{"type": "embedding", "vocab": {}, "dim": {d}}}, {{"type": "pos_embedding", "len": {t}, "dim": {d}}}, {{"type": "residual", "body": [{{"type": "layernorm"}}, {{"type": "attention", "heads": {heads}, "causal": {}}}]}}, {{"type": "residual", "body": [{{"type": "layernorm"}}, {{"type": "dense", "out": {}}}, {{"type": "act", "fn": "relu"}}, {{"type": "dense", "out": {d}}}]}}, {{"type": "dense", "out": {}, "bias": false}}]"#,
                    r(2, 5),
                    r(0, 1) == 1,
                    r(1, 4),
                    r(2, 5)
                ),
                vec![t],
                true,
            )
        }
    }
}

/// Little-endian bytes of a tensor in `dtype` (F32, F64, I64 or I32).
fn tensor_bytes(t: &Tensor, dtype: &str) -> Vec<u8> {
    let v: Vec<f64> = t
        .flatten_all()
        .and_then(|t| t.to_dtype(DType::F64))
        .and_then(|t| t.to_vec1())
        .expect("a host tensor of the generated network");
    match dtype {
        "F32" => v.iter().flat_map(|x| (*x as f32).to_le_bytes()).collect(),
        "I64" => v.iter().flat_map(|x| (*x as i64).to_le_bytes()).collect(),
        "I32" => v.iter().flat_map(|x| (*x as i32).to_le_bytes()).collect(),
        _ => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
    }
}

/// A valid eos-net/1 file's tensors and metadata, the layer list edited by `edit`
/// before it is written (the JSON is escaped into the header afterwards).
pub fn net_case(rng: &mut ChaCha8Rng, edit: impl FnOnce(&mut ChaCha8Rng, &mut Vec<u8>)) -> StFile {
    let (json, input, ids) = architecture(rng);
    let layers = parse_layers(&json).expect("a valid generated layer list");
    let vocab = match layers.first() {
        Some(LayerKind::Embedding(e)) => e.vocab,
        _ => 0,
    };
    let dtype = if rng.random() { "F32" } else { "F64" };
    let seed = rng.random();
    let net = Network::random(layers, &input, seed, 0.1, DType::F64, &Device::Cpu)
        .expect("a valid generated network");
    let out = net.output_shape().expect("shapes of a valid network");
    let n = rng.random_range(1..=3);
    let mut tensors = Vec::new();
    let count = |s: &[usize]| s.iter().product::<usize>();
    let mut xs = vec![n];
    xs.extend(&input);
    let x = if ids {
        id_inputs(rng, xs, vocab)
    } else {
        let data = float_data(rng, dtype, count(&xs));
        StTensor {
            name: "x".into(),
            dtype,
            shape: xs,
            data,
        }
    };
    tensors.push(x);
    let mut ys = vec![n];
    ys.extend(&out);
    let data = float_data(rng, dtype, count(&ys));
    tensors.push(StTensor {
        name: "y".into(),
        dtype,
        shape: ys,
        data,
    });
    let with_v = rng.random_range(0..10) < 3;
    for prefix in ["", "v."].into_iter().take(1 + usize::from(with_v)) {
        for (name, t) in net.params.names.iter().zip(&net.params.tensors) {
            tensors.push(StTensor {
                name: format!("{prefix}{name}"),
                dtype,
                shape: t.dims().to_vec(),
                data: tensor_bytes(t, dtype),
            });
        }
    }
    let mut model = json.into_bytes();
    edit(rng, &mut model);
    let losses = ["mse", "mse_mean_all", "cross_entropy", "logistic"];
    let meta = vec![
        ("format".to_string(), "eos-net/1".to_string()),
        (
            "model".to_string(),
            escape(&String::from_utf8_lossy(&model)),
        ),
        (
            "loss".to_string(),
            losses[rng.random_range(0..losses.len())].to_string(),
        ),
    ];
    (tensors, meta)
}

/// The input `x` of a token-id network: `shape` ids below `vocab`, as I64 or I32.
fn id_inputs(rng: &mut ChaCha8Rng, shape: Vec<usize>, vocab: usize) -> StTensor {
    let id = ["I64", "I32"][rng.random_range(0..2)];
    let vals: Vec<u8> = (0..shape.iter().product::<usize>())
        .flat_map(|_| {
            let v = rng.random_range(0..vocab as i64);
            if id == "I64" {
                v.to_le_bytes().to_vec()
            } else {
                (v as i32).to_le_bytes().to_vec()
            }
        })
        .collect();
    StTensor {
        name: "x".into(),
        dtype: id,
        shape,
        data: vals,
    }
}

/// A JSON string's content: `"` and `\` escaped, control characters as `\u00XX`.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// The longest layer list the mutations grow (2 MiB, twice the reader's
/// `MAX_JSON_BYTES`): longer inputs only cost time.
const MAX_MUTATED: usize = 2 << 20;

/// 1–3 mutations of a layer list's JSON: text edits, a layer-type word, residual
/// nesting around the list, the list repeated (never beyond `MAX_MUTATED` bytes).
pub fn mutate_model(rng: &mut ChaCha8Rng, json: &mut Vec<u8>) {
    for _ in 0..rng.random_range(1..=3) {
        match rng.random_range(0..10) {
            0..=4 => edit_text(rng, json),
            5..=6 => replace_word(rng, json),
            7..=8 => {
                // Huge lists cost milliseconds each: 1 in 50 of these mutations.
                let depth = match rng.random_range(0..50) {
                    0 => 50_000,
                    _ => [1, 2, 15, 16, 17, 18, 40][rng.random_range(0..7)],
                };
                nest(json, depth);
            }
            _ => {
                let times = match rng.random_range(0..50) {
                    0 => [3400, 11_000][rng.random_range(0..2)],
                    _ => [2, 3, 30, 700][rng.random_range(0..4)],
                };
                repeat(json, times);
            }
        }
    }
}

/// A quoted word replaced by one of [`NET_WORDS`].
fn replace_word(rng: &mut ChaCha8Rng, json: &mut Vec<u8>) {
    let quotes: Vec<usize> = (0..json.len()).filter(|&i| json[i] == b'"').collect();
    if quotes.len() < 2 {
        return;
    }
    let k = rng.random_range(0..quotes.len() / 2) * 2;
    let (s, e) = (quotes[k] + 1, quotes[k + 1]);
    let w = NET_WORDS[rng.random_range(0..NET_WORDS.len())];
    json.splice(s..e, w.bytes());
}

/// The list wrapped in `depth` residual blocks: `[{"type":"residual","body":…}]`.
fn nest(json: &mut Vec<u8>, depth: usize) {
    let depth = depth.min(MAX_MUTATED.saturating_sub(json.len()) / 30);
    let open = r#"[{"type":"residual","body":"#.repeat(depth);
    let close = "}]".repeat(depth);
    let mut out = open.into_bytes();
    out.extend_from_slice(json);
    out.extend_from_slice(close.as_bytes());
    *json = out;
}

/// The list's items repeated `times` (the outer brackets kept).
fn repeat(json: &mut Vec<u8>, times: usize) {
    let (Some(s), Some(e)) = (
        json.iter().position(|&b| b == b'['),
        json.iter().rposition(|&b| b == b']'),
    ) else {
        return;
    };
    if e <= s + 1 {
        return;
    }
    let inner = json[s + 1..e].to_vec();
    let times = times.min(MAX_MUTATED / (inner.len() + 1)).max(1);
    let mut out = json[..=s].to_vec();
    for i in 0..times {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&inner);
    }
    out.extend_from_slice(&json[e..]);
    *json = out;
}
