//! Exactness of every derivative, in f64, for every activation × loss × bias ×
//! non-unit multipliers on tiny networks: gradient and HVP against central finite
//! differences, the dense Hessian (from HVPs) symmetric and equal to the
//! finite-difference Jacobian of the gradient, c3 against finite differences of
//! vᵀH(θ ± εv)v, JVP/VJP/Gauss-Newton/NTK trace against their definitions, and f32
//! against f64.
//!
//! Tolerances: central differences with ε = 1e-5 have truncation error O(ε²) ≈ 1e-10
//! and rounding error O(1e-16/ε) ≈ 1e-11 relative to the scale; we allow 1e-7.
//! Identities that hold exactly up to rounding (symmetry, c2 = ½vᵀHv) get 1e-10.

use candle_core::{DType, Device, Tensor};
use eos_model::testing::{dense_hessian, fd_grad, fd_hessian, rel_err, tiny_case, unit};
use eos_model::{Activation, Batch, Loss, Mlp, ParamVec};

const ACTS: [Activation; 6] = [
    Activation::Relu,
    Activation::LeakyRelu(0.1),
    Activation::Identity,
    Activation::Tanh,
    Activation::Gelu,
    Activation::Silu,
];
const LOSSES: [Loss; 4] = [
    Loss::Mse,
    Loss::MseMeanAll,
    Loss::CrossEntropy,
    Loss::Logistic,
];

fn widths_for(loss: Loss) -> Vec<usize> {
    match loss {
        Loss::Logistic => vec![3, 4, 3, 1],
        _ => vec![3, 4, 3, 2],
    }
}

/// Every combination, each with its own seed.
fn cases() -> Vec<(String, Mlp, Batch, Loss)> {
    let mut out = Vec::new();
    let mut seed = 1;
    for act in ACTS {
        for loss in LOSSES {
            for bias in [true, false] {
                seed += 1;
                let (mlp, batch) =
                    tiny_case(&widths_for(loss), act, loss, bias, 5, seed, DType::F64).unwrap();
                let name = format!("{} {} bias={bias}", act.name(), loss.name());
                out.push((name, mlp, batch, loss));
            }
        }
    }
    out
}

#[test]
fn gradient_matches_finite_differences() {
    for (name, mlp, batch, loss) in cases() {
        let g = mlp.grad(&batch, loss).unwrap().to_f64_vec().unwrap();
        let fd = fd_grad(&mlp, &batch, loss, 1e-5).unwrap();
        let e = rel_err(&g, &fd);
        assert!(e < 1e-7, "{name}: gradient rel err {e}");
    }
}

#[test]
fn hessian_is_symmetric_and_matches_fd_jacobian_of_gradient() {
    for (name, mlp, batch, loss) in cases() {
        let p = mlp.params.numel();
        let h = dense_hessian(&mlp, &batch, loss).unwrap();
        let ht: Vec<f64> = (0..p * p).map(|k| h[(k % p) * p + k / p]).collect();
        let sym = rel_err(&h, &ht);
        assert!(sym < 1e-12, "{name}: asymmetry {sym}");
        let fd = fd_hessian(&mlp, &batch, loss, 1e-5).unwrap();
        let e = rel_err(&h, &fd);
        assert!(
            e < 1e-7,
            "{name}: Hessian vs FD Jacobian of the gradient: {e}"
        );
    }
}

#[test]
fn hvp_matches_dense_hessian_and_fd_of_gradient_along_v() {
    for (name, mlp, batch, loss) in cases().into_iter().step_by(3) {
        let v = mlp.params.randn_like(99).unwrap();
        let out = mlp.hvp_full(&batch, loss, &v, true).unwrap();
        let hv = out.hvp.to_f64_vec().unwrap();
        // Against the dense Hessian times v.
        let p = mlp.params.numel();
        let h = dense_hessian(&mlp, &batch, loss).unwrap();
        let vf = v.to_f64_vec().unwrap();
        let dense: Vec<f64> = (0..p)
            .map(|i| (0..p).map(|j| h[i * p + j] * vf[j]).sum())
            .collect();
        assert!(rel_err(&hv, &dense) < 1e-12, "{name}: HVP vs dense");
        // Against (∇L(θ+εv) − ∇L(θ−εv)) / 2ε.
        let eps = 1e-5;
        let g_at = |s: f64| {
            let m = mlp.with_params(mlp.params.axpy(s, &v).unwrap()).unwrap();
            m.grad(&batch, loss).unwrap().to_f64_vec().unwrap()
        };
        let (gp, gm) = (g_at(eps), g_at(-eps));
        let fd: Vec<f64> = gp
            .iter()
            .zip(&gm)
            .map(|(a, b)| (a - b) / (2.0 * eps))
            .collect();
        let e = rel_err(&hv, &fd);
        assert!(e < 1e-7, "{name}: HVP vs FD {e}");
        // The gradient and loss returned alongside are the plain ones.
        let (l, g) = mlp.loss_and_grad(&batch, loss).unwrap();
        assert!((out.loss - l).abs() < 1e-14 * (1.0 + l.abs()));
        let e = rel_err(
            &out.grad.unwrap().to_f64_vec().unwrap(),
            &g.to_f64_vec().unwrap(),
        );
        assert!(e < 1e-14, "{name}: grad from hvp_full {e}");
    }
}

