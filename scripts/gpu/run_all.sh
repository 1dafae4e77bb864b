#!/usr/bin/env bash
# igla CUDA backend: build, check against the CPU reference, and time, in one go on a GPU machine
# (one H100 or H200 here). Run from the repository root:
#
#   bash scripts/gpu/run_all.sh            # builds into build-gpu/ with CMake (Release, IGLA_CUDA=ON)
#
# What it does:
#   1. build   igla_tests and igla_cuda_bench. A machine without the C++ dependencies (fmt, CLI11,
#              nlohmann-json, simdjson, xxhash, GoogleTest) can use them unpacked under .gpu-deps/
#              (scripts/gpu/fetch_deps.sh makes it on a Debian machine), or run binaries built
#              elsewhere from .gpu-prebuilt/ (scripts/gpu/prebuild.sh; same x86-64, libs in lib/).
#   2. check   the GoogleTest suite's Cuda* tests (every path vs reference_search on random data
#              of odd sizes), then each bench data set's own checks against the reference.
#   3. time    batch sizes 1 (sequential), 64, 1024, 8192, 65536 on random 100K x 300 and
#              1M x 300, and on the real GloVe 341K x 100 index when .gpu-data/*.igla is there;
#              torch fp16 matmul + topk on the same data in the same run (scripts/gpu/torch_baseline.py).
#   4. table   scripts/gpu/summarize.py prints the final table (igla, torch, ratio).
# Logs go to $OUT (the device tool's output folder) or /tmp/igla-gpu-out.
set -uo pipefail
ROOT=$(pwd)
OUT=${OUT:-/tmp/igla-gpu-out}
mkdir -p "$OUT"
LOG="$OUT/run.log"
: > "$LOG"
say() { echo "$@" | tee -a "$LOG"; }
export PYTHONUNBUFFERED=1

say "# igla GPU run $(date -u +%Y-%m-%dT%H:%MZ) on $(hostname)"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.sm,power.limit --format=csv 2>&1 | tee -a "$LOG"

# --- 1. build ----------------------------------------------------------------------------------
if [ -x .gpu-prebuilt/igla_cuda_bench ] && [ -z "${IGLA_FORCE_BUILD:-}" ]; then
  BIN="$ROOT/.gpu-prebuilt"
  TESTS="$BIN/igla_tests"
  export LD_LIBRARY_PATH="$BIN/lib:${LD_LIBRARY_PATH:-}"
  say "# using prebuilt binaries from .gpu-prebuilt ($(cat .gpu-prebuilt/BUILD_INFO 2>/dev/null))"
else
  EXTRA=()
  if [ -d .gpu-deps/root ]; then
    DEPS="$ROOT/.gpu-deps/root"
    EXTRA+=("-DCMAKE_PREFIX_PATH=$DEPS/usr;$DEPS/usr/lib/x86_64-linux-gnu/cmake" "-DCMAKE_INCLUDE_PATH=$DEPS/usr/include"
            "-DCMAKE_LIBRARY_PATH=$DEPS/usr/lib/x86_64-linux-gnu" "-DGTEST_ROOT=$DEPS/usr")
    export LD_LIBRARY_PATH="$DEPS/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}"
  fi
  t0=$(date +%s)
  GEN=(); command -v ninja >/dev/null && GEN=(-G Ninja)
  cmake -S . -B build-gpu "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release -DIGLA_CUDA=ON -DIGLA_BENCH=OFF "${EXTRA[@]}" \
      >> "$LOG" 2>&1 || { say "FAIL: cmake configure (see run.log)"; tail -30 "$LOG"; exit 1; }
  cmake --build build-gpu -j"$(nproc)" --target igla_tests igla_cuda_bench >> "$LOG" 2>&1 \
      || { say "FAIL: build (see run.log)"; tail -40 "$LOG"; exit 1; }
  say "# built in $(( $(date +%s) - t0 )) s"
  BIN="$ROOT/build-gpu"
  TESTS="$BIN/tests/igla_tests"
fi

