#!/usr/bin/env bash
# The eval's host time on the GPU (run from a folder staged by stage.sh, after run.sh has unpacked
# it or on its own): answers against the CPU's, then the eval with the CUDA searcher's report of
# host time by phase (IGLA_CUDA_REPORT=1: every call's, the warm-up's included), warm (the
# default warm-up) and cold (--warm-up 0) taking turns; nearest 65,536 reranked vs --candidates 0
# (issue 11 (c)).
source "$(dirname "$0")/staged.sh"
./igla eval analogies $Q --index $IX --restrict 0 --device cpu > "$OUT/eval_cpu.txt" 2>/dev/null
./igla eval analogies $Q --index $IX --restrict 0 --device cuda > "$OUT/eval_gpu.txt" 2>/dev/null
cmp -s "$OUT/eval_cpu.txt" "$OUT/eval_gpu.txt" && echo "eval answers: cuda = cpu" || echo "FAIL: eval answers differ"
for r in 1 2 3; do
  for w in default 0; do
    echo "== warm-up $w"
    a=(); [ $w = default ] || a=(--warm-up $w)
    IGLA_CUDA_REPORT=1 ./igla eval analogies $Q --index $IX --restrict 0 --device cuda "${a[@]}" 2>&1 >/dev/null \
      | grep -E 'time:|host time|mt chunks'
  done
done
for r in 1 2; do
  timeout 100 ./igla_cuda_bench --name glove-default --index $IX --batches 65536 --check 0 --singles 0 --seconds 0.5 \
      --rerank --no-compare --no-analogies 2>&1 | grep -E '^igla.*(rerank50-device|candidates0)' | awk '{printf "%s %.0f (%.2f ms) ", $6, $8, $9} END {print ""}'
done
