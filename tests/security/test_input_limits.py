"""Input hardening: every size and complexity cap answers a clear 4xx, counted, never a 5xx."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import pytest

from gateway._pb.io.prometheus.write.v2 import remote_write_v2_pb2 as v2
from gateway.api.query_guard import measure
from gateway.config import ConfigError, load
from gateway.remote import snappy
from tests.api.test_write_errors import V1, V2, post, rw1, series, series_count
from tests.conftest import RunningGateway, make_config, start_gateway
from tests.remote.test_read_handler import EQ, query, remote_read, request_body
from tests.security.helpers import call, rejected

T = 1_700_000_000_000
CAPS = {
    "ingest.max_series_per_request": 3,
    "ingest.max_samples_per_request": 6,
    "ingest.max_symbols_per_request": 8,
    "ingest.max_labels_per_series": 4,
    "ingest.max_label_bytes_per_series": 64,
    "ingest.max_body_bytes": 256 << 10,
    "ingest.max_decoded_bytes": 512 << 10,
    "remote_read.max_body_bytes": 4096,
    "remote_read.max_decoded_bytes": 8192,
    "query.max_query_bytes": 4096,
    "query.max_query_depth": 16,
    "query.max_query_operators": 32,
}


@pytest.fixture
async def capped(chdb_dsn: str) -> AsyncIterator[RunningGateway]:
    running = await start_gateway(make_config(chdb_dsn, **CAPS))
    yield running
    await running.runner.cleanup()


def one(name: bytes, samples: int = 1, extra: int = 0) -> object:
    labels = [(b"__name__", name)] + [(b"l%d" % i, b"v") for i in range(extra)]
    return series(labels, [(T + i, float(i)) for i in range(samples)])


def rw2(symbols: list[bytes], refs: list[list[int]]) -> bytes:
    message = v2.Request(
        symbols=symbols,
        timeseries=[
            v2.TimeSeries(labels_refs=r, samples=[v2.Sample(value=1.0, timestamp=T)]) for r in refs
        ],
    )
    return snappy.compress(message.SerializeToString())


@pytest.mark.parametrize(
    ("body", "content_type", "setting"),
    [
        (rw1(*(one(b"m%d" % i) for i in range(4))), V1, "ingest.max_series_per_request"),
        (rw1(one(b"a", samples=4), one(b"b", samples=3)), V1, "ingest.max_samples_per_request"),
        (rw2([b""] + [b"s%d" % i for i in range(9)], [[1, 2]]), V2,
         "ingest.max_symbols_per_request"),
        (rw2([b"", b"__name__"] + [b"m%d" % i for i in range(4)], [[1, 2], [1, 3], [1, 4], [1, 5]]),
         V2, "ingest.max_series_per_request"),
    ],
    ids=["series", "samples", "symbols", "rw2-series"],
)
async def test_request_caps_refuse_the_whole_request(
    capped: RunningGateway, body: bytes, content_type: str, setting: str
) -> None:
    before = await rejected(capped, "request_too_big", 400)
    status, text, _ = await post(capped, body, content_type)
    assert status == 400, text
    assert setting in text and "more than the limit" in text
    assert await rejected(capped, "request_too_big", 400) == before + 1
    assert await series_count(capped, '{__name__=~".+"}') == 0


@pytest.mark.parametrize(
    ("bad", "setting"),
    [
        (one(b"many_labels", extra=4), "ingest.max_labels_per_series"),
        (series([(b"__name__", b"long"), (b"l", b"x" * 80)], [(T, 1.0)]),
         "ingest.max_label_bytes_per_series"),
    ],
    ids=["labels", "label-bytes"],
)
async def test_series_caps_drop_only_that_series(
    capped: RunningGateway, bad: object, setting: str
) -> None:
    status, text, _ = await post(capped, rw1(bad, one(b"fine")))
    assert status == 400, text
    assert setting in text
    assert await series_count(capped, '{__name__="fine"}') == 1
    assert await series_count(capped, '{__name__=~"many_labels|long"}') == 0


async def test_body_caps_on_write_and_read(capped: RunningGateway) -> None:
    status, text, _ = await post(capped, b"\x00" * (257 << 10))
    assert (status, "ingest.max_body_bytes" in text) == (413, True)
    status, text, _ = await post(capped, snappy.compress(b"\x0a\x00" * (300 << 10)))
    assert (status, "ingest.max_decoded_bytes" in text) == (413, True)
    status, _, payload = await remote_read(capped, b"\x00" * 5000)
    assert (status, b"remote_read.max_body_bytes" in payload) == (413, True), payload
    # A snappy header declaring a huge length is refused before anything is decompressed.
    status, _, payload = await remote_read(capped, b"\xff\xff\xff\xff\x0f" + b"\x00" * 10)
    assert (status, b"remote_read.max_decoded_bytes" in payload) == (413, True), payload
    status, _, payload = await remote_read(capped, request_body([query(0, T, (EQ, "a", "b"))]))
    assert status == 200, payload


@pytest.mark.parametrize(
    ("text", "setting"),
    [
        ("(" * 17 + "1" + ")" * 17, "query.max_query_depth"),
        ("(" * 30_000 + "1" + ")" * 30_000, "query.max_query_bytes"),
        ("sum(" * 17 + "x" + ")" * 17, "query.max_query_depth"),
        ("1" + "+1" * 33, "query.max_query_operators"),
        ("x" + " or x" * 33, "query.max_query_operators"),
        ('x{a="' + "y" * 5000 + '"}', "query.max_query_bytes"),
    ],
    ids=["parens", "huge-parens", "nested-calls", "operators", "set-operators", "long"],
)
async def test_complex_queries_are_refused_before_parsing(
    capped: RunningGateway, text: str, setting: str
) -> None:
    paths = [
        (path, "query")
        for path in ("/api/v1/query", "/api/v1/query_range")
        if _routed(capped, path)
    ] + [("/api/v1/series", "match[]"), ("/api/v1/labels", "match[]")]
    for path, name in paths:
        before = await rejected(capped, "bad_query", 400)
        for method in ("GET", "POST"):
            form = [(name, text), ("start", "0"), ("end", "60"), ("step", "15")]
            started = time.monotonic()
            if method == "GET" and len(text) > 8000:
                continue  # past aiohttp's request-line limit: refused before routing
            status, body = await call(
                capped, method, path, params=form if method == "GET" else None,
                data=dict(form) if method == "POST" else None,
            )
            assert status == 400, (path, method, body)
            assert body["errorType"] == "bad_data" and setting in body["error"], body
            assert time.monotonic() - started < 5, "refused only after slow work"
        assert await rejected(capped, "bad_query", 400) > before
    status, body = await call(capped, "GET", "/api/v1/labels")
    assert status == 200, body


def _routed(gateway: RunningGateway, path: str) -> bool:
    return any(
        resource.canonical == path for resource in gateway.app.router.resources()
    )


def test_measure_ignores_strings_and_comments() -> None:
    assert measure('x{a="((((+-*", b=~`)))`} # ((((( + + +\n').depth == 1
    assert measure('x{a="((((+-*", b=~`)))`} # ((((( + + +\n').operators == 0
    assert measure('sum by (a) (rate(x[5m])) / on(a) group_left y and z').depth == 3
    assert measure("a / b == c and d").operators == 3
    assert measure('"unterminated ((((').depth == 0


async def test_regexes_are_bounded(capped: RunningGateway) -> None:
    for regex in ("((a{100}){100}){100}", "(", "a" * 70_000):
        status, body = await call(
            capped, "POST", "/api/v1/series", data={"match[]": f'{{a=~"{regex}"}}'}
        )
        assert 400 <= status < 500, body
    # RE2 never backtracks: a pathological pattern over a long value answers at once.
    status, _, _ = await post(capped, rw1(series([(b"__name__", b"r"), (b"v", b"a" * 40)],
                                                 [(T, 1.0)])))
    assert status == 204
    started = time.monotonic()
    status, body = await call(
        capped, "GET", "/api/v1/series", params=[("match[]", 'r{v=~"(a*)*b"}')]
    )
    assert (status, body["data"]) == (200, [])
    assert time.monotonic() - started < 5


async def test_time_ranges_and_steps_are_bounded(capped: RunningGateway) -> None:
    if _routed(capped, "/api/v1/query_range"):
        for params in (
            [("query", "1"), ("start", "0"), ("end", "31536000"), ("step", "0.001")],
            [("query", "1"), ("start", "100"), ("end", "0"), ("step", "15")],
            [("query", "1"), ("start", "0"), ("end", "60"), ("step", "-1")],
            [("query", "1"), ("start", "nan"), ("end", "60"), ("step", "15")],
            [("query", "1"), ("start", "0"), ("end", "1e300"), ("step", "1e-300")],
        ):
            status, body = await call(capped, "GET", "/api/v1/query_range", params=params)
            assert status == 400, (params, body)
    for params in ([("start", "inf")], [("end", "x")], [("limit", "-1")], [("limit", "1e99")]):
        status, body = await call(capped, "GET", "/api/v1/labels", params=params)
        assert status == 400, (params, body)
    # Beyond any Prometheus time: refused (tests/security/test_time_ranges.py has the rest).
    status, body = await call(
        capped, "GET", "/api/v1/labels", params=[("start", "-1e300"), ("end", "1e300")]
    )
    assert status == 400, body
    status, body = await call(
        capped, "GET", "/api/v1/labels",
        params=[("start", "-292273086-05-16T16:47:06Z"),
                ("end", "292277025-08-18T07:12:54.999999999Z")],
    )
    assert status == 200, body


async def test_form_and_json_bodies_are_bounded(capped: RunningGateway) -> None:
    big = "x" * (300 << 10)  # over client_max_size (ingest.max_body_bytes + 1)
    for path in ("/api/v1/series", "/api/v1/labels", "/api/v1/query"):
        if not _routed(capped, path):
            continue
        status, body = await call(capped, "POST", path, data={"match[]": big, "query": big})
        assert status == 413, (path, body)
    status, body = await call(capped, "GET", "/api/v1/labels")
    assert status == 200, body


ADMIN = "admin-token-0123456789"


async def test_admin_json_bodies_are_bounded(chdb_dsn: str) -> None:
    running = await start_gateway(
        make_config(chdb_dsn, **{"admin.token": ADMIN, "admin.max_body_bytes": 4096})
    )
    try:
        path = "/api/v1/admin/tenants/t1/limits"
        auth = {"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"}
        fits = json.dumps({"drop_labels": [f"l{i}" for i in range(300)]})
        assert len(fits) < 4096
        for method in ("PUT", "PATCH"):
            status, body = await call(running, method, path, data=fits, headers=auth)
            assert status == 200, body
        big = json.dumps({"drop_labels": [f"label{i}" for i in range(1000)]})
        assert len(big) > 4096
        for method in ("PUT", "PATCH"):
            before = await rejected(running, "body_too_large", 413)
            status, body = await call(running, method, path, data=big, headers=auth)
            assert status == 413, body
            assert body["errorType"] == "bad_data" and "admin.max_body_bytes" in body["error"]
            assert "4096" in body["error"], body
            assert await rejected(running, "body_too_large", 413) == before + 1

            async def chunks() -> AsyncIterator[bytes]:
                for _ in range(10):
                    yield b" " * 1000  # no Content-Length: refused while streaming

            status, body = await call(running, method, path, data=chunks(), headers=auth)
            assert status == 413, body
        status, body = await call(running, "GET", path, headers=auth)
        assert set(body["data"]["overrides"]["drop_labels"]) == {f"l{i}" for i in range(300)}
    finally:
        await running.runner.cleanup()


def test_admin_body_cap_defaults_to_one_mib() -> None:
    assert load(None).admin.max_body_bytes == 1 << 20
    with pytest.raises(ConfigError, match=r"admin\.max_body_bytes"):
        load(None, {"admin.max_body_bytes": 0})
