//! Test helpers: small f64 parameter vectors on the CPU.

use candle_core::{Device, Tensor};
use eos_model::{LayerParams, ParamVec};

/// One layer, weight `[1, n]` holding `values`, no bias.
pub fn pv1(values: &[f64]) -> ParamVec {
    layered(&[((1, values.len()), false)], values)
}

/// Layers with weight shapes `(out, in)` and a bias `[out]` where asked, filled in
/// flat order (weight row-major, then bias) from `values`.
pub fn layered(shapes: &[((usize, usize), bool)], values: &[f64]) -> ParamVec {
    let d = Device::Cpu;
    let mut off = 0;
    let mut take = |n: usize| {
        let v = values[off..off + n].to_vec();
        off += n;
        v
    };
    let layers = shapes
        .iter()
        .map(|&((o, i), bias)| LayerParams {
            weight: Tensor::from_vec(take(o * i), (o, i), &d).unwrap(),
            bias: bias.then(|| Tensor::from_vec(take(o), o, &d).unwrap()),
        })
        .collect();
    assert_eq!(off, values.len(), "values left over");
    ParamVec { layers }
}

/// The vector flattened to f64.
pub fn flat(v: &ParamVec) -> Vec<f64> {
    v.to_f64_vec().unwrap()
}

/// `|a − b| ≤ tol · max(|b|, tiny)` elementwise, with a message.
pub fn assert_close(got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len());
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!(
            (a - b).abs() <= tol * b.abs().max(1e-300),
            "entry {i}: got {a:e}, want {b:e} (tol {tol:e})\n got {got:?}\nwant {want:?}"
        );
    }
}

/// Checks that `opt.preconditioner` reproduces the step it reports on:
/// `θ_before − θ_after = lr · m ⊙ g` entry by entry, to `tol · (|lr m g| + |θ_before|)`
/// (the subtraction rounds at the scale of `θ`).
pub fn assert_preconditioner_reproduces_step(
    opt: &mut dyn crate::Optimizer,
    theta: &ParamVec,
    grad: &ParamVec,
    lr: f64,
    tol: f64,
) -> ParamVec {
    let step = opt.step(theta, grad, lr).unwrap();
    let m = opt.preconditioner(theta).unwrap();
    let m = match &m {
        Some(m) => flat(m),
        None => vec![1.0; theta.numel()],
    };
    let (before, after, g) = (flat(theta), flat(&step.params), flat(grad));
    for i in 0..g.len() {
        let (got, want) = (before[i] - after[i], lr * m[i] * g[i]);
        assert!(
            (got - want).abs() <= tol * (want.abs() + before[i].abs()),
            "entry {i}: θ_before − θ_after = {got:e}, lr·m·g = {want:e} (m = {})",
            m[i]
        );
    }
    step.params
}
