"""Two replicas (two LimitsService instances) on one store: counts and overrides reconcile.

The embedded engine allows one process per data directory, so both "replicas" live in this
process and share the session's engine; each has its own tracker, exactly as two gateway
processes on one ClickHouse server would.
"""

from __future__ import annotations

import numpy as np
import pytest

from gateway.app_keys import LAYOUT, LIMITS, STORE
from gateway.limits import override_store
from gateway.limits.service import LimitsService
from gateway.metrics import GatewayMetrics
from gateway.storage.clickhouse import ClickHouse, migrate
from gateway.storage.schema import Layout
from tests.conftest import make_config, start_gateway
from tests.limits.helpers import ADMIN_TOKEN, admin


def ids(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.uint64)


async def test_a_second_replica_sees_the_first_ones_series_and_overrides(
    chdb_dsn: str, session_store: ClickHouse
) -> None:
    config = make_config(chdb_dsn, **{"limits.defaults.max_global_series_per_user": 4})
    layout = Layout.for_config(config.storage)
    session_store.run_sync(lambda client: migrate(client, layout))
    first = LimitsService(config, GatewayMetrics(), session_store, layout)
    second = LimitsService(config, GatewayMetrics(), session_store, layout)
    await first.load()
    await second.load()

    keep = np.ones(3, dtype=bool)
    refused = first.admission("a").admit(ids(1, 2, 3), keep, lambda i: (("__name__", "m"),))
    assert refused == [] and first.tracker.count("a") == 3
    assert second.tracker.count("a") == 0  # not reconciled yet: the overshoot window

    await first.sync()
    await second.reconcile()
    assert second.tracker.count("a") == 3
    assert second.tracker.metric_count("a", "m") == 3
    # The second replica now enforces the shared budget: one place left.
    labels = lambda i: (("__name__", "m"), ("i", str(i)))  # noqa: E731
    refused = second.admission("a").admit(ids(3, 10, 11), np.ones(3, dtype=bool), labels)
    assert [index for index, _ in refused] == [2]
    assert "max_global_series_per_user" in refused[0][1].message

    # An override written by one replica reaches the other on its next reload.
    entry = override_store.AuditEntry(
        override_store.now_ms(), "a", "test", "", "put", {}, {"max_global_series_per_user": 10}
    )
    overrides = {"max_global_series_per_user": 10}
    await session_store.run(
        lambda client: override_store.write_override(client, layout, overrides, entry)
    )
    await second.reload_overrides()
    assert second.limits_for("a").max_global_series_per_user == 10

    # A restarted replica starts from what both persisted.
    await second.sync()
    third = LimitsService(config, GatewayMetrics(), session_store, layout)
    await third.load()
    assert third.tracker.count("a") == 4
    assert third.limits_for("a").max_global_series_per_user == 10


# -- admin changes across replicas -------------------------------------------------------------


@pytest.fixture
async def two_gateways(chdb_dsn: str):  # type: ignore[no-untyped-def]
    """Two gateways on one store; neither reloads overrides by itself during a test."""
    config = make_config(
        chdb_dsn, **{"admin.token": ADMIN_TOKEN, "limits.reload_interval_seconds": 3600}
    )
    first = await start_gateway(config)
    second = await start_gateway(config)
    yield first, second
    await second.runner.cleanup()
    await first.runner.cleanup()


PATH = "/api/v1/admin/tenants/a/limits"


async def test_patch_merges_into_what_is_stored_not_a_stale_copy(two_gateways) -> None:  # type: ignore[no-untyped-def]
    first, second = two_gateways
    status, body = await admin(first, "PUT", PATH, {"max_global_series_per_user": 10})
    assert status == 200, body
    # The second replica has not reloaded: its copy of the overrides is empty.
    assert second.app[LIMITS].limits_for("a").max_global_series_per_user == 0
    status, body = await admin(second, "PATCH", PATH, {"ingestion_rate": 5})
    assert status == 200, body
    both = {"ingestion_rate": 5.0, "max_global_series_per_user": 10}
    assert body["data"]["overrides"] == both
    await first.app[LIMITS].reload_overrides()
    assert first.app[LIMITS].registry.admin_overrides("a") == both
    status, entries = await admin(first, "GET", "/api/v1/admin/audit?tenant=a")
    assert [(e["action"], e["old"], e["new"]) for e in entries["data"]] == [
        ("patch", {"max_global_series_per_user": 10}, both),
        ("put", {}, {"max_global_series_per_user": 10}),
    ]


