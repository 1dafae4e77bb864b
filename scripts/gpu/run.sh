#!/usr/bin/env bash
# igla CUDA backend: check and time in one go on a GPU machine, from a folder staged by
# scripts/gpu/stage.sh (prebuilt binaries + libs, the default GloVe index without its float32
# vectors, the analogy questions). Run inside that folder:
#
#   bash run.sh [quick] [guess] [st] [r8] [exact] [sweep] [mt] [ctest] [serve]
#
# Always:
#   1. tests   the Cuda* GoogleTest cases (every CUDA path and the device rerank against the reference)
#   2. bench   igla_cuda_bench on the default index: checks on every path, batches 1 / 1,024 / 65,536,
#              the two-stage search (candidates 50 on the GPU vs 0); random 100K x 300 at 65,536
#              (the K <= 32 mma path, for regressions)
#   3. cli     eval analogies --restrict 0 (cuda at several --batch sizes, cpu; same answers), one
#              analogy --time (cuda, cpu; IGLA_CUDA_SINGLE_SPLIT sweep), nearest --input of 65,536
#              words with --candidates 50 and 0 (cuda vs cpu outputs)
# Modes:
#   quick      the Cuda* tests only, then stop
#   guess      after the Cuda* tests only the guessed starts (NOTES v19), then stop: nearest 65,536 on the
#              mma path with its start the sample's r-th key (short lists refilled) against the K-th,
#              checked against the CPU reference; kernel counters; ncu's ms by kernel of the same bench;
#              the eval's answers on the GPU against the CPU's
#              (run 59-62's sampled-bound sweeps: docs/gpu-runs/run59_summary.txt, run60-62_summary.txt)
#   st         after the Cuda* tests only the eval (the mt path) with and without the shared-terms scan
#              (NOTES v22): answers against the CPU's, times, ncu's ms by kernel and the scan's stall sections
#   r8         after the Cuda* tests, the rerank rows on the GPU as int8 bytes (IGLA_CUDA_RERANK_INT8=1,
#              NOTES v23) against float rows: nearest 65,536 reranked and --candidates 0 (issue 11 (c)), the
#              eval; answers checked against the CPU; ncu's ms by kernel of both. With st: both, then stop
#   exact      after the Cuda* tests, the rest of igla_tests (the CPU kernels' exactness suite) here
#   sweep      nearest 65,536 (rerank 50, candidates 0, ternary K = 51 / 22) under other mma row-list settings
#              (IGLA_CUDA_APPEND_K / _SLACK, alternating with the sorted lists), and their kernel counters
#   mt         eval analogies on the popc path vs the mt path (several-term Sum queries on the tensor
#              cores), the mt path's candidate counts (IGLA_CUDA_STATS), a sample-size sweep, and every
#              kernel's time in one eval (ncu)
#   ctest      the whole ctest suite of the build tree staged in ctest/ (stage.sh, unless WITH_CTEST=0),
#              at the build's absolute path (a link to it), the CUDA tests not skipped
#   serve      scripts/loadtest.sh with `igla serve --device cuda` (wrk and its libraries staged in wrk/)
# SKIP_TESTS=1 skips the Cuda* tests (a short call after a run that passed them on the same kernels).
# Logs go to $OUT (the device tool's output folder) or /tmp/igla-gpu-out: keep them out of scripts/
# (summaries go to docs/gpu-runs/).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-/tmp/igla-gpu-out}
mkdir -p "$OUT"
LOG="$OUT/run.log"
: > "$LOG"
say() { echo "$@" | tee -a "$LOG"; }
export LD_LIBRARY_PATH="$HERE/lib:${LD_LIBRARY_PATH:-}"
BIN="$HERE"
IX="$HERE/data/glove-100d.igla"
Q="$HERE/data/questions-words.txt"
FAIL=0
WANT_CTEST=0; WANT_SERVE=0; WANT_SWEEP=0; WANT_QUICK=0; WANT_EXACT=0; WANT_MT=0; WANT_GUESS=0; WANT_ST=0; WANT_R8=0
for a in "$@"; do
  case $a in ctest) WANT_CTEST=1 ;; serve) WANT_SERVE=1 ;; sweep) WANT_SWEEP=1 ;; quick) WANT_QUICK=1 ;; exact) WANT_EXACT=1 ;;
    mt) WANT_MT=1 ;; guess) WANT_GUESS=1 ;; st) WANT_ST=1 ;; r8) WANT_R8=1 ;; *) echo "run.sh: unknown mode $a" >&2; exit 2 ;; esac
