#!/usr/bin/env bash
# Sets up, builds and starts the server. With no --models it serves an embedded demo store that
# `spectralx synth` generates on first start (deterministic weights; no downloads).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
swift build -c release
exec .build/release/spectralx serve "$@"
