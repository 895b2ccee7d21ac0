//! The driver: runs a target on `iters` seeded inputs on a worker thread, and checks
//! the property "an error or a valid result; never a panic, a hang or an allocation
//! beyond a bound" for each.
//!
//! - **Panic**: caught with `catch_unwind`; the input is saved and the run goes on.
//! - **Invalid result**: a target's `Err` (see [`crate::targets`]); saved likewise.
//! - **Hang**: the calling thread is a watchdog; an input running longer than
//!   `time_limit` is saved and the process exits (code 3) with a message naming the
//!   target, seed and input index (a stuck thread cannot be stopped otherwise).
//! - **Allocation**: [`crate::alloc`] counts the worker's heap bytes. An allocation
//!   that would take an input's heap use past the *hard* limit
//!   `HARD_BASE + HARD_FACTOR · len` is refused: the input is saved and the process
//!   aborts with a report, before the memory is taken. After the input, its peak must
//!   be within the *soft* bound `SOFT_BASE + extra_base + SOFT_FACTOR · len +
//!   2 · result`, where
//!   `len` is the input's (decompressed) length and `result` the bytes of what the
//!   reader built (`extra_base`: a target's fixed allowance); over it is a failure
//!   like a panic.
//!
//! Input `i` of target `t` under seed `s` is generated from a ChaCha8 stream seeded
//! by a hash of `(s, t, i)`, so `--from i --iters 1` regenerates it alone.

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::alloc;
use crate::targets::{Outcome, Target};

/// Heap bytes any input may use, on top of its share.
pub const SOFT_BASE: usize = 1 << 20;
/// Heap bytes per input byte (decoded floats are 8 bytes per u8, plus copies).
pub const SOFT_FACTOR: usize = 32;
/// The hard limit: the process stops before an input allocates beyond it.
pub const HARD_BASE: usize = 256 << 20;
/// Hard-limit bytes per input byte.
pub const HARD_FACTOR: usize = 1024;

/// How to run a target.
#[derive(Debug, Clone)]
pub struct Config {
    /// Inputs to run.
    pub iters: u64,
    /// Index of the first input.
    pub from: u64,
    /// The seed of the input stream.
    pub seed: u64,
    /// Longest time one input may take.
    pub time_limit: Duration,
    /// Stop early (and report the count reached) after this long, if set.
    pub max_time: Option<Duration>,
    /// Where failing inputs are saved.
    pub save_dir: PathBuf,
    /// Stop after this many failures.
    pub max_failures: usize,
}

/// A failing input.
#[derive(Debug, Clone)]
pub struct Failure {
    /// Its index in the seeded stream.
    pub index: u64,
    /// What went wrong.
    pub message: String,
    /// Where it was saved (None when saving failed).
    pub saved: Option<PathBuf>,
}

/// What a run found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub target: &'static str,
    pub seed: u64,
    /// Inputs run.
    pub inputs: u64,
    /// Inputs the reader accepted.
    pub accepted: u64,
    /// Inputs the reader rejected with an error.
    pub rejected: u64,
    pub failures: Vec<Failure>,
    pub elapsed: Duration,
    /// The largest heap peak of one input, in bytes.
    pub max_peak: usize,
    /// The slowest input.
    pub max_input_time: Duration,
    /// Length of the longest input.
    pub max_len: usize,
}

/// What the watchdog and the allocation report need to know about the input in flight.
struct InFlight {
    target: &'static str,
    seed: u64,
    index: u64,
    input: Arc<[u8]>,
    save_dir: PathBuf,
}

/// State shared by the worker and the watchdog.
struct Shared {
    /// Nanoseconds since `epoch` at which the current input started; 0 when idle.
    started: AtomicU64,
    done: AtomicBool,
    current: Mutex<Option<InFlight>>,
    epoch: Instant,
}

