-- census_splits.sql: selecting and partitioning training data on the UCI
-- Adult census: an exact stratified train/eval/test split written per
-- directory, a weighted stratified sample, and a balanced oversample of the
-- training split. Every step is deterministic (under its seed) and costs a
-- narrow statistics pass plus a scan: the wide rows are never sorted.
--
-- Input:   census (--table census=examples/data/adult/adult.parquet)
-- Outputs, under target/ (relative to the current directory; an existing
-- output is refused unless `skewless run --overwrite`):
--   target/census_splits/split={train,eval,test}/   every row, by split
--   target/census_sample.parquet                    1,400 rows, races 9:2:3
--   target/census_train_balanced.parquet            the training split, classes 1:1
--
-- The census has no id column: every column joined with '|' is the key
-- (unique but for 24 duplicated rows, which share a split).

CREATE VIEW keyed AS
SELECT concat_ws('|', age, workclass, fnlwgt, education, education_num, marital_status,
                 occupation, relationship, race, gender, capital_gain, capital_loss,
                 hours_per_week, native_country, income_bracket) AS id, *
FROM census;

-- 70/20/10 inside each income bracket, with exact sizes: 24,720 '<=50K'
-- rows → 17,304 / 4,944 / 2,472 and 7,841 '>50K' rows → 5,489 / 1,568 / 784.
CREATE VIEW parted AS
SELECT *, stratified_split(id, income_bracket, 'train', 0.7, 'eval', 0.2, 'test', 0.1) AS split
FROM keyed;

SELECT split, income_bracket, count(*) AS n FROM parted GROUP BY 1, 2 ORDER BY 1, 2;

COPY (SELECT * FROM parted) TO 'target/census_splits/' STORED AS PARQUET PARTITIONED BY (split);

-- 1,400 rows from three races weighted 9:2:3 (900 / 200 / 300); the other
-- races are left out.
COPY (
  SELECT * FROM keyed
  WHERE stratified_sample(id, race, 1400, 42, 'White', 9, 'Black', 2, 'Asian-Pac-Islander', 3)
) TO 'target/census_sample.parquet';

-- The training split with '>50K' oversampled to 1:1: each of its 5,489 rows
-- 3 or 4 times, 17,304 in all. UNNEST goes in its own SELECT over a
-- subquery.
COPY (
  SELECT id, age, workclass, fnlwgt, education, education_num, marital_status, occupation,
         relationship, race, gender, capital_gain, capital_loss, hours_per_week,
         native_country, income_bracket, unnest(range(copies)) AS copy
  FROM (SELECT *, oversample(id, income_bracket, 42) AS copies FROM parted WHERE split = 'train')
) TO 'target/census_train_balanced.parquet';

SELECT income_bracket, count(*) AS n, max(copy) + 1 AS most_copies
FROM 'target/census_train_balanced.parquet' GROUP BY 1 ORDER BY 1;
