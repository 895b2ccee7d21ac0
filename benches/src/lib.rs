//! Criterion benches of eos (see `benches/core.rs`); the shapes are the suites of
//! `eos bench` ([`suites`] for MLPs, [`net_suites`] for the CNN and transformer). Run
//! with `cargo bench -p eos-benches`.

pub mod net_suites;
pub mod run;
pub mod suites;

/// CPU time of all live threads of this process, in seconds, from
/// `/proc/self/task/*/schedstat` (0 where unavailable): less sensitive than wall time
/// to other load on shared cores. Threads that have exited drop out of the sum, so it
/// is monotone only while the measured threads live (the benches' worker pools do).
/// Used by the `opbench` and `mmbench` examples.
pub fn process_cpu_secs() -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    let ns: u64 = dir
        .flatten()
        .map(|e| schedstat_ns(&e.path().join("schedstat")))
        .sum();
    ns as f64 * 1e-9
}

/// CPU time of the calling thread, in seconds (`/proc/thread-self/schedstat`; 0 where
/// unavailable).
pub fn thread_cpu_secs() -> f64 {
    schedstat_ns(std::path::Path::new("/proc/thread-self/schedstat")) as f64 * 1e-9
}

/// The first field of a schedstat file: nanoseconds on the CPU (0 if unreadable).
fn schedstat_ns(path: &std::path::Path) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0)
}

/// The median of the timings (mean of the two middle ones for an even count).
pub use eos_train::stats::median;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_cpu_time() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(vec![]).is_nan());
        // Other test threads may exit meanwhile (their time leaves the process sum),
        // so the busy work is checked on this thread's clock, and the process sum must
        // include this thread's time. The kernel updates a thread's schedstat lazily
        // (at ticks and switches), so spin until it moves, for at most 10 s of wall time.
        if std::fs::read_to_string("/proc/thread-self/schedstat").is_err() {
            eprintln!("skipped: /proc/thread-self/schedstat is not readable here");
            return;
        }
        let c0 = thread_cpu_secs();
        let start = std::time::Instant::now();
        let (mut x, mut c1) = (0u64, c0);
        while c1 <= c0 && start.elapsed() < std::time::Duration::from_secs(10) {
            for i in 0..1_000_000u64 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(i);
            }
            std::hint::black_box(x);
            c1 = thread_cpu_secs();
        }
        assert!(c1 > c0, "this thread's busy loop counts: {c0} -> {c1}");
        assert!(
            process_cpu_secs() >= c1,
            "the process sum includes this thread"
        );
    }
}