done

say "# igla GPU run ($*) $(date -u +%Y-%m-%dT%H:%MZ) on $(hostname); $(cat "$HERE/BUILD_INFO" 2>/dev/null)"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.sm,power.limit --format=csv 2>&1 | tee -a "$LOG"
nproc | sed 's/^/# host cores: /' | tee -a "$LOG"
if [ -f "$HERE/bin.tar.xz" ] && [ ! -x "$HERE/igla_tests" ]; then tar xJf "$HERE/bin.tar.xz" -C "$HERE" || { say "FAIL: unpacking the binaries"; exit 1; }; fi
if [ -f "$IX.xz" ] && [ ! -f "$IX" ]; then xz -d -T0 -k "$IX.xz" || { say "FAIL: unpacking the index"; exit 1; }; fi

# One GPU eval (analogies, --restrict 0) under the environment assignments given, then (after --)
# more eval flags: its answers against the CPU's ($OUT/eval_cpu.txt), its time line under LABEL.
#   gpu_eval_vs_cpu LABEL [NAME=value ...] [-- --flag ...]
gpu_eval_vs_cpu() {
  local label=$1 envs=()
  shift
  while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done
  [ "${1:-}" = -- ] && shift
  env ${envs[@]+"${envs[@]}"} timeout 60 "$BIN/igla" eval analogies "$Q" --index "$IX" --restrict 0 --device cuda "$@" \
      > "$OUT/eval_p.txt" 2> "$OUT/eval_p.err"
  cmp -s "$OUT/eval_p.txt" "$OUT/eval_cpu.txt" || { FAIL=1; say "FAIL: eval ($label) differs from the cpu's"; }
  say "  $label: $(grep -h 'time:' "$OUT/eval_p.err")"
}

# Nearest 65,536 on the default index (reranked 50, candidates 0, ternary K 51 / 22) under the
# environment assignments given: q/s and ms a call of each shape.
guess_one() {
  env "$@" timeout 100 "$BIN/igla_cuda_bench" --name glove-default --index "$IX" --batches 65536 --check 0 --singles 0 \
      --seconds 0.5 --rerank --no-compare --no-analogies > "$OUT/bench_guess.log" 2>&1 || { FAIL=1; say "  rc != 0: $*"; }
  grep -q "FAIL" "$OUT/bench_guess.log" && { FAIL=1; say "FAIL: $*"; grep FAIL "$OUT/bench_guess.log" | head -3 | tee -a "$LOG"; }
  say "  $*: $(grep -E '^igla.*(rerank50-device|candidates0|ternary-k50|ternary-k21)' "$OUT/bench_guess.log" | awk '{printf "%s %.0f (%.2f ms) ", $6, $8, $9}')"
}

# The eval (mt path) with the per-query scan (IGLA_CUDA_MT_SHARED=0) and the shared-terms scan (1):
# answers against the CPU's, times, ncu's ms by kernel.
eval_shared_ab() {
  IG="$BIN/igla"
  say "# eval analogies --restrict 0 (the mt path; IGLA_CUDA_MT_SHARED=1: the shared-terms scan, NOTES v22): cuda vs cpu answers"
  timeout 120 "$IG" eval analogies "$Q" --index "$IX" --restrict 0 --device cpu > "$OUT/eval_cpu.txt" 2> "$OUT/eval_cpu.err"
  for r in 1 2; do
    for sh in 0 1; do gpu_eval_vs_cpu "eval shared $sh" IGLA_CUDA_MT_SHARED=$sh; done
  done
  # With the cheaper scan a smaller bound sample (fewer words scored exactly up front, more keys
  # past the prefilter) may pay: the sample sizes (first + spread words; default 4,096 + 4,096)
  for smp in "1024 1024" "2048 2048" "4096 0" "8192 8192"; do
    set -- $smp
    gpu_eval_vs_cpu "eval shared 1, sample $1 + $2" IGLA_CUDA_MT_SHARED=1 IGLA_CUDA_MT_SAMPLE=$1 IGLA_CUDA_MT_SPREAD=$2
  done
  for sh in 0 1; do
    IGLA_CUDA_MT_SHARED=$sh timeout 120 ncu --clock-control none --metrics gpu__time_duration.sum "$IG" eval analogies "$Q" --index "$IX" \
        --restrict 0 --device cuda > "$OUT/ncu_eval.txt" 2>&1
    say "  ncu of one eval, shared $sh (rc $?), ms by kernel:"
    awk -f "$HERE/ncu_by_kernel.awk" "$OUT/ncu_eval.txt" | sort -k2 -nr | sed 's/^/    /' | tee -a "$LOG"
  done
}

