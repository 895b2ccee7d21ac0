//! `ModelOperator` on a `Network` (issue 12): the same products as on the MLP it was
//! built from, and Lanczos top eigenvalues equal to the dense Hessian's on a tiny CNN
//! and a tiny causal transformer (f64).

use candle_core::DType;
use eos_hessian::{
    batch_sharpness, lanczos, symmetric_eigen, LanczosConfig, LinearOperator, ModelOperator, Which,
};
use eos_model::net::parse_layers;
use eos_model::testing::{net_dense_hessian, net_tiny_case, rel_err, tiny_case};
use eos_model::{Activation, Loss, Network};

const TRANSFORMER: &str = r#"[{"type": "embedding", "vocab": 5, "dim": 4},
  {"type": "pos_embedding", "len": 3, "dim": 4},
  {"type": "residual", "body": [{"type": "layernorm"}, {"type": "attention", "heads": 2}]},
  {"type": "residual", "body": [{"type": "layernorm"}, {"type": "dense", "out": 6},
     {"type": "act", "fn": "gelu"}, {"type": "dense", "out": 4}]},
  {"type": "layernorm"}, {"type": "dense", "out": 5}]"#;

const CNN: &str = r#"[{"type": "conv2d", "out": 2, "kernel": 3, "padding": 1},
  {"type": "act", "fn": "tanh"}, {"type": "avgpool2d", "kernel": 2}, {"type": "flatten"},
  {"type": "dense", "out": 4}, {"type": "act", "fn": "gelu"}, {"type": "dense", "out": 3}]"#;

#[test]
fn operators_on_an_mlp_as_a_network_equal_the_mlps() {
    for loss in [Loss::Mse, Loss::CrossEntropy] {
        let (mut mlp, batch) = tiny_case(
            &[3, 5, 4, 3],
            Activation::Tanh,
            loss,
            true,
            9,
            7,
            DType::F64,
        )
        .unwrap();
        mlp.chunk_size = 4;
        let mut net = Network::from_mlp(&mlp).unwrap();
        net.chunk_size = 4;
        let p = mlp.params.numel();
        for (hm, hn) in [
            (
                ModelOperator::hessian(&mlp, &batch, loss),
                ModelOperator::hessian(&net, &batch, loss),
            ),
            (
                ModelOperator::gauss_newton(&mlp, &batch, loss),
                ModelOperator::gauss_newton(&net, &batch, loss),
            ),
        ] {
            assert_eq!(hm.dim(), p);
            assert_eq!(hn.dim(), p);
            for k in 0..3 {
                let v: Vec<f64> = (0..p).map(|i| ((i + 5 * k) as f64 * 0.31).sin()).collect();
                let (a, b) = (hm.apply(&v).unwrap(), hn.apply(&v).unwrap());
                assert!(rel_err(&a, &b) < 1e-12, "{:?} {}", hm.kind, rel_err(&a, &b));
            }
        }
        // The primal cache is used on the network too.
        let hn = ModelOperator::hessian(&net, &batch, loss);
        let v = vec![0.1; p];
        hn.apply(&v).unwrap();
        assert!(hn.cached_primal_bytes().unwrap() > 0);
        // Batch sharpness and the NTK trace through the generic entry points.
        let bm = batch_sharpness(&mlp, &batch, loss, 4, 3, 11).unwrap();
        let bn = batch_sharpness(&net, &batch, loss, 4, 3, 11).unwrap();
        assert!((bm.mean - bn.mean).abs() <= 1e-12 * bm.mean.abs().max(1.0));
        let (tm, tn) = (
            eos_hessian::ntk_trace(&mlp, &batch.x).unwrap(),
            eos_hessian::ntk_trace(&net, &batch.x).unwrap(),
        );
        assert!((tm - tn).abs() <= 1e-12 * tm.abs());
    }
}

fn top3_match_dense(name: &str, net: &Network, batch: &eos_model::Batch, loss: Loss) {
    let p = net.params.numel();
    let h = net_dense_hessian(net, batch, loss).unwrap();
    let mut eigs = symmetric_eigen(&h, p).unwrap().values;
    eigs.sort_by(|a, b| b.partial_cmp(a).unwrap());
    let op = ModelOperator::hessian(net, batch, loss);
    let cfg = LanczosConfig {
        k: 3,
        which: Which::Largest,
        max_iter: p,
        tol: 1e-12,
        seed: 3,
    };
    let r = lanczos(&op, &cfg, &[]).unwrap();
    for i in 0..3 {
        let (a, b) = (r.eigenvalues[i], eigs[i]);
        assert!(
            (a - b).abs() <= 1e-8 * b.abs().max(1e-12),
            "{name}: eigenvalue {i}: Lanczos {a} vs dense {b} ({:?} vs {:?})",
            r.eigenvalues,
            &eigs[..3]
        );
    }
}

#[test]
fn lanczos_top3_equals_dense_on_a_tiny_cnn() {
    let (net, batch) = net_tiny_case(
        parse_layers(CNN).unwrap(),
        &[1, 4, 4],
        Loss::CrossEntropy,
        4,
        5,
        DType::F64,
    )
    .unwrap();
    top3_match_dense("cnn", &net, &batch, Loss::CrossEntropy);
}

#[test]
fn lanczos_top3_equals_dense_on_a_tiny_transformer() {
    let (net, batch) = net_tiny_case(
        parse_layers(TRANSFORMER).unwrap(),
        &[3],
        Loss::CrossEntropy,
        3,
        5,
        DType::F64,
    )
    .unwrap();
    top3_match_dense("transformer", &net, &batch, Loss::CrossEntropy);
}
