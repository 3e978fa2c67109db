#!/usr/bin/env bash
# Window features trained in batch and served from online state, with the
# same numbers: per-aircraft, per-airport and weather features over
# nycflights13 (flights and hourly weather: two tables, one UNION).
#
#  1. fit sql/flights_features.sql on the flights up to November (full-pass
#     statistics: a z-score, a vocabulary), and report the online state;
#  2. apply it in batch to every flight of 2013;
#  3. serve it: replay the flights before 30 December and the year's weather
#     readings into the online state (eval --events, merged by time), then
#     answer the 964 flights of 30 December one by one, in time order, each
#     pushed as an event once answered (--lateness 1d: the day's weather
#     readings were replayed before its flights; the weather data ends at
#     23:00 UTC that day);
#  4. compare the served features with batch apply's, flight by flight.
#
# Usage (from the repository root): bash examples/flights_serving.sh
# Writes under target/flights/.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet
skewless=target/debug/skewless
out=target/flights
flights=examples/data/nycflights13/flights.parquet
weather=examples/data/nycflights13/weather.parquet
mkdir -p "$out"

echo "== split: training flights (Jan-Nov), the history before 30 Dec, that day's flights as requests"
"$skewless" run - --table "flights=$flights" --overwrite <<SQL
COPY (SELECT * FROM flights WHERE sched_dep < TIMESTAMP '2013-12-01T00:00:00Z')
  TO '$out/train.parquet';
COPY (SELECT * FROM flights WHERE sched_dep < TIMESTAMP '2013-12-30T00:00:00Z')
  TO '$out/history.parquet';
COPY (SELECT * FROM flights WHERE sched_dep >= TIMESTAMP '2013-12-30T00:00:00Z'
      AND sched_dep < TIMESTAMP '2013-12-31T00:00:00Z'
      ORDER BY sched_dep, carrier, flight)
  TO '$out/day.ndjson';
SQL

echo
echo "== fit"
"$skewless" fit sql/flights_features.sql --table "flights=$out/train.parquet" \
  --table "weather=$weather" --label late_arrival --out "$out/flights_features.json" --overwrite

echo
echo "== apply: every flight of 2013, in batch"
"$skewless" apply "$out/flights_features.json" --table "flights=$flights" \
  --table "weather=$weather" --out "$out/batch.ndjson" --overwrite

echo
echo "== eval: replay the history and the weather, then serve the flights of 30 December"
"$skewless" eval "$out/flights_features.json" \
  --events "flights=$out/history.parquet" --events "weather=$weather" \
  --lateness 1d --push-requests --input "$out/day.ndjson" > "$out/served.ndjson"
head -n 2 "$out/served.ndjson"

echo
echo "== compare: served vs batch, flight by flight"
"$skewless" run - --table "served=$out/served.ndjson" --table "batch=$out/batch.ndjson" <<'SQL'
SELECT count(*) AS flights_served,
       sum(CASE WHEN (s.aircraft_mean_delay_24h IS NOT DISTINCT FROM b.aircraft_mean_delay_24h)
                 AND (s.aircraft_flights_24h IS NOT DISTINCT FROM b.aircraft_flights_24h)
                 AND (s.aircraft_previous_delay IS NOT DISTINCT FROM b.aircraft_previous_delay)
                 AND (s.airport_departures_1h IS NOT DISTINCT FROM b.airport_departures_1h)
                 AND (s.airport_mean_delay_1h IS NOT DISTINCT FROM b.airport_mean_delay_1h)
                 AND (s.temp_f IS NOT DISTINCT FROM b.temp_f)
                 AND (s.visibility_mi IS NOT DISTINCT FROM b.visibility_mi)
                 AND (s.wind_mph IS NOT DISTINCT FROM b.wind_mph)
                 AND (s.distance_z IS NOT DISTINCT FROM b.distance_z)
                 AND (s.carrier_index IS NOT DISTINCT FROM b.carrier_index)
            THEN 1 ELSE 0 END) AS equal_to_batch,
       sum(s.airport_departures_1h) AS departures_1h_total,
       count(s.aircraft_previous_delay) AS with_previous_flight,
       round(avg(s.temp_f), 2) AS mean_temp_f
FROM served s JOIN batch b
  ON s.carrier = b.carrier AND s.flight = b.flight AND s.origin = b.origin
 AND s.sched_dep = b.sched_dep;
SQL
