#!/usr/bin/env bash
# Checks deploy/nginx/spectralx.conf as shipped: `nginx -t` with a self-signed certificate substituted
# for the certificate paths, then (with a server running) an upload through nginx over TLS + HTTP/2.
#   deploy/nginx/check.sh [UPSTREAM_PORT] [TILE]
#     UPSTREAM_PORT: a running `spectralx serve` (default 8080); "-" only runs nginx -t.
#     TILE: a GeoTIFF for the domain "demo" (default ~/.cache/spectralx/demo-tile.tif).
# Needs nginx and openssl on PATH; nginx listens on an unprivileged port (18443) in a scratch prefix.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
upstream="${1:-8080}"
tile="${2:-$HOME/.cache/spectralx/demo-tile.tif}"
listen="${SPECTRALX_NGINX_PORT:-18443}"
work="$(mktemp -d)"
pid=""
cleanup() { if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi; rm -rf "$work"; }
trap cleanup EXIT
mkdir -p "$work/logs" "$work/tmp"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost \
  -keyout "$work/privkey.pem" -out "$work/fullchain.pem" >/dev/null 2>&1
# The shipped file with only deployment-specific values substituted: certificate paths, the listen
# port (unprivileged), the upstream port.
sed -e "s#/etc/ssl/spectralx/fullchain.pem#$work/fullchain.pem#" \
    -e "s#/etc/ssl/spectralx/privkey.pem#$work/privkey.pem#" \
    -e "s#listen 443 ssl#listen 127.0.0.1:$listen ssl#" \
    -e "s#server 127.0.0.1:8080;#server 127.0.0.1:${upstream/-/8080};#" \
    "$here/spectralx.conf" > "$work/spectralx.conf"
cat > "$work/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/logs/error.log warn;
events { worker_connections 64; }
http {
    access_log $work/logs/access.log;
    client_body_temp_path $work/tmp/body;
    proxy_temp_path $work/tmp/proxy;
    fastcgi_temp_path $work/tmp/fastcgi;
    uwsgi_temp_path $work/tmp/uwsgi;
    scgi_temp_path $work/tmp/scgi;
    include $work/spectralx.conf;
}
CONF
echo "nginx: $(nginx -v 2>&1)"
nginx -t -p "$work" -c "$work/nginx.conf"
[ "$upstream" = "-" ] && exit 0
[ -f "$tile" ] || { echo "check: no tile at $tile" >&2; exit 1; }
nginx -p "$work" -c "$work/nginx.conf" -g 'daemon off;' &
pid=$!
for _ in $(seq 1 50); do curl -ks -o /dev/null "https://127.0.0.1:$listen/healthz" && break; sleep 0.1; done
out="$(curl -ks --http2 -o "$work/labels.tif" -w '%{http_code} %{http_version} %{size_upload} %{time_total}' \
  -H 'Content-Type: image/tiff' --data-binary @"$tile" "https://127.0.0.1:$listen/v1/domains/demo/segment")"
read -r code version up total <<<"$out"
echo "upload through nginx: HTTP/$version $code, $up bytes up, $(stat -c %s "$work/labels.tif") bytes down, ${total}s"
err="$(curl -ks --http2 -H 'Content-Type: text/plain' --data x "https://127.0.0.1:$listen/v1/domains/demo/segment")"
echo "JSON error through nginx: $err"
test "$code" = 200 && echo "$err" | grep -q '"unsupported_media_type"' && echo "nginx check: ok"
