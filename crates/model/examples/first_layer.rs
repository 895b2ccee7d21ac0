//! The first-layer products of the `small` bench shape (n = 1000, 3072 → 512, f32)
//! through candle's matmul, with the weight as a transposed view (`x W₀ᵀ`, the layout
//! the passes use) and contiguous, after [`eos_model::threads::init`]: issue 15 goal 5.
//!
//! `cargo run --release -p eos-model --example first_layer -- [reps]`

use candle_core::{Device, Tensor};
use eos_model::rng;

fn t(r: usize, c: usize, seed: u64) -> Tensor {
    let v: Vec<f32> = rng::normal_vec(seed, r * c)
        .into_iter()
        .map(|x| x as f32)
        .collect();
    Tensor::from_vec(v, (r, c), &Device::Cpu).expect("shape")
}

fn time(name: &str, flops: f64, reps: usize, f: impl Fn() -> Tensor) {
    f();
    let mut ts: Vec<f64> = (0..reps)
        .map(|_| {
            let s = std::time::Instant::now();
            f();
            s.elapsed().as_secs_f64()
        })
        .collect();
    ts.sort_by(f64::total_cmp);
    let best = ts[0];
    println!(
        "{name:<22} best {:.2} ms ({:.0} GFLOP/s), median {:.2} ms",
        1e3 * best,
        flops / best / 1e9,
        1e3 * ts[reps / 2]
    );
}

fn main() {
    eos_model::threads::init();
    let reps: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(11);
    let (n, d, h) = (1000usize, 3072usize, 512usize);
    let x = t(n, d, 1);
    let w0 = t(h, d, 2);
    let w0t = w0.t().expect("t").contiguous().expect("copy");
    let d0 = t(n, h, 4);
    let u = 2.0 * (n * d * h) as f64;
    time("x W0^T (view)", u, reps, || {
        x.matmul(&w0.t().expect("t")).expect("mm")
    });
    time("x W0T (contig)", u, reps, || x.matmul(&w0t).expect("mm"));
    time("d0^T x (view)", u, reps, || {
        d0.t().expect("t").matmul(&x).expect("mm")
    });
}
