#!/usr/bin/env bash
# Container smoke test of the image as shipped: builds the two base images offline when they are
# missing (../shared/container/make-base-images.sh), builds the image, starts it on a non-default port,
# waits for the Dockerfile HEALTHCHECK (`spectralx healthcheck`) to report healthy, segments the demo
# tile, stops the container with SIGTERM and reports the image size and the timings.
#   deploy/container/smoke.sh            (needs a running dockerd; on this machine:
#                                         dockerd --bridge=none --iptables=false &  — hence --network host)
# Environment: SMOKE_PORT (default 18931), SMOKE_IMAGE (default spectralx:smoke), SMOKE_SKIP_BUILD=1 to
# reuse an existing image, SPECTRALX_SHARED (default ../shared).
set -euo pipefail
cd "$(dirname "$0")/../.."
port="${SMOKE_PORT:-18931}"
image="${SMOKE_IMAGE:-spectralx:smoke}"
shared="${SPECTRALX_SHARED:-../shared}"
name="spectralx-smoke-$$"
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
work="$(mktemp -d)"
cleanup() { docker rm -f -v "$name" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT

t0=$(now)
if ! docker image inspect debian:bookworm-slim swift:6.1-bookworm >/dev/null 2>&1; then
  [ -x "$shared/container/make-base-images.sh" ] || { echo "smoke: base images missing and no $shared/container/make-base-images.sh" >&2; exit 1; }
  "$shared/container/make-base-images.sh" > "$work/base.log" 2>&1 || { tail -20 "$work/base.log"; exit 1; }
fi
t1=$(now)
if [ "${SMOKE_SKIP_BUILD:-0}" != 1 ]; then
  docker build --network host -t "$image" . > "$work/build.log" 2>&1 || { tail -30 "$work/build.log"; echo "smoke: image build failed" >&2; exit 1; }
fi
t2=$(now)
size=$(docker image inspect -f '{{.Size}}' "$image")
# As shipped: only the port differs from the defaults. --network host because this dockerd has no bridge.
docker run -d --name "$name" --network host -e SPECTRALX_PORT="$port" "$image" >/dev/null
t3=$(now)
status=""
for _ in $(seq 1 600); do
  status=$(docker inspect -f '{{.State.Health.Status}}' "$name" 2>/dev/null || echo gone)
  [ "$status" = healthy ] && break
  [ "$(docker inspect -f '{{.State.Running}}' "$name")" = true ] || { docker logs "$name" | tail -20; echo "smoke: container exited" >&2; exit 1; }
  sleep 1
done
[ "$status" = healthy ] || { docker logs "$name" | tail -20; echo "smoke: not healthy after 600 s (status $status)" >&2; exit 1; }
t4=$(now)
probes=$(docker inspect -f '{{range .State.Health.Log}}{{.ExitCode}} {{printf "%q" .Output}}{{"\n"}}{{end}}' "$name")
probe=$(echo "$probes" | grep -v '^$' | tail -1)
failed_probes=$(echo "$probes" | grep -c '^1 ' || true)
docker cp "$name:/var/lib/spectralx/cache/demo-tile.tif" "$work/tile.tif"
read -r code total < <(curl -s -o "$work/labels.tif" -w '%{http_code} %{time_total}\n' -H 'Content-Type: image/tiff' \
  --data-binary @"$work/tile.tif" "http://127.0.0.1:$port/v1/domains/demo/segment")
[ "$code" = 200 ] || { echo "smoke: segment answered $code: $(head -c 300 "$work/labels.tif")" >&2; exit 1; }
python3 - "$work/labels.tif" <<'PY' || true
import sys
try:
    import tifffile, numpy as np
    a = tifffile.imread(sys.argv[1]); print(f"labels: {a.shape} {a.dtype}, classes present {sorted(np.unique(a).tolist())}")
except Exception as e:
    print(f"labels: {e}")
PY
t5=$(now)
docker kill --signal TERM "$name" >/dev/null
exit_code=$(docker wait "$name")
t6=$(now)
docker logs "$name" 2>&1 | tail -3 | sed 's/^/  log: /'
echo "image $image: $(awk -v s="$size" 'BEGIN { printf "%.0f MB", s / 1e6 }') ($(docker image inspect -f '{{.Os}}/{{.Architecture}}' "$image"))"
echo "timings: base images $(secs "$t0" "$t1") s, image build $(secs "$t1" "$t2") s, start → healthy $(secs "$t3" "$t4") s, segment ${total} s (demo tile, first request), SIGTERM → exit $(secs "$t5" "$t6") s"
echo "healthcheck on port $port (last probe): exit $probe; probes failing during start-up: $failed_probes"
echo "exit status after SIGTERM: $exit_code"
[ "$exit_code" = 0 ] && echo "smoke: ok"
