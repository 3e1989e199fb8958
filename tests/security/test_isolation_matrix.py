"""Tenant isolation over every route in the router x every way of asking as someone else.

Routes are discovered from the app, so endpoints added later are covered without editing here.
Every answer that is not the intended tenant's is a 401/403 (or, for tenant-free endpoints, holds
no tenant's data); secrets never reach the log or the flags endpoint.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from gateway._pb.prometheus import remote_pb2 as pb
from tests.api.test_metadata_status import metadata_body
from tests.api.test_write_errors import post, rw1, series
from tests.conftest import RunningGateway, make_config, start_gateway
from tests.remote.test_read_handler import RE, query, request_body
from tests.security.helpers import call

T = 1_700_000_000_000
TOKENS = {"tenant-a": "tok-a-6f1e0c9d2b", "tenant-b": "tok-b-93ab77e1c4"}
BASIC = ("user-c", "pw-c-5d8e2a41f0")
ADMIN = "admin-tok-8c2f71d4e09b"
SECRETS = [*TOKENS.values(), BASIC[1], ADMIN]
MARKS = {tenant: f"marker-{tenant}" for tenant in (*TOKENS, "tenant-c")}
# Paths outside the tenant model: liveness, readiness and the gateway's own metrics.
UNTENANTED = ("/-/", "/metrics")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str

    @property
    def admin(self) -> bool:
        return "/admin/" in self.path

    def url_path(self, tenant: str) -> str:
        return self.path.replace("{name}", "owner").replace("{tenant}", tenant)


def endpoints(gateway: RunningGateway) -> list[Endpoint]:
    found = set()
    for route in gateway.app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if route.method in ("HEAD", "OPTIONS", "*") or path.startswith(UNTENANTED):
            continue
        found.add(Endpoint(route.method, path))
    return sorted(found, key=lambda e: (e.path, e.method))


def write_body(tenant: str) -> bytes:
    name = ("secret_" + tenant.replace("-", "_")).encode()
    return rw1(series([(b"__name__", name), (b"owner", MARKS[tenant].encode())], [(T, 1.0)]))


async def ask(
    gateway: RunningGateway, endpoint: Endpoint, tenant: str, headers: dict[str, str]
) -> tuple[int, str]:
    """Call an endpoint with parameters that select every tenant's data if isolation failed."""
    path = endpoint.url_path(tenant)
    data: bytes | dict[str, str] | None = None
    params: list[tuple[str, str]] = []
    if path in ("/api/v1/write", "/api/v1/push"):
        data = write_body(tenant)
        headers = {**headers, "Content-Type": "application/x-protobuf"}
    elif path == "/api/v1/read":
        data = request_body([query(0, T + 60_000, (RE, "__name__", "secret_.*"))])
        headers = {**headers, "Content-Type": "application/x-protobuf"}
    elif endpoint.method in ("PUT", "PATCH"):
        data = b'{"max_global_series_per_user": 7}'
    elif endpoint.method in ("GET", "POST", "DELETE"):
        params = [
            ("query", '{__name__=~"secret_.*"}'), ("match[]", '{__name__=~"secret_.*"}'),
            ("selector", '{__name__=~"secret_.*"}'), ("label_names[]", "owner"),
            ("start", str(T / 1000 - 60)), ("end", str(T / 1000 + 60)), ("step", "15"),
            ("time", str(T / 1000 + 1)),
        ]
    status, body = await call(
        gateway, endpoint.method, path, params=params, data=data, headers=headers
    )
    text = body if isinstance(body, bytes) else repr(body).encode()
    return status, text.decode("utf-8", "replace")


@pytest.fixture
async def authed(chdb_dsn: str) -> AsyncIterator[RunningGateway]:
    tenants = [{"tenant": t, "bearer_token": token} for t, token in TOKENS.items()]
    tenants.append({"tenant": "tenant-c", "username": BASIC[0], "password": BASIC[1]})
    config = make_config(chdb_dsn, **{"auth.tenants": tenants, "admin.token": ADMIN})
    running = await start_gateway(config)
    own = {**{t: bearer(token) for t, token in TOKENS.items()}, "tenant-c": basic(*BASIC)}
    for tenant, headers in own.items():
        status, text, _ = await post(running, write_body(tenant), **headers)
        assert status == 204, text
        meta = metadata_body(("secret_" + tenant.replace("-", "_"), pb.MetricMetadata.GAUGE,
                              f"help {MARKS[tenant]}", ""))
        status, text, _ = await post(running, meta, **headers)
        assert status == 204, text
    yield running
    await running.runner.cleanup()


