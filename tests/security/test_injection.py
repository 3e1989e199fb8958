"""Hostile strings round-trip exactly through every endpoint or are refused with a 4xx.

If any user string were pasted into SQL, one of these would break the statement (a 5xx), change
its meaning (a wrong answer) or drop a table (wrong counts afterwards).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import pytest

from gateway._pb.prometheus import remote_pb2 as pb
from gateway.api.admin import ACTOR_HEADER
from gateway.app_keys import LAYOUT
from gateway.remote import snappy
from gateway.storage.clickhouse import ClickHouse
from tests.api.test_write_errors import post, rw1, series
from tests.conftest import RunningGateway, make_config, start_gateway
from tests.remote.test_read_handler import EQ, RE, query, remote_read, request_body, samples_result
from tests.security.helpers import call, raw

T = 1_700_000_000_000
ADMIN = "admin-token-0123456789"
HOSTILE = [
    "'", '"', "\\", "\\'", "\\\\'", "`", "''", "'); DROP TABLE x; --", "\\' OR 1=1", "' OR ''='",
    "1; SELECT * FROM system.tables", "{", "}", "{p0:String}", "{{x}}", "a\x00b", "\x00",
    "\n\r\t", "ÿ", "\u2028", "💥", "%s%d", "${x}", "*/", "/*", "--", "0xff", ".*", "(?i)",
    "x" * 1000,
]
NAMES = ["quote'name", 'dq"name', "back\\slash", "br{ace}", "semi;--", "nul\x00name", "ÿ"]
METRICS = ["inj'metric", 'inj"metric', "inj\\metric", "inj{metric}", "'); DROP TABLE x; --",
           "inj metric", "ÿ💥", "inj\x00metric", "{p0:String}"]
TENANT = "inj"


def promql_string(value: str) -> str:
    """A PromQL double-quoted string literal of `value`."""
    out = []
    for char in value:
        if char in '\\"':
            out.append("\\" + char)
        elif ord(char) < 0x20:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def label_name_segment(name: str) -> str:
    """Prometheus' U__ escaping of a label name for the URL path."""
    escaped = "".join(
        "__" if c == "_" else c if c.isascii() and c.isalnum() else f"_{ord(c):x}_" for c in name
    )
    return "U__" + escaped


def strings_in(node: Any) -> set[str]:
    """Every string anywhere in a JSON value."""
    if isinstance(node, str):
        return {node}
    if isinstance(node, dict):
        return set().union(*map(strings_in, node.values()), *map(strings_in, node))
    if isinstance(node, list):
        return set().union(*map(strings_in, node))
    return set()


def corpus() -> list[pb.TimeSeries]:
    items = [
        series([(b"__name__", b"inj"), (b"idx", b"v%d" % i), (b"v", value.encode())],
               [(T + i, float(i))])
        for i, value in enumerate(HOSTILE)
    ]
    items += [
        series([(b"__name__", b"injn"), (name.encode(), b"n%d" % i)], [(T, 1.0)])
        for i, name in enumerate(NAMES)
    ]
    items += [series([(b"__name__", name.encode()), (b"kind", b"metric")], [(T, 1.0)])
              for name in METRICS]
    return items


def corpus_body() -> bytes:
    """The corpus series with metadata (type and help) for each hostile metric name."""
    request = pb.WriteRequest(
        timeseries=corpus(),
        metadata=[
            pb.MetricMetadata(type=pb.MetricMetadata.GAUGE, metric_family_name=name,
                              help=f"help of {name}")
            for name in METRICS
        ],
    )
    return snappy.compress(request.SerializeToString())


@pytest.fixture
async def loaded(chdb_dsn: str) -> AsyncIterator[RunningGateway]:
    running = await start_gateway(make_config(chdb_dsn, **{"admin.token": ADMIN}))
    status, text, _ = await post(running, corpus_body(), **{"X-Scope-OrgID": TENANT})
    assert status == 204, text
    yield running
    await running.runner.cleanup()


def headers() -> dict[str, str]:
    return {"X-Scope-OrgID": TENANT}


async def get_data(gateway: RunningGateway, path: str, **params: str) -> Any:
    status, body = await call(gateway, "GET", path, params=list(params.items()), headers=headers())
    assert status == 200, (path, params, body)
    return body["data"]