# --- 1. tests --------------------------------------------------------------------------------
if [ "${SKIP_TESTS:-0}" = 1 ]; then say "# tests: skipped (SKIP_TESTS=1)"; else
say "# tests: Cuda*"
timeout 300 "$BIN/igla_tests" --gtest_filter='Cuda*' > "$OUT/tests_cuda.log" 2>&1
rc=$?
grep -E "^\[  (PASSED|FAILED|SKIPPED) |^\[  FAILED|tests ran" "$OUT/tests_cuda.log" | tee -a "$LOG"
grep -E "Failure|want \(" "$OUT/tests_cuda.log" | head -20 | tee -a "$LOG"
[ $rc -eq 0 ] || { FAIL=1; say "FAIL: Cuda* tests rc=$rc"; }
fi
[ $WANT_QUICK = 1 ] && { say "# quick: done (FAIL=$FAIL)"; exit $FAIL; }
if [ $WANT_GUESS = 1 ]; then
  IG="$BIN/igla"
  say "# guess: nearest 65,536 (rerank 50 = K 53, candidates 0 = K 11, ternary K 51 / 22): the mma path's start the"
  say "#        sample's r-th key (IGLA_CUDA_MMA_RANK, default 3; short lists refilled), against the K-th (rank 0)"
  # Checks first: 512 nearest queries (and 3CosAdd / 3CosMul) on every path against the CPU reference, at k 50
  # (K 51: the guessed start on by default) and k 10 (K 11: with IGLA_CUDA_MMA_SAMPLE_K=1), and 4,096 nearest
  # mma vs popc; rank 1 over 8,192 words refills most queries.
  for cfg in "50 IGLA_CUDA_MMA_RANK=3" "50 IGLA_CUDA_MMA_RANK=1 IGLA_CUDA_MMA_SPREAD=8192" "50 IGLA_CUDA_APPEND_K=33" \
             "50 IGLA_CUDA_BOUND_LANES=0" "50 IGLA_CUDA_BOUND_LANES=0 IGLA_CUDA_MMA_RANK=1 IGLA_CUDA_MMA_SPREAD=8192" \
             "10 IGLA_CUDA_MMA_RANK=2 IGLA_CUDA_MMA_SAMPLE_K=1" "10 IGLA_CUDA_MMA_RANK=1 IGLA_CUDA_MMA_SAMPLE_K=1"; do
    set -- $cfg; kk=$1; shift
    env "$@" timeout 150 "$BIN/igla_cuda_bench" --name glove-k$kk --index "$IX" --k $kk --check 512 --batches 65536 \
        --singles 0 --seconds 0 --no-compare --no-analogies > "$OUT/bench_guess_check.log" 2>&1 || { FAIL=1; say "  rc != 0: check $cfg"; }
    say "  check k $kk $*: $(grep -c ': ok' "$OUT/bench_guess_check.log") ok, $(grep -c 'FAIL' "$OUT/bench_guess_check.log") FAIL"
    grep -q FAIL "$OUT/bench_guess_check.log" && { FAIL=1; grep FAIL "$OUT/bench_guess_check.log" | head -3 | tee -a "$LOG"; }
  done
  # (ranks 1, 2, 4 and SAMPLE_K=1 were timed in runs 63-69, docs/gpu-runs/run65-69_summary.txt; append lists with
  # the guessed start in runs 70-71, slower: docs/gpu-runs/run70-72_summary.txt)
  for r in 1 2; do
    guess_one IGLA_CUDA_MMA_RANK=3
    guess_one IGLA_CUDA_BOUND_LANES=0
    guess_one IGLA_CUDA_MMA_RANK=0
  done
  guess_one IGLA_CUDA_PATH=mma IGLA_CUDA_MMA_MODE=2
  env IGLA_CUDA_PATH=mma IGLA_CUDA_STATS=1 timeout 100 "$BIN/igla_cuda_bench" --name glove-default --index "$IX" --batches 65536 \
      --check 0 --singles 0 --seconds 0 --rerank --no-compare --no-analogies > "$OUT/bench_guess_stats.log" 2>&1
  say "  stats, the defaults (cumulative over the shapes):"; grep -E '^# (rerank50-device|candidates0|ternary-k50|ternary-k21) 65536 after' "$OUT/bench_guess_stats.log" | sed 's/^/    /' | tee -a "$LOG"
  say "# guess: ncu of the same bench (--seconds 0: every shape a few calls), ms by kernel, then the launches of its first calls"
  timeout 200 ncu --clock-control none --metrics gpu__time_duration.sum "$BIN/igla_cuda_bench" --name glove-default --index "$IX" \
      --batches 65536 --check 0 --singles 0 --seconds 0 --rerank --no-compare --no-analogies > "$OUT/ncu_bench.txt" 2>&1
  say "  ncu rc $?"
  awk -f "$HERE/ncu_by_kernel.awk" "$OUT/ncu_bench.txt" | sort -k2 -nr | tee -a "$LOG"
  awk '/^  [A-Za-z_].*Context [0-9]/ {k=$0; sub(/^ +/,"",k); sub(/^void /,"",k); gsub(/igla::cuda::|\(anonymous namespace\)::/,"",k); sub(/\(.*/,"",k)}
       /gpu__time_duration.sum/ {printf "%s %s %s | ", k, $(NF), $(NF-1); if (++n % 4 == 0) printf "\n"}' "$OUT/ncu_bench.txt" | head -40 | tee -a "$LOG"
  say "# guess: ncu sections (speed of light, warp states, occupancy) of the first 8 launches of the one-term bound pass, the refill's scan and the mma kernel"
  timeout 150 ncu --clock-control none --kernel-name regex:'one_term_bound|lane_bound|refill_scan|mma_kernel' --launch-skip 0 --launch-count 8 \
      --section SpeedOfLight --section WarpStateStats --section MemoryWorkloadAnalysis_Tables --section Occupancy "$BIN/igla_cuda_bench" \
      --name glove-default --index "$IX" --batches 65536 --check 0 --singles 0 --seconds 0 --rerank --no-compare --no-analogies \
      > "$OUT/ncu_stalls.txt" 2>&1
  say "  ncu rc $? (full text: ncu_stalls.txt)"
  grep -E "^  [a-z_].*\(|Duration|Stall|Warp Cycles Per Issued|Bank Conflicts|Achieved Occupancy|Compute \(SM\) Throughput|Memory Throughput" \
      "$OUT/ncu_stalls.txt" | cut -c1-160 | head -200 | tee -a "$LOG"
  eval_shared_ab
  rm -f "$OUT/eval_p.txt" "$OUT/eval_cpu.txt" "$OUT/ncu_bench.txt" "$OUT/ncu_eval.txt"
  say "# guess: done (FAIL=$FAIL)"; exit $FAIL
