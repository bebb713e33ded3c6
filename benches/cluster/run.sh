#!/usr/bin/env bash
# PostgreSQL store and replicas (issue 17), measured on this machine in one run:
#
#   1. ingest of ROWS generated police.uk rows (hotspot generate, 36 months) into SQLite
#      and into PostgreSQL: rows/s of each and their ratio;
#   2. start-up of `hotspot serve` from each store (until /health answers with every
#      incident loaded);
#   3. the time from an ingest's commit (one more month, by the CLI) to two replicas on
#      the PostgreSQL store both serving it (/health's store_version);
#   4. wrk through nginx over two replicas against one replica alone (scripts/cluster,
#      the bundled real year; benches/load/urls.lua's tile and collection URLs).
#
#   benches/cluster/run.sh                    # ROWS=1000000
#   ROWS=10000000 benches/cluster/run.sh
#   SKIP_WRK=1 ROWS=10000000 benches/cluster/run.sh
#   DURATION=20s CONNS=64 benches/cluster/run.sh
#
# PostgreSQL runs as a throwaway cluster with default durability (fsync on), as SQLite
# keeps its own (WAL, synchronous=NORMAL).
set -euo pipefail
cd "$(dirname "$0")/../.."

ROWS=${ROWS:-1000000}
BIN=${BIN:-target/release/hotspot}
DURATION=${DURATION:-20s}
CONNS=${CONNS:-64}
[ -x "$BIN" ] || cargo build --release --locked
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
pgbin=$(pg_bin)
[ -x "$pgbin/initdb" ] || { echo "needs Debian's postgresql (apt-get install postgresql)"; exit 1; }

gen=target/bench-data/cluster-$ROWS
if [ ! -d "$gen/police" ]; then
    "$BIN" generate --rows "$ROWS" --stats19-rows 0 --months 36 --out "$gen" >/dev/null
fi
extra=target/bench-data/cluster-extra
[ -d "$extra/police" ] || "$BIN" generate --rows 20000 --stats19-rows 0 --months 1 --start 2031-01 --seed 7 --out "$extra" >/dev/null

dir=$(mktemp -d)
chmod 755 "$dir"
as_pg=()
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    "${as_pg[@]}" "$pgbin/pg_ctl" -D "$dir/pg" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
mkdir -p "$dir/pg"
if [ "$(id -u)" = 0 ]; then chown postgres "$dir/pg"; as_pg=(runuser -u postgres --); fi
pgport=$(free_port)
"${as_pg[@]}" "$pgbin/initdb" -D "$dir/pg" -A trust -U hotspot -E UTF8 >/dev/null
"${as_pg[@]}" "$pgbin/pg_ctl" -D "$dir/pg" -l "$dir/pg/server.log" -w \
    -o "-p $pgport -k $dir/pg -c listen_addresses=127.0.0.1 -c max_wal_size=8GB" start >/dev/null
psql -q -h 127.0.0.1 -p "$pgport" -U hotspot -d postgres -c "CREATE DATABASE bench"
STORE="postgresql://hotspot@127.0.0.1:$pgport/bench"

now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.2f}')"; }

echo "== ingest of $ROWS police.uk rows (36 monthly files)"
t0=$(now); "$BIN" ingest --data "$dir/sqlite" "$gen/police" >/dev/null 2>&1; t1=$(now)
sq=$(secs "$t0" "$t1")
t0=$(now); "$BIN" ingest --data "$dir/ingest" --store "$STORE" "$gen/police" >/dev/null 2>&1; t1=$(now)
pq=$(secs "$t0" "$t1")
python3 -c "
r=$ROWS; s=$sq; p=$pq
print(f'SQLite      {s:8.2f} s  {r/s:12,.0f} rows/s')
print(f'PostgreSQL  {p:8.2f} s  {r/p:12,.0f} rows/s   (PostgreSQL / SQLite time: {p/s:.2f}x)')"

# Starts `hotspot serve ARGS` on a free port (in this shell, so that cleanup stops it);
# sets $port and $took (seconds) once /health answers, which is after the load.
start() {
    local t0 t1
    port=$(free_port)
    t0=$(now)
    HOTSPOT_LOG=warn "$BIN" serve --bind "127.0.0.1:$port" "$@" > "$dir/serve-$port.log" 2>&1 &
    pids+=($!)
    until curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1; do sleep 0.02; done
    t1=$(now)
    took=$(secs "$t0" "$t1")
}

echo "== start-up (until /health answers)"
start --data "$dir/sqlite"
echo "from SQLite      $took s"
kill "${pids[-1]}"
start --data "$dir/r1" --store "$STORE"
echo "from PostgreSQL  $took s"
p1=$port
start --data "$dir/r2" --store "$STORE"
p2=$port

# A new server warms its caches (H3 covers, the default patrol list's backtest) in the
# background for a while after it answers; the ingest waits for that (SETTLE seconds),
# as a replica that has been up for a while would be idle.
sleep "${SETTLE:-30}"
echo "== commit to both replicas serving (one more month, 20,000 rows, by the CLI; replicas idle)"
version() { curl -fs "http://127.0.0.1:$1/health" | python3 -c 'import json, sys; print(json.load(sys.stdin)["store_version"])'; }
"$BIN" ingest --data "$dir/ingest" --store "$STORE" "$extra/police" >/dev/null 2>&1
t0=$(now)
want=$(psql -At -h 127.0.0.1 -p "$pgport" -U hotspot -d bench -c "SELECT max(id) FROM ingest_log")
until [ "$(version "$p1")" = "$want" ] && [ "$(version "$p2")" = "$want" ]; do sleep 0.01; done
t1=$(now)
echo "both replicas at version $want $(secs "$t0" "$t1") s after the ingest exited (a full reload each, as at start-up)"

[ "${SKIP_WRK:-0}" = 1 ] && exit 0
command -v wrk >/dev/null || { echo "wrk is required for part 4 (apt-get install wrk)"; exit 1; }
# The public map's tiles (benches/load/urls.lua with ONLY_TILES=1: no key, so nginx may
# cache them), rate limits off on the replicas: wrk is one client address.
echo "== wrk $DURATION, $CONNS connections, public tiles: nginx over two replicas vs one replica alone (real year)"
ONLY_TILES=1 HOTSPOT_SERVE_ARGS="--ip-rps 0 --key-rps 0" DURATION=$DURATION CONNS=$CONNS BIN=$BIN scripts/cluster -- bash -c '
    for target in "$HOTSPOT_CLUSTER_URL" "$HOTSPOT_REPLICA_1"; do
        # warm both replicas caches first, then measure
        wrk -t2 -c"$CONNS" -d5s -s benches/load/urls.lua "$target" >/dev/null 2>&1 || true
        echo "-- $target"
        wrk -t2 -c"$CONNS" -d"$DURATION" -s benches/load/urls.lua "$target" | grep -E "^(requests|latency|non-2xx)"
    done'
