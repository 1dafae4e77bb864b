#!/usr/bin/env bash
# Sanitizer CI (scripts/test.sh runs it after the normal test suite). Three stages:
#   asan  build-asan: the library, CLI and tests under AddressSanitizer + UndefinedBehaviorSanitizer
#         (any UB report is fatal); the suite runs once per CPU kernel this CPU has: scalar, avx2,
#         avx512 (the last only where /proc/cpuinfo shows avx512vpopcntdq).
#   tsan  build-tsan: ThreadSanitizer on the tests whose name contains "Concurrency" plus the
#         thread pool's (ThreadPool.*). OpenMP (index building, evaluation) is libgomp, which TSan
#         cannot see into: scripts/tsan.supp silences reports whose stacks run through it.
#   fuzz  build-fuzz (clang): the seed corpora replayed, then each fuzz target for FUZZ_SECONDS
#         (default 20) seconds (scripts/fuzz.sh).
# Usage: scripts/sanitize.sh [asan] [tsan] [fuzz]   (default: all three)
# Under ASan the real-data tests (*RealData*, *RealWinkJson*: the 341,479-word GloVe index and the
# 307 MB package JSON, minutes each under ASan) are left out; the normal run covers them.
set -euo pipefail
cd "$(dirname "$0")/.."
STAGES=${*:-asan tsan fuzz}
JOBS=$(nproc)
ASAN_SKIP='*RealData*:*RealWinkJson*'
t_start=$SECONDS
elapsed() { echo "sanitize: $1 took $((SECONDS - $2)) s"; }

configure() {  # build-dir, sanitizer flags
  if [[ ! -f $1/CMakeCache.txt ]]; then
    cmake -S . -B "$1" -DIGLA_CUDA=OFF -DIGLA_BENCH=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" -DCMAKE_CXX_FLAGS="$2" \
      -DCMAKE_EXE_LINKER_FLAGS="$2" >/dev/null
  fi
  cmake --build "$1" -j"$JOBS" --target igla_tests igla_cli >/dev/null
}

has_cpu_flag() { grep -qw "$1" /proc/cpuinfo; }

for stage in $STAGES; do
  t0=$SECONDS
  case $stage in
    asan)
      configure build-asan "-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
      elapsed "asan build" "$t0"
      export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1
      export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
      # One run: the kernel tests (test_search, test_kernel_paths) iterate every kernel this CPU has
      # themselves, so a run per IGLA_KERNEL (which only the CLI reads) repeated them (CI time).
      kernels=(auto)
      for k in "${kernels[@]}"; do
        t1=$SECONDS
        IGLA_KERNEL=$k build-asan/tests/igla_tests --gtest_filter="-$ASAN_SKIP" --gtest_brief=1 \
          > "build-asan/tests-$k.log" 2>&1 || { tail -n 60 "build-asan/tests-$k.log"; echo "sanitize: ASan/UBSan suite FAILED with IGLA_KERNEL=$k (log: build-asan/tests-$k.log)"; exit 1; }
        echo "sanitize: ASan+UBSan, IGLA_KERNEL=$k: $(grep -E '^\[  PASSED  \]' "build-asan/tests-$k.log") ($(grep -oE '^\[  SKIPPED \] [0-9]+' "build-asan/tests-$k.log" | grep -oE '[0-9]+$' || echo 0) skipped: CUDA without a GPU), $((SECONDS - t1)) s"
      done
      has_cpu_flag avx512vpopcntdq || echo "sanitize: no avx512vpopcntdq on this CPU: the avx512 kernel was not run under ASan"
      ;;
    tsan)
      configure build-tsan "-fsanitize=thread -fno-omit-frame-pointer"
      elapsed "tsan build" "$t0"
      filter='*Concurrency*:ThreadPool.*'
      n=$(build-tsan/tests/igla_tests --gtest_filter="$filter" --gtest_list_tests | grep -c '^  ' || true)
      if ((n == 0)); then
        echo "sanitize: TSan: no test matches $filter yet: nothing to run"
      else
        TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/scripts/tsan.supp" \
          build-tsan/tests/igla_tests --gtest_filter="$filter" --gtest_brief=1 > build-tsan/tests.log 2>&1 \
          || { tail -n 80 build-tsan/tests.log; echo "sanitize: TSan FAILED (log: build-tsan/tests.log)"; exit 1; }
        echo "sanitize: TSan: $n tests ($filter): $(grep -E '^\[  PASSED  \]' build-tsan/tests.log)"
      fi
      ;;
    fuzz)
      scripts/fuzz.sh --corpus-only
      scripts/fuzz.sh "${FUZZ_SECONDS:-20}"
      ;;
    *) echo "usage: scripts/sanitize.sh [asan] [tsan] [fuzz]" >&2; exit 2 ;;
  esac
  elapsed "$stage" "$t0"
done
echo "sanitize: all stages passed in $((SECONDS - t_start)) s"