def others(tenant: str) -> list[str]:
    return [mark for other, mark in MARKS.items() if other != tenant]


async def test_matrix(authed: RunningGateway, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    a, b = "tenant-a", "tenant-b"
    attempts = {
        "no credentials": {},
        "wrong token": bearer("tok-wrong-000000"),
        "other tenant's token + X-Scope-OrgID": {**bearer(TOKENS[b]), "X-Scope-OrgID": a},
        "spoofed X-Scope-OrgID only": {"X-Scope-OrgID": a},
        "wrong basic password": basic(BASIC[0], "nope"),
        "admin token on a tenant endpoint": bearer(ADMIN),
        "malformed basic": {"Authorization": "Basic %%%"},
    }
    covered = []
    for endpoint in endpoints(authed):
        if endpoint.admin:
            for label, headers in (
                ("tenant token on admin", bearer(TOKENS[a])), ("no credentials", {}),
                ("basic tenant on admin", basic(*BASIC)),
            ):
                status, text = await ask(authed, endpoint, a, headers)
                assert status in (401, 403), (endpoint, label, status, text)
            status, text = await ask(authed, endpoint, a, bearer(ADMIN))
            assert status < 500, (endpoint, status, text)
            covered.append(endpoint)
            continue
        status, text = await ask(authed, endpoint, a, bearer(TOKENS[a]))
        assert status < 500, (endpoint, status, text)
        assert not any(mark in text for mark in others(a)), (endpoint, text)
        if status >= 400:
            continue  # the endpoint needs other parameters: isolation is shown elsewhere
        tenant_free = True
        for label, headers in attempts.items():
            status, text = await ask(authed, endpoint, a, headers)
            assert not any(mark in text for mark in MARKS.values()), (endpoint, label, text)
            if status in (401, 403):
                tenant_free = False
                continue
            assert status < 500, (endpoint, label, status, text)
        if not tenant_free:
            covered.append(endpoint)
    paths = {endpoint.path for endpoint in covered}
    for expected in ("/api/v1/write", "/api/v1/series", "/api/v1/labels",
                     "/api/v1/label/{name}/values"):
        assert expected in paths, sorted(paths)
    for secret in SECRETS:
        assert secret not in caplog.text


async def test_each_tenant_sees_exactly_its_own(authed: RunningGateway) -> None:
    own = {**{t: bearer(token) for t, token in TOKENS.items()}, "tenant-c": basic(*BASIC)}
    for tenant, headers in own.items():
        mine = 0
        for endpoint in endpoints(authed):
            if endpoint.admin or endpoint.path in ("/api/v1/write", "/api/v1/push"):
                continue
            status, text = await ask(authed, endpoint, tenant, headers)
            assert status < 500, (endpoint, text)
            assert not any(mark in text for mark in others(tenant)), (tenant, endpoint, text)
            mine += MARKS[tenant] in text
        assert mine >= 3, tenant  # series, label values and at least one more show the data


async def test_flags_and_errors_hide_secrets(authed: RunningGateway) -> None:
    routes = {endpoint.path for endpoint in endpoints(authed)}
    if "/api/v1/status/flags" in routes:
        status, body = await call(
            authed, "GET", "/api/v1/status/flags", headers=bearer(TOKENS["tenant-a"])
        )
        assert status == 200, body
        text = repr(body)
        assert not any(secret in text for secret in SECRETS), text
        # Nor who else is a tenant here.
        assert "tenant-b" not in text and "tenant-c" not in text and BASIC[0] not in text, text
    for secret in SECRETS:
        for headers in (bearer(secret + "x"), basic(BASIC[0], secret + "x")):
            status, body = await call(authed, "GET", "/api/v1/labels", headers=headers)
            assert status == 401
            assert secret not in repr(body)
