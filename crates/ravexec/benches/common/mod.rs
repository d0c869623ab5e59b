//! What the kernel benchmarks share: the product binaries' allocator and the timing loop.

use std::time::{Duration, Instant};

// As in the product binaries: the allocator decides whether big results cost page faults.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Median seconds of `f` over runs filling about `budget` (at least 5, at most 200 runs).
pub(crate) fn median_secs(budget: Duration, mut f: impl FnMut()) -> f64 {
    f();
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < 5 || (start.elapsed() < budget && times.len() < 200) {
        let t = Instant::now();
        f();
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}