#[test]
fn taylor_coefficients_match_gradient_hvp_and_fd_of_vhv() {
    for (name, mlp, batch, loss) in cases() {
        let v = mlp.params.randn_like(7).unwrap();
        let [c0, c1, c2, c3] = mlp.taylor(&batch, loss, &v).unwrap();
        let (l, g) = mlp.loss_and_grad(&batch, loss).unwrap();
        let hv = mlp.hvp(&batch, loss, &v).unwrap();
        let vhv = v.dot(&hv).unwrap();
        assert!((c0 - l).abs() < 1e-13 * (1.0 + l.abs()), "{name}: c0");
        let gv = g.dot(&v).unwrap();
        assert!(
            (c1 - gv).abs() < 1e-10 * (1.0 + gv.abs()),
            "{name}: c1 {c1} vs {gv}"
        );
        assert!(
            (c2 - 0.5 * vhv).abs() < 1e-10 * (1.0 + vhv.abs()),
            "{name}: c2 {c2} vs {}",
            vhv / 2.0
        );
        // c3 = (1/6) d/dε [vᵀ H(θ + εv) v] by central differences (ε = 1e-5: the
        // truncation error is O(ε²|v|²) and |v|² ≈ P here).
        let eps = 1e-5;
        let vhv_at = |s: f64| {
            let m = mlp.with_params(mlp.params.axpy(s, &v).unwrap()).unwrap();
            v.dot(&m.hvp(&batch, loss, &v).unwrap()).unwrap()
        };
        let d3 = (vhv_at(eps) - vhv_at(-eps)) / (2.0 * eps);
        assert!(
            (6.0 * c3 - d3).abs() < 1e-6 * (1.0 + d3.abs()),
            "{name}: c3 {} vs fd {}",
            6.0 * c3,
            d3
        );
        // And the expansion predicts L(θ + tv) to O(t⁴) (smooth activations only: a
        // step of t = 1e-2 may cross a ReLU kink).
        let kinked = matches!(mlp.activation, Activation::Relu | Activation::LeakyRelu(_));
        for t in if kinked { vec![] } else { vec![1e-2, 5e-3] } {
            let lt = mlp
                .with_params(mlp.params.axpy(t, &v).unwrap())
                .unwrap()
                .loss(&batch, loss)
                .unwrap();
            let pred = c0 + c1 * t + c2 * t * t + c3 * t.powi(3);
            assert!(
                (lt - pred).abs() < 50.0 * t.powi(4) * (1.0 + c0.abs()),
                "{name}: t={t}"
            );
        }
    }
}

#[test]
fn relu_third_derivative_is_from_the_loss_only() {
    // Piecewise-linear networks: with mse the loss is a polynomial of degree 2·depth in
    // t along v inside a linear region, so c3 is generally nonzero; with identity and
    // one layer (linear regression) it is exactly zero.
    let (mlp, batch) = tiny_case(
        &[3, 2],
        Activation::Identity,
        Loss::Mse,
        true,
        6,
        5,
        DType::F64,
    )
    .unwrap();
    let v = mlp.params.randn_like(1).unwrap();
    let c = mlp.taylor(&batch, Loss::Mse, &v).unwrap();
    assert!(
        c[3].abs() < 1e-15,
        "linear regression has c3 = 0, got {}",
        c[3]
    );
    let (mlp, batch) = tiny_case(
        &[3, 4, 2],
        Activation::Identity,
        Loss::Mse,
        true,
        6,
        5,
        DType::F64,
    )
    .unwrap();
    let c = mlp
        .taylor(&batch, Loss::Mse, &mlp.params.randn_like(1).unwrap())
        .unwrap();
    assert!(
        c[3].abs() > 1e-6,
        "a deep linear net has c3 ≠ 0, got {}",
        c[3]
    );
}

