"""Every request answered with an error is counted exactly once in
`gateway_rejected_requests_total{reason, status}`: one case per kind of rejection.

Not counted (they never reach the app): requests aiohttp's HTTP parser refuses before routing,
such as a request line over 8 KiB or raw bytes it cannot parse.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from gateway.remote import snappy
from tests.api.test_write_errors import post, rw1, series
from tests.conftest import RunningGateway, make_config, start_gateway
from tests.prometheus_process import parse_exposition
from tests.remote.test_read_handler import RE, query, remote_read, request_body
from tests.security.helpers import call

T = 1_700_000_000_000
ADMIN = "admin-token-0123456789"
PREFIX = "gateway_rejected_requests_total"
V2 = "application/x-protobuf;proto=io.prometheus.write.v2.Request"

Send = Callable[[RunningGateway], Awaitable[int]]


def one(name: bytes, timestamp: int = T) -> object:
    return series([(b"__name__", name)], [(timestamp, 1.0)])


def write(body: bytes, content_type: str = "application/x-protobuf", **headers: str) -> Send:
    async def send(gateway: RunningGateway) -> int:
        status, _, _ = await post(gateway, body, content_type, **headers)
        return status
    return send


def request(method: str, path: str, **kwargs: Any) -> Send:
    async def send(gateway: RunningGateway) -> int:
        status, _ = await call(gateway, method, path, **kwargs)
        return status
    return send


def read(body: bytes, **headers: str) -> Send:
    async def send(gateway: RunningGateway) -> int:
        status, _, _ = await remote_read(gateway, body, **headers)
        return status
    return send


ADMIN_AUTH = {"Authorization": f"Bearer {ADMIN}"}
RANGE = [("start", str(T / 1000)), ("end", str(T / 1000 + 3600)), ("step", "60")]
CASES: list[tuple[str, Send, str, int]] = [
    # Remote-write: the whole request refused.
    ("content-type", write(rw1(one(b"a")), "text/plain"), "bad_body", 415),
    ("encoding", write(rw1(one(b"a")), **{"Content-Encoding": "gzip"}), "bad_body", 415),
    ("snappy", write(b"\x04\xff\xff\xff\xff"), "bad_body", 400),
    ("protobuf", write(snappy.compress(b"\x0a\xff\xff")), "bad_body", 400),
    ("rw2-protobuf", write(snappy.compress(b"\x12\x05"), V2), "bad_body", 400),
    ("body-size", write(b"\x00" * (70 << 10)), "body_too_large", 413),
    ("decoded-size", write(snappy.compress(b"\x0a\x00" * (80 << 10))), "body_too_large", 413),
    ("series-per-request", write(rw1(*(one(b"m%d" % i) for i in range(6)))),
     "request_too_big", 400),
    ("tenant", write(rw1(one(b"a")), **{"X-Scope-OrgID": "a b"}), "auth", 400),
    # Tenant "slow" has used its burst of 3 (see `capped`): 3 more samples wait for tokens,
    # 4 can never fit.
    ("rate", write(rw1(series([(b"__name__", b"a")], [(T, 1.0), (T + 1, 1.0), (T + 2, 1.0)])),
                   **{"X-Scope-OrgID": "slow"}), "rate_limited", 429),
    ("burst", write(rw1(series([(b"__name__", b"a")], [(T + i, 1.0) for i in range(4)])),
                    **{"X-Scope-OrgID": "slow"}), "ingestion_burst_exceeded", 400),
    ("method", request("GET", "/api/v1/write"), "http", 405),
    # Remote-write: some series refused, the rest stored (a partial 400).
    ("label-name", write(rw1(series([(b"__name__", b"a"), (b"", b"x")], [(T, 1.0)]),
                             one(b"fine"))), "label_invalid", 400),
    ("timestamp", write(rw1(one(b"old", -(2**62)))), "sample_out_of_bounds", 400),
    ("series-budget", write(rw1(one(b"b1"), one(b"b2")), **{"X-Scope-OrgID": "budget"}),
     "per_user_series_limit", 400),
    # Remote-read.
    ("read-body", read(snappy.compress(b"\x0a\xff")), "bad_body", 400),
    ("read-size", read(b"\x00" * 5000), "body_too_large", 413),
    ("read-matcher", read(request_body([query(0, T, (RE, "a", "("))])), "bad_query", 400),
    ("read-encoding", read(request_body([]), **{"Content-Encoding": "zstd"}), "bad_body", 415),
    # Prometheus API.
    ("parse", request("GET", "/api/v1/query", params=[("query", "sum(")]), "bad_query", 400),
    ("guard", request("GET", "/api/v1/query", params=[("query", "(" * 80 + "1" + ")" * 80)]),
     "bad_query", 400),
    ("step", request("GET", "/api/v1/query_range",
                     params=[("query", "1"), ("start", "0"), ("end", "1"), ("step", "0")]),
     "bad_query", 400),
    ("max-samples", request("GET", "/api/v1/query_range",
                            params=[("query", "many"), *RANGE]), "query_limit", 422),
    ("series-match", request("GET", "/api/v1/series"), "bad_query", 400),
    ("time", request("GET", "/api/v1/labels", params=[("start", "nan")]), "bad_query", 400),
    ("values-post", request("POST", "/api/v1/label/a/values"), "http", 405),
    ("not-found", request("GET", "/api/v1/nope"), "http", 404),
    ("form-size", request("POST", "/api/v1/series", data={"match[]": "x" * (80 << 10)}),
     "http", 413),
    ("cardinality", request("GET", "/api/v1/cardinality/label_values"), "bad_query", 400),
    # Admin API.
    ("admin-token", request("GET", "/api/v1/admin/tenants",
                            headers={"Authorization": "Bearer wrong-token-000000"}),
     "admin", 401),
    ("admin-limits", request("PUT", "/api/v1/admin/tenants/t/limits", data=b'{"nope": 1}',
                             headers=ADMIN_AUTH), "bad_limits", 400),
    ("admin-size", request("PUT", "/api/v1/admin/tenants/t/limits", data=b" " * 5000,
                           headers=ADMIN_AUTH), "body_too_large", 413),
]


@pytest.fixture
async def capped(chdb_dsn: str) -> AsyncIterator[RunningGateway]:
    config = make_config(chdb_dsn, **{
        "admin.token": ADMIN,
        "admin.max_body_bytes": 4096,
        "ingest.max_body_bytes": 64 << 10,
        "ingest.max_decoded_bytes": 128 << 10,
        "ingest.max_series_per_request": 5,
        "remote_read.max_body_bytes": 4096,
        "query.max_samples": 10,
    })
    running = await start_gateway(config)
    for tenant, limits in (("slow", {"ingestion_rate": 0.001, "ingestion_burst_size": 3}),
                           ("budget", {"max_global_series_per_user": 1})):
        status, body = await call(
            running, "PUT", f"/api/v1/admin/tenants/{tenant}/limits",
            data=json.dumps(limits), headers=ADMIN_AUTH,
        )
        assert status == 200, body
    status, text, _ = await post(
        running, rw1(series([(b"__name__", b"many")], [(T + i * 60_000, 1.0) for i in range(60)]))
    )
    assert status == 204, text
    status, text, _ = await post(
        running, rw1(series([(b"__name__", b"a")], [(T - 3 + i, 1.0) for i in range(3)])),
        **{"X-Scope-OrgID": "slow"},
    )
    assert status == 204, text  # the burst used up
    yield running
    await running.runner.cleanup()


async def counts(gateway: RunningGateway) -> dict[str, float]:
    status, body = await call(gateway, "GET", "/metrics")
    assert status == 200
    return {
        key: value for key, value in parse_exposition(body.decode()).items()
        if key.startswith(PREFIX + "{")
    }


@pytest.mark.parametrize(("name", "send", "reason", "status"), CASES, ids=[c[0] for c in CASES])
async def test_each_rejection_is_counted_once(
    capped: RunningGateway, name: str, send: Send, reason: str, status: int
) -> None:
    before = await counts(capped)
    got = await send(capped)
    assert got == status, (name, got)
    after = await counts(capped)
    key = f'{PREFIX}{{reason="{reason}",status="{status}"}}'
    assert after.get(key, 0.0) == before.get(key, 0.0) + 1, (name, key, after)
    assert sum(after.values()) == sum(before.values()) + 1, (name, before, after)


async def test_successes_are_not_counted(capped: RunningGateway) -> None:
    before = await counts(capped)
    assert await write(rw1(one(b"ok")))(capped) == 204
    assert await request("GET", "/api/v1/labels")(capped) == 200
    assert await request("GET", "/api/v1/query", params=[("query", "1")])(capped) == 200
    assert await counts(capped) == before
