//! Times single core operations of an `eos bench` suite in a loop, reporting the median
//! wall time and the median CPU time of the process (all threads, from
//! `/proc/self/task/*/schedstat`), which is less sensitive to other load on shared cores.
//!
//! `cargo run --release -p eos-benches --example opbench -- small grad,hvp,power 9`
//!
//! Row-space ops (issue 15 goal 4; only where the batch has fewer rows than inputs, else
//! the run stops saying so): `basis` (the row basis of the batch), `hvprow` (one reduced
//! product, primal cached), `lzrow` (20-step Lanczos top 5 on the reduced operator,
//! eigenvectors embedded), `lztolrow` (the same to `tol_config()`), `accrow` (products,
//! top 5 and full-operator residuals of both).

use std::time::Instant;

use candle_core::{DType, Device};
use eos_benches::suites::{max_rel_residual, suite, tol_config, BLOCK};
use eos_benches::{median, process_cpu_secs};
use eos_hessian::{
    lanczos, lanczos_rowspace, power_iteration, rowspace_declines, LanczosConfig, ModelOperator,
    RowspaceOperator, Which,
};
use eos_model::rowspace::ROW_TOL;
use eos_model::RowBasis;

/// The row-space operator of a suite and a reduced direction, built only when a
/// row-space op is asked for.
struct Row<'a> {
    basis: &'a RowBasis,
    op: RowspaceOperator<'a>,
    v: Vec<f64>,
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let name = args.first().map(String::as_str).unwrap_or("small");
    let ops = args.get(1).map(String::as_str).unwrap_or("grad,hvp");
    let reps: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(9);
    let s = suite(name)?;
    let c = s.case(DType::F32, &Device::Cpu, 0)?;
    let (mlp, batch, v, loss) = (&c.mlp, &c.batch, &c.v, c.loss);
    let op = ModelOperator::hessian(mlp, batch, loss);
    let primal = mlp.hvp_primal(batch, loss)?;
    let vs = (0..5)
        .map(|i| mlp.params.randn_like(eos_model::rng::derive_seed(7, i)))
        .collect::<eos_model::Result<Vec<_>>>()?;
    let cfg = LanczosConfig {
        k: 5,
        which: Which::Largest,
        max_iter: 20,
        tol: 1e-10,
        seed: 0,
    };
    let wants_row = ops
        .split(',')
        .any(|o| matches!(o, "basis" | "hvprow" | "lzrow" | "lztolrow" | "accrow"));
    if let (true, Some(why)) = (wants_row, rowspace_declines(mlp, batch)) {
        anyhow::bail!("{name}: {why}");
    }
    let basis = wants_row
        .then(|| RowBasis::new(&batch.x, ROW_TOL))
        .transpose()?;
    let row = match &basis {
        Some(basis) => {
            let op = RowspaceOperator::with_basis(mlp, batch, loss, basis)?;
            let v = op.project(&[v.to_f64_vec()?])?.remove(0);
            Some(Row { basis, op, v })
        }
        None => None,
    };
    for o in ops.split(',') {
        let run = || -> anyhow::Result<()> {
            match o {
                "grad" => drop(mlp.grad(batch, loss)?),
                "sgd" => {
                    let g = mlp.grad(batch, loss)?;
                    drop(mlp.params.axpy(-0.01, &g)?)
                }
                "hvp" => drop(mlp.hvp(batch, loss, v)?),
                "hvpc" => drop(mlp.hvp_with(&primal, batch, v)?),
                "cached5" => {
                    for v in &vs {
                        drop(mlp.hvp_with(&primal, batch, v)?);
                    }
                }
                "block5" => drop(mlp.hvp_block(&primal, batch, &vs)?),
                "hvpg" => drop(mlp.hvp_full(batch, loss, v, true)?),
                "third" => drop(mlp.third_derivative(batch, loss, v)?),
                "loss" => drop(mlp.loss(batch, loss)?),
                "apply" => {
                    let x = v.to_f64_vec()?;
                    drop(eos_hessian::LinearOperator::apply(&op, &x)?)
                }
                "power" => drop(power_iteration(&op, 20, None, 0)?),
                "lanczos" => drop(lanczos(&op, &cfg, &[])?),
                "block" => drop(eos_hessian::block_lanczos(&op, &tol_config(), BLOCK, &[])?),
                "lztol" => drop(lanczos(&op, &tol_config(), &[])?),
                "acc" => accuracy(&op, &cfg, name)?,
                row_op => run_row(row.as_ref(), &op, &cfg, name, row_op)?,
            }
            Ok(())
        };
        time(name, o, reps, run)?;
    }
    Ok(())
}

