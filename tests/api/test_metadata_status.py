"""Metadata, exemplars, status and the 405 on label values, in Prometheus 2.42's shapes."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from gateway import __version__
from gateway._pb.prometheus import remote_pb2 as pb
from gateway.remote import snappy
from tests.api.test_series_api import call
from tests.api.test_series_api import load as load_series
from tests.api.test_write_errors import post
from tests.conftest import FIXTURES, RunningGateway, make_config, start_gateway

API_FIXTURES = FIXTURES / "api"
# The keys of runtimeinfo's data, as a real Prometheus 2.42 answered.
RUNTIMEINFO_KEYS = {
    "startTime", "CWD", "reloadConfigSuccess", "lastConfigTime", "corruptionCount",
    "goroutineCount", "GOMAXPROCS", "GOGC", "GODEBUG", "storageRetention",
}


def fixture(name: str) -> Any:
    return json.loads((API_FIXTURES / name).read_text())


def metadata_body(*entries: tuple[str, int, str, str]) -> bytes:
    message = pb.WriteRequest(
        metadata=[
            pb.MetricMetadata(metric_family_name=name, type=kind, help=text, unit=unit)
            for name, kind, text, unit in entries
        ]
    )
    return snappy.compress(message.SerializeToString())


async def get_json(
    gateway: RunningGateway, path: str, params: list[tuple[str, str]] | None = None,
    **headers: str,
) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(
        gateway.url + path, params=params or [], headers=headers
    ) as response:
        return response.status, await response.json()


async def test_metadata_from_prometheus_write(gateway: RunningGateway) -> None:
    body = (FIXTURES / "rw_3_metadata.bin").read_bytes()
    status, text, _ = await post(gateway, body)
    assert status == 204, text
    wanted = fixture("metadata_limit2.json")
    status, body_json = await get_json(gateway, "/api/v1/metadata", [("limit", "2")])
    assert status == 200
    assert body_json["status"] == wanted["status"] and len(body_json["data"]) == 2
    for entries in body_json["data"].values():
        assert [sorted(entry) for entry in entries] == [["help", "type", "unit"]]
    for name, entries in wanted["data"].items():
        status, one = await get_json(gateway, "/api/v1/metadata", [("metric", name)])
        assert one == {"status": "success", "data": {name: entries}}
    status, everything = await get_json(gateway, "/api/v1/metadata")
    assert len(everything["data"]) == 451
    assert list(everything["data"]) == sorted(everything["data"])


async def test_metadata_edge_cases(gateway: RunningGateway) -> None:
    assert await get_json(gateway, "/api/v1/metadata") == (200, fixture("metadata_one.json"))
    first = metadata_body(("requests_total", pb.MetricMetadata.COUNTER, "Requests.", ""))
    status, text, _ = await post(gateway, first)
    assert status == 204, text
    await asyncio.sleep(0.01)  # updated_at has millisecond resolution
    second = metadata_body(
        ("requests_total", pb.MetricMetadata.COUNTER, "All requests.", "requests"),
        ("temperature", pb.MetricMetadata.GAUGEHISTOGRAM, "Heat.", "celsius"),
    )
    status, text, _ = await post(gateway, second)
    assert status == 204, text
    _, body = await get_json(gateway, "/api/v1/metadata")
    assert body["data"] == {
        "requests_total": [{"type": "counter", "help": "All requests.", "unit": "requests"}],
        "temperature": [{"type": "gaugehistogram", "help": "Heat.", "unit": "celsius"}],
    }
    _, body = await get_json(gateway, "/api/v1/metadata", [("limit", "0")])
    assert body["data"] == {}  # as Prometheus: limit=0 is zero families
    _, body = await get_json(gateway, "/api/v1/metadata", [("limit", "-1")])
    assert len(body["data"]) == 2
    _, body = await get_json(gateway, "/api/v1/metadata", [("limit_per_metric", "1")])
    assert len(body["data"]) == 2
    _, body = await get_json(gateway, "/api/v1/metadata", [("metric", "nope")])
    assert body["data"] == {}
    for name in ("limit", "limit_per_metric"):
        status, body = await get_json(gateway, "/api/v1/metadata", [(name, "abc")])
        assert status == 400 and body["errorType"] == "bad_data"
        assert f"{name} must be a number" in body["error"]


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_query_exemplars(gateway: RunningGateway, method: str) -> None:
    ok = [("query", 'up{job="x"}'), ("start", "1700000000"), ("end", "1700000600")]
    assert await call(gateway, method, "/api/v1/query_exemplars", ok) == (
        200, fixture("exemplars.json")
    )
    # Grafana may send milliseconds; nothing is stored, so they only must not fail.
    millis = [("query", "up"), ("start", "1700000000000"), ("end", "1700000600000")]
    assert (await call(gateway, method, "/api/v1/query_exemplars", millis))[0] == 200
    for params, words in [
        ([("query", "up"), ("start", "abc")], 'invalid parameter "start"'),
        ([("query", "up"), ("start", "10"), ("end", "5")], "end timestamp must not be before"),
        ([("start", "1"), ("end", "2")], "no expression found"),
        ([("query", "up{")], "parse error"),
    ]:
        status, body = await call(gateway, method, "/api/v1/query_exemplars", params)
        assert status == 400 and body["errorType"] == "bad_data" and words in body["error"]


async def test_buildinfo(gateway: RunningGateway) -> None:
    theirs = fixture("buildinfo.json")
    status, ours = await get_json(gateway, "/api/v1/status/buildinfo")
    assert status == 200 and ours["status"] == "success"
    data = ours["data"]
    assert set(data) == set(theirs["data"]) | {"features"}
    assert all(isinstance(data[key], str) for key in theirs["data"])
    assert data["version"] == __version__
    # Grafana reads a features map as "this is Mimir"; nothing of Mimir's is claimed.
    assert data["features"] and set(data["features"].values()) == {"false"}


async def test_runtimeinfo(gateway: RunningGateway) -> None:
    status, body = await get_json(gateway, "/api/v1/status/runtimeinfo")
    assert status == 200 and set(body["data"]) == RUNTIMEINFO_KEYS
    data = body["data"]
    assert data["startTime"].endswith("Z") and data["reloadConfigSuccess"] is True
    assert isinstance(data["GOMAXPROCS"], int) and data["storageRetention"] == "unlimited"


async def test_flags_show_the_effective_config_without_secrets(chdb_dsn: str) -> None:
    config = make_config(
        chdb_dsn,
        **{
            "auth.tenants": [
                {"tenant": "a", "bearer_token": "token-a-secret"},
                {"tenant": "b", "username": "bob", "password": "hunter2-secret"},
            ],
            "remote_read.max_series_per_query": 1234,
        },
    )
    running = await start_gateway(config)
    try:
        status, body = await get_json(
            running, "/api/v1/status/flags", Authorization="Bearer token-a-secret"
        )
    finally:
        await running.runner.cleanup()
    assert status == 200
    flags = body["data"]
    assert all(isinstance(value, str) for value in flags.values())
    assert flags["remote_read.max_series_per_query"] == "1234"
    assert flags["storage.dsn"] == config.storage.dsn
    assert "token-a" not in json.dumps(flags) and "hunter2" not in json.dumps(flags)
    # Neither the other tenant's id and user name nor the caller's credentials are shown.
    assert flags["auth.tenants"] == "2 credentials configured (not shown)"
    assert "bob" not in json.dumps(flags) and '"b"' not in json.dumps(flags)


def test_dsn_passwords_are_redacted() -> None:
    from gateway.api.status import redact_dsn

    assert redact_dsn("https://user:pw@host:8443/db") == "https://user:<secret>@host:8443/db"
    assert redact_dsn("http://host:8123/db?user=u&password=pw") == (
        "http://host:8123/db?user=u&password=<secret>"
    )
    assert redact_dsn("chdb:///data/clickhouse") == "chdb:///data/clickhouse"


async def test_post_to_label_values_is_prometheus_405(gateway: RunningGateway) -> None:
    async with aiohttp.ClientSession() as session, session.post(
        gateway.url + "/api/v1/label/job/values", data={"match[]": "up"}
    ) as response:
        assert response.status == 405
        assert response.headers["Content-Type"].startswith("text/plain")
        assert response.headers["Allow"] == "GET, OPTIONS"
        body = await response.read()
    assert body == (API_FIXTURES / "label_values_post_405.json").read_bytes()


async def test_series_and_labels_shapes(gateway: RunningGateway) -> None:
    """Each endpoint's answer has the shape of the captured 2.42 answer to the same call."""
    await load_series(gateway)
    status, body = await call(gateway, "POST", "/api/v1/labels", [])
    assert status == 200 and _shape(body) == _shape(fixture("labels_post.json"))
    status, body = await call(gateway, "GET", "/api/v1/labels", [("match[]", "up")])
    assert _shape(body) == _shape(fixture("labels_match_get.json"))
    status, body = await call(gateway, "POST", "/api/v1/series", [("match[]", '{job="web"}')])
    assert _shape(body) == _shape(fixture("series_post.json"))
    assert body["data"] == sorted(body["data"], key=lambda labels: sorted(labels.items()))
    status, body = await call(gateway, "GET", "/api/v1/series", [])
    theirs = fixture("series_nomatch.json")
    assert status == 400 and _shape(body) == _shape(theirs)
    assert body["errorType"] == theirs["errorType"] and theirs["error"] in body["error"]
    status, body = await call(
        gateway, "GET", "/api/v1/label/job/values", [("match[]", "up")]
    )
    assert body == fixture("label_job_values_match.json") | {"data": ["web"]}
    status, body = await call(gateway, "GET", "/api/v1/label/__name__/values", [])
    assert _shape(body) == _shape(fixture("label_name_values.json"))
    assert body["data"] == ["http_requests_total", "up"]


@pytest.mark.parametrize("path", ["/api/v1/series", "/api/v1/labels", "/api/v1/label/job/values"])
async def test_end_before_start_is_empty_as_in_prometheus(
    gateway: RunningGateway, path: str
) -> None:
    await load_series(gateway)
    params = [("match[]", "up"), ("start", "1700000100"), ("end", "1700000000")]
    assert await call(gateway, "GET", path, params) == (200, {"status": "success", "data": []})


def _shape(value: Any) -> Any:
    """A JSON value with every string replaced by its type and maps of labels by one entry."""
    if isinstance(value, dict):
        if value.get("status") in ("success", "error"):
            return {key: _shape(item) if key != "status" else item for key, item in value.items()}
        return {"<map>": sorted({json.dumps(_shape(item)) for item in value.values()})}
    if isinstance(value, list):
        return sorted({json.dumps(_shape(item)) for item in value})
    return type(value).__name__
