#!/usr/bin/env bash
# One-query latency sweep (scripts/gpu/NOTES.md, runs 18+): the one-query routes and split sizes,
# sequential single searches through the bench (--batches 1, no checks: run_all.sh checks).
#   IGLA_CUDA_SINGLE=graph    the old route (CUDA graph: copy node, popc kernel, merge kernel)
#   IGLA_CUDA_SINGLE=empty    one launch that scores nothing (floor: launch + signal + host spin)
#   IGLA_CUDA_SINGLE=nomerge  one launch without the last CTA's merge of the splits
#   IGLA_CUDA_SINGLE=trace    the last CTA's cycle counts per phase (stderr)
#   IGLA_CUDA_SINGLE_SPLIT=N  vocabulary words per CTA of the one-launch kernel
#   IGLA_CUDA_SINGLE_SYNC=1   host waits with cudaStreamSynchronize before reading the flag
set -uo pipefail
OUT=${OUT:-/tmp/igla-gpu-out}; mkdir -p "$OUT"
if [ -x .gpu-prebuilt/igla_cuda_bench ]; then B=.gpu-prebuilt/igla_cuda_bench; export LD_LIBRARY_PATH=$PWD/.gpu-prebuilt/lib
else B=build-gpu/igla_cuda_bench; fi
one() {  # label, mode, split, bench args...
  local label=$1 mode=$2 split=$3; shift 3
  local r
  r=$(IGLA_CUDA_SINGLE=$mode IGLA_CUDA_SINGLE_SPLIT=$split timeout 120 $B --name "$label" --check 0 --no-compare \
      --batches 1 "$@" 2>&1 | grep -E '^igla|rror|trace' | cut -f7,10- | tr '\n' ' ')
  printf '%-10s mode=%-8s split=%-5s %s\n' "$label" "${mode:-launch}" "${split:-auto}" "$r" | tee -a "$OUT/single_sweep.txt"
}
D100="--n 100000 --dims 300"
for m in "" empty trace "" nomerge ""; do one 100k-300 "$m" "" $D100; done
for f in .gpu-data/*.igla; do
  [ -f "$f" ] || continue
  for m in "" trace; do one glove "$m" "" --index "$f"; done
done
