"""Turning fetched samples into instant vectors (lookback) and range vectors (windows)."""

from __future__ import annotations

import numpy as np

from gateway.model.series import SeriesData
from gateway.promql.types import I64, RangeSeries, RangeVector, Vector, stale_mask


def instant_vector(series: list[SeriesData], ends: I64, lookback_ms: int) -> Vector:
    """The newest sample in `(t - lookback, t]` of each series at each time, unless stale."""
    steps = len(ends)
    values = np.zeros((len(series), steps), dtype=np.float64)
    present = np.zeros((len(series), steps), dtype=np.bool_)
    for row, data in enumerate(series):
        if len(data.timestamps) == 0:
            continue
        idx = np.searchsorted(data.timestamps, ends, side="right") - 1
        safe = np.maximum(idx, 0)
        ok = (idx >= 0) & (data.timestamps[safe] > ends - lookback_ms)
        vals = data.values[safe]
        ok &= ~stale_mask(vals)
        values[row] = np.where(ok, vals, 0.0)
        present[row] = ok
    return Vector(
        [s.labels for s in series], values, present, np.zeros(len(series), dtype=np.bool_)
    )


def sample_times(series: list[SeriesData], ends: I64, lookback_ms: int) -> Vector:
    """Like `instant_vector`, but each value is the selected sample's timestamp in seconds."""
    vector = instant_vector(series, ends, lookback_ms)
    for row, data in enumerate(series):
        if len(data.timestamps) == 0:
            continue
        idx = np.maximum(np.searchsorted(data.timestamps, ends, side="right") - 1, 0)
        vector.values[row] = np.where(
            vector.present[row], data.timestamps[idx] / 1000.0, 0.0
        )
    return vector


def range_vector(series: list[SeriesData], ends: I64, range_ms: int) -> RangeVector:
    """Series restricted to real samples; windows are cut per step by the consumer."""
    out: list[RangeSeries] = []
    for data in series:
        keep = ~stale_mask(data.values)
        out.append(RangeSeries(data.labels, data.timestamps[keep], data.values[keep]))
    return RangeVector(out, ends, range_ms, np.zeros(len(out), dtype=np.bool_))
