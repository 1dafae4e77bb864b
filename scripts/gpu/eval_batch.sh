#!/usr/bin/env bash
# The warm GPU eval's batch size and the allocator (run from a folder staged by stage.sh): eval
# analogies --restrict 0 --device cuda at --batch 32768 (default) / 8192 / 4096, and the default
# with glibc keeping freed blocks (GLIBC_TUNABLES: the warm-up's batch memory reused, no fresh
# page faults), two rounds taking turns, each with the searcher's host time (IGLA_CUDA_REPORT=1).
source "$(dirname "$0")/staged.sh"
TUNE=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4294967295
for r in 1 2; do
  for v in 32768 8192 4096 tuned; do
    echo "== $v"
    if [ $v = tuned ]; then
      GLIBC_TUNABLES=$TUNE IGLA_CUDA_REPORT=1 ./igla eval analogies $Q --index $IX --restrict 0 --device cuda 2>&1 >/dev/null
    else
      IGLA_CUDA_REPORT=1 ./igla eval analogies $Q --index $IX --restrict 0 --device cuda --batch $v 2>&1 >/dev/null
    fi | grep -E 'time:|host time'
  done
done
