//! Forward passes of the layers against naive loops on the host (f64): the derivative
//! tests prove the rules consistent with the forward pass; these prove the forward pass
//! is the stated formula. Tolerance 1e-12 relative (summation order only).

use candle_core::{Device, Tensor};
use eos_model::net::{
    Attention, AttentionScale, AvgPool2d, Conv2d, CoordPair, Layer, LayerNorm, MaxPool2d,
    SymmetricPair, Workspace,
};
use eos_model::{rng, Activation};

fn randn(shape: &[usize], seed: u64) -> (Tensor, Vec<f64>) {
    let n: usize = shape.iter().product();
    let v = rng::normal_vec(seed, n);
    (Tensor::from_vec(v.clone(), shape, &Device::Cpu).unwrap(), v)
}

fn run(l: &dyn Layer, p: &[Tensor], x: &Tensor) -> Vec<f64> {
    let (y, _) = l.forward(p, x, &mut Workspace::new(0)).unwrap();
    y.flatten_all().unwrap().to_vec1::<f64>().unwrap()
}

fn close(a: &[f64], b: &[f64], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    let scale = b.iter().fold(1e-300f64, |m, v| m.max(v.abs()));
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() < 1e-12 * scale, "{what}[{i}]: {x} vs {y}");
    }
}

#[test]
fn conv2d_is_the_cross_correlation() {
    let (n, c, h, w, o, k, s, pd) = (2, 2, 5, 6, 3, 3, 2, 1);
    let (x, xv) = randn(&[n, c, h, w], 1);
    let (wt, wv) = randn(&[o, c, k, k], 2);
    let (b, bv) = randn(&[o], 3);
    let l = Conv2d {
        out: o,
        kernel: k,
        stride: s,
        padding: pd,
        bias: true,
        multiplier: 0.5,
    };
    let (ho, wo) = ((h + 2 * pd - k) / s + 1, (w + 2 * pd - k) / s + 1);
    let mut want = Vec::new();
    for ni in 0..n {
        for oi in 0..o {
            for i in 0..ho {
                for j in 0..wo {
                    let mut acc = 0.0;
                    for ci in 0..c {
                        for a in 0..k {
                            for bb in 0..k {
                                let (r, q) = (
                                    (s * i + a) as isize - pd as isize,
                                    (s * j + bb) as isize - pd as isize,
                                );
                                if r < 0 || q < 0 || r >= h as isize || q >= w as isize {
                                    continue;
                                }
                                let xi = ((ni * c + ci) * h + r as usize) * w + q as usize;
                                acc += xv[xi] * wv[((oi * c + ci) * k + a) * k + bb];
                            }
                        }
                    }
                    want.push(0.5 * acc + bv[oi]);
                }
            }
        }
    }
    close(&run(&l, &[wt, b], &x), &want, "conv2d");
}

#[test]
fn pools_take_window_means_and_maxima() {
    let (n, c, h, w, k) = (1, 2, 5, 4, 2);
    let (x, xv) = randn(&[n, c, h, w], 4);
    let (mut avg, mut max) = (Vec::new(), Vec::new());
    for ci in 0..c {
        for i in 0..h / k {
            for j in 0..w / k {
                let vals: Vec<f64> = (0..k * k)
                    .map(|e| xv[(ci * h + i * k + e / k) * w + j * k + e % k])
                    .collect();
                avg.push(vals.iter().sum::<f64>() / (k * k) as f64);
                max.push(vals.iter().cloned().fold(f64::MIN, f64::max));
            }
        }
    }
    close(&run(&AvgPool2d { kernel: k }, &[], &x), &avg, "avgpool2d");
    close(&run(&MaxPool2d { kernel: k }, &[], &x), &max, "maxpool2d");
}

#[test]
fn layernorm_uses_the_biased_variance() {
    let d = 5;
    let (x, xv) = randn(&[3, 2, d], 5);
    let (g, gv) = randn(&[d], 6);
    let (b, bv) = randn(&[d], 7);
    let l = LayerNorm {
        eps: 1e-5,
        affine: true,
    };
    let mut want = Vec::new();
    for row in xv.chunks(d) {
        let mu = row.iter().sum::<f64>() / d as f64;
        let var = row.iter().map(|v| (v - mu).powi(2)).sum::<f64>() / d as f64;
        for (e, v) in row.iter().enumerate() {
            want.push((v - mu) / (var + 1e-5).sqrt() * gv[e] + bv[e]);
        }
    }
    close(&run(&l, &[g, b], &x), &want, "layernorm");
}