/// One of the row-space ops (`row` is built for them).
fn run_row(
    row: Option<&Row<'_>>,
    full: &ModelOperator<'_>,
    cfg: &LanczosConfig,
    name: &str,
    o: &str,
) -> anyhow::Result<()> {
    let Some(row) = row else {
        anyhow::bail!("unknown op {o}");
    };
    match o {
        "basis" => drop(RowBasis::new(&full.batch.x, ROW_TOL)?),
        "hvprow" => drop(eos_hessian::LinearOperator::apply(&row.op, &row.v)?),
        "lzrow" => drop(lanczos_rowspace(&row.op, cfg, &[])?),
        "lztolrow" => drop(lanczos_rowspace(&row.op, &tol_config(), &[])?),
        "accrow" => {
            for (what, c) in [("lzrow", cfg.clone()), ("lztolrow", tol_config())] {
                let mut r = lanczos(&row.op, &c, &[])?;
                let reduced = max_rel_residual(&row.op, &r)?;
                r.eigenvectors = row.op.embed(&r.eigenvectors)?;
                println!(
                    "{name} {what} (rank {}): {} HVPs, top-5 {:?}, max rel. residual {:.3e} \
                     (full operator; {reduced:.3e} reduced)",
                    row.basis.rank(),
                    r.iterations,
                    r.eigenvalues,
                    max_rel_residual(full, &r)?
                );
            }
        }
        other => anyhow::bail!("unknown op {other}"),
    }
    Ok(())
}

/// Runs `run` once, then `reps` timed times, and prints the medians and minima.
fn time(
    name: &str,
    o: &str,
    reps: usize,
    mut run: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    run()?;
    let (mut wall, mut cpu) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        let (t, c0) = (Instant::now(), process_cpu_secs());
        run()?;
        wall.push(t.elapsed().as_secs_f64());
        cpu.push(process_cpu_secs() - c0);
    }
    println!(
        "{name:>6} {o:>8}: wall {:9.2} ms (min {:9.2})  cpu {:9.2} ms (min {:9.2})",
        1e3 * median(wall.clone()),
        1e3 * wall.iter().cloned().fold(f64::INFINITY, f64::min),
        1e3 * median(cpu.clone()),
        1e3 * cpu.iter().cloned().fold(f64::INFINITY, f64::min),
    );
    Ok(())
}

/// Products and largest relative residual `‖H y − θ y‖ / |θ|` of the 20-step Lanczos, block
/// Lanczos and single-vector Lanczos to `tol_config()` (one extra product per pair).
fn accuracy<A: eos_hessian::LinearOperator>(
    op: &A,
    cfg: &LanczosConfig,
    name: &str,
) -> anyhow::Result<()> {
    let runs = [
        ("lanczos20", lanczos(op, cfg, &[])?),
        (
            "block",
            eos_hessian::block_lanczos(op, &tol_config(), BLOCK, &[])?,
        ),
        ("lztol", lanczos(op, &tol_config(), &[])?),
    ];
    for (what, r) in runs {
        let res = max_rel_residual(op, &r)?;
        println!(
            "{name} {what}: {} HVPs, top-5 {:?}, max rel. residual {res:.3e}",
            r.iterations, r.eigenvalues
        );
    }
    Ok(())
}
