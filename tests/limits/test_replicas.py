"""Two replicas (two LimitsService instances) on one store: counts and overrides reconcile.

The embedded engine allows one process per data directory, so both "replicas" live in this
process and share the session's engine; each has its own tracker, exactly as two gateway
processes on one ClickHouse server would.
"""

from __future__ import annotations

import numpy as np

from gateway.limits import store as limits_store
from gateway.limits.service import LimitsService
from gateway.metrics import GatewayMetrics
from gateway.storage.clickhouse import ClickHouse, migrate
from gateway.storage.schema import Layout
from tests.conftest import make_config


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
    entry = limits_store.AuditEntry(
        limits_store.now_ms(), "a", "test", "", "put", {}, {"max_global_series_per_user": 10}
    )
    overrides = {"max_global_series_per_user": 10}
    await session_store.run(
        lambda client: limits_store.write_override(client, layout, overrides, entry)
    )
    await second.reload_overrides()
    assert second.limits_for("a").max_global_series_per_user == 10

    # A restarted replica starts from what both persisted.
    await second.sync()
    third = LimitsService(config, GatewayMetrics(), session_store, layout)
    await third.load()
    assert third.tracker.count("a") == 4
    assert third.limits_for("a").max_global_series_per_user == 10
