"""PromQL query benchmark: the gateway (embedded store) and a real Prometheus, side by side.

Starts two `metrics-gateway serve` on fresh data directories (one with the series labels
cache on, the default; one with `query.series_labels_cache_size: 0`, as a first query finds
it) and `prometheus` with its remote-write receiver (separate processes, loopback only),
writes the same data into all three by remote-write (10k counters x 1 h at 15 s, label `job`
over 10 values), then times the same queries through their HTTP APIs, alternating between
them: the median of several runs after one warm-up round.

    .venv/bin/python benchmarks/query.py --series 10000 --runs 7
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import numpy as np

from benchmarks.ingest import HEADERS, free_port, wait_ready
from gateway._pb.prometheus import remote_pb2 as pb
from gateway.remote.snappy import compress

SCRAPE_MS = 15_000
HOUR_MS = 3_600_000
SLICE_SAMPLES = 20  # samples per series in one request (5 minutes of data)
TIMEOUT = aiohttp.ClientTimeout(total=600)


def label_bytes(count: int) -> list[list[bytes]]:
    """Serialized labels of `count` counters: 10 jobs, the rest told apart by instance."""
    out = []
    for index in range(count):
        labels = [
            ("__name__", "bench_requests_total"),
            ("instance", f"10.0.{index // 250}.{index % 250}:9100"),
            ("job", f"job-{index % 10}"),
        ]
        out.append(
            [pb.Label(name=n.encode(), value=v.encode()).SerializeToString() for n, v in labels]
        )
    return out


def bodies(count: int, start_ms: int) -> list[bytes]:
    """Remote-write bodies in time order, each holding every series for 5 minutes."""
    labels = label_bytes(count)
    rng = np.random.default_rng(1)
    steps = HOUR_MS // SCRAPE_MS + 1
    values = np.cumsum(rng.poisson(5, (count, steps)), axis=1).astype(float)
    out = []
    for first in range(0, steps, SLICE_SAMPLES):
        last = min(first + SLICE_SAMPLES, steps)
        times = [start_ms + i * SCRAPE_MS for i in range(first, last)]
        request = pb.WriteRequest(
            timeseries=[
                pb.TimeSeries(
                    labels=labels[s],
                    samples=[
                        pb.Sample(timestamp=t, value=v)
                        for t, v in zip(times, values[s, first:last].tolist(), strict=True)
                    ],
                )
                for s in range(count)
            ]
        )
        out.append(compress(request.SerializeToString()))
    return out


async def write_all(session: aiohttp.ClientSession, url: str, payloads: list[bytes]) -> float:
    began = time.perf_counter()
    for body in payloads:
        async with session.post(url + "/api/v1/write", data=body, headers=HEADERS) as response:
            if response.status not in (200, 204):
                text = await response.text()
                raise SystemExit(f"{url}: write answered {response.status}: {text}")
    return time.perf_counter() - began


async def once(
    session: aiohttp.ClientSession, url: str, path: str, params: dict[str, str]
) -> tuple[float, int]:
    """Seconds one query takes, and its result's series count."""
    began = time.perf_counter()
    async with session.post(url + "/api/v1/" + path, data=params) as response:
        body = await response.json()
    elapsed = time.perf_counter() - began
    if body.get("status") != "success":
        raise SystemExit(f"{url} {path} {params}: {body}")
    return elapsed, len(body["data"]["result"])


async def side_by_side(
    session: aiohttp.ClientSession,
    urls: list[str],
    path: str,
    params: dict[str, str],
    runs: int,
) -> list[float]:
    """Median seconds of every server; runs alternate, so all see the same machine load."""
    seconds: list[list[float]] = [[] for _ in urls]
    for attempt in range(runs + 1):  # the first round warms up
        counts = []
        for side, url in enumerate(urls):
            elapsed, count = await once(session, url, path, params)
            counts.append(count)
            if attempt:
                seconds[side].append(elapsed)
        if len(set(counts)) != 1:
            raise SystemExit(f"{params['query']}: series counts {counts}")
    for times in seconds:
        print(f"  {params['query'][:40]}: " + " ".join(f"{t * 1000:.0f}" for t in times))
    return [statistics.median(times) for times in seconds]


