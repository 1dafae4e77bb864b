#!/usr/bin/env bash
# Cross-builds igla for Linux/AArch64 and runs the whole test suite under qemu-aarch64 (user
# mode), so the Arm build and the NEON kernels are tested on an x86-64 machine. Debian 12.
# Usage: scripts/cross-test-aarch64.sh [build-dir]   (default: build-aarch64)
#
# Installs (when missing, so a second run installs nothing): g++-aarch64-linux-gnu and qemu-user,
# and adds arm64 to dpkg's foreign architectures. The arm64 builds of the libraries igla links
# (fmt, simdjson, xxhash, GoogleTest) and the header-only CLI11, nlohmann-json and Boost (Beast,
# for igla serve) are downloaded as .debs and unpacked into <build-dir>/deps rather than
# installed: libsimdjson-dev is not multiarch (no Multi-Arch: same), so its arm64 and amd64
# packages cannot be installed side by side. Nothing of the host's own packages changes.
#
# The build is the one a Mac user without OpenMP gets (OpenMP off; Apple's clang has none), with
# no CUDA, no FAISS peers and no Python module. QEMU's default CPU has dotprod, so both NEON
# kernels (neon, neon-dotprod) run, each checked against the reference like every kernel.
#
# What runs under emulation (CI runs this after the native suite, scripts/test.sh, which runs
# everything natively; the cross test is there for the Arm build and the NEON kernels):
#  - igla_tests: every test, except the float-only real-data tests: QuantizationRealData (8 index
#    builds and 9 analogy evaluations of float code, 1.5 min natively, not finished after 16 min
#    under QEMU) and EvalRealData.GloveFloatScoreMatchesGensim (the float32 evaluation, minutes
#    emulated). EvalRealData.TernaryAnswersMatchReference (the best NEON kernel against the
#    reference on the real GloVe index) and VectorLoaders.RealWinkJson run. Those need the index
#    of `igla fetch-glove` ($IGLA_HOME, default ~/.cache/igla); without it they skip, and this
#    script says so (IGLA_CROSS_REQUIRE_REAL=1 makes that an error; .ci/run sets it).
#  - igla_server_tests (igla serve over HTTP) is not built: the server has no Arm-specific code
#    and its test file alone is minutes of cross-compiling (Boost.Beast); the igla binary with
#    its serve command is built and its CLI tests run.
# IGLA_CROSS_ALL=1 builds and runs everything (about twice the time).
#
# Time: each step prints its start second. 2026-12-04, the 2-core dev VM at load 8-15: build ~33
# min wall, tests ~10 min wall but 2.2 min of CPU; on an idle 2-core machine the build costs no
# more than the native one. BENCHMARKS.md ("Arm64 cross test in CI") has the figures.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build-aarch64}
t_start=$(date +%s)
step() { echo "cross-test-aarch64: [$(($(date +%s) - t_start)) s] $*"; }

SUDO=""
[[ $(id -u) -eq 0 ]] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive

# --- the cross toolchain and the emulator --------------------------------------------------------
TOOLS=(g++-aarch64-linux-gnu qemu-user)
missing=()
for p in "${TOOLS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
need_update=0
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  step "adding the arm64 architecture to dpkg (for apt-get download of arm64 packages)"
  $SUDO dpkg --add-architecture arm64
  need_update=1
fi
if ((${#missing[@]})) || ((need_update)) || ! apt-cache show libfmt-dev:arm64 >/dev/null 2>&1; then
  step "apt-get update"
  $SUDO apt-get update -q
fi
if ((${#missing[@]})); then
  step "installing ${missing[*]}"
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# --- arm64 dependencies, unpacked into the build directory ---------------------------------------
DEPS_PKGS=(libfmt-dev:arm64 libfmt9:arm64 libsimdjson-dev:arm64 libsimdjson14:arm64 libxxhash-dev:arm64
           libxxhash0:arm64 libgtest-dev:arm64 libcli11-dev nlohmann-json3-dev libboost1.74-dev:arm64)
mkdir -p "$BUILD/debs"
DEPS=$(cd "$BUILD" && pwd)/deps
if [[ ! -f $DEPS/.complete || $(cat "$DEPS/.complete") != "${DEPS_PKGS[*]}" ]]; then
  step "downloading and unpacking ${DEPS_PKGS[*]}"
  rm -rf "$DEPS"
  (cd "$BUILD/debs" && apt-get download -q "${DEPS_PKGS[@]}")
  for deb in "$BUILD"/debs/*.deb; do dpkg-deb -x "$deb" "$DEPS"; done
  echo "${DEPS_PKGS[*]}" >"$DEPS/.complete"
fi

# --- configure, build ---------------------------------------------------------------------------
ALL=${IGLA_CROSS_ALL:-0}
step "configuring $BUILD"
cmake -S . -B "$BUILD" -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake -DIGLA_AARCH64_DEPS="$DEPS" \
  -DCMAKE_BUILD_TYPE=Release -DIGLA_CUDA=OFF -DIGLA_BENCH=OFF -DIGLA_PYTHON=OFF \
  -DCMAKE_DISABLE_FIND_PACKAGE_OpenMP=ON >/dev/null
targets=(--target igla_tests)   # and what it depends on: the library and the igla binary
if [[ $ALL == 1 ]]; then targets=(); fi
step "building ${targets[*]:-everything}"
cmake --build "$BUILD" -j"$(nproc)" "${targets[@]}"

# --- the suite under qemu-aarch64 ---------------------------------------------------------------
aarch64-linux-gnu-readelf -h "$BUILD/igla" | grep -q AArch64 ||
  { echo "cross-test-aarch64: $BUILD/igla is not an AArch64 binary" >&2; exit 1; }
index=${IGLA_HOME:-$HOME/.cache/igla}/glove-100d.igla
if [[ ! -f $index ]]; then
  if [[ ${IGLA_CROSS_REQUIRE_REAL:-0} == 1 ]]; then
    echo "cross-test-aarch64: no GloVe index at $index (run igla fetch-glove first)" >&2; exit 1
  fi
  step "NOTE: no GloVe index at $index: the real-data tests will skip (run igla fetch-glove first)"
fi
skip=()
if [[ $ALL != 1 ]]; then
  skip=(-E '^(igla_server_tests|QuantizationRealData\.|EvalRealData\.GloveFloatScoreMatchesGensim$)')
  step "running the test suite under qemu-aarch64 except the float-only real-data tests" \
       "(QuantizationRealData, EvalRealData.GloveFloatScoreMatchesGensim: run natively by scripts/test.sh)" \
       "and the server's tests (not built)"
else
  step "running the whole test suite under qemu-aarch64"
fi
ctest --test-dir "$BUILD" --output-on-failure --no-tests=error -j"$(nproc)" "${skip[@]}"
step "done: the AArch64 build passed its tests under qemu-aarch64"
