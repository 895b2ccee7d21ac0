//! The safetensors interchange format: round trip, and one clear error per kind of
//! bad file (each names the file and the tensor or key).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use eos_model::testing::tiny_case;
use eos_model::{load_case, save_case, Activation, Loss};

/// A path in a folder of its own per file name: tests run on parallel threads, and the
/// leftover check of `round_trip_keeps_everything` must not see another test's
/// in-flight `.tmp-` file.
fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("eos-io-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn write_raw(path: &Path, tensors: &[(&str, Tensor)], meta: &[(&str, &str)]) {
    let meta: HashMap<String, String> = meta
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let bytes = safetensors::serialize(tensors.iter().map(|(n, t)| (*n, t)), Some(meta)).unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn load_err(path: &Path) -> String {
    load_case(path, None, &Device::Cpu).unwrap_err().to_string()
}

#[test]
fn round_trip_keeps_everything() {
    let (mlp, batch) = tiny_case(
        &[3, 4, 2],
        Activation::LeakyRelu(0.2),
        Loss::CrossEntropy,
        true,
        5,
        1,
        DType::F64,
    )
    .unwrap();
    let v = mlp.params.randn_like(3).unwrap();
    let extra = Tensor::new(&[1.5f64, 2.5], &Device::Cpu).unwrap();
    let p = tmp("rt.safetensors");
    save_case(
        &p,
        &mlp,
        Some(Loss::CrossEntropy),
        Some(&batch),
        Some(&v),
        &[("note".into(), extra)],
        &[("k".into(), "x".into())],
    )
    .unwrap();
    let case = load_case(&p, None, &Device::Cpu).unwrap();
    assert_eq!(case.mlp.activation, Activation::LeakyRelu(0.2));
    assert_eq!(case.mlp.multipliers, mlp.multipliers);
    assert_eq!(case.loss, Some(Loss::CrossEntropy));
    assert_eq!(
        case.mlp.params.to_f64_vec().unwrap(),
        mlp.params.to_f64_vec().unwrap()
    );
    assert_eq!(
        case.v.unwrap().to_f64_vec().unwrap(),
        v.to_f64_vec().unwrap()
    );
    let b = case.batch.unwrap();
    assert_eq!(
        b.x.to_vec2::<f64>().unwrap(),
        batch.x.to_vec2::<f64>().unwrap()
    );
    assert_eq!(case.extra["note"].to_vec1::<f64>().unwrap(), vec![1.5, 2.5]);
    assert_eq!(case.metadata["k"], "x");
    // --dtype converts on load
    let c32 = load_case(&p, Some(DType::F32), &Device::Cpu).unwrap();
    assert_eq!(c32.mlp.dtype(), DType::F32);
    // no temporary file left behind
    let leftovers: Vec<_> = std::fs::read_dir(p.parent().unwrap())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains(".tmp-")
        })
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn bad_files_give_one_clear_error() {
    let d = Device::Cpu;
    let w0 = Tensor::zeros((4, 3), DType::F32, &d).unwrap();
    let w1 = Tensor::zeros((2, 4), DType::F32, &d).unwrap();
    let relu = [("activation", "relu")];

    let e = load_err(&tmp("does-not-exist.safetensors"));
    assert!(
        e.contains("does-not-exist.safetensors") && e.contains("cannot read"),
        "{e}"
    );

    let p = tmp("ok.safetensors");
    write_raw(
        &p,
        &[
            ("layers.0.weight", w0.clone()),
            ("layers.1.weight", w1.clone()),
        ],
        &relu,
    );
    assert!(load_case(&p, None, &d).is_ok());
    let bytes = std::fs::read(&p).unwrap();
    let t = tmp("truncated.safetensors");
    std::fs::write(&t, &bytes[..bytes.len() - 10]).unwrap();
    let e = load_err(&t);
    assert!(
        e.contains("truncated.safetensors") && e.contains("truncated or corrupt"),
        "{e}"
    );

    let p = tmp("nolayers.safetensors");
    write_raw(&p, &[("weights", w0.clone())], &relu);
    assert!(load_err(&p).contains("missing tensor `layers.0.weight`"));

    let p = tmp("gap.safetensors");
    write_raw(
        &p,
        &[
            ("layers.0.weight", w0.clone()),
            ("layers.2.weight", w1.clone()),
        ],
        &relu,
    );
    let e = load_err(&p);
    assert!(
        e.contains("`layers.2.weight` present but `layers.1.weight` is missing"),
        "{e}"
    );

    let p = tmp("mismatch.safetensors");
    let bad = Tensor::zeros((2, 5), DType::F32, &d).unwrap();
    write_raw(
        &p,
        &[("layers.0.weight", w0.clone()), ("layers.1.weight", bad)],
        &relu,
    );
    let e = load_err(&p);
    assert!(
        e.contains("layers.1.weight") && e.contains("expected 4"),
        "{e}"
    );

    let p = tmp("badbias.safetensors");
    let b = Tensor::zeros(3, DType::F32, &d).unwrap();
    write_raw(
        &p,
        &[
            ("layers.0.weight", w0.clone()),
            ("layers.0.bias", b),
            ("layers.1.weight", w1.clone()),
        ],
        &relu,
    );
    assert!(load_err(&p).contains("layers.0.bias: shape [3], expected [4]"));

    let p = tmp("act.safetensors");
    write_raw(
        &p,
        &[("layers.0.weight", w0.clone())],
        &[("activation", "softsign")],
    );
    let e = load_err(&p);
    assert!(
        e.contains("metadata `activation`") && e.contains("softsign"),
        "{e}"
    );

    let p = tmp("noact.safetensors");
    write_raw(&p, &[("layers.0.weight", w0.clone())], &[]);
    assert!(load_err(&p).contains("metadata `activation` missing"));

    let p = tmp("loss.safetensors");
    write_raw(
        &p,
        &[("layers.0.weight", w0.clone())],
        &[("activation", "relu"), ("loss", "hinge")],
    );
    assert!(load_err(&p).contains("metadata `loss`: unknown loss `hinge`"));

    let p = tmp("mult.safetensors");
    write_raw(
        &p,
        &[
            ("layers.0.weight", w0.clone()),
            ("layers.1.weight", w1.clone()),
        ],
        &[("activation", "relu"), ("multipliers", "1.0,abc")],
    );
    assert!(load_err(&p).contains("`abc` is not a number"));
    let p = tmp("mult2.safetensors");
    write_raw(
        &p,
        &[
            ("layers.0.weight", w0.clone()),
            ("layers.1.weight", w1.clone()),
        ],
        &[("activation", "relu"), ("multipliers", "1.0")],
    );
    assert!(load_err(&p).contains("multipliers: 1 values for 2 layers"));

    let p = tmp("f16.safetensors");
    let h = Tensor::zeros((4, 3), DType::F16, &d).unwrap();
    write_raw(&p, &[("layers.0.weight", h)], &relu);
    let e = load_err(&p);
    assert!(
        e.contains("tensor `layers.0.weight`: unsupported dtype F16"),
        "{e}"
    );

    let p = tmp("xshape.safetensors");
    let x = Tensor::zeros((5, 7), DType::F32, &d).unwrap();
    let y = Tensor::zeros((5, 2), DType::F32, &d).unwrap();
    write_raw(
        &p,
        &[
            ("layers.0.weight", w0.clone()),
            ("layers.1.weight", w1.clone()),
            ("x", x),
            ("y", y.clone()),
        ],
        &relu,
    );
    assert!(load_err(&p).contains("x: shape [5, 7], expected [n, 3]"));

    let p = tmp("xonly.safetensors");
    let x = Tensor::zeros((5, 3), DType::F32, &d).unwrap();
    write_raw(
        &p,
        &[
            ("layers.0.weight", w0.clone()),
            ("layers.1.weight", w1.clone()),
            ("x", x),
        ],
        &relu,
    );
    assert!(load_err(&p).contains("`x` present but `y` missing"));

    let p = tmp("vshape.safetensors");
    let v0 = Tensor::zeros((4, 2), DType::F32, &d).unwrap();
    write_raw(
        &p,
        &[
            ("layers.0.weight", w0),
            ("layers.1.weight", w1.clone()),
            ("v.layers.0.weight", v0),
            ("v.layers.1.weight", w1),
        ],
        &relu,
    );
    let e = load_err(&p);
    assert!(
        e.contains("direction `v.`") && e.contains("layers.0.weight"),
        "{e}"
    );
}

