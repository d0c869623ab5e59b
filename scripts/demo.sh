#!/usr/bin/env bash
# The main job on a fresh machine: builds the workspace, starts ravsock (SQLite and ravftp in a
# temporary data directory) and two providers, runs every grid tutorial against them, and stops
# everything; then a topic (examples/topic.rs) answered in rounds by two worker nodes
# (`ravpy run` with a [[topics]] entry), each asking its own model server (a file served by
# python3 -m http.server). Usage: bash scripts/demo.sh
# ravsock runs with --accounting on: the requester is credited units first, its graphs are
# paid from escrow and the topic's truth pays the workers; at the end a worker's earnings and
# `ravsock ledger check`.
# Every process is set up the original RDF's way: a `.env` file in its own working directory
# with RAVENVERSE_URL, RAVENVERSE_FTP_URL and TOKEN (ravop and ravpy read them as aliases of
# RAVSOCK_URL, RAVSOCK_FTP_HOST and RAVSOCK_TOKEN), so no token is on a command line (`ps`
# shows those) and none is printed.
# With RAVEN_HE=1 the federated tutorial runs encrypted (tfhe: about 11 more minutes of build).
# With RAVEN_ONNX=1 the providers run ONNX models and the onnx_inference tutorial runs too
# (tract: about 5 more minutes of build).
set -euo pipefail
cd "$(dirname "$0")/.."
# Today's names in the shell would win over the .env files below.
unset RAVSOCK_URL RAVSOCK_TOKEN RAVSOCK_FTP_HOST RAVENVERSE_URL RAVENVERSE_FTP_URL RAVENVERSE_FTP_HOST TOKEN
wanted=()
if [ "${RAVEN_HE:-0}" = 1 ]; then wanted+=(ravsock/he ravpy/he examples/he); fi
if [ "${RAVEN_ONNX:-0}" = 1 ]; then wanted+=(ravpy/onnx); fi
features=()
if [ ${#wanted[@]} -gt 0 ]; then features=(--features "$(IFS=,; echo "${wanted[*]}")"); fi
cargo build --release -p ravsock -p ravpy -p examples --bins --examples "${features[@]}"
root=$(pwd)
bin=$root/target/release
data=$(mktemp -d)
port=${RAVSOCK_PORT:-9999}
url="http://127.0.0.1:$port"
# A working directory with an original-style .env for one account (no output: tokens stay
# in files readable by this user only).
account_dir() { # name role
  local dir="$data/$1"
  mkdir -p "$dir"
  local token
  token=$($bin/ravsock --data-dir "$data/server" token create --name "$1" --role "$2")
  (umask 077; printf 'RAVENVERSE_URL=%s\nRAVENVERSE_FTP_URL=127.0.0.1\nTOKEN=%s\n' "$url" "$token" > "$dir/.env"
   printf '%s\n' "$token" > "$dir/token")
  echo "$dir"
}
mkdir -p "$data/server"
requester=$(account_dir demo requester)
provider=$(account_dir demo-provider provider)
# Units for the requester's graphs and topic rewards, issued by the operator (the key makes the
# credit once however often it is run).
$bin/ravsock --data-dir "$data/server" account credit --name demo --amount 1000000 --key demo-grant
# Accounting on: the topic's ground truth pays its workers from the requester's balance.
$bin/ravsock --data-dir "$data/server" --bind "127.0.0.1:$port" --ftp-bind 127.0.0.1:0 --accounting on > "$data/ravsock.log" 2>&1 &
server=$!
others=() # the topic stage's model servers and worker nodes
trap 'kill $server ${worker:-} ${worker2:-} "${others[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$data"' EXIT
# Wait until ravsock answers (it rejects the anonymous call with 401 once it is up).
for _ in $(seq 1 100); do
  if curl -s -o /dev/null "$url/v1/graphs"; then break; fi
  sleep 0.1
done
# Two providers on the same account, each reading the .env of its working directory.
(cd "$provider" && exec $bin/ravpy participate) > "$data/ravpy-1.log" 2>&1 &
worker=$!
(cd "$provider" && exec $bin/ravpy participate) > "$data/ravpy-2.log" 2>&1 &
worker2=$!
tutorials=(hello_graph tensor_tour linear_regression sorter throughput train_mlp knn_classifier kmeans)
if [ "${RAVEN_ONNX:-0}" = 1 ]; then tutorials+=(onnx_inference); fi
cd "$requester"
for tutorial in "${tutorials[@]}"; do
  echo "== $tutorial"
  $bin/examples/$tutorial
done
echo "== dcp_map"
$bin/examples/dcp_map
echo "== open_job"
# A job of the compute group lab: the first job naming the group sets its secret, then a
# provider joins with it (the two providers above are not in the group and get none of it).
lab_secret=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
LAB_SECRET=$lab_secret $bin/examples/open_job > "$data/open_job.log" 2>&1 &
tutorial=$!
for _ in $(seq 1 3000); do
  if grep -q "is open" "$data/open_job.log" || ! kill -0 $tutorial 2>/dev/null; then break; fi
  sleep 0.1
done
(cd "$provider" && RAVPY_GROUPS="lab:$lab_secret" exec $bin/ravpy participate) > "$data/ravpy-lab.log" 2>&1 &
others+=($!)
(cd "$provider" && RAVPY_GROUPS="lab:$lab_secret" $bin/ravpy list-jobs)
if ! wait $tutorial; then
  echo "the open_job tutorial failed; its log, then the group provider's:" >&2
  cat "$data/open_job.log" "$data/ravpy-lab.log" >&2
  exit 1
fi
cat "$data/open_job.log"
echo "== federated_analytics"
$bin/examples/federated_analytics > "$data/federated.log" 2>&1 &
tutorial=$!
# Prints the id a backgrounded tutorial opened ("graph 3 is open..."), waiting up to 5 minutes
# (a machine busy building can be slow); one that ends or never opens it is reported with its
# log instead of a ravpy call without an id.
opened() { # log word pid
  for _ in $(seq 1 3000); do
    if grep -q "is open" "$1" || ! kill -0 "$3" 2>/dev/null; then break; fi
    sleep 0.1
  done
  local id
  id=$(sed -n "s/^$2 \\([0-9]*\\) is open.*/\\1/p" "$1")
  if [ -z "$id" ]; then
    echo "the tutorial did not open its $2; its log:" >&2
    cat "$1" >&2
    return 1
  fi
  echo "$id"
}
graph=$(opened "$data/federated.log" graph $tutorial)
(cd "$provider" && $bin/ravpy list-graphs --approach federated)
for silo in a b c; do
  # Each provider account contributes once per query: one account per silo.
  silo_dir=$(account_dir "clinic-$silo" provider)
  (cd "$silo_dir" && $bin/ravpy federated --graph "$graph" --file "$root/examples/data/clinic-$silo.csv")
done
wait $tutorial
cat "$data/federated.log"
(cd "$provider" && $bin/ravpy list-graphs)
echo "== topic"
$bin/examples/topic > "$data/topic.log" 2>&1 &
tutorial=$!
topic=$(opened "$data/topic.log" topic $tutorial)
value=41.5
for w in a b; do
  dir=$(account_dir "topic-$w" provider)
  # The worker's model server: a file with its current estimate, served over HTTP.
  mkdir -p "$dir/model"
  echo "$value" > "$dir/model/estimate"
  value=42.5
  (cd "$dir/model" && exec python3 -u -m http.server 0 --bind 127.0.0.1) > "$data/model-$w.log" 2>&1 &
  others+=($!)
  for _ in $(seq 1 100); do grep -q "Serving HTTP" "$data/model-$w.log" && break; sleep 0.1; done
  model_port=$(sed -n 's/.* port \([0-9]*\) .*/\1/p' "$data/model-$w.log")
  cat > "$dir/worker.toml" <<TOML
server = "$url"
token_file = "token"
[[topics]]
name = "price"
topic = $topic
inference_url = "http://127.0.0.1:$model_port/estimate"
TOML
  (cd "$dir" && exec $bin/ravpy run --config worker.toml) > "$data/topic-$w.log" 2>&1 &
  others+=($!)
done
if ! wait $tutorial; then
  echo "the topic tutorial failed; its log, then the workers':" >&2
  cat "$data/topic.log" "$data"/topic-?.log >&2
  exit 1
fi
cat "$data/topic.log"
echo "== earnings of topic-a, and the ledger"
(cd "$data/topic-a" && $bin/ravpy earnings)
$bin/ravsock --data-dir "$data/server" ledger check
echo "logs were in $data (removed on exit)"
