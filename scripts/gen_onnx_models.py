#!/usr/bin/env python3
"""Tiny ONNX models for `forward_pass` (group H), built with the onnx package, and their
outputs computed with NumPy.

Run: python3 -m venv v && v/bin/pip install onnx==1.23.2 numpy==2.4.6
     v/bin/python scripts/gen_onnx_models.py          (write the models and the fixture)
     v/bin/python scripts/gen_onnx_models.py --check  (compare with the committed ones)
Writes:
- examples/data/tiny_mlp.onnx: a classifier 4 -> 8 (ReLU) -> 3 (softmax) with seeded weights
  and a symbolic batch axis `N` (what the onnx_inference tutorial runs);
- crates/ravexec/tests/it/fixtures/two_outputs.onnx: x (float, N x 3) -> [relu(x), argmax(x, 1)],
  for models with several outputs of different types;
- crates/ravexec/tests/it/fixtures/onnx_reference.json: inputs and NumPy's outputs of both.
"""
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.join(os.path.dirname(__file__), "..")
MLP = os.path.join(ROOT, "examples", "data", "tiny_mlp.onnx")
FIXTURES = os.path.join(ROOT, "crates", "ravexec", "tests", "it", "fixtures")
TWO = os.path.join(FIXTURES, "two_outputs.onnx")
REFERENCE = os.path.join(FIXTURES, "onnx_reference.json")
rng = np.random.default_rng(20261124)


def model_bytes(graph):
    # Fixed opset and IR version: the bytes do not depend on the onnx release's defaults.
    model = helper.make_model(graph, producer_name="raven-gen_onnx_models", opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString(deterministic=True)


def tiny_mlp():
    w1 = rng.normal(0, 0.7, (4, 8)).astype(np.float32)
    b1 = rng.normal(0, 0.1, 8).astype(np.float32)
    w2 = rng.normal(0, 0.7, (8, 3)).astype(np.float32)
    b2 = rng.normal(0, 0.1, 3).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Gemm", ["x", "w1", "b1"], ["h"]),
            helper.make_node("Relu", ["h"], ["a"]),
            helper.make_node("Gemm", ["a", "w2", "b2"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        ],
        "tiny_mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 3])],
        initializer=[numpy_helper.from_array(a, name) for a, name in [(w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2")]],
    )

    def run(x):
        x = x.astype(np.float32)
        logits = np.maximum(x @ w1 + b1, 0) @ w2 + b2
        e = np.exp(logits - logits.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    return model_bytes(graph), run


def two_outputs():
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["relu"]), helper.make_node("ArgMax", ["x"], ["label"], axis=1, keepdims=0)],
        "two_outputs",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
        [
            helper.make_tensor_value_info("relu", TensorProto.FLOAT, ["N", 3]),
            helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]),
        ],
    )
    return model_bytes(graph), lambda x: [np.maximum(x.astype(np.float32), 0), x.argmax(1)]


def arr(a):
    a = np.asarray(a)
    return {"shape": list(a.shape), "data": [float(v) for v in a.reshape(-1)]}


def main():
    mlp, run_mlp = tiny_mlp()
    two, run_two = two_outputs()
    x_mlp = rng.uniform(-2, 2, (6, 4))
    # A batch of one as well: plans are compiled per shape.
    x_one = rng.uniform(-2, 2, (1, 4))
    x_two = np.array([[0.5, -1.0, 2.0], [-3.0, 4.0, 1.0]])
    reference = {
        "generator": f"scripts/gen_onnx_models.py with onnx {onnx.__version__}, numpy {np.__version__}",
        "tiny_mlp": [{"x": arr(x), "y": arr(run_mlp(x))} for x in (x_mlp, x_one)],
        "two_outputs": {"x": arr(x_two), "y": [arr(y) for y in run_two(x_two)]},
    }
    text = json.dumps(reference, indent=1) + "\n"
    outputs = [(MLP, mlp), (TWO, two), (REFERENCE, text.encode())]
    if "--check" in sys.argv:
        stale = [path for path, data in outputs if open(path, "rb").read() != data]
        if stale:
            sys.exit(f"out of date (re-run scripts/gen_onnx_models.py): {', '.join(stale)}")
        print("ONNX models and onnx_reference.json match the script")
        return
    for path, data in outputs:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    print(f"wrote {', '.join(path for path, _ in outputs)}")


main()
