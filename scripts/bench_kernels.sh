#!/usr/bin/env bash
# Runs the Raven kernel benchmark and the numpy equivalent on this machine, one after the
# other, and prints them side by side. Needs numpy (pip install numpy).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench -p ravexec --bench kernels --quiet 2>/dev/null > /tmp/raven_bench.txt
python3 scripts/bench_numpy.py > /tmp/numpy_bench.txt
paste -d'|' /tmp/raven_bench.txt /tmp/numpy_bench.txt | awk -F'|' 'NR==1 {printf "%-28s %14s %14s %8s\n", "benchmark", "raven", "numpy", "ratio"; next}
{ r=$1; n=$2; split(r, a, "  +"); name=substr(r, 1, 28); gsub(/ +$/, "", name);
  match(r, /[0-9.]+ [A-Za-z\/]+$/); rv=substr(r, RSTART, RLENGTH);
  match(n, /[0-9.]+ [A-Za-z\/]+$/); nv=substr(n, RSTART, RLENGTH);
  split(rv, x, " "); split(nv, y, " ");
  printf "%-28s %14s %14s %7.2fx\n", name, rv, nv, x[1]/y[1] }'
