"""Remote-read response encoding throughput: 2,000 series x 240 samples (1 h at 15 s).

Run: .venv/bin/python benchmarks/remote_read_codec.py [--series N] [--samples N] [--repeat N]
Prints the best of --repeat runs for the SAMPLES response (encode, then snappy) and for the
STREAMED_XOR_CHUNKS frames (XOR chunks + framing + CRC32C), and once, as a baseline, the same
SAMPLES response built with upb message objects. Values are a gauge-like random walk
rounded to 2 decimals plus a counter, so the chunks look like real data rather than noise.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from gateway._pb.prometheus import remote_pb2 as pb
from gateway.model.series import SeriesData
from gateway.remote import snappy
from gateway.remote.read_codec import encode_samples_response, iter_chunked_frames
from gateway.remote.xor_chunk import split_chunks_many


def make_series(count: int, samples: int) -> list[SeriesData]:
    """Deterministic series with jittered 15 s scrapes, half gauges, half counters."""
    rng = np.random.default_rng(42)
    start = 1_700_000_000_000
    series = []
    for index in range(count):
        jitter = rng.integers(-3, 4, samples)
        stamps = start + np.arange(samples, dtype=np.int64) * 15_000 + jitter
        if index % 2:
            values = np.cumsum(rng.integers(0, 50, samples)).astype(np.float64)
        else:
            values = np.round(50 + np.cumsum(rng.normal(0, 1, samples)), 2)
        labels = (
            ("__name__", f"metric_{index % 50}"),
            ("instance", f"host-{index % 200}:9100"),
            ("job", "node"),
            ("series", str(index)),
        )
        series.append(SeriesData(labels, stamps, values))
    return series


def best_of(repeat: int, work: Callable[[], object]) -> float:
    """The fastest wall-clock time of `repeat` runs of `work`."""
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        work()
        times.append(time.perf_counter() - began)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--series", type=int, default=2000)
    parser.add_argument("--samples", type=int, default=240)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    series = make_series(args.series, args.samples)
    total = args.series * args.samples

    body = encode_samples_response([series])
    compressed = snappy.compress(body)
    frames = list(iter_chunked_frames(0, series, 1 << 20))
    streamed = sum(map(len, frames))

    def report(name: str, seconds: float, size: int) -> None:
        print(
            f"{name:<38} {seconds * 1e3:8.1f} ms  {total / seconds / 1e6:6.2f} M samples/s"
            f"  {size / 1e6:7.2f} MB  {size / total:5.2f} B/sample"
        )

    print(f"{args.series} series x {args.samples} samples = {total} samples, best of {args.repeat}")
    report(
        "SAMPLES: ReadResponse",
        best_of(args.repeat, lambda: encode_samples_response([series])),
        len(body),
    )
    report(
        "SAMPLES: ReadResponse + snappy",
        best_of(args.repeat, lambda: snappy.compress(encode_samples_response([series]))),
        len(compressed),
    )
    columns = [(one.timestamps, one.values) for one in series]
    report(
        "XOR chunks only (256 series a call)",
        best_of(
            args.repeat,
            lambda: [split_chunks_many(columns[i : i + 256]) for i in range(0, len(columns), 256)],
        ),
        streamed,
    )
    report(
        "STREAMED_XOR_CHUNKS: frames",
        best_of(args.repeat, lambda: list(iter_chunked_frames(0, series, 1 << 20))),
        streamed,
    )
    print(f"{len(frames)} frames")
    baseline = best_of(1, lambda: upb_response(series))
    report("baseline: same, upb messages (1 run)", baseline, len(body))


def upb_response(series: list[SeriesData]) -> bytes:
    """The same SAMPLES response built with protobuf message objects, for comparison."""
    response = pb.ReadResponse()
    result = response.results.add()
    for one in series:
        timeseries = result.timeseries.add()
        timeseries.labels.extend(
            pb.Label(name=name.encode(), value=value.encode()).SerializeToString()
            for name, value in one.labels
        )
        for stamp, value in zip(one.timestamps.tolist(), one.values.tolist(), strict=True):
            timeseries.samples.add(timestamp=stamp, value=value)
    return response.SerializeToString()


if __name__ == "__main__":
    main()
