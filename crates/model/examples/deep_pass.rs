//! One gradient, one HVP, `ops` cached-primal HVPs and one third derivative on the
//! `deep` bench shape (100-64×8-1, n = 256, relu, mse, f32): a fixed workload for
//! instruction counts (`valgrind --tool=callgrind`) and profiles (`perf record`).
//!
//! `cargo run --release -p eos-model --example deep_pass -- [reps] [only]`; `only` (`grad`,
//! `hvp`, `hvp_with` or `third`) runs just that operation, for per-operation CPU time
//! (`perf stat -e task-clock`) and instruction counts.

use candle_core::{DType, Device, Tensor};
use eos_model::{rng, Activation, Batch, Loss, Mlp, MlpSpec};

fn main() -> eos_model::Result<()> {
    let reps: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let only = std::env::args().nth(2);
    let reps_of = |op: &str| {
        if only.as_deref().is_none_or(|o| o == op) {
            reps
        } else {
            0
        }
    };
    let mut widths = vec![100];
    widths.extend([64; 8]);
    widths.push(1);
    let n = 256;
    let spec = MlpSpec::new(&widths, Activation::Relu, true);
    let mlp = Mlp::random(&spec, 0, DType::F32, &Device::Cpu)?;
    let x = Tensor::from_vec(rng::normal_vec(1, n * 100), (n, 100), &Device::Cpu)?;
    let y = Tensor::from_vec(rng::normal_vec(2, n), (n, 1), &Device::Cpu)?;
    let batch = Batch::new(x, y).to(DType::F32, &Device::Cpu)?;
    let v = mlp.params.randn_like(3)?;
    let mut acc = 0.0;
    let t = std::time::Instant::now();
    for _ in 0..reps_of("grad") {
        let g = mlp.grad(&batch, Loss::Mse)?;
        acc += g.dot(&v)?;
    }
    let tg = t.elapsed().as_secs_f64() / reps as f64;
    let t = std::time::Instant::now();
    for _ in 0..reps_of("hvp") {
        acc += mlp.hvp(&batch, Loss::Mse, &v)?.dot(&v)?;
    }
    let th = t.elapsed().as_secs_f64() / reps as f64;
    let primal = mlp.hvp_primal(&batch, Loss::Mse)?;
    let t = std::time::Instant::now();
    for _ in 0..reps_of("hvp_with") {
        acc += mlp.hvp_with(&primal, &batch, &v)?.dot(&v)?;
    }
    let tw = t.elapsed().as_secs_f64() / reps as f64;
    let t = std::time::Instant::now();
    for _ in 0..reps_of("third") {
        acc += mlp.third_derivative(&batch, Loss::Mse, &v)?;
    }
    let tt = t.elapsed().as_secs_f64() / reps as f64;
    println!(
        "grad {:.3} ms  hvp {:.3} ms  hvp_with {:.3} ms  third {:.3} ms  (check {acc:.6e})",
        1e3 * tg,
        1e3 * th,
        1e3 * tw,
        1e3 * tt
    );
    Ok(())
}
