"""Comparison of a committed JSON fixture with what its generator computes now, shared by the
fixture scripts' `--check`.

Floats are compared to 1e-9 relative: BLAS kernels (OpenBLAS picks its kernel by CPU and its
thread count by machine) change the last bits of scikit-learn's and NumPy's results from one
machine to the next, while the data, shapes, counts and labels must match exactly.
"""
import math


def close(a, b):
    """Whether two parsed JSON values agree (floats to 1e-9 relative, all else exactly)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b
