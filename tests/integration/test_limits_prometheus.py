"""A real Prometheus remote-writes more series than its tenant's budget allows.

The gateway stores the first `BUDGET` series, answers 400 for the excess (Prometheus drops those
samples and counts them as failed), keeps accepting the admitted series, and the admin API and
`/metrics` report the same active series and discards.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import make_config
from tests.integration.helpers import gateway_metrics, get, running_gateway, wait_for
from tests.limits.helpers import ADMIN_TOKEN, AS_ADMIN
from tests.prometheus_process import (
    PrometheusProcess,
    metric_sum,
    remote_write,
    self_scrape_config,
)

TENANT = "team-a"
TOKEN = "token-of-team-a"
BUDGET = 100
WAIT_SECONDS = 30.0


async def test_prometheus_over_budget_gets_400_and_counts_agree(
    chdb_dsn: str, tmp_path: Path
) -> None:
    config = make_config(
        chdb_dsn,
        **{
            "auth.tenants": [{"tenant": TENANT, "bearer_token": TOKEN}],
            "admin.token": ADMIN_TOKEN,
            "limits.defaults.max_global_series_per_user": BUDGET,
        },
    )
    async with running_gateway(config) as gateway:
        write_url = gateway.url + "/api/v1/write"

        def prometheus_config(address: str) -> dict[str, Any]:
            return self_scrape_config(address, [remote_write(write_url, "gw", bearer_token=TOKEN)])

        async with PrometheusProcess(tmp_path / "prometheus", prometheus_config) as prom:

            async def refused() -> float:
                return metric_sum(
                    await gateway_metrics(gateway), "gateway_discarded_samples_total",
                    tenant=TENANT, reason="per_user_series_limit",
                )

            await wait_for(refused, lambda value: value > 0, timeout=WAIT_SECONDS,
                           what="the gateway to refuse series over the budget")

            async def stored() -> float:
                return metric_sum(
                    await gateway_metrics(gateway), "gateway_ingest_stored_samples_total",
                    tenant=TENANT,
                )

            # Admitted series keep being accepted after the budget is reached.
            before = await stored()
            await wait_for(stored, lambda value: value >= before + BUDGET, timeout=WAIT_SECONDS,
                           what="more samples of the admitted series")
            prom_metrics = await prom.metrics()

        failed = metric_sum(prom_metrics, "prometheus_remote_storage_samples_failed_total")
        assert failed > 0, "Prometheus saw the 400s and dropped the refused samples"

        metrics = await gateway_metrics(gateway)
        status, body = await get(gateway.url + "/api/v1/admin/tenants", AS_ADMIN)
        assert status == 200, body
        usage = {item["tenant"]: item for item in body["data"]["tenants"]}[TENANT]
        assert usage["active_series"] == BUDGET
        assert usage["series_limit"] == BUDGET
        assert usage["utilisation_percent"] == 100.0
        assert metrics[f'gateway_tenant_active_series{{tenant="{TENANT}"}}'] == BUDGET
        assert metrics[f'gateway_tenant_series_limit{{tenant="{TENANT}"}}'] == BUDGET
        for reason, count in usage["discarded_samples"].items():
            assert metric_sum(
                metrics, "gateway_discarded_samples_total", tenant=TENANT, reason=reason
            ) == count, reason
        assert usage["discarded_samples"]["per_user_series_limit"] > 0
        assert usage["stored_samples"] == metric_sum(
            metrics, "gateway_ingest_stored_samples_total", tenant=TENANT
        )
        # The tenant's series in storage: exactly the budget.
        status, body = await get(
            gateway.url + "/api/v1/series?match[]={job=\"prometheus\"}",
            {"Authorization": f"Bearer {TOKEN}"},
        )
        assert status == 200 and len(body["data"]) == BUDGET
