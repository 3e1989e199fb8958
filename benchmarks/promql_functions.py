"""PromQL function benchmark: the engine alone, in-process, over an in-memory source.

Generates N gauges, N counters (with resets) and N classic histogram bucket series (N / 10
histograms of 10 buckets) at a 15 s scrape interval, then times range queries of each function
over `--steps` steps of 15 s (the engine's evaluation, plus the trivial in-memory selection).
No storage and no HTTP: this isolates the numpy evaluation that the query benchmark
(benchmarks/query.py) measures end to end. Prints a table of the median of `--runs` runs after
one warm-up run.

    .venv/bin/python benchmarks/promql_functions.py --series 900 --steps 241 --runs 5
    .venv/bin/python benchmarks/promql_functions.py --series 20 --steps 10 --runs 1  # smoke
    .venv/bin/python benchmarks/promql_functions.py --only stddev,quantile_over
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import numpy as np

from gateway.promql.context import EngineOptions
from gateway.promql.engine import range_query
from gateway.promql.source import MemorySource

SCRAPE_MS = 15_000
START_MS = 1_700_000_000_000
RANGE_MS = 5 * 60_000
BOUNDS = ("0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "25", "+Inf")

QUERIES = [
    "sum_over_time(bench_gauge[5m])",
    "avg_over_time(bench_gauge[5m])",
    "stddev_over_time(bench_gauge[5m])",
    "stdvar_over_time(bench_gauge[5m])",
    "quantile_over_time(0.9, bench_gauge[5m])",
    "mad_over_time(bench_gauge[5m])",
    "ts_of_max_over_time(bench_gauge[5m])",
    "ts_of_min_over_time(bench_gauge[5m])",
    "deriv(bench_gauge[5m])",
    "predict_linear(bench_gauge[5m], 600)",
    "double_exponential_smoothing(bench_gauge[5m], 0.3, 0.3)",
    "rate(bench_requests_total[5m])",
    "irate(bench_requests_total[5m])",
    "idelta(bench_gauge[5m])",
    "sum by (job) (bench_gauge)",
    "sum(bench_gauge)",
    'count_values("value", round(bench_gauge / 10))',
    "topk(5, bench_gauge)",
    "bottomk by (job) (3, bench_gauge)",
    "limitk(5, bench_gauge)",
    "limit_ratio(0.5, bench_gauge)",
    "quantile by (job) (0.9, bench_gauge)",
    "stddev by (job) (bench_gauge)",
    "histogram_quantile(0.9, rate(bench_duration_seconds_bucket[5m]))",
    "histogram_fraction(0, 1, rate(bench_duration_seconds_bucket[5m]))",
]


def make_source(series: int, steps: int) -> MemorySource:
    """The benchmark data: every series covers the query span plus one range before it."""
    rng = np.random.default_rng(7)
    points = (steps - 1) + RANGE_MS // SCRAPE_MS + 1
    times = START_MS - RANGE_MS + np.arange(points, dtype=np.int64) * SCRAPE_MS
    source = MemorySource()
    gauges = 500 + np.cumsum(rng.normal(0, 20, (series, points)), axis=1)
    counters = np.cumsum(rng.poisson(5, (series, points)), axis=1).astype(np.float64)
    for i in range(series):
        target = (("instance", f"host-{i}"), ("job", f"job-{i % 10}"))
        source.add((("__name__", "bench_gauge"), *target), times, gauges[i])
        counter = counters[i].copy()
        if i % 7 == 0:  # a restart halfway: a counter reset
            counter[points // 2 :] -= counter[points // 2]
        source.add((("__name__", "bench_requests_total"), *target), times, counter)
    for h in range(max(series // len(BOUNDS), 1)):
        observed = rng.exponential(1.0 + h % 5, (points, 20))
        for le in BOUNDS:
            counts = np.cumsum((observed <= float(le)).sum(axis=1)).astype(np.float64)
            labels = (
                ("__name__", "bench_duration_seconds_bucket"),
                ("instance", f"host-{h}"),
                ("job", f"job-{h % 10}"),
                ("le", le),
            )
            source.add(labels, times, counts)
    return source


async def time_query(source: MemorySource, query: str, steps: int, runs: int) -> float:
    """The median wall time (s) of a range query over `steps` steps, after one warm-up."""
    end = START_MS + (steps - 1) * SCRAPE_MS
    options = EngineOptions(max_samples=500_000_000, timeout_s=3600)
    await range_query(source, query, START_MS, end, SCRAPE_MS, options)
    took = []
    for _ in range(runs):
        began = time.perf_counter()
        await range_query(source, query, START_MS, end, SCRAPE_MS, options)
        took.append(time.perf_counter() - began)
    return statistics.median(took)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=900, help="series per metric")
    parser.add_argument("--steps", type=int, default=241, help="range query steps (15 s)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per query")
    parser.add_argument("--only", default="", help="comma-separated substrings of queries")
    args = parser.parse_args()
    wanted = [w for w in args.only.split(",") if w]
    queries = [q for q in QUERIES if not wanted or any(w in q for w in wanted)]
    source = make_source(args.series, args.steps)
    print(f"{args.series} series x {args.steps} steps, median of {args.runs} runs")
    width = max(len(q) for q in queries)
    print(f"{'query':<{width}}  {'seconds':>9}")
    print(f"{'-' * width}  {'-' * 9}")
    for query in queries:
        seconds = await time_query(source, query, args.steps, args.runs)
        print(f"{query:<{width}}  {seconds:>9.4f}")


if __name__ == "__main__":
    asyncio.run(main())
