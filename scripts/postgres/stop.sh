#!/usr/bin/env bash
# Stops a cluster started by scripts/postgres/start.sh and removes its directory (`--keep`: only stops it).
#   usage: scripts/postgres/stop.sh DIR [--keep]
set -euo pipefail
DIR="$1"
BIN="$(dirname "$(ls -d /usr/lib/postgresql/*/bin/pg_ctl | sort -V | tail -1)")"
if [ "$(id -u)" -eq 0 ]; then su postgres -s /bin/bash -c "$BIN/pg_ctl -D '$DIR' -m fast -w stop" >/dev/null || true
else "$BIN/pg_ctl" -D "$DIR" -m fast -w stop >/dev/null || true; fi
if [ "${2:-}" != "--keep" ]; then rm -rf "$DIR"; fi
