#!/usr/bin/env bash
# One-query latency sweep (scripts/gpu/NOTES.md, runs 18+ and P): the one-query routes and split
# sizes, sequential single searches through the bench (--batches 1, no checks: run_all.sh checks).
#   IGLA_CUDA_SINGLE=         the persistent kernel polling a mailbox (default route)
#   IGLA_CUDA_SINGLE=launch   one kernel launch per query
#   IGLA_CUDA_SINGLE=graph    the old route (CUDA graph: copy node, popc kernel, merge kernel)
#   IGLA_CUDA_SINGLE=empty    scores nothing (floor: mailbox / launch + signal + host spin);
#                             with launch: launch,empty
#   IGLA_CUDA_SINGLE=echo     persistent: CTA 0 answers (nothing) once the message is in, no fence
#                             (the mailbox round trip alone)
#   IGLA_CUDA_PERSIST_SLEEP_NS=N  persistent: __nanosleep(N) between the relay polls of CTAs 1..
#   IGLA_CUDA_PERSIST_RELAY=flag  persistent: CTA 0 relays behind one flag word (first version)
#   IGLA_CUDA_SINGLE=nomerge  without the last CTA's merge of the splits
#   IGLA_CUDA_SINGLE=trace    the last CTA's cycle counts per phase (stderr)
#   IGLA_CUDA_SINGLE_SPLIT=N  vocabulary words per CTA of the one-query kernel
#   IGLA_CUDA_SINGLE_SYNC=1   launch route: host waits with cudaStreamSynchronize before the flag
# Binaries: $PREBUILT (default .gpu-prebuilt), else build-gpu/.
set -uo pipefail
OUT=${OUT:-/tmp/igla-gpu-out}; mkdir -p "$OUT"
P=${PREBUILT:-.gpu-prebuilt}
if [ -x $P/igla_cuda_bench ]; then B=$P/igla_cuda_bench; export LD_LIBRARY_PATH=$PWD/$P/lib
else B=build-gpu/igla_cuda_bench; fi
one() {  # label, mode, split, bench args...  (environment: SLEEP=N, RELAY=flag: the two knobs above)
  local label=$1 mode=$2 split=$3; shift 3
  local r
  [ -n "${SLEEP:-}" ] && label="$label/s${SLEEP}"
  [ -n "${RELAY:-}" ] && label="$label/${RELAY}"
  r=$(IGLA_CUDA_SINGLE=$mode IGLA_CUDA_SINGLE_SPLIT=$split IGLA_CUDA_PERSIST_SLEEP_NS=${SLEEP:-0} \
      IGLA_CUDA_PERSIST_RELAY=${RELAY:-} IGLA_CUDA_PERSIST_STATS=1 \
      timeout 120 $B --name "$label" \
      --check 0 --no-compare --batches 1 "$@" 2>&1 | grep -E '^igla|rror|trace|persistent' | cut -f7,10- | tr '\n' ' ')
  printf '%-10s mode=%-13s split=%-5s %s\n' "$label" "${mode:-persistent}" "${split:-auto}" "$r" | tee -a "$OUT/single_sweep.txt"
}
D100="--n 100000 --dims 300"
for m in "" launch empty launch,empty echo trace launch,trace; do one 100k-300 "$m" "" $D100; done
for m in "" trace; do RELAY=flag one 100k-300 "$m" "" $D100; done
for sl in 100 1000; do SLEEP=$sl one 100k-300 "" "" $D100; SLEEP=$sl one 100k-300 trace "" $D100; done
for m in "" launch; do one 100k-300 "$m" "" $D100; done
for f in .gpu-data/*.igla; do
  [ -f "$f" ] || continue
  for m in "" launch trace; do one glove "$m" "" --index "$f"; done
done
