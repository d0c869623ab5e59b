#!/usr/bin/env bash
# The grid benchmark (P1/P2/P3/P5 and RSS): builds the release binaries of ravsock and ravpy,
# then runs crates/ravtest/benches/grid.rs, which starts them as processes on loopback.
# Quick look: P1_OPS=10000 P5_MIB=16 bash scripts/bench_grid.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p ravsock -p ravpy
cargo bench -p ravtest --bench grid
