#!/usr/bin/env bash
# Arm speed on paper: cycles per word-query of each CPU kernel's inner loop from llvm-mca's
# machine models (Apple M1, Neoverse N1/V1 for NEON; Zen 4 for AVX-512 and AVX2), and the
# projected 100K x 300 queries/s of an 8-core M1 Pro. A MODEL, NOT A MEASUREMENT: no Arm machine
# ran this. BENCHMARKS.md ("Arm on paper") has the table and what it leaves out.
#
# Usage: scripts/mca-model.sh            (prints a Markdown table)
# Needs: g++, g++-aarch64-linux-gnu, llvm-19 (Debian 12: apt-get install llvm-19; llvm-14's
# llvm-mca has no Zen 4 model), python3, c++filt.
#
# Method: each kernel's source is compiled to assembly exactly as the build compiles it (-O3,
# its ISA flags); scripts/mca_loops.py cuts out the rolled inner loop over plane words of the
# fused top-k scan (scan_topk) at 300 dims; llvm-mca runs 200 iterations of it; cycles per
# iteration x plane words / (words x queries per iteration) = cycles per word-query. The
# per-block epilogue (widening, convert, scale, compare: a few ops per 4 words and query) is
# not in the loop; BENCHMARKS.md adds it by op count.
set -euo pipefail
cd "$(dirname "$0")/.."
MCA=${MCA:-llvm-mca-19}
command -v "$MCA" >/dev/null || { echo "mca-model: $MCA not found (apt-get install llvm-19)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
FLAGS=(-Iinclude -Isrc -O3 -DNDEBUG -ffp-contract=off -std=c++20)

aarch64-linux-gnu-g++ "${FLAGS[@]}" -S -o "$tmp/neon.s" src/kernels/neon/neon_kernel.cpp
aarch64-linux-gnu-g++ "${FLAGS[@]}" -march=armv8.2-a+dotprod -S -o "$tmp/neon-dotprod.s" src/kernels/neon/neon_dotprod_kernel.cpp
g++ "${FLAGS[@]}" -mavx512f -mavx512bw -mavx512dq -mavx512vl -mavx512vpopcntdq -mpopcnt -mbmi2 -S -o "$tmp/avx512.s" \
  src/kernels/avx512/avx512_kernel.cpp
g++ "${FLAGS[@]}" -mavx2 -mpopcnt -mbmi2 -S -o "$tmp/avx2.s" src/kernels/avx2/avx2_kernel.cpp

# kernel | function holding the loop | iterations per word at 300 dims | words x queries per iteration
# (one plane word of that many word-query pairs per iteration; AVX2: "asm", its hand-written
# step of chunk_sums8, one quad (4 dims) of 32 words and 8 queries per iteration, 76 at 300 dims)
KERNELS=(
  "neon|neon::scan_topk_pass<4, 10>|10|32"
  "neon-dotprod|neon_dotprod::scan_topk_pass<4, 10>|10|32"
  "avx512|avx512::scan_block_topk<8, 10>|10|128"
  "avx2|asm|76|256"
)
declare -A CPUS=([neon]="apple-m1 neoverse-n1 neoverse-v1" [neon-dotprod]="apple-m1 neoverse-n1 neoverse-v1"
                 [avx512]="znver4" [avx2]="znver3 znver4 alderlake")
declare -A TRIPLE=([neon]=aarch64 [neon-dotprod]=aarch64 [avx512]=x86_64 [avx2]=x86_64)

echo "| kernel | llvm-mca -mcpu | loop insns | cycles / iteration | word-queries / iteration | cycles / word-query at 300 dims (loop only) |"
echo "|---|---|---:|---:|---:|---:|"
for row in "${KERNELS[@]}"; do
  IFS='|' read -r k fn W wq <<<"$row"
  re=$(printf '%s' "$fn" | sed 's/[<>]/\\&/g')
  if [[ $fn == asm ]]; then  # the first inline-asm loop: from its label 1: to its jnz 1b
    awk '/^\t1:$/ {f = 1; next} f && /jnz 1b/ {print "\tjnz .Lloop"; exit} f' "$tmp/$k.s" >"$tmp/$k.loop.s"
    [[ -s $tmp/$k.loop.s ]] || { echo "| $k | - | its asm loop (1: ... jnz 1b) not found | | | |"; continue; }
  elif ! python3 scripts/mca_loops.py "$tmp/$k.s" "$re" --emit 0 >"$tmp/$k.loop.s" 2>/dev/null; then
    echo "| $k | - | loop of $fn not found (kernel changed shape? update KERNELS in $0) | | | |"
    continue
  fi
  n=$(wc -l <"$tmp/$k.loop.s")
  for cpu in ${CPUS[$k]}; do
    cycles=$("$MCA" -mtriple="${TRIPLE[$k]}" -mcpu="$cpu" -iterations=200 "$tmp/$k.loop.s" 2>/dev/null |
      awk '/^Total Cycles:/ {print $3}')
    awk -v k="$k" -v cpu="$cpu" -v n="$n" -v c="$cycles" -v W="$W" -v wq="$wq" 'BEGIN {
      it = c / 200; printf "| %s | %s | %d | %.2f | %d | %.2f |\n", k, cpu, n, it, wq, it * W / wq }'
  done
done
