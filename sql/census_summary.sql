-- census_summary.sql: a first look at the UCI Adult census data.
--
-- Input:   census, the bundled examples/data/adult/adult.parquet
--          (register it with --table census=examples/data/adult/adult.parquet)
-- Outputs: the label balance; the share of incomes over 50K by education;
--          occupations hashed into 8 buckets, the way a wide model's
--          categorical column is hashed.

-- Label balance: 24,720 '<=50K' and 7,841 '>50K' of 32,561 rows.
SELECT income_bracket, count(*) AS rows
FROM census
GROUP BY income_bracket
ORDER BY income_bracket;

-- Where the high incomes are, by education.
SELECT education,
       count(*) AS rows,
       round(avg(CASE WHEN income_bracket = '>50K' THEN 1.0 ELSE 0.0 END), 3) AS share_over_50k
FROM census
GROUP BY education
ORDER BY share_over_50k DESC, education;

-- Occupations hashed into 8 buckets with hash_bucket (FarmHash Fingerprint64,
-- the same buckets as BigQuery ML's ML.HASH_BUCKETIZE); NULL stays NULL.
SELECT occupation, hash_bucket(occupation, 8) AS bucket, count(*) AS rows
FROM census
GROUP BY occupation
ORDER BY bucket NULLS LAST, occupation;
