"""The query result JSON text equals the reference: json.dumps of the result's dict form."""

from __future__ import annotations

import json
import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.promql.result import (
    MatrixValue,
    Result,
    Sample,
    ScalarValue,
    Series,
    StringValue,
    VectorValue,
    to_prometheus_json,
)
from gateway.promql.result_json import data_text, value_texts

EDGES = [0.0, -0.0, 1.0, -3.0, 0.5, 1e-3, 9.99e-4, 1e-4, 9e-5, 1e15, 1e15 - 1, 1e16, 2.0**53,
         1e21, 1e-300, 5e-324, 1e300, -1e-7, 0.1, math.nan, math.inf, -math.inf]
VALUES = st.one_of(st.floats(), st.sampled_from(EDGES), st.integers(-10**17, 10**17).map(float))
LABELS = st.lists(
    st.tuples(st.sampled_from(["__name__", "job", "ü", 'q"t', "a\\b"]), st.text(max_size=8)),
    max_size=4, unique_by=lambda pair: pair[0],
).map(lambda pairs: tuple(sorted(pairs)))
TIMES = st.integers(-(10**13), 10**13)


def reference(result: Result) -> str:
    return json.dumps(to_prometheus_json(result), separators=(",", ":"), ensure_ascii=False)


@settings(max_examples=300, deadline=None)
@given(st.lists(VALUES, max_size=30))
def test_value_texts_are_format_values(values: list[float]) -> None:
    array = np.array(values, dtype=np.float64)
    want = [to_prometheus_json(Result(ScalarValue(0, v)))["result"][1] for v in values]
    assert value_texts(array) == want


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(LABELS, st.lists(st.tuples(TIMES, VALUES), max_size=12)), max_size=5))
def test_matrix_text_is_the_reference(rows: list) -> None:  # type: ignore[type-arg]
    series = []
    for labels, points in rows:
        points = sorted(dict(points).items())
        series.append(Series(
            labels,
            np.array([t for t, _ in points], dtype=np.int64),
            np.array([v for _, v in points], dtype=np.float64),
        ))
    result = Result(MatrixValue(series))
    assert data_text(result) == reference(result)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(LABELS, TIMES, VALUES), max_size=8))
def test_vector_text_is_the_reference(rows: list) -> None:  # type: ignore[type-arg]
    result = Result(VectorValue([Sample(labels, t, v) for labels, t, v in rows]))
    assert data_text(result) == reference(result)


def test_scalar_and_string_texts_are_the_reference() -> None:
    for result in (Result(ScalarValue(1500, -0.0)), Result(StringValue(2000, 'a"b'))):
        assert data_text(result) == reference(result)
