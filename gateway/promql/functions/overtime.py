"""The *_over_time family, changes and resets: every window of every series at once."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from gateway.promql.context import go_float
from gateway.promql.functions.base import CallArgs, Function
from gateway.promql.functions.flat import Flat, by_row_blocks
from gateway.promql.functions.moments import window_mean, window_total, window_variance
from gateway.promql.functions.ordered import window_arg_extreme, window_mad, window_quantiles
from gateway.promql.functions.windows import pair_flags_count, window_reduce
from gateway.promql.types import BOOL, F64, RangeVector, Vector

# (flat windows, call) -> (values, present), both (series, steps).
Reducer = Callable[[Flat, CallArgs], tuple[F64, BOOL]]
VectorFunction = Callable[[CallArgs], Vector]


def over_time(reducer: Reducer, keep_name: bool = False) -> VectorFunction:
    """A function that applies `reducer` to every window of its range-vector argument."""

    def impl(call: CallArgs) -> Vector:
        rv = range_arg(call)
        values, present = by_row_blocks(
            rv, lambda flat: reducer(flat, call), call.ctx.options.block_cells
        )
        drop = rv.drop_name.copy() if keep_name else np.ones(len(rv.series), dtype=np.bool_)
        labels = [s.labels for s in rv.series]
        return Vector(labels, np.where(present, values, 0.0), present, drop)

    return impl


def range_arg(call: CallArgs) -> RangeVector:
    """The call's range-vector argument, wherever it is."""
    for arg in call.args:
        if isinstance(arg, RangeVector):
            return arg
    return call.range(0)


def flat_windows(fn: Callable[[F64, np.ndarray, np.ndarray], F64]) -> Reducer:
    """A reducer from a function of (flat values, lo, hi) over 1-D window lists."""

    def reducer(flat: Flat, call: CallArgs) -> tuple[F64, BOOL]:
        out = fn(flat.values, flat.lo.ravel(), flat.hi.ravel())
        return out.reshape(flat.shape), flat.counts > 0

    return reducer


def _checked(
    fn: Callable[[F64, np.ndarray, np.ndarray, Callable[[], None]], F64],
) -> Reducer:
    """Like flat_windows, for functions that take the deadline check."""

    def reducer(flat: Flat, call: CallArgs) -> tuple[F64, BOOL]:
        out = fn(flat.values, flat.lo.ravel(), flat.hi.ravel(), call.ctx.check_deadline)
        return out.reshape(flat.shape), flat.counts > 0

    return reducer


def _at(values: F64, index: np.ndarray) -> F64:
    """values[index], where index may point past the end for empty windows."""
    if len(values) == 0:
        return np.zeros(index.shape)
    return np.asarray(values[np.clip(index, 0, len(values) - 1)])


def _count(flat: Flat, call: CallArgs) -> tuple[F64, BOOL]:
    return flat.counts.astype(np.float64), flat.counts > 0


def _last(flat: Flat, call: CallArgs) -> tuple[F64, BOOL]:
    return _at(flat.values, flat.hi - 1), flat.counts > 0


def _first(flat: Flat, call: CallArgs) -> tuple[F64, BOOL]:
    return _at(flat.values, flat.lo), flat.counts > 0


def _ts_last(flat: Flat, call: CallArgs) -> tuple[F64, BOOL]:
    return _at(flat.timestamps / 1000.0, flat.hi - 1), flat.counts > 0


def _ts_first(flat: Flat, call: CallArgs) -> tuple[F64, BOOL]:
    return _at(flat.timestamps / 1000.0, flat.lo), flat.counts > 0


def _present(flat: Flat, call: CallArgs) -> tuple[F64, BOOL]:
    return np.ones(flat.shape, dtype=np.float64), flat.counts > 0


def _pair_flags(flat: Flat, flags: BOOL) -> tuple[F64, BOOL]:
    # A pair spanning two series is no pair.
    marked = (flags & flat.same_series_as_previous()).astype(np.float64)
    counted = pair_flags_count(marked, flat.lo.ravel(), flat.hi.ravel())
    return counted.reshape(flat.shape), flat.counts > 0


def _changes(flat: Flat, call: CallArgs) -> tuple[F64, BOOL]:
    vals = flat.values
    flags = np.zeros(len(vals), dtype=np.bool_)
    if len(vals) > 1:
        prev, cur = vals[:-1], vals[1:]
        flags[1:] = ~((cur == prev) | (np.isnan(cur) & np.isnan(prev)))
    return _pair_flags(flat, flags)


def _resets(flat: Flat, call: CallArgs) -> tuple[F64, BOOL]:
    vals = flat.values
    flags = np.zeros(len(vals), dtype=np.bool_)
    if len(vals) > 1:
        flags[1:] = vals[1:] < vals[:-1]
    return _pair_flags(flat, flags)


def _stdvar(flat: Flat, call: CallArgs) -> tuple[F64, BOOL]:
    return _checked(window_variance)(flat, call)


def _stddev(flat: Flat, call: CallArgs) -> tuple[F64, BOOL]:
    variance, ok = _stdvar(flat, call)
    return np.sqrt(variance), ok


def _per_window(flat: Flat, per_step: F64) -> F64:
    """A per-step scalar repeated for every series' window, in flat window order."""
    return np.broadcast_to(per_step[None, :], flat.shape).ravel()


def _quantile(flat: Flat, call: CallArgs) -> tuple[F64, BOOL]:
    q = _per_window(flat, call.scalar(0))
    out = window_quantiles(
        flat.values, flat.lo.ravel(), flat.hi.ravel(), q, call.ctx.check_deadline
    )
    return out.reshape(flat.shape), flat.counts > 0


def _ts_extreme(pick_max: bool) -> Reducer:
    def reducer(flat: Flat, call: CallArgs) -> tuple[F64, BOOL]:
        best = window_arg_extreme(flat.values, flat.lo.ravel(), flat.hi.ravel(), pick_max)
        return _at(flat.timestamps / 1000.0, best).reshape(flat.shape), flat.counts > 0

    return reducer


def _quantile_checked(call: CallArgs) -> Vector:
    for q in np.unique(call.scalar(0)).tolist():
        if not 0 <= q <= 1:
            call.ctx.annotations.warn(
                f"quantile value should be between 0 and 1, got {go_float(q)}"
            )
    return _QUANTILE(call)


_QUANTILE = over_time(_quantile)

FUNCTIONS: dict[str, Function] = {
    "count_over_time": over_time(_count),
    "sum_over_time": over_time(_checked(window_total)),
    "avg_over_time": over_time(_checked(window_mean)),
    "min_over_time": over_time(flat_windows(lambda v, lo, hi: window_reduce(v, lo, hi, np.fmin))),
    "max_over_time": over_time(flat_windows(lambda v, lo, hi: window_reduce(v, lo, hi, np.fmax))),
    "last_over_time": over_time(_last, keep_name=True),
    "first_over_time": over_time(_first, keep_name=True),
    "ts_of_last_over_time": over_time(_ts_last),
    "ts_of_first_over_time": over_time(_ts_first),
    "ts_of_max_over_time": over_time(_ts_extreme(True)),
    "ts_of_min_over_time": over_time(_ts_extreme(False)),
    "present_over_time": over_time(_present),
    "changes": over_time(_changes),
    "resets": over_time(_resets),
    "stddev_over_time": over_time(_stddev),
    "stdvar_over_time": over_time(_stdvar),
    "quantile_over_time": _quantile_checked,
    "mad_over_time": over_time(_checked(window_mad)),
}
