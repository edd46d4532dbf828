#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster for tests and local fleets: Debian's `postgresql` package (installed
# when missing), run as the `postgres` user, data in DIR (default: a new temporary directory), listening on
# 127.0.0.1:PORT only (default 54329), trust authentication for loopback, database `spectralx`.
# Prints the connection URL on stdout (the last line); `scripts/postgres/stop.sh DIR` stops it.
#   usage: scripts/postgres/start.sh [DIR] [PORT]
set -euo pipefail
DIR="${1:-$(mktemp -d /tmp/spectralx-pg.XXXXXX)}"
PORT="${2:-54329}"
SUDO=""; if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  echo "postgres: installing postgresql" >&2
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
fi
BIN="$(dirname "$(ls -d /usr/lib/postgresql/*/bin/pg_ctl | sort -V | tail -1)")"
run_pg() { if [ "$(id -u)" -eq 0 ]; then su postgres -s /bin/bash -c "$*"; else "$@"; fi; }
mkdir -p "$DIR"
if [ "$(id -u)" -eq 0 ]; then chown postgres "$DIR"; fi
if [ ! -f "$DIR/PG_VERSION" ]; then
  run_pg "$BIN/initdb -D '$DIR' -A trust -U postgres --no-sync" >/dev/null
fi
run_pg "$BIN/pg_ctl -D '$DIR' -l '$DIR/server.log' -w -o \"-h 127.0.0.1 -p $PORT -k '$DIR' -c fsync=off\" start" >/dev/null
run_pg "$BIN/psql -h 127.0.0.1 -p $PORT -U postgres -tAc \"SELECT 1 FROM pg_database WHERE datname = 'spectralx'\"" | grep -q 1 \
  || run_pg "$BIN/createdb -h 127.0.0.1 -p $PORT -U postgres spectralx"
echo "postgres://postgres@127.0.0.1:$PORT/spectralx"
