#!/usr/bin/env bash
# Batch fit and apply of sql/census_wide_deep.sql on a generated census-like
# Parquet file of ~10M rows: the bundled 32,561 census rows 308 times over
# (10,028,788 rows), each copy with its numbers shifted (age ±2, hours ±3,
# fnlwgt and capital gains offset) so that the file compresses like real
# data rather than like repeated rows. The data is written under $DIR
# (default /tmp/skewless-bench), never committed. Prints rows/s and peak memory
# (maximum resident set size, from /usr/bin/time -v) of each step.
#
# Usage: bench/census_10m.sh [REPEATS]     (from the repository root)
set -euo pipefail
DIR=${DIR:-/tmp/skewless-bench}
REPEATS=${1:-308}
BIN=${SKEWLESS:-target/debug/skewless}
mkdir -p "$DIR"
[ -x "$BIN" ] || cargo build
DATA="$DIR/census_x$REPEATS.parquet"
if [ ! -f "$DATA" ]; then
  echo "generating $DATA ..."
  cat > "$DIR/generate.sql" <<SQL
COPY (
  SELECT c.age + g.value % 5 - 2 AS age, c.workclass, c.fnlwgt + g.value * 101 AS fnlwgt,
         c.education, c.education_num, c.marital_status, c.occupation, c.relationship,
         c.race, c.gender,
         CASE WHEN c.capital_gain > 0 THEN c.capital_gain + g.value * 7 ELSE 0 END AS capital_gain,
         c.capital_loss, c.hours_per_week + g.value % 7 - 3 AS hours_per_week,
         c.native_country, c.income_bracket
  FROM generate_series(1, $REPEATS) AS g CROSS JOIN census c
) TO '$DATA';
SQL
  "$BIN" run "$DIR/generate.sql" --table census=examples/data/adult/adult.parquet --progress never
fi
ROWS=$((32561 * REPEATS))
measure() {
  local name=$1; shift
  /usr/bin/time -v -o "$DIR/$name.time" "$@" > "$DIR/$name.out"
  local secs kb
  secs=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$DIR/$name.time" | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
  kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$DIR/$name.time")
  printf '%-6s %10s rows  %7.2f s  %12.0f rows/s  peak RSS %6.0f MiB\n' \
    "$name" "$ROWS" "$secs" "$(echo "$ROWS / $secs" | bc -l)" "$(echo "$kb / 1024" | bc -l)"
}
measure fit "$BIN" fit sql/census_wide_deep.sql --table "census=$DATA" \
  --out "$DIR/census_wide_deep.json" --label label --progress never
measure apply "$BIN" apply "$DIR/census_wide_deep.json" --table "census=$DATA" \
  --out "$DIR/features.parquet"
