//! The eigen-solvers on real network Hessians: Lanczos (top-k and bottom-k), power
//! iteration, exact and Hutchinson traces, SLQ, against a dense symmetric
//! eigensolver of the Hessian built column by column from exact HVPs, and against
//! JAX's float64 eigenvalues (`crates/model/tests/data/`, see its README); the
//! effective sharpness `λ(P^{−½} H P^{−½})` against the dense `D H D`.
//! Tolerance 1e-8 relative to the spectral norm (the requirement).

use std::path::PathBuf;

use candle_core::{DType, Device};
use eos_hessian::{
    effective_sharpness, exact_trace, hutchinson, lanczos, power_iteration, slq, slq_trace,
    symmetric_eigen, LanczosConfig, LinearOperator, ModelOperator, Which,
};
use eos_model::testing::{dense_hessian, tiny_case};
use eos_model::{load_case, Activation, Loss};

fn check_against_dense(op: &ModelOperator, dense_eigs: &[f64], name: &str) {
    let p = op.dim();
    let scale = dense_eigs.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let k = 4;
    for which in [Which::Largest, Which::Smallest] {
        let cfg = LanczosConfig {
            k,
            which,
            max_iter: p,
            tol: 1e-12,
            seed: 3,
        };
        let r = lanczos(op, &cfg, &[]).unwrap();
        let expect: Vec<f64> = match which {
            Which::Largest => dense_eigs.iter().rev().take(k).copied().collect(),
            _ => dense_eigs.iter().take(k).copied().collect(),
        };
        for (a, b) in r.eigenvalues.iter().zip(&expect) {
            assert!(
                (a - b).abs() <= 1e-8 * scale,
                "{name} {which:?}: lanczos {a} vs dense {b}"
            );
        }
        // Reported residuals are real: recompute ‖Hy − θy‖ for the first pair.
        let y = &r.eigenvectors[0];
        let hy = op.apply(y).unwrap();
        let res: f64 = hy
            .iter()
            .zip(y)
            .map(|(a, b)| (a - r.eigenvalues[0] * b).powi(2))
            .sum::<f64>()
            .sqrt();
        assert!(res <= 1e-6 * scale, "{name}: residual {res}");
    }
    let tr: f64 = dense_eigs.iter().sum();
    let ex = exact_trace(op, 8).unwrap();
    assert!(
        (ex - tr).abs() <= 1e-10 * dense_eigs.iter().map(|v| v.abs()).sum::<f64>(),
        "{name}: exact trace"
    );
    let h = hutchinson(op, 200, 8, 1).unwrap();
    assert!(
        (h.mean - tr).abs() < 5.0 * h.stderr + 1e-12,
        "{name}: hutchinson {} ± {} vs {tr}",
        h.mean,
        h.stderr
    );
    let d = slq(op, 4, 12.min(p), 2).unwrap();
    let st = slq_trace(&d).unwrap();
    assert!(
        (st.mean - tr).abs() < 6.0 * st.stderr + 1e-9 * scale * p as f64,
        "{name}: slq trace"
    );
}

#[test]
fn lanczos_and_traces_match_dense_hessians() {
    let combos = [
        (Activation::Tanh, Loss::Mse, vec![4, 6, 3]),
        (Activation::Gelu, Loss::CrossEntropy, vec![3, 5, 4, 3]),
        (Activation::Relu, Loss::Mse, vec![5, 8, 2]),
        (Activation::Silu, Loss::Logistic, vec![4, 6, 1]),
    ];
    for (i, (act, loss, w)) in combos.into_iter().enumerate() {
        let (mlp, batch) = tiny_case(&w, act, loss, true, 12, 30 + i as u64, DType::F64).unwrap();
        let p = mlp.params.numel();
        let h = dense_hessian(&mlp, &batch, loss).unwrap();
        let eigs = symmetric_eigen(&h, p).unwrap().values;
        let op = ModelOperator::hessian(&mlp, &batch, loss);
        check_against_dense(&op, &eigs, &format!("{} {}", act.name(), loss.name()));
    }
}

