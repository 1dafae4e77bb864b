#!/usr/bin/env bash
# igla CUDA backend on the Searcher v2 API (issue 11): check and time in one go on a GPU machine,
# from a folder staged by scripts/gpu/stage_v2.sh (prebuilt binaries + libs, the default GloVe
# index without its float32 vectors, the analogy questions). Run inside that folder:
#
#   bash run_v2.sh [quick]
#
#   1. tests   the Cuda* GoogleTest cases, then the exactness suite (Search.*, the CPU kernels
#              against the reference) on this machine
#   2. bench   igla_cuda_bench on the default index (rotated codes + int8 rerank): ternary checks
#              and batches on every path (the calibration table), then the two-stage search
#              (device rerank vs host rerank of the same candidates, bit for bit; candidates 50 vs 0);
#              random 100K x 300 as in run 28 (regressions of the ternary paths)
#   3. cli     igla eval analogies --restrict 0 on cuda and cpu (same answers), one analogy --time,
#              nearest --input of 65,536 words with --candidates 50 and 0, CPU vs CUDA outputs
# Logs go to $OUT (the device tool's output folder) or /tmp/igla-gpu-out.
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

say "# igla GPU run (v2) $(date -u +%Y-%m-%dT%H:%MZ) on $(hostname); $(cat "$HERE/BUILD_INFO" 2>/dev/null)"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.sm,power.limit --format=csv 2>&1 | tee -a "$LOG"
nproc | sed 's/^/# host cores: /' | tee -a "$LOG"
if [ -f "$HERE/bin.tar.xz" ] && [ ! -x "$HERE/igla_tests" ]; then tar xJf "$HERE/bin.tar.xz" -C "$HERE" || { say "FAIL: unpacking the binaries"; exit 1; }; fi
if [ -f "$IX.xz" ] && [ ! -f "$IX" ]; then xz -d -T0 -k "$IX.xz" || { say "FAIL: unpacking the index"; exit 1; }; fi
ls -la "$HERE/data" | tee -a "$LOG"

# --- 1. tests --------------------------------------------------------------------------------
say "# tests: Cuda* (every CUDA path and the device rerank against the reference)"
timeout 300 "$BIN/igla_tests" --gtest_filter='Cuda*' > "$OUT/tests_cuda.log" 2>&1
rc=$?
grep -E "^\[  (PASSED|FAILED|SKIPPED) |^\[       OK|^\[  FAILED|tests ran" "$OUT/tests_cuda.log" | tee -a "$LOG"
grep -E "Failure|want \(" "$OUT/tests_cuda.log" | head -20 | tee -a "$LOG"
[ $rc -eq 0 ] || { FAIL=1; say "FAIL: Cuda* tests rc=$rc"; }
[ "${1:-}" = quick ] && { say "# quick: done (FAIL=$FAIL)"; exit $FAIL; }
say "# tests: the rest of the suite built here (exactness of the CPU kernels where ported to v2)"
timeout 180 "$BIN/igla_tests" --gtest_filter='-Cuda.*:Cli*:EvalRealData*' > "$OUT/tests_exact.log" 2>&1
rc=$?
grep -E "^\[  (PASSED|FAILED|SKIPPED) |^\[  FAILED" "$OUT/tests_exact.log" | tee -a "$LOG"
[ $rc -eq 0 ] || { FAIL=1; say "FAIL: exactness suite rc=$rc"; }

# --- 2. bench --------------------------------------------------------------------------------
say "# bench: default GloVe index (rotated 128 + int8 rerank), checks, paths, calibration, two-stage"
timeout 200 "$BIN/igla_cuda_bench" --name glove-default --index "$IX" --batches 1,64,1024,8192,65536 \
    --check 256 --singles 2000 --seconds 0.5 --rerank --out "$OUT/bench.tsv" > "$OUT/bench_glove.log" 2>&1
