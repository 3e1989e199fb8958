"""Limits enforced on write through the real gateway: budgets, label rules, rate, restarts."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.config import Config
from tests.conftest import RunningGateway, make_config, start_gateway
from tests.limits.helpers import (
    ADMIN_TOKEN,
    AS_ADMIN,
    T,
    admin,
    discarded,
    many,
    metrics,
    one,
    write,
)


def limited(chdb_dsn: str, **limits: Any) -> Config:
    values: dict[str, Any] = {f"limits.defaults.{key}": value for key, value in limits.items()}
    return make_config(chdb_dsn, **{"admin.token": ADMIN_TOKEN, **values})


@pytest.fixture
async def budget5(chdb_dsn: str):  # type: ignore[no-untyped-def]
    running = await start_gateway(limited(chdb_dsn, max_global_series_per_user=5))
    yield running
    await running.runner.cleanup()


async def test_at_budget_new_series_are_refused_and_existing_ones_accepted(
    budget5: RunningGateway,
) -> None:
    status, text, _ = await write(budget5, many(5))
    assert status == 204, text
    # The five known series with new samples plus two new series: the new ones are refused.
    status, text, _ = await write(budget5, many(7, timestamp=T + 15_000))
    assert status == 400
    assert (
        'per-tenant series limit of 5 exceeded for tenant "a" (max_global_series_per_user)'
        in text
    )
    assert "(err-gateway-max-series-per-user)" in text
    # Existing series keep being accepted.
    status, text, _ = await write(budget5, many(5, timestamp=T + 30_000))
    assert status == 204, text
    values = await metrics(budget5)
    assert discarded(values, "a", "per_user_series_limit") == 2
    assert values['gateway_ingest_stored_samples_total{tenant="a"}'] == 15
    # Another tenant has its own budget.
    status, text, _ = await write(budget5, many(5), tenant="b")
    assert status == 204, text
    status, body = await admin(budget5, "GET", "/api/v1/admin/tenants")
    assert status == 200, body
    usage = {item["tenant"]: item for item in body["data"]["tenants"]}
    assert usage["a"]["active_series"] == 5 and usage["a"]["series_limit"] == 5
    assert usage["a"]["utilisation_percent"] == 100.0
    assert usage["a"]["discarded_samples"] == {"per_user_series_limit": 2}
    assert usage["b"]["active_series"] == 5 and usage["b"]["discarded_samples"] == {}


async def test_budget_survives_a_restart(chdb_dsn: str) -> None:
    config = limited(chdb_dsn, max_global_series_per_user=3)
    first = await start_gateway(config)
    try:
        assert (await write(first, many(3)))[0] == 204
    finally:
        await first.runner.cleanup()
    second = await start_gateway(config)
    try:
        status, text, _ = await write(second, many(1, start=100))
        assert status == 400 and "max_global_series_per_user" in text
        assert (await write(second, many(3, timestamp=T + 1000)))[0] == 204
        values = await metrics(second)
        assert values['gateway_tenant_active_series{tenant="a"}'] == 3
        assert values['gateway_tenant_series_limit{tenant="a"}'] == 3
        assert values['gateway_tenant_series_utilisation_ratio{tenant="a"}'] == 1.0
    finally:
        await second.runner.cleanup()


async def test_admin_put_changes_enforcement_without_restart(budget5: RunningGateway) -> None:
    assert (await write(budget5, many(5)))[0] == 204
    assert (await write(budget5, many(2, start=5)))[0] == 400
    status, body = await admin(
        budget5, "PUT", "/api/v1/admin/tenants/a/limits", {"max_global_series_per_user": 7}
    )
    assert status == 200, body
    assert body["data"]["limits"]["max_global_series_per_user"] == 7
    assert body["data"]["overrides"] == {"max_global_series_per_user": 7}
    assert (await write(budget5, many(2, start=5)))[0] == 204
    assert (await write(budget5, many(1, start=7)))[0] == 400
    # PATCH one key, then DELETE: back to the default budget.
    status, body = await admin(
        budget5, "PATCH", "/api/v1/admin/tenants/a/limits", {"max_label_value_length": 10}
    )
    assert status == 200, body
    assert body["data"]["overrides"] == {
        "max_global_series_per_user": 7, "max_label_value_length": 10
    }
    status, body = await admin(
        budget5, "PATCH", "/api/v1/admin/tenants/a/limits", {"max_label_value_length": None}
    )
    assert body["data"]["overrides"] == {"max_global_series_per_user": 7}
    status, body = await admin(budget5, "DELETE", "/api/v1/admin/tenants/a/limits")
    assert status == 200 and body["data"]["limits"]["max_global_series_per_user"] == 5
    status, body = await admin(budget5, "GET", "/api/v1/admin/audit?tenant=a")
    assert status == 200
    assert [entry["action"] for entry in body["data"]] == ["delete", "patch", "patch", "put"]
    assert body["data"][-1]["old"] == {}
    assert body["data"][-1]["new"] == {"max_global_series_per_user": 7}
    assert body["data"][0]["actor"] == "admin"


@pytest.mark.parametrize(
    ("method", "body", "raw", "words"),
    [
        ("PUT", {"max_series": 1}, None, "max_series: unknown limit"),
        ("PUT", {"max_global_series_per_user": -3}, None, "max_global_series_per_user"),
        ("PUT", {"drop_labels": "pod"}, None, "drop_labels: expected a list"),
        ("PUT", None, b"{not json", "not JSON"),
        ("PUT", [1, 2], None, "expected a JSON object"),
        ("PATCH", {"nope": None}, None, "nope: unknown limit"),
        ("PATCH", {"max_values_per_label": {"pod": "many"}}, None, "max_values_per_label.pod"),
    ],
)
async def test_bad_admin_payloads_are_refused(
    budget5: RunningGateway, method: str, body: Any, raw: bytes | None, words: str
) -> None:
    status, answer = await admin(budget5, method, "/api/v1/admin/tenants/a/limits", body, raw=raw)
    assert status == 400, answer
    assert answer["status"] == "error" and words in answer["error"]
    status, answer = await admin(budget5, "GET", "/api/v1/admin/audit")
    assert answer["data"] == []


async def test_admin_tokens_are_checked(chdb_dsn: str) -> None:
    tenants = [{"tenant": "a", "bearer_token": "tenant-token-a"}]
    config = make_config(chdb_dsn, **{"admin.token": ADMIN_TOKEN, "auth.tenants": tenants})
    running = await start_gateway(config)
    try:
        path = "/api/v1/admin/tenants"
        for headers in (
            {},
            {"Authorization": "Bearer wrong-token"},
            {"Authorization": "Bearer tenant-token-a"},  # a tenant token is not the admin token
            {"Authorization": f"Basic {ADMIN_TOKEN}"},
        ):
            status, body = await admin(running, "GET", path, headers=headers)
            assert status == 401 and body["status"] == "error", (headers, body)
        assert (await admin(running, "GET", path))[0] == 200
        # The admin token is not a tenant credential.
        status, text, _ = await write(running, many(1), **AS_ADMIN)
        assert status == 401 and "admin token is not a tenant credential" in text
    finally:
        await running.runner.cleanup()


async def test_admin_api_is_off_without_a_token(gateway: RunningGateway) -> None:
    status, body = await admin(gateway, "GET", "/api/v1/admin/tenants")
    assert status == 404 and "admin API is disabled" in body["error"]
    status, body = await admin(gateway, "PUT", "/api/v1/admin/tenants/a/limits", {})
    assert status == 404


async def test_label_budgets(chdb_dsn: str) -> None:
    running = await start_gateway(
        limited(chdb_dsn, max_values_per_label={"pod": 2, "user_id": 0})
    )
    try:
        assert (await write(running, [one("m", pod="p1"), one("m", pod="p2")]))[0] == 204
        # A known value in a new series is fine; a third value is over the budget.
        status, text, _ = await write(running, [one("n", pod="p1"), one("m", pod="p3")])
        assert status == 400
        assert 'label budget of 2 distinct values exceeded for label "pod"' in text
        status, text, _ = await write(running, [one("m", user_id="42")])
        assert status == 400 and 'label "user_id" is not allowed' in text
        values = await metrics(running)
        assert discarded(values, "a", "label_values_limit") == 1
        assert discarded(values, "a", "label_forbidden") == 1
        # The budget is per tenant.
        assert (await write(running, [one("m", pod="p3")], tenant="b"))[0] == 204
    finally:
        await running.runner.cleanup()


async def test_drop_labels(chdb_dsn: str) -> None:
    running = await start_gateway(limited(chdb_dsn, drop_labels=["replica"]))
    try:
        items = [one("m", job="x", replica="r1"), one("m", job="x", replica="r2", timestamp=T + 1)]
        assert (await write(running, items))[0] == 204
        from tests.api.test_write_errors import series_count

        assert await series_count(running, "m", **{"X-Scope-OrgID": "a"}) == 1
        _, body = await admin(running, "GET", "/api/v1/admin/tenants")
        assert body["data"]["tenants"][0]["active_series"] == 1
    finally:
        await running.runner.cleanup()


async def test_label_and_request_limits(chdb_dsn: str) -> None:
    running = await start_gateway(
        limited(
            chdb_dsn, max_label_names_per_series=3, max_label_name_length=8,
            max_label_value_length=5, max_samples_per_request=4,
            max_global_series_per_metric=2, metric_budgets={"big": 3},
        )
    )
    try:
        cases = [
            (one("m", a="1", b="2", c="3"), "max_label_names_per_series"),
            (one("m", very_long_name="1"), "max_label_name_length"),
            (one("m", a="123456"), "max_label_value_length"),
        ]
        for item, words in cases:
            status, text, _ = await write(running, [item])
            assert status == 400 and words in text, text
        # Among series within the limits, the one too long is refused and the others land.
        mixed = [one(f"ok{i}", a="1") for i in range(3)]
        status, text, _ = await write(running, [*mixed[:1], one("ok9", a="123456"), *mixed[1:]])
        assert status == 400 and "max_label_value_length" in text, text
        _, body = await admin(running, "GET", "/api/v1/admin/tenants")
        assert body["data"]["tenants"][0]["active_series"] == 3
        assert (await write(running, many(2, "small")))[0] == 204
        status, text, _ = await write(running, many(1, "small", start=2))
        assert status == 400 and "(max_global_series_per_metric)" in text
        assert (await write(running, many(3, "big")))[0] == 204
        status, text, _ = await write(running, many(1, "big", start=3))
        assert status == 400 and "(metric_budgets.big)" in text
        status, text, _ = await write(running, many(5, "big"))
        assert status == 400 and "(max_samples_per_request)" in text
        values = await metrics(running)
        assert discarded(values, "a", "max_samples_per_request") == 5
        assert discarded(values, "a", "label_value_too_long") == 2
        assert discarded(values, "a", "per_metric_series_limit") == 2
    finally:
        await running.runner.cleanup()


async def test_rate_limit_answers_429_with_retry_after(chdb_dsn: str) -> None:
    running = await start_gateway(limited(chdb_dsn, ingestion_rate=5, ingestion_burst_size=20))
    try:
        assert (await write(running, many(15)))[0] == 204
        status, text, headers = await write(running, many(15, timestamp=T + 1))
        assert status == 429, text
        assert int(headers["Retry-After"]) >= 1
        assert "(ingestion_rate, ingestion_burst_size)" in text
        assert (await write(running, many(15), tenant="b"))[0] == 204  # per tenant
        values = await metrics(running)
        assert discarded(values, "a", "rate_limited") == 15
    finally:
        await running.runner.cleanup()


async def test_metadata_budget(chdb_dsn: str) -> None:
    from gateway._pb.prometheus import remote_pb2 as v1
    from gateway.remote import snappy
    from tests.api.test_write_errors import post

    running = await start_gateway(limited(chdb_dsn, max_metadata_per_user=1))
    try:
        request = v1.WriteRequest(
            metadata=[
                v1.MetricMetadata(metric_family_name=name, type=v1.MetricMetadata.GAUGE)
                for name in ("fam_a", "fam_b")
            ]
        )
        status, text, _ = await post(
            running, snappy.compress(request.SerializeToString()), **{"X-Scope-OrgID": "a"}
        )
        assert status == 400 and "(max_metadata_per_user)" in text
        values = await metrics(running)
        key = 'gateway_discarded_metadata_total{reason="per_user_metadata_limit",tenant="a"}'
        assert values[key] == 1
    finally:
        await running.runner.cleanup()
