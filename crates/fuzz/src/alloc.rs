//! A counting global allocator: per-thread live and peak heap bytes, and a per-thread
//! hard limit that stops the process, with a report naming the fuzz input, before an
//! allocation beyond it is made.
//!
//! Why not peak RSS (`VmHWM` in `/proc/self/status`): an untouched
//! `Vec::with_capacity(2⁴⁰)` does not show in the RSS, and one that fits the machine
//! is only seen after it has been touched, i.e. after the memory is gone. Counting
//! requests is exact, deterministic (the same input gives the same count), and lets the
//! driver refuse the allocation before it happens.
//!
//! Counters are thread-local: the driver runs each target on its own worker thread and
//! brackets every input with [`begin`] / [`end`]. Memory freed by a thread other than
//! the one that allocated it is subtracted from the freeing thread (saturating at 0);
//! the readers under test are single-threaded, so this does not arise in practice.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    /// Bytes allocated and not yet freed by this thread.
    static LIVE: Cell<usize> = const { Cell::new(0) };
    /// The largest `LIVE` since the last [`begin`].
    static PEAK: Cell<usize> = const { Cell::new(0) };
    /// `LIVE` at the last [`begin`].
    static BASE: Cell<usize> = const { Cell::new(0) };
    /// The largest `LIVE` allowed (`usize::MAX` outside an input).
    static LIMIT: Cell<usize> = const { Cell::new(usize::MAX) };
    /// Set while the over-limit report runs: its own allocations pass through.
    static REPORTING: Cell<bool> = const { Cell::new(false) };
}

/// The allocator: [`System`] plus the counters above.
pub struct Counting;

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Starts counting an input on this thread: at most `limit` bytes above what is live now.
pub fn begin(limit: usize) {
    let live = LIVE.with(Cell::get);
    BASE.with(|b| b.set(live));
    PEAK.with(|p| p.set(live));
    LIMIT.with(|l| l.set(live.saturating_add(limit)));
}

/// Ends the input begun by [`begin`]: the peak heap bytes above the start, and lifts
/// the limit.
pub fn end() -> usize {
    LIMIT.with(|l| l.set(usize::MAX));
    PEAK.with(Cell::get).saturating_sub(BASE.with(Cell::get))
}

/// Books `size` more bytes on this thread; over the limit, hands over to the driver's
/// report (which does not return).
fn grow(size: usize) {
    if REPORTING.try_with(Cell::get).unwrap_or(true) {
        return;
    }
    let live = LIVE.try_with(Cell::get).unwrap_or(0).saturating_add(size);
    let _ = LIVE.try_with(|l| l.set(live));
    let _ = PEAK.try_with(|p| p.set(p.get().max(live)));
    let limit = LIMIT.try_with(Cell::get).unwrap_or(usize::MAX);
    if live > limit {
        let _ = REPORTING.try_with(|r| r.set(true));
        let base = BASE.try_with(Cell::get).unwrap_or(0);
        match OVER_LIMIT.get() {
            Some(report) => report(size, live - base, limit - base),
            None => std::process::abort(),
        }
    }
}

/// What to do when an allocation would pass the hard limit (report and abort): set
/// once by the driver through [`on_over_limit`], so this module does not import it.
static OVER_LIMIT: std::sync::OnceLock<fn(usize, usize, usize) -> !> = std::sync::OnceLock::new();

/// Installs the over-limit handler `(request, used, limit) -> !` (first call wins).
pub(crate) fn on_over_limit(report: fn(usize, usize, usize) -> !) {
    let _ = OVER_LIMIT.set(report);
}

/// Books `size` bytes freed on this thread.
fn shrink(size: usize) {
    let _ = LIVE.try_with(|l| l.set(l.get().saturating_sub(size)));
}

// The one `unsafe` of the workspace outside dependencies: `GlobalAlloc` is an unsafe
// trait. Every method forwards the caller's pointer and layout unchanged to `System`
// (so `System`'s guarantees are ours) after updating plain thread-local counters,
// which neither allocate nor unwind.
#[allow(unsafe_code)]
mod imp {
    use super::*;

    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            grow(layout.size());
            // SAFETY: same contract as ours, forwarded unchanged.
            unsafe { System.alloc(layout) }
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            grow(layout.size());
            // SAFETY: same contract as ours, forwarded unchanged.
            unsafe { System.alloc_zeroed(layout) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            shrink(layout.size());
            // SAFETY: `ptr` came from `System` with `layout` (every path above).
            unsafe { System.dealloc(ptr, layout) }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            if new_size >= layout.size() {
                grow(new_size - layout.size());
            } else {
                shrink(layout.size() - new_size);
            }
            // SAFETY: `ptr` came from `System` with `layout`; contract forwarded.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_counts_requested_bytes_even_when_untouched() {
        begin(1 << 30);
        let v: Vec<u8> = Vec::with_capacity(10_000_000);
        let w = vec![0u64; 1000];
        drop(v);
        let peak = end();
        assert!(
            (10_008_000..10_100_000).contains(&peak),
            "peak {peak} should be 10 MB + 8 kB"
        );
        assert_eq!(w.len(), 1000);
    }
}
