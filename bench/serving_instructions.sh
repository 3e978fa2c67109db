#!/usr/bin/env bash
# Instructions per push and per request of the serving window bench
# (BENCHMARKS.md, "Serving window features"), counted by valgrind's
# callgrind: unlike wall time on a shared VM, the count does not drift with
# the neighbours, so it tells two versions of the code apart.
#
# Usage: bash bench/serving_instructions.sh [BENCH_BINARY]
#   (from the repository root; without an argument, builds the serving bench
#   at the dev profile, as `cargo bench --profile dev` does, and counts it)
#
# Prints, for `Evaluator::push` (one event into the state) and
# `Evaluator::eval` (a request with four window features and the census
# features), the calls counted and the instructions per call (everything the
# call runs, the functions it calls included).
set -euo pipefail
command -v valgrind > /dev/null || { echo "valgrind is needed (apt install valgrind)" >&2; exit 1; }
bin=${1:-}
if [ -z "$bin" ]; then
  bin=$(cargo bench --workspace --bench serving --profile dev --no-run --message-format=json 2> /dev/null \
    | python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "serving" and m.get("executable"):
        print(m["executable"])')
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
count() { # FUNCTION BENCH
  valgrind --tool=callgrind --callgrind-out-file="$out/cg" --toggle-collect="$1" \
    "$bin" --bench --profile-time 3 "$2" > "$out/log" 2>&1
  python3 - "$out/cg" "$1" <<'PY'
import re, sys
path, target = sys.argv[1], sys.argv[2]
names, calls, total, callee = {}, 0, 0, None
def name(token):
    m = re.match(r'\((\d+)\)(?: (.*))?', token)
    if not m:
        return token
    if m.group(2):
        names[m.group(1)] = m.group(2)
    return names.get(m.group(1), '?')
for line in open(path):
    if line.startswith('cfn='):
        callee = name(line[4:].strip())
    elif line.startswith('fn='):
        name(line[3:].strip())
    elif line.startswith('calls=') and callee == target:
        calls += int(line.split()[0][6:])
    elif line.startswith(('summary:', 'totals:')):
        total = int(line.split()[1])
print(f"{target}: {calls} calls, {total / max(calls, 1):.0f} instructions per call")
PY
}
count 'skewless::serving::Evaluator::push' 'serving_windows/push'
count 'skewless::serving::Evaluator::eval' 'serving_windows/request_4_windows_and_census'
