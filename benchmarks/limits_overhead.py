"""Limits overhead on the ingest path, measured in-process on CPU time (robust on a busy box).

Decodes the same realistic remote-write requests as benchmarks/ingest.py and prepares each one
twice, interleaved: without limits (`admission=None`, what `limits.enabled: false` does) and with
every limit on (budgets high enough to admit everything). Reports CPU time per sample of the
decode and of each prepare, and the overhead on decode+prepare (the gateway's CPU per request,
storage inserts aside).

    .venv/bin/python benchmarks/limits_overhead.py --series 120000 --rounds 5
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.ingest import RequestBuilder, realistic_label_sets
from gateway.ingest.known_series import KnownSeries
from gateway.ingest.prepare import prepare
from gateway.limits.admission import Admission
from gateway.limits.distinct import DistinctValues
from gateway.limits.model import Limits
from gateway.limits.tracker import ActiveSeriesTracker
from gateway.remote import snappy
from gateway.remote.write_codec import DecodedWrite, decode_v1

ALL_ON = Limits(
    max_global_series_per_user=10_000_000, max_global_series_per_metric=1_000_000,
    max_label_names_per_series=30, max_label_name_length=1024, max_label_value_length=2048,
    ingestion_rate=1e9, max_samples_per_request=100_000, max_metadata_per_user=100_000,
    max_values_per_label={"pod": 1_000_000, "user_id": 0}, metric_budgets={"app_x": 5},
)


class State:
    """What one gateway keeps between requests: known series and, with limits, the tracker."""

    def __init__(self, with_limits: bool) -> None:
        self.with_limits = with_limits
        self.known = KnownSeries(10_000_000)
        self.tracker = ActiveSeriesTracker(3600)
        self.values, self.families = DistinctValues(), DistinctValues()
        self.seconds = 0.0

    def prepare(self, decoded: DecodedWrite) -> int:
        started = time.process_time()
        admission = (
            Admission("t", ALL_ON, self.tracker, self.values, self.families)
            if self.with_limits else None
        )
        prepared = prepare(decoded, "t", self.known, admission)
        self.known.remember("t", prepared.new_keys)
        self.seconds += time.process_time() - started
        return len(prepared.samples)


def phase(bodies: list[bytes], states: list[State]) -> tuple[float, list[float], int]:
    """Decode each body once, prepare it in every state, interleaved so load noise is shared."""
    decode_seconds, samples = 0.0, 0
    for state in states:
        state.seconds = 0.0
    for body in bodies:
        started = time.process_time()
        decoded = decode_v1(snappy.decompress(body, 1 << 26))
        decode_seconds += time.process_time() - started
        for state in states:
            count = state.prepare(decoded)
        samples += count
    return decode_seconds, [state.seconds for state in states], samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=120_000)
    parser.add_argument("--per-request", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    builder = RequestBuilder(realistic_label_sets(args.series), args.per_request)
    bodies = [
        builder.body(first, 1_700_000_000_000)[0]
        for first in range(0, args.series, args.per_request)
    ]
    states = [State(False), State(True)]
    for name in ["new series"] + [f"steady {i + 1}" for i in range(args.rounds)]:
        decode, (off, on), samples = phase(bodies, states)
        base = decode + off
        print(
            f"{name:>12}: decode {decode / samples * 1e6:5.2f} us/sample, prepare off"
            f" {off / samples * 1e6:5.2f}, on {on / samples * 1e6:5.2f} us/sample;"
            f" decode+prepare overhead {(decode + on) / base * 100 - 100:+5.1f}%"
        )


if __name__ == "__main__":
    main()
