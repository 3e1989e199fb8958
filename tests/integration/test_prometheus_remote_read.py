"""A real Prometheus reading the gateway through remote-read answers like a Prometheus holding
the same data itself.

One generator remote-writes the same samples (off the scrape grid, counters with a reset,
gauges, several jobs) into Prometheus A (remote-write receiver) and into the gateway.
Prometheus B has an empty TSDB and `remote_read` (read_recent) pointing at the gateway. Instant
and range queries through B must equal A's.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import aiohttp

from gateway._pb.prometheus import remote_pb2 as pb
from gateway.remote import snappy
from tests.conftest import RunningGateway
from tests.integration.helpers import running_gateway
from tests.prometheus_process import PrometheusProcess

STEP_MS = 15_000
STEPS = 160  # 40 minutes
OFF_GRID_MS = 123
SAMPLES_PER_REQUEST = 20
JOBS = ("api", "web", "db")
INSTANCES = ("i-0", "i-1")
RELATIVE_TOLERANCE = 1e-9

QUERIES = (
    "up",
    "rate(gen_requests_total[5m])",
    "sum by (job) (rate(gen_requests_total[5m]))",
    'gen_temperature_celsius{job=~"api|db"}',
    "max_over_time(gen_temperature_celsius[3m])",
)

Key = tuple[tuple[str, str], ...]


def generated(first_ms: int) -> dict[Key, list[tuple[int, float]]]:
    """Samples per series: every 15 s plus 123 ms and a per-series skew."""
    data: dict[Key, list[tuple[int, float]]] = {}
    for j, job in enumerate(JOBS):
        for i, instance in enumerate(INSTANCES):
            skew = OFF_GRID_MS + 17 * j + 5 * i
            stamps = [first_ms + skew + step * STEP_MS for step in range(STEPS)]
            base = (("instance", instance), ("job", job))
            data[(("__name__", "up"), *base)] = [
                (t, 0.0 if (step // 20 + i + j) % 5 == 0 else 1.0)
                for step, t in enumerate(stamps)
            ]
            data[(("__name__", "gen_temperature_celsius"), *base)] = [
                (t, 20.0 + 5 * math.sin(step / 7 + j) + i / 3) for step, t in enumerate(stamps)
            ]
            for code in ("200", "500"):
                total = 0.0
                samples = []
                for step, t in enumerate(stamps):
                    if job == "web" and code == "200" and step == 90:
                        total = 0.0  # a counter reset (the process restarted)
                    total += (step % 7 + 1) * (3.5 if code == "200" else 0.25) * (j + 1 + i)
                    samples.append((t, total))
                labels = (("__name__", "gen_requests_total"), ("code", code), *base)
                data[labels] = samples
    return data


def write_bodies(data: dict[Key, list[tuple[int, float]]]) -> list[bytes]:
    """Remote-write 1.0 bodies in time order, each with a slice of every series."""
    bodies = []
    for offset in range(0, STEPS, SAMPLES_PER_REQUEST):
        request = pb.WriteRequest(
            timeseries=[
                pb.TimeSeries(
                    labels=[pb.Label(name=n.encode(), value=v.encode()).SerializeToString()
                            for n, v in key],
                    samples=[pb.Sample(timestamp=t, value=x)
                             for t, x in samples[offset : offset + SAMPLES_PER_REQUEST]],
                )
                for key, samples in data.items()
            ]
        )
        bodies.append(snappy.compress(request.SerializeToString()))
    return bodies


async def push(session: aiohttp.ClientSession, url: str, bodies: list[bytes]) -> None:
    headers = {
        "Content-Type": "application/x-protobuf",
        "Content-Encoding": "snappy",
        "X-Prometheus-Remote-Write-Version": "0.1.0",
    }
    for body in bodies:
        async with session.post(url, data=body, headers=headers) as response:
            assert response.status in (200, 204), (url, response.status, await response.text())


async def api(session: aiohttp.ClientSession, base: str, path: str, **params: str) -> Any:
    async with session.get(f"{base}/api/v1/{path}", params=params) as response:
        body = await response.json()
    assert body["status"] == "success", body
    assert not body.get("warnings"), body  # remote-read errors come back as warnings
    return body["data"]


def by_series(data: Any) -> dict[Key, list[tuple[float, float]]]:
    result = data["result"]
    if data["resultType"] == "vector":
        return {tuple(sorted(r["metric"].items())): [(r["value"][0], float(r["value"][1]))]
                for r in result}
    return {tuple(sorted(r["metric"].items())): [(t, float(v)) for t, v in r["values"]]
            for r in result}


def assert_same(query: str, expected: Any, actual: Any) -> None:
    want, got = by_series(expected), by_series(actual)
    assert want, f"{query}: Prometheus A returned nothing; the test data is wrong"
    assert sorted(got) == sorted(want), f"{query}: series differ"
    for key, points in want.items():
        other = got[key]
        assert [t for t, _ in other] == [t for t, _ in points], f"{query} {key}: timestamps"
        for (t, a), (_, b) in zip(points, other, strict=True):
            same = math.isclose(a, b, rel_tol=RELATIVE_TOLERANCE, abs_tol=0.0) or (
                math.isnan(a) and math.isnan(b)
            )
            assert same, f"{query} {key} at {t}: A says {a}, via the gateway {b}"


async def test_remote_read_through_prometheus_equals_local_prometheus(
    config: Any, tmp_path: Path
) -> None:
    now_ms = int(time.time() * 1000)
    first_ms = (now_ms - STEPS * STEP_MS) // STEP_MS * STEP_MS
    data = generated(first_ms)
    bodies = write_bodies(data)
    last_ms = max(samples[-1][0] for samples in data.values())

    async with running_gateway(config) as gateway:
        holder = PrometheusProcess(
            tmp_path / "holder", {"global": {"scrape_interval": "15s"}},
            extra_flags=["--web.enable-remote-write-receiver"],
        )
        reader = PrometheusProcess(tmp_path / "reader", _reader_config(gateway))
        async with holder, reader, aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=30)
        ) as session:
            await push(session, holder.url + "/api/v1/write", bodies)
            await push(session, gateway.url + "/api/v1/write", bodies)
            await _compare(session, holder.url, reader.url, first_ms, last_ms)


def _reader_config(gateway: RunningGateway) -> dict[str, Any]:
    return {
        "global": {"scrape_interval": "15s"},
        "remote_read": [{"url": gateway.url + "/api/v1/read", "read_recent": True}],
    }


async def _compare(
    session: aiohttp.ClientSession, holder: str, reader: str, first_ms: int, last_ms: int
) -> None:
    instants = [last_ms - 37_500, first_ms + 20 * 60_000 + 1, last_ms + 60_000]
    for query in QUERIES:
        for at_ms in instants:
            params = {"query": query, "time": f"{at_ms / 1000:.3f}"}
            expected = await api(session, holder, "query", **params)
            actual = await api(session, reader, "query", **params)
            assert_same(f"{query} @ {at_ms}", expected, actual)
        for step in ("15", "60", "7.5"):
            params = {
                "query": query,
                "start": f"{(first_ms + 6 * 60_000) / 1000:.3f}",
                "end": f"{last_ms / 1000:.3f}",
                "step": step,
            }
            expected = await api(session, holder, "query_range", **params)
            actual = await api(session, reader, "query_range", **params)
            assert_same(f"{query} step {step}", expected, actual)
    # Behind /api/v1/series Prometheus reads remotely with hints func "series" (no samples).
    window = {"start": f"{first_ms / 1000:.3f}", "end": f"{last_ms / 1000:.3f}"}
    for selector in ("up", '{__name__=~"up|gen_.*", job="api"}'):
        expected = await api(session, holder, "series", **{"match[]": selector}, **window)
        actual = await api(session, reader, "series", **{"match[]": selector}, **window)
        assert expected and sorted(map(sorted_items, actual)) == sorted(
            map(sorted_items, expected)
        ), selector


def sorted_items(labels: dict[str, str]) -> Key:
    return tuple(sorted(labels.items()))
