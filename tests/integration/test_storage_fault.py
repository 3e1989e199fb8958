"""A real storage outage while a real Prometheus remote-writes: nothing lost, nothing doubled.

The fault: through the same embedded ClickHouse engine, `DETACH TABLE` the gateway's sample
tables, so every insert fails with UNKNOWN_TABLE (a real storage error; readiness, which only
probes the schema version, stays green). The gateway must answer 503, Prometheus must retry the
same bodies, and after `ATTACH TABLE` every sample Prometheus scraped in a window spanning the
outage must be in ClickHouse exactly once.

Two variants: all sample tables detached (a batch fails before anything is inserted) and only the
last one (a batch fails half-way: the shards inserted before it are inserted again by the retry,
so the raw table holds duplicate rows; the schema's ReplacingMergeTree makes them one, and
readers de-duplicate with FINAL). "No duplicates" therefore means: with FINAL, exactly one row
per (series, timestamp), and that set equals Prometheus' own samples. Raw counts are printed.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gateway.app_keys import LAYOUT
from gateway.storage.clickhouse import ClickHouse, Client
from gateway.storage.schema import Layout
from tests.conftest import make_config
from tests.integration.helpers import gateway_metrics, running_gateway, wait_for
from tests.prometheus_process import (
    PrometheusProcess,
    metric_sum,
    remote_write,
    self_scrape_config,
)

TENANT = "team-a"
TOKEN = "token-of-team-a"
QUEUE = "gateway"
STALE_NAN_BITS = 0x7FF0000000000002
OUTAGE_SECONDS = 4.0
AFTER_SECONDS = 3.0
WAIT_SECONDS = 30.0

SeriesKey = tuple[tuple[str, str], ...]
Samples = dict[SeriesKey, list[tuple[int, float]]]


@dataclass(frozen=True)
class Stored:
    samples: Samples
    """Per series, the (ms, value) rows read with FINAL, stale markers left out."""
    final_rows: int
    raw_rows: int
    distinct_rows: int

    def __repr__(self) -> str:
        return (
            f"Stored({len(self.samples)} series, final_rows={self.final_rows}, "
            f"raw_rows={self.raw_rows}, distinct_rows={self.distinct_rows})"
        )


def now_ms() -> int:
    return int(time.time() * 1000)


def read_stored(client: Client, layout: Layout, start_ms: int, end_ms: int) -> Stored:
    """The tenant's samples with `start <= timestamp <= end` (Prometheus 2.x range bounds)."""
    params = {"tenant": TENANT, "start": start_ms, "end": end_ms}
    labels = {
        int(series_id): tuple(sorted(series_labels.items()))
        for series_id, series_labels in client.query(
            f"SELECT series_id, any(labels) FROM {layout.series_table} "
            "WHERE tenant = {tenant:String} GROUP BY series_id",
            parameters=params,
        ).result_rows
    }
    where = (
        "tenant = {tenant:String}"
        " AND timestamp >= fromUnixTimestamp64Milli({start:Int64})"
        " AND timestamp <= fromUnixTimestamp64Milli({end:Int64})"
        f" AND reinterpretAsUInt64(value) != {STALE_NAN_BITS}"
    )
    samples: Samples = defaultdict(list)
    final_rows = raw_rows = distinct_rows = 0
    for table in layout.samples_tables:
        rows = client.query(
            f"SELECT series_id, toUnixTimestamp64Milli(timestamp), value FROM {table} FINAL "
            f"WHERE {where}",
            parameters=params,
        ).result_rows
        for series_id, timestamp, value in rows:
            samples[labels.get(int(series_id), (("?series_id", str(series_id)),))].append(
                (int(timestamp), float(value))
            )
        final_rows += len(rows)
        raw, distinct = client.query(
            f"SELECT count(), uniqExact(series_id, timestamp) FROM {table} WHERE {where}",
            parameters=params,
        ).result_rows[0]
        raw_rows += int(raw)
        distinct_rows += int(distinct)
    return Stored(
        {key: sorted(rows) for key, rows in samples.items()}, final_rows, raw_rows, distinct_rows
    )


def missing(expected: Samples, stored: Samples) -> dict[SeriesKey, list[int]]:
    """Timestamps Prometheus has that storage does not, per series."""
    result = {}
    for key, rows in expected.items():
        have = {timestamp for timestamp, _ in stored.get(key, [])}
        lost = [timestamp for timestamp, _ in rows if timestamp not in have]
        if lost:
            result[key] = lost
    return result