# SASS: the tensor-core instructions actually in the mma kernel.
if command -v cuobjdump >/dev/null; then
  cuobjdump -sass "$BIN/igla_cuda_bench" > /tmp/igla.sass 2>/dev/null
  {
    echo "# SASS of the mma kernel (KS=10, i.e. dims 289..320):"
    awk '/Function : .*mma_kernelILi10E/{f=1} f&&/Function : /&&!/mma_kernelILi10E/{f=0} f' /tmp/igla.sass \
      | grep -o -E '(IGMMA|HGMMA|WARPGROUP|UBLKCP|SYNCS)[A-Z0-9_.]*' | sort | uniq -c
  } | tee -a "$LOG"
fi

# --- 2. check ----------------------------------------------------------------------------------
FAIL=0
say "# tests: Cuda* against reference_search"
timeout 300 "$TESTS" --gtest_filter='Cuda*' > "$OUT/tests.log" 2>&1
rc=$?
tail -12 "$OUT/tests.log" | tee -a "$LOG"
grep -E "Failure|FAILED|want \(" "$OUT/tests.log" | head -20 | tee -a "$LOG"
[ $rc -eq 0 ] || { FAIL=1; say "FAIL: tests rc=$rc"; }

# Optional profile of one mma kernel launch (NCU=1): where the time goes.
if [ -n "${NCU:-}" ] && command -v ncu >/dev/null; then
  say "# ncu: one mma_kernel launch, 100K x 300, batch 16896"
  timeout 240 ncu --kernel-name regex:mma_kernel --launch-skip 3 --launch-count 1 \
      --section SpeedOfLight --section LaunchStats --section Occupancy --section WarpStateStats \
      --section SchedulerStats --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis \
      --section InstructionStats --section SourceCounters \
      "$BIN/igla_cuda_bench" --name ncu --n 100000 --dims 300 --batches 16896 --check 0 --no-compare \
      --seconds 0 > "$OUT/ncu.txt" 2>&1
  grep -E "Duration|Throughput|Pipe|Issued|Eligible|Stall|Warp Cycles|Registers|Achieved|L2 Hit|Executed Ipc" \
      "$OUT/ncu.txt" | head -60 | tee -a "$LOG"
fi

# --- 3. time -----------------------------------------------------------------------------------
: > "$OUT/igla.tsv"
: > "$OUT/torch.tsv"
BATCHES=${BATCHES:-1,64,1024,8192,65536}
run_set() {  # name, igla args...
  local name=$1; shift
  say "# data set $name"
  timeout 420 "$BIN/igla_cuda_bench" --name "$name" --batches "$BATCHES" --dump "/tmp/$name.bin" \
      --out "$OUT/igla.tsv" "$@" 2>&1 | tee -a "$LOG"
  [ "${PIPESTATUS[0]}" -eq 0 ] || { FAIL=1; say "FAIL: bench $name"; }
  if [ -z "${NO_TORCH:-}" ] && [ -f "/tmp/$name.bin" ]; then
    timeout 300 python3 "$ROOT/scripts/gpu/torch_baseline.py" "/tmp/$name.bin" "$name" --batches "$BATCHES" \
        --out "$OUT/torch.tsv" 2>&1 | tee -a "$LOG"
  fi
  rm -f "/tmp/$name.bin"
}
run_set rand-100k-300 --n 100000 --dims 300 ${BENCH_ARGS:-}
for f in .gpu-data/*.igla; do
  [ -f "$f" ] || continue
  run_set "$(basename "$f" .igla)" --index "$f" ${BENCH_ARGS:-}
done
[ -n "${SKIP_1M:-}" ] || run_set rand-1m-300 --n 1000000 --dims 300 --check 16 --singles 1000 ${BENCH_ARGS:-}

# --- 4. table ----------------------------------------------------------------------------------
DEV=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
python3 "$ROOT/scripts/gpu/summarize.py" "$OUT/igla.tsv" "$OUT/torch.tsv" \
    "igla CUDA vs torch fp16 (matmul + topk), k = 10, $DEV, $(date -u +%Y-%m-%d)" | tee "$OUT/summary.md" | tee -a "$LOG"
[ $FAIL -eq 0 ] && say "ALL CHECKS PASSED" || say "SOME CHECKS FAILED"
exit $FAIL
