#!/usr/bin/env bash
# The whole test suite, as CI runs it: system packages, a release build (the numeric tests run
# full 1.7 GB models and are too slow in debug), then `swift test -c release`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh --test
swift build -c release
swift test -c release "$@"
