"""Remote-read through the HTTP handler: 2,000 series x 1 h at 15 s, SAMPLES and streamed.

Loads the series (realistic labels, jittered 15 s scrapes, gauges and counters) through
`write_batch` into a fresh embedded store, serves the real app on a loopback port, and times
`POST /api/v1/read` end to end (request, selection, encoding, transfer, reading the body) for
a SAMPLES and a STREAMED_XOR_CHUNKS response, printing median and best latency and samples/s.

    .venv/bin/python -m benchmarks.remote_read [--series 2000] [--samples 240] [--repeat 7]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time

import aiohttp
import numpy as np
from aiohttp import web

from benchmarks.remote_read_codec import make_series
from gateway._pb.prometheus import remote_pb2 as pb
from gateway.app import create_app
from gateway.config import load
from gateway.model.labels import series_hash
from gateway.remote import snappy
from gateway.storage.clickhouse import ClickHouse, migrate
from gateway.storage.schema import Layout
from gateway.storage.writer import NewSeries, TenantSamples, WriteBatch, write_batch

TENANT = "bench"
DATABASE = "bench"
SHARDS = 2


def load_store(dsn: str, series_count: int, samples: int) -> tuple[int, int]:
    """Write the series; returns (first, last) sample timestamp."""
    layout = Layout(database=DATABASE, sample_shards=SHARDS)
    store = ClickHouse(dsn, threads=1)
    try:
        store.run_sync(lambda client: migrate(client, layout))
        data = make_series(series_count, samples)
        news, parts = [], []
        for one in data:
            labels = (*one.labels[:1], ("bench", "rr"), *one.labels[1:])
            sid = series_hash(labels)
            news.append(NewSeries(TENANT, sid, labels, int(one.timestamps[0]),
                                  int(one.timestamps[-1])))
            parts.append(TenantSamples(TENANT, np.full(len(one.timestamps), sid, np.uint64),
                                       one.timestamps, one.values))
        batch = WriteBatch(parts, news, [])
        store.run_sync(lambda client: write_batch(client, layout, batch))
        for table in layout.samples_tables:
            store.run_sync(lambda client, t=table: client.command(f"OPTIMIZE TABLE {t} FINAL"))
        first = min(int(one.timestamps[0]) for one in data)
        last = max(int(one.timestamps[-1]) for one in data)
        return first, last
    finally:
        store.close()


def read_body(start: int, end: int, accepted: list[int]) -> bytes:
    query = pb.Query(
        start_timestamp_ms=start,
        end_timestamp_ms=end,
        matchers=[pb.LabelMatcher(type=pb.LabelMatcher.EQ, name="bench", value="rr")],
    )
    request = pb.ReadRequest(queries=[query], accepted_response_types=accepted)
    return snappy.compress(request.SerializeToString())


async def measure(dsn: str, first: int, last: int, total: int, repeat: int) -> None:
    config = load(None, {"storage.dsn": dsn, "storage.database": DATABASE,
                         "storage.sample_shards": SHARDS})
    runner = web.AppRunner(create_app(config))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}/api/v1/read"
    headers = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
               "X-Scope-OrgID": TENANT}
    try:
        async with aiohttp.ClientSession() as session:
            for name, accepted in (("SAMPLES", [0]), ("STREAMED_XOR_CHUNKS", [1])):
                body = read_body(first, last, accepted)
                times, size = [], 0
                for _ in range(repeat + 1):  # the first run warms caches and is not counted
                    began = time.perf_counter()
                    async with session.post(url, data=body, headers=headers) as response:
                        payload = await response.read()
                        assert response.status == 200, payload[:200]
                    times.append(time.perf_counter() - began)
                    size = len(payload)
                median, best = statistics.median(times[1:]), min(times[1:])
                print(f"{name:<20} median {median * 1e3:7.1f} ms  best {best * 1e3:7.1f} ms  "
                      f"{total / median / 1e6:5.2f} M samples/s (median)  "
                      f"{size / 1e6:6.2f} MB on the wire")
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--series", type=int, default=2000)
    parser.add_argument("--samples", type=int, default=240)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    dsn = "chdb://" + tempfile.mkdtemp(prefix="remote-read-")
    first, last = load_store(dsn, args.series, args.samples)
    total = args.series * args.samples
    print(f"{args.series} series x {args.samples} samples = {total} samples, "
          f"median and best of {args.repeat}")
    asyncio.run(measure(dsn, first, last, total, args.repeat))


if __name__ == "__main__":
    main()
