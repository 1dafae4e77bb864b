#!/usr/bin/env bash
# Where a reranked nearest batch's extra time goes (issue 11 (c): 65,536 word queries with the
# rerank of 50 candidates within 25% of --candidates 0). Run from a folder staged by stage.sh.
# Times (each row on its own searcher, with its host time by phase), then ncu's ms by kernel of
# one call at 50 candidates and one at 0 (--profile-candidates: that call alone is profiled).
source "$(dirname "$0")/staged.sh"
B=(./igla_cuda_bench --name glove-default --index $IX --batches 65536 --check 0 --singles 0 --rerank --no-compare --no-analogies)
for r in 1 2; do
  echo "== round $r"
  timeout 120 "${B[@]}" --seconds 0.5 2>&1 | grep -E '^igla|^# .*(host time|stats)' |
    awk -F'\t' '/^igla/ {printf "%-16s %9.0f q/s %7.2f ms\n", $6, $8, $9; next} {print "   " $0}'
done
for c in 50 0; do
  echo "== ncu, one call at $c candidates, ms by kernel"
  timeout 150 ncu --profile-from-start off --clock-control none --metrics gpu__time_duration.sum \
      "${B[@]}" --seconds 0 --profile-candidates $c > "$OUT/ncu_c$c.txt" 2>&1
  awk -f ncu_by_kernel.awk "$OUT/ncu_c$c.txt" | sort -k2 -nr
done