def same_value(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def differences(expected: Samples, stored: Samples) -> list[str]:
    """Human-readable differences between two sample sets (empty when equal)."""
    problems = []
    for key in sorted(expected.keys() | stored.keys()):
        want, got = expected.get(key, []), stored.get(key, [])
        name = dict(key).get("__name__", str(key))
        if [t for t, _ in want] != [t for t, _ in got]:
            problems.append(f"{name}: prometheus has {len(want)} samples, storage {len(got)}")
        elif not all(same_value(a, b) for (_, a), (_, b) in zip(want, got, strict=True)):
            problems.append(f"{name}: values differ")
    return problems


async def test_prometheus_retries_through_outage_without_loss_or_duplicates(
    chdb_dsn: str, session_store: ClickHouse, tmp_path: Path, detach_all: bool
) -> None:
    config = make_config(chdb_dsn, **{"auth.tenants": [{"tenant": TENANT, "bearer_token": TOKEN}]})
    async with running_gateway(config) as gateway:
        layout = gateway.app[LAYOUT]
        broken = layout.samples_tables if detach_all else layout.samples_tables[-1:]
        write_url = gateway.url + "/api/v1/write"

        def prometheus_config(address: str) -> dict[str, Any]:
            # One shard: samples are sent in WAL order, so "caught up" is well defined.
            return self_scrape_config(
                address, [remote_write(write_url, QUEUE, bearer_token=TOKEN, max_shards=1)]
            )

        async def stored(start_ms: int, end_ms: int) -> Stored:
            return await session_store.run(lambda c: read_stored(c, layout, start_ms, end_ms))

        async with PrometheusProcess(tmp_path / "prometheus", prometheus_config) as prom:
            await wait_for(
                lambda: stored(0, now_ms() + 60_000), lambda s: s.final_rows > 0,
                timeout=WAIT_SECONDS, what="the first samples to arrive",
            )
            # From here on, everything Prometheus scrapes must reach storage.
            window_start_ms = now_ms()
            await asyncio.sleep(2)
            before = await gateway_metrics(gateway)
            rejected_before = metric_sum(
                before, "gateway_rejected_requests_total", reason="storage", status="503"
            )

            def detach(client: Client) -> None:
                for table in broken:
                    client.command(f"DETACH TABLE {table}")

            def attach(client: Client) -> None:
                for table in broken:
                    client.command(f"ATTACH TABLE {table}")

            outage_started = time.monotonic()
            await session_store.run(detach)
            try:
                during = await wait_for(
                    lambda: gateway_metrics(gateway),
                    lambda m: metric_sum(
                        m, "gateway_rejected_requests_total", reason="storage", status="503"
                    ) >= rejected_before + 3,
                    timeout=WAIT_SECONDS, what="the gateway to refuse writes with 503",
                )
                await asyncio.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - outage_started)))
            finally:
                await session_store.run(attach)
            at_recovery = await stored(window_start_ms, now_ms())
            window_end_ms = now_ms() + int(AFTER_SECONDS * 1000)
            # Let the scrapes up to the window's end be committed in Prometheus' TSDB.
            await asyncio.sleep(AFTER_SECONDS + 2)
            expected = await prom.raw_samples(
                '{__name__=~".+"}', window_end_ms, window_end_ms - window_start_ms
            )
            result = await wait_for(
                lambda: stored(window_start_ms, window_end_ms),
                lambda s: not missing(expected, s.samples),
                timeout=WAIT_SECONDS, what="the gateway to catch up after the outage",
            )
            prom_metrics = await prom.metrics()
        after = await gateway_metrics(gateway)

    expected_count = sum(len(rows) for rows in expected.values())
    print(
        f"window {(window_end_ms - window_start_ms) / 1000:.1f}s, detached {broken}: "
        f"prometheus {expected_count} samples in {len(expected)} series; storage FINAL "
        f"{result.final_rows}, distinct {result.distinct_rows}, raw {result.raw_rows} "
        f"(just after recovery: FINAL {at_recovery.final_rows}, raw {at_recovery.raw_rows})"
    )
    # The fault was real: the gateway refused, counted it, and Prometheus retried.
    assert metric_sum(during, "gateway_storage_errors_total", operation="insert") > 0
    assert metric_sum(
        after, "gateway_rejected_requests_total", reason="storage", status="503"
    ) >= rejected_before + 3
    assert metric_sum(
        prom_metrics, "prometheus_remote_storage_samples_retried_total", remote_name=QUEUE
    ) > 0
    # Prometheus gave up on nothing.
    for name in (
        "prometheus_remote_storage_samples_failed_total",
        "prometheus_remote_storage_samples_dropped_total",
        "prometheus_remote_storage_metadata_failed_total",
    ):
        assert metric_sum(prom_metrics, name, remote_name=QUEUE) == 0, name
    # Nothing lost, nothing extra, nothing doubled (FINAL is how readers see the table).
    assert expected_count > 500, "the window spans several scrapes of hundreds of series"
    assert differences(expected, result.samples) == []
    assert result.final_rows == expected_count
    assert result.distinct_rows == expected_count
    assert result.raw_rows >= result.final_rows


@pytest.fixture(params=[True, False], ids=["all-sample-tables", "last-sample-table"])
def detach_all(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)
