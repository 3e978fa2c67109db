-- flights_windows.sql: window features over every flight that left New York
-- in 2013 (nycflights13, CC0), computed in batch.
--
-- Input:   flights (--table flights=examples/data/nycflights13/flights.parquet)
-- Outputs, under target/ (an existing output is refused unless
-- `skewless run --overwrite`):
--   target/flights_hourly_delays.parquet   a tumbling table: per origin and
--                                           scheduled hour, the departure delays
--   target/flights_aircraft_features.parquet
--                                           per flight, the aircraft's earlier
--                                           flights: window features as of the
--                                           scheduled departure
--
-- A window never holds the flight it describes, nor any flight of the same
-- aircraft scheduled at the same instant: [t - length, t). Cancelled flights
-- (NULL dep_delay) count as events of no value: skipped by every aggregate.

-- Tumbling table: per origin airport and scheduled hour (UTC). Each row
-- equals the 'hopping' window functions asked in the next hour.
COPY (
  SELECT origin,
         date_bin(INTERVAL '1 hour', sched_dep) AS hour,
         exact_count(dep_delay) AS departures,
         exact_mean(dep_delay) AS mean_delay,
         exact_max(dep_delay) AS max_delay,
         exact_stddev(dep_delay) AS stddev_delay
  FROM flights
  WHERE sched_dep IS NOT NULL
  GROUP BY origin, date_bin(INTERVAL '1 hour', sched_dep)
  ORDER BY origin, hour
) TO 'target/flights_hourly_delays.parquet';

-- Per flight, its aircraft's recent history: mean delay over 24 hours,
-- flights in the last hour (the window's start moves by 5 minutes), the
-- delay of the aircraft's previous flight within 2 days, and the distinct
-- destinations it flew to in a week.
COPY (
  SELECT tailnum, sched_dep, flight, origin, dest, dep_delay,
         window_mean(dep_delay, sched_dep, INTERVAL '24 hours') OVER w AS mean_delay_24h,
         window_count(dep_delay, sched_dep, INTERVAL '1 hour', INTERVAL '5 minutes') OVER w AS flights_1h,
         window_last(dep_delay, sched_dep, INTERVAL '2 days') OVER w AS previous_delay,
         window_distinct_count(dest, sched_dep, INTERVAL '7 days') OVER w AS destinations_7d
  FROM flights
  WINDOW w AS (PARTITION BY tailnum ORDER BY sched_dep)
  ORDER BY tailnum, sched_dep, flight, origin
) TO 'target/flights_aircraft_features.parquet';
