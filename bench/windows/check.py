"""Checks that two feature files agree: rows as multisets keyed by
(entity, ts, v, features); counts and max exactly, mean and sum within
1e-9 relative (the peers' sums are not exact). python check.py A B NAME"""
import sys
import duckdb

a, b, name = sys.argv[1:4]
con = duckdb.connect()
q = lambda f: f"SELECT entity, ts, v, n_1h, max_24h, mean_1h, sum_24h, row_number() OVER (PARTITION BY entity, ts ORDER BY v NULLS FIRST, mean_1h, sum_24h) AS k FROM '{f}'"
bad = con.execute(f"""
  SELECT count(*) FROM ({q(a)}) x FULL JOIN ({q(b)}) y
    ON x.entity = y.entity AND x.ts = y.ts AND x.k = y.k
  WHERE x.entity IS NULL OR y.entity IS NULL
     OR x.v IS DISTINCT FROM y.v OR x.n_1h IS DISTINCT FROM y.n_1h
     OR x.max_24h IS DISTINCT FROM y.max_24h
     OR (x.mean_1h IS NULL) <> (y.mean_1h IS NULL) OR abs(x.mean_1h - y.mean_1h) > 1e-9 * greatest(abs(x.mean_1h), 1)
     OR (x.sum_24h IS NULL) <> (y.sum_24h IS NULL) OR abs(x.sum_24h - y.sum_24h) > 1e-9 * greatest(abs(x.sum_24h), 1)
""").fetchone()[0]
worst = con.execute(f"""SELECT max(abs(x.sum_24h - y.sum_24h) / greatest(abs(x.sum_24h), 1)) FROM ({q(a)}) x JOIN ({q(b)}) y
    ON x.entity = y.entity AND x.ts = y.ts AND x.k = y.k""").fetchone()[0]
if bad:
    sys.exit(f"{name}: {bad} rows differ from skewless")
print(f"  {name}: same features as skewless (largest sum difference {worst:.1e}, relative to max(|sum|, 1))")
