#!/usr/bin/env bash
# Set up, build, fetch the real GloVe vectors (the real-data tests use them), run the test suite,
# the Python tests; with IGLA_SANITIZE=1 also the sanitizer stages (scripts/sanitize.sh: ASan+UBSan
# suites, fuzz corpora and a short run of each fuzz target, TSan concurrency tests; ~15-20 min more).
# CI (.ci/run) always runs them after this script.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
build/igla fetch-glove
ctest --test-dir build --output-on-failure -j2
# The Python module's tests (python/tests), on the package the build laid out in build/python.
PYTHONPATH=build/python /usr/bin/python3 -m pytest -q python/tests
if [[ ${IGLA_SANITIZE:-0} == 1 ]]; then scripts/sanitize.sh; fi
