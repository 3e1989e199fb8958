"""Soak: writers of several tenants and readers against one gateway process for 3 minutes.

Bounded in time; every answer must be a success (no documented limit is configured low enough
to be hit); the process' RSS (from /proc, every 2 s) must not grow by more than
RSS_GROWTH_BOUND from the end of warm-up to the end of the run; every acknowledged sample must
be on disk afterwards, counted by a fresh process. Part of `make test` (3 minutes).
Numbers are printed (run with -s) and recorded in docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import signal
import statistics
import time
from collections import defaultdict
from pathlib import Path

import aiohttp
import pytest

from tests.api.test_write_errors import rw1, series
from tests.integration.test_process_faults import start, stored_rows, wait_ready
from tests.prometheus_process import free_port

TENANTS = ("soak-a", "soak-b", "soak-c")
WRITERS_PER_TENANT = 2
READERS = 3
SERIES_PER_REQUEST = 250
WARM_UP_SECONDS = 60.0  # RSS still rises for ~60 s: first merges, caches, thread arenas
MEASURED_SECONDS = 120.0
RSS_GROWTH_BOUND = 0.15
T0 = 1_700_000_000_000


def write_body(writer: int, number: int) -> bytes:
    """A fixed set of series per writer; each request adds one new timestamp to all of them."""
    return rw1(*(
        series(
            [(b"__name__", b"soak_metric"), (b"writer", b"%d" % writer), (b"i", b"%d" % i),
             (b"job", b"soak")],
            [(T0 + number * 1000, float(number))],
        )
        for i in range(SERIES_PER_REQUEST)
    ))


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def percentiles(values: list[float]) -> str:
    if len(values) < 2:
        return f"n={len(values)}"
    cuts = statistics.quantiles(values, n=100)
    return (f"n={len(values)} p50={cuts[49] * 1000:.1f}ms p95={cuts[94] * 1000:.1f}ms "
            f"p99={cuts[98] * 1000:.1f}ms max={max(values) * 1000:.1f}ms")


@pytest.mark.slow
async def test_soak(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    data_dir = tmp_path / "data"
    log_path = tmp_path / "gateway.log"
    deadline = time.monotonic() + WARM_UP_SECONDS + MEASURED_SECONDS
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: list[str] = []
    acknowledged = 0
    with log_path.open("wb") as log:
        process = start(data_dir, port, log)
        try:
            await wait_ready(url, process)
            routes = await _routes(url)

            async def writer(tenant: str, index: int) -> None:
                nonlocal acknowledged
                number = 0
                async with aiohttp.ClientSession() as session:
                    while time.monotonic() < deadline:
                        number += 1
                        started = time.monotonic()
                        async with session.post(
                            url + "/api/v1/write", data=write_body(index, number),
                            headers={"Content-Type": "application/x-protobuf",
                                     "X-Scope-OrgID": tenant},
                        ) as response:
                            text = await response.text()
                        latencies["write"].append(time.monotonic() - started)
                        if response.status == 204:
                            acknowledged += SERIES_PER_REQUEST
                        else:
                            errors.append(f"write {response.status}: {text[:200]}")

            async def reader(index: int) -> None:
                calls = _read_calls(routes)
                async with aiohttp.ClientSession() as session:
                    turn = index
                    while time.monotonic() < deadline:
                        name, path, params = calls[turn % len(calls)]
                        tenant = TENANTS[turn % len(TENANTS)]
                        turn += 1
                        started = time.monotonic()
                        async with session.get(
                            url + path, params=params, headers={"X-Scope-OrgID": tenant}
                        ) as response:
                            text = await response.text()
                        latencies[name].append(time.monotonic() - started)
                        if response.status != 200:
                            errors.append(f"{name} {response.status}: {text[:200]}")

            async def sampler() -> list[tuple[float, int]]:
                samples = []
                begin = time.monotonic()
                while time.monotonic() < deadline:
                    samples.append((time.monotonic() - begin, rss_bytes(process.pid)))
                    await asyncio.sleep(2.0)
                return samples

            tasks = [writer(t, i) for t in TENANTS for i in range(WRITERS_PER_TENANT)]
            tasks += [reader(i) for i in range(READERS)]
            rss, *_ = await asyncio.gather(sampler(), *tasks)
            process.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(process.wait, 60)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert code == 0, log_path.read_text()[-3000:]
    rows, final = stored_rows(data_dir)
    warm = statistics.median(
        [value for at, value in rss if WARM_UP_SECONDS <= at < WARM_UP_SECONDS + 6]
    )
    end = statistics.median([value for _, value in rss[-3:]])
    growth = (end - warm) / warm
    print(f"\nsoak: {len(TENANTS)} tenants x {WRITERS_PER_TENANT} writers, {READERS} readers, "
          f"{WARM_UP_SECONDS + MEASURED_SECONDS:.0f} s")
    print(f"acknowledged samples {acknowledged}, stored {final} (raw rows {rows})")
    print("RSS MiB over time (s: MiB): " + ", ".join(
        f"{at:.0f}: {value / 2**20:.0f}" for at, value in rss[::5]
    ))
    print(f"RSS MiB: start {rss[0][1] / 2**20:.0f}, end of warm-up {warm / 2**20:.0f}, "
          f"end {end / 2**20:.0f}, max {max(v for _, v in rss) / 2**20:.0f}; growth from the "
          f"end of warm-up to the end {growth:.1%} (bound {RSS_GROWTH_BOUND:.0%})")
    for name, values in sorted(latencies.items()):
        print(f"{name}: {percentiles(values)}")
    assert not errors, errors[:10]
    assert acknowledged == final == rows
    assert growth < RSS_GROWTH_BOUND


async def _routes(url: str) -> set[str]:
    """Which query endpoints this build serves (a 404 means not routed)."""
    found = set()
    async with aiohttp.ClientSession() as session:
        for path in ("/api/v1/query", "/api/v1/query_range"):
            async with session.get(url + path, params={"query": "1", "time": "1",
                                                       "start": "1", "end": "2", "step": "1"},
                                   headers={"X-Scope-OrgID": TENANTS[0]}) as response:
                if response.status != 404:
                    found.add(path)
    return found


def _read_calls(routes: set[str]) -> list[tuple[str, str, dict[str, str]]]:
    now = str((T0 + 60_000) / 1000)
    calls = [
        ("series", "/api/v1/series", {"match[]": 'soak_metric{writer="1", i=~"1.."}'}),
        ("labels", "/api/v1/labels", {}),
        ("label_values", "/api/v1/label/i/values", {"match[]": "soak_metric"}),
    ]
    if "/api/v1/query" in routes:
        calls.append(("query", "/api/v1/query",
                      {"query": 'sum by (writer) (soak_metric{job="soak"})', "time": now}))
    if "/api/v1/query_range" in routes:
        calls.append(("query_range", "/api/v1/query_range", {
            "query": 'sum by (writer) (rate(soak_metric{i=~"1."}[1m]))',
            "start": str(T0 / 1000), "end": now, "step": "15",
        }))
    return calls