async def test_series_labels_and_values_round_trip(loaded: RunningGateway) -> None:
    found = await get_data(loaded, "/api/v1/series", **{"match[]": "inj"})
    assert sorted(one["v"] for one in found) == sorted(HOSTILE)
    assert sorted(await get_data(loaded, "/api/v1/label/v/values")) == sorted(HOSTILE)
    names = await get_data(loaded, "/api/v1/labels")
    assert set(NAMES) <= set(names)
    for i, name in enumerate(NAMES):
        values = await get_data(loaded, f"/api/v1/label/{label_name_segment(name)}/values")
        assert values == [f"n{i}"], name


@pytest.mark.parametrize("index", range(len(HOSTILE)))
async def test_matchers_select_exactly_one_series(loaded: RunningGateway, index: int) -> None:
    value = HOSTILE[index]
    for selector in (
        f"inj{{v={promql_string(value)}}}",
        f"inj{{v=~{promql_string(re.escape(value))}}}",
        f'{{__name__="inj", v!={promql_string(value)}, idx="v{index}"}}',
    ):
        found = await get_data(loaded, "/api/v1/series", **{"match[]": selector})
        expected = [] if "!=" in selector else [value]
        assert [one["v"] for one in found] == expected, selector
    values = await get_data(
        loaded, "/api/v1/label/idx/values", **{"match[]": f"inj{{v={promql_string(value)}}}"}
    )
    assert values == [f"v{index}"]
    status, _, payload = await remote_read(
        loaded, request_body([query(0, T + 10_000, (EQ, "v", value), (RE, "__name__", "inj"))]),
        **headers(),
    )
    assert status == 200
    [[(labels, samples)]] = samples_result(payload)
    assert dict(labels)["v"] == value and samples == [(T + index, float(index))]


async def test_hostile_names_select_by_name(loaded: RunningGateway) -> None:
    for i, name in enumerate(NAMES):
        if "\x00" in name:
            continue  # PromQL has no syntax for a NUL in a label name
        selector = f"{{{promql_string(name)}={promql_string(f'n{i}')}}}"
        found = await get_data(loaded, "/api/v1/series", **{"match[]": selector})
        assert found == [{"__name__": "injn", name: f"n{i}"}], selector


async def test_queries_see_every_hostile_value(loaded: RunningGateway) -> None:
    routes = {resource.canonical for resource in loaded.app.router.resources()}
    if "/api/v1/query" not in routes:
        pytest.skip("no query API yet")
    at = str((T + 60_000) / 1000)
    data = await get_data(loaded, "/api/v1/query", query="count(inj)", time=at)
    assert data["result"][0]["value"][1] == str(len(HOSTILE))
    for value in HOSTILE:
        text = f"inj{{v={promql_string(value)}}}"
        data = await get_data(loaded, "/api/v1/query", query=text, time=at)
        assert [one["metric"]["v"] for one in data["result"]] == [value], text
        text = f"label_replace(inj{{v={promql_string(value)}}}, \"copy\", \"$1\", \"v\", \"(.*)\")"
        data = await get_data(loaded, "/api/v1/query", query=text, time=at)
        assert [one["metric"].get("copy", "") for one in data["result"]] == [value], text


async def test_invalid_utf8_and_bad_names_are_refused_cleanly(loaded: RunningGateway) -> None:
    for labels in (
        [(b"__name__", b"bad"), (b"v", b"\xff\xfe")],
        [(b"__name__", b"bad"), (b"\xc3\x28", b"x")],
        [(b"__name__", b"\xff")],
        [(b"__name__", b"bad"), (b"", b"x")],
    ):
        status, text, _ = await post(
            loaded, rw1(series(labels, [(T, 1.0)]), series([(b"__name__", b"good")], [(T, 1.0)])),
            **headers(),
        )
        assert status == 400, text
    found = await get_data(loaded, "/api/v1/series", **{"match[]": '{__name__=~"bad|good"}'})
    assert found == [{"__name__": "good"}]
    for hostile in ("inj{v=\"\\xff\"", "inj{v=~\"(\"}", "'); DROP TABLE x; --", "{", "}"):
        status, body = await call(
            loaded, "GET", "/api/v1/series", params=[("match[]", hostile)], headers=headers()
        )
        assert 400 <= status < 500, (hostile, body)


