"""Warning logs when a tenant's use of a budget crosses 80% and 100%: once per crossing."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pytest

from gateway.limits.service import LimitsService
from gateway.metrics import GatewayMetrics
from gateway.storage.clickhouse import ClickHouse
from gateway.storage.schema import Layout
from tests.conftest import make_config

LOGGER = "gateway.limits.usage"


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def service_with(
    chdb_dsn: str, store: ClickHouse, clock: Clock, **limits: Any
) -> LimitsService:
    values = {f"limits.defaults.{key}": value for key, value in limits.items()}
    config = make_config(chdb_dsn, **{"limits.active_series_window_seconds": 600, **values})
    return LimitsService(
        config, GatewayMetrics(), store, Layout.for_config(config.storage), clock=clock
    )


def admit(service: LimitsService, first: int, count: int, metric: str = "m") -> None:
    ids = np.arange(first, first + count, dtype=np.uint64)
    refused = service.admission("a").admit(
        ids, np.ones(count, dtype=bool),
        lambda i: (("__name__", metric), ("pod", f"p{first + i}")),
    )
    assert refused == []


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    found = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    caplog.clear()
    return found


def test_series_budget_warns_once_per_crossing(
    chdb_dsn: str, session_store: ClickHouse, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, LOGGER)
    clock = Clock()
    service = service_with(chdb_dsn, session_store, clock, max_global_series_per_user=10)

    admit(service, 0, 7)
    service.export()
    assert warnings(caplog) == []  # 70%
    admit(service, 7, 1)
    service.export()
    assert warnings(caplog) == [
        'tenant "a" uses 80% of its budget max_global_series_per_user (8 of 10 series)'
    ]
    service.export()
    admit(service, 8, 1)
    service.export()
    assert warnings(caplog) == []  # still in the 80% band: no repeat
    admit(service, 9, 1)
    service.export()
    service.export()
    assert warnings(caplog) == [
        'tenant "a" uses 100% of its budget max_global_series_per_user (10 of 10 series)'
    ]

    # Everything leaves the active window: going down logs nothing...
    clock.now += 11 * 60
    service.tracker.expire()
    service.export()
    assert warnings(caplog) == []
    # ...and crossing again logs again.
    admit(service, 100, 8)
    service.export()
    assert warnings(caplog) == [
        'tenant "a" uses 80% of its budget max_global_series_per_user (8 of 10 series)'
    ]

    # From 100% down to the 80% band and up again: the 100% crossing logs again.
    clock.now += 6 * 60
    admit(service, 200, 2)
    service.export()
    assert warnings(caplog) == [
        'tenant "a" uses 100% of its budget max_global_series_per_user (10 of 10 series)'
    ]
    clock.now += 5 * 60  # the 8 series of 11 minutes ago leave; 2 stay
    service.tracker.expire()
    admit(service, 300, 6)
    service.export()
    assert service.tracker.count("a") == 8 and warnings(caplog) == []
    admit(service, 400, 2)
    service.export()
    assert warnings(caplog) == [
        'tenant "a" uses 100% of its budget max_global_series_per_user (10 of 10 series)'
    ]


def test_metric_and_label_budgets_warn_too(
    chdb_dsn: str, session_store: ClickHouse, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, LOGGER)
    service = service_with(
        chdb_dsn, session_store, Clock(),
        max_global_series_per_metric=5, max_values_per_label={"pod": 20, "forbidden": 0},
        metric_budgets={"big": 100},
    )
    admit(service, 0, 4, metric="m")  # 80% of 5
    admit(service, 10, 16, metric="big")  # 16% of 100; pods: 4 + 16 = 20 of 20
    service.export()
    assert sorted(warnings(caplog)) == [
        'tenant "a" uses 100% of its budget max_values_per_label.pod (20 of 20 values)',
        'tenant "a" uses 80% of its budget max_global_series_per_metric (4 of 5 series)',
    ]
    service.export()
    assert warnings(caplog) == []
