#!/usr/bin/env bash
# The main job on a fresh machine: builds the workspace, starts ravsock (SQLite and ravftp in a
# temporary data directory) and two providers, runs every grid tutorial against them, and stops
# everything. Usage: bash scripts/demo.sh
# With RAVEN_HE=1 the federated tutorial runs encrypted (tfhe: about 11 more minutes of build).
# With RAVEN_ONNX=1 the providers run ONNX models and the onnx_inference tutorial runs too
# (tract: about 5 more minutes of build).
set -euo pipefail
cd "$(dirname "$0")/.."
wanted=()
if [ "${RAVEN_HE:-0}" = 1 ]; then wanted+=(ravsock/he ravpy/he examples/he); fi
if [ "${RAVEN_ONNX:-0}" = 1 ]; then wanted+=(ravpy/onnx); fi
features=()
if [ ${#wanted[@]} -gt 0 ]; then features=(--features "$(IFS=,; echo "${wanted[*]}")"); fi
cargo build --release -q -p ravsock -p ravpy -p examples --bins --examples "${features[@]}"
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
tutorials=(hello_graph tensor_tour linear_regression sorter throughput train_mlp knn_classifier kmeans)
if [ "${RAVEN_ONNX:-0}" = 1 ]; then tutorials+=(onnx_inference); fi
for tutorial in "${tutorials[@]}"; do
  echo "== $tutorial"
  $bin/examples/$tutorial
done
echo "== federated_analytics"
$bin/examples/federated_analytics > "$data/federated.log" 2>&1 &
tutorial=$!
for _ in $(seq 1 600); do
  if grep -q "is open" "$data/federated.log"; then break; fi
  sleep 0.1
done
graph=$(sed -n 's/^graph \([0-9]*\) is open.*/\1/p' "$data/federated.log")
$bin/ravpy list-graphs --server "$RAVSOCK_URL" --token "$provider" --approach federated
for silo in a b c; do
  # Each provider account contributes once per query: one account per silo.
  silo_token=$($bin/ravsock --data-dir "$data" token create --name "clinic-$silo" --role provider)
  $bin/ravpy federated --server "$RAVSOCK_URL" --token "$silo_token" --graph "$graph" --file "examples/data/clinic-$silo.csv"
done
wait $tutorial
cat "$data/federated.log"
$bin/ravpy list-graphs --server "$RAVSOCK_URL" --token "$provider"
echo "logs were in $data (removed on exit)"
