#!/usr/bin/env python3
"""Generate NumPy golden values for the ravexec conformance tests.

Run: python3 scripts/gen_golden.py          (needs numpy; `pip install numpy`)
     python3 scripts/gen_golden.py --check  (compare with the committed fixture; used by CI)
Writes crates/ravexec/tests/it/fixtures/golden.json: a list of cases, each with the
operation in Raven's wire JSON, the input tensors, and NumPy's result or the fact that NumPy
raised. The Rust test replays every case through ravexec::execute.

Dtype mapping (NumPy result dtypes Raven does not carry): float16 -> f32, int8/16/32 and
uint16/32/64 -> i64. Everything else must match exactly.
"""
import json
import math
import os
import sys
import warnings

import numpy as np

warnings.simplefilter("ignore")
rng = np.random.default_rng(20261123)
OUT = os.path.join(os.path.dirname(__file__), "..", "crates", "ravexec", "tests", "it", "fixtures", "golden.json")

DTYPES = {np.dtype("float32"): "f32", np.dtype("float64"): "f64", np.dtype("int64"): "i64",
          np.dtype("bool"): "bool", np.dtype("uint8"): "u8"}
MAPPED = {np.dtype("float16"): np.float32, np.dtype("int8"): np.int64, np.dtype("int16"): np.int64,
          np.dtype("int32"): np.int64, np.dtype("uint16"): np.int64, np.dtype("uint32"): np.int64,
          np.dtype("uint64"): np.int64}


def num(x, kind):
    if kind in ("f32", "f64"):
        x = float(x)
        if math.isnan(x):
            return "nan"
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return x
    if kind == "bool":
        return bool(x)
    return int(x)


def tensor(a):
    a = np.asarray(a)
    if a.dtype in MAPPED:
        a = a.astype(MAPPED[a.dtype])
    kind = DTYPES[a.dtype]
    return {"dtype": kind, "shape": list(a.shape), "data": [num(x, kind) for x in a.reshape(-1)]}


def value(v):
    if isinstance(v, (list, tuple)):
        return {"list": [value(x) for x in v]}
    return {"tensor": tensor(v)}


CASES = []


def case(name, operator, params, inputs, fn):
    inputs = [np.asarray(x) if not isinstance(x, list) else x for x in inputs]
    entry = {"name": name, "operation": {"operator": operator, "params": params},
             "inputs": [value(x) for x in inputs]}
    try:
        result = fn(*inputs)
        entry["expected"] = value(result)
        if any(np.asarray(r).dtype == np.float16 for r in (result if isinstance(result, (list, tuple)) else [result])):
            # NumPy computed in float16; Raven computes in f32, which is more precise.
            entry["rtol"] = 1e-3
    except Exception as exc:  # NumPy refused: Raven must refuse too.
        entry["error"] = f"{type(exc).__name__}: {exc}"
    CASES.append(entry)


def arr(values, dtype):
    return np.array(values, dtype=dtype)


# ---- shared inputs ----
f64_v = arr([1.5, -2.0, 3.25, 0.0, 7.5], np.float64)
f32_v = arr([1.5, -2.0, 3.25, 0.0, 7.5], np.float32)
i64_v = arr([3, -1, 4, 1, -5], np.int64)
u8_v = arr([1, 250, 3, 0, 7], np.uint8)
b_v = arr([True, False, True, True, False], np.bool_)
f64_m = rng.normal(size=(3, 4))
f32_m = rng.normal(size=(3, 4)).astype(np.float32)
i64_m = rng.integers(-9, 10, size=(3, 4))
t3 = rng.normal(size=(2, 3, 4))
t3_i = rng.integers(0, 5, size=(2, 3, 4))
col = rng.normal(size=(3, 1))
row = rng.normal(size=(4,))
empty = np.zeros((0,), np.float64)
empty2 = np.zeros((0, 3), np.float64)
scalar_f = np.array(2.5)
scalar_i = np.array(-3)
pos_v = arr([0.5, 1.0, 2.0, 9.0, 0.0], np.float64)
special = arr([np.nan, np.inf, -np.inf, -0.0, 1.0], np.float64)

by_dtype = {"f64": f64_v, "f32": f32_v, "i64": i64_v, "u8": u8_v, "bool": b_v}

# ---- B. arithmetic ----
binary = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "multiply": np.multiply,
          "div": np.true_divide, "pow": np.power}
pairs = [("f64", "f64"), ("f32", "f32"), ("i64", "i64"), ("u8", "u8"), ("bool", "bool"),
         ("i64", "f32"), ("u8", "i64"), ("bool", "f64"), ("f32", "f64"), ("u8", "f32"), ("bool", "i64")]
for op, fn in binary.items():
    for da, db in pairs:
        a, b = by_dtype[da], by_dtype[db]
        if op == "pow":
            b = np.abs(b) % 4 if db not in ("bool",) else b
            if db == "u8":
                b = b.astype(np.uint8)
        case(f"{op} {da}-{db}", op, {}, [a, b], fn)
    case(f"{op} scalar-vector", op, {}, [scalar_f, f64_v], fn)
    case(f"{op} int scalar-vector", op, {}, [scalar_i, i64_v if op != "pow" else np.abs(i64_v)], fn)
    case(f"{op} broadcast col-row", op, {}, [col, row], fn)
    case(f"{op} broadcast 3d-2d", op, {}, [t3, f64_m], fn)
    case(f"{op} empty", op, {}, [empty, empty], fn)
    case(f"{op} empty broadcast", op, {}, [empty2, arr([1.0, 2.0, 3.0], np.float64)], fn)
    case(f"{op} mismatch", op, {}, [f64_v, row], fn)
    case(f"{op} 0-d", op, {}, [scalar_f, scalar_i], fn)
    case(f"{op} special", op, {}, [special, special[::-1].copy()], fn)
case("pow negative int exponent", "pow", {}, [i64_v, arr([1, -1, 2, 0, 1], np.int64)], np.power)
case("div int by zero", "div", {}, [arr([1, 0, -1], np.int64), arr([0, 0, 0], np.int64)], np.true_divide)
case("add overflow wraps", "add", {}, [arr([2**62, -2**63], np.int64), arr([2**62, -1], np.int64)], np.add)

unary = {"pos": np.positive, "neg": np.negative, "exp": np.exp, "natlog": np.log, "square": np.square,
         "cube": lambda a: np.power(a, 3), "square_root": np.sqrt, "cube_root": np.cbrt, "abs": np.abs,
         "sign": np.sign}
for op, fn in unary.items():
    for d, a in by_dtype.items():
        case(f"{op} {d}", op, {}, [a], fn)
    case(f"{op} 0-d", op, {}, [scalar_f], fn)
    case(f"{op} 0-d int", op, {}, [scalar_i], fn)
    case(f"{op} 2-d", op, {}, [f64_m], fn)
    case(f"{op} 3-d", op, {}, [t3], fn)
    case(f"{op} 3-d int", op, {}, [t3_i], fn)
    case(f"{op} empty", op, {}, [empty2], fn)
    case(f"{op} special", op, {}, [special], fn)
    case(f"{op} positive", op, {}, [pos_v], fn)
