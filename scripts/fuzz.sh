#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz, ASan + UBSan, clang) in build-fuzz and runs each one.
#   scripts/fuzz.sh [SECONDS]       each target for SECONDS (default 60), starting from its seed
#                                   corpus (tests/fuzz/corpus/<target>/, never written to: new
#                                   inputs go to build-fuzz/corpus/<target>/)
#   scripts/fuzz.sh 0 | --corpus-only   replays the seed corpora only: the regression test
# Env: FUZZ_TARGETS="glove index" picks targets; FUZZ_JOBS=N runs N targets at once (default 1);
#      FUZZ_BUILD=DIR (default build-fuzz). Exit status non-zero on any crash, leak, sanitizer
# report or broken invariant; the input that caused it is saved as build-fuzz/crash-<target>-*
# (to make it a regression test: copy it into tests/fuzz/corpus/<target>/ and fix the bug).
# Each run's last libFuzzer status line (execs, cov, ft) is printed; logs: build-fuzz/logs/.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-60}
[[ $SECONDS_EACH == --corpus-only ]] && SECONDS_EACH=0
[[ $SECONDS_EACH =~ ^[0-9]+$ ]] || { echo "usage: scripts/fuzz.sh [SECONDS | --corpus-only]" >&2; exit 2; }
BUILD=${FUZZ_BUILD:-build-fuzz}
JOBS=${FUZZ_JOBS:-1}
TARGETS=${FUZZ_TARGETS:-$(ls tests/fuzz/corpus)}

if [[ ! -f $BUILD/CMakeCache.txt ]]; then
  CC=clang CXX=clang++ cmake -S . -B "$BUILD" -DIGLA_FUZZ=ON -DIGLA_TESTS=OFF -DIGLA_BENCH=OFF \
    -DIGLA_CUDA=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$BUILD" -j"$(nproc)" --target $(for t in $TARGETS; do printf 'fuzz_%s ' "$t"; done) >/dev/null
mkdir -p "$BUILD/logs"

# Sanitizers: any report is fatal; leaks count as findings.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

run_one() {
  local t=$1 log="$BUILD/logs/$1.log" bin="$BUILD/tests/fuzz/fuzz_$1"
  # -rss_limit_mb / -malloc_limit_mb: an input that asks for more memory is a finding too.
  local common=(-rss_limit_mb=2048 -malloc_limit_mb=2048 -timeout=10 -print_final_stats=1
                -artifact_prefix="$BUILD/crash-$t-")
  if ((SECONDS_EACH == 0)); then
    "$bin" "${common[@]}" -runs=0 tests/fuzz/corpus/"$t" >"$log" 2>&1 || { echo "fuzz: $t FAILED on its corpus (log: $log)"; tail -n 30 "$log"; return 1; }
    echo "fuzz: $t corpus replayed: $(ls tests/fuzz/corpus/$t | wc -l) inputs, $(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -n 1)"
  else
    mkdir -p "$BUILD/corpus/$t"
    "$bin" "${common[@]}" -max_total_time="$SECONDS_EACH" -max_len=4096 -use_value_profile=1 \
      "$BUILD/corpus/$t" tests/fuzz/corpus/"$t" >"$log" 2>&1 || { echo "fuzz: $t FAILED (log: $log)"; tail -n 40 "$log"; return 1; }
    local execs; execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
    echo "fuzz: $t ${SECONDS_EACH}s: $execs executions, $(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -n 1), 0 crashes"
  fi
}

status=0
if ((JOBS > 1)); then
  pids=()
  for t in $TARGETS; do
    run_one "$t" & pids+=($!)
    while (($(jobs -rp | wc -l) >= JOBS)); do sleep 1; done
  done
  for p in "${pids[@]}"; do wait "$p" || status=1; done
else
  for t in $TARGETS; do run_one "$t" || status=1; done
fi
exit $status
