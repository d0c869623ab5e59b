#!/usr/bin/env bash
# The swarm benchmark (crates/ravtest/benches/swarm.rs): builds the release binaries, then runs
# ravsock as a process with 1,000 simulated providers (real socket.io connections, real
# kernels) from the benchmark's process: join time, RSS, idle heartbeat CPU, P1 with 2 and
# with 1,000 providers, and the reconnection after a SIGKILL of ravsock.
# Quick look: SWARM_PROVIDERS=100 P1_OPS=10000 IDLE_SECS=5 bash scripts/bench_swarm.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# Two sockets per provider (one in each process), and ravsock's files: well over 1,024.
ulimit -n "$(ulimit -Hn)"
cargo build --release -p ravsock
cargo bench -p ravtest --bench swarm
