"""What 0 means in the budget maps, and what a budget changed at runtime does to existing series.

- `metric_budgets`: absent = `max_global_series_per_metric` applies, 0 = that metric unlimited
  (the Limits convention: 0 is unlimited);
- `max_values_per_label`: 0 forbids the label (the documented exception);
- as in Mimir, series budgets and label budgets are checked when a series is new: lowering one
  at runtime stops growth and never refuses samples of series that are already active.
"""

from __future__ import annotations

from tests.conftest import start_gateway
from tests.limits.helpers import T, admin, many, one, write
from tests.limits.test_enforcement import limited

LIMITS = "/api/v1/admin/tenants/a/limits"


async def test_metric_budgets_absent_is_the_default_and_zero_is_unlimited(chdb_dsn: str) -> None:
    running = await start_gateway(
        limited(chdb_dsn, max_global_series_per_metric=2, metric_budgets={"free": 0, "big": 3})
    )
    try:
        # Absent from the map: the global per-metric limit.
        status, text, _ = await write(running, many(3, "other"))
        assert status == 400 and "(max_global_series_per_metric)" in text
        # 0 in the map: no per-metric limit for that metric, though the global one is set.
        assert (await write(running, many(50, "free")))[0] == 204
        # A number: that metric's own budget, higher or lower than the global one.
        assert (await write(running, many(3, "big")))[0] == 204
        status, text, _ = await write(running, many(1, "big", start=3))
        assert status == 400 and "(metric_budgets.big)" in text
        _, body = await admin(running, "GET", LIMITS)
        assert body["data"]["limits"]["metric_budgets"] == {"big": 3, "free": 0}
    finally:
        await running.runner.cleanup()


async def test_a_label_forbidden_at_runtime_stops_new_series_only(chdb_dsn: str) -> None:
    running = await start_gateway(limited(chdb_dsn))
    try:
        existing = [one("m", user_id=str(i)) for i in range(3)]
        assert (await write(running, existing))[0] == 204
        status, body = await admin(running, "PUT", LIMITS, {"max_values_per_label": {"user_id": 0}})
        assert status == 200, body
        # Already-active series keep being accepted (as Mimir treats series limits)...
        again = [one("m", T + 15_000, user_id=str(i)) for i in range(3)]
        assert (await write(running, again))[0] == 204
        # ...while a new series with the label is refused.
        status, text, _ = await write(running, [one("m", T + 15_000, user_id="new")])
        assert status == 400 and 'label "user_id" is not allowed for tenant "a"' in text
        # To stop the label at once, drop it: the series without it are new series and go
        # through every check (here: one series, `m` without user_id).
        status, body = await admin(running, "PATCH", LIMITS, {"drop_labels": ["user_id"]})
        assert status == 200, body
        assert (await write(running, [one("m", T + 30_000, user_id="0")]))[0] == 204
    finally:
        await running.runner.cleanup()


async def test_a_series_budget_lowered_at_runtime_keeps_existing_series(chdb_dsn: str) -> None:
    running = await start_gateway(limited(chdb_dsn))
    try:
        assert (await write(running, many(5)))[0] == 204
        status, _ = await admin(running, "PUT", LIMITS, {"max_global_series_per_user": 2})
        assert status == 200
        assert (await write(running, many(5, timestamp=T + 15_000)))[0] == 204
        status, text, _ = await write(running, many(1, start=5, timestamp=T + 15_000))
        assert status == 400 and "max_global_series_per_user" in text
    finally:
        await running.runner.cleanup()


async def test_label_rules_changed_at_runtime_apply_to_existing_series(chdb_dsn: str) -> None:
    running = await start_gateway(limited(chdb_dsn))
    try:
        assert (await write(running, [one("m", v="12345")]))[0] == 204
        status, _ = await admin(running, "PUT", LIMITS, {"max_label_value_length": 3})
        assert status == 200
        status, text, _ = await write(running, [one("m", T + 15_000, v="12345")])
        assert status == 400 and "(max_label_value_length)" in text
    finally:
        await running.runner.cleanup()
