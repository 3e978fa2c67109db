"""The same four features in DuckDB and Polars: python peers.py duckdb|polars IN OUT."""
import sys

which, src, out = sys.argv[1:4]
if which == "duckdb":
    import duckdb
    con = duckdb.connect()
    frame = lambda w: f"(PARTITION BY entity ORDER BY ts RANGE BETWEEN INTERVAL {w} PRECEDING AND CURRENT ROW EXCLUDE GROUP)"
    con.execute(f"""COPY (
      SELECT entity, ts, v,
             count(v) OVER {frame("1 HOUR")} AS n_1h,
             avg(v) OVER {frame("1 HOUR")} AS mean_1h,
             max(v) OVER {frame("24 HOURS")} AS max_24h,
             sum(v) OVER {frame("24 HOURS")} AS sum_24h
      FROM read_parquet('{src}')) TO '{out}' (FORMAT parquet)""")
else:
    import polars as pl
    df = pl.read_parquet(src).sort(["entity", "ts"])
    h1 = df.rolling(index_column="ts", period="1h", closed="left", group_by="entity").agg(
        pl.col("v").count().alias("n_1h"), pl.col("v").mean().alias("mean_1h"))
    d1 = df.rolling(index_column="ts", period="24h", closed="left", group_by="entity").agg(
        pl.col("v").max().alias("max_24h"), pl.col("v").sum().alias("sum_24h"),
        pl.col("v").count().alias("n_24h"))
    # An empty window: no max, no sum (Polars gives 0 for an empty sum).
    d1 = d1.with_columns(pl.when(pl.col("n_24h") > 0).then(pl.col("sum_24h")).alias("sum_24h")).drop("n_24h")
    # The rolling output is grouped by entity (not in df's order): join it
    # back on (entity, ts); rows tied at one instant share their windows.
    feats = h1.join(d1, on=["entity", "ts"]).unique(subset=["entity", "ts"])
    df.join(feats, on=["entity", "ts"], how="left").write_parquet(out)
