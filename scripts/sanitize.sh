#!/usr/bin/env bash
# Sanitizer CI (scripts/test.sh runs it after the normal test suite). Three stages:
#   asan  build-san (clang, -DIGLA_FUZZ=ON: the library, CLI, server and tests under AddressSanitizer
#         + UndefinedBehaviorSanitizer, any report fatal): the unit suite (the kernel tests run
#         every kernel this CPU has: scalar, avx2, avx512 where /proc/cpuinfo shows
#         avx512vpopcntdq) and the server's tests.
#   fuzz  the same build's libFuzzer targets: the seed corpora replayed (regression tests), then
#         each target for FUZZ_SECONDS (default 10) seconds (scripts/fuzz.sh).
#   tsan  build-tsan (g++ -fsanitize=thread): igla_concurrency_tests, the tests that run threads
#         against one searcher, pool or index. Built without OpenMP (index building then runs on
#         one thread): libgomp is not instrumented, so TSan cannot see its barriers and reported
#         every parallel loop of Index::build as a race (with no stack to suppress by). The
#         searcher's own threads (src/cpu/thread_pool) are what this stage checks.
# One instrumented build serves ASan and fuzzing (they were two builds: CI time).
# Usage: scripts/sanitize.sh [asan] [fuzz] [tsan]   (default: all three)
# Under ASan the real-data tests (*RealData*, *RealWinkJson*: the 341,479-word GloVe index and the
# 307 MB package JSON, minutes each under ASan) are left out; the normal run covers them.
set -euo pipefail
cd "$(dirname "$0")/.."
STAGES=${*:-asan fuzz tsan}
JOBS=$(nproc)
ASAN_SKIP='*RealData*:*RealWinkJson*'
SAN_BUILD=build-san
t_start=$SECONDS
elapsed() { echo "sanitize: $1 took $((SECONDS - $2)) s"; }
has_cpu_flag() { grep -qwE "$1" /proc/cpuinfo; }

build_san() {  # clang, ASan + UBSan + fuzzer coverage everywhere (CMakeLists.txt: IGLA_FUZZ)
  if [[ ! -f $SAN_BUILD/CMakeCache.txt ]]; then
    CC=clang CXX=clang++ cmake -S . -B "$SAN_BUILD" -DIGLA_FUZZ=ON -DIGLA_TESTS=ON -DIGLA_BENCH=OFF \
      -DIGLA_CUDA=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" >/dev/null
  fi
  cmake --build "$SAN_BUILD" -j"$JOBS" --target igla_tests igla_server_tests igla_cli \
    $(ls tests/fuzz/corpus | sed 's/^/fuzz_/') >/dev/null
}

run_suite() {  # name, binary, gtest filter
  local log="${2%/*}/$1.log" t1=$SECONDS
  "$2" --gtest_filter="$3" --gtest_brief=1 >"$log" 2>&1 \
    || { tail -n 80 "$log"; echo "sanitize: $1 FAILED (log: $log)"; exit 1; }
  echo "sanitize: $1: $(grep -E '^\[  PASSED  \]' "$log") ($(grep -oE '^\[  SKIPPED \] [0-9]+' "$log" | grep -oE '[0-9]+$' || echo 0) skipped: CUDA without a GPU), $((SECONDS - t1)) s"
}

for stage in $STAGES; do
  t0=$SECONDS
  case $stage in
    asan)
      build_san
      elapsed "asan build (with the fuzz targets)" "$t0"
      export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1
      export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
      run_suite "asan-ubsan-unit" "$SAN_BUILD/tests/igla_tests" "-$ASAN_SKIP"
      run_suite "asan-ubsan-server" "$SAN_BUILD/tests/igla_server_tests" "*"
      has_cpu_flag "avx512_?vpopcntdq" || echo "sanitize: no avx512vpopcntdq on this CPU: the avx512 kernel was not run under ASan"
      unset ASAN_OPTIONS UBSAN_OPTIONS
      ;;
    fuzz)
      build_san
      FUZZ_BUILD=$SAN_BUILD scripts/fuzz.sh --corpus-only
      FUZZ_BUILD=$SAN_BUILD scripts/fuzz.sh "${FUZZ_SECONDS:-10}"
      ;;
    tsan)
      if [[ ! -f build-tsan/CMakeCache.txt ]]; then
        cmake -S . -B build-tsan -DIGLA_CUDA=OFF -DIGLA_BENCH=OFF -DCMAKE_DISABLE_FIND_PACKAGE_OpenMP=ON \
          -DCMAKE_BUILD_TYPE=RelWithDebInfo \
          -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" -DCMAKE_CXX_FLAGS="-fsanitize=thread -fno-omit-frame-pointer" \
          -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=thread" >/dev/null
      fi
      cmake --build build-tsan -j"$JOBS" --target igla_concurrency_tests >/dev/null
      elapsed "tsan build" "$t0"
      TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1" \
        run_suite "tsan-concurrency" build-tsan/tests/igla_concurrency_tests "-$ASAN_SKIP"
      ;;
    *) echo "usage: scripts/sanitize.sh [asan] [fuzz] [tsan]" >&2; exit 2 ;;
  esac
  elapsed "$stage" "$t0"
done
echo "sanitize: all stages passed in $((SECONDS - t_start)) s"
