//! `eos bench`: the suites and the scaling study of eos-benches ([`eos_benches::suites`]),
//! printed as tables or JSON lines.

use anyhow::{bail, Context};
use candle_core::{DType, Device};
use eos_benches::suites as bench;
use eos_model::pick_device;

use crate::args::BenchArgs;

/// Runs `eos bench` with its arguments.
pub fn bench(a: BenchArgs) -> anyhow::Result<()> {
    let device = pick_device(&a.device)?;
    let dtype = a.dtype.dtype();
    if a.scaling {
        return scaling(&a, dtype, &device);
    }
    let reps = a.reps.unwrap_or(7);
    let names: Vec<&str> = if a.suite == "all" {
        vec!["small", "medium", "deep"]
    } else {
        a.suite.split(',').collect()
    };
    let suites = names
        .iter()
        .map(|n| bench::suite(n))
        .collect::<anyhow::Result<Vec<_>>>()?;
    for s in suites {
        let r = bench::run_suite(&s, dtype, &device, reps)?;
        if a.json {
            println!("{}", serde_json::to_string(&r)?);
        } else {
            println!(
                "{:<7} sgd_step {:>9.2} ms  grad {:>9.2} ms  hvp {:>9.2} ms  power20 {:>7.3} s  \
                 lanczos5 {:>7.3} s ({} HVPs)  third {:>9.2} ms  matmul {:>6.1} GFLOP/s",
                r.suite,
                r.sgd_step_ms,
                r.grad_ms,
                r.hvp_ms,
                r.power_iter_20_s,
                r.lanczos_top5_s,
                r.lanczos_hvps,
                r.third_deriv_ms,
                r.matmul_gflops
            );
        }
    }
    Ok(())
}

/// `eos bench --scaling`: every point in a fresh process (the default), in this
/// process (`--in-process`) or only point `--point`.
fn scaling(a: &BenchArgs, dtype: DType, device: &Device) -> anyhow::Result<()> {
    if a.chunk_size == Some(0) {
        bail!("--chunk-size must be at least 1");
    }
    let points = bench::scaling_points(&a.sweep)?;
    let mut opts = bench::ScalingOptions {
        chunk_size: a.chunk_size,
        ..Default::default()
    };
    if let Some(r) = a.reps {
        opts.min_reps = r.max(1);
        opts.max_reps = r.max(1);
    }
    if let Some(i) = a.point {
        let p = points
            .get(i)
            .with_context(|| format!("--point {i}: the sweep has {} points", points.len()))?;
        let r = bench::run_scaling_point(p, dtype, device, &opts)?;
        println!("{}", serde_json::to_string(&r)?);
        return Ok(());
    }
    let print_json = |r: &bench::ScalingResult| -> anyhow::Result<()> {
        if a.json {
            println!("{}", serde_json::to_string(r)?);
        }
        Ok(())
    };
    let results = if a.in_process {
        bench::run_scaling(&points, dtype, device, &opts, print_json)?
    } else {
        let mut args: Vec<String> = [
            "bench",
            "--scaling",
            "--sweep",
            &a.sweep,
            "--dtype",
            a.dtype.name(),
            "--device",
            &a.device,
        ]
        .map(String::from)
        .to_vec();
        if let Some(c) = a.chunk_size {
            args.extend(["--chunk-size".into(), c.to_string()]);
        }
        if let Some(r) = a.reps {
            args.extend(["--reps".into(), r.to_string()]);
        }
        let exe = std::env::current_exe().context("cannot locate the eos executable")?;
        bench::run_scaling_isolated(&exe, &args, &points, &opts, print_json)?
    };
    if !a.json {
        print!("{}", bench::scaling_tables(&results));
    }
    Ok(())
}
