"""rate, increase, delta, irate, idelta: extrapolated and instant differences per window."""

from __future__ import annotations

import numpy as np

from gateway.model.labels import metric_name
from gateway.promql.functions.base import CallArgs, Function
from gateway.promql.types import BOOL, F64, I64, RangeVector, Vector

_COUNTER_SUFFIXES = ("_total", "_sum", "_count", "_bucket")


def _counter_corrections(values: F64) -> F64:
    """Cumulative sum of the value lost at each counter reset (index i covers pairs <= i)."""
    lost = np.zeros(len(values), dtype=np.float64)
    if len(values) > 1:
        prev, cur = values[:-1], values[1:]
        lost[1:] = np.where(cur < prev, prev, 0.0)
    return np.cumsum(lost)


def _extrapolated(
    rv: RangeVector, index: int, is_counter: bool, is_rate: bool
) -> tuple[F64, BOOL]:
    series = rv.series[index]
    ts, vals = series.timestamps, series.values
    lo, hi = rv.bounds(index)
    ok = (hi - lo) >= 2
    out = np.zeros(len(lo), dtype=np.float64)
    if not ok.any():
        return out, ok
    first_i, last_i = lo[ok], hi[ok] - 1
    first, last = vals[first_i], vals[last_i]
    with np.errstate(all="ignore"):
        result = last - first
        if is_counter:
            corr = _counter_corrections(vals)
            result = result + (corr[last_i] - corr[first_i])
        ends = rv.ends[ok]
        range_start = ends - rv.range_ms
        to_start = (ts[first_i] - range_start) / 1000.0
        to_end = (ends - ts[last_i]) / 1000.0
        sampled = (ts[last_i] - ts[first_i]) / 1000.0
        average = sampled / (last_i - first_i)
        threshold = average * 1.1
        to_start = np.where(to_start >= threshold, average / 2, to_start)
        to_end = np.where(to_end >= threshold, average / 2, to_end)
        if is_counter:
            # A counter cannot go below zero: do not extrapolate past the point it would hit it.
            to_zero = np.where(result > 0, sampled * (first / result), np.inf)
            to_zero = np.where(first >= 0, to_zero, np.inf)
            to_start = np.minimum(to_start, to_zero)
        interval = sampled + to_start + to_end
        factor = interval / sampled
        if is_rate:
            factor = factor / (rv.range_ms / 1000.0)
        out[ok] = result * factor
    return out, ok


def _flat_bounds(rv: RangeVector) -> tuple[I64, F64, I64, I64, I64] | None:
    """All series' samples end to end, with each window's [lo, hi) flat indices (rows x steps).

    One searchsorted over (series, time) keys replaces one per series; None when the keys would
    not fit in int64 (then the per-series path runs).
    """
    count, steps = len(rv.series), len(rv.ends)
    lengths = np.fromiter((len(s.timestamps) for s in rv.series), np.int64, count)
    if count == 0 or steps == 0 or lengths.sum() == 0:
        return None
    ts = np.concatenate([s.timestamps for s in rv.series])
    vals = np.concatenate([s.values for s in rv.series])
    low = min(int(ts.min()), int(rv.ends.min()) - rv.range_ms)
    span = max(int(ts.max()), int(rv.ends.max())) - low + 1
    if span * count >= 2**62:
        return None
    row_base = np.arange(count, dtype=np.int64) * span
    keys = ts - low + np.repeat(row_base, lengths)
    starts = (rv.ends - rv.range_ms - low)[None, :] + row_base[:, None]
    ends = (rv.ends - low)[None, :] + row_base[:, None]
    lo = np.searchsorted(keys, starts, side="right").astype(np.int64)
    hi = np.searchsorted(keys, ends, side="right").astype(np.int64)
    return ts, vals, lengths, lo, hi


