"""The shipped Grafana dashboards query metrics the gateway really exports, through its own API.

The real app runs on the embedded engine; two tenants write data, so per-tenant series exist.
Then the gateway's /metrics is written back into it as tenant "demo" (what the demo stack's
Prometheus does), and every panel query runs through `/api/v1/query_range` like Grafana would.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import cramjam
import promql_parser
import pytest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

from gateway._pb.prometheus import remote_pb2
from gateway.metrics import GatewayMetrics
from tests.api.test_write_errors import rw1, series
from tests.conftest import FIXTURES, RunningGateway, make_config, start_gateway

DASHBOARDS = sorted((Path(__file__).parent.parent / "grafana" / "dashboards").glob("*.json"))
# Grafana's macros and this repo's template variables, as Grafana would expand them.
MACROS = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h", "$tenant": ".*"}
# Panels that must show data once the gateway has ingested something.
MUST_HAVE_DATA = {
    "Ingested samples/s",
    "Ingest: samples/s",
    "Requests by status",
    "Write latency percentiles",
    "Batch rows",
    "Batch flush latency",
    "Active series vs budget",
    "Budget used",
    "Top metrics by active series",
    "Ingested samples/s by tenant",
}
# Labels a scrape adds to every series (Prometheus' target labels).
SCRAPE_LABELS = {"job", "instance"}
WRITTEN = {"team-a": "rw_1.bin", "team-b": "rw_2.bin"}
RW1_HEADERS = {
    "Content-Type": "application/x-protobuf",
    "Content-Encoding": "snappy",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}


def panel_queries() -> list[tuple[str, str, str]]:
    """(dashboard file, panel title, PromQL with macros expanded) of every panel target."""
    found = []
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                found.append((path.name, panel["title"], expand(target["expr"])))
    return found


def variable_queries() -> list[tuple[str, str, str]]:
    """(dashboard, metric, label) of every `label_values(metric, label)` variable."""
    found = []
    for path in DASHBOARDS:
        for variable in json.loads(path.read_text())["templating"]["list"]:
            if variable["type"] == "query":
                match = re.fullmatch(r"label_values\((\w+), *(\w+)\)", variable["definition"])
                assert match, f"{path.name}: unsupported variable query {variable['definition']}"
                found.append((path.name, match[1], match[2]))
    return found


def expand(expr: str) -> str:
    for macro, value in MACROS.items():
        expr = expr.replace(macro, value)
    assert "$" not in expr, f"unexpanded Grafana variable in {expr}"
    return expr


def metric_names(expr: str) -> set[str]:
    names: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def label_uses(expr: str) -> list[tuple[str, set[str]]]:
    """(label, the metrics it must be on one of) for every label a query names: in selectors'
    matchers, `by`/`without` of aggregations and `on`/`ignoring`/`group_*` of binary ops."""
    uses: list[tuple[str, set[str]]] = []

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            for matcher in node.matchers.matchers:
                if matcher.name != "__name__":
                    uses.append((matcher.name, {node.name}))
        elif isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None:
            inside = metric_names(node.expr.prettify())
            uses.extend((label, inside) for label in node.modifier.labels)
        elif isinstance(node, promql_parser.BinaryExpr) and node.modifier is not None:
            both = metric_names(node.lhs.prettify()) | metric_names(node.rhs.prettify())
            labels = list(node.modifier.matching.labels) if node.modifier.matching else []
            labels += list(node.modifier.group_labels or [])
            uses.extend((label, both) for label in labels)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return uses


def declared_labels(metrics: GatewayMetrics) -> dict[str, set[str]]:
    """The label names each exported series name has, from the metrics' declarations (so also
    for families that have no samples yet, e.g. storage errors)."""
    result: dict[str, set[str]] = {}
    for collector in vars(metrics).values():
        if not isinstance(collector, MetricWrapperBase):
            continue
        family = collector.describe()[0]
        labels = set(collector._labelnames) | SCRAPE_LABELS
        for suffix in _SUFFIXES.get(family.type, ("",)):
            extra = {"le"} if suffix == "_bucket" else set()
            result[family.name + suffix] = labels | extra
    return result


def test_every_label_a_panel_names_exists_on_its_metrics() -> None:
    labels = declared_labels(GatewayMetrics())
    problems = []
    for file, title, expr in panel_queries():
        for label, metrics in label_uses(expr):
            if not any(label in labels.get(metric, set()) for metric in metrics):
                problems.append(f"{file} / {title}: no {label!r} on {sorted(metrics)}")
    for file, metric, label in variable_queries():
        if label not in labels.get(metric, set()):
            problems.append(f"{file}: label_values({metric}, {label}): no such label")
    assert not problems, "\n".join(problems)


def test_the_label_check_sees_every_kind_of_label_use() -> None:
    uses = label_uses(
        'sum by (status) (rate(a_total{handler="/w"}[1m])) / on (le) group_left (reason) b'
    )
    assert sorted(label for label, _ in uses) == ["handler", "le", "reason", "status"]
    assert dict(uses)["status"] == {"a_total"} and dict(uses)["le"] == {"a_total", "b"}


def test_every_panel_parses_and_names_gateway_metrics() -> None:
    queries = panel_queries()
    assert len(DASHBOARDS) == 2 and len(queries) >= 20
    for file, title, expr in queries:
        names = metric_names(expr)  # raises on a PromQL syntax error
        assert all(name.startswith("gateway_") for name in names), (file, title, names)


@pytest.fixture
async def gateway_with_data(chdb_dsn: str) -> AsyncIterator[RunningGateway]:
    config = make_config(chdb_dsn, **{"limits.defaults.max_global_series_per_user": 10_000})
    running = await start_gateway(config)
    try:
        async with aiohttp.ClientSession() as session:
            for tenant, fixture in WRITTEN.items():
                body = (FIXTURES / fixture).read_bytes()
                headers = {**RW1_HEADERS, "X-Scope-OrgID": tenant}
                async with session.post(
                    running.url + "/api/v1/write", data=body, headers=headers
                ) as response:
                    assert response.status == 204, await response.text()
        yield running
    finally:
        await running.runner.cleanup()


_SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_count", "_sum"),
    "summary": ("", "_count", "_sum"),
    "info": ("_info",),
}


def tenants_with(families: list[Any], name: str) -> set[str]:
    return {
        sample.labels.get("tenant", "")
        for family in families
        for sample in family.samples
        if sample.name == name
    }


async def exported(gateway: RunningGateway, wanted: set[str]) -> tuple[set[str], list[Any]]:
    """Series names /metrics declares (also of families without samples yet), and its families;
    waits a few seconds for `wanted` and for the per-tenant gauges of the tenants written (the
    limits tracker sets them at its next tick)."""
    deadline = time.monotonic() + 15
    async with aiohttp.ClientSession() as session:
        while True:
            async with session.get(gateway.url + "/metrics") as response:
                text = await response.text()
            families = list(text_string_to_metric_families(text))
            names = {
                family.name + suffix
                for family in families
                for suffix in _SUFFIXES.get(family.type, ("",))
            }
            gauges_set = all(
                set(WRITTEN) <= tenants_with(families, gauge)
                for gauge in ("gateway_tenant_active_series", "gateway_tenant_metric_active_series")
            )
            if (wanted <= names and gauges_set) or time.monotonic() > deadline:
                return names, families
            await asyncio.sleep(0.5)


async def scrape_into_gateway(gateway: RunningGateway, families: list[Any], now_ms: int) -> None:
    """Write /metrics into the gateway as tenant "demo", as three scrapes 15 s apart."""
    written = []
    for family in families:
        for sample in family.samples:
            labels = {"__name__": sample.name, "job": "metrics-gateway", "instance": "gw:9201"}
            labels.update(sample.labels)
            cumulative = sample.name.endswith(("_total", "_count", "_sum", "_bucket"))
            points = [
                (now_ms - 50_000 + 15_000 * step, sample.value + (10.0 * step if cumulative else 0))
                for step in range(3)
            ]
            pairs = [(name.encode(), labels[name].encode()) for name in sorted(labels)]
            written.append(series(pairs, points))
    body = rw1(*written)
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            gateway.url + "/api/v1/write",
            data=body,
            headers={**RW1_HEADERS, "X-Scope-OrgID": "demo"},
        ) as response,
    ):
        assert response.status == 204, await response.text()


async def test_panels_use_exported_metrics_and_run_through_the_api(
    gateway_with_data: RunningGateway,
) -> None:
    queries = panel_queries()
    used = {name for _, _, expr in queries for name in metric_names(expr)}
    used |= {metric for _, metric, _ in variable_queries()}
    declared, families = await exported(gateway_with_data, used)
    missing = used - declared
    assert not missing, f"dashboards use metrics /metrics lacks: {missing}"

    now_ms = int(time.time() * 1000)
    await scrape_into_gateway(gateway_with_data, families, now_ms)
    end = now_ms // 1000
    failures = []
    with_data: set[str] = set()
    async with aiohttp.ClientSession(headers={"X-Scope-OrgID": "demo"}) as session:
        for file, title, expr in queries:
            form = {"query": expr, "start": str(end - 300), "end": str(end), "step": "15"}
            async with session.post(
                gateway_with_data.url + "/api/v1/query_range", data=form
            ) as response:
                body = await response.json()
            if body.get("status") != "success":
                failures.append(f"{file} / {title}: {expr}: {body}")
            elif body["data"]["result"]:
                with_data.add(title)
        for file, metric, label in variable_queries():
            async with session.get(
                gateway_with_data.url + f"/api/v1/label/{label}/values",
                params={"match[]": metric},
            ) as response:
                body = await response.json()
            if body.get("status") != "success" or not body["data"]:
                failures.append(f"{file}: label_values({metric}, {label}): {body}")
    failures += [f"{title}: no data" for title in sorted(MUST_HAVE_DATA - with_data)]
    assert not failures, "\n".join(failures)


def series_per_metric(fixture: str) -> Counter[str]:
    """Series per metric name in a captured remote-write body."""
    request = remote_pb2.WriteRequest()
    request.ParseFromString(bytes(cramjam.snappy.decompress_raw((FIXTURES / fixture).read_bytes())))
    names = Counter()
    for ts in request.timeseries:
        labels = [remote_pb2.Label.FromString(raw) for raw in ts.labels]
        (name,) = [label.value for label in labels if label.name in ("__name__", b"__name__")]
        names[name.decode() if isinstance(name, bytes) else name] += 1
    return names


async def test_top_metrics_panel_shows_each_tenants_biggest_metrics(
    gateway_with_data: RunningGateway,
) -> None:
    (expr,) = [e for _, title, e in panel_queries() if title == "Top metrics by active series"]
    _, families = await exported(gateway_with_data, set())
    now_ms = int(time.time() * 1000)
    await scrape_into_gateway(gateway_with_data, families, now_ms)
    async with aiohttp.ClientSession(headers={"X-Scope-OrgID": "demo"}) as session:
        for tenant in WRITTEN:
            form = {"query": expr.replace('tenant=~".*"', f'tenant=~"{tenant}"'),
                    "time": str(now_ms / 1000)}
            async with session.post(
                gateway_with_data.url + "/api/v1/query", data=form
            ) as response:
                body = await response.json()
            assert body["status"] == "success", body
            shown = {
                item["metric"]["metric_name"]: int(float(item["value"][1]))
                for item in body["data"]["result"]
            }
            assert {item["metric"]["tenant"] for item in body["data"]["result"]} == {tenant}
            expected = series_per_metric(WRITTEN[tenant])
            assert len(shown) == min(15, len(expected))
            # The biggest metrics, with their exact series counts (ties may pick either name).
            assert all(expected[name] == count for name, count in shown.items()), shown
            smallest_shown = min(shown.values())
            assert all(count <= smallest_shown for name, count in expected.items()
                       if name not in shown)


def test_the_top_metrics_gauge_follows_the_tracker() -> None:
    from gateway.limits.tracker import ActiveSeriesTracker

    tracker = ActiveSeriesTracker(3600, lambda: 1_700_000_000.0)
    # m0 has 1 series, m1 2, ..., m24 25; "tie" has as many as m5 and was seen after it.
    names = [f"m{i}" for i in range(25) for _ in range(i + 1)] + ["tie"] * 6
    tracker.add("a", list(range(len(names))), names)
    top = tracker.top_metric_counts("a", 20)
    assert top == {f"m{i}": i + 1 for i in range(5, 25)}  # the tie goes to the name seen first
    assert tracker.top_metric_counts("a", 100) == tracker.metric_counts("a")
    assert tracker.top_metric_counts("nobody", 20) == {}

    metrics = GatewayMetrics()

    def exported() -> dict[tuple[str, str], float]:
        return {
            (s.labels["tenant"], s.labels["metric_name"]): s.value
            for s in metrics.tenant_metric_active_series.collect()[0].samples
        }

    metrics.set_top_metrics("a", top)
    metrics.set_top_metrics("b", {"x": 3})
    assert len(exported()) == 21 and exported()[("a", "m24")] == 25
    metrics.set_top_metrics("a", {"m24": 25, "new": 40})  # names that left the top go away
    assert exported() == {("a", "m24"): 25, ("a", "new"): 40, ("b", "x"): 3}
    metrics.set_top_metrics("b", {})  # a departed tenant leaves no series behind
    assert exported() == {("a", "m24"): 25, ("a", "new"): 40}
