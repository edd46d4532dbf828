#!/usr/bin/env bash
# Smoke test of `spectralx serve` configured only through SPECTRALX_* variables: readiness, one
# segmentation, a JSON error, metrics, then SIGTERM with a request in flight (it must still be answered
# and the process must exit 0).
#   scripts/service/smoke.sh [path/to/spectralx]      (default .build/release/spectralx; demo store in $SPECTRALX_CACHE)
set -euo pipefail
bin="${1:-.build/release/spectralx}"
port="${SPECTRALX_PORT:-18181}"
log="$(mktemp)"
SPECTRALX_PORT="$port" SPECTRALX_MAX_BATCH=2 SPECTRALX_QUEUE_LENGTH=8 SPECTRALX_ADMIN_TOKEN=smoke "$bin" serve >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 180); do
  curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  kill -0 $pid 2>/dev/null || { cat "$log"; echo "smoke: server exited"; exit 1; }
  sleep 1
done
url="http://127.0.0.1:$port"
tile="$(grep -o '@[^ ]*demo-tile.tif' "$log" | head -1 | cut -c2-)"
[ -n "$tile" ] || tile="${SPECTRALX_CACHE:-$HOME/.cache/spectralx}/demo-tile.tif"
curl -fs "$url/healthz" | grep -q '"ok"'
curl -fs "$url/v1/domains" | grep -q '"name":"demo"'
test "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$url/v1/domains/demo")" = 401
test "$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: text/plain' --data x "$url/v1/domains/demo/segment")" = 415
curl -fs -H 'Content-Type: image/tiff' --data-binary @"$tile" -D - "$url/v1/domains/demo/segment?output=json" -o /dev/null | grep -i '^server-timing'
curl -fs "$url/metrics" | grep -q spectralx_batch_size_count
# SIGTERM while a request runs: it is answered, then the process exits 0.
curl -s -o /dev/null -w 'in-flight during SIGTERM: %{http_code}\n' -H 'Content-Type: image/tiff' --data-binary @"$tile" \
     "$url/v1/domains/demo/segment" > "$log.inflight" &
sleep 1
kill -TERM $pid
wait $pid; status=$?
wait
cat "$log.inflight"
grep -q ': 200$' "$log.inflight"; rm -f "$log.inflight"
test $status -eq 0 && echo "smoke: ok"