def _extrapolated_all(rv: RangeVector, is_counter: bool, is_rate: bool) -> tuple[F64, BOOL]:
    """`_extrapolated` for every series at once; series with counter resets take the exact
    per-series path (their corrections must not be summed across series)."""
    flat = _flat_bounds(rv)
    if flat is None:
        return _per_series(rv, is_counter, is_rate)
    ts, vals, lengths, lo, hi = flat
    ok = (hi - lo) >= 2
    out = np.zeros(lo.shape, dtype=np.float64)
    first_i, last_i = lo[ok], hi[ok] - 1
    first, last = vals[first_i], vals[last_i]
    with np.errstate(all="ignore"):
        result = last - first
        ends = np.broadcast_to(rv.ends[None, :], lo.shape)[ok]
        range_start = ends - rv.range_ms
        to_start = (ts[first_i] - range_start) / 1000.0
        to_end = (ends - ts[last_i]) / 1000.0
        sampled = (ts[last_i] - ts[first_i]) / 1000.0
        average = sampled / (last_i - first_i)
        threshold = average * 1.1
        to_start = np.where(to_start >= threshold, average / 2, to_start)
        to_end = np.where(to_end >= threshold, average / 2, to_end)
        if is_counter:
            to_zero = np.where(result > 0, sampled * (first / result), np.inf)
            to_zero = np.where(first >= 0, to_zero, np.inf)
            to_start = np.minimum(to_start, to_zero)
        interval = sampled + to_start + to_end
        factor = interval / sampled
        if is_rate:
            factor = factor / (rv.range_ms / 1000.0)
        out[ok] = result * factor
    if is_counter and len(vals) > 1:
        row_of = np.repeat(np.arange(len(lengths)), lengths)
        drops = (vals[1:] < vals[:-1]) & (row_of[1:] == row_of[:-1])
        for row in np.unique(row_of[1:][drops]).tolist():
            out[row], ok[row] = _extrapolated(rv, row, is_counter, is_rate)
    return out, ok


def _per_series(rv: RangeVector, is_counter: bool, is_rate: bool) -> tuple[F64, BOOL]:
    values = np.zeros((len(rv.series), len(rv.ends)), dtype=np.float64)
    present = np.zeros((len(rv.series), len(rv.ends)), dtype=np.bool_)
    for i in range(len(rv.series)):
        values[i], present[i] = _extrapolated(rv, i, is_counter, is_rate)
    return values, present


def _possible_non_counter(call: CallArgs, rv: RangeVector, index: int) -> None:
    name = metric_name(rv.series[index].labels)
    if name and not name.endswith(_COUNTER_SUFFIXES):
        call.ctx.annotations.info(
            "metric might not be a counter, name does not end in "
            f"_total/_sum/_count/_bucket: {name!r}".replace("'", '"')
        )


def _make_extrapolated(is_counter: bool, is_rate: bool) -> Function:
    def impl(call: CallArgs) -> Vector:
        rv = call.range(0)
        values, present = _extrapolated_all(rv, is_counter, is_rate)
        if is_counter:
            for i in np.flatnonzero(present.any(axis=1)).tolist():
                _possible_non_counter(call, rv, i)
        labels = [s.labels for s in rv.series]
        return Vector(labels, values, present, np.ones(len(labels), dtype=np.bool_))

    return impl


def _instant_diff(rv: RangeVector, index: int, is_rate: bool) -> tuple[F64, BOOL]:
    series = rv.series[index]
    lo, hi = rv.bounds(index)
    ok = (hi - lo) >= 2
    out = np.zeros(len(lo), dtype=np.float64)
    if not ok.any():
        return out, ok
    last_i: I64 = hi[ok] - 1
    prev_i = last_i - 1
    last, prev = series.values[last_i], series.values[prev_i]
    with np.errstate(all="ignore"):
        if is_rate:
            diff = np.where(last < prev, last, last - prev)
            dt = (series.timestamps[last_i] - series.timestamps[prev_i]) / 1000.0
            result = diff / dt
            good = dt != 0
            ok_idx = np.flatnonzero(ok)
            ok[ok_idx[~good]] = False
            out[ok] = result[good]
        else:
            out[ok] = last - prev
    return out, ok


def _make_instant(is_rate: bool) -> Function:
    def impl(call: CallArgs) -> Vector:
        rv = call.range(0)
        steps = len(rv.ends)
        values = np.zeros((len(rv.series), steps), dtype=np.float64)
        present = np.zeros((len(rv.series), steps), dtype=np.bool_)
        for i in range(len(rv.series)):
            values[i], present[i] = _instant_diff(rv, i, is_rate)
        labels = [s.labels for s in rv.series]
        return Vector(labels, values, present, np.ones(len(labels), dtype=np.bool_))

    return impl


FUNCTIONS: dict[str, Function] = {
    "rate": _make_extrapolated(True, True),
    "increase": _make_extrapolated(True, False),
    "delta": _make_extrapolated(False, False),
    "irate": _make_instant(True),
    "idelta": _make_instant(False),
}