#[test]
fn jvp_vjp_gauss_newton_and_ntk_trace_match_definitions() {
    for (name, mlp, batch, loss) in cases().into_iter().step_by(2) {
        let p = mlp.params.numel();
        let n = batch.len();
        let k = *mlp.widths().last().unwrap();
        // Dense output Jacobian, row (i, k) = ∂f_ik/∂θ, from vjp with unit cotangents.
        let mut jac = vec![vec![0.0; p]; n * k];
        for r in 0..n * k {
            let mut u = vec![0.0; n * k];
            u[r] = 1.0;
            let u = Tensor::from_vec(u, (n, k), &Device::Cpu).unwrap();
            jac[r] = mlp.vjp(&batch.x, &u).unwrap().to_f64_vec().unwrap();
        }
        // vjp rows against finite differences of the outputs.
        let theta = mlp.params.to_f64_vec().unwrap();
        let eps = 1e-6;
        for j in (0..p).step_by(5) {
            let out_at = |s: f64| {
                let mut t = theta.clone();
                t[j] += s;
                let m = mlp
                    .with_params(ParamVec::from_f64_slice(&mlp.params, &t).unwrap())
                    .unwrap();
                m.forward(&batch.x)
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f64>()
                    .unwrap()
            };
            let (a, b) = (out_at(eps), out_at(-eps));
            for r in 0..n * k {
                let fd = (a[r] - b[r]) / (2.0 * eps);
                assert!(
                    (jac[r][j] - fd).abs() < 1e-7 * (1.0 + fd.abs()),
                    "{name}: J[{r},{j}]"
                );
            }
        }
        // jvp = J v.
        let v = mlp.params.randn_like(3).unwrap();
        let vf = v.to_f64_vec().unwrap();
        let jv = mlp
            .jvp(&batch.x, &v)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap();
        let dense_jv: Vec<f64> = jac
            .iter()
            .map(|row| row.iter().zip(&vf).map(|(a, b)| a * b).sum())
            .collect();
        assert!(rel_err(&jv, &dense_jv) < 1e-12, "{name}: jvp");
        // NTK trace = (1/n) Σ ‖J row‖².
        let tr: f64 = jac
            .iter()
            .map(|r| r.iter().map(|x| x * x).sum::<f64>())
            .sum::<f64>()
            / n as f64;
        let ntk = mlp.ntk_trace(&batch.x).unwrap();
        assert!((ntk - tr).abs() < 1e-12 * tr, "{name}: ntk {ntk} vs {tr}");
        // For mse the Gauss-Newton matrix is (1/n) JᵀJ.
        if loss == Loss::Mse {
            let gv = mlp.gnvp(&batch, loss, &v).unwrap().to_f64_vec().unwrap();
            let dense: Vec<f64> = (0..p)
                .map(|a| {
                    jac.iter()
                        .zip(&dense_jv)
                        .map(|(row, jvr)| row[a] * jvr)
                        .sum::<f64>()
                        / n as f64
                })
                .collect();
            assert!(rel_err(&gv, &dense) < 1e-12, "{name}: Gauss-Newton");
        }
    }
}

#[test]
fn gauss_newton_equals_hessian_for_linear_model_and_is_psd() {
    // f linear in θ (one identity layer): H = G exactly, for every convex loss.
    for loss in LOSSES {
        let w = if loss == Loss::Logistic {
            vec![4, 1]
        } else {
            vec![4, 3]
        };
        let (mlp, batch) =
            tiny_case(&w, Activation::Identity, loss, true, 6, 11, DType::F64).unwrap();
        let v = mlp.params.randn_like(5).unwrap();
        let hv = mlp.hvp(&batch, loss, &v).unwrap().to_f64_vec().unwrap();
        let gv = mlp.gnvp(&batch, loss, &v).unwrap().to_f64_vec().unwrap();
        assert!(rel_err(&gv, &hv) < 1e-12, "{loss:?}");
        let (mlp, batch) = tiny_case(
            &[3, 5, 2],
            Activation::Tanh,
            Loss::CrossEntropy,
            true,
            6,
            12,
            DType::F64,
        )
        .unwrap();
        let gv = mlp.gnvp(&batch, Loss::CrossEntropy, &v_like(&mlp)).unwrap();
        assert!(v_like(&mlp).dot(&gv).unwrap() >= 0.0);
    }
}

fn v_like(mlp: &Mlp) -> ParamVec {
    mlp.params.randn_like(77).unwrap()
}

