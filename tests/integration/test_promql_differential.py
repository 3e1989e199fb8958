"""Differential PromQL: the same data and queries in the gateway and a real Prometheus 2.42.

One generator writes counters with resets, gauges, classic histogram buckets, a series that goes
stale and a series that starts late, with timestamps off the step grid, by remote-write into a
Prometheus started with `--web.enable-remote-write-receiver` and into the gateway. Every query
runs as an instant query and as a range query on both; results must agree (same series, same
timestamps, values within 1e-6 relative, NaN equal to NaN).

Where 2.42 (2.x) and 3.x semantics differ, the data and times avoid the difference:
- 3.x windows are left-open `(t - r, t]`, 2.x closed `[t - r, t]`: samples sit at +123 ms (and
  more per instance) past the 15 s grid and evaluation times at +7.5 s, so no sample and no
  subquery step ever lands on a window's left edge.
- `holt_winters` is `double_exponential_smoothing` (experimental) in 3.x: not queried.
- 3.x-only functions (`sort_by_label`, `info`, `limitk`, ...) are not queried.
- `atan2` drops the metric name in 3.x (see ATAN2).
- Where a counter starts inside a rate window, 2.x caps the extrapolation at the counter's zero
  point before applying the 1.1 x sample-interval threshold, 3.x after it (2.42 gives 0.3533
  for `rate(...[5m])` one minute after the data begins, 3.x rules 0.3338): no answer depends on
  a rate over the first minutes of data (the one subquery reaching back there takes a maximum,
  which those early, smaller rates do not set).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest

from gateway._pb.prometheus import remote_pb2 as pb
from gateway.remote import snappy
from tests.conftest import RunningGateway, make_config
from tests.integration.helpers import running_gateway
from tests.prometheus_process import PrometheusProcess

BASE_MS = 1_699_999_200_000  # a whole hour
SCRAPE_MS = 15_000
MINUTES = 40
STALE_BITS = 0x7FF0000000000002
CLIENT_TIMEOUT = aiohttp.ClientTimeout(total=30)

# Off the grid: 30 min + 7.5 s after the first sample (and more instants for staleness).
AT = [BASE_MS + 30 * 60_000 + 7_500, BASE_MS + 39 * 60_000 + 7_500]
RANGE = (BASE_MS + 10 * 60_000 + 7_500, BASE_MS + MINUTES * 60_000 + 7_500, 60_000)

# 3.x drops the metric name on `atan2` like on every arithmetic operator; 2.x kept it (the 3.x
# scripts expect `{}` from `trigy atan2 trigx`). Compared without `__name__` in 2.42's answer.
ATAN2 = "memory_bytes atan2 1000"

QUERIES = [
    # selectors, offset, @
    "http_requests_total",
    'http_requests_total{job="api", code=~"5.."}',
    'http_requests_total{code!="200"} offset 5m',
    f"memory_bytes @ {(BASE_MS + 20 * 60_000 + 7_500) / 1000}",
    "memory_bytes @ end()",
    # rates and counter functions
    "rate(http_requests_total[5m])",
    "irate(http_requests_total[5m])",
    "increase(http_requests_total[10m])",
    "resets(http_requests_total[30m])",
    "changes(memory_bytes[10m])",
    "delta(memory_bytes[10m])",
    "idelta(memory_bytes[5m])",
    "deriv(memory_bytes[10m])",
    "predict_linear(memory_bytes[10m], 3600)",
    "deriv(http_requests_total[10m])",
    "predict_linear(http_requests_total[15m], 600)",
    "irate(request_duration_seconds_count[5m])",
    "idelta(http_requests_total[3m])",
    # *_over_time
    "avg_over_time(memory_bytes[10m])",
    "sum_over_time(memory_bytes[5m])",
    "min_over_time(memory_bytes[10m])",
    "max_over_time(memory_bytes[10m])",
    "count_over_time(temp_celsius[10m])",
    "last_over_time(memory_bytes[3m])",
    "present_over_time(temp_celsius[3m])",
    "stddev_over_time(memory_bytes[10m])",
    "stdvar_over_time(memory_bytes[10m])",
    "quantile_over_time(0.9, memory_bytes[10m])",
    "quantile_over_time(0.5, memory_bytes[15m])",
    "stddev_over_time(rate(http_requests_total[5m])[5m:1m])",
    "sum_over_time(http_requests_total[10m])",
    "absent_over_time(temp_celsius[2m])",
    # aggregations
    "sum by (job) (rate(http_requests_total[5m]))",
    "avg without (instance) (memory_bytes)",
    "min by (job) (memory_bytes)",
    "max(memory_bytes)",
    "count by (code) (http_requests_total)",
    "group by (job) (memory_bytes)",
    "stddev by (job) (memory_bytes)",
    "stdvar(memory_bytes)",
    "topk(2, memory_bytes)",
    "bottomk(2, memory_bytes)",
    "quantile by (job) (0.75, memory_bytes)",
    'count_values("value", resets(http_requests_total[30m]))',
    'count_values by (job) ("v", round(memory_bytes / 100))',
    "topk by (job) (1, rate(http_requests_total[5m]))",
    "bottomk(3, rate(http_requests_total[5m]))",
    "quantile(0.9, rate(http_requests_total[5m]))",
    "quantile without (instance) (0.5, memory_bytes)",
    "stdvar without (code) (rate(http_requests_total[5m]))",
    "avg by (job) (memory_bytes)",
    # binary operators and set operations
    "memory_bytes / 1024 / 1024",
    'http_requests_total{code="500"} / ignoring(code) http_requests_total{code="200"}',
    "http_requests_total / on(job, instance) group_left memory_bytes",
    "memory_bytes > bool 500",
    "memory_bytes > 500",
    'memory_bytes and on(job) http_requests_total{code="500"}',
    'memory_bytes{job="api"} or memory_bytes{instance="1"}',
    "memory_bytes unless on(instance) memory_bytes{instance=\"2\"}",
    "memory_bytes % 7 + memory_bytes ^ 0.5 - 2 * memory_bytes",
    ATAN2,
    # histograms
    "histogram_quantile(0.9, sum by (le) (rate(request_duration_seconds_bucket[5m])))",
    "histogram_quantile(0.5, rate(request_duration_seconds_bucket[10m]))",
    "histogram_quantile(0.99, sum by (job, le) (rate(request_duration_seconds_bucket[10m])))",
    "rate(request_duration_seconds_sum[5m]) / rate(request_duration_seconds_count[5m])",
    # labels, sorting, clamping, math, time
    'label_replace(memory_bytes, "host", "h-$1", "instance", "(.*)")',
    'label_join(memory_bytes, "id", "/", "job", "instance")',
    "sort(memory_bytes)",
    "sort_desc(sum by (job) (memory_bytes))",
    "clamp(memory_bytes, 300, 700)",
    "clamp_min(memory_bytes, 500) + clamp_max(memory_bytes, 500)",
    "abs(deriv(memory_bytes[5m])) * 1000",
    "round(memory_bytes, 5) + ceil(ln(memory_bytes)) + floor(log2(memory_bytes))",
    "sqrt(memory_bytes) + exp(memory_bytes / 1000) + log10(memory_bytes) + sgn(memory_bytes)",
    "sin(memory_bytes) + cos(memory_bytes)",
    "hour() + minute() + day_of_week() + day_of_month() + month() + year()",
    "days_in_month(timestamp(memory_bytes))",
    "timestamp(memory_bytes)",
    "time() - timestamp(temp_celsius)",
    "scalar(sum(memory_bytes)) * vector(2)",
    # subqueries
    "max_over_time(rate(http_requests_total[5m])[10m:1m])",
    "avg_over_time(sum by (job) (memory_bytes)[15m:30s])",
    "min_over_time(deriv(memory_bytes[5m])[10m:])",
    # staleness and absence
    "temp_celsius",
    'absent(temp_celsius{job="nothing"})',
    "absent(temp_celsius)",
    "late_metric",
    "count(late_metric offset 15m)",
]


# ---------------------------------------------------------------------------------------------
# The data


def _generate() -> list[tuple[dict[str, str], list[tuple[int, float]]]]:
    """Every series with its samples (time-ordered), deterministic."""
    rng = np.random.default_rng(42)
    steps = MINUTES * 60_000 // SCRAPE_MS + 1
    out: list[tuple[dict[str, str], list[tuple[int, float]]]] = []
    for j, job in enumerate(("api", "web")):
        for instance in range(3):
            jitter = 123 + 37 * (3 * j + instance)  # off the grid, different per target
            times = [BASE_MS + i * SCRAPE_MS + jitter for i in range(steps)]
            target = {"job": job, "instance": str(instance)}
            for code in ("200", "500"):
                increments = rng.poisson(20 if code == "200" else 2, steps).astype(float)
                counter = np.cumsum(increments)
                if code == "200" and instance == 1:  # a restart: the counter resets
                    counter[steps // 2 :] = np.cumsum(increments[steps // 2 :])
                labels = {"__name__": "http_requests_total", **target, "code": code}
                out.append((labels, list(zip(times, counter.tolist(), strict=True))))
            gauge = 500 + np.cumsum(rng.normal(0, 20, steps))
            labels = {"__name__": "memory_bytes", **target}
            out.append((labels, list(zip(times, gauge.tolist(), strict=True))))
            observations = rng.exponential(0.4, (steps, 10)) * (1 + j)
            total_count = np.cumsum(np.full(steps, 10.0))
            for le in ("0.1", "0.5", "1", "+Inf"):
                bound = float(le)
                counts = np.cumsum((observations <= bound).sum(axis=1)).astype(float)
                labels = {"__name__": "request_duration_seconds_bucket", **target, "le": le}
                out.append((labels, list(zip(times, counts.tolist(), strict=True))))
            sums = np.cumsum(observations.sum(axis=1))
            for name, series in (("sum", sums), ("count", total_count)):
                labels = {"__name__": f"request_duration_seconds_{name}", **target}
                out.append((labels, list(zip(times, series.tolist(), strict=True))))
    # A target that goes away at minute 32: a stale marker ends its series.
    stale_at = 32 * 60_000 // SCRAPE_MS
    temps = [(BASE_MS + i * SCRAPE_MS + 321, 20.0 + i % 7) for i in range(stale_at)]
    temps.append((BASE_MS + stale_at * SCRAPE_MS + 321, _stale_nan()))
    out.append(({"__name__": "temp_celsius", "job": "batch", "instance": "x"}, temps))
    # A series that appears at minute 25.
    late = [(BASE_MS + i * SCRAPE_MS + 456, float(i)) for i in range(100, steps)]
    out.append(({"__name__": "late_metric", "job": "batch"}, late))
    return out


def _stale_nan() -> float:
    return float(np.array([STALE_BITS], dtype=np.uint64).view(np.float64)[0])


def _write_request(data: list[tuple[dict[str, str], list[tuple[int, float]]]]) -> bytes:
    request = pb.WriteRequest(
        timeseries=[
            pb.TimeSeries(
                labels=[
                    pb.Label(name=k.encode(), value=v.encode()).SerializeToString()
                    for k, v in sorted(labels.items())
                ],
                samples=[pb.Sample(timestamp=t, value=v) for t, v in samples],
            )
            for labels, samples in data
        ]
    )
    return snappy.compress(request.SerializeToString())


async def _remote_write(url: str, body: bytes) -> None:
    headers = {
        "Content-Type": "application/x-protobuf",
        "Content-Encoding": "snappy",
        "X-Prometheus-Remote-Write-Version": "0.1.0",
    }
    async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as session, session.post(
        url, data=body, headers=headers
    ) as response:
        assert response.status in (200, 204), (url, response.status, await response.text())


# ---------------------------------------------------------------------------------------------
# Comparing answers


async def _query(
    session: aiohttp.ClientSession, base: str, path: str, params: dict[str, str]
) -> Any:
    async with session.get(f"{base}/api/v1/{path}", params=params) as response:
        body = await response.json()
    return body


def _close(a: str, b: str) -> bool:
    x, y = float(a), float(b)
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    return x == y or math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-12)


def _points(item: dict[str, Any]) -> list[list[Any]]:
    return item["values"] if "values" in item else [item["value"]]


def _difference(query: str, want: Any, got: Any) -> str | None:
    """Why two API answers differ, or None when they agree."""
    if want["status"] != "success":
        return f"prometheus failed: {want}"
    if got.get("status") != "success":
        return f"gateway failed: {got}"
    w, g = want["data"], got["data"]
    if w["resultType"] != g["resultType"]:
        return f"result type {g['resultType']} != {w['resultType']}"
    if w["resultType"] in ("scalar", "string"):
        same = w["result"][0] == g["result"][0] and _close(w["result"][1], g["result"][1])
        return None if same else f"{g['result']} != {w['result']}"
    def keyed(result: list[dict[str, Any]]) -> dict[tuple[tuple[str, str], ...], Any]:
        return {tuple(sorted(item["metric"].items())): _points(item) for item in result}

    wk, gk = keyed(w["result"]), keyed(g["result"])
    if len(wk) != len(w["result"]) or len(gk) != len(g["result"]):
        return "duplicate label sets"
    if set(wk) != set(gk):
        only_w, only_g = set(wk) - set(gk), set(gk) - set(wk)
        return f"series differ: only prometheus {only_w}, only gateway {only_g}"
    for labels, points in wk.items():
        mine = gk[labels]
        if [p[0] for p in points] != [p[0] for p in mine]:
            return f"{labels}: timestamps {[p[0] for p in mine]} != {[p[0] for p in points]}"
        for (t, a), (_, b) in zip(points, mine, strict=True):
            if not _close(a, b):
                return f"{labels} at {t}: {b} != {a}"
    if query.startswith("sort") and w["resultType"] == "vector":
        order = [tuple(sorted(i["metric"].items())) for i in w["result"]]
        if order != [tuple(sorted(i["metric"].items())) for i in g["result"]]:
            return "order differs"
    return None


# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data() -> list[tuple[dict[str, str], list[tuple[int, float]]]]:
    return _generate()


async def test_queries_agree_with_prometheus(
    chdb_dsn: str, tmp_path: Path, data: list[tuple[dict[str, str], list[tuple[int, float]]]]
) -> None:
    assert len(QUERIES) >= 40
    body = _write_request(data)
    prom = PrometheusProcess(
        tmp_path / "prometheus",
        {"global": {"scrape_interval": "1h"}},
        ["--web.enable-remote-write-receiver"],
    )
    async with prom, running_gateway(make_config(chdb_dsn)) as gateway:
        await _remote_write(prom.url + "/api/v1/write", body)
        await _remote_write(gateway.url + "/api/v1/write", body)
        problems = await _compare_all(prom, gateway)
    assert not problems, f"{len(problems)} differences:\n" + "\n".join(problems)


async def _compare_all(prom: PrometheusProcess, gateway: RunningGateway) -> list[str]:
    problems = []
    start, end, step = RANGE
    calls: list[tuple[str, dict[str, str]]] = []
    for query in QUERIES:
        for at in AT:
            calls.append(("query", {"query": query, "time": str(at / 1000)}))
        calls.append(
            ("query_range", {
                "query": query, "start": str(start / 1000), "end": str(end / 1000),
                "step": str(step / 1000),
            })
        )
    async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as session:
        for path, params in calls:
            want = await _query(session, prom.url, path, params)
            if params["query"] == ATAN2 and want.get("status") == "success":
                for item in want["data"]["result"]:
                    item["metric"].pop("__name__", None)
            got = await _query(session, gateway.url, path, params)
            problem = _difference(params["query"], want, got)
            if problem:
                problems.append(f"{path} {params}: {problem}")
    return problems
