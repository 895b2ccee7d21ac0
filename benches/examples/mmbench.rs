//! The matmul layouts and element-wise ops of the small suite, timed alone (median and
//! minimum wall time, median CPU time of the process):
//! `cargo run --release -p eos-benches --example mmbench` (`RAYON_NUM_THREADS=1` for one
//! thread).
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use eos_benches::process_cpu_secs;
use eos_model::rng;

fn t(r: usize, c: usize, seed: u64) -> Tensor {
    Tensor::from_vec(rng::normal_vec(seed, r * c), (r, c), &Device::Cpu)
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap()
}

fn time(name: &str, flops: f64, reps: usize, f: impl Fn() -> Tensor) {
    f();
    let (mut w, mut c) = (vec![], vec![]);
    for _ in 0..reps {
        let (t0, c0) = (Instant::now(), process_cpu_secs());
        let _ = f();
        w.push(t0.elapsed().as_secs_f64());
        c.push(process_cpu_secs() - c0);
    }
    w.sort_by(|a, b| a.total_cmp(b));
    c.sort_by(|a, b| a.total_cmp(b));
    let cm = c[c.len() / 2];
    println!(
        "{name:>28}: wall med {:7.2} ms min {:7.2} ms cpu {:7.2} ms  {:6.1} GFLOP/s(min wall)",
        1e3 * w[w.len() / 2],
        1e3 * w[0],
        1e3 * cm,
        flops / w[0] / 1e9
    );
}

fn main() {
    let reps = 21;
    let (n, d, h) = (1000usize, 3072usize, 512usize);
    let x = t(n, d, 1);
    let w0 = t(h, d, 2);
    let v0 = t(h, d, 3);
    let w0t = w0.t().unwrap().contiguous().unwrap();
    let d0 = t(n, h, 4);
    let d0t = d0.t().unwrap().contiguous().unwrap();
    let w1 = t(h, h, 5);
    let h1 = t(n, h, 6);
    let u = 2.0 * (n * d * h) as f64;
    let s = 2.0 * (n * h * h) as f64;
    time("x W0^T (view)", u, reps, || {
        x.matmul(&w0.t().unwrap()).unwrap()
    });
    time("x W0T (contig)", u, reps, || x.matmul(&w0t).unwrap());
    let w0v0 = Tensor::cat(&[&w0, &v0], 0).unwrap();
    time("W0 x^T (view)", u, reps, || {
        w0.matmul(&x.t().unwrap()).unwrap()
    });
    let xt = x.t().unwrap().contiguous().unwrap();
    time("W0 xT (contig)", u, reps, || w0.matmul(&xt).unwrap());
    time("xT d0 (xT contig)", u, reps, || xt.matmul(&d0).unwrap());
    time("x [W0;V0]^T (view)", 2.0 * u, reps, || {
        x.matmul(&w0v0.t().unwrap()).unwrap()
    });
    time("cat [W0;V0]", 0.0, reps, || {
        Tensor::cat(&[&w0, &v0], 0).unwrap()
    });
    time("d0^T x (view)", u, reps, || {
        d0.t().unwrap().matmul(&x).unwrap()
    });
    time("d0T x (contig)", u, reps, || d0t.matmul(&x).unwrap());
    time("x^T d0 (view)", u, reps, || {
        x.t().unwrap().matmul(&d0).unwrap()
    });
    time("h1 W1^T", s, reps, || h1.matmul(&w1.t().unwrap()).unwrap());
    time("d1 W1", s, reps, || d0.matmul(&w1).unwrap());
    time("d1^T h1", s, reps, || d0.t().unwrap().matmul(&h1).unwrap());
    let h2 = Tensor::cat(&[&h1, &d0], 0).unwrap();
    time("[h1;rh1] W1^T", 2.0 * s, reps, || {
        h2.matmul(&w1.t().unwrap()).unwrap()
    });
    let hh = Tensor::cat(&[&h1, &d0], 1).unwrap();
    let ww = Tensor::cat(&[&w1, &w1], 1).unwrap();
    time("[h1,rh1] [V1,W1]^T", 2.0 * s, reps, || {
        hh.matmul(&ww.t().unwrap()).unwrap()
    });
    time("[d;rd]^T [h;rh]", 2.0 * s, reps, || {
        h2.t().unwrap().matmul(&h2).unwrap()
    });
    let w1w1 = Tensor::cat(&[&w1, &w1], 0).unwrap();
    time("[rd,d] [W1;V1]", 2.0 * s, reps, || {
        hh.matmul(&w1w1).unwrap()
    });
    time("relu mask gt+to_dtype", 0.0, reps, || {
        d0.gt(0.0).unwrap().to_dtype(DType::F32).unwrap()
    });
    time("mul 512k", 0.0, reps, || (&d0 * &h1).unwrap());
    time("add 512k", 0.0, reps, || (&d0 + &h1).unwrap());
    time("relu 512k", 0.0, reps, || d0.relu().unwrap());
    time("f32->f64 1.8M host", 0.0, reps, || {
        let v = w0.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let o: Vec<f64> = v.into_iter().map(f64::from).collect();
        Tensor::new(&o[..1], &Device::Cpu).unwrap()
    });
}