rc=$?
cat "$OUT/bench_glove.log" | tee -a "$LOG" | tail -0
[ $rc -eq 0 ] || { FAIL=1; say "FAIL: bench glove rc=$rc"; }
say "# bench: random 100K x 300 (as run 28)"
timeout 100 "$BIN/igla_cuda_bench" --name rand-100k-300 --n 100000 --dims 300 --batches 1,64,1024,8192,65536 \
    --check 64 --singles 2000 --seconds 0.5 --out "$OUT/bench.tsv" > "$OUT/bench_rand.log" 2>&1
rc=$?
cat "$OUT/bench_rand.log" >> "$LOG"
[ $rc -eq 0 ] || { FAIL=1; say "FAIL: bench rand rc=$rc"; }

# --- 3. cli ----------------------------------------------------------------------------------
IG="$BIN/igla"
say "# cli: eval analogies --restrict 0 (full vocabulary), cuda then cpu"
for dev in cuda cpu; do
  timeout 120 "$IG" eval analogies "$Q" --index "$IX" --restrict 0 --device $dev > "$OUT/eval_$dev.txt" 2> "$OUT/eval_$dev.err"
  say "  $dev rc=$? $(grep -h 'time:' "$OUT/eval_$dev.err") $(grep -h '^total' "$OUT/eval_$dev.txt")"
done
cmp -s "$OUT/eval_cuda.txt" "$OUT/eval_cpu.txt" && say "CHECK eval analogies cuda vs cpu: same output" \
  || { FAIL=1; say "FAIL: eval analogies cuda vs cpu differ"; diff "$OUT/eval_cuda.txt" "$OUT/eval_cpu.txt" | head | tee -a "$LOG"; }
timeout 60 "$IG" eval analogies "$Q" --index "$IX" --restrict 0 --device cuda --candidates 0 > /dev/null 2> "$OUT/eval_cuda_c0.err"
say "  cuda --candidates 0: $(grep -h 'time:' "$OUT/eval_cuda_c0.err")"
say "# cli: one analogy, --time"
for dev in cuda cpu; do
  for r in 1 2 3; do "$IG" analogy man king woman --index "$IX" --device $dev --time > "$OUT/analogy_$dev.txt" 2>> "$OUT/analogy_$dev.err"; done
  say "  $dev: $(head -1 "$OUT/analogy_$dev.txt" | tr '\t' ' ') | $(grep -h 'analogy:' "$OUT/analogy_$dev.err")"
done
cmp -s "$OUT/analogy_cuda.txt" "$OUT/analogy_cpu.txt" && say "CHECK analogy cuda vs cpu: same output" || { FAIL=1; say "FAIL: analogy outputs differ"; }
say "# cli: nearest --input of 65,536 words (batched), --candidates 50 (default) and 0"
cp "$HERE/data/words65536.txt" "$OUT/words.txt"  # 65,536 distinct vocabulary words (stage_v2.sh)
wc -l "$OUT/words.txt" | tee -a "$LOG"
for dev in cuda cpu; do
  for c in 50 0; do
    s=$(date +%s%N)
    timeout 120 "$IG" nearest --input "$OUT/words.txt" --index "$IX" --device $dev --candidates $c > "$OUT/nearest_${dev}_$c.txt" 2> "$OUT/nearest_${dev}_$c.err"
    rc=$?
    e=$(date +%s%N)
    say "  $dev candidates=$c rc=$rc wall $(( (e - s) / 1000000 )) ms, $(wc -l < "$OUT/nearest_${dev}_$c.txt") lines $(tail -1 "$OUT/nearest_${dev}_$c.err")"
  done
done
for c in 50 0; do
  cmp -s "$OUT/nearest_cuda_$c.txt" "$OUT/nearest_cpu_$c.txt" && say "CHECK nearest --input candidates=$c cuda vs cpu: same output" \
    || { FAIL=1; say "FAIL: nearest --input candidates=$c cuda vs cpu differ"; }
done
rm -f "$OUT/nearest_"*.txt "$OUT/words.txt"
say "# done: FAIL=$FAIL"
exit $FAIL
