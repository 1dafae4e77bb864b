#!/usr/bin/env bash
# Load test of `igla serve` (issue 13): starts the server on the default index, drives it with wrk
# (1,000 keep-alive connections) with nearest requests of 1 word and of 64 words, and prints
# requests/s, p50/p99 latency, non-2xx and socket errors, beside the in-process batched rate of
# `igla nearest --input` on the same words and index, measured in the same run.
#
# Usage: scripts/loadtest.sh [seconds per run, default 20]
# Env:   IGLA=build/igla  INDEX=~/.cache/igla/glove-100d.igla  CONNECTIONS=1000  WRK_THREADS=1
#        PORT=18080  WORDS=10000 (distinct words cycled)  SERVE_ARGS="--device cpu ..." (extra flags)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-20}
IGLA=${IGLA:-build/igla}
INDEX=${INDEX:-${IGLA_HOME:-$HOME/.cache/igla}/glove-100d.igla}
CONNECTIONS=${CONNECTIONS:-1000}
WRK_THREADS=${WRK_THREADS:-1}
PORT=${PORT:-18080}
NWORDS=${WORDS:-10000}
SERVE_ARGS=${SERVE_ARGS:-}
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
echo "loadtest: $(wc -l < "$TMP/words.txt") words from $INDEX; $CONNECTIONS connections, $WRK_THREADS wrk thread(s), ${DURATION}s per run; $(nproc) cores shared by server and wrk"

# In-process batched rate: `igla nearest --input` over the words repeated, minus its start-up.
REPS=$(( 100000 / NWORDS + 1 ))
for _ in $(seq "$REPS"); do cat "$TMP/words.txt"; done > "$TMP/many.txt"
head -n 1 "$TMP/words.txt" > "$TMP/one.txt"
now() { date +%s.%N; }
t0=$(now); "$IGLA" nearest --index "$INDEX" --input "$TMP/one.txt" -k 10 > /dev/null; t1=$(now)
"$IGLA" nearest --index "$INDEX" --input "$TMP/many.txt" -k 10 > /dev/null; t2=$(now)
NQ=$(wc -l < "$TMP/many.txt")
INPROC=$(python3 -c "print(round($NQ / (($t2 - $t1) - ($t1 - $t0))))")
echo "loadtest: in-process batched (igla nearest --input, k 10, $NQ queries): $INPROC queries/s"

# The server.
"$IGLA" serve --index "$INDEX" --port "$PORT" $SERVE_ARGS > "$TMP/serve.out" 2> "$TMP/serve.err" &
SERVER_PID=$!
for _ in $(seq 300); do grep -q "^listening on" "$TMP/serve.out" 2>/dev/null && break; sleep 0.1; done
grep -q "^listening on" "$TMP/serve.out" || { cat "$TMP/serve.err" >&2; echo "loadtest: the server did not start" >&2; exit 1; }
URL=$(sed -n 's/^listening on //p' "$TMP/serve.out")
echo "loadtest: server at $URL ($SERVE_ARGS)"

run() {  # run NAME BATCH
  local name=$1 batch=$2
  IGLA_WORDS="$TMP/words.txt" IGLA_BATCH=$batch wrk -t "$WRK_THREADS" -c "$CONNECTIONS" -d "${DURATION}s" \
    --timeout 30s --latency -s scripts/loadtest.lua "$URL" > "$TMP/$name.wrk" 2>&1 || true
  python3 - "$TMP/$name.wrk" "$name" "$batch" "$INPROC" <<'PY'
import re, sys
text, name, batch, inproc = open(sys.argv[1]).read(), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
def ms(s):
    v, unit = float(re.match(r"([\d.]+)", s).group(1)), re.search(r"[a-z]+$", s).group(0)
    return v * {"us": 1e-3, "ms": 1, "s": 1e3, "m": 6e4}[unit]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", text, re.M))
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
errs = "connect %s, read %s, write %s, timeout %s" % sock.groups() if sock else "none"
qps = rps * batch
print(f"{name:>10}: {rps:10.0f} req/s = {qps:8.0f} queries/s ({100 * qps / inproc:5.1f}% of in-process {inproc:.0f}); "
      f"p50 {ms(lat['50']):.1f} ms, p99 {ms(lat['99']):.1f} ms; non-2xx {non2xx.group(1) if non2xx else 0}; socket errors {errs}")
PY
}
run one-word 1
run 64-words 64

# What the batcher did (from the server's own metrics).
curl -s "$URL/metrics" > "$TMP/metrics.txt" 2>/dev/null || true
python3 - "$TMP/metrics.txt" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
s = re.search(r'igla_batch_size_queries_sum\{kind="nearest"\} (\S+)', t)
c = re.search(r'igla_batch_size_queries_count\{kind="nearest"\} (\S+)', t)
if s and c and float(c.group(1)) > 0:
    print(f"    server: {float(c.group(1)):.0f} batch searches, {float(s.group(1)) / float(c.group(1)):.0f} queries per batch on average")
PY
kill -TERM "$SERVER_PID"
wait "$SERVER_PID" && echo "loadtest: server drained and exited 0" || echo "loadtest: server exited $?"
SERVER_PID=""
