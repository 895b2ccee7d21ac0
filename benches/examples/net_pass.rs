//! A fixed workload on a network suite of `eos bench` (`cnn` or `transformer`) for
//! profiles (`perf record`) and instruction counts (`valgrind --tool=callgrind`): `reps`
//! gradients, standalone HVPs, cached-primal HVPs and third derivatives, each timed
//! (median wall time, ms).
//!
//! `cargo run --release -p eos-benches --example net_pass -- cnn grad,hvp,cached,third 5`

use std::time::Instant;

use candle_core::{DType, Device};
use eos_benches::median;
use eos_benches::net_suites::net_suite;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let name = args.first().map(String::as_str).unwrap_or("cnn");
    let ops = args
        .get(1)
        .map(String::as_str)
        .unwrap_or("grad,hvp,cached,third");
    let reps: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5);
    let s = net_suite(name).ok_or_else(|| anyhow::anyhow!("no network suite `{name}`"))?;
    let c = s.case(DType::F32, &Device::Cpu, 0)?;
    let (net, batch, v, loss) = (&c.net, &c.batch, &c.v, c.loss);
    let primal = net.hvp_primal(batch, loss)?;
    for op in ops.split(',') {
        let mut ts = Vec::with_capacity(reps);
        let mut check = 0.0;
        for _ in 0..reps {
            let t = Instant::now();
            check += match op {
                "grad" => net.grad(batch, loss)?.dot(v)?,
                "hvp" => net.hvp(batch, loss, v)?.dot(v)?,
                "cached" => net.hvp_with(&primal, batch, v)?.dot(v)?,
                "third" => net.third_derivative(batch, loss, v)?,
                other => anyhow::bail!("unknown op `{other}` (grad, hvp, cached, third)"),
            };
            ts.push(t.elapsed().as_secs_f64());
        }
        println!(
            "{name} {op:<6} {:>9.2} ms  (check {:.6e})",
            1e3 * median(ts),
            check / reps as f64
        );
    }
    Ok(())
}
