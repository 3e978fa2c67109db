#!/usr/bin/env bash
# Splitting and sampling ~10M rows (bench/lib.sh's generated census, keyed by
# its unique `id`), each against a plain scan-and-write of the same file:
#
#   scan_write         COPY (SELECT * FROM census) TO a Parquet file
#   split_of           + split_of(id, 70/20/10), written per split directory
#   stratified_split   + stratified_split(id, income_bracket, 70/20/10), per split directory
#   stratified_sample  WHERE stratified_sample(id, race, 0.1, 42): a 10% sample
#   undersample        WHERE undersample(id, income_bracket, 42): balanced classes
#   oversample         unnest(range(oversample(id, income_bracket, 42))): balanced classes
#   scan_write_x1.5    a plain scan-and-write of about as many rows as oversample writes
#                      (every row, then the rows with an even id again)
#
# Prints wall time, rows/s (of the input), peak memory, the ratio to
# scan_write and the rows written (a sample writes fewer, an oversample more). Data and outputs under $DIR (default /tmp/skewless-bench).
#
# Usage: bench/split_10m.sh [REPEATS]      (from the repository root)
set -euo pipefail
source bench/lib.sh
generate_census "${1:-308}"
OUT="$DIR/split_out"
job() {
  local name=$1 sql=$2
  rm -rf "$OUT" && mkdir -p "$OUT"
  echo "$sql" > "$DIR/$name.sql"
  measure "$name" "$BIN" run "$DIR/$name.sql" --table "census=$DATA" --progress never \
    2> "$DIR/$name.err"
  if [ "$name" = scan_write ]; then BASE=$SECS; fi
  local written
  written=$(grep -o '[0-9,]* rows written' "$DIR/$name.err" | tr -d ',' | awk '{print $1}')
  printf '  %5.2f× scan_write  (%s rows written)\n' "$(echo "$SECS / $BASE" | bc -l)" "$written"
}
job scan_write "COPY (SELECT * FROM census) TO '$OUT/all.parquet';"
job split_of "COPY (SELECT *, split_of(id, 'train', 0.7, 'eval', 0.2, 'test', 0.1) AS split FROM census) TO '$OUT/' STORED AS PARQUET PARTITIONED BY (split);"
job stratified_split "COPY (SELECT *, stratified_split(id, income_bracket, 'train', 0.7, 'eval', 0.2, 'test', 0.1) AS split FROM census) TO '$OUT/' STORED AS PARQUET PARTITIONED BY (split);"
job stratified_sample "COPY (SELECT * FROM census WHERE stratified_sample(id, race, 0.1, 42)) TO '$OUT/sample.parquet';"
job undersample "COPY (SELECT * FROM census WHERE undersample(id, income_bracket, 42)) TO '$OUT/under.parquet';"
job oversample "COPY (SELECT id, age, workclass, fnlwgt, education, education_num, marital_status, occupation, relationship, race, gender, capital_gain, capital_loss, hours_per_week, native_country, income_bracket, unnest(range(copies)) AS copy FROM (SELECT *, oversample(id, income_bracket, 42) AS copies FROM census)) TO '$OUT/over.parquet';"
job scan_write_x1.5 "COPY (SELECT * FROM census UNION ALL SELECT * FROM census WHERE id % 2 = 0) TO '$OUT/more.parquet';"