case("abs int min", "abs", {}, [arr([-2**63, -1], np.int64)], np.abs)

# ---- D. comparison and logic ----
compare = {"greater": np.greater, "greater_equal": np.greater_equal, "less": np.less,
           "less_equal": np.less_equal, "equal": np.equal, "not_equal": np.not_equal,
           "logical_and": np.logical_and, "logical_or": np.logical_or, "logical_xor": np.logical_xor}
for op, fn in compare.items():
    for da, db in pairs:
        case(f"{op} {da}-{db}", op, {}, [by_dtype[da], by_dtype[db][::-1].copy()], fn)
    case(f"{op} broadcast", op, {}, [col, row], fn)
    case(f"{op} 3d-scalar", op, {}, [t3, scalar_f], fn)
    case(f"{op} nan", op, {}, [special, special], fn)
    case(f"{op} empty", op, {}, [empty, empty], fn)
    case(f"{op} mismatch", op, {}, [f64_v, row], fn)
for d, a in by_dtype.items():
    case(f"logical_not {d}", "logical_not", {}, [a], np.logical_not)
case("logical_not special", "logical_not", {}, [special], np.logical_not)
case("logical_not 3-d", "logical_not", {}, [t3_i], np.logical_not)

# ---- C. linear algebra ----
def mm_inputs():
    return [
        ("2d-2d", rng.normal(size=(3, 4)), rng.normal(size=(4, 2))),
        ("1d-2d", rng.normal(size=(4,)), rng.normal(size=(4, 2))),
        ("2d-1d", rng.normal(size=(3, 4)), rng.normal(size=(4,))),
        ("1d-1d", rng.normal(size=(4,)), rng.normal(size=(4,))),
        ("3d-2d", rng.normal(size=(2, 3, 4)), rng.normal(size=(4, 5))),
        ("3d-3d", rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 4, 5))),
        ("broadcast batch", rng.normal(size=(1, 3, 4)), rng.normal(size=(2, 4, 2))),
        ("1d-3d", rng.normal(size=(4,)), rng.normal(size=(2, 4, 3))),
        ("int", rng.integers(-5, 5, size=(3, 4)), rng.integers(-5, 5, size=(4, 2))),
        ("f32", rng.normal(size=(5, 6)).astype(np.float32), rng.normal(size=(6, 3)).astype(np.float32)),
        ("bool", rng.integers(0, 2, size=(2, 3)).astype(bool), rng.integers(0, 2, size=(3, 2)).astype(bool)),
        ("mixed", rng.integers(-5, 5, size=(3, 4)), rng.normal(size=(4, 2)).astype(np.float32)),
        ("mismatch", rng.normal(size=(3, 4)), rng.normal(size=(3, 4))),
        ("empty inner", np.zeros((3, 0)), np.zeros((0, 2))),
        ("0-d", np.array(2.0), rng.normal(size=(3,))),
    ]
for name, a, b in mm_inputs():
    case(f"matmul {name}", "matmul", {}, [a, b], np.matmul)
for name, a, b in mm_inputs():
    case(f"dot {name}", "dot", {}, [a, b], np.dot)
case("dot nd-md", "dot", {}, [rng.normal(size=(2, 3, 4)), rng.normal(size=(5, 4, 2))], np.dot)
case("dot nd-md mismatch", "dot", {}, [rng.normal(size=(2, 3, 4)), rng.normal(size=(5, 3, 2))], np.dot)

well = rng.normal(size=(3, 3)) + 3 * np.eye(3)
case("inv 2x2", "inv", {}, [arr([[4.0, 7.0], [2.0, 6.0]], np.float64)], np.linalg.inv)
case("inv 3x3", "inv", {}, [well], np.linalg.inv)
case("inv batch", "inv", {}, [rng.normal(size=(2, 3, 3)) + 3 * np.eye(3)], np.linalg.inv)
case("inv int", "inv", {}, [arr([[2, 1], [1, 3]], np.int64)], np.linalg.inv)
case("inv f32", "inv", {}, [well.astype(np.float32)], np.linalg.inv)
case("inv singular", "inv", {}, [arr([[1.0, 2.0], [2.0, 4.0]], np.float64)], np.linalg.inv)
case("inv zeros", "inv", {}, [np.zeros((2, 2))], np.linalg.inv)
case("inv non-square", "inv", {}, [f64_m], np.linalg.inv)
case("inv 1-d", "inv", {}, [f64_v], np.linalg.inv)

# ---- C. reductions ----
def axis_kw(axis):
    return {} if axis is None else {"axis": axis}

red = {"sum": np.sum, "prod": np.prod, "min": np.min, "max": np.max, "mean": np.mean, "median": np.median}
axes_cases = [None, 0, 1, -1, [0, 2], [2, 0, 1]]
for op, fn in red.items():
    for axis in axes_cases:
        for keep in (False, True):
            p = {"axis": axis, "keepdims": keep}
            ax = tuple(axis) if isinstance(axis, list) else axis
            case(f"{op} 3d axis={axis} keep={keep}", op, p, [t3], lambda a, ax=ax, keep=keep, fn=fn: fn(a, axis=ax, keepdims=keep))
    for d, a in by_dtype.items():
        case(f"{op} {d}", op, {}, [a], fn)
    case(f"{op} int 3d axis 1", op, {"axis": 1}, [t3_i], lambda a, fn=fn: fn(a, axis=1))
    case(f"{op} f32 2d axis 0", op, {"axis": 0}, [f32_m], lambda a, fn=fn: fn(a, axis=0))
    case(f"{op} 0-d", op, {}, [scalar_f], fn)
    case(f"{op} empty", op, {}, [empty], fn)
    case(f"{op} empty axis 0", op, {"axis": 0}, [empty2], lambda a, fn=fn: fn(a, axis=0))
    case(f"{op} empty axis 1", op, {"axis": 1}, [empty2], lambda a, fn=fn: fn(a, axis=1))
    case(f"{op} nan", op, {}, [special], fn)
    case(f"{op} bad axis", op, {"axis": 3}, [f64_m], lambda a, fn=fn: fn(a, axis=3))
    case(f"{op} repeated axis", op, {"axis": [0, 0]}, [f64_m], lambda a, fn=fn: fn(a, axis=(0, 0)))

for op, fn in {"argmax": np.argmax, "argmin": np.argmin}.items():
    for axis in (None, 0, 1, -1):
        for keep in (False, True):
            case(f"{op} 3d axis={axis} keep={keep}", op, {"axis": axis, "keepdims": keep}, [t3],
                 lambda a, axis=axis, keep=keep, fn=fn: fn(a, axis=axis, keepdims=keep))
    for d, a in by_dtype.items():
        case(f"{op} {d}", op, {}, [a], fn)
    case(f"{op} ties", op, {}, [arr([1, 3, 3, 1], np.int64)], fn)
    case(f"{op} nan", op, {}, [arr([1.0, np.nan, 5.0, np.nan], np.float64)], fn)
    case(f"{op} empty", op, {}, [empty], fn)