#[test]
fn chunking_does_not_change_results() {
    let (mut mlp, batch) = tiny_case(
        &[3, 6, 2],
        Activation::Tanh,
        Loss::CrossEntropy,
        true,
        11,
        3,
        DType::F64,
    )
    .unwrap();
    let v = mlp.params.randn_like(2).unwrap();
    let whole = (
        mlp.loss_and_grad(&batch, Loss::CrossEntropy).unwrap(),
        mlp.hvp(&batch, Loss::CrossEntropy, &v)
            .unwrap()
            .to_f64_vec()
            .unwrap(),
        mlp.taylor(&batch, Loss::CrossEntropy, &v).unwrap(),
        mlp.ntk_trace(&batch.x).unwrap(),
    );
    mlp.chunk_size = 4; // 11 rows: chunks of 4, 4, 3
    let (l, g) = mlp.loss_and_grad(&batch, Loss::CrossEntropy).unwrap();
    assert!((l - whole.0 .0).abs() < 1e-14);
    assert!(rel_err(&g.to_f64_vec().unwrap(), &whole.0 .1.to_f64_vec().unwrap()) < 1e-14);
    let hv = mlp
        .hvp(&batch, Loss::CrossEntropy, &v)
        .unwrap()
        .to_f64_vec()
        .unwrap();
    assert!(rel_err(&hv, &whole.1) < 1e-14);
    let t = mlp.taylor(&batch, Loss::CrossEntropy, &v).unwrap();
    assert!(rel_err(&t, &whole.2) < 1e-13);
    assert!((mlp.ntk_trace(&batch.x).unwrap() - whole.3).abs() < 1e-13 * whole.3);
}

#[test]
fn offset_shifts_the_output_only() {
    // With mse, an offset o is the same as targets y + o.
    let (mlp, batch) = tiny_case(
        &[3, 4, 2],
        Activation::Silu,
        Loss::Mse,
        true,
        5,
        9,
        DType::F64,
    )
    .unwrap();
    let o = Tensor::randn(0.0f64, 1.0, (5, 2), &Device::Cpu).unwrap();
    let mut with_off = batch.clone();
    with_off.offset = Some(o.clone());
    let shifted = Batch::new(batch.x.clone(), (&batch.y + &o).unwrap());
    let v = mlp.params.randn_like(4).unwrap();
    let a = mlp.taylor(&with_off, Loss::Mse, &v).unwrap();
    let b = mlp.taylor(&shifted, Loss::Mse, &v).unwrap();
    assert!(rel_err(&a, &b) < 1e-13);
    let ga = mlp
        .grad(&with_off, Loss::Mse)
        .unwrap()
        .to_f64_vec()
        .unwrap();
    let gb = mlp.grad(&shifted, Loss::Mse).unwrap().to_f64_vec().unwrap();
    assert!(rel_err(&ga, &gb) < 1e-13);
}

#[test]
fn f32_agrees_with_f64() {
    // f32 rounding (6e-8) amplified by a few dozen operations: 1e-4 relative.
    for (act, loss) in [
        (Activation::Tanh, Loss::Mse),
        (Activation::Gelu, Loss::CrossEntropy),
        (Activation::Relu, Loss::Mse),
    ] {
        let (m64, b64) = tiny_case(&[6, 8, 8, 3], act, loss, true, 16, 21, DType::F64).unwrap();
        let m32 = m64
            .with_params(m64.params.to_dtype(DType::F32).unwrap())
            .unwrap();
        let b32 = b64.to(DType::F32, &Device::Cpu).unwrap();
        let v64 = m64.params.randn_like(8).unwrap();
        let v32 = v64.to_dtype(DType::F32).unwrap();
        let g = |m: &Mlp, b: &Batch| m.grad(b, loss).unwrap().to_f64_vec().unwrap();
        assert!(rel_err(&g(&m32, &b32), &g(&m64, &b64)) < 1e-4);
        let hv32 = m32.hvp(&b32, loss, &v32).unwrap().to_f64_vec().unwrap();
        let hv64 = m64.hvp(&b64, loss, &v64).unwrap().to_f64_vec().unwrap();
        assert!(rel_err(&hv32, &hv64) < 1e-4, "{loss:?} hvp");
        let t32 = m32.taylor(&b32, loss, &v32).unwrap();
        let t64 = m64.taylor(&b64, loss, &v64).unwrap();
        assert!(rel_err(&t32, &t64) < 1e-4, "{t32:?} vs {t64:?}");
    }
}

#[test]
fn unit_vectors_pick_hessian_columns() {
    let (mlp, batch) = tiny_case(
        &[2, 3, 1],
        Activation::Tanh,
        Loss::Logistic,
        true,
        4,
        2,
        DType::F64,
    )
    .unwrap();
    let h = dense_hessian(&mlp, &batch, Loss::Logistic).unwrap();
    let p = mlp.params.numel();
    let e3 = unit(&mlp.params, 3).unwrap();
    let vhv = e3
        .dot(&mlp.hvp(&batch, Loss::Logistic, &e3).unwrap())
        .unwrap();
    assert!((vhv - h[3 * p + 3]).abs() < 1e-15);
}
