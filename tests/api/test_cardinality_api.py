"""Cardinality explorer: Mimir's /api/v1/cardinality/* and Prometheus' /api/v1/status/tsdb."""

from __future__ import annotations

from typing import Any

import aiohttp

from gateway.app_keys import LAYOUT, LIMITS, STORE
from gateway.limits.store import ACTIVITY_TABLE
from gateway.model.labels import series_hash
from gateway.storage.writer import NewSeries, WriteBatch, write_batch
from tests.conftest import RunningGateway
from tests.limits.helpers import T, one, write

TENANT = {"X-Scope-OrgID": "card"}


async def get(
    gateway: RunningGateway, path: str, params: list[tuple[str, str]], tenant: str = "card"
) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            gateway.url + path, params=params, headers={"X-Scope-OrgID": tenant}
        ) as response,
    ):
        return response.status, await response.json()


async def load(gateway: RunningGateway) -> None:
    items = [one("http_requests_total", job="api", pod=f"p{i}", code=str(200 + i % 2))
             for i in range(6)]
    items += [one("up", T - 60_000, job="api", pod="p0"),
              one("up", T + 30_000, job="web", pod="w0")]
    status, text, _ = await write(gateway, items, tenant="card")
    assert status == 204, text
    assert (await write(gateway, [one("other_tenant_only", x="1")], tenant="else"))[0] == 204


def index_directly(gateway: RunningGateway, *label_sets: dict[str, str]) -> None:
    """Store series rows and index rows as the writer does, without the limits tracker seeing
    them: stored series that are not active (as series written before the window)."""
    series = []
    for labels in label_sets:
        pairs = tuple(sorted(labels.items()))
        series.append(NewSeries("card", series_hash(pairs), pairs, T - 3_600_000, T - 3_600_000))
    layout = gateway.app[LAYOUT]
    gateway.app[STORE].run_sync(
        lambda client: write_batch(client, layout, WriteBatch([], series, []))
    )


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
    # Mimir's limit: 0 lists nothing (the totals stay), more than 500 is refused.
    status, body = await get(gateway, "/api/v1/cardinality/label_names", [("limit", "0")])
    assert status == 200 and body["cardinality"] == [] and body["label_names_count"] == 4
    status, body = await get(gateway, "/api/v1/cardinality/label_names", [("limit", "501")])
    assert status == 400 and "at most 500" in body["error"]


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
    params = [("label_names[]", "pod"), ("label_names[]", "absent"), ("selector", "up")]
    status, body = await get(gateway, "/api/v1/cardinality/label_values", params)
    assert body["series_count_total"] == 2
    assert body["labels"] == [
        {
            "label_name": "pod", "label_values_count": 2, "series_count": 2,
            "cardinality": [
                {"label_value": "p0", "series_count": 1}, {"label_value": "w0", "series_count": 1},
            ],
        },
        {"label_name": "absent", "label_values_count": 0, "series_count": 0, "cardinality": []},
    ]
    status, body = await get(gateway, "/api/v1/cardinality/label_values", [])
    assert status == 400 and "label_names[]" in body["error"]


async def test_active_series(gateway: RunningGateway) -> None:
    await load(gateway)
    index_directly(gateway, {"__name__": "up", "job": "old", "pod": "gone"})
    status, body = await get(gateway, "/api/v1/cardinality/active_series", [("selector", "up")])
    assert status == 200, body
    # Only active series, whatever count_method says (Mimir's endpoint has none).
    assert body["data"] == [
        {"__name__": "up", "job": "api", "pod": "p0"},
        {"__name__": "up", "job": "web", "pod": "w0"},
    ]
    status, body = await get(
        gateway, "/api/v1/cardinality/active_series",
        [("selector", "up"), ("count_method", "inmemory")],
    )
    assert len(body["data"]) == 2
    status, body = await get(gateway, "/api/v1/cardinality/active_series", [])
    assert status == 400


async def test_tsdb_status(gateway: RunningGateway) -> None:
    await load(gateway)
    status, body = await get(gateway, "/api/v1/status/tsdb", [("limit", "2")])
    assert status == 200, body
    data = body["data"]
    assert data["headStats"] == {
        "numSeries": 8,
        "numLabelPairs": 13,  # distinct name=value pairs
        "chunkCount": 8,
        "minTime": T - 60_000,
        "maxTime": T + 30_000,
    }
    assert data["seriesCountByMetricName"] == [
        {"name": "http_requests_total", "value": 6},
        {"name": "up", "value": 2},
    ]
    assert data["labelValueCountByLabelName"] == [
        {"name": "pod", "value": 7}, {"name": "__name__", "value": 2},
    ]
    assert data["memoryInBytesByLabelName"] == [
        {"name": "__name__", "value": len("http_requests_total") + len("up")},
        {"name": "pod", "value": 6 * 2 + 2},
    ]
    assert data["seriesCountByLabelValuePair"] == [
        {"name": "job=api", "value": 7}, {"name": "__name__=http_requests_total", "value": 6},
    ]
    status, body = await get(gateway, "/api/v1/status/tsdb", [])
    assert len(body["data"]["seriesCountByLabelValuePair"]) == 10  # Prometheus' default
    # The other tenant's series are nowhere.
    status, body = await get(gateway, "/api/v1/status/tsdb", [], tenant="else")
    assert body["data"]["headStats"]["numSeries"] == 1


