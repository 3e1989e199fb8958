"""Window sums stay exact next to large values and recover after NaN and infinities."""

from __future__ import annotations

import math

import numpy as np

from gateway.promql.engine import range_query
from gateway.promql.result import MatrixValue
from gateway.promql.source import MemorySource
from tests.promql import reference as ref

NAME = (("__name__", "x"),)


async def _points(source: MemorySource, query: str, end_ms: int) -> dict[int, float]:
    result = await range_query(source, query, 0, end_ms, 15_000)
    assert isinstance(result.value, MatrixValue)
    (series,) = result.value.series
    return dict(zip(series.timestamps.tolist(), series.values.tolist(), strict=True))


async def test_small_values_after_large_ones_sum_exactly() -> None:
    # 40 samples near 1e11, then 1.1 every 15 s: windows holding only the small values must
    # sum to exactly what Prometheus' Kahan sum gives (4.4), not a difference of running sums.
    values = [1e11 + 0.3 * i for i in range(40)] + [1.1] * 40
    source = MemorySource()
    source.add(NAME, [i * 15_000 for i in range(80)], values)
    sums = await _points(source, "sum_over_time(x[1m])", 79 * 15_000)
    avgs = await _points(source, "avg_over_time(x[1m])", 79 * 15_000)
    for t in range(45 * 15_000, 80 * 15_000, 15_000):
        assert sums[t] == ref.kahan_sum([1.1] * 4) == 4.4
        assert avgs[t] == ref.kahan_mean([1.1] * 4)
    # Windows straddling both kinds of values agree with the sequential Kahan sum too.
    for t in range(39 * 15_000, 44 * 15_000, 15_000):
        window = [v for i, v in enumerate(values) if t - 60_000 < i * 15_000 <= t]
        assert sums[t] == ref.kahan_sum(window)


async def test_nan_and_infinities_only_affect_their_windows() -> None:
    values = [1.0, 2.0, math.nan, 3.0, 4.0, 5.0, math.inf, 6.0, 7.0, 8.0, -math.inf, math.inf,
              9.0, 10.0, 11.0, 12.0]
    source = MemorySource()
    source.add(NAME, [i * 15_000 for i in range(len(values))], values)
    end = (len(values) - 1) * 15_000
    for fn, oracle in (("sum_over_time", ref.kahan_sum), ("avg_over_time", ref.kahan_mean)):
        got = await _points(source, f"{fn}(x[30s])", end)
        for t, have in got.items():
            window = [v for i, v in enumerate(values) if t - 30_000 < i * 15_000 <= t]
            want = oracle(window)
            assert (math.isnan(want) and math.isnan(have)) or want == have, (fn, t, window)
        # After the NaN and the infinities leave the window, sums are finite again.
        assert got[end] == 23.0 if fn == "sum_over_time" else got[end] == 11.5


async def test_large_magnitudes_keep_prometheus_overflow_behaviour() -> None:
    # Partial sums overflow here; Prometheus' sequential Kahan sum gives +Inf, the mean
    # switches to its incremental form and stays finite.
    values = [1.7e308, 1.7e308, -1.7e308, 1.0]
    source = MemorySource()
    source.add(NAME, [i * 15_000 for i in range(4)], values)
    sums = await _points(source, "sum_over_time(x[1m])", 45_000)
    avgs = await _points(source, "avg_over_time(x[1m])", 45_000)
    assert sums[45_000] == ref.kahan_sum(values) == math.inf
    assert avgs[45_000] == ref.kahan_mean(values)
    assert np.isfinite(avgs[45_000])
