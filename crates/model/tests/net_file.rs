//! The eos-net/1 format: round trips (f64, f32, ids, direction), MLP files loading as
//! networks, and one clear error per bad input (never a panic).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use eos_model::net::{load_net, parse_layers, save_net, Network};
use eos_model::testing::{net_tiny_case, rel_err, tiny_case};
use eos_model::{save_case, Activation, Loss};

/// A fresh path per call (tests run in parallel in one process).
fn tmp(name: &str) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let k = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("eos-net-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("{k}-{name}"))
}

const TRANSFORMER: &str = r#"[{"type": "embedding", "vocab": 5, "dim": 4},
  {"type": "pos_embedding", "len": 3, "dim": 4},
  {"type": "residual", "body": [{"type": "layernorm"}, {"type": "attention", "heads": 2}]},
  {"type": "residual", "body": [{"type": "layernorm"}, {"type": "dense", "out": 6},
     {"type": "act", "fn": "gelu"}, {"type": "dense", "out": 4}]},
  {"type": "layernorm", "affine": false}, {"type": "dense", "out": 5, "bias": false}]"#;

const CNN: &str = r#"[{"type": "conv2d", "out": 2, "kernel": 3, "padding": 1},
  {"type": "act", "fn": "relu"}, {"type": "maxpool2d", "kernel": 2}, {"type": "flatten"},
  {"type": "symmetric_pair", "out": 3, "fn": "tanh"}, {"type": "dense", "out": 2}]"#;

fn case(model: &str, input: &[usize], loss: Loss) -> (Network, eos_model::Batch) {
    net_tiny_case(parse_layers(model).unwrap(), input, loss, 3, 5, DType::F64).unwrap()
}

#[test]
fn round_trips_keep_every_value() {
    for (model, input, loss) in [
        (TRANSFORMER, vec![3], Loss::CrossEntropy),
        (CNN, vec![1, 4, 4], Loss::Mse),
    ] {
        let (net, batch) = case(model, &input, loss);
        let v = net.params.randn_like(3).unwrap();
        let path = tmp("rt.safetensors");
        save_net(&path, &net, loss, &batch, Some(&v)).unwrap();
        let back = load_net(&path, None, &Device::Cpu).unwrap();
        assert_eq!(back.loss, Some(loss));
        assert_eq!(back.net.params.names, net.params.names);
        let p = back.net.params.to_f64_vec().unwrap();
        assert_eq!(p, net.params.to_f64_vec().unwrap());
        assert_eq!(
            back.v.unwrap().to_f64_vec().unwrap(),
            v.to_f64_vec().unwrap()
        );
        let b = back.batch.unwrap();
        let l0 = net.loss(&batch, loss).unwrap();
        assert_eq!(back.net.loss(&b, loss).unwrap(), l0);
        // The stated defaults survive the round trip (every field is written out).
        assert_eq!(
            eos_model::net::layers_json(&back.net.layers),
            eos_model::net::layers_json(&net.layers)
        );
        // Loading in f32 converts every float tensor.
        let b32 = load_net(&path, Some(DType::F32), &Device::Cpu).unwrap();
        assert_eq!(b32.net.dtype(), DType::F32);
        let l32 = b32.net.loss(&b32.batch.unwrap(), loss).unwrap();
        assert!((l32 - l0).abs() < 1e-5 * (1.0 + l0.abs()), "{l32} vs {l0}");
    }
}

#[test]
fn mlp_files_load_as_equivalent_networks() {
    let (mlp, batch) = tiny_case(
        &[3, 4, 2],
        Activation::Tanh,
        Loss::Mse,
        true,
        5,
        2,
        DType::F64,
    )
    .unwrap();
    let v = mlp.params.randn_like(1).unwrap();
    let path = tmp("mlp.safetensors");
    save_case(
        &path,
        &mlp,
        Some(Loss::Mse),
        Some(&batch),
        Some(&v),
        &[],
        &[],
    )
    .unwrap();
    let c = load_net(&path, None, &Device::Cpu).unwrap();
    let b = c.batch.unwrap();
    let g1 = mlp.grad(&batch, Loss::Mse).unwrap().to_f64_vec().unwrap();
    let g2 = c.net.grad(&b, Loss::Mse).unwrap().to_f64_vec().unwrap();
    assert!(rel_err(&g2, &g1) < 1e-14);
    assert_eq!(c.v.unwrap().to_f64_vec().unwrap(), v.to_f64_vec().unwrap());
    assert_eq!(c.net.params.names[2], "layers.2.weight");
}

