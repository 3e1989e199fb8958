"""Cardinality explorer at 1M active series of one tenant, through the real app over HTTP.

Loads the Kubernetes-like series of `benchmarks/series_lookup.py` (one sample each) into a fresh
embedded store, marks every one of them active in `series_activity` (as the limits tracker
persists them), starts the gateway on the store (its tracker is rebuilt from storage, timed) and
times each endpoint with `count_method=active` and `inmemory`: the median and best of --repeat
requests, and the process CPU per request (the engine runs in-process).

    .venv/bin/python benchmarks/cardinality.py [--series 1000000] [--repeat 7] [--dir DIR]

Smoke run: `--series 30000 --repeat 1`.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import aiohttp
import numpy as np
from aiohttp import web

from benchmarks.series_lookup import TENANT, open_loaded_store, store_arguments
from gateway.app import create_app
from gateway.app_keys import LIMITS
from gateway.config import load
from gateway.limits import store as limits_store
from gateway.limits.tracker import Activity
from gateway.storage.clickhouse import Client
from gateway.storage.schema import Layout

WINDOW_MINUTES = 60
CALLS: tuple[tuple[str, list[tuple[str, str]]], ...] = (
    ("/api/v1/cardinality/label_names", []),
    ("/api/v1/cardinality/label_names", [("selector", '{job="x"}')]),
    ("/api/v1/cardinality/label_values", [("label_names[]", "__name__"),
                                          ("label_names[]", "instance")]),
    ("/api/v1/cardinality/label_values", [("label_names[]", "mode"), ("selector", "m")]),
    ("/api/v1/cardinality/active_series", [("selector", '{job="x"}')]),
    ("/api/v1/status/tsdb", []),
)


def mark_active(client: Client, layout: Layout) -> int:
    """Write one `series_activity` row per stored series, seen this minute."""
    table = client.query_arrow(
        f"SELECT series_id, metric_name FROM {layout.series_table} WHERE tenant = {{t:String}}",
        parameters={"t": TENANT},
    )
    ids = table.column("series_id").to_numpy().astype(np.uint64)
    metric = table.column("metric_name").combine_chunks().dictionary_encode()
    minute = int(time.time() // 60)
    rows = [
        Activity(
            TENANT, ids, np.full(len(ids), minute, np.uint32),
            metric.indices.to_numpy(zero_copy_only=False).astype(np.uint32),
            metric.dictionary.to_pylist(),
        )
    ]
    limits_store.write_activity(client, layout, rows, WINDOW_MINUTES)
    client.command(f"OPTIMIZE TABLE {layout.table(limits_store.ACTIVITY_TABLE)} FINAL")
    return len(ids)


def describe(path: str, params: list[tuple[str, str]]) -> str:
    text = path.removeprefix("/api/v1/")
    extra = "&".join(f"{k}={v}" for k, v in params if k != "count_method")
    return f"{text}?{extra}" if extra else text


async def time_calls(dsn: str, database: str, repeat: int) -> None:
    config = load(None, {
        "storage.dsn": dsn, "storage.database": database, "storage.sample_shards": 2,
        "limits.active_series_window_seconds": WINDOW_MINUTES * 60,
    })
    began = time.perf_counter()
    app = create_app(config)
    runner = web.AppRunner(app)
    await runner.setup()
    print(f"gateway started (tracker rebuilt from storage: "
          f"{app[LIMITS].tracker.count(TENANT):,} active series) in "
          f"{time.perf_counter() - began:.1f} s")
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with aiohttp.ClientSession() as session:
            for method in ("active", "inmemory"):
                for path, params in CALLS:
                    query = [*params, ("count_method", method)]
                    times, cpu = [], []
                    status = 0
                    for _ in range(repeat):
                        began, began_cpu = time.perf_counter(), time.process_time()
                        async with session.get(
                            f"http://127.0.0.1:{port}{path}", params=query,
                            headers={"X-Scope-OrgID": TENANT},
                        ) as response:
                            await response.read()
                            status = response.status
                        times.append(time.perf_counter() - began)
                        cpu.append(time.process_time() - began_cpu)
                    print(f"{method:<8} {describe(path, params):<62} {status}  median "
                          f"{statistics.median(times) * 1e3:7.1f} ms  best "
                          f"{min(times) * 1e3:7.1f} ms  CPU {statistics.median(cpu) * 1e3:7.1f} ms")
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    store_arguments(parser)
    args = parser.parse_args()
    dsn, layout, store = open_loaded_store(args, "cardinality-")
    try:
        began = time.perf_counter()
        marked = store.run_sync(lambda client: mark_active(client, layout))
        print(f"marked {marked:,} series active in {time.perf_counter() - began:.1f} s")
    finally:
        store.close()
    asyncio.run(time_calls(dsn, layout.database, args.repeat))


if __name__ == "__main__":
    main()
