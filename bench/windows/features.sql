-- The window benchmark's four features (bench/windows/run.sh), per event:
-- its entity's events in the hour / day before it ([t - w, t)).
COPY (
  SELECT entity, ts, v,
         window_count(v, ts, INTERVAL '1 hour') OVER w AS n_1h,
         window_mean(v, ts, INTERVAL '1 hour') OVER w AS mean_1h,
         window_max(v, ts, INTERVAL '24 hours') OVER w AS max_24h,
         window_sum(v, ts, INTERVAL '24 hours') OVER w AS sum_24h
  FROM events
  WINDOW w AS (PARTITION BY entity ORDER BY ts)
) TO 'OUT';
