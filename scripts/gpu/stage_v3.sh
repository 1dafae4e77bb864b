#!/usr/bin/env bash
# stage_v2.sh, plus what run_v3.sh's `ctest` and `serve` parts need on a GPU machine that reaches
# nothing: the build tree's ctest files (tests discovered at build time, absolute paths of this
# checkout; run_v3.sh links this checkout's path to the copy there) with igla_server_tests, and
# the wrk binary with the libraries it needs (DEST/wrk/).
#
#   scripts/gpu/stage_v3.sh DEST [INDEX]      # BUILD_DIR default build-cuda
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
B=${BUILD_DIR:-$ROOT/build-cuda}
DEST=${1:?destination folder}
# SKIP_V2=1: the binaries and data are staged already (stage_v2.sh)
[ "${SKIP_V2:-0}" = 1 ] || bash "$ROOT/scripts/gpu/stage_v2.sh" "$DEST" "${2:-$HOME/.cache/igla/glove-100d.igla}"
cp "$ROOT/scripts/gpu/run_v3.sh" "$DEST/"
T=$(mktemp -d)
mkdir -p "$T/ctest/build-cuda/tests" "$T/lib"
cp "$B/CTestTestfile.cmake" "$T/ctest/build-cuda/"
cp "$B"/tests/CTestTestfile.cmake "$B"/tests/*_include.cmake "$B"/tests/*_tests.cmake "$T/ctest/build-cuda/tests/"
[ -d "$B/python" ] && mkdir -p "$T/ctest/build-cuda/python" && { cp "$B/python/CTestTestfile.cmake" "$T/ctest/build-cuda/python/" 2>/dev/null || true; }
cp "$B/tests/igla_server_tests" "$T/ctest/build-cuda/tests/"
strip "$T/ctest/build-cuda/tests/igla_server_tests"
echo "$ROOT" > "$T/ctest/SOURCE_DIR"
git -C "$ROOT" archive --format=tar --prefix=src/ HEAD | tar xf - -C "$T/ctest"  # the tests' IGLA_SOURCE_DIR (data, scripts)
ldd "$B/tests/igla_server_tests" | awk '/=> \//{print $3}' | grep -v -E '/(libc|libm|libgcc_s|libstdc\+\+|libpthread|libdl|librt)\.so' \
  | xargs -r -I{} cp -L {} "$T/lib/"
tar cf - -C "$T" . | xz -T2 -6 > "$DEST/ctest.tar.xz"
rm -rf "$T"
# wrk (Debian package here) and its libraries
W="$DEST/wrk"
rm -rf "$W"; mkdir -p "$W/lib"
cp "$(command -v wrk)" "$W/wrk.bin"
printf '#!/bin/sh\nD=$(dirname "$0")\nLD_LIBRARY_PATH="$D/lib" exec "$D/wrk.bin" "$@"\n' > "$W/wrk"
chmod +x "$W/wrk"
ldd "$(command -v wrk)" | awk '/=> \//{print $3}' | grep -v -E '/(libc|libm|libgcc_s|libpthread|libdl|librt)\.so' \
  | xargs -r -I{} cp -L {} "$W/lib/"
tar cf - -C "$DEST" wrk | xz -T2 -9 > "$DEST/wrk.tar.xz" && rm -rf "$W"  # the 64 MiB carry limit
EX=$(git -C "$ROOT" rev-parse --git-path info/exclude); case $EX in /*) ;; *) EX=$ROOT/$EX ;; esac
for d in "/$(basename "$DEST")/"; do grep -qxF "$d" "$EX" 2>/dev/null || echo "$d" >> "$EX"; done
du -sh "$DEST"