fi
if [ $WANT_R8 = 1 ]; then
  say "# r8: rerank rows on the GPU as int8 bytes (IGLA_CUDA_RERANK_INT8=1) vs float rows (NOTES v23)"
  for r8 in 0 1; do  # checks: 512 queries of each shape on every path against the CPU reference, k 50 and 10
    for kk in 50 10; do
      IGLA_CUDA_RERANK_INT8=$r8 timeout 150 "$BIN/igla_cuda_bench" --name glove-k$kk --index "$IX" --k $kk --check 512 --batches 65536 \
          --singles 0 --seconds 0 --rerank --no-compare --no-analogies > "$OUT/bench_r8_check.log" 2>&1 || { FAIL=1; say "  rc != 0: check r8 $r8 k $kk"; }
      say "  check RERANK_INT8=$r8 k $kk: $(grep -c ': ok' "$OUT/bench_r8_check.log") ok, $(grep -c 'FAIL' "$OUT/bench_r8_check.log") FAIL"
      grep -q FAIL "$OUT/bench_r8_check.log" && { FAIL=1; grep FAIL "$OUT/bench_r8_check.log" | head -3 | tee -a "$LOG"; }
    done
  done
  for r in 1 2 3; do
    guess_one IGLA_CUDA_RERANK_INT8=0
    guess_one IGLA_CUDA_RERANK_INT8=1
  done
  [ -f "$OUT/eval_cpu.txt" ] || timeout 120 "$BIN/igla" eval analogies "$Q" --index "$IX" --restrict 0 --device cpu > "$OUT/eval_cpu.txt" 2> "$OUT/eval_cpu.err"
  for r in 1 2; do
    for r8 in 0 1; do gpu_eval_vs_cpu "eval RERANK_INT8=$r8" IGLA_CUDA_RERANK_INT8=$r8; done
    gpu_eval_vs_cpu "eval RERANK_INT8=1 MT_SHARED=1" IGLA_CUDA_RERANK_INT8=1 IGLA_CUDA_MT_SHARED=1
  done
  for r8 in 0 1; do
    IGLA_CUDA_RERANK_INT8=$r8 timeout 200 ncu --clock-control none --metrics gpu__time_duration.sum "$BIN/igla_cuda_bench" --name glove-default \
        --index "$IX" --batches 65536 --check 0 --singles 0 --seconds 0 --rerank --no-compare --no-analogies > "$OUT/ncu_bench.txt" 2>&1
    say "  ncu of the bench, RERANK_INT8=$r8 (rc $?), ms by kernel:"
    awk -f "$HERE/ncu_by_kernel.awk" "$OUT/ncu_bench.txt" | sort -k2 -nr | sed 's/^/    /' | tee -a "$LOG"
  done
  rm -f "$OUT/ncu_bench.txt"
  [ $WANT_ST = 1 ] || { rm -f "$OUT/eval_p.txt" "$OUT/eval_cpu.txt"; say "# r8: done (FAIL=$FAIL)"; exit $FAIL; }
