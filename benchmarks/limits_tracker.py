"""Active-series tracker benchmark: memory per tracked series and cost per request at 1M series.

Registers `--series` series of one tenant the way requests do (batches of `--per-request` new
series), then measures a steady-state request's lookup (`touch`), expiry and a reconciliation
merge, and the process RSS growth against the tracker's own array bytes. Optionally
(`--storage`) also persists every series to a fresh embedded ClickHouse and rebuilds a tracker
from it, as a restarted gateway does.

    .venv/bin/python benchmarks/limits_tracker.py --series 1000000 --storage
"""

from __future__ import annotations

import argparse
import gc
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from gateway.limits.tracker import Activity


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=1_000_000)
    parser.add_argument("--per-request", type=int, default=2000)
    parser.add_argument("--metrics", type=int, default=60)
    parser.add_argument("--storage", action="store_true", help="also persist and rebuild")
    args = parser.parse_args()

    from gateway.limits.tracker import ActiveSeriesTracker

    rng = np.random.default_rng(1)
    ids = np.unique(rng.integers(1, 2**63, size=int(args.series * 1.01), dtype=np.uint64))
    ids = rng.permutation(ids[: args.series])
    names = [f"app_metric_{i}" for i in range(args.metrics)]
    metric_of = [names[i % args.metrics] for i in range(args.series)]
    gc.collect()
    before = rss_bytes()
    tracker = ActiveSeriesTracker(3600)
    started = time.perf_counter()
    for first in range(0, args.series, args.per_request):
        chunk = ids[first : first + args.per_request]
        tracker.touch("t", chunk)  # what a request does first
        tracker.add("t", chunk.tolist(), metric_of[first : first + args.per_request])
    build = time.perf_counter() - started
    gc.collect()
    grown = rss_bytes() - before
    requests = -(-args.series // args.per_request)
    print(f"tracked series: {tracker.count('t'):,} in {requests} requests of new series")
    print(f"  registering: {build:.1f} s total, {build / requests * 1000:.2f} ms per request")
    print(
        f"  tracker arrays: {tracker.memory_bytes() / 2**20:.1f} MiB"
        f" ({tracker.memory_bytes() / args.series:.1f} B/series);"
        f" RSS growth: {grown / 2**20:.1f} MiB ({grown / args.series:.1f} B/series)"
    )

    sample = ids[rng.integers(0, args.series, size=args.per_request)]
    rounds = 200
    started = time.perf_counter()
    for _ in range(rounds):
        tracker.touch("t", sample)
    touch = (time.perf_counter() - started) / rounds
    print(
        f"  steady request ({args.per_request} known series): touch {touch * 1e6:.0f} us"
        f" = {touch / args.per_request * 1e9:.0f} ns/series"
    )
    started = time.perf_counter()
    tracker.expire()
    print(f"  expiry scan: {(time.perf_counter() - started) * 1000:.1f} ms")
    rows = tracker.unpersisted(5)
    started = time.perf_counter()
    for row in rows:
        tracker.merge("t", row.series_ids, row.minutes, row.metric_codes, row.metric_names)
    merge = time.perf_counter() - started
    print(f"  reconcile merge of {args.series:,} known ids: {merge * 1000:.0f} ms")
    if args.storage:
        persist_and_rebuild(rows, args.series)


def persist_and_rebuild(rows: list[Activity], count: int) -> None:
    from gateway.limits import store
    from gateway.limits.tracker import ActiveSeriesTracker
    from gateway.storage.clickhouse import ClickHouse, migrate
    from gateway.storage.schema import Layout

    directory = tempfile.mkdtemp(prefix="tracker-bench-")
    clickhouse = ClickHouse(f"chdb://{directory}", threads=1)
    layout = Layout(database="bench", sample_shards=1)
    try:
        clickhouse.run_sync(lambda client: migrate(client, layout))
        started = time.perf_counter()
        clickhouse.run_sync(lambda client: store.write_activity(client, layout, rows, 60))
        print(f"  persist {count:,} rows: {time.perf_counter() - started:.2f} s")
        rebuilt = ActiveSeriesTracker(3600)
        started = time.perf_counter()
        found = clickhouse.run_sync(
            lambda client: store.read_activity(client, layout, rebuilt.minute() - 60)
        )
        for row in found:
            rebuilt.merge(row.tenant, row.series_ids, row.minutes, row.metric_codes,
                          row.metric_names)
        print(
            f"  rebuild from storage (restart): {rebuilt.count('t'):,} series in"
            f" {time.perf_counter() - started:.2f} s"
        )
    finally:
        clickhouse.close()
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
