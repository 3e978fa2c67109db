"""Load test of `skewless serve` (issue 13) with wrk: the server on CPU 0
with one worker thread, wrk on CPU 1 with one thread.

- single-row `:predict` requests at 1, 8 and 64 connections, beside the
  health endpoint (HTTP alone) and `skewless eval --latency` (the evaluator
  alone), so the HTTP / JSON / evaluator split shows;
- batches of 1 to 10,000 rows in each request form (v1 rows, v1 columns,
  v2 tensors, NDJSON), at 8 connections;
- the same single-row load against the fitted scikit-learn pipeline behind
  Python's HTTP server (bench/serve/sklearn_server.py), with --sklearn.

Every answer must be a 2xx: a non-2xx or a socket error fails the run.
Prints a Markdown report. Run by bench/serve_load.sh.
"""

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

LUA = r"""
local bodies = {}
if %(whole)s then
  local f = io.open("%(bodies)s", "rb")
  bodies[1] = f:read("*a")
  f:close()
else
  for line in io.lines("%(bodies)s") do bodies[#bodies + 1] = line end
end
local i = 0
wrk.method = "%(method)s"
wrk.headers["Content-Type"] = "%(content_type)s"
request = function()
  i = i %% #bodies + 1
  return wrk.format(nil, nil, nil, bodies[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %%d %%d %%d %%d %%.1f %%.1f %%.1f\n", summary.requests,
    e.connect + e.read + e.write + e.timeout, e.status, summary.duration,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9)))
end
"""


def cpu_seconds(pid):
    """User + system CPU seconds of a process and its threads."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listens on port {port}")


def wrk(url, bodies, connections, duration, pid, tmp, method="POST",
        content_type="application/json", errors_allowed=False, client_cpu=1):
    """Runs wrk; returns req/s, p50/p99/p99.9 in µs and the server's CPU share."""
    body_file = os.path.join(tmp, "bodies.txt")
    whole = len(bodies) == 1
    with open(body_file, "w") as f:
        f.write(bodies[0] if whole else "\n".join(bodies) + "\n")
    script = os.path.join(tmp, "load.lua")
    with open(script, "w") as f:
        f.write(LUA % {"bodies": body_file, "method": method, "content_type": content_type,
                       "whole": "true" if whole else "false"})
    before = cpu_seconds(pid)
    out = subprocess.run(
        ["taskset", "-c", str(client_cpu), "wrk", "-t1", f"-c{connections}", f"-d{duration}s",
         "-s", script, url],
        capture_output=True, text=True, check=True).stdout
    cpu = (cpu_seconds(pid) - before) / duration
    m = re.search(r"RESULT (\d+) (\d+) (\d+) (\d+) ([\d.]+) ([\d.]+) ([\d.]+)", out)
    if not m:
        sys.exit(f"wrk gave no result:\n{out}")
    requests, socket_errors, status_errors, micros = map(int, m.groups()[:4])
    if (socket_errors or status_errors) and not errors_allowed:
        sys.exit(f"{url}: {socket_errors} socket errors, {status_errors} non-2xx answers\n{out}")
    return {
        "errors": socket_errors + status_errors,
        "rps": requests / (micros / 1e6),
        "p50": float(m.group(5)),
        "p99": float(m.group(6)),
        "p999": float(m.group(7)),
        "cpu": cpu,
    }


