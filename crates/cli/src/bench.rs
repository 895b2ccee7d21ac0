//! `eos bench`: the suites and the scaling study of eos-benches ([`eos_benches::suites`]),
//! printed as tables or JSON lines.

use anyhow::{bail, Context};
use candle_core::{DType, Device};
use eos_benches::suites as bench;

use crate::args::{BenchArgs, SuiteArg};

/// Runs `eos bench` with its arguments.
pub fn bench(a: BenchArgs) -> anyhow::Result<()> {
    let device = a.device.device()?;
    let dtype = a.dtype.dtype();
    if a.scaling {
        return scaling(&a, dtype, &device);
    }
    if let Some(config) = &a.run {
        return run(&a, config);
    }
    let reps = a.reps.unwrap_or(7);
    for name in SuiteArg::names(&a.suite) {
        if let Some(s) = eos_benches::net_suites::net_suite(name) {
            let r = eos_benches::net_suites::run_net_suite(&s, dtype, &device, reps)?;
            print_net(&r, a.json)?;
            continue;
        }
        let r = bench::run_suite(&bench::suite(name)?, dtype, &device, reps)?;
        if a.json {
            println!("{}", serde_json::to_string(&r)?);
        } else {
            println!(
                "{:<7} sgd_step {:>9.2} ms  grad {:>9.2} ms  hvp {:>9.2} ms  power20 {:>7.3} s  \
                 lanczos5 {:>7.3} s ({} HVPs)  third {:>9.2} ms  5 cached hvps {:>9.2} ms  \
                 block of 5 {:>9.2} ms  matmul {:>6.1} GFLOP/s\n        \
                 lanczos5 max rel. residual {:.2e}; to rel. residual {:.0e}: block Lanczos \
                 {:>7.3} s ({} HVPs, max {:.2e}), single-vector {:>7.3} s ({} HVPs, max {:.2e})",
                r.suite,
                r.sgd_step_ms,
                r.grad_ms,
                r.hvp_ms,
                r.power_iter_20_s,
                r.lanczos_top5_s,
                r.lanczos_hvps,
                r.third_deriv_ms,
                r.hvp5_cached_ms,
                r.hvp5_block_ms,
                r.matmul_gflops,
                r.lanczos_max_rel_residual,
                bench::BLOCK_TOL,
                r.block_lanczos_top5_s,
                r.block_lanczos_hvps,
                r.block_lanczos_max_rel_residual,
                r.lanczos_tol_top5_s,
                r.lanczos_tol_hvps,
                r.lanczos_tol_max_rel_residual,
            );
            println!("        {}", rowspace_line(&r));
        }
    }
    Ok(())
}

/// The row-space Lanczos rows of a suite as one table line, or why they are absent.
fn rowspace_line(r: &bench::BenchResult) -> String {
    match (
        r.lanczos_rowspace_top5_s,
        r.lanczos_rowspace_max_rel_residual,
        r.lanczos_rowspace_rank,
        r.rowspace_basis_s,
    ) {
        (Some(t), Some(res), Some(rank), Some(b)) => format!(
            "lanczos5 on the first layer's row space (rank {rank}): {t:>7.3} s, max rel. \
             residual {res:.2e} (full operator); to rel. residual {:.0e}: {:>7.3} s ({} \
             HVPs, max {:.2e}); row basis {b:.3} s once per batch",
            bench::BLOCK_TOL,
            r.lanczos_rowspace_tol_top5_s.unwrap_or(f64::NAN),
            r.lanczos_rowspace_tol_hvps.unwrap_or(0),
            r.lanczos_rowspace_tol_max_rel_residual.unwrap_or(f64::NAN),
        ),
        _ => format!(
            "lanczos5 on the first layer's row space: not run ({})",
            r.lanczos_rowspace_note
                .as_deref()
                .unwrap_or("no reason recorded")
        ),
    }
}

/// One line of a network suite: JSON or a table row.
fn print_net(r: &eos_benches::net_suites::NetBenchResult, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(r)?);
    } else {
        println!(
            "{:<11} grad {:>8.2} ms  hvp {:>8.2} ms ({:.2}× grad)  cached hvp {:>8.2} ms  \
             lanczos5 {:>7.3} s ({} HVPs)  third {:>8.2} ms  ({} params, n = {})",
            r.suite,
            r.grad_ms,
            r.hvp_ms,
            r.hvp_over_grad,
            r.hvp_cached_ms,
            r.lanczos_top5_s,
            r.lanczos_hvps,
            r.third_deriv_ms,
            r.n_params,
            r.n
        );
    }
    Ok(())
}

/// `eos bench --run CONFIG`: a whole training run, with and without its probes.
fn run(a: &BenchArgs, config: &std::path::Path) -> anyhow::Result<()> {
    let b = eos_benches::run::RunBench {
        config: config.to_path_buf(),
        set: a.set.clone(),
        only: a.only.clone(),
        reps: a.reps.unwrap_or(1),
        device: a.device.name().to_string(),
    };
    let r = eos_benches::run::run_bench(&b)?;
    if a.json {
        println!("{}", serde_json::to_string(&r)?);
        return Ok(());
    }
    let probes: Vec<String> = r.probes.iter().map(|(n, e)| format!("{n}/{e}")).collect();
    println!(
        "{}: {} steps, probes [{}]\n  with probes  {:>8.2} s  {:>8.1} steps/s\n  \
         no probes    {:>8.2} s  {:>8.1} steps/s\n  time in probes {:.1} %  ({} threads)",
        r.config,
        r.steps,
        probes.join(", "),
        r.wall_s,
        r.steps_per_s,
        r.bare_wall_s,
        r.bare_steps_per_s,
        100.0 * r.probe_share,
        r.threads
    );
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
            a.device.name(),
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
