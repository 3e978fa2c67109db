"""Serving comparison (issue 6): per-row latency, median and p99 over the
same rows, of
- skewless's serving evaluator (`skewless eval --latency`: a typed row, and a
  JSON line to a JSON line),
- the fitted scikit-learn pipeline of spec_sklearn.py transforming a
  one-row DataFrame (built beforehand, not timed),
- a hand-written pure-Python function with the fitted constants, on a dict.
The Python function's features are checked against skewless's first.

Usage: python serving.py --artifact SPEC.json --model PIPELINE.pkl --rows ROWS.ndjson
                         [--skewless BIN] [--sklearn-rows N]
"""

import argparse
import json
import math
import os
import pickle
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import farmhash  # noqa: E402
import spec_sklearn  # noqa: E402,F401  (the pickled pipeline's classes)

from spec_common import OUTPUTS  # noqa: E402


def pure_python(pipe):
    """The spec as one Python function, constants from the fitted pipeline."""
    mm = pipe.named_transformers_["min_max"]
    zs = pipe.named_transformers_["z_score"]
    vocab = pipe.named_transformers_["vocabulary"].mappings_
    bounds = [float(b) for b in pipe.named_transformers_["age_bucket"].boundaries_]
    age_min, hours_min = (float(v) for v in mm.data_min_)
    age_range, hours_range = (float(v) for v in mm.data_range_)
    means = [float(v) for v in zs.mean_]
    scales = [float(v) for v in zs.scale_]
    occ, edu, work, country = vocab

    def index(mapping, value):
        if value is None:
            return None
        return mapping.get(value, len(mapping))

    def features(row):
        age = row["age"]
        education, occupation = row["education"], row["occupation"]
        bucket = 0
        for b in bounds:
            if age >= b:
                bucket += 1
        return [
            (age - age_min) / age_range,
            (row["hours_per_week"] - hours_min) / hours_range,
            (row["fnlwgt"] - means[0]) / scales[0],
            (row["capital_gain"] - means[1]) / scales[1],
            (row["education_num"] - means[2]) / scales[2],
            index(occ, occupation),
            index(edu, education),
            index(work, row["workclass"]),
            index(country, row["native_country"]),
            None
            if education is None or occupation is None
            else farmhash.fingerprint64(f"{education}_{occupation}") % 10_000,
            bucket,
        ]

    return features


def percentiles(ns):
    ns = sorted(ns)
    at = lambda q: ns[round((len(ns) - 1) * q)] / 1000  # noqa: E731
    return at(0.5), at(0.99)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--artifact", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--rows", required=True)
    p.add_argument("--skewless", default=os.path.join(ROOT, "target/debug/skewless"))
    p.add_argument("--sklearn-rows", type=int, default=10_000)
    args = p.parse_args()
    import pandas as pd

    with open(args.rows) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    for r in rows:
        for c in ["workclass", "occupation", "native_country", "education"]:
            r.setdefault(c, None)
    with open(args.model, "rb") as f:
        pipe = pickle.load(f)
    features = pure_python(pipe)

    # The Python function agrees with skewless (floats within 1e-12).
    served = subprocess.run(
        [args.skewless, "eval", args.artifact, "--input", args.rows],
        capture_output=True, check=True, cwd=ROOT,
    ).stdout.decode().splitlines()
    for i, (row, line) in enumerate(zip(rows, served)):
        expected = json.loads(line)
        got = features(row)
        for name, value in zip(OUTPUTS, got):
            want = expected.get(name)
            if (value is None) != (want is None) or (
                value is not None and not math.isclose(value, want, rel_tol=1e-12, abs_tol=1e-12)
            ):
                sys.exit(f"row {i + 1}: {name}: Python {value!r}, skewless {want!r}")

    out = subprocess.run(
        [args.skewless, "eval", args.artifact, "--input", args.rows, "--latency"],
        capture_output=True, check=True, cwd=ROOT,
    ).stdout.decode()
    print(out, file=sys.stderr)
    timings = {}
    for line in out.splitlines():
        if "median" in line:
            name = "skewless: " + line.split("median")[0].strip()
            median = float(line.split("median")[1].split("µs")[0])
            p99 = float(line.split("p99")[1].split("µs")[0])
            timings[name] = (median, p99)

    # Python: each row timed alone, as skewless does, 5 rounds after a warm-up.
    ns = []
    for round_ in range(6):
        for row in rows:
            start = time.perf_counter_ns()
            features(row)
            elapsed = time.perf_counter_ns() - start
            if round_:
                ns.append(elapsed)
    timings["pure Python function (dict in)"] = percentiles(ns)

    frames = [pd.DataFrame([r]) for r in rows[: args.sklearn_rows]]
    pipe.transform(frames[0])
    ns = []
    for frame in frames:
        start = time.perf_counter_ns()
        pipe.transform(frame)
        ns.append(time.perf_counter_ns() - start)
    timings["scikit-learn pipeline (1-row DataFrame)"] = percentiles(ns)

    base = timings["skewless: typed row → features"][0]
    print(f"\nserving, per row, {len(rows):,} rows ({len(frames):,} for scikit-learn):\n")
    print("| path | median | p99 | median ÷ skewless typed |")
    print("|---|---|---|---|")
    for name, (median, p99) in timings.items():
        print(f"| {name} | {median:,.3f} µs | {p99:,.3f} µs | {median / base:,.1f} |")


if __name__ == "__main__":
    main()
