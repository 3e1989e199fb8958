"""Aggregations, vectorised over groups and steps, against per-group, per-step oracles.

Random vectors (series in three groups, samples missing at some steps, values mixing ordinary
numbers with NaN, +-Inf and large magnitudes) are aggregated by the engine in range queries;
each group's value at each step must equal the oracle applied to that group's present values in
input order.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import Callable, Sequence

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.model.labels import Labels, series_hash
from gateway.promql.context import EngineOptions
from gateway.promql.engine import instant_query, range_query
from gateway.promql.result import MatrixValue, VectorValue, format_value
from gateway.promql.source import MemorySource
from tests.promql import reference as ref

# Only a sample exactly at the step counts, so presence per step is what the data says.
OPTIONS = EngineOptions(max_samples=10_000_000, lookback_delta_ms=1)
STEP = 10_000
STEPS = 8
SPECIALS = [math.nan, math.inf, -math.inf, 0.0, -0.0, 1e11, 4.4, 1e300, -1e300, 2.0]
Rows = list[tuple[Labels, list[float | None]]]


@st.composite
def vectors(draw: st.DrawFn) -> Rows:
    ordinary = st.floats(-100, 100, allow_nan=False).map(lambda v: round(v, 1))
    value = st.one_of(ordinary, ordinary, st.sampled_from(SPECIALS), st.none())
    rows = []
    for i in range(draw(st.integers(1, 12))):
        labels = (("__name__", "m"), ("i", str(i)), ("job", draw(st.sampled_from("abc"))))
        rows.append((labels, draw(st.lists(value, min_size=STEPS, max_size=STEPS))))
    return rows


def _source(rows: Rows) -> MemorySource:
    source = MemorySource()
    for labels, values in rows:
        points = [(j * STEP, v) for j, v in enumerate(values) if v is not None]
        if points:
            source.add(labels, [t for t, _ in points], [v for _, v in points])
    return source


def _matrix(rows: Rows, query: str) -> dict[Labels, dict[int, float]]:
    result = asyncio.run(
        range_query(_source(rows), query, 0, (STEPS - 1) * STEP, STEP, OPTIONS)
    )
    assert isinstance(result.value, MatrixValue)
    return {
        s.labels: dict(zip(s.timestamps.tolist(), s.values.tolist(), strict=True))
        for s in result.value.series
    }


def _by_job(rows: Rows, step: int) -> dict[str, list[tuple[Labels, float]]]:
    """Present (labels, value) per job at a step, in input order."""
    out: dict[str, list[tuple[Labels, float]]] = {}
    for labels, values in rows:
        value = values[step]
        if value is not None:
            out.setdefault(dict(labels)["job"], []).append((labels, value))
    return out


def _same(want: float, got: float, rel: float = 1e-9) -> bool:
    if math.isnan(want) or math.isnan(got):
        return math.isnan(want) and math.isnan(got)
    return want == got or abs(want - got) <= rel * max(abs(want), abs(got))


def check_reduction(
    rows: Rows, op: str, oracle: Callable[[Sequence[float]], float], rel: float = 1e-9
) -> None:
    """`op` is an operator name, or `name(param` for one with a parameter."""
    name, _, param = op.partition("(")
    got = _matrix(rows, f"{name} by (job) ({param + ', ' if param else ''}m)")
    for step in range(STEPS):
        for job, members in _by_job(rows, step).items():
            want = oracle([v for _, v in members])
            have = got[(("job", job),)][step * STEP]
            assert _same(want, have, rel), (op, job, step, members, want, have)
    expected_groups = {job for s in range(STEPS) for job in _by_job(rows, s)}
    assert {dict(k)["job"] for k in got} == expected_groups


def _fmin(values: Sequence[float]) -> float:
    real = [v for v in values if not math.isnan(v)]
    return min(real) if real else math.nan


def _fmax(values: Sequence[float]) -> float:
    real = [v for v in values if not math.isnan(v)]
    return max(real) if real else math.nan


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(vectors())
def test_reductions(rows: Rows) -> None:
    check_reduction(rows, "sum", ref.kahan_sum)
    check_reduction(rows, "avg", ref.kahan_mean)
    check_reduction(rows, "count", lambda v: float(len(v)))
    check_reduction(rows, "min", _fmin)
    check_reduction(rows, "max", _fmax)
    check_reduction(rows, "stdvar", ref.variance, rel=1e-7)
    check_reduction(rows, "stddev", lambda v: math.sqrt(ref.variance(v)), rel=1e-7)
    for q in (0.0, 0.3, 0.5, 1.0, -1.0, 2.0):
        check_reduction(rows, f"quantile({q}", lambda v, q=q: ref.quantile(q, v))


Members = list[tuple[Labels, float]]


def _check_kept(rows: Rows, query: str, keep: Callable[[Members], list[Labels]]) -> None:
    got = _matrix(rows, query)
    for step in range(STEPS):
        want = {labels for members in _by_job(rows, step).values() for labels in keep(members)}
        have = {labels for labels, points in got.items() if step * STEP in points}
        assert want == have, (query, step, want, have)


def _ranked(members: list[tuple[Labels, float]], top: bool) -> list[Labels]:
    def key(item: tuple[int, tuple[Labels, float]]) -> tuple[int, float, int]:
        index, (_, value) = item
        if math.isnan(value):
            return (1, 0.0, index)
        return (0, -value if top else value, index)

    return [labels for _, (labels, _) in sorted(enumerate(members), key=key)]


@SETTINGS
@given(vectors(), st.sampled_from([0, 1, 2, 3, 100, -1, 1.9]))
def test_topk_bottomk_limitk(rows: Rows, k: float) -> None:
    n = max(int(k), 0)
    _check_kept(rows, f"topk by (job) ({k}, m)", lambda m: _ranked(m, True)[:n])
    _check_kept(rows, f"bottomk by (job) ({k}, m)", lambda m: _ranked(m, False)[:n])
    _check_kept(rows, f"limitk by (job) ({k}, m)", lambda m: [ls for ls, _ in m][:n])


@SETTINGS
@given(vectors(), st.sampled_from([0.0, 0.3, 0.5, 1.0, -0.4, -1.0]))
def test_limit_ratio(rows: Rows, ratio: float) -> None:
    def keep(members: list[tuple[Labels, float]]) -> list[Labels]:
        out = []
        for labels, _ in members:
            offset = series_hash(labels) / float(2**64 - 1)
            if (ratio >= 0 and offset < ratio) or (ratio < 0 and offset >= 1 + ratio):
                out.append(labels)
        return out

    _check_kept(rows, f"limit_ratio by (job) ({ratio}, m)", keep)


@SETTINGS
@given(vectors())
def test_topk_instant_order(rows: Rows) -> None:
    for step in range(STEPS):
        result = asyncio.run(instant_query(_source(rows), "topk by (job) (2, m)", step * STEP,
                                           OPTIONS))
        assert isinstance(result.value, VectorValue)
        groups = _by_job(rows, step)
        # Groups in order of first appearance, each in rank order.
        order = sorted(groups, key=lambda job: next(
            i for i, (ls, vs) in enumerate(rows) if dict(ls)["job"] == job and vs[step] is not None
        ))
        want = [ls for job in order for ls in _ranked(groups[job], True)[:2]]
        assert [s.labels for s in result.value.samples] == want


@SETTINGS
@given(vectors())
def test_count_values(rows: Rows) -> None:
    got = _matrix(rows, 'count_values by (job) ("value", m)')
    for step in range(STEPS):
        want: Counter[Labels] = Counter()
        for job, members in _by_job(rows, step).items():
            for _, value in members:
                want[(("job", job), ("value", format_value(value)))] += 1
        have = {labels: points[step * STEP] for labels, points in got.items()
                if step * STEP in points}
        assert have == {labels: float(n) for labels, n in want.items()}
