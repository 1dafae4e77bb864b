#!/usr/bin/env bash
# The mt path's bound pass over a chunk's distinct terms (CudaOptions::mt_shared_bound) against the
# per-query pass, on the eval's 19,544 questions: answers of both against the CPU's, the warm eval
# taking turns (IGLA_CUDA_MT_SHARED_BOUND=1 / 0), and ncu's ms by kernel of one eval each.
# Run from a folder staged by stage.sh.
source "$(dirname "$0")/staged.sh"
E=(./igla eval analogies $Q --index $IX --restrict 0)
"${E[@]}" --device cpu > "$OUT/eval_cpu.txt" 2>/dev/null
for b in 1 0; do
  IGLA_CUDA_MT_SHARED_BOUND=$b "${E[@]}" --device cuda > "$OUT/eval_gpu$b.txt" 2>/dev/null
  cmp -s "$OUT/eval_cpu.txt" "$OUT/eval_gpu$b.txt" && echo "eval answers, shared bound $b: cuda = cpu" ||
    echo "FAIL: eval answers differ, shared bound $b"
done
for r in 1 2 3; do
  for b in 1 0; do
    echo "== shared bound $b: $(IGLA_CUDA_MT_SHARED_BOUND=$b "${E[@]}" --device cuda 2>&1 >/dev/null | grep -E '^time:' | cut -c1-210)"
  done
done
for b in 1 0; do
  echo "== ncu of one eval (the warm-up's calls included), shared bound $b, ms by kernel"
  IGLA_CUDA_MT_SHARED_BOUND=$b timeout 150 ncu --clock-control none --metrics gpu__time_duration.sum \
      "${E[@]}" --device cuda --warm-up 0 > "$OUT/ncu_bound$b.txt" 2>&1
  awk -f ncu_by_kernel.awk "$OUT/ncu_bound$b.txt" | sort -k2 -nr
done
