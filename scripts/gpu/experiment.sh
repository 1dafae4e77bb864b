#!/usr/bin/env bash
# Kernel experiments behind scripts/gpu/NOTES.md (not part of the regular run): times the mma
# kernel with its epilogue dropped (IGLA_CUDA_MMA_MODE=1) or its slow path dropped (=2), prints
# the epilogue's event counters, and profiles one launch with ncu down to SASS lines.
set -uo pipefail
OUT=${OUT:-/tmp/igla-gpu-out}; mkdir -p "$OUT"
if [ -x .gpu-prebuilt/igla_cuda_bench ]; then B=.gpu-prebuilt/igla_cuda_bench; export LD_LIBRARY_PATH=$PWD/.gpu-prebuilt/lib
else B=build-gpu/igla_cuda_bench; fi
export IGLA_CUDA_STATS=1
for set in "100000 300" "341000 100" "1000000 300"; do
  set -- $set
  for m in 0 1 2; do
    echo "== n=$1 dims=$2 mode=$m"
    IGLA_CUDA_MMA_MODE=$m timeout 120 $B --name "m$m" --n $1 --dims $2 --batches 16896 --check 0 --no-compare --seconds 1 2>&1 | grep -v "^#"
  done
done
if [ -n "${NCU:-}" ]; then
  timeout 300 ncu --kernel-name regex:mma_kernel --launch-skip 3 --launch-count 1 --section WarpStateStats \
      --section SourceCounters --section SpeedOfLight -o "$OUT/prof" -f \
      $B --name ncu --n 100000 --dims 300 --batches 16896 --check 0 --no-compare --seconds 0 > "$OUT/ncu_run.txt" 2>&1
  ncu -i "$OUT/prof.ncu-rep" --page source --csv --print-source sass > "$OUT/sass.csv" 2> "$OUT/sass.err"
  ncu -i "$OUT/prof.ncu-rep" --page details --print-details all > "$OUT/details.txt" 2>&1
  ls -la "$OUT"
  grep -i -E "stall|smsp__pcsamp" "$OUT/details.txt" | head -40
fi