fi
if [ $WANT_ST = 1 ]; then
  eval_shared_ab
  say "# st: ncu sections of the shared-terms scan (2 launches) and the per-query scan (1)"
  IGLA_CUDA_MT_SHARED=1 timeout 150 ncu --clock-control none --kernel-name regex:'st_scan|mt_scan' --launch-skip 0 --launch-count 2 \
      --section SpeedOfLight --section WarpStateStats --section Occupancy --section LaunchStats "$BIN/igla" eval analogies "$Q" \
      --index "$IX" --restrict 0 --device cuda > "$OUT/ncu_stalls.txt" 2>&1
  say "  ncu rc $? (full text: ncu_stalls.txt)"
  grep -E "^  [a-z_].*\(|Duration|Stall|Warp Cycles Per Issued|Achieved Occupancy|Compute \(SM\) Throughput|Memory Throughput|Registers Per|Issue Slots Busy|Executed Ipc" \
      "$OUT/ncu_stalls.txt" | cut -c1-160 | head -80 | tee -a "$LOG"
  rm -f "$OUT/eval_p.txt" "$OUT/eval_cpu.txt" "$OUT/ncu_eval.txt"
  say "# st: done (FAIL=$FAIL)"; exit $FAIL
fi
if [ $WANT_EXACT = 1 ]; then
  say "# tests: the rest of igla_tests (the CPU kernels' exactness suite) on this machine"
  timeout 180 "$BIN/igla_tests" --gtest_filter='-Cuda.*:Cli*:EvalRealData*' > "$OUT/tests_exact.log" 2>&1
  rc=$?
  grep -E "^\[  (PASSED|FAILED|SKIPPED) |^\[  FAILED" "$OUT/tests_exact.log" | tee -a "$LOG"
  [ $rc -eq 0 ] || { FAIL=1; say "FAIL: exactness suite rc=$rc"; }
fi

# --- 2. bench --------------------------------------------------------------------------------
say "# bench: default GloVe index"
timeout 200 "$BIN/igla_cuda_bench" --name glove-default --index "$IX" --batches 1,1024,65536 \
    --check 256 --singles 2000 --seconds 0.5 --rerank --out "$OUT/bench.tsv" > "$OUT/bench_glove.log" 2>&1
rc=$?
grep -E "^CHECK|rerank50|candidates0|ternary-k|3cosadd-rerank|FAIL" "$OUT/bench_glove.log" | grep -v ": ok" | tee -a "$LOG"
grep -c ": ok" "$OUT/bench_glove.log" | sed 's/^/CHECKS ok: /' | tee -a "$LOG"
[ $rc -eq 0 ] || { FAIL=1; say "FAIL: bench glove rc=$rc"; tail -5 "$OUT/bench_glove.log" | tee -a "$LOG"; }
say "# bench: random 100K x 300, 65,536 (K <= 32 mma path)"
timeout 100 "$BIN/igla_cuda_bench" --name rand-100k-300 --n 100000 --dims 300 --batches 65536 \
    --check 64 --singles 200 --seconds 0.5 --out "$OUT/bench.tsv" > "$OUT/bench_rand.log" 2>&1
rc=$?
grep -E "65536|FAIL|not ok" "$OUT/bench_rand.log" | tee -a "$LOG"
[ $rc -eq 0 ] || { FAIL=1; say "FAIL: bench rand rc=$rc"; }