@pytest.mark.parametrize(
    "tenant",
    ["'); DROP TABLE x; --", "a b", "x;y", "{p0:String}", "ÿ", "a\\b", "", ".", "日本", "💥",
     "a\u2028b", "é"],
)
async def test_hostile_tenant_ids_are_refused(loaded: RunningGateway, tenant: str) -> None:
    """Refused with a clear 400 whatever bytes they arrive as (UTF-8 too: aiohttp's client
    cannot send those, so a raw socket does)."""
    encodings = {tenant.encode("utf-8")}
    with contextlib.suppress(UnicodeEncodeError):
        encodings.add(tenant.encode("latin-1"))
    write = rw1(series([(b"__name__", b"t")], [(T, 1.0)]))
    for encoded in sorted(encodings):
        for head, body in (
            (b"POST /api/v1/write HTTP/1.1\r\nContent-Type: application/x-protobuf\r\n", write),
            (b"GET /api/v1/labels HTTP/1.1\r\n", b""),
            (b"GET /api/v1/cardinality/label_names HTTP/1.1\r\n", b""),
        ):
            status, answer = await raw(
                loaded, head + b"Host: x\r\nX-Scope-OrgID: " + encoded + b"\r\n", body
            )
            assert status == 400, (tenant, encoded, answer)
            assert b"invalid tenant ID" in answer, answer
    assert "t" not in await get_data(loaded, "/api/v1/label/__name__/values")


RAW_TARGETS = [
    b"/api/v1/series?match[]=%ff", b'/api/v1/series?match[]=inj{v="%ff"}',
    b"/api/v1/series?match[]=\xff", b"/api/v1/series?match[]=inj{v=\"\xc3\x28\"}",
    b"/api/v1/label/%ff/values", b"/api/v1/label/\xff\xfe/values", b"/api/v1/labels?start=%ff",
    b"/api/v1/labels?limit=\xff", b"/api/v1/query?query=%c3%28", b"/api/v1/query?query=\xff",
    b"/api/v1/query_range?query=inj&start=%ff&end=1&step=1", b"/api/v1/metadata?metric=%ff",
    b"/api/v1/metadata?metric=\xff", b"/api/v1/metadata?limit=%ff",
    b"/api/v1/cardinality/label_values?label_names[]=%ff",
    b"/api/v1/cardinality/label_values?label_names[]=\xff",
    b"/api/v1/cardinality/label_names?selector=%ff", b"/api/v1/status/tsdb?selector=\xff",
    b"/api/v1/cardinality/active_series?selector=inj{v=%22%ff%22}",
    b"/api/v1/admin/tenants/%ff/limits", b"/api/v1/admin/tenants/\xff/limits",
    b"/api/v1/admin/audit?tenant=%ff", b"/api/v1/%ff",
]


@pytest.mark.parametrize("target", RAW_TARGETS)
async def test_invalid_utf8_in_urls_is_answered_cleanly(
    loaded: RunningGateway, target: bytes
) -> None:
    status, body = await raw(
        loaded, b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nX-Scope-OrgID: inj\r\n"
        b"Authorization: Bearer " + ADMIN.encode() + b"\r\n" if b"/admin/" in target else
        b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nX-Scope-OrgID: inj\r\n",
    )
    assert status < 500, (target, status, body)
    assert b"Traceback" not in body and b"internal error" not in body, body
    if status >= 400 and max(target) < 0x80:
        # Percent-encoded bytes reach the handlers: a JSON error. Raw bytes >= 0x80 in the
        # request line are refused by aiohttp's parser (plain-text 400) before routing.
        assert json.loads(body)["status"] == "error", body


