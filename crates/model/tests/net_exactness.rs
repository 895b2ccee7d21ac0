//! Exactness of the layer rules (eos_model::net), in f64, for every layer type alone
//! and inside small composite networks: gradient, HVP and JVP/VJP against central
//! finite differences, the dense Hessian (from HVPs) symmetric and equal to the FD
//! Jacobian of the gradient, c0..c2 against the gradient and HVP, c3 against finite
//! differences of vᵀH(θ ± εv)v, f32 against f64, and an MLP written as a dense + act
//! stack against [`Mlp`] on the same weights.
//!
//! Tolerances as in exactness.rs: central differences with ε = 1e-5 have truncation
//! O(ε²) ≈ 1e-10 and rounding O(1e-16/ε) ≈ 1e-11 relative; we allow 1e-7 (1e-6 for c3,
//! a difference of HVPs). Identities exact up to rounding get 1e-10 to 1e-12.

use candle_core::{DType, Device, Tensor};
use eos_model::net::{
    ActLayer, Attention, AttentionScale, AvgPool2d, Conv2d, CoordPair, Dense, Embedding, Flatten,
    LayerKind, LayerNorm, MaxPool2d, PosEmbedding, Residual, SymmetricPair,
};
use eos_model::testing::{
    net_dense_hessian, net_fd_grad, net_fd_hessian, net_tiny_case, rel_err, tiny_case,
};
use eos_model::{Activation, Batch, Loss, NetParams, Network};

fn dense(out: usize, bias: bool, m: f64) -> LayerKind {
    LayerKind::Dense(Dense {
        out,
        bias,
        multiplier: m,
    })
}

fn act(f: Activation) -> LayerKind {
    LayerKind::Act(ActLayer { f })
}

fn ln(affine: bool) -> LayerKind {
    LayerKind::LayerNorm(LayerNorm { eps: 1e-5, affine })
}

fn pair(out: usize, f: Activation) -> LayerKind {
    LayerKind::SymmetricPair(SymmetricPair { out, f })
}

fn coord(f: Activation) -> LayerKind {
    LayerKind::CoordPair(CoordPair { f })
}

fn conv(out: usize, kernel: usize, stride: usize, padding: usize, bias: bool) -> LayerKind {
    LayerKind::Conv2d(Conv2d {
        out,
        kernel,
        stride,
        padding,
        bias,
        multiplier: 0.9,
    })
}

fn attn(heads: usize, causal: bool) -> LayerKind {
    LayerKind::Attention(Attention {
        heads,
        causal,
        scale: AttentionScale::Sqrt,
    })
}

fn flatten() -> LayerKind {
    LayerKind::Flatten(Flatten)
}

fn residual(body: Vec<LayerKind>) -> LayerKind {
    LayerKind::Residual(Residual { body })
}