if [ $WANT_SWEEP = 1 ]; then  # the mma row lists at 65,536 (NOTES v16): append lists past 32 keys (IGLA_CUDA_APPEND_K=33,
  # slack 32) vs the sorted ones (65, the default: heap past 32 keys), other slacks, eager selects, append lists at every
  # K; alternating rounds
  sweep_one() {
    env IGLA_CUDA_PATH=mma "$@" timeout 100 "$BIN/igla_cuda_bench" --name glove-default --index "$IX" --batches 65536 --check 0 --singles 0 \
        --seconds 0.5 --rerank --no-compare --no-analogies > "$OUT/bench_sweep.log" 2>&1 || { [[ "$*" == *MMA_MODE* ]] || FAIL=1; say "  rc != 0: sweep $*"; }
    say "  sweep $*: $(grep -E '^igla.*(rerank50-device|candidates0|ternary-k50|ternary-k21)' "$OUT/bench_sweep.log" | awk '{printf "%s %.0f (%.2f ms) ", $6, $8, $9}')"
  }
  for r in 1 2; do
    sweep_one IGLA_CUDA_APPEND_K=65
    sweep_one IGLA_CUDA_APPEND_K=33
  done
  for sl in 12 16 48 64; do sweep_one IGLA_CUDA_APPEND_K=33 IGLA_CUDA_APPEND_SLACK=$sl; done
  for eg in 4 8 16; do sweep_one IGLA_CUDA_APPEND_K=33 IGLA_CUDA_APPEND_EAGER=$eg; done
  sweep_one IGLA_CUDA_APPEND_K=33 IGLA_CUDA_APPEND_SLACK=64 IGLA_CUDA_APPEND_EAGER=16
  sweep_one IGLA_CUDA_APPEND_K=1
  sweep_one IGLA_CUDA_APPEND_K=1 IGLA_CUDA_APPEND_SLACK=64
  sweep_one IGLA_CUDA_GROUP_CTA=1
  sweep_one IGLA_CUDA_MMA_MODE=2  # compares only (answers wrong, not checked): the floor without the candidate path
  # counters (kernel atomics on: not timed): warp-tiles with a candidate, staged, queued, drains, selects, per row
  for ak in 65 33 1; do
    IGLA_CUDA_PATH=mma IGLA_CUDA_STATS=1 IGLA_CUDA_APPEND_K=$ak timeout 100 "$BIN/igla_cuda_bench" --name glove-default --index "$IX" --batches 65536 \
        --check 0 --singles 0 --seconds 0 --rerank --no-compare --no-analogies > "$OUT/bench_stats_$ak.log" 2>&1
    say "  stats APPEND_K=$ak:"; grep -E '^# (rerank50-device|candidates0|ternary-k50|ternary-k21) 65536 after' "$OUT/bench_stats_$ak.log" | sed 's/^/    /' | tee -a "$LOG"
  done
fi

# --- 3. cli ----------------------------------------------------------------------------------
IG="$BIN/igla"
say "# cli: eval analogies --restrict 0"
for dev in cuda cpu; do
  timeout 120 "$IG" eval analogies "$Q" --index "$IX" --restrict 0 --device $dev > "$OUT/eval_$dev.txt" 2> "$OUT/eval_$dev.err"
  say "  $dev rc=$? $(grep -h 'time:' "$OUT/eval_$dev.err") $(grep -h '^total' "$OUT/eval_$dev.txt")"
done
cmp -s "$OUT/eval_cuda.txt" "$OUT/eval_cpu.txt" && say "CHECK eval analogies cuda vs cpu: same output" \
  || { FAIL=1; say "FAIL: eval analogies cuda vs cpu differ"; diff "$OUT/eval_cuda.txt" "$OUT/eval_cpu.txt" | head | tee -a "$LOG"; }
