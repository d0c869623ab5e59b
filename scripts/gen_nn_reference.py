#!/usr/bin/env python3
"""Reference values for the deep-learning kernels (ravexec::nn), computed with NumPy.

Run: python3 scripts/gen_nn_reference.py          (needs numpy)
     python3 scripts/gen_nn_reference.py --check  (compare with the committed fixture; CI)
Writes crates/ravexec/tests/it/fixtures/nn_reference.json: forward values of every activation,
dense, conv2d (naive loops, PyTorch's Conv2d semantics) and maxpool2d (PyTorch's MaxPool2d,
ceil mode included), and five steps of every optimizer written from the update rules in
PyTorch's torch.optim documentation. The Rust test compares ravexec::nn with all of them.
(PyTorch itself is not installable on the build machines: its Linux wheel needs the CUDA
libraries. These loops are an independent second implementation instead.)
"""
import json
import os
import sys

import numpy as np

from fixturecheck import close

rng = np.random.default_rng(20261124)
OUT = os.path.join(os.path.dirname(__file__), "..", "crates", "ravexec", "tests", "it", "fixtures", "nn_reference.json")


def t(a):
    a = np.asarray(a, np.float64)
    return {"shape": list(a.shape), "data": [float(x) for x in a.reshape(-1)]}


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


SELU_A, SELU_S = 1.6732632423543772, 1.0507009873554805
ACTIVATIONS = [
    ({"name": "relu"}, lambda x: np.maximum(x, 0)),
    ({"name": "sigmoid"}, sigmoid),
    ({"name": "tanh"}, np.tanh),
    ({"name": "softmax"}, lambda x: softmax(x, -1)),
    ({"name": "softmax", "dim": 0}, lambda x: softmax(x, 0)),
    ({"name": "leaky_relu"}, lambda x: np.where(x > 0, x, 0.01 * x)),
    ({"name": "leaky_relu", "negative_slope": 0.2}, lambda x: np.where(x > 0, x, 0.2 * x)),
    ({"name": "elu"}, lambda x: np.where(x > 0, x, np.expm1(x))),
    ({"name": "elu", "alpha": 0.5}, lambda x: np.where(x > 0, x, 0.5 * np.expm1(x))),
    ({"name": "selu"}, lambda x: SELU_S * np.where(x > 0, x, SELU_A * np.expm1(x))),
    ({"name": "softplus"}, lambda x: np.where(x > 20, x, np.log1p(np.exp(x)))),
    ({"name": "softsign"}, lambda x: x / (1 + np.abs(x))),
    ({"name": "tanhshrink"}, lambda x: x - np.tanh(x)),
    ({"name": "softmin", "dim": 1}, lambda x: softmax(-x, 1)),
    ({"name": "softshrink"}, lambda x: np.where(x > 0.5, x - 0.5, np.where(x < -0.5, x + 0.5, 0))),
    ({"name": "logsigmoid"}, lambda x: np.log(sigmoid(x))),
    ({"name": "hardshrink", "lambd": 1.0}, lambda x: np.where(np.abs(x) > 1.0, x, 0)),
    ({"name": "hardtanh"}, lambda x: np.clip(x, -1, 1)),
    ({"name": "hardtanh", "min_val": -0.5, "max_val": 2.0}, lambda x: np.clip(x, -0.5, 2.0)),
    ({"name": "threshold", "threshold": 0.1, "value": 20.0}, lambda x: np.where(x > 0.1, x, 20.0)),
]


