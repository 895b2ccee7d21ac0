//! Layer networks against an independent implementation: JAX autodiff in float64.
//!
//! `tests/data/gen_net_reference.py` (jax 0.10.2, float64; see `tests/data/README.md`)
//! implements a CNN, a residual CNN, a LayerNorm MLP, a one-block causal transformer,
//! a symmetric-pair model (silu and relu) and a coord-pair model (relu with a bias-free
//! dense readout, tanh with a biased dense readout) from the formulas in the layer
//! headers, without eos code, and wrote per case `net_<case>.safetensors` (an eos-net/1 file: model, batch,
//! parameters, direction v) and `ref_net_<case>.safetensors` (JAX's loss, gradient,
//! H v, vᵀHv, Taylor coefficients c0..c3 of L(θ + t v), J v and NTK trace; flat vectors
//! in the parameter order listed in its metadata `names`). The references are in a
//! second file because `load_net` rejects tensors that are not x, y, a parameter or a
//! direction. Both sides are exact up to f64 rounding, so every quantity must agree to
//! 1e-10 relative (vectors: max |difference| / max |reference|). One file is also
//! loaded as f32, where the tolerance is 1e-4 (f32 rounding through a few layers).

use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use eos_model::net::{load_net, NetCase};
use eos_model::testing::rel_err;
use safetensors::{Dtype, SafeTensors};

const CASES: [&str; 8] = [
    "cnn",
    "residual_cnn",
    "layernorm_mlp",
    "transformer",
    "symmetric_pair",
    "symmetric_pair_relu",
    "coord_pair_relu",
    "coord_pair_tanh",
];

fn data(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(file)
}

/// JAX's values of one case: tensors by name (as f64 vectors) and the metadata.
struct Refs {
    t: HashMap<String, Vec<f64>>,
    meta: HashMap<String, String>,
}

impl Refs {
    fn load(name: &str) -> Self {
        let path = data(&format!("ref_net_{name}.safetensors"));
        let bytes = std::fs::read(&path).expect("reference file is committed");
        let (_, m) = SafeTensors::read_metadata(&bytes).expect("valid safetensors header");
        let meta = m.metadata().clone().expect("reference file has metadata");
        let st = SafeTensors::deserialize(&bytes).expect("valid safetensors file");
        let mut t = HashMap::new();
        for (k, view) in st.tensors() {
            assert_eq!(view.dtype(), Dtype::F64, "{name}: reference `{k}` is F64");
            let v = view
                .data()
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect();
            t.insert(k, v);
        }
        Self { t, meta }
    }

    fn vec(&self, k: &str) -> &[f64] {
        self.t
            .get(k)
            .unwrap_or_else(|| panic!("reference `{k}` missing"))
    }

    fn scalar(&self, k: &str) -> f64 {
        self.vec(k)[0]
    }
}

fn flat(t: &Tensor) -> Vec<f64> {
    t.flatten_all()
        .and_then(|t| t.to_dtype(DType::F64))
        .and_then(|t| t.to_vec1())
        .expect("a tensor converts to f64 values")
}

fn scalar_err(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-300)
}

/// The relative error of every quantity, eos against JAX, for a loaded case.
fn errors(name: &str, case: &NetCase, r: &Refs) -> Vec<(&'static str, f64)> {
    let net = &case.net;
    let batch = case.batch.as_ref().expect("the file holds a batch");
    let loss = case.loss.expect("the file names a loss");
    let v = case.v.as_ref().expect("the file holds a direction");
    assert_eq!(
        net.params.names.join(","),
        r.meta["names"],
        "{name}: eos's flat parameter order differs from the reference's"
    );
    let (l, g) = net.loss_and_grad(batch, loss).expect("loss and gradient");
    let hv = net.hvp(batch, loss, v).expect("H v");
    let t = net.taylor(batch, loss, v).expect("Taylor coefficients");
    let jv = net.jvp(&batch.x, v).expect("J v");
    let rt = r.vec("taylor");
    let mut e = vec![
        ("loss", scalar_err(l, r.scalar("loss"))),
        (
            "grad",
            rel_err(&g.to_f64_vec().expect("gradient values"), r.vec("grad")),
        ),
        (
            "hvp",
            rel_err(&hv.to_f64_vec().expect("H v values"), r.vec("hvp")),
        ),
        (
            "vhv",
            scalar_err(v.dot(&hv).expect("vᵀ H v"), r.scalar("vhv")),
        ),
    ];
    for (j, c) in ["c0", "c1", "c2", "c3"].into_iter().enumerate() {
        e.push((c, scalar_err(t[j], rt[j])));
    }
    e.push(("jvp", rel_err(&flat(&jv), r.vec("jvp"))));
    e.push((
        "ntk_trace",
        scalar_err(
            net.ntk_trace(&batch.x).expect("NTK trace"),
            r.scalar("ntk_trace"),
        ),
    ));
    e
}

fn show(e: &[(&str, f64)]) -> String {
    let s: Vec<String> = e.iter().map(|(w, x)| format!("{w} {x:.1e}")).collect();
    s.join(", ")
}

#[test]
fn networks_match_jax_in_f64() {
    for name in CASES {
        let case = load_net(
            &data(&format!("net_{name}.safetensors")),
            None,
            &Device::Cpu,
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(case.net.dtype(), DType::F64, "{name}: files are f64");
        let r = Refs::load(name);
        let e = errors(name, &case, &r);
        let worst = e.iter().fold(0.0f64, |m, (_, x)| m.max(*x));
        eprintln!("{name}: max rel err {worst:.2e} ({})", show(&e));
        for (what, err) in e {
            assert!(err <= 1e-10, "{name}: {what}: rel err {err:e} > 1e-10");
        }
    }
}

#[test]
fn transformer_loaded_as_f32_matches_jax() {
    let name = "transformer";
    let case = load_net(
        &data(&format!("net_{name}.safetensors")),
        Some(DType::F32),
        &Device::Cpu,
    )
    .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(case.net.dtype(), DType::F32);
    let e = errors(name, &case, &Refs::load(name));
    eprintln!("{name} (f32): {}", show(&e));
    for (what, err) in e {
        assert!(err <= 1e-4, "{name} f32: {what}: rel err {err:e} > 1e-4");
    }
}