for b in 4096 4096 1024 8192 19544; do gpu_eval_vs_cpu "cuda --batch $b" -- --batch $b; done
timeout 60 "$IG" eval analogies "$Q" --index "$IX" --restrict 0 --device cuda --candidates 0 > /dev/null 2> "$OUT/eval_cuda_c0.err"
say "  cuda --candidates 0: $(grep -h 'time:' "$OUT/eval_cuda_c0.err")"
if [ $WANT_MT = 1 ]; then  # the mt path against popc on the same eval, its candidate counts, sample sizes
  for path in popc mt; do
    for r in 1 2; do gpu_eval_vs_cpu "cuda path=$path" IGLA_CUDA_PATH=$path; done
  done
  for path in popc mt; do gpu_eval_vs_cpu "cuda --batch 19544 path=$path" IGLA_CUDA_PATH=$path -- --batch 19544; done
  # 19,544 3CosAdd queries in one call (igla_cuda_bench): candidates a query and rescans (IGLA_CUDA_STATS)
  for smp in 1024 4096 16384 65536; do
    IGLA_CUDA_STATS=1 IGLA_CUDA_MT_SAMPLE=$smp timeout 100 "$BIN/igla_cuda_bench" --name glove-default --index "$IX" --batches 1024 \
        --check 0 --singles 0 --seconds 0.2 --rerank --no-compare > "$OUT/bench_mt_$smp.log" 2>&1
    say "  mt sample $smp: $(grep -E '3cosadd-(rerank50|candidates0)-mt' "$OUT/bench_mt_$smp.log" | awk '{print $6, $8, $9}' | tr '\n' ' ')$(grep -o 'mt candidates.*' "$OUT/bench_mt_$smp.log" | tail -1) (11 searches of 19,544)"
  done
  # Where the eval's GPU time goes (issue 11 (a): the mt path needs ~3x): every kernel's duration in one
  # eval, summed by kernel (ncu serializes the launches, so the sum is the GPU work without overlap)
  timeout 240 ncu --clock-control none --metrics gpu__time_duration.sum "$IG" eval analogies "$Q" --index "$IX" \
      --restrict 0 --device cuda > "$OUT/ncu_eval.txt" 2>&1
  say "  ncu, one eval (rc $?): ms by kernel (launches)"
  awk -f "$HERE/ncu_by_kernel.awk" "$OUT/ncu_eval.txt" | sort -k2 -nr | tee -a "$LOG"
  rm -f "$OUT/eval_p.txt"
fi
say "# cli: one analogy, --time"
for dev in cuda cpu; do
  for r in 1 2 3; do "$IG" analogy man king woman --index "$IX" --device $dev --time > "$OUT/analogy_$dev.txt" 2>> "$OUT/analogy_$dev.err"; done
  say "  $dev: $(head -1 "$OUT/analogy_$dev.txt" | tr '\t' ' ') | $(grep -h 'analogy:' "$OUT/analogy_$dev.err" | sed 's/ per query warm (median of 21)//; s/; 341479 words.*//' | tr '\n' ';')"
done
cmp -s "$OUT/analogy_cuda.txt" "$OUT/analogy_cpu.txt" && say "CHECK analogy cuda vs cpu: same output" || { FAIL=1; say "FAIL: analogy outputs differ"; }
# The one-query kernel's prefix mode (keys kept a CTA; 0: the old merge of 112 splits x 53 keys), A/B alternating
for r in 1 2 3; do
  for pf in 0 4 8; do
    IGLA_CUDA_SINGLE_PREFIX=$pf "$IG" analogy man king woman --index "$IX" --device cuda --time > "$OUT/analogy_sp.txt" 2> "$OUT/analogy_sp.err"
    cmp -s "$OUT/analogy_sp.txt" "$OUT/analogy_cpu.txt" || { FAIL=1; say "FAIL: analogy prefix $pf differs"; }
    say "  cuda prefix $pf: $(grep -h 'analogy:' "$OUT/analogy_sp.err" | sed 's/; 341479 words.*//')"
  done
done
for pf in 0 4; do  # other questions, one process each: every answer against the cpu's
  for qq in "paris france berlin" "good better bad" "walk walked swim" "japan yen russia"; do
    IGLA_CUDA_SINGLE_PREFIX=$pf "$IG" analogy $qq --index "$IX" --device cuda > "$OUT/an_g.txt" 2>/dev/null
    "$IG" analogy $qq --index "$IX" --device cpu > "$OUT/an_c.txt" 2>/dev/null
    cmp -s "$OUT/an_g.txt" "$OUT/an_c.txt" || { FAIL=1; say "FAIL: analogy $qq prefix $pf differs"; }
  done
done
say "CHECK 4 more analogies x prefix 0 / 4: cuda vs cpu compared (a FAIL line above if any differs)"
for c in 0 50; do  # without the rerank stage (K = 13, no host rescoring) and with it: what the rerank costs
  "$IG" analogy man king woman --index "$IX" --device cuda --time --candidates $c > /dev/null 2> "$OUT/analogy_c.err"
  say "  cuda --candidates $c: $(grep -h 'analogy:' "$OUT/analogy_c.err" | sed 's/; 341479 words.*//')"
