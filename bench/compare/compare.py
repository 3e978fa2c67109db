"""The peer comparison (issue 6): the spec of sql/bench_spec.sql run by
skewless and by DuckDB, Polars and pandas + scikit-learn over the same
generated Parquet file; checks that every implementation gives the same
features, then prints median wall time, peak memory, rows/s and the ratio
to skewless; then the serving comparison (bench/compare/serving.py).

Run it through bench/compare.sh, which makes the virtual environment and
the data. `--quick` runs skewless alone on the bundled census (no third-party
Python packages needed): the CI check that the benchmark still works.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PEERS = ["duckdb", "polars", "sklearn"]


def timed(cmd, env=None):
    """Runs cmd; returns (seconds, peak RSS in MiB) of that process tree's
    largest process."""
    # stderr to a file, not a pipe: a chatty child must not block on a full pipe.
    with tempfile.TemporaryFile() as errors:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=errors, env=env, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        errors.seek(0)
        err = errors.read().decode(errors="replace")
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"{' '.join(cmd)} failed (exit {code}):\n{err}")
    return seconds, usage.ru_maxrss / 1024


def run_skewless(binary, data, out, workdir):
    artifact = os.path.join(workdir, "bench_spec.json")
    t1, m1 = timed([binary, "fit", "sql/bench_spec.sql", "--table", f"census={data}",
                    "--out", artifact, "--progress", "never", "--overwrite"])
    t2, m2 = timed([binary, "apply", artifact, "--table", f"census={data}", "--out", out,
                    "--overwrite"])
    return t1 + t2, max(m1, m2)


def run_peer(python, name, data, out, workdir):
    cmd = [python, os.path.join(HERE, f"spec_{name}.py"), data, out]
    if name == "sklearn":
        # The fitted pipeline, for the serving comparison.
        cmd += ["--save-model", os.path.join(workdir, "pipeline.pkl")]
    return timed(cmd)


def check_same(reference, other, name):
    """Every column equal: integers and NULLs exactly, floats within 1e-9
    relative (the peers sum and divide in other orders). Rows are compared as
    a multiset (sorted by every column, integers first): skewless keeps the
    input's row order, but a peer's parallel writer need not."""
    import numpy as np
    import pyarrow.parquet as pq

    def ordered(path):
        t = pq.read_table(path)
        ints = [c for c in t.column_names if str(t.schema.field(c).type).startswith("int")]
        floats = [c for c in t.column_names if c not in ints]
        return t.sort_by([(c, "ascending") for c in ints + floats])

    a = ordered(reference)
    b = ordered(other)
    if a.num_rows != b.num_rows:
        sys.exit(f"{name}: {b.num_rows} rows, skewless {a.num_rows}")
    worst = 0.0
    for col in a.column_names:
        x = a.column(col).to_numpy(zero_copy_only=False)
        y = b.column(col).to_numpy(zero_copy_only=False)
        xn = np.array(a.column(col).is_null())
        yn = np.array(b.column(col).is_null())
        if not (xn == yn).all():
            sys.exit(f"{name}: column {col}: NULLs differ from skewless in {(xn != yn).sum()} rows")
        x = x[~xn].astype("float64")
        y = y[~yn].astype("float64")
        if str(a.schema.field(col).type).startswith("int"):
            bad = (x != y).sum()
            if bad:
                sys.exit(f"{name}: column {col}: {bad} values differ from skewless")
        else:
            diff = np.abs(x - y) / np.maximum(np.abs(x), 1.0)
            if diff.size and diff.max() > 1e-9:
                i = int(diff.argmax())
                sys.exit(f"{name}: column {col}: {x[i]!r} vs {y[i]!r}")
            worst = max(worst, float(diff.max()) if diff.size else 0.0)
    return worst


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", help="the input Parquet file")
    p.add_argument("--rows", type=int, help="rows in the input (for rows/s)")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--peers", default=",".join(PEERS))
    p.add_argument("--skewless", default=os.path.join(ROOT, "target/debug/skewless"))
    p.add_argument("--workdir", default="/tmp/skewless-compare")
    p.add_argument("--serving-rows", type=int, default=10_000)
    args = p.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    peers = [] if args.quick else [x for x in args.peers.split(",") if x]
    for peer in peers:
        if peer not in PEERS:
            sys.exit(f"--peers: unknown peer '{peer}' (known: {', '.join(PEERS)})")
    data, rows = args.data, args.rows
    if args.quick:
        data, rows = os.path.join(ROOT, "examples/data/adult/adult.parquet"), 32_561
        args.runs = 1

    results = {}
    outputs = {}
    for name in ["skewless", *peers]:
        out = os.path.join(args.workdir, f"features_{name}.parquet")
        outputs[name] = out
        times, peaks = [], []
        for run in range(args.runs):
            if name == "skewless":
                t, m = run_skewless(args.skewless, data, out, args.workdir)
            else:
                t, m = run_peer(sys.executable, name, data, out, args.workdir)
            times.append(t)
            peaks.append(m)
            print(f"  {name} run {run + 1}: {t:.2f} s, {m:.0f} MiB", file=sys.stderr)
        results[name] = (times, max(peaks))
        if name != "skewless":
            worst = check_same(outputs["skewless"], out, name)
            print(f"  {name}: same features as skewless (largest float difference "
                  f"{worst:.1e} relative)", file=sys.stderr)

    if args.quick:
        # The features file must hold every row.
        count = subprocess.run(
            [args.skewless, "run", "-", "--table", f"f={outputs['skewless']}", "--format", "csv"],
            input=b"SELECT count(*) AS n, count(DISTINCT occupation_id) AS v FROM f;",
            capture_output=True, cwd=ROOT, check=True,
        ).stdout.decode()
        if count.split("\n")[1] != f"{rows},14":
            sys.exit(f"quick check: expected {rows} rows and 14 occupation ids, got {count!r}")

    base = statistics.median(results["skewless"][0])
    print(f"\n{rows:,} rows, {args.runs} run(s) each, median wall time (fit + transform + write):\n")
    print("| implementation | median time | range | peak memory | rows/s | time ÷ skewless |")
    print("|---|---|---|---|---|---|")
    for name, (times, peak) in results.items():
        med = statistics.median(times)
        print(f"| {name} | {med:.2f} s | {min(times):.2f} – {max(times):.2f} s | {peak:.0f} MiB | "
              f"{rows / med / 1e6:.2f} M | {med / base:.2f} |")

    if "sklearn" in results:
        # Serving: the first rows of the same data, as JSON lines.
        rows = os.path.join(args.workdir, "rows.ndjson")
        subprocess.run(
            [args.skewless, "run", "-", "--table", f"census={data}", "--progress", "never",
             "--overwrite"],
            input=f"COPY (SELECT * FROM census LIMIT {args.serving_rows}) TO '{rows}' "
            "STORED AS JSON;".encode(),
            capture_output=True, cwd=ROOT, check=True,
        )
        subprocess.run(
            [sys.executable, os.path.join(HERE, "serving.py"),
             "--artifact", os.path.join(args.workdir, "bench_spec.json"),
             "--model", os.path.join(args.workdir, "pipeline.pkl"),
             "--rows", rows, "--skewless", args.skewless],
            check=True,
        )


if __name__ == "__main__":
    main()