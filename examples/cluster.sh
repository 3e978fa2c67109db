#!/usr/bin/env bash
# A skewless cluster on this machine: one scheduler and two executors as
# processes of the skewless binary, on loopback, then the main job on it —
# fit the census wide & deep transform (the artifact is the same bytes as a
# local fit's) and apply it, the executors writing the feature files.
#
# Usage (from the repository root): bash examples/cluster.sh
#   SKEWLESS=path/to/skewless   the binary (default: cargo build, target/debug/skewless)
#   CLUSTER_PORT=50050          the scheduler's port (executors take the next four)
#   CLUSTER_OUT=DIR             where to write (default: target/cluster)
#   KEEP=1                      leave the cluster running at the end (prints how to stop it)
# Writes the artifacts, the features and each process's log there.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z "${SKEWLESS:-}" ]]; then
  cargo build --quiet
  SKEWLESS=target/debug/skewless
fi
port=${CLUSTER_PORT:-50050}
out=${CLUSTER_OUT:-target/cluster}
mkdir -p "$out"
pids=()
stop() {
  if [[ "${KEEP:-}" != 1 && ${#pids[@]} -gt 0 ]]; then
    kill "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
  fi
}
trap stop EXIT

echo "== start: a scheduler on 127.0.0.1:$port and two executors"
RUST_LOG=info "$SKEWLESS" cluster scheduler --bind-port "$port" --min-ready-executors 2 \
  2> "$out/scheduler.log" &
pids+=($!)
for i in 0 1; do
  RUST_LOG=info "$SKEWLESS" cluster executor \
    --bind-port $((port + 1 + 2 * i)) --bind-grpc-port $((port + 2 + 2 * i)) \
    --scheduler-host 127.0.0.1 --scheduler-port "$port" --external-host 127.0.0.1 \
    --vcores 1 --work-dir "$out/executor$i" 2> "$out/executor$i.log" &
  pids+=($!)
done
# GET /readyz on the scheduler's port (bash's own TCP, no curl needed).
readyz() {
  { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null || return 1
  printf 'GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3
  local answer
  answer=$(cat <&3)
  exec 3<&-
  [[ "$answer" == "HTTP/1.1 200"* ]] && echo "${answer##*$'\r\n\r\n'}"
}
for _ in $(seq 1 150); do
  if readyz > /dev/null; then break; fi
  sleep 0.2
done
readyz || { echo "the cluster did not get ready; see $out/*.log" >&2; exit 1; }

export SKEWLESS_CLUSTER="df://127.0.0.1:$port"
echo
echo "== fit on the cluster (\$SKEWLESS_CLUSTER=$SKEWLESS_CLUSTER), then on this machine"
"$SKEWLESS" fit sql/census_wide_deep.sql --table census=examples/data/adult/adult.parquet \
  --label label --out "$out/census_wide_deep.json" --overwrite | head -3
env -u SKEWLESS_CLUSTER "$SKEWLESS" fit sql/census_wide_deep.sql \
  --table census=examples/data/adult/adult.parquet \
  --label label --out "$out/census_wide_deep.local.json" --overwrite > /dev/null
cmp "$out/census_wide_deep.json" "$out/census_wide_deep.local.json"
echo "the artifacts are the same bytes"

echo
echo "== apply on the cluster: the executors write the parts of $out/features/"
"$SKEWLESS" apply "$out/census_wide_deep.json" \
  --table census=examples/data/adult/adult_test.parquet --out "$out/features/" --overwrite
ls "$out/features"

if [[ "${KEEP:-}" == 1 ]]; then
  echo
  echo "the cluster keeps running: kill ${pids[*]} to stop it"
fi