def conv2d(x, w, b, stride, padding, dilation, groups):
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
    oh = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (wd + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((n, o, oh, ow))
    og = o // groups
    for s in range(n):
        for oc in range(o):
            g = oc // og
            for y in range(oh):
                for xx in range(ow):
                    acc = b[oc]
                    for ci in range(cg):
                        for i in range(kh):
                            for j in range(kw):
                                acc += w[oc, ci, i, j] * xp[s, g * cg + ci, y * stride[0] + i * dilation[0], xx * stride[1] + j * dilation[1]]
                    out[s, oc, y, xx] = acc
    return out


def pool_size(size, k, s, p, d, ceil):
    span = d * (k - 1) + 1
    num = size + 2 * p - span + (s - 1 if ceil else 0)
    out = num // s + 1
    if ceil and (out - 1) * s >= size + p:
        out -= 1
    return out


def maxpool2d(x, kernel, stride, padding, dilation, ceil):
    n, c, h, w = x.shape
    oh = pool_size(h, kernel[0], stride[0], padding[0], dilation[0], ceil)
    ow = pool_size(w, kernel[1], stride[1], padding[1], dilation[1], ceil)
    out = np.full((n, c, oh, ow), -np.inf)
    for y in range(oh):
        for xx in range(ow):
            for i in range(kernel[0]):
                for j in range(kernel[1]):
                    r = y * stride[0] - padding[0] + i * dilation[0]
                    q = xx * stride[1] - padding[1] + j * dilation[1]
                    if 0 <= r < h and 0 <= q < w:
                        out[:, :, y, xx] = np.maximum(out[:, :, y, xx], x[:, :, r, q])
    return out


def optimizer_steps(spec, p, grads):
    """PyTorch's update rules (torch.optim docs, single-tensor, maximize=False)."""
    p = p.copy()
    name = spec["name"]
    st = {}
    out = []
    for step, g in enumerate(grads, start=1):
        lr = spec["lr"]
        wd = spec.get("weight_decay", 0.0)
        if name == "sgd":
            g = g + wd * p
            mu, damp = spec.get("momentum", 0.0), spec.get("dampening", 0.0)
            if mu:
                st["b"] = g.copy() if "b" not in st else mu * st["b"] + (1 - damp) * g
                g = g + mu * st["b"] if spec.get("nesterov") else st["b"]
            p = p - lr * g
        elif name == "adagrad":
            g = g + wd * p
            clr = lr / (1 + (step - 1) * spec.get("lr_decay", 0.0))
            st["sum"] = st.get("sum", np.full_like(p, spec.get("initial_accumulator_value", 0.0))) + g * g
            p = p - clr * g / (np.sqrt(st["sum"]) + spec["eps"])
        elif name == "adadelta":
            rho, eps = spec["rho"], spec["eps"]
            g = g + wd * p
            st["v"] = rho * st.get("v", 0 * p) + (1 - rho) * g * g
            delta = np.sqrt(st.get("u", 0 * p) + eps) / np.sqrt(st["v"] + eps) * g
            st["u"] = rho * st.get("u", 0 * p) + (1 - rho) * delta * delta
            p = p - lr * delta
        elif name in ("adam", "adamw"):
            b1, b2 = spec.get("betas", [0.9, 0.999])
            if name == "adamw":
                p = p * (1 - lr * wd)
            else:
                g = g + wd * p
            st["m"] = b1 * st.get("m", 0 * p) + (1 - b1) * g
            st["v"] = b2 * st.get("v", 0 * p) + (1 - b2) * g * g
            mhat = st["m"] / (1 - b1 ** step)
            v = st["v"]
            if spec.get("amsgrad"):
                st["vmax"] = np.maximum(st.get("vmax", 0 * p), v)
                v = st["vmax"]
            vhat = v / (1 - b2 ** step)
            p = p - lr * mhat / (np.sqrt(vhat) + spec["eps"])
        elif name == "adamax":
            b1, b2 = spec.get("betas", [0.9, 0.999])
            g = g + wd * p
            st["m"] = b1 * st.get("m", 0 * p) + (1 - b1) * g
            st["u"] = np.maximum(b2 * st.get("u", 0 * p), np.abs(g) + spec["eps"])
            p = p - lr / (1 - b1 ** step) * st["m"] / st["u"]
        elif name == "rmsprop":
            alpha, eps, mu = spec["alpha"], spec["eps"], spec.get("momentum", 0.0)
            g = g + wd * p
            st["v"] = alpha * st.get("v", 0 * p) + (1 - alpha) * g * g
            v = st["v"]
            if spec.get("centered"):
                st["g"] = alpha * st.get("g", 0 * p) + (1 - alpha) * g
                v = v - st["g"] ** 2
            denom = np.sqrt(v) + eps
            if mu > 0:
                st["b"] = mu * st.get("b", 0 * p) + g / denom
                p = p - lr * st["b"]
            else:
                p = p - lr * g / denom
        out.append(p.copy())
    return out


OPTIMIZERS = [
    {"name": "sgd", "lr": 0.1},
    {"name": "sgd", "lr": 0.1, "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01},
    {"name": "sgd", "lr": 0.05, "momentum": 0.8, "nesterov": True},
    {"name": "adagrad", "lr": 0.01, "eps": 1e-10},
    {"name": "adagrad", "lr": 0.1, "lr_decay": 0.01, "weight_decay": 0.1, "initial_accumulator_value": 0.5, "eps": 1e-10},
    {"name": "adadelta", "lr": 1.0, "rho": 0.9, "eps": 1e-6},
    {"name": "adadelta", "lr": 0.5, "rho": 0.95, "eps": 1e-6, "weight_decay": 0.1},
    {"name": "adam", "lr": 0.001, "eps": 1e-8},
    {"name": "adam", "lr": 0.01, "betas": [0.8, 0.99], "eps": 1e-8, "weight_decay": 0.1, "amsgrad": True},
    {"name": "adamw", "lr": 0.01, "eps": 1e-8, "weight_decay": 0.01},
    {"name": "adamw", "lr": 0.01, "eps": 1e-8, "weight_decay": 0.1, "amsgrad": True},
    {"name": "adamax", "lr": 0.002, "eps": 1e-8},
    {"name": "adamax", "lr": 0.01, "betas": [0.5, 0.9], "eps": 1e-8, "weight_decay": 0.2},
    {"name": "rmsprop", "lr": 0.01, "alpha": 0.99, "eps": 1e-8},
    {"name": "rmsprop", "lr": 0.01, "alpha": 0.9, "eps": 1e-8, "momentum": 0.5, "centered": True, "weight_decay": 0.05},
]


def build():
    ref = {"activations": [], "dense": [], "conv2d": [], "maxpool2d": [], "optimizers": []}
    x = rng.normal(scale=2.0, size=(3, 5))
    for spec, fn in ACTIVATIONS:
        ref["activations"].append({"activation": spec, "x": t(x), "y": t(fn(x))})
    for shape in [(4, 3), (2, 3, 3)]:
        xd, w, b = rng.normal(size=shape), rng.normal(size=(3, 2)), rng.normal(size=2)
        ref["dense"].append({"x": t(xd), "w": t(w), "b": t(b), "y": t(xd @ w + b)})
    for c, o, k, stride, padding, dilation, groups in [
        (2, 3, (3, 3), (1, 1), (0, 0), (1, 1), 1),
        (3, 2, (3, 2), (2, 1), (1, 1), (1, 1), 1),
        (4, 4, (2, 2), (1, 2), (1, 0), (2, 2), 2),
    ]:
        xc = rng.normal(size=(2, c, 6, 5))
        w = rng.normal(size=(o, c // groups) + k)
        b = rng.normal(size=o)
        ref["conv2d"].append({"stride": stride, "padding": padding, "dilation": dilation, "groups": groups,
                              "x": t(xc), "w": t(w), "b": t(b), "y": t(conv2d(xc, w, b, stride, padding, dilation, groups))})
    for kernel, stride, padding, dilation, ceil in [
        ((2, 2), (2, 2), (0, 0), (1, 1), False),
        ((3, 3), (2, 2), (1, 1), (1, 1), True),
        ((2, 3), (1, 2), (1, 1), (2, 1), False),
        ((3, 2), (2, 3), (0, 1), (1, 1), True),
    ]:
        xm = rng.normal(size=(2, 2, 7, 6))
        ref["maxpool2d"].append({"kernel": kernel, "stride": stride, "padding": padding, "dilation": dilation,
                                 "ceil_mode": ceil, "x": t(xm), "y": t(maxpool2d(xm, kernel, stride, padding, dilation, ceil))})
    for spec in OPTIMIZERS:
        p0 = rng.normal(size=(2, 3))
        grads = [rng.normal(size=(2, 3)) for _ in range(5)]
        ref["optimizers"].append({"spec": spec, "param": t(p0), "grads": [t(g) for g in grads],
                                  "after": [t(p) for p in optimizer_steps(spec, p0, grads)]})
    return ref


ref = build()
if "--check" in sys.argv:
    if not close(json.load(open(OUT)), json.loads(json.dumps(ref))):
        sys.exit("nn_reference.json differs from the script: regenerate it")
    print("nn_reference.json matches the script", file=sys.stderr)
else:
    json.dump(ref, open(OUT, "w"), separators=(",", ":"))
    print(f"wrote {os.path.relpath(OUT)}", file=sys.stderr)
