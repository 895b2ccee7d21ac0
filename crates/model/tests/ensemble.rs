//! The stacked ensemble pass (`eos_model::ensemble`) against lone calls: every member's
//! loss and gradient equal `Mlp::loss_and_grad` on its own batch bit for bit — with
//! per-member multipliers (the mean-field 1/γ), seeds, batches and offsets, in f64 and
//! f32, stacked, as stacks of one, and through the per-member path — and members the stacked path does not take
//! (tanh, other widths) are computed alone, in their place.

use candle_core::{DType, Device, Tensor};
use eos_model::ensemble::{loss_and_grad_many, unstackable};
use eos_model::{rng, Activation, Batch, Loss, Mlp, MlpSpec};

fn member(seed: u64, widths: &[usize], act: Activation, mults: Vec<f64>, dtype: DType) -> Mlp {
    let mut spec = MlpSpec::new(widths, act, true);
    spec.multipliers = Some(mults);
    spec.bias_std = 0.1;
    Mlp::random(&spec, seed, dtype, &Device::Cpu).unwrap()
}

fn batch(seed: u64, n: usize, d: usize, k: usize, offset: bool, dtype: DType) -> Batch {
    let t = |s: u64, cols: usize| {
        Tensor::from_vec(rng::normal_vec(s, n * cols), (n, cols), &Device::Cpu)
            .unwrap()
            .to_dtype(dtype)
            .unwrap()
    };
    let mut b = Batch::new(t(seed, d), t(seed + 100, k));
    if offset {
        b.offset = Some(t(seed + 200, k));
    }
    b
}

fn bits(l: f64, g: &eos_model::ParamVec) -> Vec<u64> {
    let mut v = vec![l.to_bits()];
    v.extend(g.to_f64_vec().unwrap().into_iter().map(f64::to_bits));
    v
}

fn check(members: &[(Mlp, Batch)], loss: Loss) {
    let refs: Vec<(&Mlp, &Batch)> = members.iter().map(|(m, b)| (m, b)).collect();
    // Stacked: all members at once, and each member alone as a stack of one.
    let alone: Vec<_> = refs
        .iter()
        .flat_map(|&p| loss_and_grad_many(&[p], loss, true).unwrap())
        .collect();
    for (stack, got) in [(true, None), (true, Some(alone)), (false, None)] {
        let got = got.unwrap_or_else(|| loss_and_grad_many(&refs, loss, stack).unwrap());
        assert_eq!(got.len(), members.len());
        for (e, ((m, b), (l, g))) in members.iter().zip(&got).enumerate() {
            let (l0, g0) = m.loss_and_grad(b, loss).unwrap();
            assert!(l0.is_finite() && l0 != 0.0);
            assert_eq!(bits(*l, g), bits(l0, &g0), "member {e}, stack = {stack}");
        }
    }
}

#[test]
fn stacked_members_equal_lone_calls_bit_for_bit() {
    for dtype in [DType::F64, DType::F32] {
        let w = [16, 32, 32, 1];
        // The mean-field shape: multipliers 1/√fan_in and 1/(γ fan_in), γ per member.
        let mults = |g: f64| vec![0.25, 1.0 / 32f64.sqrt(), 1.0 / (32.0 * g)];
        let members: Vec<(Mlp, Batch)> = [(0, 1e-2), (1, 1.0), (2, 100.0), (0, 1.0)]
            .iter()
            .enumerate()
            .map(|(i, &(seed, g))| {
                (
                    member(seed, &w, Activation::Relu, mults(g), dtype),
                    batch(10 + i as u64, 24, 16, 1, true, dtype),
                )
            })
            .collect();
        assert!(unstackable(&members[0].0, &members[0].1).is_none());
        check(&members, Loss::MseMeanAll);
    }
}

#[test]
fn other_activations_shapes_and_losses_are_computed_alone() {
    let dtype = DType::F64;
    let ones = |n: usize| vec![1.0; n];
    let members = vec![
        (
            member(
                3,
                &[5, 8, 3],
                Activation::LeakyRelu(0.1),
                vec![2.0, 0.5],
                dtype,
            ),
            batch(1, 7, 5, 3, false, dtype),
        ),
        (
            member(4, &[5, 8, 3], Activation::Tanh, ones(2), dtype),
            batch(2, 7, 5, 3, false, dtype),
        ),
        (
            member(5, &[5, 6, 3], Activation::Identity, ones(2), dtype),
            batch(3, 7, 5, 3, false, dtype),
        ),
        (
            member(6, &[5, 8, 3], Activation::LeakyRelu(0.1), ones(2), dtype),
            batch(4, 7, 5, 3, false, dtype),
        ),
    ];
    assert!(unstackable(&members[1].0, &members[1].1)
        .unwrap()
        .contains("Tanh"));
    check(&members, Loss::CrossEntropy);
    check(&members, Loss::Mse);
}
