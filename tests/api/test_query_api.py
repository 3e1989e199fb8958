"""`/api/v1/query` and `/api/v1/query_range` answer exactly as Prometheus 2.42 did (fixtures)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from tests.api.test_write_errors import post, rw1, series
from tests.conftest import FIXTURES, RunningGateway, make_config, start_gateway
from tests.prometheus_process import parse_exposition
from tests.promql.test_engine_timeout import BOUND_SECONDS, LONG_QUERY, evaluating_threads

API = FIXTURES / "api"
UP = [(b"__name__", b"up"), (b"instance", b"127.0.0.1:19095"), (b"job", b"prometheus")]
SCRAPE_MS = 1_796_321_084_380  # the sample behind the fixtures' `up` results
CLIENT_TIMEOUT = aiohttp.ClientTimeout(total=30)


def fixture(name: str) -> Any:
    return json.loads((API / name).read_text())


async def load(gateway: RunningGateway) -> None:
    items = [
        series(UP, [(SCRAPE_MS, 1.0)]),
        # Two metrics with the same labels: dropping the name makes them collide.
        series([(b"__name__", b"m1"), (b"job", b"x")], [(SCRAPE_MS, 1.0)]),
        series([(b"__name__", b"m2"), (b"job", b"x")], [(SCRAPE_MS, 2.0)]),
    ]
    status, text, _ = await post(gateway, rw1(*items))
    assert status == 204, text


async def call(
    gateway: RunningGateway,
    path: str,
    params: dict[str, str],
    method: str = "GET",
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as session:
        if method == "GET":
            request = session.get(gateway.url + path, params=params, headers=headers)
        else:
            request = session.post(gateway.url + path, data=params, headers=headers)
        async with request as response:
            return response.status, await response.json()


INSTANT = "/api/v1/query"
RANGE = "/api/v1/query_range"
T = "1796321086"

CASES = [
    # (fixture, path, params, status)
    ("query_parse_error.json", INSTANT, {"query": "sum(up", "time": T}, 400),
    ("query_exec_error.json", INSTANT, {"query": 'abs({job="x"})', "time": T}, 422),
    ("query_scalar.json", INSTANT, {"query": "1+1", "time": "4"}, 200),
    ("query_string.json", INSTANT, {"query": '"hello"', "time": "4"}, 200),
    ("query_vector.json", INSTANT, {"query": "up", "time": "1796321086.123"}, 200),
    ("query_matrix_instant.json", INSTANT, {"query": "up[2s]", "time": "1796321085"}, 200),
    (
        "query_nan_inf.json",
        INSTANT,
        {
            "query": 'vector(NaN) or label_replace(vector(+Inf), "a", "b", "", "")'
            ' or label_replace(vector(-Inf), "a", "c", "", "")',
            "time": T,
        },
        200,
    ),
    (
        "range_end_before_start.json",
        RANGE,
        {"query": "up", "start": T, "end": "1796321000", "step": "15"},
        400,
    ),
    ("range_missing_step.json", RANGE, {"query": "up", "start": T, "end": T}, 400),
    (
        "range_too_many_points.json",
        RANGE,
        {"query": "up", "start": "0", "end": "1000000", "step": "1"},
        400,
    ),
    ("range_step_dur.json", RANGE, {"query": "up", "start": T, "end": T, "step": "15s"}, 200),
    (
        "range_rfc3339.json",
        RANGE,
        {
            "query": "up",
            "start": "2026-12-03T18:04:46Z",
            "end": "2026-12-03T18:04:46Z",
            "step": "15",
        },
        200,
    ),
    (
        "range_ok.json",
        RANGE,
        {"query": "nothing", "start": "1796000000", "end": T, "step": "1h"},
        200,
    ),
]


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize(("name", "path", "params", "status"), CASES, ids=[c[0] for c in CASES])
async def test_matches_prometheus_fixture(
    gateway: RunningGateway,
    method: str,
    name: str,
    path: str,
    params: dict[str, str],
    status: int,
) -> None:
    await load(gateway)
    got_status, body = await call(gateway, path, params, method)
    assert (got_status, body) == (status, fixture(name))


async def test_grafana_health_check(gateway: RunningGateway) -> None:
    """Grafana's "Save & test": a form POST of `1+1` at time=4 with the tenant header."""
    status, body = await call(
        gateway, INSTANT, {"query": "1+1", "time": "4"}, "POST", {"X-Scope-OrgID": "team-a"}
    )
    assert (status, body) == (200, fixture("query_scalar.json"))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"query": "up", "start": "1", "end": "2", "step": "0"}, "zero or negative query"),
        ({"query": "up", "start": "1", "end": "2", "step": "-1"}, "zero or negative query"),
        ({"query": "up", "start": "1", "end": "2", "step": "1x"}, 'cannot parse "1x"'),
        ({"query": "up", "end": "2", "step": "1"}, 'invalid parameter "start"'),
        ({"query": "up", "start": "x", "end": "2", "step": "1"}, 'invalid parameter "start"'),
        ({"query": "up", "start": "1", "end": "2", "step": "1", "timeout": "z"}, '"timeout"'),
    ],
)
async def test_range_bad_parameters(
    gateway: RunningGateway, params: dict[str, str], message: str
) -> None:
    status, body = await call(gateway, RANGE, params)
    assert status == 400, body
    assert body["errorType"] == "bad_data"
    assert message in body["error"]


