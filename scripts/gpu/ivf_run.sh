#!/usr/bin/env bash
# igla CUDA IVF (issue 16 point 5): one device run from a folder staged by scripts/gpu/stage_ivf.sh
# (binaries from stage.sh, an index of GloVe's first N words with its float32 vectors: the whole
# 341K x 100 float32 set does not fit the device tool's 64 MiB carry; or, staged with WORDS=all,
# the whole index without them and the float32 truth computed where they are). Run inside that folder:
#
#   bash ivf_run.sh
#
#   1. the CudaIvf.* tests (CUDA IVF vs CPU IVF bit for bit, nprobe all vs exact)
#   2. igla bench-ann --device cuda on the staged index: CPU rows (igla exact, IVF, IVF-int8, hnswlib)
#      and CUDA rows (exact, IVF) of one run, same queries and truths
#   3. the rest of the Cuda* tests (last: a short device lease may cut them off)
# Logs and the CSV go to $OUT (the device tool's output folder) or /tmp/igla-gpu-out.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-/tmp/igla-gpu-out}
mkdir -p "$OUT"
export LD_LIBRARY_PATH="$HERE/lib:${LD_LIBRARY_PATH:-}"
FAIL=0
echo "# igla CUDA IVF run $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname); $(cat "$HERE/BUILD_INFO" 2>/dev/null)"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit --format=csv 2>&1
echo "# host cores: $(nproc); $(grep -m1 'model name' /proc/cpuinfo)"
if [ ! -x "$HERE/igla_tests" ]; then tar xJf "$HERE/bin.tar.xz" -C "$HERE" || { echo "FAIL: unpacking the binaries"; exit 1; }; fi
IX=/tmp/igla-ivf-bench.igla
xz -d -T0 -c "$HERE/data/bench.igla.xz" > "$IX" || { echo "FAIL: unpacking the index"; exit 1; }

echo "# tests: CudaIvf.*"
SECONDS=0
timeout 90 "$HERE/igla_tests" --gtest_filter='CudaIvf.*' > "$OUT/tests_cudaivf.log" 2>&1
rc=$?
grep -E "^\[ +(OK|PASSED|FAILED|SKIPPED) |tests ran" "$OUT/tests_cudaivf.log"
grep -E "Failure|want \(|Expected|Which is" "$OUT/tests_cudaivf.log" | head -20
[ $rc -eq 0 ] || { FAIL=1; echo "FAIL: CudaIvf tests rc=$rc"; }
echo "# ${SECONDS}s; bench-ann --device cuda"
SECONDS=0
if [ -f "$HERE/data/truth.txt" ]; then  # stage_ivf.sh WORDS=all: every word, the truth computed where the floats are
  ARGS=(bench-ann --index "$IX" --device cuda --truth "$HERE/data/truth.txt" --heldout 0 --no-peers --one-queries 100
        --nprobe "${NPROBE:-1,2,4,8,16,32,64,all}" --candidates 50,63,200 --int8-candidates 20
        --no-graph --csv "$OUT/ann_cuda.csv")
else
  ARGS=(bench-ann --index "$IX" --device cuda --queries 2000 --heldout 2000 --one-queries 100
        --nprobe "${NPROBE:-1,2,4,8,16,32,64,all}" --candidates 50,63,200 --int8-candidates 20 --ef 20,40,80,160 --hnsw-m 16
        --no-graph --no-faiss --csv "$OUT/ann_cuda.csv")
fi
echo "igla ${ARGS[*]}"
timeout "${BENCH_TIMEOUT:-180}" "$HERE/igla" "${ARGS[@]}" 2>&1 | grep -v -E '^\s*(quantizing|k-means|building)' | tee "$OUT/bench_ann.log"
rc=${PIPESTATUS[0]}
[ $rc -eq 0 ] || { FAIL=1; echo "FAIL: bench-ann rc=$rc"; }
echo "# ${SECONDS}s; tests: the rest of Cuda*"
SECONDS=0
timeout "${CUDA_TESTS_TIMEOUT:-120}" "$HERE/igla_tests" --gtest_filter='Cuda*:-CudaIvf.*' > "$OUT/tests_cuda.log" 2>&1
rc=$?
grep -E "^\[  (PASSED|FAILED|SKIPPED) |^\[  FAILED|tests ran" "$OUT/tests_cuda.log"
grep -E "Failure|want \(" "$OUT/tests_cuda.log" | head -10
[ $rc -eq 0 ] || { FAIL=1; echo "FAIL: Cuda* tests rc=$rc"; }
echo "# ${SECONDS}s; done FAIL=$FAIL"
exit $FAIL
