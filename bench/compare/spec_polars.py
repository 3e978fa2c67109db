"""The spec (sql/bench_spec.sql) in Polars: a statistics pass (one lazy
query for the numbers, one for each vocabulary and the crossed pairs,
collected together), then a lazy transform streamed to Parquet.

Usage: python spec_polars.py INPUT.parquet OUTPUT.parquet
"""

import sys

import polars as pl

from spec_common import VOCAB_COLUMNS, cross_bucket, quantile_boundaries, vocabulary


def main(src, out):
    lf = pl.scan_parquet(src)
    numbers = lf.select(
        pl.col("age").min().alias("age_min"),
        pl.col("age").max().alias("age_max"),
        pl.col("hours_per_week").min().alias("h_min"),
        pl.col("hours_per_week").max().alias("h_max"),
        *[
            e
            for c in ["fnlwgt", "capital_gain", "education_num"]
            for e in (pl.col(c).mean().alias(f"{c}_mean"), pl.col(c).std(ddof=0).alias(f"{c}_sd"))
        ],
    )
    counts = [lf.group_by(c).len().drop_nulls() for c in VOCAB_COLUMNS + ["age"]]
    pairs = lf.select("education", "occupation").drop_nulls().unique()
    results = pl.collect_all([numbers, *counts, pairs])
    s = results[0].row(0, named=True)
    vocab = {
        c: vocabulary(results[1 + i].rows()) for i, c in enumerate(VOCAB_COLUMNS)
    }
    bounds = quantile_boundaries(results[1 + len(VOCAB_COLUMNS)].rows())
    cross = {f"{e}_{o}": cross_bucket(e, o) for e, o in results[-1].rows()}

    def vocab_expr(c):
        mapping = {v: i for i, v in enumerate(vocab[c])}
        # NULL stays NULL (replace_strict would give it the default).
        return (
            pl.when(pl.col(c).is_null())
            .then(None)
            .otherwise(pl.col(c).replace_strict(mapping, default=len(mapping), return_dtype=pl.Int64))
            .alias(f"{c}_id")
        )

    def z(c):
        return ((pl.col(c) - s[f"{c}_mean"]) / s[f"{c}_sd"]).alias(f"{c}_z")

    features = lf.select(
        ((pl.col("age") - s["age_min"]) / (s["age_max"] - s["age_min"])).alias("age_scaled"),
        ((pl.col("hours_per_week") - s["h_min"]) / (s["h_max"] - s["h_min"])).alias("hours_scaled"),
        z("fnlwgt"),
        z("capital_gain"),
        z("education_num"),
        *[vocab_expr(c) for c in VOCAB_COLUMNS],
        (pl.col("education") + "_" + pl.col("occupation"))
        .replace_strict(cross, default=None, return_dtype=pl.Int64)
        .alias("education_x_occupation"),
        pl.sum_horizontal([(pl.col("age") >= b).cast(pl.Int64) for b in bounds]).alias("age_bucket"),
    )
    features.sink_parquet(out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