async def test_range_accepts_exactly_the_maximum_resolution(gateway: RunningGateway) -> None:
    params = {"query": "1", "start": "0", "end": "11000", "step": "1"}
    status, body = await call(gateway, RANGE, params)
    assert status == 200, body
    assert len(body["data"]["result"][0]["values"]) == 11_001


async def test_range_float_step_and_values(gateway: RunningGateway) -> None:
    await load(gateway)
    start = SCRAPE_MS / 1000
    params = {"query": "up * 2", "start": str(start), "end": str(start + 1), "step": "0.5"}
    status, body = await call(gateway, RANGE, params, "POST")
    assert status == 200, body
    (one,) = body["data"]["result"]
    assert one["metric"] == {"instance": "127.0.0.1:19095", "job": "prometheus"}
    assert one["values"] == [[start, "2"], [start + 0.5, "2"], [start + 1, "2"]]


async def test_tenants_see_only_their_data(gateway: RunningGateway) -> None:
    status, text, _ = await post(gateway, rw1(series(UP, [(SCRAPE_MS, 1.0)])), **{
        "X-Scope-OrgID": "team-b"
    })
    assert status == 204, text
    params = {"query": "count(up)", "time": T}
    _, mine = await call(gateway, INSTANT, params, headers={"X-Scope-OrgID": "team-b"})
    _, theirs = await call(gateway, INSTANT, params, headers={"X-Scope-OrgID": "team-c"})
    assert mine["data"]["result"][0]["value"][1] == "1"
    assert theirs["data"]["result"] == []


async def test_limit_truncates_with_a_warning(gateway: RunningGateway) -> None:
    await load(gateway)
    params = {"query": '{job="x"}', "time": T, "limit": "1"}
    status, body = await call(gateway, INSTANT, params)
    assert status == 200, body
    assert len(body["data"]["result"]) == 1
    assert body["warnings"] == ["results truncated due to limit"]
    status, body = await call(gateway, INSTANT, {**params, "limit": "-1"})
    assert (status, body["errorType"]) == (400, "bad_data")


async def test_infos_and_warnings_are_reported_beside_the_data(gateway: RunningGateway) -> None:
    samples = [(SCRAPE_MS - 15_000, 1.0), (SCRAPE_MS, 2.0)]
    gauges = [
        series([(b"__name__", b"temperature"), (b"job", job)], samples) for job in (b"x", b"y")
    ]
    status, text, _ = await post(gateway, rw1(*gauges))
    assert status == 204, text
    params = {"query": "rate(temperature[5m])", "time": T, "limit": "1"}
    status, body = await call(gateway, INSTANT, params)
    assert status == 200, body
    assert body["status"] == "success" and len(body["data"]["result"]) == 1, body
    assert body["warnings"] == ["results truncated due to limit"]
    assert body["infos"] == [
        "PromQL info: metric might not be a counter, name does not end in "
        '_total/_sum/_count/_bucket: "temperature"'
    ]


async def test_annotations_are_reported(gateway: RunningGateway) -> None:
    await load(gateway)
    query = "histogram_quantile(0.5, m1)"
    status, body = await call(gateway, INSTANT, {"query": query, "time": T})
    assert status == 200, body
    assert any('bucket label "le" is missing' in w for w in body.get("warnings", [])), body


async def test_timeout_parameter_answers_503_promptly(gateway: RunningGateway) -> None:
    await load(gateway)
    # A selector always waits for storage, far longer than a microsecond.
    params = {"query": "up", "time": T, "timeout": "0.000001"}
    status, body = await call(gateway, INSTANT, params)
    assert (status, body["errorType"]) == (503, "timeout"), body
    assert "query timed out" in body["error"]
    # The gateway is not stuck afterwards.
    status, body = await call(gateway, INSTANT, {"query": "up", "time": T})
    assert status == 200, body


