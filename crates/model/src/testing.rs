//! Helpers for exactness tests (used by this crate's and other crates' tests):
//! tiny random networks and batches, central finite differences over the flat
//! parameter vector, and dense Hessians built column by column from HVPs.

use candle_core::{DType, Device, Tensor};

use crate::{rng, Activation, Batch, Loss, Mlp, MlpSpec, ParamVec, Result};

/// Targets suited to `loss`: one-hot rows (cross-entropy), ±1 (logistic), Gaussian
/// values otherwise.
pub fn targets(loss: Loss, n: usize, k: usize, seed: u64) -> Vec<f64> {
    let z = rng::normal_vec(seed, n * k);
    match loss {
        Loss::CrossEntropy => {
            let mut y = vec![0.0; n * k];
            for i in 0..n {
                let c = (z[i].abs() * 1e3) as usize % k;
                y[i * k + c] = 1.0;
            }
            y
        }
        Loss::Logistic => z
            .iter()
            .map(|v| if *v >= 0.0 { 1.0 } else { -1.0 })
            .collect(),
        _ => z,
    }
}

/// A tiny network with non-unit multipliers and a batch for it.
pub fn tiny_case(
    widths: &[usize],
    activation: Activation,
    loss: Loss,
    bias: bool,
    n: usize,
    seed: u64,
    dtype: DType,
) -> Result<(Mlp, Batch)> {
    let depth = widths.len() - 1;
    let mut spec = MlpSpec::new(widths, activation, bias);
    spec.multipliers = Some((0..depth).map(|l| 0.7 + 0.3 * l as f64).collect());
    spec.init_std = Some(
        widths[..depth]
            .iter()
            .map(|&w| 1.2 / (w as f64).sqrt())
            .collect(),
    );
    spec.bias_std = 0.3;
    let mlp = Mlp::random(&spec, seed, dtype, &Device::Cpu)?;
    let (d, k) = (widths[0], widths[depth]);
    let x = Tensor::from_vec(rng::normal_vec(seed + 1000, n * d), (n, d), &Device::Cpu)?;
    let y = Tensor::from_vec(targets(loss, n, k, seed + 2000), (n, k), &Device::Cpu)?;
    Ok((mlp, Batch::new(x, y).to(dtype, &Device::Cpu)?))
}

/// The loss at the flat parameters `theta`.
pub fn loss_at(mlp: &Mlp, batch: &Batch, loss: Loss, theta: &[f64]) -> Result<f64> {
    let p = ParamVec::from_f64_slice(&mlp.params, theta)?;
    mlp.with_params(p)?.loss(batch, loss)
}

/// Central-difference gradient (step `eps`).
pub fn fd_grad(mlp: &Mlp, batch: &Batch, loss: Loss, eps: f64) -> Result<Vec<f64>> {
    let theta = mlp.params.to_f64_vec()?;
    let mut g = vec![0.0; theta.len()];
    for i in 0..theta.len() {
        let mut t = theta.clone();
        t[i] += eps;
        let lp = loss_at(mlp, batch, loss, &t)?;
        t[i] -= 2.0 * eps;
        let lm = loss_at(mlp, batch, loss, &t)?;
        g[i] = (lp - lm) / (2.0 * eps);
    }
    Ok(g)
}

/// Unit vector e_i with `template`'s structure.
pub fn unit(template: &ParamVec, i: usize) -> Result<ParamVec> {
    let mut e = vec![0.0; template.numel()];
    e[i] = 1.0;
    ParamVec::from_f64_slice(template, &e)
}

/// The dense Hessian (row-major P×P), column j = H e_j from the R-operator.
pub fn dense_hessian(mlp: &Mlp, batch: &Batch, loss: Loss) -> Result<Vec<f64>> {
    let p = mlp.params.numel();
    let mut h = vec![0.0; p * p];
    for j in 0..p {
        let col = mlp.hvp(batch, loss, &unit(&mlp.params, j)?)?.to_f64_vec()?;
        for i in 0..p {
            h[i * p + j] = col[i];
        }
    }
    Ok(h)
}

/// The Jacobian of the exact gradient by central differences (row-major P×P).
pub fn fd_hessian(mlp: &Mlp, batch: &Batch, loss: Loss, eps: f64) -> Result<Vec<f64>> {
    let theta = mlp.params.to_f64_vec()?;
    let p = theta.len();
    let mut h = vec![0.0; p * p];
    for j in 0..p {
        let grad_at = |shift: f64| -> Result<Vec<f64>> {
            let mut t = theta.clone();
            t[j] += shift;
            let m = mlp.with_params(ParamVec::from_f64_slice(&mlp.params, &t)?)?;
            m.grad(batch, loss)?.to_f64_vec()
        };
        let (gp, gm) = (grad_at(eps)?, grad_at(-eps)?);
        for i in 0..p {
            h[i * p + j] = (gp[i] - gm[i]) / (2.0 * eps);
        }
    }
    Ok(h)
}

