"""A tenant without active series, overrides or writes for the window leaves /metrics."""

from __future__ import annotations

import time

from gateway.app_keys import LIMITS
from gateway.limits.usage import remove_tenant_series
from gateway.metrics import GatewayMetrics
from tests.conftest import start_gateway
from tests.limits.helpers import T, admin, metrics, one, write
from tests.limits.test_enforcement import limited
from tests.limits.test_tracker import Clock


def series_of(values: dict[str, float], tenant: str) -> list[str]:
    return sorted(key for key in values if f'tenant="{tenant}"' in key)


async def test_a_departed_tenants_series_are_removed(chdb_dsn: str) -> None:
    running = await start_gateway(limited(chdb_dsn, max_label_value_length=5))
    service = running.app[LIMITS]
    try:
        for tenant in ("gone", "stays", "configured"):
            # One stored sample and one refused (a value over 5 characters) each.
            status, _, _ = await write(running, [one("m", v="1"), one("m", v="123456")], tenant)
            assert status == 400
        status, _ = await admin(
            running, "PUT", "/api/v1/admin/tenants/configured/limits", {"ingestion_rate": 1000}
        )
        assert status == 200
        service.export()
        before = await metrics(running)
        assert 'gateway_discarded_samples_total{reason="label_value_too_long",tenant="gone"}' in (
            before
        )
        assert len(series_of(before, "gone")) >= 8  # received/stored/new/discarded/gauges...

        # Two hours later: "stays" still writes; "gone" has neither series nor writes left.
        later = Clock(time.time() + 2 * 3600)
        service.tracker.clock = later
        service.usage.clock = later
        assert (await write(running, [one("m", T + 60_000, v="2")], "stays"))[0] == 204
        service.tracker.expire()
        service.export()

        after = await metrics(running)
        assert series_of(after, "gone") == []
        assert series_of(after, "stays") == series_of(before, "stays")
        # A tenant with overrides stays listed (its budget gauge is still meaningful).
        assert 'gateway_tenant_series_limit{tenant="configured"}' in after
        _, body = await admin(running, "GET", "/api/v1/admin/tenants")
        assert sorted(item["tenant"] for item in body["data"]["tenants"]) == [
            "configured", "stays",
        ]
        # Writing again brings it back, counting from zero.
        assert (await write(running, [one("m", T + 60_000, v="3")], "gone"))[0] == 204
        again = await metrics(running)
        assert again['gateway_ingest_stored_samples_total{tenant="gone"}'] == 1
    finally:
        await running.runner.cleanup()


def test_removal_covers_every_metric_labelled_with_the_tenant() -> None:
    metrics = GatewayMetrics()
    for tenant in ("x", "y"):
        metrics.received_samples.labels(tenant).inc()
        metrics.discarded_samples.labels(tenant, "a").inc()
        metrics.discarded_samples.labels(tenant, "b").inc()
        metrics.discarded_metadata.labels(tenant, "c").inc()
        metrics.tenant_active_series.labels(tenant).set(3)
    metrics.rejected_requests.labels("x", "400").inc()  # a reason named like the tenant: kept
    assert remove_tenant_series(metrics, "x") == 5
    text = "\n".join(
        f"{sample.name}{sample.labels}"
        for metric in metrics.registry.collect() for sample in metric.samples
    )
    assert "'tenant': 'x'" not in text and text.count("'tenant': 'y'") > 5
    assert "'reason': 'x'" in text
    assert remove_tenant_series(metrics, "x") == 0