for op, fn in {"variance": np.var, "std": np.std}.items():
    for axis in (None, 0, [0, 2], -1):
        for ddof in (0, 1):
            ax = tuple(axis) if isinstance(axis, list) else axis
            case(f"{op} 3d axis={axis} ddof={ddof}", op, {"axis": axis, "ddof": ddof}, [t3],
                 lambda a, ax=ax, ddof=ddof, fn=fn: fn(a, axis=ax, ddof=ddof))
    case(f"{op} keepdims", op, {"axis": 1, "keepdims": True}, [f64_m], lambda a, fn=fn: fn(a, axis=1, keepdims=True))
    for d, a in by_dtype.items():
        case(f"{op} {d}", op, {}, [a], fn)
    case(f"{op} ddof too big", op, {"ddof": 5}, [f64_v], lambda a, fn=fn: fn(a, ddof=5))
    case(f"{op} ddof above n", op, {"ddof": 7}, [f64_v], lambda a, fn=fn: fn(a, ddof=7))
    case(f"{op} empty", op, {}, [empty], fn)
    case(f"{op} 0-d", op, {}, [scalar_f], fn)

# ---- E. statistics ----
w3 = np.abs(rng.normal(size=(2, 3, 4))) + 0.1
case("average plain", "average", {}, [t3], np.average)
case("average int", "average", {}, [i64_v], np.average)
case("average f32", "average", {}, [f32_v], np.average)
case("average axis", "average", {"axis": 1}, [t3], lambda a: np.average(a, axis=1))
case("average weights full", "average", {}, [t3, w3], lambda a, w: np.average(a, weights=w))
case("average weights axis", "average", {"axis": 1}, [t3, w3], lambda a, w: np.average(a, axis=1, weights=w))
case("average weights 1-d", "average", {"axis": 2}, [t3, arr([1.0, 2.0, 3.0, 4.0], np.float64)], lambda a, w: np.average(a, axis=2, weights=w))
case("average weights int", "average", {"axis": 0}, [i64_m, arr([1, 2, 3], np.int64)], lambda a, w: np.average(a, axis=0, weights=w))
case("average weights f32", "average", {}, [f32_v, f32_v * 0 + 1], lambda a, w: np.average(a, weights=w))
case("average weights zero", "average", {}, [f64_v, f64_v * 0], lambda a, w: np.average(a, weights=w))
case("average weights bad length", "average", {"axis": 0}, [t3, arr([1.0, 2.0, 3.0], np.float64)], lambda a, w: np.average(a, axis=0, weights=w))
case("average keepdims", "average", {"axis": 1, "keepdims": True}, [t3, w3], lambda a, w: np.average(a, axis=1, weights=w, keepdims=True))


def np_mode(a, axis=0, keepdims=False):
    a = np.asarray(a)
    if axis is None:
        a, axis = a.reshape(-1), 0
    if a.shape[axis] == 0:
        raise ValueError("empty")

    def lane(v):
        vals, counts = np.unique(v, return_counts=True)
        return vals[np.argmax(counts)]
    out = np.apply_along_axis(lane, axis, a).astype(a.dtype)
    return np.expand_dims(out, axis) if keepdims else out


modal = rng.integers(0, 4, size=(5, 3))
case("mode default axis", "mode", {}, [modal], np_mode)
case("mode axis 1", "mode", {"axis": 1}, [modal], lambda a: np_mode(a, axis=1))
case("mode axis none", "mode", {"axis": None}, [modal], lambda a: np_mode(a, axis=None))
case("mode keepdims", "mode", {"keepdims": True}, [modal], lambda a: np_mode(a, keepdims=True))
case("mode floats", "mode", {}, [arr([2.5, 1.0, 2.5, 1.0, 3.0], np.float64)], np_mode)
case("mode 1-d", "mode", {}, [i64_v], np_mode)
case("mode empty", "mode", {}, [empty], np_mode)

qs = [np.array(50.0), arr([0.0, 25.0, 50.0, 75.0, 100.0], np.float64), arr([[10.0, 90.0], [33.3, 66.6]], np.float64)]
for method in ("inverted_cdf", "averaged_inverted_cdf", "closest_observation", "interpolated_inverted_cdf",
               "hazen", "weibull", "linear", "median_unbiased", "normal_unbiased", "lower", "higher", "midpoint",
               "nearest"):
    for qi, q in enumerate(qs):
        case(f"percentile {method} q{qi}", "percentile", {"method": method}, [t3, q], lambda a, q, m=method: np.percentile(a, q, method=m))
    case(f"percentile {method} axis", "percentile", {"method": method, "axis": 1}, [t3, qs[1]], lambda a, q, m=method: np.percentile(a, q, axis=1, method=m))
    case(f"percentile {method} int", "percentile", {"method": method}, [i64_v, qs[1]], lambda a, q, m=method: np.percentile(a, q, method=m))
    case(f"percentile {method} halves", "percentile", {"method": method}, [np.arange(4), arr([12.5, 37.5, 50.0, 62.5], np.float64)], lambda a, q, m=method: np.percentile(a, q, method=m))
    for n in (1, 2, 5, 10):
        grid = arr([0.0, 1.0, 10.0, 12.5, 20.0, 25.0, 33.3, 50.0, 60.0, 75.0, 90.0, 99.0, 100.0], np.float64)
        case(f"percentile {method} n={n} grid", "percentile", {"method": method}, [np.arange(n, dtype=np.float64) * 1.5 + 1.0, grid], lambda a, q, m=method: np.percentile(a, q, method=m))
case("percentile keepdims", "percentile", {"axis": [0, 2], "keepdims": True}, [t3, qs[1]], lambda a, q: np.percentile(a, q, axis=(0, 2), keepdims=True))
case("percentile f32", "percentile", {}, [f32_m, qs[1]], np.percentile)
case("percentile out of range", "percentile", {}, [f64_v, np.array(101.0)], np.percentile)
case("percentile nan", "percentile", {}, [special, np.array(50.0)], np.percentile)

case("bincount", "bincount", {}, [arr([0, 1, 1, 3, 2, 1, 7], np.int64)], np.bincount)
case("bincount minlength", "bincount", {"minlength": 10}, [arr([0, 1, 1, 3], np.int64)], lambda a: np.bincount(a, minlength=10))
case("bincount weights", "bincount", {}, [arr([0, 1, 1, 2], np.int64), arr([0.5, 1.0, 2.0, 3.0], np.float64)], lambda a, w: np.bincount(a, weights=w))
case("bincount u8", "bincount", {}, [arr([3, 0, 3], np.uint8)], np.bincount)
case("bincount bool", "bincount", {}, [b_v], np.bincount)
case("bincount empty", "bincount", {}, [np.zeros((0,), np.int64)], np.bincount)
case("bincount negative", "bincount", {}, [arr([0, -1], np.int64)], np.bincount)
case("bincount float", "bincount", {}, [f64_v], np.bincount)
case("bincount 2-d", "bincount", {}, [i64_m], np.bincount)