/// Writes a file with the given metadata and tensors.
fn write(path: &Path, meta: &[(&str, &str)], tensors: Vec<(&str, Tensor)>) {
    let meta: HashMap<String, String> = meta
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let bytes = safetensors::serialize(tensors.iter().map(|(n, t)| (*n, t)), Some(meta)).unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn t(shape: &[usize]) -> Tensor {
    Tensor::zeros(shape, DType::F64, &Device::Cpu).unwrap()
}

/// The error of loading a dense 3 → 2 model file changed by `edit`.
fn error_of(model: &str, edit: impl FnOnce(&mut Vec<(&'static str, Tensor)>)) -> String {
    let mut tensors = vec![
        ("x", t(&[4, 3])),
        ("y", t(&[4, 2])),
        ("layers.0.weight", t(&[2, 3])),
        ("layers.0.bias", t(&[2])),
    ];
    edit(&mut tensors);
    let path = tmp("bad.safetensors");
    write(
        &path,
        &[("format", "eos-net/1"), ("model", model), ("loss", "mse")],
        tensors,
    );
    load_net(&path, None, &Device::Cpu).unwrap_err().to_string()
}

const DENSE: &str = r#"[{"type": "dense", "out": 2}]"#;

#[test]
fn bad_files_get_one_clear_error_each() {
    // The unedited file is valid.
    let ok = {
        let path = tmp("ok.safetensors");
        write(
            &path,
            &[("format", "eos-net/1"), ("model", DENSE), ("loss", "mse")],
            vec![
                ("x", t(&[4, 3])),
                ("y", t(&[4, 2])),
                ("layers.0.weight", t(&[2, 3])),
                ("layers.0.bias", t(&[2])),
            ],
        );
        load_net(&path, None, &Device::Cpu)
    };
    assert!(ok.is_ok(), "{ok:?}");
    let cases: Vec<(String, &str)> = vec![
        (
            error_of(r#"[{"type": "dense2", "out": 2}]"#, |_| {}),
            "layers.0: unknown layer type `dense2`",
        ),
        (
            error_of(r#"[{"type": "dense", "out": 2, "kernel": 3}]"#, |_| {}),
            "layers.0 (dense): unknown field `kernel`",
        ),
        (
            error_of(r#"[{"type": "dense"}]"#, |_| {}),
            "layers.0 (dense): missing field `out`",
        ),
        (
            error_of(DENSE, |ts| ts.retain(|(n, _)| *n != "layers.0.bias")),
            "missing tensor `layers.0.bias` (expected shape [2])",
        ),
        (
            error_of(DENSE, |ts| ts.push(("layers.1.weight", t(&[2, 2])))),
            "unexpected tensor `layers.1.weight`",
        ),
        (
            error_of(DENSE, |ts| ts[2].1 = t(&[2, 4])),
            "tensor `layers.0.weight`: shape [2, 4], expected [2, 3]",
        ),
        (
            error_of(
                r#"[{"type": "dense", "out": 4}, {"type": "residual", "body": [{"type": "dense", "out": 3}]}]"#,
                |_| {},
            ),
            "shapes do not chain",
        ),
        (
            error_of(DENSE, |ts| ts[1].1 = t(&[4, 3])),
            "y: shape [4, 3], expected [4, 2]",
        ),
        (
            error_of(DENSE, |ts| ts.push(("v.layers.0.weight", t(&[2, 3])))),
            "missing tensor `v.layers.0.bias`",
        ),
        (
            error_of("[{", |_| {}),
            "metadata `model`: model: not valid JSON",
        ),
    ];
    for (e, want) in cases {
        assert!(e.contains(want), "error `{e}` should contain `{want}`");
    }
}

#[test]
fn ids_must_be_integers_within_the_vocabulary() {
    let model = r#"[{"type": "embedding", "vocab": 5, "dim": 2}, {"type": "dense", "out": 2}]"#;
    let params = |ts: &mut Vec<(&'static str, Tensor)>| {
        ts.push(("layers.0.weight", t(&[5, 2])));
        ts.push(("layers.1.weight", t(&[2, 2])));
        ts.push(("layers.1.bias", t(&[2])));
    };
    let load = |x: Tensor| {
        let mut ts = vec![("x", x), ("y", t(&[2, 3, 2]))];
        params(&mut ts);
        let path = tmp("ids.safetensors");
        write(
            &path,
            &[("format", "eos-net/1"), ("model", model), ("loss", "mse")],
            ts,
        );
        load_net(&path, None, &Device::Cpu)
    };
    let ids = |v: Vec<i64>| Tensor::from_vec(v, (2, 3), &Device::Cpu).unwrap();
    assert!(load(ids(vec![0, 1, 2, 3, 4, 0])).is_ok());
    let i32s = Tensor::from_vec(vec![0i64, 1, 2, 3, 4, 0], (2, 3), &Device::Cpu)
        .unwrap()
        .to_dtype(DType::I32);
    if let Ok(i32s) = i32s {
        assert!(load(i32s).is_ok());
    }
    let e = load(ids(vec![0, 1, 2, 3, 5, 0])).unwrap_err().to_string();
    assert!(e.contains("id 5 at entry 4 is outside [0, 5)"), "{e}");
    let e = load(ids(vec![0, -1, 2, 3, 4, 0])).unwrap_err().to_string();
    assert!(e.contains("id -1 at entry 1"), "{e}");
    let e = load(t(&[2, 3])).unwrap_err().to_string();
    assert!(e.contains("float ids (F64)"), "{e}");
    // And integer inputs to a float model.
    let e = error_of(DENSE, |ts| {
        ts[0].1 = Tensor::zeros((4, 3), DType::I64, &Device::Cpu).unwrap()
    });
    assert!(
        e.contains("integer dtype I64, but layers.0 (dense) takes float inputs"),
        "{e}"
    );
}

#[test]
fn unreadable_or_foreign_files_are_errors() {
    let path = tmp("garbage.safetensors");
    std::fs::write(&path, b"not a safetensors file").unwrap();
    let e = load_net(&path, None, &Device::Cpu).unwrap_err().to_string();
    assert!(e.contains("not a valid safetensors file"), "{e}");
    write(&path, &[("format", "eos-net/2")], vec![("x", t(&[1, 1]))]);
    let e = load_net(&path, None, &Device::Cpu).unwrap_err().to_string();
    assert!(
        e.contains("metadata `format` is `eos-net/2`, expected `eos-net/1`"),
        "{e}"
    );
    write(
        &path,
        &[("format", "eos-net/1"), ("model", DENSE)],
        vec![("x", t(&[1, 3]))],
    );
    let e = load_net(&path, None, &Device::Cpu).unwrap_err().to_string();
    assert!(e.contains("metadata `loss` missing"), "{e}");
    let e = load_net(Path::new("/nonexistent/file"), None, &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(e.contains("cannot read"), "{e}");
}

#[test]
fn attention_scale_is_parsed_written_when_not_default_and_checked() {
    use eos_model::net::{layers_json, AttentionScale, LayerKind};
    let scale = |text: &str| match parse_layers(text).unwrap().as_slice() {
        [LayerKind::Attention(a)] => a.scale,
        other => panic!("{other:?}"),
    };
    let mup = r#"[{"type": "attention", "heads": 2, "scale": "mup"}]"#;
    assert_eq!(scale(mup), AttentionScale::Mup);
    let plain = r#"[{"type": "attention", "heads": 2}]"#;
    assert_eq!(scale(plain), AttentionScale::Sqrt);
    let written = layers_json(&parse_layers(mup).unwrap());
    assert!(written.contains(r#""scale":"mup""#), "{written}");
    assert_eq!(scale(&written), AttentionScale::Mup);
    // The default is not written: files stay what eos-net/1 readers without the field read.
    let written = layers_json(&parse_layers(plain).unwrap());
    assert!(!written.contains("scale"), "{written}");
    let e = parse_layers(r#"[{"type": "attention", "heads": 2, "scale": "1/d"}]"#).unwrap_err();
    assert!(
        e.to_string()
            .contains(r#"layers.0 (attention): `scale` is "1/d", expected "sqrt" or "mup""#),
        "{e}"
    );
}
