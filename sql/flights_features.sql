-- flights_features.sql: a served transform with window features over every
-- flight that left New York in 2013 and the hourly weather at its airport
-- (nycflights13, CC0).
--
-- Inputs: flights (--table flights=examples/data/nycflights13/flights.parquet)
--         weather (--table weather=examples/data/nycflights13/weather.parquet)
-- Run end to end (fit, batch apply, served by replay, compared):
--   bash examples/flights_serving.sh
--
-- Flights and weather readings are one relation of events (UNION ALL), so
-- that each flight sees, as of its scheduled departure (never itself, nor
-- anything at the same instant):
--   its aircraft's last 24 hours: mean departure delay and flights flown,
--   and the delay of its previous flight within 2 days;
--   its airport's last hour: departures, and their mean delay (the window's
--   start moves by 10 minutes: bounded online state);
--   its airport's latest weather reading within 3 hours: temperature,
--   visibility and wind speed;
--   the flight's distance as a z-score and its carrier as a vocabulary index
--   (full-pass statistics over the flights the transform outputs).
-- WHERE is_flight keeps the flights: served, requests are flights and the
-- weather readings are pushed as events of table weather.
-- late_arrival is the label (fit --label late_arrival: training only).
SELECT carrier, flight, origin, dest, tailnum, sched_dep,
       aircraft_mean_delay_24h, aircraft_flights_24h, aircraft_previous_delay,
       airport_departures_1h, airport_mean_delay_1h,
       temp_f, visibility_mi, wind_mph,
       z_score(distance) AS distance_z,
       vocab_index(carrier) AS carrier_index,
       CASE WHEN arr_delay IS NULL THEN NULL WHEN arr_delay > 15 THEN 1 ELSE 0 END AS late_arrival
FROM (
  SELECT *,
         window_mean(dep_delay, ts, INTERVAL '24 hours') OVER aircraft AS aircraft_mean_delay_24h,
         window_count(dep_delay, ts, INTERVAL '24 hours') OVER aircraft AS aircraft_flights_24h,
         window_last(dep_delay, ts, INTERVAL '2 days') OVER aircraft AS aircraft_previous_delay,
         window_count(dep_delay, ts, INTERVAL '1 hour') OVER airport AS airport_departures_1h,
         window_mean(dep_delay, ts, INTERVAL '1 hour', INTERVAL '10 minutes') OVER airport AS airport_mean_delay_1h,
         window_last(temp, ts, INTERVAL '3 hours') OVER airport AS temp_f,
         window_last(visib, ts, INTERVAL '3 hours') OVER airport AS visibility_mi,
         window_last(wind_speed, ts, INTERVAL '3 hours') OVER airport AS wind_mph
  FROM (
    SELECT carrier, flight, origin, dest, tailnum, sched_dep, sched_dep AS ts, dep_delay,
           distance, arr_delay, CAST(NULL AS DOUBLE) AS temp, CAST(NULL AS DOUBLE) AS visib,
           CAST(NULL AS DOUBLE) AS wind_speed, true AS is_flight
    FROM flights
    UNION ALL
    SELECT NULL, NULL, origin, NULL, NULL, NULL, time_hour, NULL, NULL, NULL, temp, visib,
           wind_speed, false
    FROM weather)
  WINDOW aircraft AS (PARTITION BY tailnum), airport AS (PARTITION BY origin))
WHERE is_flight
