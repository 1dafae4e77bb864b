#!/usr/bin/env bash
# A/B timing of bench binaries on one machine instance (instances differ by ~5%, so variants are
# only compared inside one call). Each variant is "name" (binary .gpu-ab/name/igla_cuda_bench)
# or "name:VAR=value,VAR=value" (the same binary with experiment knobs set); the variants run
# alternately, ROUNDS times. Prints one line per run: round, variant, batch, q/s.
#   ROUNDS=3 ARGS="--n 100000 --dims 300" bash scripts/gpu/ab.sh base new new:IGLA_CUDA_STAGES=3
set -uo pipefail
ROUNDS=${ROUNDS:-3}
ARGS=${ARGS:---n 100000 --dims 300}
BATCH=${BATCH:-65536}
SECONDS_EACH=${SECONDS_EACH:-2}
export LD_LIBRARY_PATH=$PWD/.gpu-prebuilt/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
for r in $(seq 1 "$ROUNDS"); do
  for v in "$@"; do
    name=${v%%:*}
    envs=()
    [ "$v" != "$name" ] && IFS=, read -r -a envs <<< "${v#*:}"
    bin=.gpu-ab/$name/igla_cuda_bench
    [ -x "$bin" ] || { echo "ab.sh: no binary $bin" >&2; exit 2; }
    line=$(env "${envs[@]}" timeout 120 "$bin" --name ab $ARGS --batches "$BATCH" --check 0 --no-compare \
        --seconds "$SECONDS_EACH" 2>&1 | grep '^igla' | head -1)
    printf 'round %d\t%-40s\t%s\n' "$r" "$v" "$(echo "$line" | cut -f6-9)"
  done
done
