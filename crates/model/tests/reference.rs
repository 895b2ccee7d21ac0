//! Against an independent implementation: JAX autodiff in float64.
//!
//! The files in `tests/data/` were written once by `tests/data/gen_reference.py`
//! (jax 0.10.2, float64; see `tests/data/README.md`). Each holds a tiny network in the
//! interchange format, a batch, a direction v and JAX's values of the loss, gradient,
//! Hv, vᵀHv, Taylor coefficients c0..c3, J v, the NTK trace and the dense Hessian's
//! eigenvalues and trace. Both sides are exact up to f64 rounding, so the tolerance
//! is 1e-10 relative (1e-5 for the f32 file, whose references are f64 values
//! rounded to f32).

use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use eos_model::testing::{dense_hessian, rel_err};
use eos_model::{load_case, ParamVec, ProbeCase};

const CASES: [&str; 7] = [
    "tanh_mse_bias",
    "gelu_ce_bias",
    "silu_logistic_nobias",
    "relu_mse_nobias",
    "leaky_mse_mean_all_bias",
    "identity_mse_bias",
    "tanh_mse_bias_f32",
];

fn load(name: &str) -> ProbeCase {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/data/ref_{name}.safetensors"));
    load_case(&p, None, &Device::Cpu).unwrap_or_else(|e| panic!("{e}"))
}

fn flat(t: &Tensor) -> Vec<f64> {
    t.flatten_all()
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap()
        .to_vec1()
        .unwrap()
}

fn reference_params(case: &ProbeCase, prefix: &str) -> Vec<f64> {
    let mut out = Vec::new();
    for (name, _) in case.mlp.params.named_tensors("") {
        out.extend(flat(&case.extra[&format!("{prefix}{name}")]));
    }
    out
}

#[test]
fn derivatives_match_jax() {
    for name in CASES {
        let case = load(name);
        let tol = if case.mlp.dtype() == DType::F32 {
            1e-5
        } else {
            1e-10
        };
        let (mlp, batch, loss) = (&case.mlp, case.batch.as_ref().unwrap(), case.loss.unwrap());
        let v: &ParamVec = case.v.as_ref().unwrap();
        let scalar = |k: &str| flat(&case.extra[k])[0];
        let close = |a: f64, b: f64, what: &str| {
            assert!(
                (a - b).abs() <= tol * b.abs().max(1e-3),
                "{name}: {what}: eos {a} vs jax {b}"
            );
        };

        let (l, g) = mlp.loss_and_grad(batch, loss).unwrap();
        close(l, scalar("ref.loss"), "loss");
        let e = rel_err(
            &g.to_f64_vec().unwrap(),
            &reference_params(&case, "ref.grad."),
        );
        assert!(e < tol, "{name}: gradient rel err {e}");

        let hv = mlp.hvp(batch, loss, v).unwrap();
        let e = rel_err(
            &hv.to_f64_vec().unwrap(),
            &reference_params(&case, "ref.hvp."),
        );
        assert!(e < tol, "{name}: HVP rel err {e}");
        close(v.dot(&hv).unwrap(), scalar("ref.vhv"), "vHv");

        let t = mlp.taylor(batch, loss, v).unwrap();
        let rt = flat(&case.extra["ref.taylor"]);
        for j in 0..4 {
            close(t[j], rt[j], &format!("c{j}"));
        }

        let jv = flat(&mlp.jvp(&batch.x, v).unwrap());
        let e = rel_err(&jv, &flat(&case.extra["ref.jvp"]));
        assert!(e < tol, "{name}: JVP rel err {e}");
        close(
            mlp.ntk_trace(&batch.x).unwrap(),
            scalar("ref.ntk_trace"),
            "NTK trace",
        );

        if mlp.dtype() == DType::F64 {
            let p = mlp.params.numel();
            let h = dense_hessian(mlp, batch, loss).unwrap();
            let tr: f64 = (0..p).map(|i| h[i * p + i]).sum();
            close(tr, scalar("ref.hessian_trace"), "Hessian trace");
        }
    }
}