@pytest.mark.parametrize(
    "header",
    [b"X-Scope-OrgID: \xff", b"X-Scope-OrgID: inj\xff", b"Authorization: Bearer \xff\xfe",
     b"Authorization: Basic \xff", b"Authorization: \xc3\x28", b"Content-Type: \xff",
     b"X-Admin-User: \xff"],
)
async def test_invalid_utf8_in_headers_is_answered_cleanly(
    loaded: RunningGateway, header: bytes
) -> None:
    write = rw1(series([(b"__name__", b"hdr")], [(T, 1.0)]))
    for head, body in (
        (b"POST /api/v1/write HTTP/1.1\r\n", write),
        (b"GET /api/v1/series?match[]=inj HTTP/1.1\r\n", b""),
        (b"PUT /api/v1/admin/tenants/t/limits HTTP/1.1\r\nAuthorization: Bearer "
         + ADMIN.encode() + b"\r\n", b"{}"),
    ):
        if header.startswith(b"Authorization") and b"admin" in head:
            continue  # two Authorization headers: not what this checks
        status, answer = await raw(loaded, head + b"Host: x\r\n" + header + b"\r\n", body)
        assert status < 500, (head, header, status, answer)
        assert b"Traceback" not in answer and b"internal error" not in answer, answer
        if header.startswith(b"X-Scope-OrgID") and b"admin" not in head:
            assert status == 400, (head, header, answer)


async def test_tenant_ids_with_quotes_and_parens_are_isolated(loaded: RunningGateway) -> None:
    odd = "x'(*)!"  # Mimir's safe set allows these
    status, text, _ = await post(
        loaded, rw1(series([(b"__name__", b"odd")], [(T, 1.0)])), **{"X-Scope-OrgID": odd}
    )
    assert status == 204, text
    status, body = await call(
        loaded, "GET", "/api/v1/label/__name__/values", headers={"X-Scope-OrgID": odd}
    )
    assert (status, body["data"]) == (200, ["odd"])
    assert "odd" not in await get_data(loaded, "/api/v1/label/__name__/values")


ADMIN_ROUTES = ("/api/v1/admin/tenants/{tenant}/limits", "/api/v1/admin/audit")
CARDINALITY_ROUTES = (
    "/api/v1/cardinality/label_names", "/api/v1/cardinality/label_values",
    "/api/v1/cardinality/active_series", "/api/v1/status/tsdb",
)


def require_routes(gateway: RunningGateway, *paths: str) -> None:
    """Fail (not skip) when an endpoint the corpus is meant to go through is not routed."""
    routes = {resource.canonical for resource in gateway.app.router.resources()}
    missing = [path for path in paths if path not in routes]
    assert not missing, f"routes missing (renamed?): {missing}"


async def test_admin_inputs(loaded: RunningGateway) -> None:
    require_routes(loaded, *ADMIN_ROUTES)
    admin = {"Authorization": f"Bearer {ADMIN}", ACTOR_HEADER: "x'); DROP TABLE a; --"}
    overrides = {
        "drop_labels": ["x'); DROP TABLE y; --", "a\\b"],
        "max_values_per_label": {"q'\"{}": 3, "\\' OR 1=1": 0},
        "metric_budgets": {"m\x00n": 5, "{p0:String}": 7},
    }
    tenant = "x'(*)!"
    path = f"/api/v1/admin/tenants/{quote(tenant)}/limits"
    status, body = await call(loaded, "PUT", path, data=json.dumps(overrides), headers=admin)
    assert status == 200, body
    status, body = await call(loaded, "GET", path, headers=admin)
    assert status == 200, body
    assert body["data"]["tenant"] == tenant
    assert body["data"]["overrides"]["drop_labels"] == ["a\\b", "x'); DROP TABLE y; --"] or (
        body["data"]["overrides"]["drop_labels"] == overrides["drop_labels"]
    )
    assert body["data"]["overrides"]["max_values_per_label"] == {"\\' OR 1=1": 0, "q'\"{}": 3}
    assert body["data"]["overrides"]["metric_budgets"] == {"m\x00n": 5, "{p0:String}": 7}
    status, body = await call(
        loaded, "PATCH", path, data=json.dumps({"metric_budgets": None}), headers=admin
    )
    assert status == 200 and body["data"]["overrides"].get("metric_budgets") is None, body
    status, body = await call(
        loaded, "GET", "/api/v1/admin/audit", params=[("tenant", tenant)], headers=admin
    )
    assert status == 200, body
    assert [entry["actor"] for entry in body["data"]] == ["x'); DROP TABLE a; --"] * 2
    for bad in ("'; DROP", "a b", "%00", "%ff", "a%2Fb", "{p0:String}", "x" * 300):
        status, body = await call(loaded, "GET", f"/api/v1/admin/tenants/{bad}/limits",
                                  headers=admin)
        assert 400 <= status < 500, (bad, body)
    for bad_body in (b"{", b"\xff", b'{"drop_labels": "x\'"}', b'{"nope\'": 1}', b"[1]",
                     b'{"metric_budgets": {"a": -1}}', b"\x00", b'"' + b"x" * 1000 + b'"'):
        for method in ("PUT", "PATCH"):
            status, body = await call(loaded, method, path, data=bad_body, headers=admin)
            assert status == 400, (method, bad_body, body)
            assert body["errorType"] == "bad_data" and "invalid limits" in body["error"], body
    for hostile in ("'); DROP TABLE x; --", "\\", "{p0:String}"):
        status, body = await call(
            loaded, "GET", "/api/v1/admin/audit", params=[("tenant", hostile)], headers=admin
        )
        assert (status, body["data"]) == (200, []), (hostile, body)
    status, body = await call(
        loaded, "GET", "/api/v1/admin/audit", params=[("limit", "'; DROP")], headers=admin
    )
    assert status == 400, body