thread_local! {
    /// The input in flight on this (worker) thread, for [`abort_over_limit`].
    static CURRENT: RefCell<Option<(Arc<Shared>, u64)>> = const { RefCell::new(None) };
    /// The last panic's message and location, set by [`install_panic_hook`].
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// The RNG of input `index` of `target` under `seed`.
pub fn input_rng(seed: u64, target: &str, index: u64) -> ChaCha8Rng {
    let name = target.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    ChaCha8Rng::seed_from_u64(splitmix(splitmix(splitmix(seed) ^ name) ^ index))
}

fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Input `index` of `target` under `seed`.
pub fn generate(target: &Target, seed: u64, index: u64) -> Vec<u8> {
    (target.generate)(&mut input_rng(seed, target.name, index))
}

/// Replaces the panic hook by one that records the message and location for the
/// report instead of printing every caught panic (the binary calls this; tests keep
/// the default hook).
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let msg = format!("{info}");
        LAST_PANIC.with(|p| *p.borrow_mut() = Some(msg));
    }));
}

/// Runs `target` under `cfg`; returns when every input ran, the failure cap or
/// `max_time` was reached. Exits the process on a hang or an over-limit allocation.
pub fn run_target(target: &'static Target, cfg: &Config) -> Report {
    let shared = Arc::new(Shared {
        started: AtomicU64::new(0),
        done: AtomicBool::new(false),
        current: Mutex::new(None),
        epoch: Instant::now(),
    });
    let worker = {
        let (shared, cfg) = (Arc::clone(&shared), cfg.clone());
        std::thread::Builder::new()
            .name(format!("fuzz-{}", target.name))
            .spawn(move || {
                let report = work(target, &cfg, &shared);
                shared.done.store(true, Ordering::SeqCst);
                report
            })
    };
    let Ok(worker) = worker else {
        eprintln!(
            "eos-fuzz: cannot start the worker thread of {}",
            target.name
        );
        std::process::exit(2);
    };
    let tick = (cfg.time_limit / 4).clamp(Duration::from_millis(1), Duration::from_millis(50));
    while !shared.done.load(Ordering::SeqCst) {
        std::thread::sleep(tick);
        let started = shared.started.load(Ordering::SeqCst);
        let now = shared.epoch.elapsed().as_nanos() as u64;
        if started != 0 && now.saturating_sub(started) > cfg.time_limit.as_nanos() as u64 {
            hang(&shared, cfg.time_limit);
        }
    }
    match worker.join() {
        Ok(r) => r,
        Err(_) => {
            eprintln!(
                "eos-fuzz: the worker thread of {} panicked outside an input",
                target.name
            );
            std::process::exit(2);
        }
    }
}

/// Reports the input in flight as a hang and exits.
fn hang(shared: &Shared, limit: Duration) -> ! {
    let guard = shared.current.lock().unwrap_or_else(|e| e.into_inner());
    match guard.as_ref() {
        Some(f) => {
            let saved = save(&f.save_dir, f.target, f.seed, f.index, &f.input);
            eprintln!(
                "eos-fuzz: HANG: target {} seed {} input #{} ({} bytes) ran longer than {:?}; \
                 input saved to {}; replay: eos-fuzz replay {} <file>",
                f.target,
                f.seed,
                f.index,
                f.input.len(),
                limit,
                shown(&saved),
                f.target
            );
        }
        None => eprintln!("eos-fuzz: HANG: an input ran longer than {limit:?}"),
    }
    std::process::exit(3);
}

/// Installed in [`crate::alloc`] and called there (on the worker thread, its counting suspended) when an
/// allocation of `request` bytes would take the input's heap use to `used` bytes,
/// past `limit`: reports, saves the input, aborts.
pub(crate) fn abort_over_limit(request: usize, used: usize, limit: usize) -> ! {
    let msg = CURRENT.with(|c| {
        let c = c.borrow();
        let (shared, _) = c.as_ref()?;
        let guard = shared.current.lock().unwrap_or_else(|e| e.into_inner());
        let f = guard.as_ref()?;
        let saved = save(&f.save_dir, f.target, f.seed, f.index, &f.input);
        Some(format!(
            "target {} seed {} input #{} ({} bytes): input saved to {}; replay: eos-fuzz replay {} <file>",
            f.target, f.seed, f.index, f.input.len(), shown(&saved), f.target
        ))
    });
    eprintln!(
        "eos-fuzz: ALLOCATION BEYOND BOUND: a request of {request} bytes would bring the \
         input's heap use to {used} bytes, over its hard limit of {limit}; {}",
        msg.unwrap_or_else(|| "no input in flight".into())
    );
    std::process::abort();
}

fn shown(p: &Option<PathBuf>) -> String {
    p.as_ref()
        .map_or_else(|| "(not saved)".into(), |p| p.display().to_string())
}

