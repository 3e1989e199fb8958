"""Hostile strings round-trip exactly through every endpoint or are refused with a 4xx.

If any user string were pasted into SQL, one of these would break the statement (a 5xx), change
its meaning (a wrong answer) or drop a table (wrong counts afterwards).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway._pb.prometheus import remote_pb2 as pb
from gateway.app_keys import LAYOUT
from gateway.storage.clickhouse import ClickHouse
from tests.api.test_write_errors import post, rw1, series
from tests.conftest import RunningGateway, make_config, start_gateway
from tests.remote.test_read_handler import EQ, RE, query, remote_read, request_body, samples_result
from tests.security.helpers import call

T = 1_700_000_000_000
ADMIN = "admin-token-0123456789"
HOSTILE = [
    "'", '"', "\\", "\\'", "\\\\'", "`", "''", "'); DROP TABLE x; --", "\\' OR 1=1", "' OR ''='",
    "1; SELECT * FROM system.tables", "{", "}", "{p0:String}", "{{x}}", "a\x00b", "\x00",
    "\n\r\t", "ÿ", "\u2028", "💥", "%s%d", "${x}", "*/", "/*", "--", "0xff", ".*", "(?i)",
    "x" * 1000,
]
NAMES = ["quote'name", 'dq"name', "back\\slash", "br{ace}", "semi;--", "nul\x00name", "ÿ"]
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
    return items


@pytest.fixture
async def loaded(chdb_dsn: str) -> AsyncIterator[RunningGateway]:
    running = await start_gateway(make_config(chdb_dsn, **{"admin.token": ADMIN}))
    status, text, _ = await post(running, rw1(*corpus()), **{"X-Scope-OrgID": TENANT})
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
    "tenant", ["'); DROP TABLE x; --", "a b", "x;y", "{p0:String}", "ÿ", "a\\b", "", "."]
)
async def test_hostile_tenant_ids_are_refused(loaded: RunningGateway, tenant: str) -> None:
    try:
        tenant.encode("latin-1")
    except UnicodeEncodeError:
        return
    for method, path in (("POST", "/api/v1/write"), ("GET", "/api/v1/labels")):
        status, body = await call(
            loaded, method, path, data=rw1(series([(b"__name__", b"t")], [(T, 1.0)])),
            headers={"X-Scope-OrgID": tenant, "Content-Type": "application/x-protobuf"},
        )
        assert 400 <= status < 500, (tenant, body)


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


async def test_admin_and_cardinality_inputs(loaded: RunningGateway) -> None:
    routes = {resource.canonical for resource in loaded.app.router.resources()}
    admin = {"Authorization": f"Bearer {ADMIN}"}
    if "/api/v1/admin/limits/{tenant}" in routes:
        overrides = {
            "drop_labels": ["x'); DROP TABLE y; --", "a\\b"],
            "max_values_per_label": {"q'\"{}": 3, "\\' OR 1=1": 0},
            "metric_budgets": {"m\x00n": 5},
        }
        path = "/api/v1/admin/limits/x'(*)!"
        status, body = await call(loaded, "PUT", path, data=json.dumps(overrides), headers=admin)
        assert status in (200, 204), body
        status, body = await call(loaded, "GET", path, headers=admin)
        assert status == 200, body
        assert body["data"]["overrides"]["max_values_per_label"] == {"\\' OR 1=1": 0, "q'\"{}": 3}
        assert body["data"]["overrides"]["metric_budgets"] == {"m\x00n": 5}
        for bad in ("'; DROP", "a b", "%00"):
            status, body = await call(loaded, "GET", f"/api/v1/admin/limits/{bad}", headers=admin)
            assert 400 <= status < 500, (bad, body)
        for bad_body in (b"{", b"\xff", b'{"drop_labels": "x\'"}', b'{"nope\'": 1}'):
            status, body = await call(loaded, "PUT", path, data=bad_body, headers=admin)
            assert status == 400, (bad_body, body)
        status, body = await call(
            loaded, "GET", "/api/v1/admin/audit", params=[("tenant", "'); DROP TABLE x; --")],
            headers=admin,
        )
        assert (status == 200 and body["data"] == []) or 400 <= status < 500, body
    if "/api/v1/cardinality/label_values" in routes:
        for value in HOSTILE[:12]:
            status, body = await call(
                loaded, "GET", "/api/v1/cardinality/label_values",
                params=[("label_names[]", "v"), ("selector", f"inj{{v={promql_string(value)}}}")],
                headers=headers(),
            )
            assert status == 200, (value, body)
            assert value in strings_in(body), body
        for name in NAMES:
            status, body = await call(
                loaded, "GET", "/api/v1/cardinality/label_values",
                params=[("label_names[]", name)], headers=headers(),
            )
            assert status == 200 or 400 <= status < 500, (name, body)


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
    assert series_count == len(HOSTILE) + len(NAMES)
    samples = 0
    for table in layout.samples_tables:
        samples += await session_store.run(
            lambda client, table=table: client.query(
                f"SELECT count() FROM {table} WHERE tenant = {{t:String}}", parameters={"t": TENANT}
            ).result_rows[0][0]
        )
    assert samples == len(HOSTILE) + len(NAMES)