async def test_cardinality_inputs(loaded: RunningGateway) -> None:
    require_routes(loaded, *CARDINALITY_ROUTES)
    for index, value in enumerate(HOSTILE):
        selector = f"inj{{v={promql_string(value)}}}"
        status, body = await call(
            loaded, "GET", "/api/v1/cardinality/label_values",
            params=[("label_names[]", "v"), ("selector", selector)], headers=headers(),
        )
        assert status == 200, (value, body)
        [label] = body["labels"]
        assert [one["label_value"] for one in label["cardinality"]] == [value], body
        status, body = await call(
            loaded, "POST", "/api/v1/cardinality/active_series",
            data={"selector": selector}, headers=headers(),
        )
        assert status == 200, (value, body)
        assert body["data"] == [{"__name__": "inj", "idx": f"v{index}", "v": value}], body
        status, body = await call(
            loaded, "GET", "/api/v1/cardinality/label_names", params=[("selector", selector)],
            headers=headers(),
        )
        assert status == 200, body
        assert {one["label_name"] for one in body["cardinality"]} == {"__name__", "idx", "v"}
        status, body = await call(
            loaded, "GET", "/api/v1/status/tsdb", params=[("selector", selector)],
            headers=headers(),
        )
        assert status == 200, body
        pairs = {one["name"] for one in body["data"]["seriesCountByLabelValuePair"]}
        assert f"v={value}" in pairs, body
    for name in NAMES:
        status, body = await call(
            loaded, "GET", "/api/v1/cardinality/label_values",
            params=[("label_names[]", name)], headers=headers(),
        )
        assert status == 200, (name, body)
        assert body["labels"][0]["label_name"] == name
        assert body["labels"][0]["series_count"] == 1, (name, body)
    for hostile in ("'); DROP TABLE x; --", "{", "}", 'inj{v=~"("}', "\x00"):
        for path in CARDINALITY_ROUTES:
            status, body = await call(
                loaded, "GET", path, params=[("selector", hostile), ("label_names[]", "v")],
                headers=headers(),
            )
            assert 400 <= status < 500, (path, hostile, body)
    for params in ([("count_method", "'; DROP")], [("limit", "{p0:String}")]):
        status, body = await call(
            loaded, "GET", "/api/v1/cardinality/label_names", params=params, headers=headers()
        )
        assert status == 400, (params, body)


