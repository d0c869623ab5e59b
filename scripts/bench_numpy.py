#!/usr/bin/env python3
"""NumPy figures for the same operations as crates/ravexec/benches/kernels.rs.

Run: python3 scripts/bench_numpy.py  (or scripts/bench_kernels.sh for both side by side)
Counts bytes the same way: add reads two arrays and writes one; sum reads one; memcpy reads
one and writes one. Each figure is the median of repeated runs.
"""
from benchtime import median_secs

import numpy as np


def filled(shape, dtype):
    n = int(np.prod(shape))
    return ((np.arange(n) * 7919 % 1000) / 1000.0).reshape(shape).astype(dtype)


print(f"{'benchmark':<28} {'value':>12}")
for n in (256, 512, 1024):
    for label, dtype in (("f32", np.float32), ("f64", np.float64)):
        a, b = filled((n, n), dtype), filled((n, n), dtype)
        secs = median_secs(lambda: a @ b, budget=1.5, max_runs=200)
        print(f"{f'matmul {n} {label}':<28} {2 * n ** 3 / secs / 1e9:>9.1f} GFLOP/s")
n = 16 << 20
a, b = filled((n,), np.float32), filled((n,), np.float32)
secs = median_secs(lambda: a + b, budget=1.5, max_runs=200)
print(f"{'add 16M f32':<28} {3 * 4 * n / secs / 1e9:>9.1f} GB/s")
secs = median_secs(lambda: a.sum(), budget=1.5, max_runs=200)
print(f"{'sum 16M f32':<28} {4 * n / secs / 1e9:>9.1f} GB/s")
secs = median_secs(lambda: a.copy(), budget=1.5, max_runs=200)
print(f"{'memcpy 64MB (reference)':<28} {2 * 4 * n / secs / 1e9:>9.1f} GB/s")
