#!/usr/bin/env bash
# Issue 11's three targets on the default index, in one call (run from a folder staged by stage.sh):
# (a) `eval analogies --restrict 0 --device cuda`, answers against the CPU's, N warm evals (default
# 5) and one cold; (b) one analogy `--time`, output against the CPU's; (c) nearest 65,536
# reranked vs --candidates 0, twice; then ncu's ms by kernel of one eval (warm-up + eval).
source "$(dirname "$0")/staged.sh"
N=${1:-5}
nvidia-smi --query-gpu=name --format=csv,noheader
./igla eval analogies $Q --index $IX --restrict 0 --device cpu > "$OUT/eval_cpu.txt" 2>/dev/null
./igla eval analogies $Q --index $IX --restrict 0 --device cuda > "$OUT/eval_gpu.txt" 2>/dev/null
cmp -s "$OUT/eval_cpu.txt" "$OUT/eval_gpu.txt" && echo "(a) eval answers: cuda = cpu" || echo "FAIL: eval answers differ"
for r in $(seq "$N"); do
  ./igla eval analogies $Q --index $IX --restrict 0 --device cuda 2>&1 >/dev/null | grep -E '^time:' | sed 's/ (ternary add[^)]*)//; s/; before it.*//'
done
echo "cold: $(./igla eval analogies $Q --index $IX --restrict 0 --device cuda --warm-up 0 2>&1 >/dev/null | grep -E '^time:' | sed 's/ (ternary add[^)]*)//')"
for dev in cuda cpu; do
  ./igla analogy man king woman --index $IX --device $dev --time > "$OUT/analogy_$dev.txt" 2> "$OUT/analogy_$dev.err"
done
cmp -s "$OUT/analogy_cuda.txt" "$OUT/analogy_cpu.txt" && echo "(b) analogy: cuda = cpu" || echo "FAIL: analogy outputs differ"
for r in 1 2 3; do
  ./igla analogy man king woman --index $IX --device cuda --time 2>&1 >/dev/null | grep 'analogy:' | sed 's/; 341479 words.*//'
done
for r in 1 2; do
  timeout 100 ./igla_cuda_bench --name glove-default --index $IX --batches 65536 --check 0 --singles 0 --seconds 0.5 \
      --rerank --no-compare --no-analogies 2>&1 | grep -E '^igla.*(rerank50-device|candidates0)' |
    awk '{printf "%s %.0f q/s (%.2f ms) ", $6, $8, $9; t[NR] = $9} END {printf "ratio %.3f\n", t[1] / t[2]}'
done
timeout 200 ncu --clock-control none --metrics gpu__time_duration.sum \
  ./igla eval analogies $Q --index $IX --restrict 0 --device cuda > "$OUT/ncu_eval.txt" 2>&1
echo "== ncu: ms by kernel over the warm-up and the eval (about half each)"
awk -f ncu_by_kernel.awk "$OUT/ncu_eval.txt" | sort -k2 -nr | head -8
