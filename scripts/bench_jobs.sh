#!/usr/bin/env bash
# The jobs benchmark (10,000 slices end to end on 2 providers, beside Dask's client.map): builds
# the release binaries of ravsock and ravpy, puts dask[distributed] in a virtual environment
# (target/dask-venv) when pip can reach PyPI, then runs crates/ravtest/benches/jobs.rs.
# Sizes: JOB_SLICES (10000), JOB_RUNS (3).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p ravsock -p ravpy
venv=target/dask-venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" && "$venv/bin/pip" install -q "dask[distributed]" || echo "no Dask: the benchmark runs without its anchor" >&2
fi
DASK_PYTHON=$("$venv/bin/python" -c "import sys, dask.distributed; print(sys.executable)" 2>/dev/null || true)
export DASK_PYTHON
cargo bench -p ravtest --bench jobs
