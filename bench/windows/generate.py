"""Generates the window benchmark's events: N events over E entities, one
per row (entity, ts, v), times in seconds over 30 days (microsecond
timestamps, UTC), with ties, bursts and NULL values. Deterministic."""
import sys
import duckdb

out, n, entities = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
con = duckdb.connect()
con.execute("SELECT setseed(0.42)")
con.execute(f"""
COPY (
  SELECT 'e' || CAST(hash(i) % {entities} AS VARCHAR) AS entity,
         make_timestamp(CAST(1704067200000000 + (hash(i * 7) % (30 * 86400)) * 1000000 AS BIGINT)) AT TIME ZONE 'UTC' AS ts,
         CASE WHEN hash(i * 13) % 50 = 0 THEN NULL
              ELSE CAST(hash(i * 31) % 100000 AS DOUBLE) / 100.0 - 300.0 END AS v
  FROM range({n}) t(i)
) TO '{out}' (FORMAT parquet, ROW_GROUP_SIZE 131072)""")
print(con.execute(f"SELECT count(*), count(DISTINCT entity), min(ts), max(ts) FROM '{out}'").fetchall())
