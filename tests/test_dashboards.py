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
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import promql_parser
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.api.test_write_errors import rw1, series
from tests.conftest import FIXTURES, RunningGateway, make_config, start_gateway

DASHBOARDS = sorted((Path(__file__).parent.parent / "grafana" / "dashboards").glob("*.json"))
# Grafana's macros and this repo's template variables, as Grafana would expand them.
MACROS = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h", "$tenant": ".*"}
# From the limits work (another issue); checked when present, an expected failure until then.
EXPECTED_LATER = {
    "gateway_tenant_active_series",
    "gateway_tenant_series_limit",
    "gateway_tenant_series_utilisation_ratio",
}
# Panels that must show data once the gateway has ingested something.
MUST_HAVE_DATA = {
    "Ingested samples/s",
    "Ingest: samples/s",
    "Requests by status",
    "Write latency percentiles",
    "Batch rows",
    "Batch flush latency",
    "Top metrics by series (the datasource's tenant)",
    "Ingested samples/s by tenant",
}
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
            for tenant, fixture in (("team-a", "rw_1.bin"), ("team-b", "rw_2.bin")):
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


async def exported(gateway: RunningGateway, wanted: set[str]) -> tuple[set[str], list[Any]]:
    """Series names /metrics declares (also of families without samples yet), and its families;
    waits a few seconds for `wanted` (the limits gauges appear after their first tick)."""
    deadline = time.monotonic() + 8
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
            if wanted <= names or time.monotonic() > deadline:
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
    assert missing <= EXPECTED_LATER, f"dashboards use metrics /metrics lacks: {missing}"

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
    if missing:
        pytest.xfail(
            "the limits work has not exported these yet (panels kept, checked when they are): "
            + ", ".join(sorted(missing))
        )
