"""Series selection at high cardinality: 1M series, a selective matcher picking ~2,000 of them.

Loads Kubernetes-like series (one sample each) straight through `write_batch` into a fresh
embedded store (a temporary directory), then times, for each selector:
- `find_series` (what `/api/v1/series` runs: series ids and labels only),
- `select_series` (what PromQL and remote-read run: series and their samples),
- `GET /api/v1/series` through the real app on a loopback port,
and prints the median and best of --repeat runs. Then it times label browsing over every series
(what Grafana's metric and label browsers ask: label names, and the values of `__name__`, `job`,
`instance`), answered from the label index, side by side with the same answer read from every
series' label map (a selector that matches every series but is not recognised as "all").

    .venv/bin/python benchmarks/series_lookup.py [--series 1000000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import numpy as np
from aiohttp import web

from gateway.api.query_guard import QueryBounds
from gateway.api.selectors import parse_selector
from gateway.app import create_app
from gateway.config import QueryConfig, load
from gateway.model.labels import Labels, series_hash
from gateway.storage.clickhouse import ClickHouse, Client, migrate
from gateway.storage.querier import TimeRange, find_series, label_names, label_values
from gateway.storage.sample_reader import select_series
from gateway.storage.schema import Layout
from gateway.storage.writer import NewSeries, TenantSamples, WriteBatch, write_batch

TENANT = "bench"
T0 = 1_700_000_000_000
SELECTORS = (
    '{__name__="m", pod=~"p-1.*"}',
    '{job="x"}',
    'm{pod="p-1234", container="c"}',
    'node_cpu_seconds_total{instance="node-400:9100"}',
    '{job=~"job-1.*", mode="idle", instance=~"node-4.*"}',
)
LOAD_BATCH = 100_000


def label_sets(count: int) -> list[Labels]:
    """`m` (20k series: 10k pods x 2 containers), job `x` (2,000 series over 20 metrics),
    the rest spread over 200 metric names, 50 jobs, 20 namespaces, 5,000 instances."""
    sets: list[Labels] = []
    for pod in range(10_000):
        for container in ("c", "sidecar"):
            sets.append(
                (("__name__", "m"), ("container", container), ("job", "kube-pods"),
                 ("namespace", f"ns-{pod % 20}"), ("pod", f"p-{pod}"))
            )
    for index in range(2_000):
        sets.append(
            (("__name__", f"x_metric_{index % 20}"), ("instance", f"x-{index // 20}:8080"),
             ("job", "x"), ("namespace", "ns-x"), ("shard", str(index % 7)))
        )
    rest = count - len(sets)
    for index in range(rest):
        instance = index % 5_000
        sets.append(
            (("__name__", f"node_{'cpu_seconds_total' if index % 200 == 0 else index % 200}"),
             ("instance", f"node-{instance}:9100"), ("job", f"job-{index % 50}"),
             ("mode", ("idle", "user", "system", "iowait")[index % 4]),
             ("namespace", f"ns-{index % 20}"), ("series", str(index)))
        )
    return [tuple(sorted(one)) for one in sets[:count]]


def load_store(client: Client, layout: Layout, count: int) -> float:
    """Write `count` series with one sample each; returns the seconds it took."""
    began = time.perf_counter()
    sets = label_sets(count)
    for offset in range(0, len(sets), LOAD_BATCH):
        part = sets[offset : offset + LOAD_BATCH]
        ids = np.array([series_hash(labels) for labels in part], dtype=np.uint64)
        series = [NewSeries(TENANT, int(sid), labels, T0, T0)
                  for sid, labels in zip(ids.tolist(), part, strict=True)]
        samples = TenantSamples(
            TENANT, ids, np.full(len(part), T0, dtype=np.int64), np.ones(len(part))
        )
        write_batch(client, layout, WriteBatch([samples], series, []))
    client.command(f"OPTIMIZE TABLE {layout.series_table} FINAL")
    client.command(f"OPTIMIZE TABLE {layout.labels_table} FINAL")
    return time.perf_counter() - began


def timed(repeat: int, work: Callable[[], Any]) -> tuple[float, float, float, Any]:
    """(median wall, best wall, median CPU) seconds of `repeat` runs, and the last result.

    CPU time of the whole process (the engine's threads included) is printed too: on a shared
    machine it varies much less than wall time.
    """
    times, cpu = [], []
    result = None
    for _ in range(repeat):
        began, began_cpu = time.perf_counter(), time.process_time()
        result = work()
        times.append(time.perf_counter() - began)
        cpu.append(time.process_time() - began_cpu)
    return statistics.median(times), min(times), statistics.median(cpu), result


async def through_http(store_dsn: str, database: str, repeat: int) -> None:
    config = load(None, {"storage.dsn": store_dsn, "storage.database": database,
                         "storage.sample_shards": 2})
    runner = web.AppRunner(create_app(config))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}/api/v1/series"
    try:
        async with aiohttp.ClientSession() as session:
            for selector in SELECTORS:
                times = []
                count = 0
                for _ in range(repeat):
                    began = time.perf_counter()
                    async with session.get(
                        url, params={"match[]": selector}, headers={"X-Scope-OrgID": TENANT}
                    ) as response:
                        body = await response.json()
                    times.append(time.perf_counter() - began)
                    count = len(body["data"])
                report("GET /api/v1/series", selector, statistics.median(times), min(times),
                       count)
    finally:
        await runner.cleanup()


def report(
    what: str, selector: str, median: float, best: float, count: int, cpu: float | None = None
) -> None:
    cpu_text = f"  CPU {cpu * 1e3:7.1f} ms" if cpu is not None else ""
    print(f"{what:<18} {selector:<52} {count:>6} results  median {median * 1e3:7.1f} ms"
          f"  best {best * 1e3:7.1f} ms{cpu_text}")


def store_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of a benchmark on the 1M-series store of `load_store`."""
    parser.add_argument("--series", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument(
        "--dir", help="data directory (default: a fresh temporary one); reused when it has data"
    )


def open_loaded_store(args: argparse.Namespace, prefix: str) -> tuple[str, Layout, ClickHouse]:
    """The benchmark store (DSN, layout, pool), loaded with `--series` series unless it has data."""
    directory = args.dir or tempfile.mkdtemp(prefix=prefix)
    dsn = "chdb://" + directory
    layout = Layout(database="bench", sample_shards=2)
    store = ClickHouse(dsn, threads=1)
    store.run_sync(lambda client: migrate(client, layout))
    stored = int(store.run_sync(
        lambda client: client.command(f"SELECT count() FROM {layout.series_table}")))
    if stored:
        print(f"reusing {stored:,} series in {directory}")
    else:
        seconds = store.run_sync(lambda client: load_store(client, layout, args.series))
        print(f"loaded {args.series:,} series in {seconds:.1f} s into {directory}")
    return dsn, layout, store


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    store_arguments(parser)
    args = parser.parse_args()
    dsn, layout, store = open_loaded_store(args, "series-lookup-")
    try:
        window = TimeRange(T0 - 3_600_000, T0 + 3_600_000)
        for selector in SELECTORS:
            matchers = parse_selector(selector, QueryBounds.of(QueryConfig()))
            median, best, cpu, found = timed(args.repeat, lambda m=matchers: store.run_sync(
                lambda client: find_series(client, layout, TENANT, [m], window, 0)))
            report("find_series", selector, median, best, len(found), cpu)
            median, best, cpu, found = timed(args.repeat, lambda m=matchers: store.run_sync(
                lambda client: select_series(client, layout, TENANT, m,
                                             window.start_ms, window.end_ms)))
            report("select_series", selector, median, best, len(found), cpu)
        browse_labels(store, layout, window, args.repeat)
    finally:
        store.close()
    asyncio.run(through_http(dsn, layout.database, args.repeat))


# Matches every named series, but is not one of the selectors answered from the label index.
_EVERY_SERIES_SLOW_PATH = '{__name__=~".+", __name__!="no such metric"}'


def browse_labels(store: ClickHouse, layout: Layout, window: TimeRange, repeat: int) -> None:
    """Label names and values of all series: from the label index vs from every label map."""
    slow = [parse_selector(_EVERY_SERIES_SLOW_PATH, QueryBounds.of(QueryConfig()))]
    for how, selectors in (("index", []), ("label maps", slow)):
        median, best, cpu, found = timed(repeat, lambda s=selectors: store.run_sync(
            lambda client: label_names(client, layout, TENANT, s, window, 0)))
        report(f"names/{how}", "(all series)", median, best, len(found), cpu)
        for name in ("__name__", "job", "instance"):
            median, best, cpu, found = timed(repeat, lambda s=selectors, n=name: store.run_sync(
                lambda client: label_values(client, layout, TENANT, n, s, window, 0)))
            report(f"values/{how}", f"{name} (all series)", median, best, len(found), cpu)


if __name__ == "__main__":
    main()
