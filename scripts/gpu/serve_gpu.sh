#!/usr/bin/env bash
# issue 13's GPU row: `igla serve --device cuda` under wrk on the H200 machine (no network there),
# beside the CPU server and the in-process batched rates (`igla nearest --input`, cuda and cpu) on
# the same host, words and index, in the same run. Two steps:
#
#   1. on the CPU machine (after a CUDA build in build-cuda, as scripts/gpu/stage.sh needs):
#        scripts/gpu/serve_gpu.sh stage DEST      # DEST: a git-ignored folder the device tool carries
#      stages stage.sh's folder (igla built with CUDA, its libs, the default index without float
#      rows) plus wrk and the libraries it links (LuaJIT, OpenSSL), scripts/loadtest.lua, the 10,000
#      most frequent alphabetic words and this script.
#   2. on the GPU machine, inside DEST:
#        bash serve_gpu.sh                        # ~6 minutes; logs and a summary go to $OUT
#      Env: CONNECTIONS (default 1000), DURATION (s per one-word run, default 20; the 64-word run
#      lasts 3x as long), WRK_THREADS (default 4), IO_THREADS (server, default 4), DEVICES
#      (default "cuda cpu"), PORT (default 18080).
#
# Output (summary.txt): per device, the in-process rate and, for 1 and 64 words per request,
# requests/s, queries/s, % of the in-process rate, p50/p99, non-2xx and socket errors, queries per
# batch search. Needs on the GPU machine: bash, coreutils, awk (no python, no curl).
set -uo pipefail

if [[ ${1:-} == stage ]]; then
  set -e
  DEST=${2:?usage: serve_gpu.sh stage DEST [INDEX]}
  ROOT=$(cd "$(dirname "$0")/../.." && pwd)
  "$ROOT/scripts/gpu/stage.sh" "$DEST" "${3:-$HOME/.cache/igla/glove-100d.igla}"
  mkdir -p "$DEST/wrk"
  cp "$(command -v wrk)" "$DEST/wrk/"
  ldd "$(command -v wrk)" | awk '/=> \//{print $3}' | grep -v -E '/(libc|libm|libgcc_s|libpthread|libdl|librt)\.so' \
    | xargs -r -I{} cp -L {} "$DEST/wrk/"
  cp "$ROOT/scripts/loadtest.lua" "$ROOT/scripts/gpu/serve_gpu.sh" "$DEST/"
  # The words: the same extraction as scripts/loadtest.sh (the index's first 10,000 [a-z]+ words).
  sed -n '/^python3 - "\$INDEX"/,/^PY$/p' "$ROOT/scripts/loadtest.sh" | sed '1d;$d' > "$DEST/words.py"
  python3 "$DEST/words.py" "${3:-$HOME/.cache/igla/glove-100d.igla}" 10000 > "$DEST/data/words10000.txt"
  rm "$DEST/words.py"
  du -sh "$DEST"
  exit 0
fi

HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-/tmp/igla-gpu-out}
mkdir -p "$OUT"
LOG="$OUT/serve_gpu.log"
SUM="$OUT/summary.txt"
: > "$LOG"
: > "$SUM"
say() { echo "$@" | tee -a "$LOG"; }
CONNECTIONS=${CONNECTIONS:-1000}
DURATION=${DURATION:-20}
WRK_THREADS=${WRK_THREADS:-4}
IO_THREADS=${IO_THREADS:-4}
DEVICES=${DEVICES:-cuda cpu}
PORT=${PORT:-18080}
export LD_LIBRARY_PATH="$HERE/lib:$HERE/wrk:${LD_LIBRARY_PATH:-}"
IGLA="$HERE/igla"
WRK="$HERE/wrk/wrk"
IX="$HERE/data/glove-100d.igla"
WORDS="$HERE/data/words10000.txt"
if [ -f "$HERE/bin.tar.xz" ] && [ ! -x "$IGLA" ]; then tar xJf "$HERE/bin.tar.xz" -C "$HERE" || { say "FAIL: unpacking the binaries"; exit 1; }; fi
if [ -f "$IX.xz" ] && [ ! -f "$IX" ]; then xz -d -T0 -k "$IX.xz" || { say "FAIL: unpacking the index"; exit 1; }; fi
for f in "$IGLA" "$WRK" "$IX" "$WORDS" "$HERE/loadtest.lua"; do [ -e "$f" ] || { say "FAIL: missing $f (staged with 'serve_gpu.sh stage'?)"; exit 1; }; done
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

say "# igla serve GPU row (issue 13) $(date -u +%Y-%m-%dT%H:%MZ) on $(hostname); $(cat "$HERE/BUILD_INFO" 2>/dev/null)"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | tee -a "$LOG"
say "# host: $(nproc) cores; $CONNECTIONS connections, wrk $WRK_THREADS threads, server --io-threads $IO_THREADS; ${DURATION}s one-word, $((3 * DURATION))s 64-word"

TMP=$(mktemp -d)
SERVER_PID=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
for _ in $(seq 11); do cat "$WORDS"; done > "$TMP/many.txt"
head -n 1 "$WORDS" > "$TMP/one.txt"
NQ=$(wc -l < "$TMP/many.txt")
now() { date +%s.%N; }

