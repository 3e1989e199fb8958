"""Parse errors word and place the offending token exactly as a real Prometheus 2.42 does."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from gateway.promql.errors import BadData
from gateway.promql.parse import parse_query
from tests.prometheus_process import PrometheusProcess
from tests.promql.test_parse_errors import CASES

QUERIES = [query for query, _ in CASES] + [
    "sum(x) without", "x y", "(1 2)", "x[5m:", "x = y", "x + on(a) group_left(b c) y",
    "topk(3, x) by (a b)", 'x{a="b",,}', "x @ start", "1 + + ", "sum(x) by (a) (y)",
]


async def test_parse_errors_match_prometheus(tmp_path: Path) -> None:
    prom = PrometheusProcess(tmp_path / "prometheus", {"global": {"scrape_interval": "1h"}}, [])
    differences = []
    timeout = aiohttp.ClientTimeout(total=30)
    async with prom, aiohttp.ClientSession(timeout=timeout) as session:
        for query in QUERIES:
            params = {"query": query, "time": "1"}
            async with session.get(prom.url + "/api/v1/query", params=params) as response:
                want = (await response.json())["error"]
            with pytest.raises(BadData) as info:
                parse_query(query)
            if info.value.message != want:
                differences.append(f"{query!r}: ours {info.value.message!r}, 2.42 {want!r}")
    assert not differences, "\n".join(differences)
