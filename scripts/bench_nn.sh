#!/usr/bin/env bash
# Runs the deep-learning kernel benchmark (conv2d and dense, forward + backward, f32) in Raven,
# then the same shapes in PyTorch CPU and NumPy, one after the other on this machine.
# PYTHON names an interpreter with torch (and numpy) installed; default python3. A missing
# torch or numpy is reported and skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
cargo bench -p ravexec --bench nn --quiet 2>/dev/null | sed 's/^/raven /'
for baseline in torch numpy; do
  if "$python" -c "import $baseline" 2>/dev/null; then
    "$python" "scripts/bench_nn_$baseline.py"
  else
    echo "$baseline: not installed for $python, skipped"
  fi
done
