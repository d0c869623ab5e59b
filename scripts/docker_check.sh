#!/usr/bin/env bash
# Checks the container files for real on this machine: validates docker/compose.yaml, builds
# the image's `local` stage (docker/Dockerfile) from binaries built here on a Debian base made
# with debootstrap (no image registry is reachable), starts the whole stack (PostgreSQL, the
# init step, ravsock, two providers) with docker/check/compose.host.yaml putting every
# container on the host network bound to 127.0.0.1, runs the hello_graph tutorial against it
# and tears it down (volumes included). The stack's logs go to target/docker_check/.
# Needs: Debian's docker.io (a running daemon), docker-compose and debootstrap.
# Usage: bash scripts/docker_check.sh [--prebuilt]
#   --prebuilt: use target/release/{ravsock,ravpy,examples/hello_graph} as they are (CI, after
#   its test build) instead of building them.
set -euo pipefail
prebuilt=0
if [ "${1:-}" = --prebuilt ]; then prebuilt=1; fi
cd "$(dirname "$0")/.."
for tool in docker docker-compose debootstrap curl; do
  if ! command -v "$tool" > /dev/null; then
    echo "docker_check: $tool is not installed (apt-get install docker.io docker-compose debootstrap curl)" >&2
    exit 1
  fi
done
if ! docker info > /dev/null 2>&1; then
  echo "docker_check: no Docker daemon answers (start it: dockerd, or systemctl start docker)" >&2
  exit 1
fi
logs=target/docker_check
mkdir -p "$logs"

echo "== docker-compose config (the shipped file)"
docker-compose -f docker/compose.yaml config -q

base=raven-base:bookworm
if ! docker image inspect "$base" > /dev/null 2>&1; then
  echo "== $base: debootstrap --variant=minbase bookworm"
  rootfs=$(mktemp -d)
  debootstrap --variant=minbase --include=libssl3,ca-certificates bookworm "$rootfs/root" \
    "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" > "$logs/debootstrap.log" 2>&1 \
    || { tail -n 20 "$logs/debootstrap.log" >&2; exit 1; }
  tar -C "$rootfs/root" -c . | docker import - "$base" > /dev/null
  rm -rf "$rootfs"
fi

echo "== binaries"
if [ $prebuilt = 0 ]; then
  cargo build --release -p ravsock -p ravpy -p examples --example hello_graph
fi
for binary in ravsock ravpy examples/hello_graph; do
  if [ ! -x "target/release/$binary" ]; then
    echo "docker_check: target/release/$binary is missing (run without --prebuilt to build it)" >&2
    exit 1
  fi
done
mkdir -p docker/bin
cp target/release/ravsock target/release/ravpy docker/bin/

echo "== images"
# Only apt (Debian's package registry) is reached while building, through the host network.
docker build --network host -f docker/Dockerfile --target local --build-arg RUNTIME_BASE="$base" -t raven:local .
if ! docker image inspect raven-postgres:local > /dev/null 2>&1; then
  docker build --network host -f docker/check/postgres.Dockerfile --build-arg BASE="$base" -t raven-postgres:local .
fi

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
RAVEN_CHECK_PORT=$(free_port)
RAVEN_CHECK_PG_PORT=$(free_port)
export RAVEN_CHECK_PORT RAVEN_CHECK_PG_PORT
# The shipped file with the override, less its published ports: they mean nothing on the
# host network, where compose refuses them.
docker-compose -f docker/compose.yaml -f docker/check/compose.host.yaml config \
  | python3 -c 'import sys, yaml
config = yaml.safe_load(sys.stdin)
for service in config["services"].values():
    service.pop("ports", None)
yaml.safe_dump(config, sys.stdout)' > "$logs/compose.yaml"
compose=(docker-compose -p ravencheck -f "$logs/compose.yaml")
stop() {
  "${compose[@]}" logs --no-color > "$logs/stack.log" 2>&1 || true
  "${compose[@]}" down -v --remove-orphans > /dev/null 2>&1 || true
}
trap stop EXIT

echo "== compose up (PostgreSQL on 127.0.0.1:$RAVEN_CHECK_PG_PORT, ravsock on 127.0.0.1:$RAVEN_CHECK_PORT)"
"${compose[@]}" up -d --no-build
url="http://127.0.0.1:$RAVEN_CHECK_PORT"
for _ in $(seq 1 300); do
  if curl -s -o /dev/null "$url/v1/graphs"; then break; fi
  sleep 0.2
done
if ! curl -s -o /dev/null "$url/v1/graphs"; then
  echo "docker_check: ravsock did not answer at $url; the stack's logs are in $logs/stack.log" >&2
  exit 1
fi

echo "== hello_graph against the stack"
# The requester's token stays in a variable (never printed).
token=$("${compose[@]}" run --rm --no-deps -T init cat /tokens/requester)
RAVSOCK_URL=$url RAVSOCK_TOKEN=$token target/release/examples/hello_graph
echo "== ravsock runs as the image's user, not root:"
uid=$("${compose[@]}" exec -T ravsock id -u)
echo "uid $uid"
if [ "$uid" = 0 ]; then echo "docker_check: ravsock runs as root" >&2; exit 1; fi
echo "== the providers in the stack computed it:"
"${compose[@]}" logs --no-color provider1 provider2 | grep -c "subgraph computed" \
  || { echo "docker_check: no provider reported a computed subgraph" >&2; exit 1; }
echo "docker_check: ok"
