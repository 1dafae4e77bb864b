#!/usr/bin/env bash
# Set up, build, fetch the real GloVe vectors (the real-data tests use them), run the test suite,
# then the sanitizer stages: ASan+UBSan suite per CPU kernel, TSan concurrency tests, fuzz corpora
# and a short run of each fuzz target (scripts/sanitize.sh; IGLA_SKIP_SANITIZE=1 skips them).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
build/igla fetch-glove
ctest --test-dir build --output-on-failure -j2
# The Python module's tests (python/tests), on the package the build laid out in build/python.
PYTHONPATH=build/python /usr/bin/python3 -m pytest -q python/tests
[[ ${IGLA_SKIP_SANITIZE:-0} == 1 ]] || scripts/sanitize.sh
