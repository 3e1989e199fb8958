"""Cardinality explorer: Mimir's /api/v1/cardinality/* and Prometheus' /api/v1/status/tsdb."""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.conftest import RunningGateway
from tests.limits.helpers import one, write

TENANT = {"X-Scope-OrgID": "card"}


async def get(
    gateway: RunningGateway, path: str, params: list[tuple[str, str]]
) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(gateway.url + path, params=params, headers=TENANT) as response,
    ):
        return response.status, await response.json()


async def load(gateway: RunningGateway) -> None:
    items = [one("http_requests_total", job="api", pod=f"p{i}", code=str(200 + i % 2))
             for i in range(6)]
    items += [one("up", job="api", pod="p0"), one("up", job="web", pod="w0")]
    status, text, _ = await write(gateway, items, tenant="card")
    assert status == 204, text
    assert (await write(gateway, [one("other_tenant_only", x="1")], tenant="else"))[0] == 204


async def test_label_names(gateway: RunningGateway) -> None:
    await load(gateway)
    status, body = await get(gateway, "/api/v1/cardinality/label_names", [("limit", "2")])
    assert status == 200, body
    assert body["label_names_count"] == 4  # __name__, code, job, pod
    assert body["label_values_count_total"] == 2 + 2 + 2 + 7
    assert body["cardinality"] == [
        {"label_name": "pod", "label_values_count": 7},
        {"label_name": "__name__", "label_values_count": 2},
    ]
    status, body = await get(
        gateway, "/api/v1/cardinality/label_names", [("selector", '{job="web"}')]
    )
    assert body["label_names_count"] == 3 and body["label_values_count_total"] == 3


async def test_label_values(gateway: RunningGateway) -> None:
    await load(gateway)
    params = [("label_names[]", "job"), ("label_names[]", "code"), ("limit", "1")]
    status, body = await get(gateway, "/api/v1/cardinality/label_values", params)
    assert status == 200, body
    assert body["series_count_total"] == 8
    assert body["labels"] == [
        {
            "label_name": "job", "label_values_count": 2, "series_count": 8,
            "cardinality": [{"label_value": "api", "series_count": 7}],
        },
        {
            "label_name": "code", "label_values_count": 2, "series_count": 6,
            "cardinality": [{"label_value": "200", "series_count": 3}],
        },
    ]
    status, body = await get(gateway, "/api/v1/cardinality/label_values", [])
    assert status == 400 and "label_names[]" in body["error"]


async def test_active_series(gateway: RunningGateway) -> None:
    await load(gateway)
    status, body = await get(gateway, "/api/v1/cardinality/active_series", [("selector", "up")])
    assert status == 200, body
    assert body["data"] == [
        {"__name__": "up", "job": "api", "pod": "p0"},
        {"__name__": "up", "job": "web", "pod": "w0"},
    ]
    status, body = await get(gateway, "/api/v1/cardinality/active_series", [])
    assert status == 400


async def test_tsdb_status(gateway: RunningGateway) -> None:
    await load(gateway)
    status, body = await get(gateway, "/api/v1/status/tsdb", [("limit", "2")])
    assert status == 200, body
    data = body["data"]
    assert data["headStats"]["numSeries"] == 8
    assert data["seriesCountByMetricName"] == [
        {"name": "http_requests_total", "value": 6},
        {"name": "up", "value": 2},
    ]
    assert data["labelValueCountByLabelName"][0] == {"name": "pod", "value": 7}
    assert data["seriesCountByLabelValuePair"][0] == {"name": "job=api", "value": 7}
    status, body = await get(
        gateway, "/api/v1/status/tsdb", [("count_method", "all"), ("limit", "1")]
    )
    assert body["data"]["headStats"]["numSeries"] == 8
    status, body = await get(gateway, "/api/v1/status/tsdb", [("count_method", "bad")])
    assert status == 400