#[test]
fn power_iteration_finds_the_dominant_eigenvalue() {
    // A 1-hidden-layer mse net near init: the dominant eigenvalue is positive and
    // separated; 200 iterations converge to 1e-8.
    let (mlp, batch) = tiny_case(
        &[4, 6, 2],
        Activation::Tanh,
        Loss::Mse,
        true,
        16,
        8,
        DType::F64,
    )
    .unwrap();
    let p = mlp.params.numel();
    let eigs = symmetric_eigen(&dense_hessian(&mlp, &batch, Loss::Mse).unwrap(), p)
        .unwrap()
        .values;
    let dominant = eigs
        .iter()
        .copied()
        .fold(0.0f64, |m, v| if v.abs() > m.abs() { v } else { m });
    let op = ModelOperator::hessian(&mlp, &batch, Loss::Mse);
    let r = power_iteration(&op, 200, None, 1).unwrap();
    assert!(
        (r.eigenvalue - dominant).abs() < 1e-8 * dominant.abs(),
        "{} vs {dominant}",
        r.eigenvalue
    );
    assert_eq!(
        (op.applications(), r.iterations),
        (200, 200),
        "one HVP per iteration"
    );
}

#[test]
fn eigenvalues_match_jax_reference() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../model/tests/data");
    for name in [
        "tanh_mse_bias",
        "gelu_ce_bias",
        "silu_logistic_nobias",
        "relu_mse_nobias",
    ] {
        let case = load_case(
            &dir.join(format!("ref_{name}.safetensors")),
            None,
            &Device::Cpu,
        )
        .unwrap();
        let batch = case.batch.unwrap();
        let loss = case.loss.unwrap();
        let jax: Vec<f64> = case.extra["ref.hessian_eigenvalues"].to_vec1().unwrap();
        let op = ModelOperator::hessian(&case.mlp, &batch, loss);
        check_against_dense(&op, &jax, name);
    }
}

#[test]
fn effective_sharpness_matches_dense_dhd_on_a_network() {
    // Per-layer lr multipliers as an optimizer reports them (flat ParamVec order:
    // weight of layer 0, its bias, weight of layer 1, its bias), spread over two decades.
    let (mlp, batch) = tiny_case(
        &[4, 6, 3],
        Activation::Tanh,
        Loss::Mse,
        true,
        12,
        5,
        DType::F64,
    )
    .unwrap();
    let p = mlp.params.numel();
    let per_layer = [(4.0, 0.5), (0.04, 2.0)];
    let mut m: Vec<f64> = Vec::with_capacity(p);
    for (l, (mw, mb)) in mlp.params.layers.iter().zip(per_layer) {
        m.extend(std::iter::repeat_n(mw, l.weight.elem_count()));
        let nb = l.bias.as_ref().map_or(0, |b| b.elem_count());
        m.extend(std::iter::repeat_n(mb, nb));
    }
    assert_eq!(m.len(), p);
    let h = dense_hessian(&mlp, &batch, Loss::Mse).unwrap();
    let dhd: Vec<f64> = (0..p * p)
        .map(|k| m[k / p].sqrt() * h[k] * m[k % p].sqrt())
        .collect();
    let dense = symmetric_eigen(&dhd, p).unwrap().values;
    let plain_top = symmetric_eigen(&h, p).unwrap().values[p - 1];
    let scale = dense.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    let cfg = LanczosConfig {
        k: 3,
        which: Which::Largest,
        max_iter: p,
        tol: 1e-12,
        seed: 4,
    };
    let op = ModelOperator::hessian(&mlp, &batch, Loss::Mse);
    let r = effective_sharpness(&op, Some(&m), &cfg, &[]).unwrap();
    for (a, b) in r.eigenvalues.iter().zip(dense.iter().rev()) {
        assert!((a - b).abs() <= 1e-8 * scale, "effective {a} vs dense {b}");
    }
    // the preconditioner matters here: λ_eff differs from λ_max(H) by far more than
    // the tolerance
    assert!((r.eigenvalues[0] - plain_top).abs() > 1e-3 * scale);
}
