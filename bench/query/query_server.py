"""The query server's figures; run by bench/query_server.sh."""
import re
import statistics
import sys
import threading
import time
from datetime import datetime

import adbc_driver_flightsql.dbapi as flight
import pyarrow.parquet as pq

URL, DATA, OUT, SMALL, N = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def log_latencies(path):
    """Per-statement times from `run`'s 'running' log lines (one per statement)."""
    stamps = []
    for line in open(path):
        if "running" in line:
            stamps.append(datetime.fromisoformat(line.split()[0].rstrip("Z")))
    return [(b - a).total_seconds() for a, b in zip(stamps, stamps[1:])]


def show(name, xs):
    ms = [x * 1000 for x in xs]
    print(f"| {name} | {len(ms)} | {pct(ms, 50):.2f} ms | {pct(ms, 99):.2f} ms | {statistics.mean(ms):.2f} ms |")


print("## 1. Latency of a small query")
print(f"`{SMALL}`\n")
print("| path | runs | p50 | p99 | mean |")
print("|---|---|---|---|---|")
inproc = log_latencies(f"{OUT}/inprocess.log")[5:]
remote = log_latencies(f"{OUT}/remote.log")[5:]
show("in-process (`skewless run`)", inproc)
show("through the server (`skewless run --connect`)", remote)
conn = flight.connect(URL, autocommit=True)
cur = conn.cursor()
adbc = []
for i in range(N):
    t = time.perf_counter()
    cur.execute(SMALL)
    cur.fetch_arrow_table()
    if i >= 5:
        adbc.append(time.perf_counter() - t)
show("through the server (Python ADBC)", adbc)

print("\n## 2. Streaming `SELECT * FROM census` (10M rows)")
print("| reader | rows | seconds | rows/s | MB/s (Arrow) |")
print("|---|---|---|---|---|")
for attempt in range(2):
    t = time.perf_counter()
    cur.execute("SELECT * FROM census")
    reader = cur.fetch_record_batch()
    rows = nbytes = 0
    for batch in reader:
        rows += batch.num_rows
        nbytes += batch.nbytes
    s = time.perf_counter() - t
    print(f"| ADBC through the server, run {attempt + 1} | {rows:,} | {s:.2f} | {rows / s / 1e6:.2f} M | {nbytes / s / 1e6:.0f} |")
for attempt in range(2):
    t = time.perf_counter()
    rows = nbytes = 0
    for batch in pq.ParquetFile(DATA).iter_batches(batch_size=65536):
        rows += batch.num_rows
        nbytes += batch.nbytes
    s = time.perf_counter() - t
    print(f"| pyarrow reading the Parquet file, run {attempt + 1} | {rows:,} | {s:.2f} | {rows / s / 1e6:.2f} M | {nbytes / s / 1e6:.0f} |")

print("\n## 3. Clients at once")
MEDIUM = "SELECT education, count(*) AS n, avg(hours_per_week) AS hours FROM census WHERE age > 40 GROUP BY education"
print(f"`{MEDIUM}` over the 10M rows, each client 6 times\n")
print("| clients | queries | wall | queries/s | p50 | p99 |")
print("|---|---|---|---|---|---|")
for clients in (1, 8):
    times = []
    lock = threading.Lock()

    def work():
        c = flight.connect(URL, autocommit=True)
        k = c.cursor()
        for _ in range(6):
            t = time.perf_counter()
            k.execute(MEDIUM)
            k.fetch_arrow_table()
            with lock:
                times.append(time.perf_counter() - t)
        k.close()
        c.close()

    t = time.perf_counter()
    threads = [threading.Thread(target=work) for _ in range(clients)]
    [x.start() for x in threads]
    [x.join() for x in threads]
    wall = time.perf_counter() - t
    ms = [x * 1000 for x in times]
    print(f"| {clients} | {len(times)} | {wall:.2f} s | {len(times) / wall:.2f} | {pct(ms, 50):.0f} ms | {pct(ms, 99):.0f} ms |")
cur.close()
conn.close()
