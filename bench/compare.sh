#!/usr/bin/env bash
# The comparison with the tools users would pick instead (issue 6): the spec
# of sql/bench_spec.sql in skewless, DuckDB, Polars and pandas +
# scikit-learn over the same generated census-like Parquet file, checked to
# give the same features, timed, and the serving latency of skewless against
# the fitted scikit-learn pipeline and a pure-Python function.
#
#   bash bench/compare.sh                  10M rows, 3 runs each, all peers
#   bash bench/compare.sh --rows 1m        ~1M rows (1,009,391)
#   bash bench/compare.sh --runs 5 --peers duckdb,polars
#   bash bench/compare.sh --quick          skewless alone on the bundled
#                                          census, no Python packages (CI)
#
# The peers are installed from PyPI (bench/compare/requirements.txt) into
# bench/.venv; the data goes to $DIR (default /tmp/skewless-bench).
# CARGO_PROFILE=test builds the binary at the test profile (CI's quick run
# reuses what `cargo test` built; timings want the default, dev).
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=10m RUNS=3 PEERS=duckdb,polars,sklearn QUICK=
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --rows) SIZE=$2; shift ;;
    --runs) RUNS=$2; shift ;;
    --peers) PEERS=$2; shift ;;
    *) echo "bench/compare.sh: unknown argument '$1' (see the header of this script)" >&2; exit 2 ;;
  esac
  shift
done
cargo build --quiet --profile "${CARGO_PROFILE:-dev}"
if [ -n "$QUICK" ]; then
  exec python3 bench/compare/compare.py --quick
fi
case "$SIZE" in
  1m) REPEATS=31 ;;
  10m) REPEATS=308 ;;
  *) echo "bench/compare.sh: --rows is 1m or 10m, got '$SIZE'" >&2; exit 2 ;;
esac
VENV=bench/.venv
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check -r bench/compare/requirements.txt
source bench/lib.sh
generate_census "$REPEATS"   # sets DATA and ROWS
"$VENV/bin/python" bench/compare/compare.py --data "$DATA" --rows "$ROWS" --runs "$RUNS" --peers "$PEERS"
