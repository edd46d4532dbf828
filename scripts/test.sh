#!/usr/bin/env bash
# The whole test suite, as CI runs it: system packages, a release build (the numeric tests run
# full 1.7 GB models and are too slow in debug), then `swift test -c release`, then the OpenAPI
# contract check against a live server (scripts/service/contract.sh), then the OGC client checks
# (scripts/ogc/clients.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh --test
# A throwaway PostgreSQL on 127.0.0.1 for the job-table tests (they skip, saying why, without it).
if [ -z "${SPECTRALX_TEST_POSTGRES_URL:-}" ]; then
  PGDIR="$(mktemp -d /tmp/spectralx-test-pg.XXXXXX)"
  trap './scripts/postgres/stop.sh "$PGDIR"' EXIT
  # A free loopback port unless one is given.
  port="${SPECTRALX_TEST_POSTGRES_PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
  if url="$(./scripts/postgres/start.sh "$PGDIR" "$port" | tail -1)"; then
    export SPECTRALX_TEST_POSTGRES_URL="$url"
  else
    echo "test: PostgreSQL did not start; the job-table tests will skip" >&2
  fi
fi
swift build -c release
swift test -c release "$@"
# The external contract check (schemathesis against a live server, ~2 min) and the OGC client checks
# (OWSLib and the STAC MLM card against a live server); not when filtering tests.
# Then the fleet drill: three replicas on PostgreSQL behind nginx, kill -9 and SIGTERM of replicas running
# jobs (~2-3 min).
if [ $# -eq 0 ]; then ./scripts/service/contract.sh; ./scripts/ogc/clients.sh; ./scripts/fleet/fleet.py drill; fi
