"""Remote-write into the real gateway and read it back through the series API and storage."""

from __future__ import annotations

import aiohttp
import numpy as np

from gateway._pb.prometheus import remote_pb2
from gateway.app_keys import LAYOUT
from gateway.remote import snappy
from gateway.storage.clickhouse import ClickHouse
from tests.conftest import FIXTURES, RunningGateway

STALE_NAN_BITS = 0x7FF0000000000002
RW1_HEADERS = {
    "Content-Type": "application/x-protobuf",
    "Content-Encoding": "snappy",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}


async def post_write(gateway: RunningGateway, body: bytes, **headers: str) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            gateway.url + "/api/v1/write", data=body, headers={**RW1_HEADERS, **headers}
        ) as response,
    ):
        return response.status, await response.text()


async def get_json(gateway: RunningGateway, path: str, **headers: str) -> dict:  # type: ignore[type-arg]
    async with (
        aiohttp.ClientSession() as session,
        session.get(gateway.url + path, headers=headers) as response,
    ):
        return await response.json()  # type: ignore[no-any-return]


async def test_fixture_write_is_stored_and_listed(
    gateway: RunningGateway, session_store: ClickHouse
) -> None:
    for name in ("rw_1.bin", "rw_2.bin", "rw_4_stale_markers.bin"):
        status, text = await post_write(gateway, (FIXTURES / name).read_bytes())
        assert status == 204, text
    layout = gateway.app[LAYOUT]
    stored = session_store.run_sync(
        lambda c: sum(
            c.command(f"SELECT count() FROM {table} FINAL") for table in layout.samples_tables
        )
    )
    assert stored == 1500
    body = await get_json(gateway, "/api/v1/series?match[]=go_gc_duration_seconds")
    assert body["status"] == "success"
    assert {s["quantile"] for s in body["data"]} == {"0", "0.25", "0.5", "0.75", "1"}
    assert {s["replica"] for s in body["data"]} == {"r1"}
    assert {s["job"] for s in body["data"]} <= {"node", "prometheus"}


async def test_stale_markers_and_nans_are_stored_bit_exact(
    gateway: RunningGateway, session_store: ClickHouse
) -> None:
    body = (FIXTURES / "rw_4_stale_markers.bin").read_bytes()
    status, _ = await post_write(gateway, body)
    assert status == 204
    # Independent decode with the full protobuf schema, not the gateway's fast path.
    request = remote_pb2.WriteRequest.FromString(snappy.decompress(body, 1 << 26))
    sent = sorted(
        int(np.float64(sample.value).view(np.uint64))
        for series in request.timeseries
        for sample in series.samples
    )
    assert STALE_NAN_BITS in sent, "the fixture carries stale markers"
    layout = gateway.app[LAYOUT]
    stored = session_store.run_sync(
        lambda c: sorted(
            row[0]
            for table in layout.samples_tables
            for row in c.query(f"SELECT reinterpretAsUInt64(value) FROM {table}").result_rows
        )
    )
    assert stored == sent


def rw1_body(series: list[tuple[dict[str, str], list[tuple[int, float]]]]) -> bytes:
    request = remote_pb2.WriteRequest()
    for labels, samples in series:
        one = request.timeseries.add()
        one.labels.extend(
            remote_pb2.Label(name=name.encode(), value=value.encode()).SerializeToString()
            for name, value in sorted(labels.items())
        )
        for timestamp, value in samples:
            one.samples.add(timestamp=timestamp, value=value)
    return snappy.compress(request.SerializeToString())


async def series_between(gateway: RunningGateway, match: str, start_ms: int, end_ms: int) -> int:
    body = await get_json(
        gateway, f"/api/v1/series?match[]={match}&start={start_ms / 1000}&end={end_ms / 1000}"
    )
    assert body["status"] == "success", body
    return len(body["data"])


T = 1_700_000_000_000
DAY = 86_400_000


async def test_backfilled_samples_of_a_known_series_are_found_in_their_range(
    gateway: RunningGateway,
) -> None:
    labels = {"__name__": "backfilled", "job": "a"}
    assert (await post_write(gateway, rw1_body([(labels, [(T, 1.0)])])))[0] == 204
    # Known now: an older sample must widen the series' time span, not hide behind the cache.
    assert (await post_write(gateway, rw1_body([(labels, [(T - 3 * DAY, 2.0)])])))[0] == 204
    assert await series_between(gateway, "backfilled", T - 3 * DAY - 60_000, T - 3 * DAY) == 1
    body = await get_json(gateway, f"/api/v1/query?query=backfilled&time={(T - 3 * DAY) / 1000}")
    assert [r["value"][1] for r in body["data"]["result"]] == ["2"]
    # And much newer samples refresh last_seen, so a range after the first sample finds it.
    later = T + 5 * DAY
    assert (await post_write(gateway, rw1_body([(labels, [(later, 3.0)])])))[0] == 204
    assert await series_between(gateway, "backfilled", later - 60_000, later) == 1
    body = await get_json(gateway, f"/api/v1/query?query=backfilled&time={later / 1000}")
    assert [r["value"][1] for r in body["data"]["result"]] == ["3"]


async def test_refused_timestamps_neither_register_nor_widen_a_series(
    gateway: RunningGateway, session_store: ClickHouse
) -> None:
    too_late = 10_413_792_000_000  # 2300-01-01, past what DateTime64(3) stores
    body = rw1_body(
        [
            ({"__name__": "only_bad", "job": "a"}, [(too_late, 1.0)]),
            ({"__name__": "partly_bad", "job": "a"}, [(-(2**62), 1.0), (T, 2.0)]),
        ]
    )
    status, text = await post_write(gateway, body)
    assert status == 400 and "only_bad" in text, text
    layout = gateway.app[LAYOUT]
    rows = session_store.run_sync(
        lambda c: c.query(
            f"SELECT metric_name, toUnixTimestamp64Milli(min(first_seen)),"
            f" toUnixTimestamp64Milli(max(last_seen)) FROM {layout.series_table}"
            " GROUP BY metric_name ORDER BY metric_name"
        ).result_rows
    )
    assert rows == [("partly_bad", T, T)]


async def test_ingest_counters_per_tenant(gateway: RunningGateway) -> None:
    status, _ = await post_write(gateway, (FIXTURES / "rw_3_metadata.bin").read_bytes())
    assert status == 204
    async with (
        aiohttp.ClientSession() as session,
        session.get(gateway.url + "/metrics") as response,
    ):
        text = await response.text()
    values = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line.startswith("gateway_ingest_") and 'tenant="anonymous"' in line
    }
    received = values['gateway_ingest_received_metadata_total{tenant="anonymous"}']
    assert received > 0
    assert values['gateway_ingest_stored_metadata_total{tenant="anonymous"}'] == received
    assert (
        values['gateway_ingest_stored_samples_total{tenant="anonymous"}']
        == values['gateway_ingest_received_samples_total{tenant="anonymous"}']
    )
