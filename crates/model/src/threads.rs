//! The thread count, decided once per process.
//!
//! candle-core 0.11 asks `candle_core::utils::get_num_threads()` for every matmul and
//! every fused kernel. When `RAYON_NUM_THREADS` is unset that call falls back to
//! counting physical cores (reading `/proc/cpuinfo` and the cgroup files) *on every
//! call*: thousands of `openat`/`read` system calls per training step on a narrow
//! network, 2–3× the time of the arithmetic (issue 15, step 0). [`init`] decides the
//! count once — `RAYON_NUM_THREADS` if the user set a positive value, otherwise
//! `min(candle's physical-core count, the CPUs this process may run on)` — and writes
//! it to `RAYON_NUM_THREADS`, so candle's per-op lookup becomes an environment read.
//! [`count`] returns that number for eos's own parallel kernels.
//!
//! The first call also raises gemm's threading threshold ([`GEMM_THREADING_WORK`]) and,
//! unless the user set `CANDLE_NUM_THREADS`, sets it to 1: candle-core 0.11 runs every
//! element-wise op on ≥ 65 536 elements on its own spinning barrier pool of that many
//! threads, and on the networks' activations (e.g. 2048 × 64) the main thread then
//! spins at the barrier while the other half of the op waits for a core — on 2 shared
//! cores 2.5–13× slower transformer passes (docs/performance.md, 2026-12-07). Products
//! keep `count()` threads (`RAYON_NUM_THREADS`); element-wise results do not depend on
//! the split.
//!
//! The value is frozen at the first call, so the thread count (and with it any
//! result that depends on how work is split) cannot change in the middle of a run.

use std::sync::OnceLock;

static COUNT: OnceLock<usize> = OnceLock::new();

/// The number of threads eos and candle use in this process (≥ 1). The first call
/// decides it (see the module header); later calls return the same number.
pub fn count() -> usize {
    *COUNT.get_or_init(|| {
        gemm::set_threading_threshold(GEMM_THREADING_WORK);
        decide()
    })
}

/// Products with less work (`m · n · k` per gemm block) than this run single-threaded
/// (gemm's default is 48·48·256 ≈ 0.6 M). On 64-wide layers the thread hand-off of each
/// product cost more than the product (issue 15: 45 % of a deep-suite gradient in
/// `sched_yield`/futex waits); narrow networks split the rows over threads instead
/// ([`crate::Mlp`]'s passes).
pub const GEMM_THREADING_WORK: usize = 1 << 22;

/// Decides the thread count now. Call it first thing in a binary, before any
/// threads are started; library code calls it implicitly through [`count`].
pub fn init() -> usize {
    count()
}

fn decide() -> usize {
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        // Before candle's barrier pool exists (it is sized at its first use).
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
    let user = std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .filter(|&n| n > 0);
    if let Some(n) = user {
        return n;
    }
    // candle's own default (physical cores), asked exactly once, capped by the CPU
    // affinity mask / cgroup quota that `available_parallelism` respects.
    let physical = candle_core::utils::get_num_threads().max(1);
    let allowed = std::thread::available_parallelism().map_or(physical, |n| n.get());
    let n = physical.min(allowed).max(1);
    // Edition 2021: `set_var` is safe. This runs once; Rust's environment access is
    // serialised by std's lock.
    std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    n
}