#[test]
fn symmetric_pair_shares_one_bias() {
    let (i, o) = (3, 4);
    let (x, xv) = randn(&[2, i], 8);
    let (w, wv) = randn(&[o, i], 9);
    let b = Tensor::new(&[0.3f64], &Device::Cpu).unwrap();
    let l = SymmetricPair {
        out: o,
        f: Activation::Tanh,
    };
    let mut want = Vec::new();
    for r in 0..2 {
        for q in 0..o {
            let u: f64 = (0..i).map(|e| xv[r * i + e] * wv[q * i + e]).sum();
            want.push((u + 0.3).tanh() - (-u + 0.3).tanh());
        }
    }
    close(&run(&l, &[w, b], &x), &want, "symmetric_pair");
}

#[test]
fn coord_pair_is_the_per_coordinate_pair() {
    // Hand values (Ahn et al. model (2), relu): x = [1.5, −0.5], b = −1 gives
    // [σ(0.5), σ(−1.5), σ(−2.5), σ(−0.5)]; b = +1 gives [2.5, 0.5, 0, 1.5].
    let x = Tensor::new(&[[1.5f64, -0.5]], &Device::Cpu).unwrap();
    let l = CoordPair {
        f: Activation::Relu,
    };
    let bias = |v: f64| Tensor::new(&[v], &Device::Cpu).unwrap();
    close(
        &run(&l, &[bias(-1.0)], &x),
        &[0.5, 0.0, 0.0, 0.0],
        "coord_pair b = −1",
    );
    close(
        &run(&l, &[bias(1.0)], &x),
        &[2.5, 0.5, 0.0, 1.5],
        "coord_pair b = +1",
    );
    // tanh on random [2, 3]: row r is [tanh(x + b), tanh(−x + b)].
    let (x, xv) = randn(&[2, 3], 10);
    let l = CoordPair {
        f: Activation::Tanh,
    };
    let mut want = Vec::new();
    for r in xv.chunks(3) {
        want.extend(r.iter().map(|v| (v + 0.3).tanh()));
        want.extend(r.iter().map(|v| (-v + 0.3).tanh()));
    }
    close(&run(&l, &[bias(0.3)], &x), &want, "coord_pair tanh");
}

#[test]
fn attention_is_masked_multi_head_softmax_attention() {
    let (n, t, d, h) = (2, 4, 6, 3);
    let dh = d / h;
    let (x, xv) = randn(&[n, t, d], 10);
    let (wq, wqv) = randn(&[3 * d, d], 11);
    let (wp, wpv) = randn(&[d, d], 12);
    let scales = [
        (AttentionScale::Sqrt, (dh as f64).sqrt()),
        (AttentionScale::Mup, dh as f64),
    ];
    for (causal, (scale, div)) in [(true, scales[0]), (false, scales[0]), (true, scales[1])] {
        let l = Attention {
            heads: h,
            causal,
            scale,
        };
        let mut want = Vec::new();
        for ni in 0..n {
            let row = |ti: usize| &xv[(ni * t + ti) * d..(ni * t + ti + 1) * d];
            // qkv[ti][r] = Σ_e W[r, e] x[ti, e]
            let qkv: Vec<Vec<f64>> = (0..t)
                .map(|ti| {
                    (0..3 * d)
                        .map(|r| (0..d).map(|e| wqv[r * d + e] * row(ti)[e]).sum())
                        .collect()
                })
                .collect();
            let mut o = vec![vec![0.0; d]; t];
            for hh in 0..h {
                for i in 0..t {
                    let allowed: Vec<usize> = (0..t).filter(|&j| !causal || j <= i).collect();
                    let sc: Vec<f64> = allowed
                        .iter()
                        .map(|&j| {
                            (0..dh)
                                .map(|e| qkv[i][hh * dh + e] * qkv[j][d + hh * dh + e])
                                .sum::<f64>()
                                / div
                        })
                        .collect();
                    let mx = sc.iter().cloned().fold(f64::MIN, f64::max);
                    let z: f64 = sc.iter().map(|s| (s - mx).exp()).sum();
                    for (a, &j) in allowed.iter().enumerate() {
                        let p = (sc[a] - mx).exp() / z;
                        for e in 0..dh {
                            o[i][hh * dh + e] += p * qkv[j][2 * d + hh * dh + e];
                        }
                    }
                }
            }
            for oi in &o {
                for r in 0..d {
                    want.push((0..d).map(|e| wpv[r * d + e] * oi[e]).sum());
                }
            }
        }
        let got = run(&l, &[wq.clone(), wp.clone()], &x);
        close(&got, &want, &format!("attention causal={causal} {scale:?}"));
    }
}