# ---- C. shape ops ----
case("transpose default", "transpose", {}, [t3], np.transpose)
case("transpose axes", "transpose", {"axes": [1, 0, 2]}, [t3], lambda a: np.transpose(a, (1, 0, 2)))
case("transpose negative axes", "transpose", {"axes": [-1, 0, 1]}, [t3], lambda a: np.transpose(a, (-1, 0, 1)))
case("transpose bad axes", "transpose", {"axes": [0, 1]}, [t3], lambda a: np.transpose(a, (0, 1)))
case("transpose 1-d", "transpose", {}, [f64_v], np.transpose)
case("transpose 0-d", "transpose", {}, [scalar_f], np.transpose)
for shape in ([4, 6], [-1, 3], [2, -1, 2], [24], [5, 5], [-1, -1], [2, 3, 4, 1]):
    case(f"reshape {shape}", "reshape", {"shape": shape}, [t3], lambda a, s=shape: np.reshape(a, s))
case("reshape empty", "reshape", {"shape": [3, 0]}, [empty2], lambda a: np.reshape(a, (3, 0)))
case("reshape 0-d", "reshape", {"shape": [1, 1]}, [scalar_f], lambda a: np.reshape(a, (1, 1)))
case("flatten", "flatten", {}, [t3], lambda a: a.flatten())
case("flatten 0-d", "flatten", {}, [scalar_i], lambda a: a.flatten())
case("ravel C", "ravel", {}, [t3], np.ravel)
case("ravel F", "ravel", {"order": "F"}, [t3], lambda a: np.ravel(a, order="F"))
sq = rng.normal(size=(1, 3, 1, 2))
case("squeeze all", "squeeze", {}, [sq], np.squeeze)
case("squeeze axis", "squeeze", {"axis": 2}, [sq], lambda a: np.squeeze(a, 2))
case("squeeze axes", "squeeze", {"axis": [0, -2]}, [sq], lambda a: np.squeeze(a, (0, -2)))
case("squeeze bad axis", "squeeze", {"axis": 1}, [sq], lambda a: np.squeeze(a, 1))
for axis in (0, 1, -1, [0, 3], 3):
    case(f"expand_dims {axis}", "expand_dims", {"axis": axis}, [f64_m], lambda a, ax=axis: np.expand_dims(a, tuple(ax) if isinstance(ax, list) else ax))
case("expand_dims default", "expand_dims", {}, [f64_v], lambda a: np.expand_dims(a, 0))
case("expand_dims 0-d", "expand_dims", {"axis": 0}, [scalar_f], lambda a: np.expand_dims(a, 0))
for axis in (0, 1, -1):
    case(f"concat axis {axis}", "concat", {"axis": axis}, [t3, t3 * 2], lambda a, b, ax=axis: np.concatenate([a, b], axis=ax))
case("concat three mixed dtypes", "concat", {}, [f64_v, i64_v, b_v], lambda a, b, c: np.concatenate([a, b, c]))
case("concat mismatch", "concat", {"axis": 0}, [f64_m, t3], lambda a, b: np.concatenate([a, b]))
case("concat 0-d", "concat", {}, [scalar_f, scalar_f], lambda a, b: np.concatenate([a, b]))
case("concat empty", "concat", {}, [empty, f64_v], lambda a, b: np.concatenate([a, b]))
for axis in (0, 1, 2, -1):
    case(f"stack axis {axis}", "stack", {"axis": axis}, [f64_m, f64_m + 1], lambda a, b, ax=axis: np.stack([a, b], axis=ax))
case("stack scalars", "stack", {}, [scalar_f, scalar_i], lambda a, b: np.stack([a, b]))
case("stack mismatch", "stack", {}, [f64_v, row], lambda a, b: np.stack([a, b]))
case("stack bad axis", "stack", {"axis": 3}, [f64_m, f64_m], lambda a, b: np.stack([a, b], axis=3))
# One array given alone is NumPy's sequence of its rows (`np.stack(a)` joins a[0], a[1], ...),
# not a one-element sequence; a list value is the sequence of its items.
for axis in (0, 1, -1):
    case(f"stack one array axis {axis}", "stack", {"axis": axis}, [t3], lambda a, ax=axis: np.stack(a, axis=ax))
    case(f"concat one array axis {axis}", "concat", {"axis": axis}, [t3], lambda a, ax=axis: np.concatenate(a, axis=ax))
case("stack one matrix", "stack", {}, [i64_m], np.stack)
case("stack one vector", "stack", {}, [f64_v], np.stack)
case("stack one 0-d", "stack", {}, [scalar_f], np.stack)
case("stack one empty", "stack", {}, [empty2], np.stack)
case("stack one bad axis", "stack", {"axis": 3}, [t3], lambda a: np.stack(a, axis=3))
case("concat one matrix", "concat", {}, [f64_m], np.concatenate)
case("concat one vector", "concat", {}, [f64_v], np.concatenate)
case("concat one 0-d", "concat", {}, [scalar_f], np.concatenate)
case("concat one empty", "concat", {}, [empty2], np.concatenate)
case("concat one bad axis", "concat", {"axis": 2}, [t3], lambda a: np.concatenate(a, axis=2))
case("stack a list", "stack", {"axis": 1}, [[f64_m, f64_m * 2]], lambda l: np.stack(l, axis=1))
case("stack a one-item list", "stack", {}, [[f64_m]], np.stack)
case("concat a list", "concat", {}, [[f64_m, f64_m * 2]], np.concatenate)
case("split sections", "split", {"num_or_size_splits": 3}, [np.arange(9.0)], lambda a: np.split(a, 3))
case("split sections axis", "split", {"num_or_size_splits": 2, "axis": 2}, [t3], lambda a: np.split(a, 2, axis=2))
case("split indices", "split", {"num_or_size_splits": [2, 5]}, [np.arange(8)], lambda a: np.split(a, [2, 5]))
case("split indices beyond", "split", {"num_or_size_splits": [3, 20]}, [np.arange(8)], lambda a: np.split(a, [3, 20]))
case("split unequal", "split", {"num_or_size_splits": 3}, [np.arange(8)], lambda a: np.split(a, 3))
for reps in ([2], [2, 1], [1, 2, 3], [0, 2]):
    case(f"tile {reps}", "tile", {}, [f64_m, np.array(reps)], lambda a, r: np.tile(a, r))
