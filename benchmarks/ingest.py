"""Remote-write ingest benchmark: a load generator against a gateway on the embedded store.

By default it starts `metrics-gateway serve` on a fresh data directory (a separate process,
loopback only), writes realistic remote-write 1.0 requests with several concurrent senders,
and prints accepted samples/s, request latency percentiles, the gateway's CPU seconds and peak
RSS. Phase "new series" registers every series; phase "steady" re-sends them with new samples,
which is what a Prometheus fleet does all day.

    .venv/bin/python benchmarks/ingest.py --series 120000 --seconds 60
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import numpy as np

from gateway._pb.prometheus import remote_pb2
from gateway.remote.snappy import compress

HEADERS = {
    "Content-Type": "application/x-protobuf",
    "Content-Encoding": "snappy",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}


def realistic_label_sets(count: int, seed: int = 7) -> list[list[tuple[str, str]]]:
    """Kubernetes-like series: 8-12 labels each, ~60 metric names."""
    rng = random.Random(seed)
    metrics = [
        f"app_{kind}_{i}"
        for i in range(20)
        for kind in ("requests_total", "latency_seconds_bucket", "memory_bytes")
    ]
    result = []
    for index in range(count):
        pod = index // 60
        labels = [
            ("__name__", metrics[index % len(metrics)]),
            ("cluster", f"prod-{pod % 3}"),
            ("namespace", f"team-{pod % 40}"),
            ("job", f"service-{pod % 200}"),
            ("pod", f"service-{pod % 200}-{pod:06x}-{rng.randrange(16**5):05x}"),
            ("instance", f"10.{pod % 256}.{(pod // 256) % 256}.{index % 60}:8080"),
            ("container", "app"),
            ("region", f"eu-west-{pod % 3 + 1}"),
        ]
        extra = index % 5
        if extra >= 1:
            labels.append(("method", ("GET", "POST", "PUT")[index % 3]))
        if extra >= 2:
            labels.append(("code", ("200", "404", "500")[index % 3]))
        if extra >= 3:
            labels.append(("le", ("0.1", "0.5", "1", "+Inf")[index % 4]))
        if extra >= 4:
            labels.append(("version", f"v1.{index % 7}.0"))
        result.append(sorted(labels))
    return result


class RequestBuilder:
    """Builds remote-write bodies cheaply, so the load generator leaves CPU to the gateway.

    Each request's bytes are laid out once as a template; a new body only writes the values and
    the timestamp into their fixed offsets (vectorised) and compresses.
    """

    TIMESTAMP_BYTES = 6  # a varint of any millisecond timestamp between 2004 and 2039

    def __init__(self, label_sets: list[list[tuple[str, str]]], per_request: int) -> None:
        self.per_request = per_request
        self.values = np.random.default_rng(1).random(len(label_sets)) * 1000
        self.templates: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for first in range(0, len(label_sets), per_request):
            parts, value_at, time_at, size = [], [], [], 0
            for labels in label_sets[first : first + per_request]:
                prefix = b"".join(
                    _field(
                        1, remote_pb2.Label(name=n.encode(), value=v.encode()).SerializeToString()
                    )
                    for n, v in labels
                )
                sample = b"\x09" + bytes(8) + b"\x10" + bytes(self.TIMESTAMP_BYTES)
                series = _field(1, prefix + _field(2, sample))
                value_at.append(size + len(series) - len(sample) + 1)
                time_at.append(size + len(series) - self.TIMESTAMP_BYTES)
                parts.append(series)
                size += len(series)
            self.templates.append(
                (
                    np.frombuffer(b"".join(parts), np.uint8).copy(),
                    np.array(value_at),
                    np.array(time_at),
                )
            )

    def body(self, first: int, timestamp_ms: int) -> tuple[bytes, int]:
        template, value_at, time_at = self.templates[first // self.per_request]
        count = len(value_at)
        values = self.values[first : first + count]
        values += 1.0
        out = template.copy()
        out[value_at[:, None] + np.arange(8)] = values.view(np.uint8).reshape(count, 8)
        ts = _varint(timestamp_ms)
        assert len(ts) == self.TIMESTAMP_BYTES
        out[time_at[:, None] + np.arange(self.TIMESTAMP_BYTES)] = np.frombuffer(ts, np.uint8)
        return compress(out.tobytes()), count


def _varint(value: int) -> bytes:
    out = bytearray()
    value &= (1 << 64) - 1
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


@dataclass
class Stats:
    samples: int = 0
    requests: int = 0
    errors: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)


async def send_round(
    session: aiohttp.ClientSession,
    url: str,
    builder: RequestBuilder,
    total: int,
    timestamp_ms: int,
    concurrency: int,
    stats: Stats,
    deadline: float,
) -> None:
    starts = list(range(0, total, builder.per_request))
    queue: asyncio.Queue[int] = asyncio.Queue()
    for start in starts:
        queue.put_nowait(start)

    async def sender() -> None:
        while not queue.empty() and time.monotonic() < deadline:
            start = queue.get_nowait()
            body, count = builder.body(start, timestamp_ms)
            began = time.perf_counter()
            async with session.post(url, data=body, headers=HEADERS) as response:
                await response.read()
                status = response.status
            stats.latencies.append(time.perf_counter() - began)
            stats.requests += 1
            if status == 204:
                stats.samples += count
            else:
                stats.errors[status] = stats.errors.get(status, 0) + 1

    await asyncio.gather(*(sender() for _ in range(concurrency)))


def process_usage(pid: int) -> tuple[float, int]:
    """(CPU seconds, peak RSS bytes) of a process from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    peak = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1]) * 1024
    return cpu, peak


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_ready(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(url + "/-/ready") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise SystemExit("gateway did not become ready")


def report(name: str, stats: Stats, seconds: float, cpu: float) -> dict[str, float]:
    lat = np.array(stats.latencies) * 1000 if stats.latencies else np.zeros(1)
    rate = stats.samples / seconds if seconds else 0.0
    print(
        f"{name:>12}: {stats.samples:>10,} samples in {seconds:6.1f}s = {rate:>10,.0f} samples/s;"
        f" {stats.requests} requests, p50 {np.percentile(lat, 50):.1f} ms,"
        f" p99 {np.percentile(lat, 99):.1f} ms; gateway CPU {cpu:.1f}s"
        f" ({cpu / seconds:.2f} cores); errors {stats.errors or 'none'}"
    )
    return {"samples_per_second": rate}


async def run(args: argparse.Namespace) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    process = None
    url = args.url
    try:
        if url is None:
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            extra: list[str] = []
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gateway",
                    "serve",
                    "--listen",
                    f"127.0.0.1:{port}",
                    "--storage",
                    f"chdb://{data_dir}",
                    "--log-level",
                    "warning",
                    *extra,
                    *args.gateway_args,
                ],
            )
            await wait_ready(url)
        print(f"building {args.series:,} series ({args.per_request} per request)...")
        builder = RequestBuilder(realistic_label_sets(args.series), args.per_request)
        write_url = url + "/api/v1/write"
        timestamp = int(time.time() * 1000) - 3_600_000
        connector = aiohttp.TCPConnector(limit=args.concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:
            cpu0 = process_usage(process.pid)[0] if process else 0.0
            stats, began = Stats(), time.perf_counter()
            await send_round(
                session,
                write_url,
                builder,
                args.series,
                timestamp,
                args.concurrency,
                stats,
                time.monotonic() + 600,
            )
            seconds = time.perf_counter() - began
            cpu1 = process_usage(process.pid)[0] if process else 0.0
            report("new series", stats, seconds, cpu1 - cpu0)
            stats, began = Stats(), time.perf_counter()
            deadline = time.monotonic() + args.seconds
            while time.monotonic() < deadline:
                timestamp += 15_000
                await send_round(
                    session,
                    write_url,
                    builder,
                    args.series,
                    timestamp,
                    args.concurrency,
                    stats,
                    deadline,
                )
            seconds = time.perf_counter() - began
            cpu2 = process_usage(process.pid)[0] if process else 0.0
            report("steady", stats, seconds, cpu2 - cpu1)
        if process is not None:
            print(f"gateway peak RSS: {process_usage(process.pid)[1] / 2**20:.0f} MiB")
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=60)
        shutil.rmtree(data_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="an already running gateway (default: start one)")
    parser.add_argument("--series", type=int, default=120_000)
    parser.add_argument("--per-request", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60.0, help="steady-phase duration")
    parser.add_argument("gateway_args", nargs="*", help="extra flags for the started gateway")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
