"""Two tenants with overlapping metric names: every read endpoint shows a tenant only its own."""

from __future__ import annotations

from typing import Any

import pytest

from gateway._pb.prometheus import remote_pb2 as pb
from gateway.config import Config
from tests.api.test_metadata_status import get_json, metadata_body
from tests.api.test_write_errors import post, rw1, series
from tests.conftest import make_config, start_gateway
from tests.remote.test_read_handler import (
    EQ,
    RE,
    query,
    remote_read,
    request_body,
    samples_result,
    streamed_result,
)

T = 1_700_000_000_000
TENANTS = ("team-a", "team-b")


def tenant_series(tenant: str) -> list[pb.TimeSeries]:
    """The same metric names in both tenants, told apart by label values and own metrics."""
    own = tenant.encode()
    return [
        series([(b"__name__", b"shared_total"), (b"job", b"job-" + own), (b"owner", own)],
               [(T, 1.0), (T + 15_000, 2.0)]),
        series([(b"__name__", b"only_" + own.replace(b"-", b"_")), (b"job", b"x"),
                (b"label_" + own.replace(b"-", b"_"), b"v")], [(T, 3.0)]),
    ]


@pytest.fixture(params=["header", "bearer"])
async def two_tenants(
    request: pytest.FixtureRequest, chdb_dsn: str
) -> Any:
    """A gateway holding data of two tenants, and the headers that select each tenant."""
    if request.param == "header":
        config: Config = make_config(chdb_dsn)
        headers = {tenant: {"X-Scope-OrgID": tenant} for tenant in TENANTS}
    else:
        config = make_config(
            chdb_dsn,
            **{"auth.tenants": [{"tenant": t, "bearer_token": f"token-{t}"} for t in TENANTS]},
        )
        headers = {tenant: {"Authorization": f"Bearer token-{tenant}"} for tenant in TENANTS}
    running = await start_gateway(config)
    try:
        for tenant in TENANTS:
            status, text, _ = await post(running, rw1(*tenant_series(tenant)), **headers[tenant])
            assert status == 204, text
            meta = metadata_body(("shared_total", pb.MetricMetadata.COUNTER, f"of {tenant}", ""))
            status, text, _ = await post(running, meta, **headers[tenant])
            assert status == 204, text
        yield running, headers
    finally:
        await running.runner.cleanup()


def other(tenant: str) -> str:
    return TENANTS[1 - TENANTS.index(tenant)]


@pytest.mark.parametrize("tenant", TENANTS)
async def test_query_api_endpoints(two_tenants: Any, tenant: str) -> None:
    running, headers = two_tenants
    mine = headers[tenant]
    suffix = tenant.replace("-", "_")

    _, body = await get_json(running, "/api/v1/series", [("match[]", '{job=~".+"}')], **mine)
    assert {item["__name__"] for item in body["data"]} == {"shared_total", f"only_{suffix}"}
    assert {item.get("owner") for item in body["data"]} == {tenant, None}

    _, body = await get_json(running, "/api/v1/labels", [], **mine)
    assert body["data"] == ["__name__", "job", f"label_{suffix}", "owner"]

    _, body = await get_json(running, "/api/v1/label/owner/values", [], **mine)
    assert body["data"] == [tenant]
    _, body = await get_json(running, "/api/v1/label/__name__/values", [], **mine)
    assert body["data"] == [f"only_{suffix}", "shared_total"]
    _, body = await get_json(
        running, f"/api/v1/label/label_{other(tenant).replace('-', '_')}/values", [], **mine
    )
    assert body["data"] == []

    _, body = await get_json(running, "/api/v1/metadata", [], **mine)
    assert body["data"] == {"shared_total": [{"type": "counter", "help": f"of {tenant}",
                                              "unit": ""}]}


@pytest.mark.parametrize("accepted", [[0], [1]])
@pytest.mark.parametrize("tenant", TENANTS)
async def test_remote_read(two_tenants: Any, tenant: str, accepted: list[int]) -> None:
    running, headers = two_tenants
    queries = [
        query(T - 1, T + 60_000, (EQ, "__name__", "shared_total")),
        query(T - 1, T + 60_000, (RE, "__name__", "only_.*")),
        query(T - 1, T + 60_000, (EQ, "owner", other(tenant))),
    ]
    status, _, payload = await remote_read(running, request_body(queries, accepted),
                                           **headers[tenant])
    assert status == 200, payload
    result = samples_result(payload) if accepted == [0] else streamed_result(payload)
    shared, only, foreign = [*result, [], [], []][:3]
    assert [dict(labels)["owner"] for labels, _ in shared] == [tenant]
    assert [dict(labels)["__name__"] for labels, _ in only] == [f"only_{tenant.replace('-', '_')}"]
    assert foreign == []


async def test_unknown_credentials_read_nothing(chdb_dsn: str) -> None:
    config = make_config(chdb_dsn, **{"auth.tenants": [{"tenant": "a", "bearer_token": "t"}]})
    running = await start_gateway(config)
    try:
        body = request_body([query(0, T, (EQ, "__name__", "up"))])
        for headers, status in [
            ({}, 401),
            ({"Authorization": "Bearer wrong"}, 401),
            ({"Authorization": "Bearer t", "X-Scope-OrgID": "b"}, 403),
        ]:
            got, _, payload = await remote_read(running, body, **headers)
            assert got == status, payload
            for path in ("/api/v1/metadata", "/api/v1/series?match[]=up", "/api/v1/labels",
                         "/api/v1/label/job/values", "/api/v1/status/flags"):
                got, answer = await get_json(running, path, [], **headers)
                assert got == status and answer["status"] == "error", (path, answer)
    finally:
        await running.runner.cleanup()
