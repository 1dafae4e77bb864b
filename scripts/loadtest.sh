#!/usr/bin/env bash
# Load test of `igla serve` (issue 13): starts the server on the default index, drives it with wrk
# (1,000 keep-alive connections) with nearest requests of 1 word and of 64 words, and prints
# requests/s, p50/p99 latency, non-2xx and socket errors, beside the in-process batched rate of
# `igla nearest --input` on the same words and index, measured in the same run.
#
# Usage: scripts/loadtest.sh [seconds per run, default 20]
# Env:   IGLA=build/igla  INDEX=~/.cache/igla/glove-100d.igla  WRK_THREADS=1
#        CONNECTIONS=1000 (a list, e.g. "100 200 1000": one run per count, in that order)
#        PORT=18080  WORDS=10000 (distinct words cycled)  SERVE_ARGS (server flags; default
#        "--timeout-ms 30000"; e.g. "--timeout-ms 30000 --device cuda")
#        NEAREST_ARGS (flags of the in-process reference, e.g. "--device ivf-int8"; the operating
#        point of BENCHMARKS.md "serve6": SERVE_ARGS="--timeout-ms 30000 --device graph --ef 40"
#        NEAREST_ARGS="--device graph --ef 40" on an index with a graph section)
#        RUNS="one-word 64-words" (which runs)  RATE (unset: closed loop, each connection sends its
#        next request when the last is answered; RATE=R: paced, the connections together offer ~R
#        requests/s with exponential gaps, see loadtest.lua, and wrk's Requests/sec is the rate
#        achieved)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-20}
IGLA=${IGLA:-build/igla}
INDEX=${INDEX:-${IGLA_HOME:-$HOME/.cache/igla}/glove-100d.igla}
CONNECTIONS=${CONNECTIONS:-1000}
WRK_THREADS=${WRK_THREADS:-1}
PORT=${PORT:-18080}
NWORDS=${WORDS:-10000}
# The queue deadline is raised to wrk's own timeout (30 s): 1,000 closed-loop clients of 64 words
# keep 64,000 queries queued, and the test measures throughput, not load shedding.
SERVE_ARGS=${SERVE_ARGS:---timeout-ms 30000}
RUNS=${RUNS:-one-word 64-words}
RATE=${RATE:-0}
# Flags of the in-process reference (`igla nearest`): the same searcher as the server's, e.g.
# NEAREST_ARGS="--device ivf-int8" with SERVE_ARGS="--timeout-ms 30000 --device ivf-int8".
NEAREST_ARGS=${NEAREST_ARGS:-}
command -v wrk >/dev/null || { echo "loadtest: wrk is missing (apt-get install wrk)" >&2; exit 1; }
[[ -x $IGLA ]] || { echo "loadtest: no $IGLA: build first (cmake --build build --target igla_cli)" >&2; exit 1; }
[[ -f $INDEX ]] || { echo "loadtest: no index at $INDEX: run '$IGLA fetch-glove'" >&2; exit 1; }
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

