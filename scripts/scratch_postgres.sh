#!/usr/bin/env bash
# A throwaway PostgreSQL server on loopback, for running the database tests on PostgreSQL:
#   url=$(bash scripts/scratch_postgres.sh start DIR)   # prints the server's URL
#   RAVEN_TEST_POSTGRES_URL=$url cargo nextest run -p ravsock -p ravtest --test e2e
#   bash scripts/scratch_postgres.sh stop DIR
# Installs the Debian `postgresql` package when no server binaries are found (needs root).
# The cluster trusts local connections and runs with fsync off: it holds test data only.
set -euo pipefail
action=${1:?usage: scratch_postgres.sh start|stop DIR}
dir=${2:?usage: scratch_postgres.sh start|stop DIR}

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
# PostgreSQL refuses to run as root; root runs it as the package's `postgres` user.
as_owner() {
  if [ "$(id -u)" = 0 ]; then su postgres -s /bin/bash -c "$*"; else bash -c "$*"; fi
}

case "$action" in
  start)
    bin=$(pg_bin)
    if [ -z "$bin" ]; then
      echo "installing postgresql" >&2
      apt-get update -qq >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
      bin=$(pg_bin)
    fi
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    as_owner "'$bin/initdb' -D '$dir/data' -U postgres --auth=trust >'$dir/initdb.log' 2>&1"
    as_owner "'$bin/pg_ctl' -D '$dir/data' -l '$dir/server.log' -w start \
      -o \"-k '$dir' -c listen_addresses=127.0.0.1 -p $port -c fsync=off -c max_connections=300\"" >&2
    echo "postgres://postgres@127.0.0.1:$port/postgres"
    ;;
  stop)
    bin=$(pg_bin)
    as_owner "'$bin/pg_ctl' -D '$dir/data' -m immediate stop" >&2 || true
    ;;
  *)
    echo "usage: scratch_postgres.sh start|stop DIR" >&2
    exit 2
    ;;
esac
