#!/usr/bin/env bash
# Window features trained in batch and served from online state, with the
# same numbers: per-aircraft and per-airport features over nycflights13.
#
#  1. fit sql/flights_features.sql on the flights up to November (full-pass
#     statistics: a z-score, a vocabulary), and report the online state;
#  2. apply it in batch to every flight of 2013;
#  3. serve it: replay the flights before 31 December into the online state
#     (eval --events), then answer the 932 flights of 31 December one by one,
#     in time order, each pushed as an event once answered;
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
mkdir -p "$out"

echo "== split: training flights (Jan-Nov), the history before 31 Dec, the last day as requests"
"$skewless" run - --table "flights=$flights" --overwrite <<SQL
COPY (SELECT * FROM flights WHERE sched_dep < TIMESTAMP '2013-12-01T00:00:00Z')
  TO '$out/train.parquet';
COPY (SELECT * FROM flights WHERE sched_dep < TIMESTAMP '2013-12-31T00:00:00Z')
  TO '$out/history.parquet';
COPY (SELECT * FROM flights WHERE sched_dep >= TIMESTAMP '2013-12-31T00:00:00Z'
      ORDER BY sched_dep, carrier, flight)
  TO '$out/last_day.ndjson';
SQL

echo
echo "== fit"
"$skewless" fit sql/flights_features.sql --table "flights=$out/train.parquet" \
  --label late_arrival --out "$out/flights_features.json" --overwrite

echo
echo "== apply: every flight of 2013, in batch"
"$skewless" apply "$out/flights_features.json" --table "flights=$flights" \
  --out "$out/batch.ndjson" --overwrite

echo
echo "== eval: replay the history, then serve the last day's flights"
"$skewless" eval "$out/flights_features.json" --events "$out/history.parquet" \
  --push-requests --input "$out/last_day.ndjson" > "$out/served.ndjson"
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
                 AND (s.distance_z IS NOT DISTINCT FROM b.distance_z)
                 AND (s.carrier_index IS NOT DISTINCT FROM b.carrier_index)
            THEN 1 ELSE 0 END) AS equal_to_batch,
       sum(s.airport_departures_1h) AS departures_1h_total,
       count(s.aircraft_previous_delay) AS with_previous_flight
FROM served s JOIN batch b
  ON s.carrier = b.carrier AND s.flight = b.flight AND s.origin = b.origin
 AND s.sched_dep = b.sched_dep;
SQL
