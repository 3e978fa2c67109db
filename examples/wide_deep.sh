#!/usr/bin/env bash
# The main job: fit the census wide & deep transform on the training data,
# apply it in batch to the test data, and evaluate three raw test rows with
# the serving evaluator (the same features, one row at a time).
#
# Usage (from the repository root): bash examples/wide_deep.sh
# Writes target/wide_deep/census_wide_deep.json (the artifact) and
# target/wide_deep/features.parquet (the test set's features).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet
skewless=target/debug/skewless
out=target/wide_deep
mkdir -p "$out"

echo "== fit: one statistics pass over the training data"
"$skewless" fit sql/census_wide_deep.sql \
  --table census=examples/data/adult/adult.parquet \
  --label label --out "$out/census_wide_deep.json" --overwrite

echo
echo "== apply: the fitted transform over the test data, in batch"
"$skewless" apply "$out/census_wide_deep.json" \
  --table census=examples/data/adult/adult_test.parquet \
  --out "$out/features.parquet" --overwrite
"$skewless" run - --table "features=$out/features.parquet" <<'SQL'
SELECT count(*) AS test_rows, sum(label) AS over_50k, min(age_bucket) AS min_age_bucket,
       max(age_bucket) AS max_age_bucket, count(DISTINCT education_x_occupation) AS crosses
FROM features;
SQL

echo
echo "== eval: three raw test rows as JSON lines through the serving evaluator"
"$skewless" run - --format ndjson \
  --table census=examples/data/adult/adult_test.parquet <<'SQL' | tee "$out/rows.ndjson"
SELECT age, workclass, education, education_num, occupation, relationship, gender,
       capital_gain, capital_loss, hours_per_week, native_country FROM census LIMIT 3;
SQL
echo "->"
"$skewless" eval "$out/census_wide_deep.json" < "$out/rows.ndjson"

echo
echo "== validate: the test data against the training profile in the artifact"
"$skewless" validate "$out/census_wide_deep.json" \
  --table census=examples/data/adult/adult_test.parquet \
  --html "$out/validation.html" --overwrite
echo "(report: $out/validation.html)"
