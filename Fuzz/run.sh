#!/usr/bin/env bash
# Usage: Fuzz/run.sh tiff|npy [SECONDS] [extra libFuzzer flags...]
# Builds a libFuzzer+ASan binary from Sources/SpectralXRaster + Fuzz/Fuzz<TARGET>.swift and runs it
# single-job on Fuzz/corpus/<target> (new inputs go to Fuzz/.out/corpus-<target>, crashes to
# Fuzz/.out/crashes-<target>/).
set -euo pipefail
target="${1:?usage: Fuzz/run.sh tiff|npy [seconds]}"
secs="${2:-600}"
shift $(( $# >= 2 ? 2 : 1 ))
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${FUZZ_OUT:-$root/Fuzz/.out}"
mkdir -p "$out/corpus-$target" "$out/crashes-$target"
upper="$(echo "$target" | tr a-z A-Z)"
bin="$out/fuzz-$target"
if [[ ! -x "$bin" || -n "$(find "$root/Sources/SpectralXRaster" "$root/Fuzz" -name '*.swift' -newer "$bin" 2>/dev/null)" ]]; then
  swiftc -sanitize=fuzzer,address -parse-as-library -O -module-name SpectralXRasterFuzz \
    -I "$root/Sources/CZlib" -lz \
    "$root"/Sources/SpectralXRaster/*.swift "$root/Fuzz/Fuzz$upper.swift" -o "$bin"
fi
cd "$out"  # libFuzzer -jobs writes fuzz-N.log into the working directory
exec "$bin" -jobs=1 -workers=1 -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -max_len=65536 \
  -artifact_prefix="$out/crashes-$target/" -print_final_stats=1 "$@" "$out/corpus-$target" "$root/Fuzz/corpus/$target"