/// Every layer type alone (with a readout where needed) and in composites.
fn cases() -> Vec<(String, Network, Batch, Loss)> {
    use Activation::*;
    let mut specs: Vec<(&str, Vec<LayerKind>, Vec<usize>, Loss)> = vec![
        ("dense", vec![dense(2, true, 0.7)], vec![3], Loss::Mse),
        (
            "dense on [n,T,d]",
            vec![dense(4, true, 1.3), act(Tanh), dense(3, false, 0.8)],
            vec![2, 3],
            Loss::CrossEntropy,
        ),
        (
            "flatten",
            vec![flatten(), dense(2, true, 1.0)],
            vec![2, 3],
            Loss::Mse,
        ),
        (
            "residual",
            vec![
                dense(4, true, 1.0),
                residual(vec![dense(3, true, 0.9), act(Gelu), dense(4, false, 1.1)]),
                dense(2, true, 1.0),
            ],
            vec![3],
            Loss::CrossEntropy,
        ),
        (
            "symmetric_pair tanh",
            vec![pair(3, Tanh), dense(1, false, 1.0)],
            vec![4],
            Loss::Mse,
        ),
        (
            "symmetric_pair relu",
            vec![pair(3, Relu), dense(1, false, 0.5)],
            vec![4],
            Loss::Logistic,
        ),
        (
            "symmetric_pair alone",
            vec![pair(2, Silu)],
            vec![3],
            Loss::MseMeanAll,
        ),
        (
            "coord_pair tanh",
            vec![coord(Tanh), dense(1, false, 1.0)],
            vec![4],
            Loss::Mse,
        ),
        (
            "coord_pair relu (Ahn et al. model (2))",
            vec![coord(Relu), dense(1, false, 0.5)],
            vec![5],
            Loss::Logistic,
        ),
        (
            "coord_pair inside (input tangents)",
            vec![dense(3, true, 1.0), coord(Silu), dense(2, false, 1.0)],
            vec![4],
            Loss::MseMeanAll,
        ),
        ("layernorm alone", vec![ln(true)], vec![4], Loss::Mse),
        (
            "layernorm without affine",
            vec![dense(4, true, 1.0), ln(false), dense(2, true, 1.0)],
            vec![3],
            Loss::CrossEntropy,
        ),
        (
            "pre-LN block on [n,T,d]",
            vec![
                dense(4, true, 1.0),
                residual(vec![
                    ln(true),
                    dense(5, true, 1.0),
                    act(Gelu),
                    dense(4, true, 1.0),
                ]),
                ln(true),
                dense(3, true, 1.0),
            ],
            vec![2, 3],
            Loss::CrossEntropy,
        ),
        (
            "conv2d stride 1 padding 1",
            vec![conv(2, 3, 1, 1, true), flatten(), dense(2, true, 1.0)],
            vec![2, 4, 4],
            Loss::Mse,
        ),
        (
            "conv2d stride 2 on 5×6 (output padding)",
            vec![
                conv(3, 2, 2, 0, false),
                act(Tanh),
                flatten(),
                dense(2, true, 1.0),
            ],
            vec![1, 5, 6],
            Loss::CrossEntropy,
        ),
        (
            "avgpool2d (dropped edge)",
            vec![
                conv(2, 3, 1, 1, true),
                act(Silu),
                LayerKind::AvgPool2d(AvgPool2d { kernel: 2 }),
                flatten(),
                dense(2, true, 1.0),
            ],
            vec![1, 5, 4],
            Loss::Mse,
        ),
        (
            "maxpool2d",
            vec![
                conv(2, 3, 1, 1, true),
                act(Tanh),
                LayerKind::MaxPool2d(MaxPool2d { kernel: 2 }),
                flatten(),
                dense(2, true, 1.0),
            ],
            vec![1, 4, 5],
            Loss::CrossEntropy,
        ),
        (
            "residual conv block",
            vec![
                conv(2, 3, 1, 1, true),
                act(Gelu),
                residual(vec![
                    conv(2, 3, 1, 1, true),
                    act(Tanh),
                    conv(2, 3, 1, 1, false),
                ]),
                LayerKind::AvgPool2d(AvgPool2d { kernel: 2 }),
                flatten(),
                dense(2, true, 1.0),
            ],
            vec![1, 4, 4],
            Loss::CrossEntropy,
        ),
        (
            "embedding + pos_embedding",
            vec![
                LayerKind::Embedding(Embedding { vocab: 5, dim: 3 }),
                LayerKind::PosEmbedding(PosEmbedding { len: 4, dim: 3 }),
                act(Tanh),
                dense(5, true, 1.0),
            ],
            vec![3],
            Loss::CrossEntropy,
        ),
        (
            "pos_embedding on floats",
            vec![
                LayerKind::PosEmbedding(PosEmbedding { len: 3, dim: 2 }),
                dense(2, true, 1.0),
            ],
            vec![3, 2],
            Loss::Mse,
        ),
        (
            "attention, 2 heads, not causal",
            vec![attn(2, false), dense(2, true, 1.0)],
            vec![3, 4],
            Loss::Mse,
        ),
        (
            "attention, 2 heads, causal, mup scale 1/(d/H)",
            vec![
                LayerKind::Attention(Attention {
                    heads: 2,
                    causal: true,
                    scale: AttentionScale::Mup,
                }),
                dense(2, true, 1.0),
            ],
            vec![3, 4],
            Loss::Mse,
        ),
        (
            "attention, 1 head, causal",
            vec![dense(4, false, 1.0), attn(1, true)],
            vec![3, 2],
            Loss::CrossEntropy,
        ),
        (
            "pre-LN causal transformer block",
            vec![
                LayerKind::Embedding(Embedding { vocab: 5, dim: 4 }),
                LayerKind::PosEmbedding(PosEmbedding { len: 3, dim: 4 }),
                residual(vec![ln(true), attn(2, true)]),
                residual(vec![
                    ln(true),
                    dense(6, true, 1.0),
                    act(Gelu),
                    dense(4, true, 1.0),
                ]),
                ln(true),
                dense(5, false, 1.0),
            ],
            vec![3],
            Loss::CrossEntropy,
        ),
    ];
    for f in [Relu, LeakyRelu(0.1), Identity, Tanh, Gelu, Silu] {
        specs.push((
            "act",
            vec![dense(4, true, 0.8), act(f), dense(2, true, 1.2)],
            vec![3],
            Loss::Mse,
        ));
    }
    specs
        .into_iter()
        .enumerate()
        .map(|(i, (name, layers, input, loss))| {
            let (net, batch) = net_tiny_case(layers, &input, loss, 4, 10 + i as u64, DType::F64)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            (format!("{name} #{i}"), net, batch, loss)
        })
        .collect()
}

