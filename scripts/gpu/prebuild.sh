#!/usr/bin/env bash
# Builds igla_tests and igla_cuda_bench here (nvcc, no GPU needed) and stages them, with the
# shared libraries they need that a bare GPU image may lack, in .gpu-prebuilt/ for
# scripts/gpu/run_all.sh on the GPU machine (carry .gpu-prebuilt; same x86-64 ABI, older glibc here).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
B=${BUILD_DIR:-$ROOT/build-cuda}
cmake -S "$ROOT" -B "$B" -DIGLA_CUDA=ON -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$B" -j"$(nproc)" --target igla_tests igla_cuda_bench
rm -rf "$ROOT/.gpu-prebuilt"
mkdir -p "$ROOT/.gpu-prebuilt/lib"
cp "$B/tests/igla_tests" "$B/igla_cuda_bench" "$ROOT/.gpu-prebuilt/"
for bin in "$ROOT/.gpu-prebuilt/igla_tests" "$ROOT/.gpu-prebuilt/igla_cuda_bench"; do
  ldd "$bin" | awk '/=> \//{print $3}' | grep -v -E '/(libc|libm|libgcc_s|libstdc\+\+|libpthread|libdl|librt)\.so' \
    | xargs -r -I{} cp -L {} "$ROOT/.gpu-prebuilt/lib/"
done
echo "built $(date -u +%Y-%m-%dT%H:%MZ) from $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?') + working tree" \
  > "$ROOT/.gpu-prebuilt/BUILD_INFO"
EX=$(git -C "$ROOT" rev-parse --git-path info/exclude 2>/dev/null || echo "$ROOT/.git/info/exclude")  # worktrees too
case $EX in /*) ;; *) EX=$ROOT/$EX ;; esac
mkdir -p "$(dirname "$EX")"
for d in /.gpu-prebuilt/ /.gpu-data/ /.gpu-deps/; do grep -q "^$d" "$EX" 2>/dev/null || echo "$d" >> "$EX"; done
du -sh "$ROOT/.gpu-prebuilt"; ls -la "$ROOT/.gpu-prebuilt" "$ROOT/.gpu-prebuilt/lib"
