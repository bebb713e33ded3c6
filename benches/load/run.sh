#!/usr/bin/env bash
# Load test of the map server on loopback: wrk cycling tile and collection URLs
# (benches/load/urls.lua), twice by default (RUNS), with the server's resident memory before, between and
# after. Prints requests/s, p50/p90/p99 latency, non-2xx/3xx responses and socket errors.
#
#   benches/load/run.sh            # two runs of 60 s, 64 connections, 2 threads
#   RUNS=3 benches/load/run.sh     # three
#   DURATION=10s CONNS=16 benches/load/run.sh
#   ONLY_TILES=1 DATA_DIR=target/bench-data/store-10000000 benches/load/run.sh
#                                  # cached tiles only, on an existing (10M) store
#   IDLE=2000 benches/load/run.sh  # the same with 2,000 idle connections held open
#                                  # meanwhile (benches/load/idle.py), from other
#                                  # loopback addresses than wrk's
#
# Requests carry an analyst key (written to a temporary config file), so the analyst-only
# collections in the list answer 200 rather than 401; a tiles-only run sends none.
#
# The rate limits are off for this run (--ip-rps 0 --key-rps 0): wrk's 64 connections all
# come from 127.0.0.1, one address, and would meet it at once; the run measures serving,
# not refusing. `LIMITED=1` keeps the default limits and reports the 429s they cause.
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=${DURATION:-60s}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
PORT=${PORT:-18089}
BIN=${BIN:-target/release/hotspot}

command -v wrk >/dev/null || { echo "wrk is required (apt-get install wrk)"; exit 1; }
command -v curl >/dev/null || { echo "curl is required"; exit 1; }
[ -x "$BIN" ] || cargo build --release

DATA=$(mktemp -d)
PID=
IDLE_PID=
cleanup() {
    if [ -n "$IDLE_PID" ]; then kill "$IDLE_PID" 2>/dev/null || true; wait "$IDLE_PID" 2>/dev/null || true; fi
    if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
    rm -rf "$DATA"
}
trap cleanup EXIT

LIMIT_FLAGS=(--ip-rps 0 --key-rps 0)
[ "${LIMITED:-0}" = 1 ] && LIMIT_FLAGS=()
# An empty data directory is seeded with the bundled fixtures.
KEY=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
{
    echo '[[keys]]'
    echo 'name = "load-test"'
    echo 'role = "analyst"'
    echo "sha256 = \"$(printf %s "$KEY" | sha256sum | cut -d' ' -f1)\""
} >"$DATA/config.toml"
STORE=${DATA_DIR:-$DATA/store}
# Tiles are public: a tiles-only run asks as the public does (no key, no audit lines).
AUTH=(-H "Authorization: Bearer $KEY")
[ -n "${ONLY_TILES:-}" ] && AUTH=()
"$BIN" serve --bind "127.0.0.1:$PORT" --data "$STORE" --config "$DATA/config.toml" \
    "${LIMIT_FLAGS[@]}" >"$DATA/server.log" 2>&1 &
PID=$!
BASE="http://127.0.0.1:$PORT"
for _ in $(seq 1 600); do
    curl -fsS "$BASE/health" >/dev/null 2>&1 && break
    kill -0 "$PID" 2>/dev/null || { cat "$DATA/server.log"; exit 1; }
    sleep 0.5
done
curl -fsS "$BASE/health" >/dev/null

rss() { awk '/^VmRSS/ {printf "%.1f MB", $2 / 1024}' "/proc/$PID/status"; }
hwm() { awk '/^VmHWM/ {printf "%.1f MB", $2 / 1024}' "/proc/$PID/status"; }

echo "== $(date -u +%FT%TZ) $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== warm-up: every URL once, then 10 s of load"
SCRIPT=benches/load/urls.lua
# Each URL once, sequentially, so the first computation of each collection is not timed.
wrk -t1 -c1 -d5s "${AUTH[@]}" -s "$SCRIPT" "$BASE" >/dev/null
wrk -t"$THREADS" -c"$CONNS" -d10s "${AUTH[@]}" -s "$SCRIPT" "$BASE" >/dev/null
echo "RSS after warm-up: $(rss) (peak $(hwm))"
if [ "${IDLE:-0}" -gt 0 ]; then
    python3 benches/load/idle.py "$IDLE" 127.0.0.1 "$PORT" &
    IDLE_PID=$!
    sleep 5
    echo "== $IDLE idle connections held open (benches/load/idle.py); RSS now $(rss)"
fi
for run in $(seq 1 "${RUNS:-2}"); do
    echo "== run $run: wrk -t$THREADS -c$CONNS -d$DURATION -s $SCRIPT"
    wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" "${AUTH[@]}" -s "$SCRIPT" "$BASE" | sed -n '/^urls/,$p'
    echo "RSS after run $run: $(rss) (peak $(hwm))"
done
if [ "${LIMITED:-0}" = 1 ]; then
    echo "== (default limits: the non-2xx/3xx above are 429 Too Many Requests)"
fi
