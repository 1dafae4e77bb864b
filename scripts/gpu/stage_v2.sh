#!/usr/bin/env bash
# Stages what scripts/gpu/run_v2.sh needs on a GPU machine that reaches nothing: the binaries built
# here (BUILD_DIR, default build-cuda: igla, igla_tests, igla_cuda_bench; nvcc sm_90a) with the
# shared libraries a bare image may lack, the default GloVe index without its float32 vectors
# (`igla convert --no-float`: the same codes and int8 rerank rows), the Google analogy questions,
# 65,536 vocabulary words (every 5th id) for `nearest --input`, and the run script.
#
#   scripts/gpu/stage_v2.sh DEST [INDEX]     # INDEX default: ~/.cache/igla/glove-100d.igla
#
# DEST must be a git-ignored folder of the checkout the device tool sends (its `carry`).
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
tar cf - -C "$BT" . | xz -T2 -6 > "$DEST/bin.tar.xz"  # the 64 MiB carry limit: binaries + libs ~10 MB packed
rm -rf "$BT"
cp "$ROOT/scripts/gpu/run_v2.sh" "$DEST/"
cp "$QS" "$DEST/data/"
TMP=$(mktemp -d)
"$B/igla" convert "$SRC_IX" "$TMP/glove-100d.igla" --no-float >/dev/null
xz -T2 -3 -c "$TMP/glove-100d.igla" > "$DEST/data/glove-100d.igla.xz"
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
du -sh "$DEST"; ls -la "$DEST" "$DEST/data"
