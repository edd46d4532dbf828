#!/usr/bin/env bash
# Usage: Fuzz/run.sh TARGET [SECONDS] [extra libFuzzer flags...]
# Builds a libFuzzer+ASan binary from the sources of TARGET + its entry file Fuzz/Fuzz<Target>.swift
# (name matched case-insensitively) and runs it single-job (-jobs=1) on Fuzz/corpus/<target>.
#   tiff, npy:        Sources/SpectralXRaster/*.swift (+ zlib).
#   safetensors:      Sources/SpectralXCheckpoint/*.swift (header validator).
#   http, multipart:  the HTTP codec files of Sources/SpectralXHTTP (no sockets, no swift-log).
#   other targets: set FUZZ_SOURCES="space-separated source files/globs" (and FUZZ_SWIFTC_FLAGS if needed).
# Output (binary, grown corpus corpus-<target>/, crashes crashes-<target>/, fuzz-0.log) goes to
# Fuzz/.out/ (git-ignored) or $FUZZ_OUT.
set -euo pipefail
target="${1:?usage: Fuzz/run.sh TARGET [seconds]}"
secs="${2:-600}"
shift $(( $# >= 2 ? 2 : 1 ))
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${FUZZ_OUT:-$root/Fuzz/.out}"
mkdir -p "$out/corpus-$target" "$out/crashes-$target" "$root/Fuzz/corpus/$target"
entry="$(find "$root/Fuzz" -maxdepth 1 -iname "fuzz$target.swift" | head -1)"
[[ -n "$entry" ]] || { echo "no Fuzz/Fuzz<$target>.swift entry file" >&2; exit 2; }
case "$target" in
  tiff|npy) sources=("$root"/Sources/SpectralXRaster/*.swift); flags=(-I "$root/Sources/CZlib" -lz) ;;
  safetensors) sources=("$root"/Sources/SpectralXCheckpoint/*.swift); flags=() ;;
  http|multipart)
    h="$root/Sources/SpectralXHTTP"
    sources=("$h/HTTPRequestParser.swift" "$h/HTTPHeaders.swift" "$h/HTTPRequestHead.swift" "$h/HTTPStatus.swift"
             "$h/HTTPError.swift" "$h/HTTPServerConfiguration.swift" "$h/HTTPResponse.swift" "$h/MultipartParser.swift"
             "$h/HTTPBody.swift"); flags=() ;;
  *) [[ -n "${FUZZ_SOURCES:-}" ]] || { echo "set FUZZ_SOURCES for target $target" >&2; exit 2; }
     # shellcheck disable=SC2206
     sources=($FUZZ_SOURCES); flags=(${FUZZ_SWIFTC_FLAGS:-}) ;;
esac
bin="$out/fuzz-$target"
if [[ ! -x "$bin" || -n "$(find "${sources[@]}" "$entry" -newer "$bin" 2>/dev/null)" ]]; then
  swiftc -sanitize=fuzzer,address -parse-as-library -O -module-name "Fuzz_$target" \
    "${flags[@]}" "${sources[@]}" "$entry" -o "$bin"
fi
cd "$out"  # libFuzzer -jobs writes fuzz-N.log into the working directory
exec "$bin" -jobs=1 -workers=1 -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -max_len=65536 \
  -artifact_prefix="$out/crashes-$target/" -print_final_stats=1 "$@" "$out/corpus-$target" "$root/Fuzz/corpus/$target"
