# Shared by the bench/*.sh scripts (sourced, from the repository root).
#
# generate_census REPEATS: writes $DIR/census_xREPEATS_id.parquet (once): the
# bundled 32,561 census rows REPEATS times over, each copy with its numbers
# shifted (age ±2, hours ±3, fnlwgt and capital gains offset) so that the
# file compresses like real data rather than like repeated rows, and a
# unique BIGINT `id` (copy × 100,000 + the row's place in the census).
# Sets DATA and ROWS.
#
# measure NAME COMMAND…: runs COMMAND under /usr/bin/time -v and prints its
# wall time, rows/s over ROWS and peak memory (maximum resident set size).
DIR=${DIR:-/tmp/skewless-bench}
BIN=${SKEWLESS:-target/debug/skewless}
mkdir -p "$DIR"
[ -x "$BIN" ] || cargo build

generate_census() {
  local repeats=$1
  DATA="$DIR/census_x${repeats}_id.parquet"
  ROWS=$((32561 * repeats))
  [ -f "$DATA" ] && return
  echo "generating $DATA ..."
  cat > "$DIR/generate.sql" <<SQL
COPY (
  WITH numbered AS (SELECT row_number() OVER () AS r, * FROM census)
  SELECT CAST(g.value * 100000 + c.r AS BIGINT) AS id,
         c.age + g.value % 5 - 2 AS age, c.workclass, c.fnlwgt + g.value * 101 AS fnlwgt,
         c.education, c.education_num, c.marital_status, c.occupation, c.relationship,
         c.race, c.gender,
         CASE WHEN c.capital_gain > 0 THEN c.capital_gain + g.value * 7 ELSE 0 END AS capital_gain,
         c.capital_loss, c.hours_per_week + g.value % 7 - 3 AS hours_per_week,
         c.native_country, c.income_bracket
  FROM generate_series(1, $repeats) AS g CROSS JOIN numbered c
) TO '$DATA';
SQL
  "$BIN" run "$DIR/generate.sql" --table census=examples/data/adult/adult.parquet --progress never
}

measure() {
  local name=$1; shift
  /usr/bin/time -v -o "$DIR/$name.time" "$@" > "$DIR/$name.out"
  local kb
  SECS=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$DIR/$name.time" | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
  kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$DIR/$name.time")
  printf '%-22s %10s rows  %7.2f s  %12.0f rows/s  peak RSS %6.0f MiB' \
    "$name" "$ROWS" "$SECS" "$(echo "$ROWS / $SECS" | bc -l)" "$(echo "$kb / 1024" | bc -l)"
}
