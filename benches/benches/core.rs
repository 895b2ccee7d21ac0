//! Criterion benches, one group per subsystem (matmul, grad, hvp, third_deriv, 5 cached
//! HVPs one by one and as a block, lanczos, the row-space lanczos where the batch has
//! fewer rows than inputs, train_step), on the `eos bench` suites.
//! Throughput is reported in FLOPs of the first-layer-equivalent matmul units each
//! operation needs
//! (docs/performance.md), so criterion prints FLOP/s.
//!
//! `EOS_BENCH_SUITES=small,deep` (default `deep,small`) picks the suites.

use candle_core::{DType, Device, Tensor};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use eos_benches::suites::suite;
use eos_hessian::{
    lanczos, lanczos_rowspace, rowspace_declines, LanczosConfig, ModelOperator, RowspaceOperator,
    Which,
};
use eos_model::rng;

fn suites() -> Vec<String> {
    std::env::var("EOS_BENCH_SUITES")
        .unwrap_or_else(|_| "deep,small".into())
        .split(',')
        .map(str::to_string)
        .collect()
}

fn matmul(c: &mut Criterion) {
    let mut g = c.benchmark_group("matmul");
    for n in [512usize, 2048] {
        let a = Tensor::from_vec(rng::normal_vec(1, n * n), (n, n), &Device::Cpu)
            .unwrap()
            .to_dtype(DType::F32)
            .unwrap();
        g.throughput(Throughput::Elements(2 * (n as u64).pow(3)));
        g.bench_with_input(BenchmarkId::from_parameter(n), &a, |b, a| {
            b.iter(|| a.matmul(a).unwrap())
        });
    }
    g.finish();
}

fn model_ops(c: &mut Criterion) {
    for name in suites() {
        let s = suite(&name).expect("suite name");
        let case = s.case(DType::F32, &Device::Cpu, 0).expect("bench case");
        let (mlp, batch, v, loss) = (&case.mlp, &case.batch, &case.v, case.loss);
        let unit = s.first_layer_unit_flops() as u64;
        let mut g = c.benchmark_group(name.as_str());
        g.sample_size(10);
        g.throughput(Throughput::Elements(2 * unit));
        g.bench_function("grad", |b| b.iter(|| mlp.grad(batch, loss).unwrap()));
        g.bench_function("train_step", |b| {
            b.iter(|| {
                let gr = mlp.grad(batch, loss).unwrap();
                mlp.params.axpy(-0.01, &gr).unwrap()
            })
        });
        g.throughput(Throughput::Elements(3 * unit));
        g.bench_function("hvp", |b| b.iter(|| mlp.hvp(batch, loss, v).unwrap()));
        g.throughput(Throughput::Elements(2 * unit));
        g.bench_function("third_deriv", |b| {
            b.iter(|| mlp.third_derivative(batch, loss, v).unwrap())
        });
        // 5 cached-primal HVPs (2 first-layer units each), one by one and as a block.
        let primal = mlp.hvp_primal(batch, loss).expect("primal pass");
        let vs: Vec<_> = (0..5)
            .map(|i| mlp.params.randn_like(10 + i).expect("direction"))
            .collect();
        g.throughput(Throughput::Elements(5 * 2 * unit));
        g.bench_function("hvp_cached_x5", |b| {
            b.iter(|| {
                for v in &vs {
                    mlp.hvp_with(&primal, batch, v).unwrap();
                }
            })
        });
        g.bench_function("hvp_block_5", |b| {
            b.iter(|| mlp.hvp_block(&primal, batch, &vs).unwrap())
        });
        let op = ModelOperator::hessian(mlp, batch, loss);
        let cfg = LanczosConfig {
            k: 5,
            which: Which::Largest,
            max_iter: 20,
            tol: 1e-10,
            seed: 0,
        };
        g.throughput(Throughput::Elements(20 * 3 * unit));
        g.bench_function("lanczos_top5_20", |b| {
            b.iter(|| lanczos(&op, &cfg, &[]).unwrap())
        });
        // The same 20 steps on the row-space-reduced operator (issue 15 goal 4), when
        // n < d; its throughput is still counted in full first-layer units.
        if rowspace_declines(mlp, batch).is_none() {
            let row = RowspaceOperator::hessian(mlp, batch, loss).expect("row basis");
            g.bench_function("lanczos_rowspace_top5_20", |b| {
                b.iter(|| lanczos_rowspace(&row, &cfg, &[]).unwrap())
            });
        }
        g.finish();
    }
}

criterion_group!(benches, matmul, model_ops);
criterion_main!(benches);