/// Saves a failing input as `<dir>/<target>-seed<seed>-<index>.bin`.
fn save(dir: &Path, target: &str, seed: u64, index: u64, input: &[u8]) -> Option<PathBuf> {
    std::fs::create_dir_all(dir).ok()?;
    let p = dir.join(format!("{target}-seed{seed}-{index}.bin"));
    std::fs::write(&p, input).ok()?;
    Some(p)
}

/// The worker: every input in turn.
fn work(target: &'static Target, cfg: &Config, shared: &Arc<Shared>) -> Report {
    let mut r = Report {
        target: target.name,
        seed: cfg.seed,
        ..Report::default()
    };
    let start = Instant::now();
    CURRENT.with(|c| *c.borrow_mut() = Some((Arc::clone(shared), 0)));
    for index in cfg.from..cfg.from.saturating_add(cfg.iters) {
        if cfg.max_time.is_some_and(|m| start.elapsed() > m) || r.failures.len() >= cfg.max_failures
        {
            break;
        }
        let input: Arc<[u8]> = generate(target, cfg.seed, index).into();
        r.max_len = r.max_len.max(input.len());
        *shared.current.lock().unwrap_or_else(|e| e.into_inner()) = Some(InFlight {
            target: target.name,
            seed: cfg.seed,
            index,
            input: Arc::clone(&input),
            save_dir: cfg.save_dir.clone(),
        });
        let t0 = Instant::now();
        shared.started.store(
            shared.epoch.elapsed().as_nanos().max(1) as u64,
            Ordering::SeqCst,
        );
        let (result, peak, len) = check_one(target, &input);
        shared.started.store(0, Ordering::SeqCst);
        r.max_input_time = r.max_input_time.max(t0.elapsed());
        r.max_peak = r.max_peak.max(peak);
        r.inputs += 1;
        match verdict(result, peak, len, target.extra_base) {
            Ok(Outcome::Accepted(_)) => r.accepted += 1,
            Ok(Outcome::Rejected) => r.rejected += 1,
            Err(message) => {
                let saved = save(&cfg.save_dir, target.name, cfg.seed, index, &input);
                r.failures.push(Failure {
                    index,
                    message,
                    saved,
                });
            }
        }
    }
    CURRENT.with(|c| *c.borrow_mut() = None);
    r.elapsed = start.elapsed();
    r
}

/// Runs the target on one input under the allocation counter: the result (a caught
/// panic as `Err`), the heap peak and the effective length.
pub fn check_one(
    target: &Target,
    input: &[u8],
) -> (Result<Result<Outcome, String>, String>, usize, usize) {
    let len = match catch_unwind(AssertUnwindSafe(|| (target.effective_len)(input))) {
        Ok(n) => n,
        Err(p) => return (Err(panic_message(p)), 0, input.len()),
    };
    alloc::on_over_limit(abort_over_limit);
    alloc::begin(HARD_BASE.saturating_add(HARD_FACTOR.saturating_mul(len)));
    let result = catch_unwind(AssertUnwindSafe(|| (target.run)(input)));
    let peak = alloc::end();
    (result.map_err(panic_message), peak, len)
}

/// The property: an error or a valid result within the soft allocation bound.
pub fn verdict(
    result: Result<Result<Outcome, String>, String>,
    peak: usize,
    len: usize,
    extra_base: usize,
) -> Result<Outcome, String> {
    let outcome = match result {
        Err(panic) => return Err(format!("panic: {panic}")),
        Ok(Err(invalid)) => return Err(format!("invalid result: {invalid}")),
        Ok(Ok(o)) => o,
    };
    let built = match outcome {
        Outcome::Accepted(b) => b,
        Outcome::Rejected => 0,
    };
    let bound = (SOFT_BASE + extra_base)
        .saturating_add(SOFT_FACTOR.saturating_mul(len))
        .saturating_add(built.saturating_mul(2));
    if peak > bound {
        return Err(format!(
            "allocation: peak {peak} bytes > bound {bound} ({SOFT_BASE} + {extra_base} + \
             {SOFT_FACTOR}·{len} + 2·{built})"
        ));
    }
    Ok(outcome)
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    if let Some(m) = LAST_PANIC.with(|l| l.borrow_mut().take()) {
        return m;
    }
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(non-string payload)".into())
}
