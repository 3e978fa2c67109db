#!/usr/bin/env bash
# Fit and apply of the peer comparison's spec (sql/bench_spec.sql) on the
# ~10M-row census-like file of bench/lib.sh, three ways on this machine:
# locally, on `--cluster local:2` (Ballista in the client process), and on a
# scheduler and two executors (processes, one task slot each). Prints, for
# each: wall time, the client's peak memory, and for the cluster the peak
# memory of each process and the bytes in the executors' work directories
# after each job (Ballista's shuffle files); then checks that the three
# artifacts are the same bytes and the three feature sets the same rows.
#
# Usage: bash bench/cluster.sh [REPEATS]     (from the repository root;
# REPEATS=308 gives 10,028,788 rows; PORT=50150 and the next four)
set -euo pipefail
source bench/lib.sh
generate_census "${1:-308}"
port=${PORT:-50150}
table="census=$DATA"
out=$DIR/cluster
rm -rf "$out"
mkdir -p "$out"

echo "== local"
measure fit_local "$BIN" fit sql/bench_spec.sql --table "$table" --out "$out/local.json" \
  --progress never --overwrite
echo
measure apply_local "$BIN" apply "$out/local.json" --table "$table" --out "$out/local/" \
  --overwrite
echo

echo "== local:2 (in-process Ballista)"
measure fit_local2 "$BIN" fit sql/bench_spec.sql --table "$table" --out "$out/local2.json" \
  --progress never --overwrite --cluster local:2
echo
measure apply_local2 "$BIN" apply "$out/local.json" --table "$table" --out "$out/local2/" \
  --overwrite --cluster local:2
echo

echo "== a scheduler and two executors (one task slot each)"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
RUST_LOG=info "$BIN" cluster scheduler --bind-port "$port" --min-ready-executors 2 2> "$out/scheduler.log" &
pids+=($!)
for i in 0 1; do
  RUST_LOG=info "$BIN" cluster executor --bind-port $((port + 1 + 2 * i)) --bind-grpc-port $((port + 2 + 2 * i)) \
    --scheduler-host 127.0.0.1 --scheduler-port "$port" --external-host 127.0.0.1 \
    --vcores 1 --work-dir "$out/work$i" 2> "$out/executor$i.log" &
  pids+=($!)
done
sleep 2
export SKEWLESS_CLUSTER="df://127.0.0.1:$port"
work() { du -sb "$out/work0" "$out/work1" | awk '{s += $1} END {printf "%.1f MiB", s / 1048576}'; }
measure fit_cluster "$BIN" fit sql/bench_spec.sql --table "$table" --out "$out/cluster.json" \
  --progress never --overwrite
echo "  work dirs after: $(work)"
measure apply_cluster "$BIN" apply "$out/local.json" --table "$table" --out "$out/cluster/" \
  --overwrite
echo "  work dirs after: $(work)"
for i in 0 1 2; do
  name=$([ "$i" = 0 ] && echo scheduler || echo "executor$((i - 1))")
  printf '  %-10s peak RSS %6.0f MiB\n' "$name" \
    "$(awk '/VmHWM/ {print $2 / 1024}' "/proc/${pids[$i]}/status")"
done
unset SKEWLESS_CLUSTER
echo "  tasks (job / stage / partition: time), from the executors' logs:"
grep -h "Finished task" "$out"/executor*.log \
  | sed 's/.*TID \([^/]*\)\/\([0-9]*\)[.0-9]*\/\([0-9]*\)[.0-9]*\] in \(.*\)/    \1 stage \2 partition \3: \4/' | sort

echo "== the same artifact, the same rows"
cmp "$out/local.json" "$out/local2.json"
cmp "$out/local.json" "$out/cluster.json"
echo "artifacts: the same bytes"
for other in local2 cluster; do
  "$BIN" run - --table "l=$out/local/" --table "o=$out/$other/" --format csv <<SQL
SELECT '$other' AS run, (SELECT count(*) FROM o) AS rows,
       (SELECT count(*) FROM (SELECT * FROM l EXCEPT ALL SELECT * FROM o)) AS missing,
       (SELECT count(*) FROM (SELECT * FROM o EXCEPT ALL SELECT * FROM l)) AS extra;
SQL
done
ls "$out/cluster" | head -3
echo "($(ls "$out/cluster" | wc -l) part files on the cluster, $(ls "$out/local" | wc -l) locally)"
