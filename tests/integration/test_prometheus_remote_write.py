"""A real Prometheus remote-writes into the gateway as two tenants; each sees only its own data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import RunningGateway, make_config
from tests.integration.helpers import (
    basic_auth,
    gateway_metrics,
    get,
    running_gateway,
    wait_for,
)
from tests.prometheus_process import PrometheusProcess, remote_write, self_scrape_config

TOKEN_A = "token-of-team-a"
TOKEN_C = "token-of-team-c"
USER_B, PASSWORD_B = "bob", "password-of-team-b"
TENANTS = [
    {"tenant": "team-a", "bearer_token": TOKEN_A},
    {"tenant": "team-b", "username": USER_B, "password": PASSWORD_B},
    {"tenant": "team-c", "bearer_token": TOKEN_C},  # has credentials, never writes
]
AS_A = {"Authorization": f"Bearer {TOKEN_A}"}
AS_B = basic_auth(USER_B, PASSWORD_B)
AS_C = {"Authorization": f"Bearer {TOKEN_C}"}
WAIT_SECONDS = 30.0


async def series(
    gateway: RunningGateway, match: str, headers: dict[str, str], **extra: str
) -> tuple[int, Any]:
    return await get(f"{gateway.url}/api/v1/series?match[]={match}", {**headers, **extra})


def found(answer: tuple[int, Any]) -> bool:
    status, body = answer
    return status == 200 and bool(body["data"])


def queue_total(metrics: dict[str, float], name: str, queue: str) -> float:
    return sum(
        value for key, value in metrics.items()
        if key.startswith(name + "{") and f'remote_name="{queue}"' in key
    )


async def test_prometheus_writes_two_tenants_and_each_sees_only_its_own(
    chdb_dsn: str, tmp_path: Path
) -> None:
    config = make_config(chdb_dsn, **{"auth.tenants": TENANTS})
    async with running_gateway(config) as gateway:
        write_url = gateway.url + "/api/v1/write"

        def prometheus_config(address: str) -> dict[str, Any]:
            return self_scrape_config(
                address,
                [
                    remote_write(write_url, "team-a", bearer_token=TOKEN_A),
                    remote_write(write_url, "team-b", basic_auth=(USER_B, PASSWORD_B)),
                ],
            )

        async with PrometheusProcess(tmp_path / "prometheus", prometheus_config) as prom:
            expected_up = [{"__name__": "up", "instance": prom.address, "job": "prometheus"}]
            # What Prometheus itself has for its build info: the gateway must list the same.
            build_info = await wait_for(
                lambda: prom.api("series", **{"match[]": "prometheus_build_info"}),
                bool, timeout=WAIT_SECONDS, what="prometheus to scrape itself",
            )
            assert len(build_info) == 1, build_info
            assert build_info[0]["job"] == "prometheus"
            assert build_info[0]["instance"] == prom.address

            for tenant, headers in (("team-a", AS_A), ("team-b", AS_B)):
                for match, expected in (("up", expected_up), ("prometheus_build_info", build_info)):

                    async def probe(
                        match: str = match, headers: dict[str, str] = headers
                    ) -> tuple[int, Any]:
                        return await series(gateway, match, headers)

                    _, body = await wait_for(
                        probe, found, timeout=WAIT_SECONDS, what=f"{match} of {tenant}"
                    )
                    assert body["data"] == expected, (tenant, match)

            # Label matchers other than the metric name select too.
            status, body = await series(gateway, 'up{job="prometheus"}', AS_A)
            assert (status, body["data"]) == (200, expected_up)
            status, body = await series(gateway, '{job="prometheus"}', AS_B)
            assert status == 200, body
            assert len(body["data"]) > 100, "a Prometheus exposes hundreds of series"
            assert {(s["job"], s["instance"]) for s in body["data"]} == {
                ("prometheus", prom.address)
            }

            # A tenant with valid credentials that never wrote sees nothing.
            for match in ("up", "prometheus_build_info", '{job="prometheus"}'):
                status, body = await series(gateway, match, AS_C)
                assert (status, body["data"]) == (200, []), match

            # Missing or wrong credentials: 401.
            for headers in (
                {},
                {"Authorization": "Bearer not-a-token"},
                basic_auth(USER_B, "wrong-password"),
                {"X-Scope-OrgID": "team-a"},
            ):
                status, body = await series(gateway, "up", headers)
                assert (status, body["status"]) == (401, "error"), (headers, body)
            # Valid credentials naming another tenant's X-Scope-OrgID: 403.
            status, body = await series(gateway, "up", AS_A, **{"X-Scope-OrgID": "team-b"})
            assert (status, body["status"]) == (403, "error"), body
            status, body = await series(gateway, "up", AS_B, **{"X-Scope-OrgID": "team-a"})
            assert (status, body["status"]) == (403, "error"), body
            # Naming one's own tenant is fine.
            status, body = await series(gateway, "up", AS_A, **{"X-Scope-OrgID": "team-a"})
            assert (status, body["data"]) == (200, expected_up)

            prom_metrics = await prom.metrics()

        metrics = await gateway_metrics(gateway)
        for tenant in ("team-a", "team-b"):
            stored = metrics.get(f'gateway_ingest_stored_samples_total{{tenant="{tenant}"}}', 0)
            assert stored > 0, tenant
        assert not [key for key in metrics if 'tenant="team-c"' in key], "team-c never wrote"
        # Prometheus had its writes accepted: samples sent, none failed (4xx would drop them).
        for queue in ("team-a", "team-b"):
            assert queue_total(prom_metrics, "prometheus_remote_storage_samples_total", queue) > 0
            for failed in (
                "prometheus_remote_storage_samples_failed_total",
                "prometheus_remote_storage_metadata_failed_total",
            ):
                assert queue_total(prom_metrics, failed, queue) == 0, (queue, failed)