TMP=$(mktemp -d)
SERVER_PID=""
cleanup() {
  [[ -n $SERVER_PID ]] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

# The words: the index's first NWORDS purely alphabetic words (the most frequent ones in GloVe).
python3 - "$INDEX" "$NWORDS" > "$TMP/words.txt" <<'PY'
import re, struct, sys
path, n = sys.argv[1], int(sys.argv[2])
with open(path, "rb") as f:
    head = f.read(64)
    n_sections, n_words = struct.unpack_from("<IQ", head, 12)
    table = f.read(32 * n_sections)
    for i in range(n_sections):
        tag, _, off, size, _ = struct.unpack_from("<4sIQQQ", table, 32 * i)
        if tag == b"VOCB":
            f.seek(off)
            vocb = f.read(size)
offsets = struct.unpack_from("<%dI" % (n_words + 1), vocb, 0)
base = 4 * (n_words + 1)
out = 0
for i in range(n_words):
    w = vocb[base + offsets[i]: base + offsets[i + 1]].decode("utf-8", "replace")
    if re.fullmatch(r"[a-z]+", w):
        print(w)
        out += 1
        if out == n:
            break
PY
echo "loadtest: $(wc -l < "$TMP/words.txt") words from $INDEX; connections: $CONNECTIONS; $WRK_THREADS wrk thread(s), ${DURATION}s per run; $(nproc) cores shared by server and wrk"

# In-process batched rate: `igla nearest --input` over the words repeated, minus its start-up;
# measured before and after the server runs (the machine's load moves), the mean is the reference.
REPS=$(( 100000 / NWORDS + 1 ))
for _ in $(seq "$REPS"); do cat "$TMP/words.txt"; done > "$TMP/many.txt"
head -n 1 "$TMP/words.txt" > "$TMP/one.txt"
NQ=$(wc -l < "$TMP/many.txt")
now() { date +%s.%N; }
inprocess() {
  local t0 t1 t2
  t0=$(now); "$IGLA" nearest --index "$INDEX" $NEAREST_ARGS --input "$TMP/one.txt" -k 10 > /dev/null; t1=$(now)
  "$IGLA" nearest --index "$INDEX" $NEAREST_ARGS --input "$TMP/many.txt" -k 10 > /dev/null; t2=$(now)
  python3 -c "print(round($NQ / (($t2 - $t1) - ($t1 - $t0))))"
}
INPROC_BEFORE=$(inprocess)
echo "loadtest: in-process batched (igla nearest --input $NEAREST_ARGS, k 10, $NQ queries): $INPROC_BEFORE queries/s (before)"

# The server.
"$IGLA" serve --index "$INDEX" --port "$PORT" $SERVE_ARGS > "$TMP/serve.out" 2> "$TMP/serve.err" &
SERVER_PID=$!
for _ in $(seq 300); do grep -q "^listening on" "$TMP/serve.out" 2>/dev/null && break; sleep 0.1; done
grep -q "^listening on" "$TMP/serve.out" || { cat "$TMP/serve.err" >&2; echo "loadtest: the server did not start" >&2; exit 1; }
URL=$(sed -n 's/^listening on //p' "$TMP/serve.out")
echo "loadtest: server at $URL ($SERVE_ARGS)$( ((RATE > 0)) && echo "; paced: $RATE requests/s offered by the $CONNECTIONS connections" )"

# Load: a 2 s warm-up (pages the index in), then each run; the server's batch counters around each.
batches() { curl -s "$URL/metrics" | sed -n 's/^igla_batch_size_queries_\(sum\|count\){kind="nearest"} //p' | tr '\n' ' '; }
# CPU seconds the server has used (user + system, /proc/PID/stat): per request it does not depend
# on the machine's load, unlike requests/s on a shared VM.
TICKS=$(getconf CLK_TCK)
server_cpu() { awk -v t="$TICKS" '{ printf "%.3f", ($14 + $15) / t }' "/proc/$SERVER_PID/stat"; }
wrk_run() {  # wrk_run SECONDS WORDS_PER_REQUEST OUTPUT (wrk's own CPU seconds in OUTPUT.cpu)
  IGLA_WORDS="$TMP/words.txt" IGLA_BATCH=$2 IGLA_RATE=$RATE IGLA_CONNECTIONS=$C /usr/bin/time -f "%U %S" -o "$3.cpu" \
    wrk -t "$WRK_THREADS" -c "$C" -d "$1s" --timeout 30s --latency -s scripts/loadtest.lua "$URL" > "$3" 2>&1 || true
}
C=${CONNECTIONS%% *}
wrk_run 2 1 "$TMP/warmup"
# The 64-word run lasts 3x longer: 1,000 clients keep 64,000 queries in flight, so one round of
# them takes seconds and a short run would count mostly the first round's wait.
for run in "one-word 1 $DURATION" "64-words 64 $((3 * DURATION))"; do
  set -- $run
  [[ " $RUNS " == *" $1 "* ]] || continue
  for C in $CONNECTIONS; do
    b0=$(batches); cpu0=$(server_cpu); wrk_run "$3" "$2" "$TMP/$1.$C.wrk"; cpu1=$(server_cpu); b1=$(batches)
    echo "$3 $b0 $b1 $cpu0 $cpu1 $(awk '{ print $1 + $2 }' "$TMP/$1.$C.wrk.cpu") $(cut -d' ' -f1 /proc/loadavg)" \
      > "$TMP/$1.$C.batches"
  done
done
kill -TERM "$SERVER_PID"
wait "$SERVER_PID" && echo "loadtest: the server drained on SIGTERM and exited 0" || echo "loadtest: the server exited $?"
SERVER_PID=""

INPROC_AFTER=$(inprocess)
INPROC=$(( (INPROC_BEFORE + INPROC_AFTER) / 2 ))
echo "loadtest: in-process batched: $INPROC_AFTER queries/s (after); reference = mean $INPROC queries/s"
for run in "one-word 1" "64-words 64"; do
  set -- $run
  [[ " $RUNS " == *" $1 "* ]] || continue
  for C in $CONNECTIONS; do
  python3 - "$TMP/$1.$C.wrk" "$1" "$2" "$INPROC" "$C" $(cat "$TMP/$1.$C.batches") <<'PY'
import re, sys
text, name, batch, inproc = open(sys.argv[1]).read(), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
conns = int(sys.argv[5])
secs, s0, c0, s1, c1, cpu0, cpu1, wrk_cpu, load = (float(x) for x in sys.argv[6:15])
def ms(s):
    v, unit = float(re.match(r"([\d.]+)", s).group(1)), re.search(r"[a-z]+$", s).group(0)
    return v * {"us": 1e-3, "ms": 1, "s": 1e3, "m": 6e4}[unit]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", text, re.M))
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
errs = "connect %s, read %s, write %s, timeout %s" % sock.groups() if sock else "none"
qps = rps * batch
per_batch = (s1 - s0) / (c1 - c0) if c1 > c0 else 0
print(f"{name:>9} x {conns:>4} conn: {rps:8.0f} req/s = {qps:7.0f} queries/s = {100 * qps / inproc:5.1f}% of in-process; "
      f"p50 {ms(lat['50']):.1f} ms, p99 {ms(lat['99']):.1f} ms; non-2xx {non2xx.group(1) if non2xx else 0}; "
      f"socket errors: {errs}; server side: {(s1 - s0) / secs:.0f} queries/s searched "
      f"({100 * (s1 - s0) / secs / inproc:.1f}%), {per_batch:.0f} queries per batch search; "
      f"CPU per request: server {1e6 * (cpu1 - cpu0) / (rps * secs):.0f} us, wrk {1e6 * wrk_cpu / (rps * secs):.0f} us; "
      f"load average {load:.1f}")
PY
  done
done