def query_cases(series: int, start_ms: int, end_ms: int) -> list[tuple[str, str, dict[str, str]]]:
    """(title, API path, form) of the timed queries: sum-rate over the hour and at its end, an
    instant selector of ~2,000 series, and their rates over the hour (a Grafana panel's query
    with ~480k points in the answer)."""
    selected_jobs = max(1, round(2000 / series * 10))
    regex = "|".join(f"job-{j}" for j in range(selected_jobs))
    sum_rate = "sum by (job) (rate(bench_requests_total[5m]))"
    return [
        (
            "sum by (job) (rate(x[5m])), 1 h at 15 s",
            "query_range",
            {"query": sum_rate, "start": str(start_ms / 1000), "end": str(end_ms / 1000),
             "step": "15"},
        ),
        ("sum by (job) (rate(x[5m])), instant", "query",
         {"query": sum_rate, "time": str(end_ms / 1000)}),
        (
            f"selector of {series * selected_jobs // 10:,} series, instant",
            "query",
            {"query": f'bench_requests_total{{job=~"{regex}"}}', "time": str(end_ms / 1000)},
        ),
        (
            f"rate of {series * selected_jobs // 10:,} series, 1 h at 15 s (every point returned)",
            "query_range",
            {"query": f'rate(bench_requests_total{{job=~"{regex}"}}[5m])',
             "start": str(start_ms / 1000), "end": str(end_ms / 1000), "step": "15"},
        ),
    ]


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    """Terminate the servers, killing any that do not exit within a minute."""
    for process in processes:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def start_gateway(work: Path, name: str, port: int, labels_cache: bool) -> subprocess.Popen[bytes]:
    cache = [] if labels_cache else ["--query.series_labels_cache_size", "0"]
    return subprocess.Popen([
        sys.executable, "-m", "gateway", "serve", "--listen", f"127.0.0.1:{port}",
        "--storage", f"chdb://{work / name}", "--log-level", "warning", *cache,
    ])


async def run(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="query-bench-"))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        gateway_port, uncached_port, prom_port = free_port(), free_port(), free_port()
        gateway = f"http://127.0.0.1:{gateway_port}"
        uncached = f"http://127.0.0.1:{uncached_port}"
        prometheus = f"http://127.0.0.1:{prom_port}"
        (work / "prometheus.yml").write_text("global:\n  scrape_interval: 1h\n")
        processes.append(start_gateway(work, "gateway", gateway_port, labels_cache=True))
        processes.append(start_gateway(work, "uncached", uncached_port, labels_cache=False))
        processes.append(subprocess.Popen(
            [
                "prometheus", f"--config.file={work / 'prometheus.yml'}",
                f"--storage.tsdb.path={work / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
                "--web.enable-remote-write-receiver", "--log.level=warn",
            ],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))
        for url in (gateway, uncached, prometheus):
            await wait_ready(url)
        end_ms = (int(time.time() * 1000) // SCRAPE_MS) * SCRAPE_MS
        start_ms = end_ms - HOUR_MS
        print(f"building {args.series:,} series x 1 h at 15 s ...", flush=True)
        payloads = bodies(args.series, start_ms)
        samples = args.series * (HOUR_MS // SCRAPE_MS + 1)
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            servers = (
                ("gateway", gateway), ("gateway, labels cache off", uncached),
                ("prometheus", prometheus),
            )
            for name, url in servers:
                seconds = await write_all(session, url, payloads)
                print(f"loaded {samples:,} samples into {name} in {seconds:.1f} s", flush=True)
            cases = query_cases(args.series, start_ms, end_ms)
            # Let the stores finish merging what was just written (merges of one server would
            # otherwise slow down the others' timings).
            await asyncio.sleep(args.settle)
            print(f"load average before timing: {os.getloadavg()[0]:.2f}")
            print(
                "\n| query | gateway | gateway, labels cache off | Prometheus 2.42 "
                "| gateway / Prometheus |"
            )
            print("|---|---|---|---|---|")
            for title, path, params in cases:
                mine, cold, theirs = await side_by_side(
                    session, [url for _, url in servers], path, params, args.runs
                )
                print(
                    f"| {title} | {mine * 1000:.0f} ms | {cold * 1000:.0f} ms "
                    f"| {theirs * 1000:.0f} ms | {mine / theirs:.1f}x |"
                )
        print(f"load average after timing: {os.getloadavg()[0]:.2f}")
    finally:
        stop(processes)
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--settle", type=float, default=30, help="seconds between load and timing")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
