//! Criterion benches of eos (see `benches/core.rs`); the shapes are the suites of
//! `eos bench` ([`suites`] for MLPs, [`net_suites`] for the CNN and transformer). Run
//! with `cargo bench -p eos-benches`.

pub mod net_suites;
pub mod run;
pub mod suites;

/// CPU time of all threads of this process, in seconds, from
/// `/proc/self/task/*/schedstat` (0 where unavailable): less sensitive than wall time
/// to other load on shared cores. Used by the `opbench` and `mmbench` examples.
pub fn process_cpu_secs() -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    let mut ns = 0u64;
    for e in dir.flatten() {
        if let Ok(s) = std::fs::read_to_string(e.path().join("schedstat")) {
            ns += s
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    ns as f64 * 1e-9
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
        let c0 = process_cpu_secs();
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(process_cpu_secs() > c0, "this thread's busy loop counts");
    }
}
