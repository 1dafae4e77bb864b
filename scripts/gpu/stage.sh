#!/usr/bin/env bash
# Stages what scripts/gpu/run.sh needs on a GPU machine that reaches nothing, into DEST (a git-ignored
# folder of the checkout the device tool sends: its `carry`):
#   - the binaries built here (BUILD_DIR, default build-cuda: igla, igla_tests, igla_cuda_bench;
#     nvcc sm_90a) with the shared libraries a bare image may lack (bin.tar.xz);
#   - the default GloVe index without its float32 vectors (`igla convert --no-float`: the same codes
#     and int8 rerank rows), the Google analogy questions, 65,536 vocabulary words (every 5th id)
#     for `nearest --input`, and scripts/gpu/*.sh (run.sh; host_time.sh and the like, which source
#     staged.sh);
#   - unless WITH_CTEST=0: for run.sh's `ctest` and `serve` modes, the build tree's ctest files
#     (tests discovered at build time, absolute paths of this checkout; run.sh links this
#     checkout's path to the copy there) with igla_server_tests (ctest.tar.xz), and the wrk binary
#     with the libraries it needs (wrk.tar.xz).
#
#   scripts/gpu/stage.sh DEST [INDEX]     # INDEX default: ~/.cache/igla/glove-100d.igla
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
B=${BUILD_DIR:-$ROOT/build-cuda}
DEST=${1:?destination folder}
SRC_IX=${2:-$HOME/.cache/igla/glove-100d.igla}
QS=${QUESTIONS:-$ROOT/data/questions-words.txt}
rm -rf "$DEST"
mkdir -p "$DEST/data"
BT=$(mktemp -d)
mkdir -p "$BT/lib"
cp "$B/igla" "$B/tests/igla_tests" "$B/igla_cuda_bench" "$BT/"
strip "$BT/igla" "$BT/igla_tests" "$BT/igla_cuda_bench"
for bin in "$BT/igla" "$BT/igla_tests" "$BT/igla_cuda_bench"; do
  ldd "$bin" | awk '/=> \//{print $3}' | grep -v -E '/(libc|libm|libgcc_s|libstdc\+\+|libpthread|libdl|librt)\.so' \
    | xargs -r -I{} cp -L {} "$BT/lib/"
done
# The 64 MiB carry limit: the three binaries hold the same CUDA fatbins, which only xz -9's 64 MB
# window finds again (run 55: 20.3 MB at -6, 8.3 MB at -9e).
tar cf - -C "$BT" . | xz -T2 -9e > "$DEST/bin.tar.xz"
rm -rf "$BT"
cp "$ROOT"/scripts/gpu/*.sh "$ROOT/scripts/gpu/ncu_by_kernel.awk" "$DEST/"  # run.sh and the scripts that source staged.sh
cp "$QS" "$DEST/data/"
TMP=$(mktemp -d)
# An index built without float32 vectors has none to drop (convert refuses it): copied as it is.
"$B/igla" convert "$SRC_IX" "$TMP/glove-100d.igla" --no-float >/dev/null 2>&1 || cp "$SRC_IX" "$TMP/glove-100d.igla"
xz -T2 -9e -c "$TMP/glove-100d.igla" > "$DEST/data/glove-100d.igla.xz"  # 43 MB for the default GloVe index
python3 - "$TMP/glove-100d.igla" "$DEST/data/words65536.txt" <<'EOF'
import struct, sys
b = open(sys.argv[1], 'rb').read()
n_sections, n = struct.unpack_from('<IQ', b, 12)[0], struct.unpack_from('<Q', b, 16)[0]
for s in range(n_sections):
    tag, _, off, size, _ = struct.unpack_from('<4sIQQQ', b, 64 + 32 * s)
    if tag == b'VOCB':
        offs = struct.unpack_from('<%dI' % (n + 1), b, off)
        words = b[off + 4 * (n + 1):off + size]
        with open(sys.argv[2], 'w') as f:
            for i in range(0, 5 * 65536, 5):
                f.write(words[offs[i]:offs[i + 1]].decode('utf-8') + '\n')
EOF
rm -rf "$TMP"
echo "built $(date -u +%Y-%m-%dT%H:%MZ) from $(git -C "$ROOT" rev-parse --short HEAD) ($(git -C "$ROOT" status --short | wc -l) files changed)" \
  > "$DEST/BUILD_INFO"
[ "${WITH_CTEST:-1}" = 1 ] || { du -sh "$DEST"; exit 0; }
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
