#!/usr/bin/env bash
# The query server's figures (issue 16, BENCHMARKS.md "Query server"):
#
# 1. latency of a small query (p50/p99), in-process (`skewless run`)
#    against through the server (`skewless run --connect`, and the Python
#    ADBC driver);
# 2. streaming a 10M-row `SELECT *` to an ADBC client (rows/s, MB/s of
#    Arrow data) against reading the same Parquet file directly (pyarrow);
# 3. 8 clients at once against one.
#
# Usage: bash bench/query_server.sh [REPEATS]   (from the repository root;
# REPEATS=308 gives the 10,028,788-row file of bench/lib.sh; PORT=50170)
set -euo pipefail
cargo build --quiet
source bench/lib.sh
generate_census "${1:-308}"
port=${PORT:-50170}
out=$DIR/query
rm -rf "$out"
mkdir -p "$out"
VENV=bench/.venv
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check adbc-driver-flightsql==1.13.0 pyarrow==26.0.1

RUST_LOG=info "$BIN" query-server --bind "127.0.0.1:$port" --table "census=$DATA" \
  --table small=examples/data/adult/adult.parquet 2> "$out/server.log" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q listening "$out/server.log" && break; sleep 0.1; done

# 1. The small query N times in one script: per-statement times from the
# log lines `run` writes as each statement starts (RUST_LOG=info).
small="SELECT education, count(*) AS n, avg(hours_per_week) AS hours FROM small WHERE age > 40 GROUP BY education ORDER BY education;"
n=${LATENCY_RUNS:-300}
for _ in $(seq "$n"); do echo "$small"; done > "$out/small.sql"
echo "SELECT 1;" >> "$out/small.sql"
RUST_LOG=info "$BIN" run "$out/small.sql" --table small=examples/data/adult/adult.parquet --format csv \
  > /dev/null 2> "$out/inprocess.log"
RUST_LOG=info "$BIN" run "$out/small.sql" --connect "grpc://127.0.0.1:$port" --format csv \
  > /dev/null 2> "$out/remote.log"

"$VENV/bin/python" bench/query/query_server.py "grpc://127.0.0.1:$port" "$DATA" "$out" "$small" "$n"
echo
echo "server: $(grep -c 'query done' "$out/server.log") queries done, $(grep -c 'session started' "$out/server.log") sessions; peak RSS $(awk '/VmHWM/ {print $2 / 1024 " MiB"}' /proc/$server/status)"
