#!/usr/bin/env bash
# Installs what spectralx needs on a Debian/Ubuntu machine: the system libraries it links (OpenBLAS,
# OpenSSL, zlib; libpq for the shared job state of a fleet) and, with --test, PostgreSQL (a throwaway
# cluster for the job-table tests, scripts/postgres/start.sh), nginx (the fleet drill's round-robin front) and the Python packages some tests use as independent
# reference implementations (tifffile/rasterio read and write GeoTIFFs, rio-cogeo validates the
# Cloud-Optimized outputs, numpy, an OpenAPI validator, schemathesis for the contract check against
# a live server, jsonschema + pystac for the STAC MLM cards, OWSLib as an OGC API - Processes client).
# Idempotent: installs only what is missing.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
pkgs=(libopenblas-dev libssl-dev zlib1g-dev libpq-dev)
if [ "${1:-}" = "--test" ]; then pkgs+=(postgresql nginx); fi
for pkg in "${pkgs[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ "${1:-}" = "--test" ]; then
  # Headless Chromium for the viewer check (scripts/ogc/viewer_check.py skips with its reason without it).
  browser=()
  for pkg in chromium chromium-driver; do dpkg -s "$pkg" >/dev/null 2>&1 || browser+=("$pkg"); done
  if [ ${#browser[@]} -gt 0 ]; then
    echo "setup: installing ${browser[*]}"
    { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${browser[@]}" >/dev/null; } \
      || echo "setup: warning: could not install ${browser[*]}; the viewer check will skip"
  fi
  if command -v python3 >/dev/null 2>&1; then
    python3 - <<'PY' 2>/dev/null || { echo "setup: installing Python test dependencies"; python3 -m pip install -q --disable-pip-version-check numpy tifffile imagecodecs rasterio rio-cogeo openapi-spec-validator schemathesis jsonschema pystac owslib selenium || echo "setup: warning: pip install failed; tests that need these modules will skip"; }
import numpy, tifffile, imagecodecs, rasterio, rio_cogeo, openapi_spec_validator, schemathesis, jsonschema, pystac, owslib, selenium
PY
  fi
fi

# moto's S3 server mode backs the S3 blob store tests on loopback (they skip with the reason without it).
if [ "${1:-}" = "--test" ] && command -v python3 >/dev/null 2>&1; then
  python3 -c "import moto.server" 2>/dev/null || python3 -m pip install -q --disable-pip-version-check 'moto[server]' \
    || echo "setup: warning: pip install moto[server] failed; the S3 blob store tests will skip"
fi

command -v swift >/dev/null 2>&1 || { echo "setup: the Swift toolchain (6.1 or newer) is not on PATH" >&2; exit 1; }