case("tile 1-d scalar reps", "tile", {}, [f64_v, np.array(3)], lambda a, r: np.tile(a, r))
case("tile 0-d", "tile", {}, [scalar_f, np.array([2, 2])], lambda a, r: np.tile(a, r))
for axis in (None, 0, -1, [0, 2]):
    case(f"reverse {axis}", "reverse", {"axis": axis}, [t3], lambda a, ax=axis: np.flip(a, tuple(ax) if isinstance(ax, list) else ax))
case("reverse 1-d", "reverse", {}, [f64_v], np.flip)
for axis in (-1, 0, 1, None):
    case(f"sort {axis}", "sort", {"axis": axis}, [t3], lambda a, ax=axis: np.sort(a, axis=ax))
case("sort nan", "sort", {}, [special], np.sort)
case("sort ints", "sort", {}, [i64_m], np.sort)
case("sort bool", "sort", {}, [b_v], np.sort)
case("sort 0-d", "sort", {}, [scalar_f], np.sort)
case("sort 0-d none", "sort", {"axis": None}, [scalar_f], lambda a: np.sort(a, axis=None))
dup = arr([[3, 1, 3], [1, 2, 1], [3, 1, 3]], np.int64)
case("unique", "unique", {}, [dup], np.unique)
case("unique inverse", "unique", {"return_inverse": True}, [dup], lambda a: list(np.unique(a, return_inverse=True)))
case("unique counts", "unique", {"return_counts": True}, [dup], lambda a: list(np.unique(a, return_counts=True)))
case("unique both", "unique", {"return_inverse": True, "return_counts": True}, [dup], lambda a: list(np.unique(a, return_inverse=True, return_counts=True)))
case("unique axis 0", "unique", {"axis": 0}, [dup], lambda a: np.unique(a, axis=0))
case("unique axis 1 inverse", "unique", {"axis": 1, "return_inverse": True, "return_counts": True}, [dup], lambda a: list(np.unique(a, axis=1, return_inverse=True, return_counts=True)))
case("unique floats", "unique", {}, [arr([2.5, -1.0, 2.5, 0.0], np.float64)], np.unique)
case("unique empty", "unique", {}, [empty], np.unique)
case("unique bool", "unique", {}, [b_v], np.unique)
gather_idx = arr([2, 0, -1, 2], np.int64)
case("gather 1-d", "gather", {}, [f64_v, gather_idx], lambda a, i: np.array([a[j] for j in i]))
case("gather 2-d", "gather", {}, [f64_m, arr([2, 0], np.int64)], lambda a, i: np.array([a[j] for j in i]))
case("gather out of range", "gather", {}, [f64_v, arr([5], np.int64)], lambda a, i: np.array([a[j] for j in i]))
case("gather float index", "gather", {}, [f64_v, arr([1.0], np.float64)], lambda a, i: a[i])
case("slice 1-d", "slice", {"begin": [1], "size": [3]}, [f64_v], lambda a: a[1:4])
case("slice 2-d", "slice", {"begin": [1, 1], "size": [2, -1]}, [f64_m], lambda a: a[1:3, 1:])
case("slice 3-d leading", "slice", {"begin": [1], "size": [1]}, [t3], lambda a: a[1:2])
case("slice too many", "slice", {"begin": [0, 0, 0, 0], "size": [1, 1, 1, 1]}, [t3], lambda a: a[0:1, 0:1, 0:1, 0:1])
case("find_indices", "find_indices", {}, [arr([1, 2, 1, 3, 1], np.int64), arr([1, 3, 9], np.int64)],
     lambda a, b: [np.where(a.reshape(-1) == v)[0] for v in b.reshape(-1)])
case("find_indices 2-d", "find_indices", {}, [dup, arr([3], np.int64)], lambda a, b: [np.where(a.reshape(-1) == v)[0] for v in b.reshape(-1)])
case("shape", "shape", {}, [t3], lambda a: np.array(a.shape))
case("shape index", "shape", {"index": -1}, [t3], lambda a: np.array(a.shape[-1]))
case("shape 0-d", "shape", {}, [scalar_f], lambda a: np.array(a.shape, dtype=np.int64))
case("shape bad index", "shape", {"index": 3}, [t3], lambda a: np.array(a.shape[3]))
case("size", "size", {}, [t3], lambda a: np.array(a.size))
case("size empty", "size", {}, [empty2], lambda a: np.array(a.size))
for mode in ("constant", "edge", "reflect", "symmetric", "wrap"):
    case(f"pad {mode} 1-d", "pad", {"sequence": [[2, 3]], "mode": mode}, [arr([1, 2, 3], np.int64)], lambda a, m=mode: np.pad(a, (2, 3), mode=m))
    case(f"pad {mode} long", "pad", {"sequence": [[5, 7]], "mode": mode}, [arr([1, 2, 3], np.int64)], lambda a, m=mode: np.pad(a, (5, 7), mode=m))
    case(f"pad {mode} 2-d", "pad", {"sequence": [[1, 0], [2, 1]], "mode": mode}, [f64_m], lambda a, m=mode: np.pad(a, ((1, 0), (2, 1)), mode=m))
    case(f"pad {mode} single", "pad", {"sequence": [[1, 1]], "mode": mode}, [arr([4.0], np.float64)], lambda a, m=mode: np.pad(a, 1, mode=m))
case("pad constant value", "pad", {"sequence": [[1, 2]], "mode": "constant", "constant_values": 9}, [f64_v], lambda a: np.pad(a, (1, 2), constant_values=9))
case("pad bad widths", "pad", {"sequence": [[1, 1], [1, 1], [1, 1]], "mode": "constant"}, [f64_m], lambda a: np.pad(a, ((1, 1), (1, 1), (1, 1))))
case("repeat flat", "repeat", {"repeats": 2}, [f64_m], lambda a: np.repeat(a, 2))
case("repeat axis", "repeat", {"repeats": 3, "axis": 1}, [f64_m], lambda a: np.repeat(a, 3, axis=1))
case("repeat list", "repeat", {"repeats": [1, 0, 2], "axis": 0}, [f64_m], lambda a: np.repeat(a, [1, 0, 2], axis=0))
case("repeat bad list", "repeat", {"repeats": [1, 2], "axis": 0}, [f64_m], lambda a: np.repeat(a, [1, 2], axis=0))
case("repeat 0-d", "repeat", {"repeats": 3}, [scalar_i], lambda a: np.repeat(a, 3))
case("arange ints", "arange", {}, [np.array(2), np.array(9)], lambda a, b: np.arange(a, b))
case("arange step", "arange", {"step": 3}, [np.array(2), np.array(12)], lambda a, b: np.arange(a, b, 3))
case("arange negative step", "arange", {"step": -2}, [np.array(5), np.array(-4)], lambda a, b: np.arange(a, b, -2))
case("arange float", "arange", {"step": 0.5}, [np.array(1), np.array(3.25)], lambda a, b: np.arange(a, b, 0.5))
case("arange empty", "arange", {}, [np.array(5), np.array(2)], lambda a, b: np.arange(a, b))
case("zeros", "zeros", {}, [np.array([2, 3])], lambda s: np.zeros(s))
case("zeros dtype", "zeros", {"dtype": "i64"}, [np.array([4])], lambda s: np.zeros(s, dtype=np.int64))
case("zeros scalar shape", "zeros", {"dtype": "bool"}, [np.array(3)], lambda s: np.zeros(s, dtype=bool))
case("zeros negative", "zeros", {}, [np.array([-1])], lambda s: np.zeros(s))

