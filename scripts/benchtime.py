"""Timing shared by the Python benchmark baselines (bench_numpy.py, bench_nn_numpy.py,
bench_nn_torch.py), measured the way crates/ravexec/benches/common.rs measures the Rust side:
one warm-up call, then the median of repeated calls within a time budget."""
import time


def median_secs(f, budget=2.0, max_runs=100):
    """Median wall time of `f()` in seconds: at least 5 runs, then more until `budget` seconds
    have passed or `max_runs` runs were made."""
    f()
    times, start = [], time.perf_counter()
    while len(times) < 5 or (time.perf_counter() - start < budget and len(times) < max_runs):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]
