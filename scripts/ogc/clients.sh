#!/usr/bin/env bash
# OGC client checks against a live `spectralx serve` (jobs enabled) on a tiny synthetic store (one C=4, K=3
# domain named demo, as scripts/service/contract.sh builds it): OWSLib drives OGC API - Processes
# (scripts/ogc/owslib_check.py) and the demo domain's STAC MLM card is validated offline
# (scripts/ogc/check_stac.py), and the viewer page runs in headless Chromium (scripts/ogc/viewer_check.py).
# Loopback only; nothing is downloaded.
#   scripts/ogc/clients.sh [path/to/spectralx] [existing store dir]   (default .build/release/spectralx, a new store)
# Each check prints "skip: <reason>" and passes when its Python package is missing (scripts/setup.sh --test).
set -euo pipefail
cd "$(dirname "$0")/../.."
bin="${1:-.build/release/spectralx}"
[ -x "$bin" ] || { echo "ogc clients: skipped: $bin is not built"; exit 0; }
command -v python3 >/dev/null 2>&1 || { echo "ogc clients: skipped: python3 is not installed"; exit 0; }
work="$(mktemp -d)"
pid=""
cleanup() { if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi; rm -rf "$work"; }
trap cleanup EXIT
models="${2:-}"
if [ -z "$models" ]; then
  models="$work/models"
  "$bin" synth -o "$models" --domain demo --bands 4 --classes 3 >/dev/null
fi
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$bin" serve --models "$models" --port "$port" --jobs-dir "$work/jobs" --max-batch 2 --queue-delay-ms 0 \
  --log-level error > "$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 240); do
  curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/server.log"; echo "ogc clients: server exited" >&2; exit 1; }
  sleep 0.5
done
python3 scripts/ogc/owslib_check.py "http://127.0.0.1:$port" demo
curl -fs "http://127.0.0.1:$port/v1/domains/demo/stac" > "$work/demo-stac.json"
python3 scripts/ogc/check_stac.py "$work/demo-stac.json"
# The viewer in headless Chromium; the screenshot is kept as a CI artefact (SPECTRALX_ARTIFACTS, default .build/artifacts).
artifacts="${SPECTRALX_ARTIFACTS:-.build/artifacts}"
mkdir -p "$artifacts"
python3 scripts/ogc/viewer_check.py "http://127.0.0.1:$port" "$artifacts"
echo "ogc clients: ok"
