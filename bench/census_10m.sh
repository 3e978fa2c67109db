#!/usr/bin/env bash
# Batch fit and apply of sql/census_wide_deep.sql on a generated census-like
# Parquet file of ~10M rows (bench/lib.sh: the bundled 32,561 census rows 308
# times over, 10,028,788 rows, numbers shifted per copy). The data is written
# under $DIR (default /tmp/skewless-bench), never committed. Prints rows/s
# and peak memory of each step.
#
# Usage: bench/census_10m.sh [REPEATS]     (from the repository root)
set -euo pipefail
source bench/lib.sh
generate_census "${1:-308}"
measure fit "$BIN" fit sql/census_wide_deep.sql --table "census=$DATA" \
  --out "$DIR/census_wide_deep.json" --label label --progress never --overwrite
echo
measure apply "$BIN" apply "$DIR/census_wide_deep.json" --table "census=$DATA" \
  --out "$DIR/features.parquet" --overwrite
echo