# ---- index and set_value: (subscript text, the same subscript as a Python object) ----
s_ = np.s_
index_cases = [
    ("[1]", s_[1]), ("[-1]", s_[-1]), ("[1:]", s_[1:]), ("[::-1]", s_[::-1]), ("[1:, ::2, -1]", s_[1:, ::2, -1]),
    ("[..., 1]", s_[..., 1]), ("[0, ...]", s_[0, ...]), ("[None, 1]", s_[None, 1]), ("[:, None, :, None]", s_[:, None, :, None]),
    ("[[1, 0, 1]]", s_[[1, 0, 1]]), ("[:, [2, 0]]", s_[:, [2, 0]]), ("[0, :, [1, 3]]", s_[0, :, [1, 3]]),
    ("[[0, 1], [2, 0]]", s_[[0, 1], [2, 0]]), ("[:, [0, 2], [1, 3]]", s_[:, [0, 2], [1, 3]]),
    ("[[0, 1], :, [1, 3]]", s_[[0, 1], :, [1, 3]]), ("[[[0, 1], [1, 0]]]", s_[[[0, 1], [1, 0]]]),
    ("[[True, False]]", s_[[True, False]]), ("[:, [True, False, True]]", s_[:, [True, False, True]]),
    ("[1:2, 1:2, 1:2]", s_[1:2, 1:2, 1:2]), ("[-5:100]", s_[-5:100]), ("[::-2, 1::-1]", s_[::-2, 1::-1]),
    ("[2]", s_[2]), ("[0, 0, 0, 0]", s_[0, 0, 0, 0]), ("[..., ...]", s_[..., ...]), ("[[0, 5]]", s_[[0, 5]]),
    ("[]", ()), ("[1, None, ..., None]", s_[1, None, ..., None]), ("[3:1]", s_[3:1]),
]
for text, subscript in index_cases:
    case(f"index {text}", "index", {"indices": text}, [t3], lambda a, s=subscript: np.asarray(a[s]))
    if text not in ("[]",):
        case(f"set_value {text}", "set_value", {"indices": text}, [t3, np.array(7.5)],
             lambda a, b, s=subscript: (lambda c: (c.__setitem__(s, b), c)[1])(a.copy()))
mask2 = t3[0] > 0
case("index 2-d mask", "index", {"indices": [{"mask": {"shape": [3, 4], "values": [bool(x) for x in mask2.reshape(-1)]}}]}, [t3[0]], lambda a: a[mask2])
case("index 2-d mask on 3-d", "index", {"indices": [{"int": 1}, {"mask": {"shape": [3, 4], "values": [bool(x) for x in mask2.reshape(-1)]}}]}, [t3], lambda a: a[1, mask2])
case("set_value array", "set_value", {"indices": "[:, 1]"}, [f64_m, arr([1.0, 2.0, 3.0], np.float64)], lambda a, b: (lambda c: (c.__setitem__(s_[:, 1], b), c)[1])(a.copy()))
case("set_value broadcast row", "set_value", {"indices": "[1:]"}, [f64_m, row], lambda a, b: (lambda c: (c.__setitem__(s_[1:], b), c)[1])(a.copy()))
case("set_value bad shape", "set_value", {"indices": "[1:]"}, [f64_m, arr([1.0, 2.0], np.float64)], lambda a, b: (lambda c: (c.__setitem__(s_[1:], b), c)[1])(a.copy()))
case("set_value cast", "set_value", {"indices": "[0]"}, [i64_v, np.array(2.9)], lambda a, b: (lambda c: (c.__setitem__(0, b), c)[1])(a.copy()))
case("set_value duplicates", "set_value", {"indices": "[[0, 0, 1]]"}, [f64_v, arr([1.0, 2.0, 3.0], np.float64)], lambda a, b: (lambda c: (c.__setitem__([0, 0, 1], b), c)[1])(a.copy()))
case("index 0-d", "index", {"indices": "[]"}, [scalar_f], lambda a: a[()])
case("index 0-d too many", "index", {"indices": "[0]"}, [scalar_f], lambda a: a[0])

case("join_to_list", "join_to_list", {}, [f64_m, i64_v], np.append)
case("join_to_list scalar", "join_to_list", {}, [f64_v, scalar_f], np.append)
case("combine_to_list", "combine_to_list", {}, [f64_v, i64_v], lambda a, b: np.array([a, b]))
case("combine_to_list mismatch", "combine_to_list", {}, [f64_v, row], lambda a, b: np.stack([a, b]))
case("ravint", "ravint", {}, [np.array(3.9)], lambda a: np.array(int(a)))
case("ravint negative", "ravint", {}, [np.array([-3.9])], lambda a: np.array(int(a[0])))
case("ravint many", "ravint", {}, [f64_v], lambda a: np.array(int(a)))

nchw = rng.normal(size=(2, 3, 5, 5))
cnn_params = {"index1": {"int": 1}, "index2": {"slice": {"start": 1, "stop": 4}}, "index3": {"slice": {"start": None, "stop": None, "step": 2}}}
case("cnn_index", "cnn_index", cnn_params, [nchw], lambda a: a[:, 1, 1:4, ::2])
case("cnn_index arrays", "cnn_index", {"index1": {"array": {"shape": [2], "values": [0, 2]}}, "index2": {"array": {"shape": [2], "values": [1, 1]}}, "index3": {"array": {"shape": [2], "values": [0, 4]}}}, [nchw], lambda a: a[:, [0, 2], [1, 1], [0, 4]])
case("cnn_index_2", "cnn_index_2", {"pad_h": 1, "height": 3, "pad_w": 1, "width": 3}, [nchw], lambda a: a[:, :, 1:4, 1:4])
def add_at(a, b, idx):
    c = a.copy()
    np.add.at(c, idx, b)
    return c
