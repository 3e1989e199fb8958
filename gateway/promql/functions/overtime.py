"""The *_over_time family, changes and resets: one reduction per window and step."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from gateway.promql.context import go_float
from gateway.promql.functions.base import CallArgs, Function
from gateway.promql.functions.windows import (
    kahan_mean,
    kahan_variance,
    pair_flags_count,
    quantile,
    window_reduce,
    window_sums,
)
from gateway.promql.types import BOOL, F64, I64, RangeSeries, RangeVector, Vector

# Window means of values this small are exact enough from a running sum.
_SAFE_MAGNITUDE = 1e12
# (series, lo, hi, ends, call) -> (values, present) for every step.
VectorFunction = Callable[[CallArgs], Vector]
Reducer = Callable[[RangeSeries, I64, I64, I64, CallArgs], tuple[F64, BOOL]]
# (timestamps, values, window end, step index, call) -> value, or None for no output.
WindowFn = Callable[[I64, F64, int, int, CallArgs], float | None]


def over_time(reducer: Reducer, keep_name: bool = False) -> VectorFunction:
    """A function that applies `reducer` to each series of its range-vector argument."""

    def impl(call: CallArgs) -> Vector:
        rv = _range_arg(call)
        steps = len(rv.ends)
        values = np.zeros((len(rv.series), steps), dtype=np.float64)
        present = np.zeros((len(rv.series), steps), dtype=np.bool_)
        for i, series in enumerate(rv.series):
            lo, hi = rv.bounds(i)
            vals, ok = reducer(series, lo, hi, rv.ends, call)
            values[i] = np.where(ok, vals, 0.0)
            present[i] = ok
        drop = rv.drop_name.copy() if keep_name else np.ones(len(rv.series), dtype=np.bool_)
        return Vector([s.labels for s in rv.series], values, present, drop)

    return impl


def _range_arg(call: CallArgs) -> RangeVector:
    for arg in call.args:
        if isinstance(arg, RangeVector):
            return arg
    return call.range(0)


def per_window(fn: WindowFn, min_samples: int = 1) -> Reducer:
    """A reducer looping over steps, for reductions numpy cannot express across windows."""

    def reducer(
        series: RangeSeries, lo: I64, hi: I64, ends: I64, call: CallArgs
    ) -> tuple[F64, BOOL]:
        out = np.zeros(len(lo), dtype=np.float64)
        ok = np.zeros(len(lo), dtype=np.bool_)
        for j in np.flatnonzero(hi - lo >= min_samples).tolist():
            a, b = int(lo[j]), int(hi[j])
            got = fn(series.timestamps[a:b], series.values[a:b], int(ends[j]), j, call)
            if got is not None:
                out[j], ok[j] = got, True
        return out, ok

    return reducer


def _count(s: RangeSeries, lo: I64, hi: I64, e: I64, c: CallArgs) -> tuple[F64, BOOL]:
    return (hi - lo).astype(np.float64), hi > lo


def _sum(s: RangeSeries, lo: I64, hi: I64, e: I64, c: CallArgs) -> tuple[F64, BOOL]:
    return window_sums(s.values, lo, hi), hi > lo


def _avg(s: RangeSeries, lo: I64, hi: I64, e: I64, c: CallArgs) -> tuple[F64, BOOL]:
    ok = hi > lo
    vals = s.values
    if len(vals) and np.isfinite(vals).all() and np.abs(vals).max() < _SAFE_MAGNITUDE:
        with np.errstate(all="ignore"):
            return window_sums(vals, lo, hi) / np.maximum(hi - lo, 1), ok
    mean = np.zeros(len(lo), dtype=np.float64)
    for j in np.flatnonzero(ok).tolist():
        mean[j] = kahan_mean(vals[int(lo[j]) : int(hi[j])].tolist())
    return mean, ok


def _min(s: RangeSeries, lo: I64, hi: I64, e: I64, c: CallArgs) -> tuple[F64, BOOL]:
    return window_reduce(s.values, lo, hi, np.fmin), hi > lo


def _max(s: RangeSeries, lo: I64, hi: I64, e: I64, c: CallArgs) -> tuple[F64, BOOL]:
    return window_reduce(s.values, lo, hi, np.fmax), hi > lo


def _last(s: RangeSeries, lo: I64, hi: I64, e: I64, c: CallArgs) -> tuple[F64, BOOL]:
    ok = hi > lo
    return s.values[np.maximum(hi - 1, 0)] if len(s.values) else np.zeros(len(lo)), ok


def _first(s: RangeSeries, lo: I64, hi: I64, e: I64, c: CallArgs) -> tuple[F64, BOOL]:
    ok = hi > lo
    idx = np.minimum(lo, max(len(s.values) - 1, 0))
    return s.values[idx] if len(s.values) else np.zeros(len(lo)), ok


def _ts_last(s: RangeSeries, lo: I64, hi: I64, e: I64, c: CallArgs) -> tuple[F64, BOOL]:
    ok = hi > lo
    if not len(s.values):
        return np.zeros(len(lo)), ok
    return s.timestamps[np.maximum(hi - 1, 0)] / 1000.0, ok


def _ts_first(s: RangeSeries, lo: I64, hi: I64, e: I64, c: CallArgs) -> tuple[F64, BOOL]:
    ok = hi > lo
    if not len(s.values):
        return np.zeros(len(lo)), ok
    return s.timestamps[np.minimum(lo, len(s.values) - 1)] / 1000.0, ok


def _present(s: RangeSeries, lo: I64, hi: I64, e: I64, c: CallArgs) -> tuple[F64, BOOL]:
    return np.ones(len(lo), dtype=np.float64), hi > lo


def _changes(s: RangeSeries, lo: I64, hi: I64, e: I64, c: CallArgs) -> tuple[F64, BOOL]:
    flags = np.zeros(len(s.values), dtype=np.float64)
    if len(s.values) > 1:
        prev, cur = s.values[:-1], s.values[1:]
        same = (cur == prev) | (np.isnan(cur) & np.isnan(prev))
        flags[1:] = ~same
    return pair_flags_count(flags, lo, hi), hi > lo


def _resets(s: RangeSeries, lo: I64, hi: I64, e: I64, c: CallArgs) -> tuple[F64, BOOL]:
    flags = np.zeros(len(s.values), dtype=np.float64)
    if len(s.values) > 1:
        flags[1:] = s.values[1:] < s.values[:-1]
    return pair_flags_count(flags, lo, hi), hi > lo


def _stdvar(ts: I64, vals: F64, end: int, j: int, c: CallArgs) -> float | None:
    return kahan_variance(vals.tolist())


def _stddev(ts: I64, vals: F64, end: int, j: int, c: CallArgs) -> float | None:
    variance = kahan_variance(vals.tolist())
    return math.sqrt(variance) if variance >= 0 else math.nan


def _quantile(ts: I64, vals: F64, end: int, j: int, c: CallArgs) -> float | None:
    return quantile(float(c.scalar(0)[j]), vals)


def _mad(ts: I64, vals: F64, end: int, j: int, c: CallArgs) -> float | None:
    if np.isnan(vals).any():
        return math.nan
    median = quantile(0.5, vals)
    return quantile(0.5, np.abs(vals - median))


def _ts_extreme(pick_max: bool) -> WindowFn:
    def fn(ts: I64, vals: F64, end: int, j: int, c: CallArgs) -> float | None:
        best = 0
        for i in range(1, len(vals)):
            cur, top = vals[i], vals[best]
            better = cur >= top if pick_max else cur <= top
            if better or math.isnan(top):
                best = i
        return float(ts[best]) / 1000.0

    return fn


def _quantile_checked(call: CallArgs) -> Vector:
    for q in np.unique(call.scalar(0)).tolist():
        if not 0 <= q <= 1:
            call.ctx.annotations.warn(
                f"quantile value should be between 0 and 1, got {go_float(q)}"
            )
    return _QUANTILE(call)


_QUANTILE = over_time(per_window(_quantile))

FUNCTIONS: dict[str, Function] = {
    "count_over_time": over_time(_count),
    "sum_over_time": over_time(_sum),
    "avg_over_time": over_time(_avg),
    "min_over_time": over_time(_min),
    "max_over_time": over_time(_max),
    "last_over_time": over_time(_last, keep_name=True),
    "first_over_time": over_time(_first, keep_name=True),
    "ts_of_last_over_time": over_time(_ts_last),
    "ts_of_first_over_time": over_time(_ts_first),
    "ts_of_max_over_time": over_time(per_window(_ts_extreme(True))),
    "ts_of_min_over_time": over_time(per_window(_ts_extreme(False))),
    "present_over_time": over_time(_present),
    "changes": over_time(_changes),
    "resets": over_time(_resets),
    "stddev_over_time": over_time(per_window(_stddev)),
    "stdvar_over_time": over_time(per_window(_stdvar)),
    "quantile_over_time": _quantile_checked,
    "mad_over_time": over_time(per_window(_mad)),
}