async def test_tsdb_limit_is_checked_as_prometheus_does(gateway: RunningGateway) -> None:
    for bad in ("0", "-1", "ten"):
        status, body = await get(gateway, "/api/v1/status/tsdb", [("limit", bad)])
        assert status == 400, body
        assert body["errorType"] == "bad_data"
        assert "limit must be a positive number" in body["error"]


async def test_tsdb_of_a_tenant_without_series_is_an_empty_head(gateway: RunningGateway) -> None:
    status, body = await get(gateway, "/api/v1/status/tsdb", [], tenant="nobody")
    assert status == 200, body
    assert body["data"]["headStats"] == {
        "numSeries": 0, "numLabelPairs": 0, "chunkCount": 0,
        "minTime": 2**63 - 1, "maxTime": -(2**63),
    }
    assert body["data"]["seriesCountByMetricName"] == []


async def test_count_method_inmemory_counts_stored_series_active_only_recent_ones(
    gateway: RunningGateway,
) -> None:
    await load(gateway)
    index_directly(gateway, {"__name__": "up", "job": "old", "pod": "gone"})
    path = "/api/v1/status/tsdb"
    status, body = await get(gateway, path, [("count_method", "inmemory")])
    assert status == 200 and body["data"]["headStats"]["numSeries"] == 9
    assert body["data"]["headStats"]["minTime"] == T - 3_600_000
    status, body = await get(gateway, path, [])  # inmemory is the default, as in Mimir
    assert body["data"]["headStats"]["numSeries"] == 9
    status, body = await get(gateway, path, [("count_method", "active")])
    assert status == 200 and body["data"]["headStats"]["numSeries"] == 8
    assert body["data"]["headStats"]["minTime"] == T - 60_000
    status, body = await get(
        gateway, "/api/v1/cardinality/label_names", [("count_method", "active")]
    )
    assert body["label_values_count_total"] == 2 + 2 + 2 + 7
    status, body = await get(gateway, "/api/v1/cardinality/label_names", [])
    assert body["label_values_count_total"] == 2 + 2 + 3 + 8
    for bad in ("all", "ACTIVE", "x"):
        status, body = await get(gateway, path, [("count_method", bad)])
        assert status == 400 and "count_method" in body["error"]
        assert "inmemory, active" in body["error"]


async def test_a_series_indexed_twice_counts_once(gateway: RunningGateway) -> None:
    await load(gateway)
    # A restarted gateway (empty known-series cache) indexes its series again: until ClickHouse
    # merges the parts, the index holds two rows of each.
    again = {"__name__": "up", "job": "api", "pod": "p0"}
    index_directly(gateway, again)
    _, body = await get(gateway, "/api/v1/status/tsdb", [])
    assert body["data"]["headStats"]["numSeries"] == 8
    assert body["data"]["seriesCountByMetricName"][1] == {"name": "up", "value": 2}
    _, body = await get(gateway, "/api/v1/cardinality/label_values", [("label_names[]", "job")])
    assert body["labels"][0]["cardinality"][0] == {"label_value": "api", "series_count": 7}


async def test_active_counts_see_this_replicas_writes_without_writing_when_idle(
    gateway: RunningGateway,
) -> None:
    service = gateway.app[LIMITS]
    layout, store = gateway.app[LAYOUT], gateway.app[STORE]

    def activity_rows() -> int:
        return int(store.run_sync(
            lambda client: client.command(f"SELECT count() FROM {layout.table(ACTIVITY_TABLE)}")
        ))

    await load(gateway)
    assert activity_rows() == 0  # not synced yet
    params = [("count_method", "active")]
    _, body = await get(gateway, "/api/v1/status/tsdb", params)
    assert body["data"]["headStats"]["numSeries"] == 8
    rows = activity_rows()
    assert rows == 8  # this tenant's new series only
    assert service.tracker.unpersisted(0, tenant="card", new_only=True) == []
    # Nothing new: reading again writes nothing.
    await get(gateway, "/api/v1/status/tsdb", params)
    await get(gateway, "/api/v1/cardinality/label_names", params)
    assert activity_rows() == rows
    # A new series is counted by the next read.
    assert (await write(gateway, [one("up", T + 60_000, job="new")], tenant="card"))[0] == 204
    _, body = await get(gateway, "/api/v1/status/tsdb", params)
    assert body["data"]["headStats"]["numSeries"] == 9
    assert activity_rows() == rows + 1