async def test_timed_out_evaluation_frees_its_thread(gateway: RunningGateway) -> None:
    # One function node with tens of seconds of work: the 503 comes at the timeout, and the
    # evaluation thread stops inside that node instead of running on unobserved.
    params = {"query": LONG_QUERY, "start": "0", "end": "86400", "step": "15", "timeout": "0.3"}
    status, body = await call(gateway, RANGE, params)
    assert (status, body["errorType"]) == (503, "timeout"), body
    async with asyncio.timeout(BOUND_SECONDS):
        while evaluating_threads():
            await asyncio.sleep(0.02)


async def test_configured_timeout_applies(chdb_dsn: str) -> None:
    running = await start_gateway(make_config(chdb_dsn, **{"query.timeout": "1ms"}))
    try:
        await load(running)
        status, body = await call(running, RANGE, {
            "query": "rate(up[5m])", "start": "1790000000", "end": T, "step": "1h"
        })
        assert (status, body["errorType"]) == (503, "timeout"), body
    finally:
        await running.runner.cleanup()


async def test_series_limit_is_an_execution_error(chdb_dsn: str) -> None:
    running = await start_gateway(
        make_config(chdb_dsn, **{"query.max_fetched_series_per_query": 1})
    )
    try:
        await load(running)
        status, body = await call(running, INSTANT, {"query": '{job="x"}', "time": T})
        assert (status, body["errorType"]) == (422, "execution"), body
        assert "max_fetched_series_per_query" in body["error"]
    finally:
        await running.runner.cleanup()


async def test_query_metrics(gateway: RunningGateway) -> None:
    await call(gateway, INSTANT, {"query": "1", "time": "4"})
    await call(gateway, INSTANT, {"query": "sum(", "time": "4"})
    await call(gateway, RANGE, {"query": "1", "start": "0", "end": "60", "step": "15"})
    async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as session, session.get(
        gateway.url + "/metrics"
    ) as response:
        metrics = parse_exposition(await response.text())
    count = "gateway_query_duration_seconds_count"
    assert metrics[f'{count}{{endpoint="query",status="200"}}'] == 1
    assert metrics[f'{count}{{endpoint="query",status="400"}}'] == 1
    assert metrics[f'{count}{{endpoint="query_range",status="200"}}'] == 1
    errors = 'gateway_query_errors_total{endpoint="query",error_type="bad_data"}'
    assert metrics[errors] == 1


async def test_repeated_queries_take_labels_from_the_cache(gateway: RunningGateway) -> None:
    await load(gateway)

    async def lookups() -> tuple[float, float, float]:
        async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as session, session.get(
            gateway.url + "/metrics"
        ) as response:
            metrics = parse_exposition(await response.text())
        name = "gateway_query_series_labels_lookups_total"
        return (
            metrics.get(f'{name}{{result="hit"}}', 0.0),
            metrics.get(f'{name}{{result="miss"}}', 0.0),
            metrics["gateway_query_series_labels_cached"],
        )

    first = await call(gateway, INSTANT, {"query": "up", "time": T})
    assert await lookups() == (0, 1, 1)
    again = await call(gateway, INSTANT, {"query": "up", "time": T})
    assert again == first
    assert await lookups() == (1, 1, 1)
    both = await call(gateway, INSTANT, {"query": '{job="x"}', "time": T})
    assert [r["metric"]["__name__"] for r in both[1]["data"]["result"]] == ["m1", "m2"]
    assert await lookups() == (1, 3, 3)


async def test_bytes_that_are_not_utf8_in_string_literals_are_answered_in_utf8(
    gateway: RunningGateway,
) -> None:
    await load(gateway)
    # "\xff" is the byte 0xFF in PromQL (as in Go): an invalid label name, echoed in the error.
    query = 'label_replace(up, "\\xff", "", "job", "(.*)")'
    status, body = await call(gateway, INSTANT, {"query": query, "time": T})
    assert (status, body["errorType"]) == (422, "execution"), body
    assert body["error"] == "invalid destination label name in label_replace(): \ufffd"
    query = 'label_replace(up, "dst", "\\xff", "job", "(.*)")'
    status, body = await call(gateway, INSTANT, {"query": query, "time": T})
    assert status == 200, body
    assert [r["metric"]["dst"] for r in body["data"]["result"]] == ["\ufffd"]
