#!/usr/bin/env bash
# Load test of `skewless serve` (issue 13): wrk against the server on one
# core, single-row requests at 1/8/64 connections beside the health endpoint
# and `eval --latency`, batches of 1-10,000 rows in each request form, and
# the fitted scikit-learn pipeline behind Python's HTTP server as the
# baseline. Needs wrk and taskset (apt install wrk util-linux) and 2 cores;
# the baseline needs bench/.venv (bash bench/compare.sh --rows 1m makes it,
# or: python3 -m venv bench/.venv && bench/.venv/bin/pip install -r
# bench/compare/requirements.txt).
#
#   bash bench/serve_load.sh                 all of it (about 4 minutes)
#   DURATION=3 bash bench/serve_load.sh      shorter runs
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${DIR:-/tmp/skewless-serve-bench}
DURATION=${DURATION:-10}
mkdir -p "$DIR"
cargo build --quiet
BIN=target/debug/skewless
# The spec of the peer comparison (sql/bench_spec.sql), fitted on the
# bundled census data; requests are the 16,281 rows of its test set.
"$BIN" fit sql/bench_spec.sql --table census=examples/data/adult/adult.parquet \
  --out "$DIR/spec.json" --overwrite 2>/dev/null
echo "COPY (SELECT * FROM census) TO '$DIR/rows.ndjson';" |
  "$BIN" run - --table census=examples/data/adult/adult_test.parquet --overwrite >/dev/null 2>&1
SKLEARN=()
if [ -x bench/.venv/bin/python ] && bench/.venv/bin/python -c "import sklearn, pandas" 2>/dev/null; then
  bench/.venv/bin/python bench/compare/spec_sklearn.py examples/data/adult/adult.parquet \
    "$DIR/sklearn_features.parquet" --save-model "$DIR/pipeline.pkl" >/dev/null
  SKLEARN=(--sklearn "$DIR/pipeline.pkl")
fi
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2)"
python3 bench/serve/load.py --bin "$BIN" --artifact "$DIR/spec.json" --rows "$DIR/rows.ndjson" \
  --duration "$DURATION" --batch-duration "$(( DURATION > 5 ? 5 : DURATION ))" "${SKLEARN[@]}"