fn flat(t: &Tensor) -> Vec<f64> {
    t.flatten_all().unwrap().to_vec1::<f64>().unwrap()
}

#[test]
fn gradient_matches_finite_differences() {
    for (name, net, batch, loss) in cases() {
        let g = net.grad(&batch, loss).unwrap().to_f64_vec().unwrap();
        let fd = net_fd_grad(&net, &batch, loss, 1e-5).unwrap();
        let e = rel_err(&g, &fd);
        assert!(e < 1e-7, "{name}: gradient rel err {e}");
    }
}

#[test]
fn hessian_is_symmetric_and_matches_fd_jacobian_of_gradient() {
    for (name, net, batch, loss) in cases() {
        let p = net.params.numel();
        let h = net_dense_hessian(&net, &batch, loss).unwrap();
        let ht: Vec<f64> = (0..p * p).map(|k| h[(k % p) * p + k / p]).collect();
        let sym = rel_err(&h, &ht);
        assert!(sym < 1e-12, "{name}: asymmetry {sym}");
        let fd = net_fd_hessian(&net, &batch, loss, 1e-5).unwrap();
        let e = rel_err(&h, &fd);
        assert!(
            e < 1e-7,
            "{name}: Hessian vs FD Jacobian of the gradient: {e}"
        );
    }
}