async def test_a_reload_that_read_before_a_change_does_not_undo_it(two_gateways) -> None:  # type: ignore[no-untyped-def]
    first, _ = two_gateways
    service = first.app[LIMITS]
    stale = await service.fetch_overrides()  # a reload's read, before the change...
    status, body = await admin(first, "PUT", PATH, {"max_global_series_per_user": 7})
    assert status == 200, body
    service.apply_stored_overrides(stale)  # ...finishing after it
    assert service.limits_for("a").max_global_series_per_user == 7
    # A newer change through another replica does replace it.
    stale = await service.fetch_overrides()
    await admin(first, "DELETE", PATH)
    service.apply_stored_overrides(stale)
    assert service.limits_for("a").max_global_series_per_user == 0
    await service.reload_overrides()
    assert service.limits_for("a").max_global_series_per_user == 0


async def test_a_replica_with_a_slow_clock_still_orders_its_change_last(two_gateways) -> None:  # type: ignore[no-untyped-def]
    first, second = two_gateways
    store, layout = first.app[STORE], first.app[LAYOUT]
    ahead = override_store.now_ms() + 60_000  # a replica whose clock is a minute fast
    entry = override_store.AuditEntry(ahead, "a", "fast", "", "put", {}, {"ingestion_rate": 1})
    await store.run(
        lambda client: override_store.write_override(client, layout, {"ingestion_rate": 1.0}, entry)
    )
    status, body = await admin(second, "PUT", PATH, {"ingestion_rate": 2})
    assert status == 200, body
    for gateway in (first, second):
        await gateway.app[LIMITS].reload_overrides()
        assert gateway.app[LIMITS].limits_for("a").ingestion_rate == 2.0
    stored = await store.run(lambda client: override_store.read_override(client, layout, "a"))
    assert stored is not None and stored.version == ahead + 1


async def test_changes_in_the_same_millisecond_resolve_alike_everywhere(two_gateways) -> None:  # type: ignore[no-untyped-def]
    first, second = two_gateways
    store, layout = first.app[STORE], first.app[LAYOUT]
    at = override_store.now_ms()
    for rate in (3.0, 9.0, 4.0):  # three replicas, one millisecond, none saw the others
        entry = override_store.AuditEntry(at, "a", "r", "", "put", {}, {"ingestion_rate": rate})
        await store.run(
            lambda client, r=rate, e=entry: override_store.write_override(
                client, layout, {"ingestion_rate": r}, e
            )
        )
    for gateway in (first, second):
        await gateway.app[LIMITS].reload_overrides()
    rates = {gateway.app[LIMITS].limits_for("a").ingestion_rate for gateway in (first, second)}
    assert rates == {9.0}  # the highest (version, text): '{"ingestion_rate": 9.0}'


async def test_label_values_and_metadata_families_are_rebuilt_from_storage(
    chdb_dsn: str,
) -> None:
    from gateway._pb.prometheus import remote_pb2 as v1
    from gateway.remote import snappy
    from tests.api.test_write_errors import post
    from tests.limits.helpers import one, write

    config = make_config(
        chdb_dsn,
        **{
            "limits.defaults.max_values_per_label": {"pod": 2},
            "limits.defaults.max_metadata_per_user": 2,
        },
    )
    running = await start_gateway(config)
    try:
        assert (await write(running, [one("m", pod="p1"), one("m", pod="p2")]))[0] == 204
        families = v1.WriteRequest(
            metadata=[v1.MetricMetadata(metric_family_name=name) for name in ("fa", "fb")]
        )
        body = snappy.compress(families.SerializeToString())
        assert (await post(running, body, **{"X-Scope-OrgID": "a"}))[0] == 204
        await running.app[LIMITS].sync()
    finally:
        await running.runner.cleanup()
    # A restarted gateway (or another replica) reads both budgets' use from storage.
    restarted = await start_gateway(config)
    try:
        service = restarted.app[LIMITS]
        await service.reconcile()
        assert service.label_values.unknown("a", "pod", {"p1", "p2", "p3"}) == {"p3"}
        assert service.metadata_families.count("a", "") == 2
        status, text, _ = await write(restarted, [one("m", pod="p3"), one("m", pod="p1")])
        assert status == 400 and "max_values_per_label" in text, text
        assert (await write(restarted, [one("n", pod="p2")]))[0] == 204
        other = v1.WriteRequest(metadata=[v1.MetricMetadata(metric_family_name="fc")])
        status, text, _ = await post(
            restarted, snappy.compress(other.SerializeToString()), **{"X-Scope-OrgID": "a"}
        )
        assert status == 400 and "max_metadata_per_user" in text, text
    finally:
        await restarted.runner.cleanup()
