"""rate, increase, delta, irate, idelta: extrapolated and instant differences per window."""

from __future__ import annotations

import numpy as np

from gateway.model.labels import metric_name
from gateway.promql.functions.base import CallArgs, Function
from gateway.promql.functions.flat import Flat, by_row_blocks
from gateway.promql.types import BOOL, F64, I64, RangeVector, Vector

_COUNTER_SUFFIXES = ("_total", "_sum", "_count", "_bucket")


def _counter_increase(flat: Flat, first_i: I64, last_i: I64, call: CallArgs) -> F64:
    """Per window, last - first plus the value before each counter reset in between.

    Prometheus adds those values one reset after the other in plain floats; so do we, in the
    same order, for all windows at once: the k-th pass adds every window's k-th reset (there
    are rarely more than a few per window).
    """
    vals = flat.values
    with np.errstate(all="ignore"):
        result = vals[last_i] - vals[first_i]
        if len(vals) < 2:
            return np.asarray(result)
        # A reset at i is a drop from sample i - 1 to i, both in the window: i in (first, last].
        resets = np.flatnonzero((vals[1:] < vals[:-1]) & flat.same_series_as_previous()[1:]) + 1
        begin = np.searchsorted(resets, first_i, side="right")
        count = np.searchsorted(resets, last_i, side="right") - begin
        for k in range(int(count.max(initial=0))):
            call.ctx.check_deadline()
            more = np.flatnonzero(count > k)
            result[more] += vals[resets[begin[more] + k] - 1]
    return np.asarray(result)


def _extrapolated(
    flat: Flat, is_counter: bool, is_rate: bool, call: CallArgs
) -> tuple[F64, BOOL]:
    """Prometheus' extrapolatedRate for every window of every series."""
    ts, vals = flat.timestamps, flat.values
    ok = flat.counts >= 2
    out = np.zeros(flat.shape, dtype=np.float64)
    if not ok.any():
        return out, ok
    first_i, last_i = flat.lo[ok], flat.hi[ok] - 1
    first, last = vals[first_i], vals[last_i]
    with np.errstate(all="ignore"):
        result = last - first
        if is_counter:
            result = _counter_increase(flat, first_i, last_i, call)
        ends = np.broadcast_to(flat.ends[None, :], flat.shape)[ok]
        range_start = ends - flat.range_ms
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
        factor = (sampled + to_start + to_end) / sampled
        if is_rate:
            factor = factor / (flat.range_ms / 1000.0)
        out[ok] = result * factor
    return out, ok


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
        values, present = by_row_blocks(
            rv, lambda flat: _extrapolated(flat, is_counter, is_rate, call),
            call.ctx.options.block_cells,
        )
        if is_counter:
            for i in np.flatnonzero(present.any(axis=1)).tolist():
                _possible_non_counter(call, rv, i)
        labels = [s.labels for s in rv.series]
        return Vector(labels, values, present, np.ones(len(labels), dtype=np.bool_))

    return impl


def _instant_diff(flat: Flat, is_rate: bool) -> tuple[F64, BOOL]:
    """irate / idelta from the last two samples of every window."""
    ok = flat.counts >= 2
    out = np.zeros(flat.shape, dtype=np.float64)
    if not ok.any():
        return out, ok
    last_i = flat.hi[ok] - 1
    prev_i = last_i - 1
    last, prev = flat.values[last_i], flat.values[prev_i]
    with np.errstate(all="ignore"):
        if not is_rate:
            out[ok] = last - prev
            return out, ok
        diff = np.where(last < prev, last, last - prev)
        dt = (flat.timestamps[last_i] - flat.timestamps[prev_i]) / 1000.0
        out[ok] = diff / dt
    return out, ok


def _make_instant(is_rate: bool) -> Function:
    def impl(call: CallArgs) -> Vector:
        rv = call.range(0)
        values, present = by_row_blocks(
            rv, lambda flat: _instant_diff(flat, is_rate), call.ctx.options.block_cells
        )
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
