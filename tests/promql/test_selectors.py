"""Instant selection for all series at once equals the per-series lookback rule."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.model.series import SeriesData
from gateway.promql.functions.flat import flatten
from gateway.promql.selectors import instant_vector, range_vector, sample_times
from gateway.promql.types import STALE_NAN, stale_mask


@st.composite
def series_lists(draw: st.DrawFn) -> list[SeriesData]:
    out = []
    for i in range(draw(st.integers(0, 5))):
        times = sorted(set(draw(st.lists(st.integers(0, 600), max_size=20))))
        values = [draw(st.sampled_from([1.0, 2.5, STALE_NAN, float("nan")])) for _ in times]
        out.append(SeriesData((("i", str(i)),), np.array(times, np.int64) * 1000,
                              np.array(values, np.float64)))
    return out


@settings(max_examples=200, deadline=None)
@given(series_lists(), st.lists(st.integers(-100, 700), min_size=1, max_size=12),
       st.sampled_from([1, 30_000, 300_000]))
def test_instant_vector_matches_lookback_rule(
    series: list[SeriesData], steps: list[int], lookback: int
) -> None:
    ends = np.array(sorted(steps), np.int64) * 1000
    vector = instant_vector(series, ends, lookback)
    stamps = sample_times(series, ends, lookback)
    for row, data in enumerate(series):
        for j, t in enumerate(ends.tolist()):
            before = np.flatnonzero(data.timestamps <= t)
            want = None
            if len(before) and data.timestamps[before[-1]] > t - lookback:
                newest = before[-1]
                if not stale_mask(data.values[newest : newest + 1])[0]:
                    want = newest
            assert vector.present[row, j] == (want is not None)
            assert stamps.present[row, j] == (want is not None)
            if want is not None:
                assert np.array_equal(vector.values[row, j], data.values[want], equal_nan=True)
                assert stamps.values[row, j] == data.timestamps[want] / 1000.0


@settings(max_examples=200, deadline=None)
@given(series_lists())
def test_range_vector_drops_exactly_the_stale_markers(series: list[SeriesData]) -> None:
    ends = np.array([600_000], np.int64)
    vector = range_vector(series, ends, 300_000)
    assert [one.labels for one in vector.series] == [data.labels for data in series]
    for got, data in zip(vector.series, series, strict=True):
        real = ~stale_mask(data.values)
        assert np.array_equal(got.timestamps, data.timestamps[real])
        assert np.array_equal(got.values, data.values[real], equal_nan=True)
        assert not stale_mask(got.values).any()


@settings(max_examples=200, deadline=None)
@given(
    series_lists(),
    st.lists(st.integers(-100, 700), min_size=1, max_size=12),
    st.sampled_from([1_000, 15_000, 60_000, 300_000]),
)
def test_flat_windows_are_each_series_own_windows(
    series: list[SeriesData], steps: list[int], range_ms: int
) -> None:
    vector = range_vector(series, np.array(sorted(steps), np.int64) * 1000, range_ms)
    flat = flatten(vector)
    for row in range(len(vector.series)):
        lo, hi = vector.bounds(row)
        assert np.array_equal(flat.lo[row], flat.starts[row] + lo)
        assert np.array_equal(flat.hi[row], flat.starts[row] + hi)
