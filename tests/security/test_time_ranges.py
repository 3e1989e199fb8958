"""Query time ranges: Prometheus' and Grafana's extremes are accepted and clamped to the storable
range; NaN, Inf and values no Prometheus time can hold are a 400 bad_data.

The storable range is ClickHouse DateTime64(3)'s, 1900-01-01 to 2299-12-31 (writes outside it
are refused). Prometheus sends its minTime/maxTime (`-292273086-05-16T16:47:06Z`,
`292277025-08-18T07:12:54.999999999Z`) as the defaults of `start`/`end`; Grafana sends decimal
Unix seconds, ms for exemplars.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from gateway.api import envelope
from tests.api.test_write_errors import post, rw1, series
from tests.conftest import RunningGateway, make_config, start_gateway
from tests.remote.test_read_handler import RE, query, remote_read, request_body, samples_result
from tests.security.helpers import call

T = 1_700_000_000_000
PROMETHEUS_MIN = "-292273086-05-16T16:47:06Z"
PROMETHEUS_MAX = "292277025-08-18T07:12:54.999999999Z"
ACCEPTED = [
    (PROMETHEUS_MIN, PROMETHEUS_MAX),
    ("-9223372036854775.808", "9223372036854775.807"),  # Prometheus' minTime/maxTime in seconds
    ("-62135596800", "253402300799"),  # year 1 and 9999
    ("0", "4102444800"),
    ("1900-01-01T00:00:00Z", "2299-12-31T23:59:59.999Z"),
    ("1699999000", "1700001000.5"),
    ("2023-11-14T22:13:20+02:00", "2023-11-14T22:13:20.123456789Z"),
]
REFUSED = [
    "1e300", "-1e300", "9223372036854776", "-9223372036854777", "nan", "NaN", "inf", "-Inf",
    "+Inf", "1e19", "x", "2023-13-01T00:00:00Z", "2023-11-14T22:13:20", "292277027-01-01T00:00:00Z",
    "-292277027-01-01T00:00:00Z", "", " ", " 1", "1_000", "0x10",
]


@pytest.fixture
async def loaded(chdb_dsn: str) -> AsyncIterator[RunningGateway]:
    running = await start_gateway(make_config(chdb_dsn))
    status, text, _ = await post(
        running, rw1(series([(b"__name__", b"ranged"), (b"a", b"1")], [(T, 1.0), (T + 1, 2.0)]))
    )
    assert status == 204, text
    yield running
    await running.runner.cleanup()


@pytest.mark.parametrize(("start", "end"), ACCEPTED)
async def test_extremes_are_accepted_and_clamped(
    loaded: RunningGateway, start: str, end: str
) -> None:
    for path, key in (("/api/v1/series", "match[]"), ("/api/v1/labels", "match[]"),
                      ("/api/v1/label/a/values", "match[]")):
        status, body = await call(
            loaded, "GET", path, params=[(key, "ranged"), ("start", start), ("end", end)]
        )
        assert status == 200, (path, start, end, body)
        expect_data = _covers(start, end)
        assert bool(body["data"]) == expect_data, (path, start, end, body)
    status, body = await call(
        loaded, "GET", "/api/v1/query_exemplars",
        params=[("query", "ranged"), ("start", start), ("end", end)],
    )
    assert status == 200, body


def _covers(start: str, end: str) -> bool:
    """Whether [start, end] holds T (the stored samples' time)."""
    return envelope.parse_time_ms(start, "start", 0) <= T <= envelope.parse_time_ms(end, "end", 0)


@pytest.mark.parametrize("value", REFUSED)
async def test_absurd_times_are_bad_data(loaded: RunningGateway, value: str) -> None:
    if not value:
        # Empty means "absent" (the default) for series and labels, as in Prometheus.
        status, body = await call(loaded, "GET", "/api/v1/labels", params=[("start", value)])
        assert status == 200, body
        return
    for path, params in (
        ("/api/v1/labels", [("start", value)]),
        ("/api/v1/labels", [("end", value)]),
        ("/api/v1/series", [("match[]", "ranged"), ("start", value)]),
        ("/api/v1/label/a/values", [("end", value)]),
        ("/api/v1/query", [("query", "ranged"), ("time", value)]),
        ("/api/v1/query_range", [("query", "ranged"), ("start", value), ("end", "1"),
                                 ("step", "15")]),
        ("/api/v1/query_range", [("query", "ranged"), ("start", "0"), ("end", value),
                                 ("step", "15")]),
        ("/api/v1/query_exemplars", [("query", "ranged"), ("start", value)]),
    ):
        status, body = await call(loaded, "GET", path, params=params)
        assert status == 400, (path, params, body)
        assert body["errorType"] == "bad_data" and "timestamp" in body["error"], body


async def test_query_times_outside_the_storable_range(loaded: RunningGateway) -> None:
    """Evaluating at a time that can hold no sample is refused, naming the range (not clamped:
    the answer would carry other timestamps than asked for)."""
    for params in (
        [("query", "ranged"), ("time", PROMETHEUS_MAX)],
        [("query", "ranged"), ("time", "-9223372036854775.808")],
        [("query", "1"), ("start", PROMETHEUS_MIN), ("end", "0"), ("step", "1e12")],
    ):
        path = "/api/v1/query" if len(params) == 2 else "/api/v1/query_range"
        status, body = await call(loaded, "GET", path, params=params)
        assert status == 400, (params, body)
        assert "1900-01-01" in body["error"] and "2299-12-31" in body["error"], body
    status, body = await call(
        loaded, "GET", "/api/v1/query", params=[("query", "ranged"), ("time", str(T / 1000))]
    )
    assert status == 200 and len(body["data"]["result"]) == 1, body


@pytest.mark.parametrize(
    ("start", "end", "found"),
    [(-(2**63), 2**63 - 1, True), (-(2**63), -(2**62), False), (2**62, 2**63 - 1, False),
     (T, T, True), (2**63 - 1, -(2**63), False)],
)
async def test_remote_read_ranges_are_clamped(
    loaded: RunningGateway, start: int, end: int, found: bool
) -> None:
    status, _, payload = await remote_read(
        loaded, request_body([query(start, end, (RE, "__name__", "ranged"))])
    )
    assert status == 200, payload
    [result] = samples_result(payload)
    assert bool(result) == found, result
    if found:
        [(_, samples)] = result
        assert samples[0] == (T, 1.0)
