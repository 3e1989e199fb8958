"""Query result JSON: the dict form + json.dumps (the reference) vs the text writer, in-process.

A matrix of N series x 241 points (1 h at 15 s) and an instant vector of 5 N samples, once with
full-precision values (rates) and once with whole numbers (counters); the median of `--runs`
rounds, each encoding the result both ways.

    .venv/bin/python -m benchmarks.result_json --series 2000 --runs 7
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from gateway.promql.result import (
    MatrixValue,
    Result,
    Sample,
    Series,
    VectorValue,
    to_prometheus_json,
)
from gateway.promql.result_json import data_text

START_MS = 1_700_000_000_000
STEPS = 241


def reference(result: Result) -> str:
    return json.dumps(to_prometheus_json(result), separators=(",", ":"), ensure_ascii=False)


def labels(index: int) -> tuple[tuple[str, str], ...]:
    return (("instance", f"10.0.{index // 250}.{index % 250}:9100"), ("job", f"job-{index % 10}"))


def results(series: int, whole: bool) -> dict[str, Result]:
    rng = np.random.default_rng(1)
    times = START_MS + np.arange(STEPS, dtype=np.int64) * 15_000
    values = np.cumsum(rng.poisson(5, (series, STEPS)), axis=1).astype(np.float64) if whole \
        else rng.random((series, STEPS)) * 10
    matrix = MatrixValue([Series(labels(i), times, values[i]) for i in range(series)])
    flat = values.ravel()
    vector = VectorValue([Sample(labels(i), START_MS, float(flat[i])) for i in range(5 * series)])
    return {f"matrix {series:,} x {STEPS}": Result(matrix),
            f"vector of {5 * series:,}": Result(vector)}


def medians(result: Result, runs: int) -> tuple[float, float]:
    """Median seconds of the reference and of the text writer, alternating every round."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(runs):
        for side, encode in enumerate((reference, data_text)):
            began = time.perf_counter()
            encode(result)
            times[side].append(time.perf_counter() - began)
    return statistics.median(times[0]), statistics.median(times[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    print("| result | values | dict + json.dumps | text writer | speed-up |\n|---|---|---|---|---|")
    for whole in (False, True):
        for name, result in results(args.series, whole).items():
            assert data_text(result) == reference(result)
            old, new = medians(result, args.runs)
            kind = "whole numbers" if whole else "full precision"
            print(f"| {name} | {kind} | {old * 1000:.0f} ms | {new * 1000:.0f} ms "
                  f"| {old / new:.1f}x |")


if __name__ == "__main__":
    main()
