#!/usr/bin/env bash
# The analogy eval on the GPU (issue 11 (a)): answers against the CPU's, N warm evals (default 3)
# with the host phases, and ncu's time of each kernel of one warm eval.
source "$(dirname "$0")/staged.sh"
N=${1:-3}
./igla eval analogies $Q --index $IX --restrict 0 --device cpu > "$OUT/eval_cpu.txt" 2>/dev/null
./igla eval analogies $Q --index $IX --restrict 0 --device cuda > "$OUT/eval_gpu.txt" 2>/dev/null
cmp -s "$OUT/eval_cpu.txt" "$OUT/eval_gpu.txt" && echo "eval answers: cuda = cpu" || echo "FAIL: eval answers differ"
for r in $(seq "$N"); do
  ./igla eval analogies $Q --index $IX --restrict 0 --device cuda 2>&1 >/dev/null | grep -E '^time:'
done
timeout 200 ncu --clock-control none --metrics gpu__time_duration.sum \
  ./igla eval analogies $Q --index $IX --restrict 0 --device cuda > "$OUT/ncu_eval.txt" 2>&1
echo "== ncu: ms by kernel over the warm-up and the eval (each twice: the eval's time is about half)"
awk -f ncu_by_kernel.awk "$OUT/ncu_eval.txt" | sort -k2 -nr | head -8