# In-process batched rate on DEVICE: nearest --input over NQ words, minus one query's run (start-up).
inprocess() {
  local t0 t1 t2
  t0=$(now); "$IGLA" nearest --index "$IX" --device "$1" --input "$TMP/one.txt" -k 10 > /dev/null 2>> "$LOG"; t1=$(now)
  "$IGLA" nearest --index "$IX" --device "$1" --input "$TMP/many.txt" -k 10 > /dev/null 2>> "$LOG"; t2=$(now)
  awk -v n="$NQ" -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN { printf "%d\n", n / ((c - b) - (b - a)) }'
}

# The server's batch counters (GET /metrics over bash's /dev/tcp: no curl needed).
batches() {
  exec 3<> "/dev/tcp/127.0.0.1/$PORT" || { echo "0 0"; return; }
  printf 'GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
  awk '/^igla_batch_size_queries_sum\{kind="nearest"\}/ {s = $2} /^igla_batch_size_queries_count\{kind="nearest"\}/ {c = $2}
       END { printf "%s %s\n", s + 0, c + 0 }' <&3
  exec 3>&-
}

wrk_run() {  # wrk_run SECONDS WORDS_PER_REQUEST OUTPUT
  IGLA_WORDS="$WORDS" IGLA_BATCH=$2 "$WRK" -t "$WRK_THREADS" -c "$CONNECTIONS" -d "$1s" --timeout 30s --latency \
    -s "$HERE/loadtest.lua" "http://127.0.0.1:$PORT" > "$3" 2>&1
}

# One summary line from a wrk output: name, words per request, in-process rate, batch counters.
report() {  # report DEVICE NAME WORDS INPROC SECONDS SUM0 COUNT0 SUM1 COUNT1 WRKFILE
  awk -v dev="$1" -v name="$2" -v batch="$3" -v inproc="$4" -v secs="$5" -v s0="$6" -v c0="$7" -v s1="$8" -v c1="$9" '
    function ms(v,   u) { u = v; sub(/^[0-9.]+/, "", u); v += 0
      return (u == "us") ? v / 1000 : (u == "ms") ? v : (u == "s") ? v * 1000 : (u == "m") ? v * 60000 : v }
    /Requests\/sec:/ { rps = $2 }
    /^ +50%/ { p50 = ms($2) } /^ +99%/ { p99 = ms($2) }
    /Non-2xx or 3xx responses:/ { non2xx = $5 }
    /Socket errors:/ { sock = $0; sub(/^ *Socket errors: */, "", sock) }
    END {
      q = rps * batch
      pct = (inproc > 0) ? 100 * q / inproc : 0
      errs = (sock == "") ? "none" : sock
      per = (c1 > c0) ? (s1 - s0) / (c1 - c0) : 0
      printf "%-4s %-8s: %8.0f req/s = %8.0f queries/s = %5.1f%% of in-process (%d q/s); p50 %.1f ms, p99 %.1f ms; non-2xx %d; socket errors: %s; %.0f queries per batch search, %.0f queries/s searched\n",
        dev, name, rps, q, pct, inproc, p50, p99, non2xx, errs, per, (s1 - s0) / secs
    }' "${10}"
}

for dev in $DEVICES; do
  say "# device $dev: in-process reference (nearest --input, $NQ queries, k 10)"
  before=$(inprocess "$dev")
  "$IGLA" serve --index "$IX" --device "$dev" --port "$PORT" --io-threads "$IO_THREADS" --timeout-ms 30000 \
    > "$OUT/serve_$dev.out" 2> "$OUT/serve_$dev.err" &
  SERVER_PID=$!
  for _ in $(seq 600); do grep -q "^listening on" "$OUT/serve_$dev.out" 2>/dev/null && break; sleep 0.1; done
  if ! grep -q "^listening on" "$OUT/serve_$dev.out"; then
    say "FAIL: the $dev server did not start:"; tail -5 "$OUT/serve_$dev.err" | tee -a "$LOG"
    kill "$SERVER_PID" 2>/dev/null; SERVER_PID=""; continue
  fi
  wrk_run 3 1 /dev/null  # warm-up (pages the index in, the GPU's first batches)
  for run in "one-word 1 $DURATION" "64-words 64 $((3 * DURATION))"; do
    set -- $run
    read -r s0 c0 < <(batches)
    wrk_run "$3" "$2" "$OUT/wrk_${dev}_$1.txt"
    read -r s1 c1 < <(batches)
    echo "$3 $s0 $c0 $s1 $c1" > "$TMP/${dev}_$1.batches"
  done
  kill -TERM "$SERVER_PID"
  wait "$SERVER_PID" && say "# $dev server drained on SIGTERM, exit 0" || say "# $dev server exited $?"
  SERVER_PID=""
  after=$(inprocess "$dev")
  inproc=$(( (before + after) / 2 ))
  say "# device $dev: in-process $before (before) / $after (after) queries/s; reference $inproc"
  for run in "one-word 1" "64-words 64"; do
    set -- $run
    read -r secs s0 c0 s1 c1 < "$TMP/${dev}_$1.batches"
    report "$dev" "$1" "$2" "$inproc" "$secs" "$s0" "$c0" "$s1" "$c1" "$OUT/wrk_${dev}_$1.txt" | tee -a "$SUM" "$LOG"
  done
done
say "# summary: $SUM"