def v2_body(rows, columns):
    tensors = []
    for name, kind in columns:
        data = [r.get(name) for r in rows]
        tensors.append({"name": name, "datatype": kind, "shape": [len(rows)], "data": data})
    return json.dumps({"inputs": tensors})


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", required=True)
    p.add_argument("--artifact", required=True)
    p.add_argument("--rows", required=True, help="NDJSON rows (at least 10,000)")
    p.add_argument("--duration", type=int, default=10)
    p.add_argument("--batch-duration", type=int, default=5)
    p.add_argument("--sklearn", help="the pickled pipeline: also load the Python baseline")
    args = p.parse_args()
    with open(args.rows) as f:
        lines = [l.strip() for l in f if l.strip()]
    rows = [json.loads(l) for l in lines]
    tmp = tempfile.mkdtemp(prefix="skewless-load-")
    port = free_port()
    server = subprocess.Popen(
        ["taskset", "-c", "0", args.bin, "serve", f"m={args.artifact}", "--threads", "1",
         "--bind", f"127.0.0.1:{port}", "--max-in-flight", "1024"],
        stderr=subprocess.DEVNULL)
    report = Report()
    try:
        wait_for(port)
        base = f"http://127.0.0.1:{port}"
        predict = f"{base}/v1/models/m:predict"
        singles = [json.dumps({"instances": [r]}) for r in rows[:1000]]
        report.append("### Single-row requests, one server thread\n")
        report.append("| endpoint | connections | req/s | p50 | p99 | p99.9 | server CPU |")
        report.append("|---|---|---|---|---|---|---|")
        for name, url, bodies, method in [
            ("`GET /v2/health/live` (HTTP alone)", f"{base}/v2/health/live", [""], "GET"),
            ("`POST :predict`, one row", predict, singles, "POST"),
        ]:
            # One connection twice: wrk on the other vCPU (each request then
            # wakes a thread on each), and wrk on the server's own core
            # (request and answer take turns on one CPU, no cross-CPU wake-up).
            for c, cpu in ((1, 1), (1, 0), (8, 1), (64, 1)):
                r = wrk(url, bodies, c, args.duration, server.pid, tmp, method=method,
                        client_cpu=cpu)
                where = " (wrk on the server's core)" if cpu == 0 else ""
                report.append(
                    f"| {name} | {c}{where} | {r['rps']:,.0f} | {r['p50']:,.0f} µs | "
                    f"{r['p99']:,.0f} µs | {r['p999']:,.0f} µs | {r['cpu']:.0%} |")
        latency = subprocess.run(
            [args.bin, "eval", args.artifact, "--latency", "5", "--input", args.rows],
            capture_output=True, text=True, check=True)
        report.append("\nThe evaluator alone (`skewless eval --latency 5`, the same rows):\n")
        report.append("```\n" + (latency.stdout + latency.stderr).strip() + "\n```\n")

        # Batches in each form; v2 tensors for the model's inputs only (v2
        # refuses a tensor no input is named after).
        import urllib.request
        meta = json.loads(urllib.request.urlopen(f"{base}/v2/models/m").read())
        columns = [(t["name"], t["datatype"]) for t in meta["inputs"]]
        report.append("### Batches, 8 connections, one server thread\n")
        report.append("| form | rows per request | req/s | rows/s | features/s | p50 | p99 | server CPU |")
        report.append("|---|---|---|---|---|---|---|---|")
        features = None
        for n in (1, 10, 100, 1000, 10000):
            chunk = rows[:n]
            names = list(dict.fromkeys(k for r in chunk for k in r))
            forms = [
                ("v1 rows (`instances`)", predict, json.dumps({"instances": chunk}),
                 "application/json"),
                ("v1 columns (`inputs`)", predict,
                 json.dumps({"inputs": {k: [r.get(k) for r in chunk] for k in names}}),
                 "application/json"),
                ("v2 tensors", f"{base}/v2/models/m/infer", v2_body(chunk, columns),
                 "application/json"),
                ("NDJSON (`:eval`)", f"{base}/v1/models/m:eval",
                 "\n".join(lines[:n]) + "\n", "application/x-ndjson"),
            ]
            for form, url, body, ctype in forms:
                if features is None:
                    req = urllib.request.Request(predict, data=json.dumps({"instances": rows[:1]}).encode())
                    features = len(json.loads(urllib.request.urlopen(req).read())["predictions"][0])
                r = wrk(url, [body], 8, args.batch_duration, server.pid, tmp,
                        content_type=ctype)
                report.append(
                    f"| {form} | {n:,} | {r['rps']:,.0f} | {r['rps'] * n:,.0f} | "
                    f"{r['rps'] * n * features:,.0f} | {r['p50']:,.0f} µs | {r['p99']:,.0f} µs | "
                    f"{r['cpu']:.0%} |")
    finally:
        server.terminate()
        server.wait(timeout=30)

    if args.sklearn:
        port = free_port()
        python = os.path.join(ROOT, "bench", ".venv", "bin", "python")
        baseline = subprocess.Popen(
            ["taskset", "-c", "0", python, os.path.join(HERE, "sklearn_server.py"), args.sklearn,
             str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for(port)
            url = f"http://127.0.0.1:{port}/v1/models/m:predict"
            report.append("\n### The baseline: scikit-learn pipeline behind Python's HTTP server\n")
            report.append("| connections | req/s | p50 | p99 | p99.9 | server CPU | errors (wrk's 2 s timeout) |")
            report.append("|---|---|---|---|---|---|---|")
            for c in (1, 8, 64):
                r = wrk(url, singles, c, args.duration, baseline.pid, tmp, errors_allowed=True)
                report.append(
                    f"| {c} | {r['rps']:,.0f} | {r['p50']:,.0f} µs | {r['p99']:,.0f} µs | "
                    f"{r['p999']:,.0f} µs | {r['cpu']:.0%} | {r['errors']:,} |")
        finally:
            baseline.terminate()
            baseline.wait(timeout=30)


class Report(list):
    """Lines of the report, printed as they come (a failed run keeps them)."""

    def append(self, line):
        print(line, flush=True)
        super().append(line)


if __name__ == "__main__":
    main()
