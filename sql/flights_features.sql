-- flights_features.sql: a served transform with window features over every
-- flight that left New York in 2013 (nycflights13, CC0).
--
-- Input: flights (--table flights=examples/data/nycflights13/flights.parquet)
-- Run end to end (fit, batch apply, served by replay, compared):
--   bash examples/flights_serving.sh
--
-- Each flight gets, as of its scheduled departure (never seeing itself nor
-- any flight scheduled at the same instant):
--   its aircraft's last 24 hours: mean departure delay and flights flown,
--   and the delay of its previous flight within 2 days;
--   its airport's last hour: departures, and their mean delay (the window's
--   start moves by 10 minutes: bounded online state);
--   the flight's distance as a z-score and its carrier as a vocabulary index
--   (full-pass statistics fitted on the training data).
-- late_arrival is the label (fit --label late_arrival: training only).
SELECT carrier, flight, origin, dest, tailnum, sched_dep,
       window_mean(dep_delay, sched_dep, INTERVAL '24 hours') OVER aircraft AS aircraft_mean_delay_24h,
       window_count(dep_delay, sched_dep, INTERVAL '24 hours') OVER aircraft AS aircraft_flights_24h,
       window_last(dep_delay, sched_dep, INTERVAL '2 days') OVER aircraft AS aircraft_previous_delay,
       window_count(dep_delay, sched_dep, INTERVAL '1 hour') OVER airport AS airport_departures_1h,
       window_mean(dep_delay, sched_dep, INTERVAL '1 hour', INTERVAL '10 minutes') OVER airport AS airport_mean_delay_1h,
       z_score(distance) AS distance_z,
       vocab_index(carrier) AS carrier_index,
       CASE WHEN arr_delay IS NULL THEN NULL WHEN arr_delay > 15 THEN 1 ELSE 0 END AS late_arrival
FROM flights
WINDOW aircraft AS (PARTITION BY tailnum), airport AS (PARTITION BY origin)
