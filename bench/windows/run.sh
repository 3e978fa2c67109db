#!/usr/bin/env bash
# Batch window features (issue 12): 10M events over 100k entities, four
# features (count and mean over 1 hour, max and sum over 24 hours, the
# window [t - w, t)), by skewless, DuckDB (RANGE … EXCLUDE GROUP) and Polars
# (rolling, closed='left'); the outputs are checked equal, then each is timed
# with its peak memory (/usr/bin/time).
#
#   bash bench/windows/run.sh [EVENTS [ENTITIES [RUNS]]]   defaults 10000000 100000 3
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-10000000} E=${2:-100000} RUNS=${3:-3}
DIR=${DIR:-/tmp/skewless-bench}
mkdir -p "$DIR"
VENV=bench/.venv
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check -r bench/compare/requirements.txt
cargo build --quiet
DATA="$DIR/events_${N}_${E}.parquet"
[ -f "$DATA" ] || "$VENV/bin/python" bench/windows/generate.py "$DATA" "$N" "$E"
run() { # name, out, command...
  local name=$1 out=$2; shift 2
  rm -rf "$out"
  /usr/bin/time -f "%e %M" -o "$DIR/time.txt" "$@" > /dev/null
  read -r secs kib < "$DIR/time.txt"
  echo "  $name: $secs s, $((kib / 1024)) MiB"
}
SQL="$DIR/window_features.sql"
sed "s|'OUT'|'$DIR/w_skewless.parquet'|" bench/windows/features.sql > "$SQL"
for i in $(seq "$RUNS"); do
  run skewless "$DIR/w_skewless.parquet" target/debug/skewless run "$SQL" --table "events=$DATA"
  run duckdb "$DIR/w_duckdb.parquet" "$VENV/bin/python" bench/windows/peers.py duckdb "$DATA" "$DIR/w_duckdb.parquet"
  run polars "$DIR/w_polars.parquet" "$VENV/bin/python" bench/windows/peers.py polars "$DATA" "$DIR/w_polars.parquet"
done
"$VENV/bin/python" bench/windows/check.py "$DIR/w_skewless.parquet" "$DIR/w_duckdb.parquet" duckdb
"$VENV/bin/python" bench/windows/check.py "$DIR/w_skewless.parquet" "$DIR/w_polars.parquet" polars
