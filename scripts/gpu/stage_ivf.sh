#!/usr/bin/env bash
# Stages scripts/gpu/ivf_run.sh's folder (the CUDA IVF tests and bench-ann --device cuda) into DEST,
# a git-ignored folder of the checkout the device tool sends (its `carry`, 64 MiB with the tree):
#   - igla and igla_tests of BUILD_DIR (default build-cuda) with the libraries a bare image may
#     lack, packed as scripts/gpu/stage.sh packs them (no ctest tree, no analogy data);
#   - data/bench.igla.xz: GloVe's first WORDS words (default 150,000) with their float32 vectors
#     (`igla convert --limit --keep-float --rerank none`): bench-ann needs the float32 vectors for
#     its truth and its peers, and all 341K (~130 MiB of floats, ~100 MB packed) do not fit;
#   - or, WORDS=all: the whole index as it is (no float32 vectors, its IVF lists added by
#     `igla build-ivf`) and data/truth.txt, the exact float32 top 10 of QUERIES vocabulary words
#     (default 2,000) computed here by `igla bench-ann --save-truth` on FLOAT_INDEX (the same words
#     with their float32 vectors: `igla fetch-glove --keep-float --output FLOAT_INDEX`); the run
#     then measures igla's rows (CPU and CUDA) on all 341K words, with no held-out set and no peers.
#
#   scripts/gpu/stage_ivf.sh DEST [INDEX]     # INDEX default: ~/.cache/igla/glove-100d.igla
#   WORDS=all FLOAT_INDEX=f.igla scripts/gpu/stage_ivf.sh DEST
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
B=${BUILD_DIR:-$ROOT/build-cuda}
DEST=${1:?destination folder}
SRC_IX=${2:-$HOME/.cache/igla/glove-100d.igla}
WORDS=${WORDS:-150000}
TMP=$(mktemp -d)
if [ "$WORDS" = all ]; then
  FLOAT_IX=${FLOAT_INDEX:?WORDS=all needs FLOAT_INDEX: the same words with float32 vectors (igla fetch-glove --keep-float --output F)}
  "$B/igla" bench-ann --index "$FLOAT_IX" --heldout 0 --queries "${QUERIES:-2000}" --no-ivf --no-graph --no-peers \
      --csv '' --save-truth "$TMP/truth.txt" | grep -E '^(bench-ann|truth)'
  cp "$SRC_IX" "$TMP/bench.igla"
  "$B/igla" build-ivf "$TMP/bench.igla" > /dev/null 2>&1
else
  "$B/igla" convert "$SRC_IX" "$TMP/bench.igla" --limit "$WORDS" --keep-float --rerank none > /dev/null
fi
EX=$(git -C "$ROOT" rev-parse --git-path info/exclude); case $EX in /*) ;; *) EX=$ROOT/$EX ;; esac
d="/$(basename "$DEST")/"; grep -qxF "$d" "$EX" 2>/dev/null || echo "$d" >> "$EX"
rm -rf "$DEST"
mkdir -p "$DEST/data" "$TMP/bin/lib"
# The binaries and the shared libraries a bare image may lack, as stage.sh packs them (xz -9e: the carry limit).
cp "$B/igla" "$B/tests/igla_tests" "$TMP/bin/"
strip "$TMP/bin/igla" "$TMP/bin/igla_tests"
for bin in "$TMP/bin/igla" "$TMP/bin/igla_tests"; do
  ldd "$bin" | awk '/=> \//{print $3}' | grep -v -E '/(libc|libm|libgcc_s|libstdc\+\+|libpthread|libdl|librt)\.so' \
    | xargs -r -I{} cp -L {} "$TMP/bin/lib/"
done
tar cf - -C "$TMP/bin" . | xz -9e -T2 > "$DEST/bin.tar.xz"
echo "built $(date -u +%Y-%m-%dT%H:%MZ) from $(git -C "$ROOT" rev-parse --short HEAD) ($(git -C "$ROOT" status --short | wc -l) files changed)" \
  > "$DEST/BUILD_INFO"
xz -9 -T2 -c "$TMP/bench.igla" > "$DEST/data/bench.igla.xz"
cp "$ROOT/scripts/gpu/ivf_run.sh" "$DEST/"
if [ "$WORDS" = all ]; then
  cp "$TMP/truth.txt" "$DEST/data/"
  echo "bench index: $(basename "$SRC_IX") as it is + build-ivf, float32 truth of ${QUERIES:-2000} words from $(basename "$FLOAT_IX")" >> "$DEST/BUILD_INFO"
else
  echo "bench index: GloVe first $WORDS words, float32 kept" >> "$DEST/BUILD_INFO"
fi
rm -rf "$TMP"
du -sh "$DEST"
