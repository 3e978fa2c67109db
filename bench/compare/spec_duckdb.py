"""The spec (sql/bench_spec.sql) in DuckDB: a statistics pass (two queries
over the Parquet file), then one COPY with the statistics as constants.

Usage: python spec_duckdb.py INPUT.parquet OUTPUT.parquet
"""

import sys

import duckdb

from spec_common import CROSS_BUCKETS, VOCAB_COLUMNS, cross_bucket, quantile_boundaries, vocabulary


def sql_str(s):
    return "'" + s.replace("'", "''") + "'"


def main(src, out):
    con = duckdb.connect()
    con.execute(f"CREATE VIEW census AS SELECT * FROM read_parquet({sql_str(src)})")
    # Pass 1: numeric statistics, then every value count in one GROUPING SETS scan.
    (age_min, age_max, h_min, h_max, fw_mean, fw_sd, cg_mean, cg_sd, en_mean, en_sd) = con.execute(
        """SELECT min(age), max(age), min(hours_per_week), max(hours_per_week),
                  avg(fnlwgt), stddev_pop(fnlwgt), avg(capital_gain), stddev_pop(capital_gain),
                  avg(education_num), stddev_pop(education_num)
           FROM census"""
    ).fetchone()
    sets = ", ".join(f"({c})" for c in VOCAB_COLUMNS + ["age"]) + ", (education, occupation)"
    rows = con.execute(
        f"""SELECT {', '.join(VOCAB_COLUMNS)}, age, GROUPING_ID({', '.join(VOCAB_COLUMNS)}, age) AS g,
                   count(*) AS n
            FROM census GROUP BY GROUPING SETS ({sets})"""
    ).fetchall()
    counts = {c: [] for c in VOCAB_COLUMNS + ["age"]}
    pairs = []
    for *values, g, n in rows:
        occupation, education, workclass, native_country, age = values
        # GROUPING_ID bit 4 - i is set when column i is not grouped.
        grouped = [not (g >> (4 - i)) & 1 for i in range(5)]
        if grouped[0] and grouped[1]:
            if education is not None and occupation is not None:
                pairs.append((education, occupation))
        elif grouped[4]:
            counts["age"].append((age, n))
        else:
            for i, c in enumerate(VOCAB_COLUMNS):
                if grouped[i] and values[i] is not None:
                    counts[c].append((values[i], n))
    # Pass 2: the features, statistics inlined.
    def vocab_expr(c):
        vocab = vocabulary(counts[c])
        listed = ", ".join(sql_str(v) for v in vocab)
        return (
            f"CAST(CASE WHEN {c} IS NULL THEN NULL "
            f"ELSE coalesce(list_position([{listed}], {c}) - 1, {len(vocab)}) END AS BIGINT)"
        )

    cross = ", ".join(f"{sql_str(e + '_' + o)}: {cross_bucket(e, o)}" for e, o in pairs)
    bounds = quantile_boundaries(counts["age"])
    bucket = " + ".join(f"CAST(age >= {b} AS BIGINT)" for b in bounds)
    con.execute(
        f"""COPY (
          SELECT (age - {age_min}) / {float(age_max - age_min)} AS age_scaled,
                 (hours_per_week - {h_min}) / {float(h_max - h_min)} AS hours_scaled,
                 (fnlwgt - {fw_mean!r}) / {fw_sd!r} AS fnlwgt_z,
                 (capital_gain - {cg_mean!r}) / {cg_sd!r} AS capital_gain_z,
                 (education_num - {en_mean!r}) / {en_sd!r} AS education_num_z,
                 {vocab_expr('occupation')} AS occupation_id,
                 {vocab_expr('education')} AS education_id,
                 {vocab_expr('workclass')} AS workclass_id,
                 {vocab_expr('native_country')} AS native_country_id,
                 CAST(MAP {{{cross}}}[education || '_' || occupation] AS BIGINT)
                   AS education_x_occupation,
                 {bucket} AS age_bucket
          FROM census
        ) TO {sql_str(out)} (FORMAT parquet)"""
    )
    assert CROSS_BUCKETS == 10_000


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
