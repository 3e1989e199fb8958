"""Range-vector functions, vectorised over all windows, against one-window-at-a-time oracles.

Random series (irregular sample times, values mixing ordinary numbers with NaN, +-Inf, large
magnitudes and runs of equal values) go through the engine as range queries; every output point
must equal the oracle in tests/promql/reference.py applied to that window's samples.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence
from itertools import pairwise

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.model.labels import Labels
from gateway.promql.context import EngineOptions
from gateway.promql.engine import range_query
from gateway.promql.result import MatrixValue
from gateway.promql.source import MemorySource
from tests.promql import reference as ref

# One series per evaluation block: the oracles check the blocked path; the conformance scripts
# (small data, one block) check the unblocked one, and the test below holds both equal.
OPTIONS = EngineOptions(max_samples=10_000_000, block_cells=1)
SPECIALS = [math.nan, math.inf, -math.inf, 0.0, -0.0, 1e11, -1e11, 4.4, 1e300, -1e300, 1e-300]

# (ts_ms, values, step_ms) -> expected value, or None when there is no output point.
Oracle = Callable[[Sequence[int], Sequence[float], int], float | None]


@st.composite
def series_values(draw: st.DrawFn) -> list[float]:
    count = draw(st.integers(1, 40))
    ordinary = st.floats(-1000, 1000, allow_nan=False).map(lambda v: round(v, 2))
    pick = st.one_of(ordinary, ordinary, ordinary, st.sampled_from(SPECIALS))
    values = draw(st.lists(pick, min_size=count, max_size=count))
    if draw(st.booleans()):
        # A run of equal values (constant windows have exact answers in Prometheus).
        start = draw(st.integers(0, count - 1))
        values[start:] = [values[start]] * (count - start)
    return values


@st.composite
def datasets(draw: st.DrawFn) -> list[tuple[Labels, list[int], list[float]]]:
    out = []
    for i in range(draw(st.integers(1, 4))):
        values = draw(series_values())
        gaps = draw(st.lists(st.integers(1, 40_000), min_size=len(values), max_size=len(values)))
        times = np.cumsum(gaps).tolist()
        out.append(((("__name__", "m"), ("i", str(i))), times, values))
    return out


Data = list[tuple[Labels, list[int], list[float]]]


def _run(data: Data, query: str, step: int) -> MatrixValue:
    source = MemorySource()
    for labels, times, values in data:
        source.add(labels, times, values)
    end = max(t[-1] for _, t, _ in data) + 30_000
    result = asyncio.run(range_query(source, query, 0, end, step, OPTIONS))
    assert isinstance(result.value, MatrixValue)
    return result.value


def _same(want: float, got: float, rel: float) -> bool:
    if math.isnan(want) or math.isnan(got):
        return math.isnan(want) and math.isnan(got)
    if want == got:
        return True
    return abs(want - got) <= rel * max(abs(want), abs(got))


def check(
    data: list[tuple[Labels, list[int], list[float]]],
    query: str,
    range_ms: int,
    step: int,
    oracle: Oracle,
    rel: float = 1e-9,
) -> None:
    """Every point of `query` equals the oracle on the window (t - range_ms, t]."""
    got = {s.labels: dict(zip(s.timestamps.tolist(), s.values.tolist(), strict=True))
           for s in _run(data, query, step).series}
    end = max(t[-1] for _, t, _ in data) + 30_000
    for labels, times, values in data:
        out_labels = tuple(p for p in labels if p[0] != "__name__")
        for t in range(0, end + 1, step):
            window = [
                (ts, v) for ts, v in zip(times, values, strict=True) if t - range_ms < ts <= t
            ]
            want = oracle([w[0] for w in window], [w[1] for w in window], t) if window else None
            have = got.get(out_labels, {}).get(t)
            if want is None:
                assert have is None, (query, labels, t, window, have)
            else:
                assert have is not None, (query, labels, t, window, want)
                assert _same(want, have, rel), (query, labels, t, window, want, have)


SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
RANGES = st.sampled_from([15_000, 60_000, 180_000])
STEPS = st.sampled_from([10_000, 30_000, 70_000])


@SETTINGS
@given(datasets(), RANGES, STEPS)
def test_sum_and_avg_over_time(data: list, range_ms: int, step: int) -> None:
    r = f"[{range_ms}ms]"
    check(data, f"sum_over_time(m{r})", range_ms, step, lambda t, v, s: ref.kahan_sum(v))
    check(data, f"avg_over_time(m{r})", range_ms, step, lambda t, v, s: ref.kahan_mean(v))


@SETTINGS
@given(datasets(), RANGES, STEPS)
def test_variance_over_time(data: list, range_ms: int, step: int) -> None:
    check(data, f"stdvar_over_time(m[{range_ms}ms])", range_ms, step,
          lambda t, v, s: ref.variance(v), rel=1e-7)
    check(data, f"stddev_over_time(m[{range_ms}ms])", range_ms, step,
          lambda t, v, s: math.sqrt(ref.variance(v)) if ref.variance(v) >= 0 else math.nan,
          rel=1e-7)


@SETTINGS
@given(datasets(), RANGES, STEPS, st.sampled_from([0.0, 0.25, 0.5, 0.9, 1.0, -0.5, 1.5]))
def test_quantile_and_mad_over_time(data: list, range_ms: int, step: int, q: float) -> None:
    check(data, f"quantile_over_time({q}, m[{range_ms}ms])", range_ms, step,
          lambda t, v, s: ref.quantile(q, v))
    check(data, f"mad_over_time(m[{range_ms}ms])", range_ms, step, lambda t, v, s: ref.mad(v))


@SETTINGS
@given(datasets(), RANGES, STEPS)
def test_ts_of_extremes(data: list, range_ms: int, step: int) -> None:
    check(data, f"ts_of_max_over_time(m[{range_ms}ms])", range_ms, step,
          lambda t, v, s: ref.ts_of_extreme(t, v, True))
    check(data, f"ts_of_min_over_time(m[{range_ms}ms])", range_ms, step,
          lambda t, v, s: ref.ts_of_extreme(t, v, False))


def _two(fn: Oracle) -> Oracle:
    return lambda t, v, s: fn(t, v, s) if len(v) >= 2 else None


@SETTINGS
@given(datasets(), RANGES, STEPS)
def test_deriv_and_predict_linear(data: list, range_ms: int, step: int) -> None:
    check(data, f"deriv(m[{range_ms}ms])", range_ms, step,
          _two(lambda t, v, s: ref.linear_regression(t, v, t[0])[0]), rel=1e-6)

    def predict(t: Sequence[int], v: Sequence[float], s: int) -> float:
        slope, intercept = ref.linear_regression(t, v, s)
        return slope * 100 + intercept

    check(data, f"predict_linear(m[{range_ms}ms], 100)", range_ms, step, _two(predict), rel=1e-6)


@SETTINGS
@given(datasets(), RANGES, STEPS)
def test_double_exponential_smoothing(data: list, range_ms: int, step: int) -> None:
    check(data, f"double_exponential_smoothing(m[{range_ms}ms], 0.3, 0.6)", range_ms, step,
          _two(lambda t, v, s: ref.smooth(v, 0.3, 0.6)))


@SETTINGS
@given(datasets(), RANGES, STEPS)
def test_irate_idelta(data: list, range_ms: int, step: int) -> None:
    def irate(t: Sequence[int], v: Sequence[float], s: int) -> float:
        diff = v[-1] if v[-1] < v[-2] else v[-1] - v[-2]
        return diff / ((t[-1] - t[-2]) / 1000.0)

    check(data, f"irate(m[{range_ms}ms])", range_ms, step, _two(irate))
    check(data, f"idelta(m[{range_ms}ms])", range_ms, step, _two(lambda t, v, s: v[-1] - v[-2]))


@SETTINGS
@given(datasets(), RANGES, STEPS)
def test_rate_increase_delta(data: list, range_ms: int, step: int) -> None:
    for fn, counter, per_second in (("rate", True, True), ("increase", True, False),
                                    ("delta", False, False)):
        check(data, f"{fn}(m[{range_ms}ms])", range_ms, step,
              _two(lambda t, v, s, c=counter, p=per_second: ref.extrapolated_rate(
                  t, v, s, range_ms, c, p)), rel=1e-9)


@SETTINGS
@given(datasets(), RANGES, STEPS)
def test_simple_reductions(data: list, range_ms: int, step: int) -> None:
    def fmin(t: Sequence[int], v: Sequence[float], s: int) -> float:
        real = [x for x in v if not math.isnan(x)]
        return min(real) if real else math.nan

    def fmax(t: Sequence[int], v: Sequence[float], s: int) -> float:
        real = [x for x in v if not math.isnan(x)]
        return max(real) if real else math.nan

    def changes(t: Sequence[int], v: Sequence[float], s: int) -> float:
        return float(sum(
            1 for a, b in pairwise(v) if not (a == b or (math.isnan(a) and math.isnan(b)))
        ))

    r = f"[{range_ms}ms]"
    check(data, f"min_over_time(m{r})", range_ms, step, fmin)
    check(data, f"max_over_time(m{r})", range_ms, step, fmax)
    check(data, f"count_over_time(m{r})", range_ms, step, lambda t, v, s: float(len(v)))
    check(data, f"changes(m{r})", range_ms, step, changes)
    check(data, f"resets(m{r})", range_ms, step,
          lambda t, v, s: float(sum(1 for a, b in pairwise(v) if b < a)))
    check(data, f"present_over_time(m{r})", range_ms, step, lambda t, v, s: 1.0)


RANGE_FUNCTIONS = [
    "rate(m[{r}])", "increase(m[{r}])", "delta(m[{r}])", "irate(m[{r}])", "idelta(m[{r}])",
    "count_over_time(m[{r}])", "sum_over_time(m[{r}])", "avg_over_time(m[{r}])",
    "min_over_time(m[{r}])", "max_over_time(m[{r}])", "last_over_time(m[{r}])",
    "first_over_time(m[{r}])", "ts_of_last_over_time(m[{r}])", "ts_of_first_over_time(m[{r}])",
    "ts_of_max_over_time(m[{r}])", "ts_of_min_over_time(m[{r}])", "present_over_time(m[{r}])",
    "changes(m[{r}])", "resets(m[{r}])", "stddev_over_time(m[{r}])", "stdvar_over_time(m[{r}])",
    "quantile_over_time(0.3, m[{r}])", "mad_over_time(m[{r}])", "deriv(m[{r}])",
    "predict_linear(m[{r}], 60)", "double_exponential_smoothing(m[{r}], 0.3, 0.6)",
]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(datasets(), RANGES, STEPS, st.sampled_from([1, 7, 40]))
def test_blocks_of_series_answer_as_one_pass(
    data: Data, range_ms: int, step: int, block_cells: int
) -> None:
    source = MemorySource()
    for labels, times, values in data:
        source.add(labels, times, values)
    end = max(t[-1] for _, t, _ in data) + 30_000
    whole = EngineOptions(max_samples=10_000_000)
    blocked = EngineOptions(max_samples=10_000_000, block_cells=block_cells)
    for template in RANGE_FUNCTIONS:
        query = template.format(r=f"{range_ms}ms")
        want = asyncio.run(range_query(source, query, 0, end, step, whole)).value
        got = asyncio.run(range_query(source, query, 0, end, step, blocked)).value
        assert isinstance(want, MatrixValue) and isinstance(got, MatrixValue)
        assert [s.labels for s in got.series] == [s.labels for s in want.series], query
        for mine, theirs in zip(got.series, want.series, strict=True):
            assert np.array_equal(mine.timestamps, theirs.timestamps), query
            assert np.array_equal(mine.values, theirs.values, equal_nan=True), query