/// max_i |a_i − b_i| / (scale + max_i |b_i|): a relative error robust to zeros.
pub fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "rel_err: length mismatch");
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let diff = a
        .iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
    diff / (1e-300 + scale)
}

/// A tiny [`crate::Network`] of `layers` on inputs of per-sample shape `input`, with
/// random parameters (biases and gains perturbed by 0.3) and a batch of `n` Gaussian
/// inputs (ids when the first layer is an embedding) with targets suited to `loss` on
/// every output row.
pub fn net_tiny_case(
    layers: Vec<crate::LayerKind>,
    input: &[usize],
    loss: Loss,
    n: usize,
    seed: u64,
    dtype: DType,
) -> Result<(crate::Network, Batch)> {
    let dev = Device::Cpu;
    let net = crate::Network::random(layers, input, seed, 0.3, DType::F64, &dev)?;
    let net = net.with_params(net.params.to_dtype(dtype)?)?;
    let mut xs = vec![n];
    xs.extend(input);
    let nx: usize = xs.iter().product();
    let mut xv = rng::normal_vec(seed + 1000, nx);
    if let Some(crate::LayerKind::Embedding(e)) = net.layers.first() {
        // Whole-number ids spread over the vocabulary.
        xv = xv
            .iter()
            .map(|z| ((z.abs() * 1e3) as usize % e.vocab) as f64)
            .collect();
    }
    let x = Tensor::from_vec(xv, xs, &dev)?;
    let mut ys = vec![n];
    ys.extend(net.output_shape()?);
    let k = *ys.last().expect("an output axis");
    let rows: usize = ys.iter().product::<usize>() / k;
    let y = Tensor::from_vec(targets(loss, rows, k, seed + 2000), ys, &dev)?;
    Ok((net, Batch::new(x, y).to(dtype, &dev)?))
}

/// The network loss at the flat parameters `theta`.
pub fn net_loss_at(net: &crate::Network, batch: &Batch, loss: Loss, theta: &[f64]) -> Result<f64> {
    let p = crate::NetParams::from_f64_slice(&net.params, theta)?;
    net.with_params(p)?.loss(batch, loss)
}

/// Central-difference gradient of a network's loss (step `eps`).
pub fn net_fd_grad(net: &crate::Network, batch: &Batch, loss: Loss, eps: f64) -> Result<Vec<f64>> {
    let theta = net.params.to_f64_vec()?;
    let mut g = vec![0.0; theta.len()];
    for i in 0..theta.len() {
        let mut t = theta.clone();
        t[i] += eps;
        let lp = net_loss_at(net, batch, loss, &t)?;
        t[i] -= 2.0 * eps;
        g[i] = (lp - net_loss_at(net, batch, loss, &t)?) / (2.0 * eps);
    }
    Ok(g)
}

/// A network's dense Hessian (row-major P×P), column j = H e_j from the R-operator.
pub fn net_dense_hessian(net: &crate::Network, batch: &Batch, loss: Loss) -> Result<Vec<f64>> {
    let p = net.params.numel();
    let mut h = vec![0.0; p * p];
    for j in 0..p {
        let mut e = vec![0.0; p];
        e[j] = 1.0;
        let ej = crate::NetParams::from_f64_slice(&net.params, &e)?;
        let col = net.hvp(batch, loss, &ej)?.to_f64_vec()?;
        for i in 0..p {
            h[i * p + j] = col[i];
        }
    }
    Ok(h)
}

/// The Jacobian of a network's exact gradient by central differences (P×P).
pub fn net_fd_hessian(
    net: &crate::Network,
    batch: &Batch,
    loss: Loss,
    eps: f64,
) -> Result<Vec<f64>> {
    let theta = net.params.to_f64_vec()?;
    let p = theta.len();
    let mut h = vec![0.0; p * p];
    for j in 0..p {
        let grad_at = |shift: f64| -> Result<Vec<f64>> {
            let mut t = theta.clone();
            t[j] += shift;
            let m = net.with_params(crate::NetParams::from_f64_slice(&net.params, &t)?)?;
            m.grad(batch, loss)?.to_f64_vec()
        };
        let (gp, gm) = (grad_at(eps)?, grad_at(-eps)?);
        for i in 0..p {
            h[i * p + j] = (gp[i] - gm[i]) / (2.0 * eps);
        }
    }
    Ok(h)
}