done
IGLA_CUDA_SINGLE=trace "$IG" analogy man king woman --index "$IX" --device cuda --time > /dev/null 2> "$OUT/analogy_trace.err"
say "  trace: $(grep -h 'analogy:\|trace' "$OUT/analogy_trace.err" | tr '\n' ' ')"
say "# cli: nearest --input of 65,536 words, --candidates 50 (default) and 0"
cp "$HERE/data/words65536.txt" "$OUT/words.txt"
for dev in cuda cpu; do
  for c in 50 0; do
    s=$(date +%s%N)
    timeout 120 "$IG" nearest --input "$OUT/words.txt" --index "$IX" --device $dev --candidates $c > "$OUT/nearest_${dev}_$c.txt" 2> "$OUT/nearest_${dev}_$c.err"
    rc=$?
    e=$(date +%s%N)
    say "  $dev candidates=$c rc=$rc wall $(( (e - s) / 1000000 )) ms, $(wc -l < "$OUT/nearest_${dev}_$c.txt") lines"
  done
done
for c in 50 0; do
  cmp -s "$OUT/nearest_cuda_$c.txt" "$OUT/nearest_cpu_$c.txt" && say "CHECK nearest --input candidates=$c cuda vs cpu: same output" \
    || { FAIL=1; say "FAIL: nearest --input candidates=$c cuda vs cpu differ"; }
done
rm -f "$OUT/nearest_"*.txt "$OUT/words.txt" "$OUT/eval_p.txt"

# --- ctest -----------------------------------------------------------------------------------
if [ $WANT_CTEST = 1 ]; then
  [ -f "$HERE/ctest.tar.xz" ] && tar xJf "$HERE/ctest.tar.xz" -C "$HERE"  # ctest/ and lib/ (igla_server_tests' libraries)
  SRC=$(cat "$HERE/ctest/SOURCE_DIR")
  say "# ctest: the whole suite of the staged build tree; $SRC -> the staged source tree (git archive of the build's commit)"
  mkdir -p "$(dirname "$SRC")"
  [ -e "$SRC" ] || ln -s "$HERE/ctest/src" "$SRC"
  [ -e "$SRC/build-cuda" ] || ln -s "$HERE/ctest/build-cuda" "$SRC/build-cuda"
  cp "$BIN/igla" "$HERE/ctest/build-cuda/" && cp "$BIN/igla_tests" "$HERE/ctest/build-cuda/tests/"
  # The CUDA tests one at a time (each process would start its own persistent one-query kernel on
  # the one GPU), the rest 12 at a time.
  (cd "$SRC/build-cuda" && timeout 250 ctest -R 'Cuda' -j 1 --timeout 200 > "$OUT/ctest_cuda.log" 2>&1)
  rc1=$?
  tail -4 "$OUT/ctest_cuda.log" | tee -a "$LOG"
  (cd "$SRC/build-cuda" && timeout 300 ctest -E 'Cuda' -j 12 --timeout 250 > "$OUT/ctest.log" 2>&1)
  rc=$?
  [ $rc1 -eq 0 ] || rc=$rc1
  tail -15 "$OUT/ctest.log" | tee -a "$LOG"
  grep -E "Skipped|\*\*\*" "$OUT/ctest.log" | head -20 | tee -a "$LOG"
  [ $rc -eq 0 ] || { FAIL=1; say "FAIL: ctest rc=$rc"; }
fi

# --- serve -----------------------------------------------------------------------------------
if [ $WANT_SERVE = 1 ]; then
  say "# serve: scripts/loadtest.sh with --device cuda (wrk carried)"
  [ -d "$HERE/wrk" ] || tar xJf "$HERE/wrk.tar.xz" -C "$HERE"
  export PATH="$HERE/wrk:$PATH"
  [ -d "$HERE/ctest/src" ] || tar xJf "$HERE/ctest.tar.xz" -C "$HERE"
  (cd "$HERE/ctest/src" && IGLA="$BIN/igla" INDEX="$IX" SERVE_ARGS="--timeout-ms 30000 --device cuda" timeout 150 bash scripts/loadtest.sh 5) > "$OUT/loadtest.log" 2>&1
  say "  rc=$?"; tail -8 "$OUT/loadtest.log" | tee -a "$LOG"
fi
say "# done: FAIL=$FAIL"
exit $FAIL
