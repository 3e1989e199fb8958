"""The engine's public surface: entry points, result JSON, errors, limits and the source."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest

from gateway.model.labels import Labels
from gateway.model.matchers import Matcher
from gateway.model.series import SeriesData
from gateway.promql.context import EngineOptions
from gateway.promql.engine import instant_query, range_query
from gateway.promql.errors import BadData, ExecutionError, QueryError, TooManySamples
from gateway.promql.result import format_value, to_prometheus_json
from gateway.promql.source import MemorySource
from gateway.promql.types import STALE_NAN

FOO_A: Labels = (("__name__", "foo"), ("a", "1"))
FOO_B: Labels = (("__name__", "foo"), ("a", "2"))


@pytest.fixture
def source() -> MemorySource:
    src = MemorySource()
    minutes = [i * 60_000 for i in range(11)]
    src.add(FOO_A, minutes, [float(i) for i in range(11)])
    src.add(FOO_B, minutes, [float(10 * i) for i in range(11)])
    return src


async def test_grafana_health_check(source: MemorySource) -> None:
    result = await instant_query(source, "1+1", 4000)
    assert to_prometheus_json(result) == {"resultType": "scalar", "result": [4, "2"]}


async def test_instant_vector_json(source: MemorySource) -> None:
    result = await instant_query(source, "foo * 2", 600_500)
    data = to_prometheus_json(result)
    assert data["resultType"] == "vector"
    assert sorted(data["result"], key=lambda s: s["metric"]["a"]) == [
        {"metric": {"a": "1"}, "value": [600.5, "20"]},
        {"metric": {"a": "2"}, "value": [600.5, "200"]},
    ]


async def test_range_query_matrix_json(source: MemorySource) -> None:
    result = await range_query(source, "foo{a='1'}", 0, 120_000, 60_000)
    assert to_prometheus_json(result) == {
        "resultType": "matrix",
        "result": [
            {
                "metric": {"__name__": "foo", "a": "1"},
                "values": [[0, "0"], [60, "1"], [120, "2"]],
            }
        ],
    }


async def test_rate_over_many_steps(source: MemorySource) -> None:
    result = await range_query(source, "rate(foo[2m])", 120_000, 600_000, 60_000)
    data = to_prometheus_json(result)
    values = {s["metric"]["a"]: s["values"] for s in data["result"]}
    assert all(v == "0.016666666666666666" for _, v in values["1"])
    assert len(values["2"]) == 9


def test_value_formatting() -> None:
    assert [format_value(v) for v in (math.nan, math.inf, -math.inf, 1e21, 1e-7, 2.0)] == [
        "NaN", "+Inf", "-Inf", "1000000000000000000000", "0.0000001", "2",
    ]


async def test_string_result(source: MemorySource) -> None:
    result = await instant_query(source, '"hello"', 1000)
    assert to_prometheus_json(result) == {"resultType": "string", "result": [1, "hello"]}


async def test_parse_error_is_bad_data(source: MemorySource) -> None:
    with pytest.raises(BadData) as info:
        await instant_query(source, "sum(foo", 0)
    assert info.value.error_type == "bad_data"
    assert info.value.status == 400
    assert info.value.message == (
        'invalid parameter "query": 1:8: parse error: unclosed left parenthesis'
    )


@pytest.mark.parametrize(
    "query", ["limitk(foo, foo)", "limit_ratio(foo % 17 / 17, foo)", "count(limitk(-foo, foo))"]
)
async def test_selecting_aggregations_need_a_scalar_parameter(
    source: MemorySource, query: str
) -> None:
    # promql-parser checks topk, bottomk and quantile itself, not limitk and limit_ratio.
    with pytest.raises(BadData) as info:
        await instant_query(source, query, 600_000)
    assert info.value.status == 400
    assert info.value.message == (
        "parse error: expected type scalar in aggregation parameter, got instant vector"
    )


async def test_many_to_many_is_execution_error(source: MemorySource) -> None:
    with pytest.raises(ExecutionError) as info:
        await instant_query(source, "foo + on() foo", 600_000)
    assert info.value.error_type == "execution"
    assert info.value.status == 422
    assert info.value.message == (
        "found duplicate series for the match group {} on the right hand-side of the "
        'operation: [{__name__="foo", a="2"}, {__name__="foo", a="1"}];many-to-many matching '
        "not allowed: matching labels must be unique on one side"
    )


async def test_many_to_many_names_the_one_side(source: MemorySource) -> None:
    with pytest.raises(ExecutionError) as info:
        await instant_query(source, "foo + ignoring(a) group_right foo", 600_000)
    assert info.value.message.startswith(
        "found duplicate series for the match group {} on the left hand-side of the operation: "
        '[{__name__="foo", a="2"}, {__name__="foo", a="1"}];'
    )


async def test_same_labelset_after_name_drop() -> None:
    src = MemorySource()
    src.add((("__name__", "x"), ("a", "1")), [0], [1.0])
    src.add((("__name__", "y"), ("a", "1")), [0], [2.0])
    with pytest.raises(ExecutionError, match="same labelset"):
        await instant_query(src, '-{__name__=~"x|y"}', 0)


async def test_too_many_samples(source: MemorySource) -> None:
    with pytest.raises(TooManySamples):
        await range_query(source, "foo", 0, 600_000, 1000, EngineOptions(max_samples=50))


async def test_too_many_points(source: MemorySource) -> None:
    with pytest.raises(BadData, match="11,000 points"):
        await range_query(source, "foo", 0, 20_000_000, 1000)


async def test_range_vector_in_range_query(source: MemorySource) -> None:
    with pytest.raises(QueryError, match="range vector"):
        await range_query(source, "foo[5m]", 0, 60_000, 60_000)


async def test_stale_marker_ends_series() -> None:
    src = MemorySource()
    src.add(FOO_A, [0, 10_000], [1.0, STALE_NAN])
    assert to_prometheus_json(await instant_query(src, "foo", 5_000))["result"]
    assert to_prometheus_json(await instant_query(src, "foo", 15_000))["result"] == []


async def test_warnings_are_reported(source: MemorySource) -> None:
    result = await range_query(source, "sort(foo)", 0, 60_000, 60_000)
    assert any("sort is ineffective" in w for w in result.warnings)


async def test_memory_source_bounds_are_inclusive(source: MemorySource) -> None:
    got = await source.select([Matcher.of("a", "=", "1")], 60_000, 120_000)
    assert len(got) == 1
    assert got[0].timestamps.tolist() == [60_000, 120_000]
    assert got[0].values.dtype == np.float64


async def test_each_selector_is_fetched_once(source: MemorySource) -> None:
    calls: list[tuple[int, int]] = []

    class Counting:
        async def select(
            self, matchers: Sequence[Matcher], start: int, end: int
        ) -> list[SeriesData]:
            calls.append((start, end))
            return await source.select(matchers, start, end)

    await range_query(Counting(), "rate(foo[5m]) / foo offset 1m", 300_000, 600_000, 60_000)
    # rate needs (300s - 5m, 600s]; the offset selector needs (240s - lookback, 540s].
    assert sorted(calls) == [(-59_999, 540_000), (1, 600_000)]
