#!/usr/bin/env bash
# The mma path's guessed start (CudaOptions::mma_sample_rank, IGLA_CUDA_MMA_RANK) on nearest 65,536
# reranked: the queries refilled (cuda stats) and the batch's time at each rank, with --candidates
# 0 beside it. Run from a folder staged by stage.sh.
source "$(dirname "$0")/staged.sh"
B=(./igla_cuda_bench --name glove-default --index data/glove-100d.igla --batches 65536 --check 0 --singles 0 --rerank
   --no-compare --no-analogies --seconds 0.5)
echo "== stats, rank 3: $(IGLA_CUDA_STATS=1 IGLA_CUDA_MMA_RANK=3 timeout 60 "${B[@]}" 2>&1 | grep -E '^# rerank50-device.*stats' | cut -c1-300)"
for r in 3 2 4 6 10 3; do
  echo "== rank $r: $(IGLA_CUDA_MMA_RANK=$r timeout 60 "${B[@]}" 2>&1 | grep -E '^igla.*(rerank50-device|candidates0)' |
      awk -F'\t' '{printf "%s %.2f ms  ", $6, $9}')"
done
