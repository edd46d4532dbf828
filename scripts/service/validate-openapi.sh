#!/usr/bin/env bash
# Validates openapi.yaml against the OpenAPI 3.0 schema (pip package openapi-spec-validator, in a venv).
set -euo pipefail
cd "$(dirname "$0")/../.."
venv="${SPECTRALX_VENV:-${TMPDIR:-/tmp}/spectralx-openapi-venv}"
if [ ! -x "$venv/bin/openapi-spec-validator" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet openapi-spec-validator
fi
"$venv/bin/openapi-spec-validator" openapi.yaml
