#!/usr/bin/env bash
# Set up, build, fetch the real GloVe vectors (the real-data tests use them), run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
build/igla fetch-glove
ctest --test-dir build --output-on-failure -j2
# The Python module's tests (python/tests), on the package the build laid out in build/python.
PYTHONPATH=build/python /usr/bin/python3 -m pytest -q python/tests
