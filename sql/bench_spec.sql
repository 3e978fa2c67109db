-- bench_spec.sql: the preprocessing spec of the peer comparison
-- (bench/compare.sh), as a skewless transform. The same spec is written for
-- DuckDB, Polars and pandas + scikit-learn in bench/compare/.
--
-- Input: census (the census-like rows of bench/lib.sh, or the bundled data).
SELECT
  min_max_scale(age)                         AS age_scaled,
  min_max_scale(hours_per_week)              AS hours_scaled,
  z_score(fnlwgt)                            AS fnlwgt_z,
  z_score(capital_gain)                      AS capital_gain_z,
  z_score(education_num)                     AS education_num_z,
  vocab_index(occupation)                    AS occupation_id,
  vocab_index(education)                     AS education_id,
  vocab_index(workclass)                     AS workclass_id,
  vocab_index(native_country)                AS native_country_id,
  feature_cross(education, occupation, 10000) AS education_x_occupation,
  quantile_bucket(age, 10)                   AS age_bucket
FROM census
