#!/usr/bin/env python3
"""The shapes of crates/ravexec/benches/nn.rs in NumPy (OpenBLAS), as a same-machine baseline:
conv2d by im2col (sliding_window_view + matmul) forward and backward, dense forward and
backward, float32. Run: python3 scripts/bench_nn_numpy.py (needs numpy).
scripts/bench_nn_torch.py is the PyTorch CPU baseline the issue names; scripts/bench_nn.sh runs
both beside the Rust bench."""
from benchtime import median_secs

import numpy as np


rng = np.random.default_rng(0)
n, c, h, w, o, k = 32, 16, 28, 28, 32, 3
x = rng.random((n, c, h, w), dtype=np.float32) - 0.5
wt = rng.random((o, c, k, k), dtype=np.float32) - 0.5
b = rng.random(o, dtype=np.float32)


def im2col(x):
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(2, 3))  # n c h w k k
    return np.ascontiguousarray(win.transpose(0, 2, 3, 1, 4, 5)).reshape(n * h * w, c * k * k)


def forward():
    cols = im2col(x)
    return (cols @ wt.reshape(o, -1).T + b).reshape(n, h, w, o).transpose(0, 3, 1, 2)


y = forward()


def backward():
    cols = im2col(x)
    g = np.ascontiguousarray(y.transpose(0, 2, 3, 1)).reshape(n * h * w, o)
    dw = g.T @ cols
    dcols = (g @ wt.reshape(o, -1)).reshape(n, h, w, c, k, k)
    dx = np.zeros((n, c, h + 2, w + 2), np.float32)
    for i in range(k):
        for j in range(k):
            dx[:, :, i:i + h, j:j + w] += dcols[:, :, :, :, i, j].transpose(0, 3, 1, 2)
    return dw, dx[:, :, 1:-1, 1:-1], g.sum(0)


fwd, bwd = median_secs(forward), median_secs(backward)
macs = n * o * h * w * c * k * k
print(f"numpy conv2d {n}x{c}x{h}x{w} -> {o} (3x3): forward {fwd * 1e3:.2f} ms ({2 * macs / fwd / 1e9:.1f} GFLOP/s), "
      f"backward {bwd * 1e3:.2f} ms ({4 * macs / bwd / 1e9:.1f} GFLOP/s), {n / (fwd + bwd):.0f} images/s forward+backward")

rows, inputs, units = 256, 1024, 1024
xd = rng.random((rows, inputs), dtype=np.float32) - 0.5
wd = rng.random((inputs, units), dtype=np.float32) - 0.5
bd = rng.random(units, dtype=np.float32)
yd = xd @ wd + bd
fwd = median_secs(lambda: xd @ wd + bd)
bwd = median_secs(lambda: (yd @ wd.T, xd.T @ yd, yd.sum(0)))
macs = rows * inputs * units
print(f"numpy dense {rows}x{inputs} -> {units}: forward {fwd * 1e3:.2f} ms ({2 * macs / fwd / 1e9:.1f} GFLOP/s), "
      f"backward {bwd * 1e3:.2f} ms ({4 * macs / bwd / 1e9:.1f} GFLOP/s), {rows / (fwd + bwd):.0f} rows/s forward+backward")
