-- census_features.sql: model features from the UCI Adult census data with
-- skewless's full-pass and instance-level functions.
--
-- Input:   census (--table census=examples/data/adult/adult.parquet)
-- Outputs: a preview of the features, then the features of every row written
--          to target/census_features.parquet (relative to the current
--          directory; `skewless run --overwrite` replaces an earlier one).
--
-- Full-pass functions (min_max_scale, z_score, vocab_index, quantile_bucket,
-- impute) learn their statistics from all rows that feed the SELECT in one
-- aggregate pass; skewless then inlines them as constants and applies them
-- row by row.

CREATE VIEW features AS
WITH imputed AS (
  -- Missing occupations become the most frequent one (fitted first).
  SELECT *, impute(occupation, 'most_frequent') AS occupation_filled FROM census
)
SELECT
  min_max_scale(age)                                    AS age_scaled,
  z_score(hours_per_week)                               AS hours_z,
  z_score(education_num)                                AS education_num_z,
  quantile_bucket(age, 10)                              AS age_decile,
  bucketize(age, [18, 25, 30, 35, 40, 45, 50, 55, 60, 65]) AS age_bucket,
  vocab_index(education)                                AS education_id,
  vocab_index(occupation_filled)                        AS occupation_id,
  vocab_index(native_country, NULL, 10)                 AS country_id,
  feature_cross(education, occupation, 10000)           AS education_x_occupation,
  CASE WHEN income_bracket = '>50K' THEN 1 ELSE 0 END   AS label
FROM imputed;

SELECT * FROM features LIMIT 5;

COPY (SELECT * FROM features) TO 'target/census_features.parquet';
