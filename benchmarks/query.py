"""PromQL query benchmark: the gateway (embedded store) and a real Prometheus, side by side.

Starts `metrics-gateway serve` on a fresh data directory and `prometheus` with its remote-write
receiver (both separate processes, loopback only), writes the same data into both by
remote-write (10k counters x 1 h at 15 s, label `job` over 10 values), then times the same
queries through both HTTP APIs, alternating between the two: the median of several runs after
one warm-up round.

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
    urls: tuple[str, str],
    path: str,
    params: dict[str, str],
    runs: int,
) -> tuple[float, float]:
    """Median seconds of both servers; runs alternate, so both see the same machine load."""
    seconds: tuple[list[float], list[float]] = ([], [])
    for attempt in range(runs + 1):  # the first round warms up
        counts = []
        for side, url in enumerate(urls):
            elapsed, count = await once(session, url, path, params)
            counts.append(count)
            if attempt:
                seconds[side].append(elapsed)
        if counts[0] != counts[1]:
            raise SystemExit(f"{params['query']}: {counts[0]} series vs {counts[1]}")
    return statistics.median(seconds[0]), statistics.median(seconds[1])


async def run(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="query-bench-"))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        gateway_port, prom_port = free_port(), free_port()
        gateway = f"http://127.0.0.1:{gateway_port}"
        prometheus = f"http://127.0.0.1:{prom_port}"
        (work / "prometheus.yml").write_text("global:\n  scrape_interval: 1h\n")
        processes.append(subprocess.Popen([
            sys.executable, "-m", "gateway", "serve", "--listen", f"127.0.0.1:{gateway_port}",
            "--storage", f"chdb://{work / 'gateway'}", "--log-level", "warning",
        ]))
        processes.append(subprocess.Popen(
            [
                "prometheus", f"--config.file={work / 'prometheus.yml'}",
                f"--storage.tsdb.path={work / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
                "--web.enable-remote-write-receiver", "--log.level=warn",
            ],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))
        await wait_ready(gateway)
        await wait_ready(prometheus)
        end_ms = (int(time.time() * 1000) // SCRAPE_MS) * SCRAPE_MS
        start_ms = end_ms - HOUR_MS
        print(f"building {args.series:,} series x 1 h at 15 s ...", flush=True)
        payloads = bodies(args.series, start_ms)
        samples = args.series * (HOUR_MS // SCRAPE_MS + 1)
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            for name, url in (("gateway", gateway), ("prometheus", prometheus)):
                seconds = await write_all(session, url, payloads)
                print(f"loaded {samples:,} samples into {name} in {seconds:.1f} s", flush=True)
            selected_jobs = max(1, round(2000 / args.series * 10))
            regex = "|".join(f"job-{j}" for j in range(selected_jobs))
            cases = [
                (
                    "sum by (job) (rate(x[5m])), 1 h at 15 s",
                    "query_range",
                    {
                        "query": "sum by (job) (rate(bench_requests_total[5m]))",
                        "start": str(start_ms / 1000), "end": str(end_ms / 1000), "step": "15",
                    },
                ),
                (
                    "sum by (job) (rate(x[5m])), instant",
                    "query",
                    {
                        "query": "sum by (job) (rate(bench_requests_total[5m]))",
                        "time": str(end_ms / 1000),
                    },
                ),
                (
                    f"selector of {args.series * selected_jobs // 10:,} series, instant",
                    "query",
                    {
                        "query": f'bench_requests_total{{job=~"{regex}"}}',
                        "time": str(end_ms / 1000),
                    },
                ),
            ]
            print(f"load average before timing: {os.getloadavg()[0]:.2f}")
            print("\n| query | gateway (median) | Prometheus 2.42 (median) | ratio |")
            print("|---|---|---|---|")
            for title, path, params in cases:
                mine, theirs = await side_by_side(
                    session, (gateway, prometheus), path, params, args.runs
                )
                print(
                    f"| {title} | {mine * 1000:.0f} ms | {theirs * 1000:.0f} ms "
                    f"| {mine / theirs:.1f}x |"
                )
        print(f"load average after timing: {os.getloadavg()[0]:.2f}")
    finally:
        for process in processes:
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=7)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