case("cnn_add_at", "cnn_add_at", cnn_params, [nchw, rng.normal(size=(2, 3, 3))], lambda a, b: add_at(a, b, (slice(None), 1, slice(1, 4), slice(None, None, 2))))
case("cnn_add_at repeated", "cnn_add_at", {"index1": {"array": {"shape": [3], "values": [0, 0, 1]}}, "index2": {"array": {"shape": [3], "values": [2, 2, 2]}}, "index3": {"array": {"shape": [3], "values": [1, 1, 1]}}}, [nchw, np.ones((2, 3))], lambda a, b: add_at(a, b, (slice(None), [0, 0, 1], [2, 2, 2], [1, 1, 1])))
case("one_hot", "one_hot_encoding", {}, [arr([0, 2, 1, 2], np.int64), np.array(3)], lambda a, d: np.eye(d)[a])
case("one_hot 2-d", "one_hot_encoding", {}, [arr([[0, 1], [1, 0]], np.int64), np.array(2)], lambda a, d: np.eye(d)[a])
case("one_hot out of range", "one_hot_encoding", {}, [arr([0, 3], np.int64), np.array(3)], lambda a, d: np.eye(d)[a])
case("clip both", "clip", {"lower_limit": -1.0, "upper_limit": 2.0}, [f64_m], lambda a: np.clip(a, -1.0, 2.0))
case("clip ints float bounds", "clip", {"lower_limit": 0.5, "upper_limit": 2.5}, [i64_v], lambda a: np.clip(a, 0.5, 2.5))
case("clip ints int bounds", "clip", {"lower_limit": 0, "upper_limit": 3}, [i64_v], lambda a: np.clip(a, 0, 3))
case("clip u8", "clip", {"lower_limit": 2, "upper_limit": 100}, [u8_v], lambda a: np.clip(a, 2, 100))
case("clip f32", "clip", {"lower_limit": 0.5, "upper_limit": 1.0}, [f32_v], lambda a: np.clip(a, 0.5, 1.0))
case("clip lower only", "clip", {"lower_limit": 0}, [f64_v], lambda a: np.clip(a, 0, None))
case("clip upper only", "clip", {"upper_limit": 0}, [t3], lambda a: np.clip(a, None, 0))
case("clip nan", "clip", {"lower_limit": 0, "upper_limit": 1}, [special], lambda a: np.clip(a, 0, 1))
case("where", "where", {}, [f64_m, np.array(0.0), f64_m > 0], lambda x, y, c: np.where(c, x, y))
case("where broadcast", "where", {}, [col, row, arr([True, False, True, False], np.bool_)], lambda x, y, c: np.where(c, x, y))
case("where numeric condition", "where", {}, [i64_v, u8_v, i64_v], lambda x, y, c: np.where(c, x, y))
case("where mismatch", "where", {}, [f64_v, row, np.array(True)], lambda x, y, c: np.where(c, x, y))
case("foreach sum", "foreach", {"operation": {"operator": "sum"}}, [t3], lambda a: np.array([np.sum(x) for x in a]))
case("foreach square", "foreach", {"operation": {"operator": "square"}}, [f64_m], lambda a: np.array([np.square(x) for x in a]))
case("foreach max axis", "foreach", {"operation": {"operator": "max", "params": {"axis": 0}}}, [t3], lambda a: np.array([np.max(x, axis=0) for x in a]))


# ---- I. losses: (y, y_pred), mean reductions (PyTorch's MSELoss and CrossEntropyLoss; Keras'
# sparse categorical cross entropy on probabilities, clipped to [1e-7, 1 - 1e-7]) ----
def same_shape(y, p):
    if y.shape != p.shape:
        raise ValueError(f"shapes {y.shape} and {p.shape} differ")

def labels_of(y, classes, ignore=None):
    y = np.asarray(y, np.float64)
    if y.ndim != 1 or np.any(y != np.round(y)):
        raise ValueError("class targets must be 1-D integers")
    keep = y != ignore if ignore is not None else np.ones(len(y), bool)
    if np.any((y[keep] < 0) | (y[keep] >= classes)):
        raise IndexError("class target out of range")
    return y.astype(np.int64), keep

def log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

def ce_terms(y, z, ignore=None):
    lp = log_softmax(z)
    if y.shape == z.shape:
        return -(y * lp).sum(axis=1), np.exp(lp) - y, np.ones(len(z), bool)
    idx, keep = labels_of(y, z.shape[1], ignore)
    if not keep.any():
        raise ValueError("every row ignored")
    grad = np.exp(lp)
    grad[np.arange(len(z)), np.where(keep, idx, 0)] -= keep
    grad[~keep] = 0
    return -lp[np.arange(len(z)), np.where(keep, idx, 0)][keep], grad, keep

def ce_loss(y, z, ignore=None):
    terms, _, keep = ce_terms(y, z, ignore)
    return np.array(terms.sum() / keep.sum(), z.dtype)

def ce_grad(y, z, ignore=None):
    _, grad, keep = ce_terms(y, z, ignore)
    return (grad / keep.sum()).astype(z.dtype)

def accuracy(y, z):
    target = y.argmax(axis=1) if y.shape == z.shape else labels_of(y, z.shape[1])[0]
    return np.array((z.argmax(axis=1) == target).mean(), z.dtype)

def sparse_loss(y, p):
    idx, _ = labels_of(y, p.shape[1])
    picked = np.clip(p[np.arange(len(p)), idx], 1e-7, 1 - 1e-7)
    return np.array(-np.log(picked).mean(), p.dtype)

def sparse_grad(y, p):
    idx, _ = labels_of(y, p.shape[1])
    picked = p[np.arange(len(p)), idx]
    grad = np.zeros_like(p)
    inside = (picked >= 1e-7) & (picked <= 1 - 1e-7)
    grad[np.arange(len(p)), idx] = np.where(inside, -1.0 / (len(p) * picked), 0.0)
    return grad

targets = rng.normal(size=(4, 3))
logits = rng.normal(size=(4, 3))
labels = arr([0, 2, 1, 2], np.int64)
probs = rng.uniform(0.05, 1.0, size=(4, 3))
probs = probs / probs.sum(axis=1, keepdims=True)
case("square_loss", "square_loss", {}, [targets, logits], lambda y, p: (same_shape(y, p), np.array(np.mean((p - y) ** 2)))[1])
case("square_loss f32", "square_loss", {}, [targets.astype(np.float32), logits.astype(np.float32)], lambda y, p: np.array(np.mean((p - y) ** 2), np.float32))
case("square_loss mismatch", "square_loss", {}, [targets, row], lambda y, p: (same_shape(y, p), 0)[1])
case("square_loss_gradient", "square_loss_gradient", {}, [targets, logits], lambda y, p: 2 * (p - y) / p.size)
case("cross_entropy_loss labels", "cross_entropy_loss", {}, [labels, logits], ce_loss)
case("cross_entropy_loss f32", "cross_entropy_loss", {}, [labels, logits.astype(np.float32)], ce_loss)
case("cross_entropy_loss ignore_index", "cross_entropy_loss", {"ignore_index": 2}, [labels, logits], lambda y, z: ce_loss(y, z, 2))
case("cross_entropy_loss probabilities", "cross_entropy_loss", {}, [probs, logits], ce_loss)
case("cross_entropy_loss label out of range", "cross_entropy_loss", {}, [arr([0, 3, 1, 2], np.int64), logits], ce_loss)
case("cross_entropy_loss negative label", "cross_entropy_loss", {}, [arr([0, -1, 1, 2], np.int64), logits], ce_loss)
case("cross_entropy_loss reshaped", "cross_entropy_loss", {"reshape_target": [-1], "reshape_label": [4, 3]}, [labels.reshape(2, 2), logits.reshape(-1)], lambda y, z: ce_loss(y.reshape(-1), z.reshape(4, 3)))
case("cross_entropy_gradient", "cross_entropy_gradient", {}, [labels, logits], ce_grad)
case("cross_entropy_accuracy", "cross_entropy_accuracy", {}, [labels, logits], accuracy)
case("cross_entropy_accuracy one-hot", "cross_entropy_accuracy", {}, [np.eye(3)[labels], logits], accuracy)
case("sparse_categorical loss", "sparse_categorical_cross_entropy_loss", {}, [labels, probs], sparse_loss)
case("sparse_categorical clipped", "sparse_categorical_cross_entropy_loss", {}, [labels, np.eye(3)[labels]], sparse_loss)
case("sparse_categorical gradient", "sparse_categorical_cross_entropy_gradient", {}, [labels, probs], sparse_grad)
case("sparse_categorical accuracy", "sparse_categorical_cross_entropy_accuracy", {}, [labels, probs], accuracy)

