#!/usr/bin/env python3
"""The shapes of crates/ravexec/benches/nn.rs in PyTorch on the CPU, the baseline the ML issue
names: conv2d forward and backward (input, weight and bias gradients), dense forward and
backward, float32, with PyTorch's own kernels (oneDNN / MKL) and its default thread count.
Run: python3 scripts/bench_nn_torch.py (needs torch; the PyPI wheel pulls the CUDA libraries,
about 4 GB, though only the CPU is used). scripts/bench_nn.sh runs it beside the Rust bench."""
from benchtime import median_secs

import torch


torch.manual_seed(0)
n, c, h, w, o, k = 32, 16, 28, 28, 32, 3
x = (torch.rand(n, c, h, w) - 0.5).requires_grad_()
conv = torch.nn.Conv2d(c, o, k, padding=1)
y = conv(x)
g = y.detach().clone()


def conv_forward():
    with torch.no_grad():
        return conv(x)


def conv_backward():
    # Autograd's backward of one conv node: input, weight and bias gradients from `g`.
    return torch.autograd.grad(y, (x, conv.weight, conv.bias), g, retain_graph=True)


fwd, bwd = median_secs(conv_forward), median_secs(conv_backward)
macs = n * o * h * w * c * k * k
print(f"torch conv2d {n}x{c}x{h}x{w} -> {o} (3x3): forward {fwd * 1e3:.2f} ms ({2 * macs / fwd / 1e9:.1f} GFLOP/s), "
      f"backward {bwd * 1e3:.2f} ms ({4 * macs / bwd / 1e9:.1f} GFLOP/s), {n / (fwd + bwd):.0f} images/s forward+backward")

rows, inputs, units = 256, 1024, 1024
xd = (torch.rand(rows, inputs) - 0.5).requires_grad_()
dense = torch.nn.Linear(inputs, units)
yd = dense(xd)
gd = yd.detach().clone()


def dense_forward():
    with torch.no_grad():
        return dense(xd)


def dense_backward():
    return torch.autograd.grad(yd, (xd, dense.weight, dense.bias), gd, retain_graph=True)


fwd, bwd = median_secs(dense_forward), median_secs(dense_backward)
macs = rows * inputs * units
print(f"torch dense {rows}x{inputs} -> {units}: forward {fwd * 1e3:.2f} ms ({2 * macs / fwd / 1e9:.1f} GFLOP/s), "
      f"backward {bwd * 1e3:.2f} ms ({4 * macs / bwd / 1e9:.1f} GFLOP/s), {rows / (fwd + bwd):.0f} rows/s forward+backward")
print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
