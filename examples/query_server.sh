#!/usr/bin/env bash
# A query server on this machine with the census as a shared table, then
# clients on it: `skewless run --connect` (a script of skewless functions),
# the same script locally (the same output), and — when Python has the ADBC
# Flight SQL driver (`pip install adbc-driver-flightsql pyarrow`) — Python.
#
# Usage (from the repository root): bash examples/query_server.sh
#   SKEWLESS=path/to/skewless   the binary (default: cargo build, target/debug/skewless)
#   QUERY_PORT=50051            the server's port
#   PYTHON=python3              a Python with adbc-driver-flightsql and pyarrow
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z "${SKEWLESS:-}" ]]; then
  cargo build --quiet
  SKEWLESS=target/debug/skewless
fi
port=${QUERY_PORT:-50051}
url="grpc://127.0.0.1:$port"
log=$(mktemp)
"$SKEWLESS" query-server --bind "127.0.0.1:$port" \
  --table census=examples/data/adult/adult.parquet 2> "$log" &
server=$!
trap 'kill $server 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 100); do
  grep -q listening "$log" && break
  kill -0 $server 2>/dev/null || { cat "$log" >&2; exit 1; }
  sleep 0.1
done
head -1 "$log"

script=$(mktemp --suffix .sql)
cat > "$script" <<'SQL'
SELECT age, education,
       vocab_index(education) AS education_id,
       hash_bucket(occupation, 100) AS occupation_bucket,
       z_score(hours_per_week) AS hours_z
FROM census
ORDER BY fnlwgt, age, education
LIMIT 5;
SQL
echo "== skewless run --connect $url"
"$SKEWLESS" run --connect "$url" "$script" | tee "$script.remote"
"$SKEWLESS" run --table census=examples/data/adult/adult.parquet "$script" > "$script.local"
cmp -s "$script.remote" "$script.local" && echo "the same output as a local run"

python=${PYTHON:-python3}
if "$python" -c "import adbc_driver_flightsql.dbapi, pyarrow" 2>/dev/null; then
  echo "== Python (ADBC)"
  "$python" - "$url" <<'PY'
import sys
import adbc_driver_flightsql.dbapi as flight
with flight.connect(sys.argv[1], autocommit=True) as conn, conn.cursor() as cur:
    cur.execute("SELECT gender, count(*) AS n FROM census WHERE age > $1 GROUP BY gender ORDER BY gender", parameters=(40,))
    print(cur.fetch_arrow_table().to_pylist())
PY
else
  echo "(no adbc-driver-flightsql for $python: pip install adbc-driver-flightsql pyarrow to try Python)"
fi
rm -f "$script" "$script.remote" "$script.local"