# ---- the original's call forms: R.<name>(*inputs, **params) as ravop's Python scripts wrote
# them (reference §2.4 and §2.6). Replayed through ravproto::original::translate: `"True"` and
# `"False"` are booleans, params that are inputs here (`condition`, `weights`) hold constants,
# `foreach` names its op beside that op's params, dtypes use NumPy's names.
def original(name, operator, params, inputs, fn):
    case(name, operator, params, inputs, fn)
    CASES[-1]["original"] = True


mask = (f64_m > 0)
original("original where condition", "where", {"condition": mask.tolist()}, [f64_m, f64_m * 0 - 1],
         lambda a, b: np.where(mask, a, b))
original("original average weights", "average", {"axis": 1, "weights": [1.0, 2.0, 3.0, 4.0]}, [f64_m],
         lambda a: np.average(a, axis=1, weights=[1.0, 2.0, 3.0, 4.0]))
original("original average weights full", "average", {"weights": w3.tolist()}, [t3], lambda a: np.average(a, weights=w3))
original("original bincount weights", "bincount", {"weights": [0.5, 1.0, 2.0], "minlength": 4}, [arr([0, 2, 2], np.int64)],
         lambda a: np.bincount(a, weights=[0.5, 1.0, 2.0], minlength=4))
original("original sum keepdims string", "matrix_sum", {"axis": [0, 2], "keepdims": "True"}, [t3],
         lambda a: np.sum(a, axis=(0, 2), keepdims=True))
original("original mean keepdims false", "mean", {"axis": 1, "keepdims": "False"}, [f64_m], lambda a: np.mean(a, axis=1))
original("original std ddof", "standard_deviation", {"axis": 0, "ddof": 1}, [f64_m], lambda a: np.std(a, axis=0, ddof=1))
original("original variance", "variance", {"axis": 1, "keepdims": "True"}, [f64_m], lambda a: np.var(a, axis=1, keepdims=True))
original("original split camel case", "split", {"numOrSizeSplits": 2, "axis": 1}, [f64_m], lambda a: np.split(a, 2, axis=1))
original("original argmax keepdims", "argmax", {"axis": 1, "keepdims": "True"}, [f64_m], lambda a: np.argmax(a, axis=1, keepdims=True))
original("original unique counts", "unique", {"return_counts": "True"}, [arr([3, 1, 3, 2], np.int64)],
         lambda a: list(np.unique(a, return_counts=True)))
original("original clip", "clip", {"lower_limit": -0.5, "upper_limit": 0.5}, [f64_m], lambda a: np.clip(a, -0.5, 0.5))
original("original pad", "pad", {"sequence": [[1, 2]], "mode": "constant"}, [f64_v], lambda a: np.pad(a, [(1, 2)], mode="constant"))
original("original repeat", "repeat", {"repeats": 2, "axis": 0}, [f64_m], lambda a: np.repeat(a, 2, axis=0))
original("original expand_dims", "expand_dims", {}, [f64_v], lambda a: np.expand_dims(a, 0))
original("original squeeze", "squeeze", {"axis": 1}, [col], lambda a: np.squeeze(a, 1))
original("original transpose", "transpose", {"axes": [2, 0, 1]}, [t3], lambda a: np.transpose(a, (2, 0, 1)))
original("original sort", "sort", {"axis": 0}, [f64_m], lambda a: np.sort(a, axis=0))
original("original reverse", "reverse", {"axis": 1}, [f64_m], lambda a: np.flip(a, axis=1))
original("original percentile", "percentile", {"method": "linear", "keepdims": "False"}, [f64_m, np.array(40.0)], np.percentile)
original("original mode", "mode", {"axis": 0}, [arr([[1, 2], [1, 3], [2, 3]], np.int64)], lambda a: np_mode(a, axis=0))
original("original concatenate", "concatenate", {"axis": 1}, [f64_m, f64_m], lambda a, b: np.concatenate([a, b], axis=1))
original("original stack of one array", "stack", {"axis": 1}, [f64_m], lambda a: np.stack(a, axis=1))
original("original zeros numpy dtype", "zeros", {"dtype": "int64"}, [np.array([2, 2])], lambda s: np.zeros(s, dtype=np.int64))
original("original index string", "index", {"indices": "[1:, ::2]"}, [f64_m], lambda a: a[1:, ::2])
original("original shape index", "shape", {"index": 1}, [f64_m], lambda a: np.array(a.shape[1]))
original("original foreach", "foreach", {"operation": "sum", "axis": 0}, [t3], lambda a: np.stack([np.sum(x, axis=0) for x in a]))


def same_value(a, b, rtol):
    """Structural equality; float data within rtol (NumPy's SIMD paths differ across CPUs)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k], rtol) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y, rtol) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= 1e-12 + rtol * abs(b)
    return a == b


if "--check" in sys.argv:
    committed = json.load(open(OUT))
    if len(committed) != len(CASES):
        sys.exit(f"golden.json has {len(committed)} cases, the script makes {len(CASES)}: regenerate it")
    bad = [c["name"] for c, n in zip(committed, CASES)
           if not same_value(c, n, 1e-3 if "rtol" in n else 1e-6)]
    if bad:
        sys.exit(f"golden.json differs from the script in {len(bad)} cases, e.g. {bad[:5]}: regenerate it")
    print(f"golden.json matches the script ({len(CASES)} cases)", file=sys.stderr)
else:
    json.dump(CASES, open(OUT, "w"), indent=None, separators=(",", ":"))
    errors = sum(1 for c in CASES if "error" in c)
    ops = sorted({c["operation"]["operator"] for c in CASES})
    print(f"wrote {len(CASES)} cases ({errors} expect an error) over {len(ops)} ops to {os.path.relpath(OUT)}", file=sys.stderr)