/// `load_case_bytes` (the fuzz target's entry point) reads what `load_case` reads, and
/// its errors name the path it is given.
#[test]
fn load_case_bytes_matches_load_case() {
    let (mlp, batch) = tiny_case(
        &[2, 3, 1],
        Activation::Tanh,
        Loss::Mse,
        true,
        4,
        2,
        DType::F32,
    )
    .unwrap();
    let p = tmp("bytes.safetensors");
    save_case(&p, &mlp, Some(Loss::Mse), Some(&batch), None, &[], &[]).unwrap();
    let bytes = std::fs::read(&p).unwrap();
    let from_file = load_case(&p, None, &Device::Cpu).unwrap();
    let from_bytes =
        eos_model::load_case_bytes(&bytes, Path::new("mem.safetensors"), None, &Device::Cpu)
            .unwrap();
    assert_eq!(
        from_bytes.mlp.params.to_f64_vec().unwrap(),
        from_file.mlp.params.to_f64_vec().unwrap()
    );
    assert_eq!(from_bytes.loss, Some(Loss::Mse));
    let err = eos_model::load_case_bytes(
        &bytes[..bytes.len() - 1],
        Path::new("mem.safetensors"),
        None,
        &Device::Cpu,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("mem.safetensors"), "{err}");
}