async def test_hostile_metric_names(loaded: RunningGateway) -> None:
    names = await get_data(loaded, "/api/v1/label/__name__/values")
    assert set(METRICS) <= set(names)
    for metric in METRICS:
        selector = f"{{__name__={promql_string(metric)}}}"
        found = await get_data(loaded, "/api/v1/series", **{"match[]": selector})
        assert found == [{"__name__": metric, "kind": "metric"}], metric
        data = await get_data(loaded, "/api/v1/metadata", metric=metric)
        assert data == {metric: [{"type": "gauge", "help": f"help of {metric}", "unit": ""}]}
        data = await get_data(
            loaded, "/api/v1/query_range", query=selector, start=str(T / 1000),
            end=str(T / 1000 + 60), step="15",
        )
        assert [one["metric"] for one in data["result"]] == [
            {"__name__": metric, "kind": "metric"}
        ], metric
        status, body = await call(
            loaded, "GET", "/api/v1/cardinality/active_series", params=[("selector", selector)],
            headers=headers(),
        )
        assert (status, body.get("data")) == (200, [{"__name__": metric, "kind": "metric"}])
    status, body = await call(
        loaded, "GET", "/api/v1/cardinality/label_values",
        params=[("label_names[]", "__name__"), ("selector", '{kind="metric"}')],
        headers=headers(),
    )
    assert status == 200, body
    assert {one["label_value"] for one in body["labels"][0]["cardinality"]} == set(METRICS)
    status, body = await call(
        loaded, "GET", "/api/v1/status/tsdb", params=[("selector", '{kind="metric"}'),
                                                      ("limit", "100")], headers=headers(),
    )
    assert status == 200, body
    assert {one["name"] for one in body["data"]["seriesCountByMetricName"]} == set(METRICS)
    everything = await get_data(loaded, "/api/v1/metadata")
    assert set(METRICS) <= set(everything)
    for hostile in HOSTILE[:12]:
        if hostile not in METRICS:
            assert await get_data(loaded, "/api/v1/metadata", metric=hostile) == {}


async def test_query_range_and_remote_read_regexes(loaded: RunningGateway) -> None:
    start, end = str(T / 1000), str(T / 1000 + 60)
    for index, value in enumerate(HOSTILE):
        for text in (f"inj{{v={promql_string(value)}}}",
                     f"inj{{v=~{promql_string(re.escape(value))}}}"):
            data = await get_data(
                loaded, "/api/v1/query_range", query=text, start=start, end=end, step="15"
            )
            assert [one["metric"]["v"] for one in data["result"]] == [value], text
        status, _, payload = await remote_read(
            loaded,
            request_body([query(0, T + 10_000, (RE, "v", re.escape(value)),
                                (RE, "__name__", "inj|injn"))]),
            **headers(),
        )
        assert status == 200, payload
        [[(labels, samples)]] = samples_result(payload)
        assert dict(labels)["v"] == value and samples == [(T + index, float(index))]
    for bad in ("(", "a{1000000}", "\\", "[z-a]"):
        status, _, payload = await remote_read(
            loaded, request_body([query(0, T, (RE, "v", bad))]), **headers()
        )
        assert status == 400, (bad, payload)


async def test_tables_survive_with_the_right_counts(
    loaded: RunningGateway, session_store: ClickHouse
) -> None:
    layout = loaded.app[LAYOUT]
    database = layout.database
    before = await session_store.run(
        lambda client: client.query(f"SHOW TABLES FROM {database}").result_rows
    )
    # Every endpoint gets the corpus once more, as values and as whole parameters.
    for value in HOSTILE:
        for path in ("/api/v1/series", "/api/v1/labels", "/api/v1/label/v/values"):
            await call(loaded, "GET", path, params=[("match[]", value)], headers=headers())
            await call(loaded, "GET", path, params=[("start", value), ("limit", value)],
                       headers=headers())
    after = await session_store.run(
        lambda client: client.query(f"SHOW TABLES FROM {database}").result_rows
    )
    assert after == before
    series_count = await session_store.run(
        lambda client: client.query(
            f"SELECT count(DISTINCT series_id) FROM {layout.series_table} "
            "WHERE tenant = {t:String}",
            parameters={"t": TENANT},
        ).result_rows[0][0]
    )
    assert series_count == len(HOSTILE) + len(NAMES) + len(METRICS)
    samples = 0
    for table in layout.samples_tables:
        samples += await session_store.run(
            lambda client, table=table: client.query(
                f"SELECT count() FROM {table} WHERE tenant = {{t:String}}", parameters={"t": TENANT}
            ).result_rows[0][0]
        )
    assert samples == len(HOSTILE) + len(NAMES) + len(METRICS)
