-- census_wide_deep.sql: the features of the classic TensorFlow "wide & deep"
-- census tutorial, as one skewless transform.
--
-- Input:   census (--table census=examples/data/adult/adult.parquet)
-- Fit:     skewless fit sql/census_wide_deep.sql --table census=… --out census.json --label label
--
-- Wide part: categorical columns as vocabulary ids (unseen values get id V,
-- the vocabulary's size), age buckets, and hashed feature crosses.
-- Deep part: the continuous columns scaled with statistics of the training
-- data (z-scores; min-max of log(1 + x) for the heavily skewed capital
-- gains and losses). Missing workclass, occupation and native_country are
-- the category '?', as in the raw census files.
SELECT
  vocab_index(gender)                                     AS gender_id,
  vocab_index(education)                                  AS education_id,
  vocab_index(coalesce(occupation, '?'))                  AS occupation_id,
  vocab_index(coalesce(workclass, '?'))                   AS workclass_id,
  vocab_index(relationship)                               AS relationship_id,
  vocab_index(coalesce(native_country, '?'))              AS native_country_id,
  bucketize(age, [18, 25, 30, 35, 40, 45, 50, 55, 60, 65]) AS age_bucket,
  feature_cross(education, coalesce(occupation, '?'), 10000)
                                                          AS education_x_occupation,
  feature_cross(coalesce(native_country, '?'), coalesce(occupation, '?'), 10000)
                                                          AS native_country_x_occupation,
  feature_cross(bucketize(age, [18, 25, 30, 35, 40, 45, 50, 55, 60, 65]),
                education, coalesce(occupation, '?'), 1000000)
                                                          AS age_bucket_x_education_x_occupation,
  z_score(age)                                            AS age_z,
  z_score(education_num)                                  AS education_num_z,
  min_max_scale(ln(capital_gain + 1))                     AS capital_gain_scaled,
  min_max_scale(ln(capital_loss + 1))                     AS capital_loss_scaled,
  z_score(hours_per_week)                                 AS hours_per_week_z,
  CASE WHEN income_bracket = '>50K' THEN 1 ELSE 0 END     AS label
FROM census