#[test]
fn hvp_matches_fd_of_gradient_along_v_and_returns_the_gradient() {
    for (name, net, batch, loss) in cases() {
        let v = net.params.randn_like(99).unwrap();
        let out = net.hvp_full(&batch, loss, &v, true).unwrap();
        let hv = out.hvp.to_f64_vec().unwrap();
        let eps = 1e-5;
        let g_at = |s: f64| {
            let m = net.with_params(net.params.axpy(s, &v).unwrap()).unwrap();
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
        let (l, g) = net.loss_and_grad(&batch, loss).unwrap();
        assert!(
            (out.loss - l).abs() < 1e-14 * (1.0 + l.abs()),
            "{name}: loss"
        );
        let e = rel_err(
            &out.grad.unwrap().to_f64_vec().unwrap(),
            &g.to_f64_vec().unwrap(),
        );
        assert!(e < 1e-14, "{name}: grad from hvp_full {e}");
    }
}

#[test]
fn taylor_coefficients_match_gradient_hvp_and_fd_of_vhv() {
    for (name, net, batch, loss) in cases() {
        let v = net.params.randn_like(7).unwrap();
        let [c0, c1, c2, c3] = net.taylor(&batch, loss, &v).unwrap();
        let (l, g) = net.loss_and_grad(&batch, loss).unwrap();
        let vhv = v.dot(&net.hvp(&batch, loss, &v).unwrap()).unwrap();
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
        let eps = 1e-5;
        let vhv_at = |s: f64| {
            let m = net.with_params(net.params.axpy(s, &v).unwrap()).unwrap();
            v.dot(&m.hvp(&batch, loss, &v).unwrap()).unwrap()
        };
        let d3 = (vhv_at(eps) - vhv_at(-eps)) / (2.0 * eps);
        assert!(
            (6.0 * c3 - d3).abs() < 1e-6 * (1.0 + d3.abs()),
            "{name}: c3 {} vs fd {d3}",
            6.0 * c3
        );
    }
}

#[test]
fn jvp_and_vjp_match_finite_differences_of_the_outputs() {
    for (name, net, batch, _) in cases() {
        let theta = net.params.to_f64_vec().unwrap();
        let v = net.params.randn_like(3).unwrap();
        let vf = v.to_f64_vec().unwrap();
        let eps = 1e-6;
        let out_at = |s: f64| {
            let t: Vec<f64> = theta.iter().zip(&vf).map(|(a, b)| a + s * b).collect();
            let m = net
                .with_params(NetParams::from_f64_slice(&net.params, &t).unwrap())
                .unwrap();
            flat(&m.forward(&batch.x).unwrap())
        };
        let (a, b) = (out_at(eps), out_at(-eps));
        let fd: Vec<f64> = a
            .iter()
            .zip(&b)
            .map(|(p, q)| (p - q) / (2.0 * eps))
            .collect();
        let jv = flat(&net.jvp(&batch.x, &v).unwrap());
        assert!(rel_err(&jv, &fd) < 1e-7, "{name}: jvp vs FD");
        // ⟨u, J v⟩ = ⟨Jᵀ u, v⟩ for a random cotangent u.
        let f = net.forward(&batch.x).unwrap();
        let u = Tensor::randn(0.0f64, 1.0, f.dims(), &Device::Cpu).unwrap();
        let jtu = net.vjp(&batch.x, &u).unwrap();
        let lhs: f64 = flat(&u).iter().zip(&jv).map(|(p, q)| p * q).sum();
        let rhs = jtu.dot(&v).unwrap();
        assert!(
            (lhs - rhs).abs() < 1e-12 * (1.0 + lhs.abs()),
            "{name}: ⟨u,Jv⟩ {lhs} vs {rhs}"
        );
    }
}

#[test]
fn f32_agrees_with_f64() {
    // f32 rounding (6e-8) amplified by a few dozen operations: 1e-4 relative.
    for (name, n64, b64, loss) in cases() {
        let n32 = n64
            .with_params(n64.params.to_dtype(DType::F32).unwrap())
            .unwrap();
        let b32 = b64.to(DType::F32, &Device::Cpu).unwrap();
        let v64 = n64.params.randn_like(8).unwrap();
        let v32 = v64.to_dtype(DType::F32).unwrap();
        let g = |m: &Network, b: &Batch| m.grad(b, loss).unwrap().to_f64_vec().unwrap();
        assert!(
            rel_err(&g(&n32, &b32), &g(&n64, &b64)) < 1e-4,
            "{name}: grad"
        );
        let hv32 = n32.hvp(&b32, loss, &v32).unwrap().to_f64_vec().unwrap();
        let hv64 = n64.hvp(&b64, loss, &v64).unwrap().to_f64_vec().unwrap();
        assert!(rel_err(&hv32, &hv64) < 1e-4, "{name}: hvp");
        let t32 = n32.taylor(&b32, loss, &v32).unwrap();
        let t64 = n64.taylor(&b64, loss, &v64).unwrap();
        assert!(rel_err(&t32, &t64) < 1e-4, "{name}: {t32:?} vs {t64:?}");
    }
}

#[test]
fn chunking_does_not_change_results() {
    let (mut net, batch) = net_tiny_case(
        vec![
            dense(4, true, 1.0),
            ln(true),
            act(Activation::Tanh),
            dense(2, true, 1.0),
        ],
        &[3],
        Loss::CrossEntropy,
        11,
        3,
        DType::F64,
    )
    .unwrap();
    let v = net.params.randn_like(2).unwrap();
    let loss = Loss::CrossEntropy;
    let whole = (
        net.loss_and_grad(&batch, loss).unwrap(),
        net.hvp(&batch, loss, &v).unwrap().to_f64_vec().unwrap(),
        net.taylor(&batch, loss, &v).unwrap(),
    );
    net.chunk_size = 4;
    let (l, g) = net.loss_and_grad(&batch, loss).unwrap();
    assert!((l - whole.0 .0).abs() < 1e-14);
    assert!(rel_err(&g.to_f64_vec().unwrap(), &whole.0 .1.to_f64_vec().unwrap()) < 1e-14);
    let hv = net.hvp(&batch, loss, &v).unwrap().to_f64_vec().unwrap();
    assert!(rel_err(&hv, &whole.1) < 1e-14);
    assert!(rel_err(&net.taylor(&batch, loss, &v).unwrap(), &whole.2) < 1e-13);
}

/// An MLP written as dense + act layers agrees with [`Mlp`] on the same weights.
#[test]
fn mlp_as_a_network_agrees_with_mlp() {
    use Activation::*;
    let mut seed = 40;
    for f in [Relu, LeakyRelu(0.1), Identity, Tanh, Gelu, Silu] {
        for loss in [
            Loss::Mse,
            Loss::MseMeanAll,
            Loss::CrossEntropy,
            Loss::Logistic,
        ] {
            for bias in [true, false] {
                seed += 1;
                let k = if loss == Loss::Logistic { 1 } else { 2 };
                let widths = [3, 4, 3, k];
                let (mlp, batch) = tiny_case(&widths, f, loss, bias, 5, seed, DType::F64).unwrap();
                let mut layers = Vec::new();
                for (l, &m) in mlp.multipliers.iter().enumerate() {
                    layers.push(dense(widths[l + 1], bias, m));
                    if l + 1 < mlp.multipliers.len() {
                        layers.push(act(f));
                    }
                }
                let theta = mlp.params.to_f64_vec().unwrap();
                let tmpl = Network::random(layers.clone(), &[3], 0, 0.0, DType::F64, &Device::Cpu)
                    .unwrap();
                let params = NetParams::from_f64_slice(&tmpl.params, &theta).unwrap();
                let net = Network::new(layers, &[3], params).unwrap();
                let name = format!("{} {} bias={bias}", f.name(), loss.name());
                let v = mlp.params.randn_like(5).unwrap();
                let vn = NetParams::from_f64_slice(&net.params, &v.to_f64_vec().unwrap()).unwrap();
                let (l1, g1) = mlp.loss_and_grad(&batch, loss).unwrap();
                let (l2, g2) = net.loss_and_grad(&batch, loss).unwrap();
                assert!(
                    (l1 - l2).abs() < 1e-12 * l1.abs().max(1e-300),
                    "{name}: loss"
                );
                let (g1, g2) = (g1.to_f64_vec().unwrap(), g2.to_f64_vec().unwrap());
                assert!(rel_err(&g2, &g1) < 1e-12, "{name}: grad");
                let h1 = mlp.hvp(&batch, loss, &v).unwrap().to_f64_vec().unwrap();
                let h2 = net.hvp(&batch, loss, &vn).unwrap().to_f64_vec().unwrap();
                assert!(rel_err(&h2, &h1) < 1e-12, "{name}: hvp");
                let t1 = mlp.taylor(&batch, loss, &v).unwrap();
                let t2 = net.taylor(&batch, loss, &vn).unwrap();
                for j in 0..4 {
                    assert!(
                        (t1[j] - t2[j]).abs() < 1e-12 * t1[j].abs().max(1e-12),
                        "{name}: c{j} {} vs {}",
                        t1[j],
                        t2[j]
                    );
                }
            }
        }
    }
}

#[test]
fn shapes_that_do_not_chain_are_errors() {
    let e = Network::random(
        vec![dense(4, true, 1.0), residual(vec![dense(3, true, 1.0)])],
        &[3],
        0,
        0.0,
        DType::F64,
        &Device::Cpu,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("layers.1") && e.contains("residual"), "{e}");
    let (net, batch) =
        net_tiny_case(vec![dense(2, true, 1.0)], &[3], Loss::Mse, 4, 1, DType::F64).unwrap();
    let bad = Batch::new(batch.x.narrow(1, 0, 2).unwrap(), batch.y.clone());
    let e = net.loss(&bad, Loss::Mse).unwrap_err().to_string();
    assert!(e.contains("x: shape [4, 2], expected [4, 3]"), "{e}");
}

#[test]
fn maxpool_ties_go_to_the_first_maximum() {
    use eos_model::net::{Grads, Layer, Workspace};
    // Windows of equal values (and one with a later strict maximum): x̄ goes to the first
    // maximum in row-major window order.
    let pool = MaxPool2d { kernel: 2 };
    let x = Tensor::from_vec(
        vec![0.5f64, 0.5, 0.1, 0.2, 0.5, 0.5, 0.3, 0.3],
        (1, 1, 2, 4),
        &Device::Cpu,
    )
    .unwrap();
    let mut ws = Workspace::new(1);
    let (y, c) = pool.forward(&[], &x, &mut ws).unwrap();
    assert_eq!(flat(&y), [0.5, 0.3]);
    let dy = Tensor::from_vec(vec![1.0f64, 2.0], (1, 1, 1, 2), &Device::Cpu).unwrap();
    let dx = pool
        .vjp(&[], &c, &dy, true, &mut Grads::none(), &mut ws)
        .unwrap()
        .unwrap();
    assert_eq!(flat(&dx), [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0, 0.0]);
}

#[test]
fn cached_hvp_gauss_newton_and_ntk_trace_match_definitions() {
    for (name, net, batch, loss) in cases().into_iter().step_by(2) {
        let v = net.params.randn_like(12).unwrap();
        // H v from a reused primal pass equals the one-shot H v.
        let primal = net.hvp_primal(&batch, loss).unwrap();
        assert!((primal.loss_value - net.loss(&batch, loss).unwrap()).abs() < 1e-14);
        let a = net
            .hvp_with(&primal, &batch, &v)
            .unwrap()
            .to_f64_vec()
            .unwrap();
        let b = net.hvp(&batch, loss, &v).unwrap().to_f64_vec().unwrap();
        assert!(rel_err(&a, &b) < 1e-14, "{name}: hvp_with");
        // The dense output Jacobian, one row per output entry, from vjp.
        let f = net.forward(&batch.x).unwrap();
        let m = f.elem_count();
        let jac: Vec<Vec<f64>> = (0..m)
            .map(|r| {
                let mut u = vec![0.0; m];
                u[r] = 1.0;
                let u = Tensor::from_vec(u, f.dims(), &Device::Cpu).unwrap();
                net.vjp(&batch.x, &u).unwrap().to_f64_vec().unwrap()
            })
            .collect();
        let n = batch.len() as f64;
        let tr: f64 = jac.iter().flatten().map(|x| x * x).sum::<f64>() / n;
        let ntk = net.ntk_trace(&batch.x).unwrap();
        assert!((ntk - tr).abs() < 1e-12 * tr, "{name}: ntk {ntk} vs {tr}");
        if loss == Loss::Mse {
            // G = (1/N) JᵀJ with N = the number of output rows.
            let k = *f.dims().last().unwrap();
            let rows = (m / k) as f64;
            let vf = v.to_f64_vec().unwrap();
            let jv: Vec<f64> = jac
                .iter()
                .map(|r| r.iter().zip(&vf).map(|(a, b)| a * b).sum())
                .collect();
            let dense: Vec<f64> = (0..vf.len())
                .map(|a| jac.iter().zip(&jv).map(|(r, x)| r[a] * x).sum::<f64>() / rows)
                .collect();
            let gv = net.gnvp(&batch, loss, &v).unwrap().to_f64_vec().unwrap();
            assert!(rel_err(&gv, &dense) < 1e-12, "{name}: Gauss-Newton");
        }
    }
}
