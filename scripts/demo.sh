#!/usr/bin/env bash
# The main job on a fresh machine: builds the workspace, starts ravsock (SQLite and ravftp in a
# temporary data directory) and two providers, runs every grid tutorial against them, and stops
# everything. Usage: bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p ravsock -p ravpy
cargo build --release -q -p examples --examples
bin=target/release
data=$(mktemp -d)
port=${RAVSOCK_PORT:-9999}
export RAVSOCK_URL="http://127.0.0.1:$port"
requester=$($bin/ravsock --data-dir "$data" token create --name demo --role requester)
provider=$($bin/ravsock --data-dir "$data" token create --name demo-provider --role provider)
$bin/ravsock --data-dir "$data" --bind "127.0.0.1:$port" --ftp-bind 127.0.0.1:0 > "$data/ravsock.log" 2>&1 &
server=$!
trap 'kill $server ${worker:-} ${worker2:-} 2>/dev/null; wait 2>/dev/null; rm -rf "$data"' EXIT
# Wait until ravsock answers (it rejects the anonymous call with 401 once it is up).
for _ in $(seq 1 100); do
  if curl -s -o /dev/null "$RAVSOCK_URL/v1/graphs"; then break; fi
  sleep 0.1
done
$bin/ravpy participate --server "$RAVSOCK_URL" --token "$provider" > "$data/ravpy-1.log" 2>&1 &
worker=$!
$bin/ravpy participate --server "$RAVSOCK_URL" --token "$provider" > "$data/ravpy-2.log" 2>&1 &
worker2=$!
export RAVSOCK_TOKEN=$requester
for tutorial in hello_graph tensor_tour linear_regression sorter throughput; do
  echo "== $tutorial"
  $bin/examples/$tutorial
done
$bin/ravpy list-graphs --server "$RAVSOCK_URL" --token "$provider"
echo "logs were in $data (removed on exit)"
