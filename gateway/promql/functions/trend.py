"""deriv, predict_linear and double_exponential_smoothing: trends fitted to every window.

The least-squares fit needs sums of x, y, x*x and x*y per window. x is a sample's time in
milliseconds since its series' first sample (exact in a double), the four sums are taken as
double-doubles in one pass, and the shift-invariant covariance and variance give the slope; the
intercept is then moved to the time Prometheus asks for. That is as exact as Prometheus'
compensated sums relative to the window's first sample, and usually a little more.
"""

from __future__ import annotations

import numpy as np

from gateway.promql.errors import ExecutionError
from gateway.promql.functions.base import CallArgs, Function
from gateway.promql.functions.compensated import (
    dd_add,
    dd_div,
    dd_mul,
    dd_neg,
    gather_rows,
    kahan_add,
    max_abs,
    nonfinite_counts,
    two_prod,
    window_sums,
)
from gateway.promql.functions.flat import Flat
from gateway.promql.functions.overtime import _per_window, over_time
from gateway.promql.functions.windows import window_reduce
from gateway.promql.types import BOOL, F64, I64, Vector

# Beyond this magnitude x * y (x up to ~1e10 ms) could overflow: replay Prometheus' loop.
_HUGE = 1e280


def _series_first_ms(flat: Flat) -> I64:
    """Each series' first sample time (0 for a series without samples)."""
    first = np.zeros(flat.shape[0], dtype=np.int64)
    has = np.diff(flat.starts) > 0
    first[has] = flat.timestamps[flat.starts[:-1][has]]
    return first


def _fit(flat: Flat, call: CallArgs) -> tuple[F64, F64, F64]:
    """Per window (flattened): slope per second, mean y, and mean x (ms after the series'
    first sample)."""
    lo, hi = flat.lo.ravel(), flat.hi.ravel()
    n = np.maximum((hi - lo).astype(np.float64), 1.0)
    x = (flat.timestamps - np.repeat(_series_first_ms(flat), np.diff(flat.starts))).astype(
        np.float64
    )
    y = np.where(np.isfinite(flat.values), flat.values, 0.0)
    xx, xy = two_prod(x, x), two_prod(x, y)
    zeros = np.zeros_like(x)
    high, low = window_sums(
        np.stack([x, y, xx[0], xy[0]], axis=1),
        np.stack([zeros, zeros, xx[1], xy[1]], axis=1),
        lo,
        hi,
        call.ctx.check_deadline,
    )
    sx, sy, sxx, sxy = ((high[:, i], low[:, i]) for i in range(4))
    with np.errstate(all="ignore"):
        mean_x = dd_div(sx, n)
        # Covariance and variance do not depend on where x starts, so one origin serves all.
        cov = dd_add(sxy, dd_neg(dd_mul(mean_x, sy)))
        var = dd_add(sxx, dd_neg(dd_mul(mean_x, sx)))
        slope = (cov[0] + cov[1]) / (var[0] + var[1]) * 1000.0
        mean_y = dd_div(sy, n)
    return slope, mean_y[0] + mean_y[1], mean_x[0] + mean_x[1]


def _replay(
    flat: Flat, take: I64, intercept_ms: I64, call: CallArgs
) -> tuple[F64, F64]:
    """Prometheus' sequential regression (Kahan sums relative to `intercept_ms`) for the
    windows `take`, vectorised across them."""
    lo, hi = flat.lo.ravel()[take], flat.hi.ravel()[take]
    n = np.zeros(len(take))
    sums = [(np.zeros(len(take)), np.zeros(len(take))) for _ in range(4)]
    with np.errstate(all="ignore"):
        for offset in range(int((hi - lo).max(initial=0))):
            call.ctx.check_deadline()
            y, active = gather_rows(flat.values, lo, hi, offset)
            t, _ = gather_rows(flat.timestamps.astype(np.float64), lo, hi, offset)
            x = (t - intercept_ms) / 1e3
            n += active
            for i, inc in enumerate((x, y, x * y, x * x)):
                new = kahan_add(inc, *sums[i])
                sums[i] = (
                    np.where(active, new[0], sums[i][0]),
                    np.where(active, new[1], sums[i][1]),
                )
        sx, sy, sxy, sxx = (total + comp for total, comp in sums)
        slope = (sxy - sx * sy / n) / (sxx - sx * sx / n)
        return slope, sy / n - slope * sx / n


def _special(flat: Flat) -> tuple[BOOL, BOOL, F64, BOOL]:
    """Per window, flattened: all values equal, any value NaN/Inf, the first value, and
    whether a magnitude is large enough to need Prometheus' own loop."""
    lo, hi = flat.lo.ravel(), flat.hi.ravel()
    low = window_reduce(flat.values, lo, hi, np.fmin)
    high = window_reduce(flat.values, lo, hi, np.fmax)
    nans, pos_inf, neg_inf = nonfinite_counts(flat.values, lo, hi)
    constant = (low == high) & (nans == 0)
    first, _ = gather_rows(flat.values, lo, hi, 0)
    huge = max_abs(flat.values, lo, hi) >= _HUGE
    return constant, (nans + pos_inf + neg_inf) > 0, first, huge & ((hi - lo) >= 2)


def _linear(flat: Flat, call: CallArgs, at_step: bool) -> tuple[F64, F64]:
    """Slope and intercept per window: at the window's first sample (deriv) or at the step's
    own time (predict_linear, even under `@`)."""
    steps = flat.shape[1]
    slope, mean_y, mean_x = _fit(flat, call)
    first_ms = np.repeat(_series_first_ms(flat), steps)
    if at_step:
        target = np.broadcast_to(call.grid.times[None, :], flat.shape).ravel()
    else:
        target = _at_index(flat.timestamps, flat.lo.ravel())
    with np.errstate(all="ignore"):
        to_target = (target - first_ms).astype(np.float64) - mean_x
        intercept = mean_y + slope * (to_target / 1000.0)
    constant, nonfinite, first, huge = _special(flat)
    slope = np.where(nonfinite, np.nan, slope)
    intercept = np.where(nonfinite, np.nan, intercept)
    if huge.any():
        take = np.flatnonzero(huge)
        slope[take], intercept[take] = _replay(flat, take, target[take], call)
    # A constant window is a flat line through its value; a constant infinite one is no line.
    slope = np.where(constant, np.where(np.isinf(first), np.nan, 0.0), slope)
    intercept = np.where(constant, np.where(np.isinf(first), np.nan, first), intercept)
    return slope, intercept


def _at_index(values: I64, index: I64) -> I64:
    if len(values) == 0:
        return np.zeros(len(index), dtype=np.int64)
    return np.asarray(values[np.clip(index, 0, len(values) - 1)], dtype=np.int64)


def _deriv(flat: Flat, call: CallArgs) -> tuple[F64, BOOL]:
    slope, _ = _linear(flat, call, at_step=False)
    return slope.reshape(flat.shape), flat.counts >= 2


def _predict(flat: Flat, call: CallArgs) -> tuple[F64, BOOL]:
    slope, intercept = _linear(flat, call, at_step=True)
    duration = _per_window(flat, call.scalar(1))
    with np.errstate(all="ignore"):
        out = slope * duration + intercept
    return out.reshape(flat.shape), flat.counts >= 2


def _smooth(flat: Flat, call: CallArgs) -> tuple[F64, BOOL]:
    """Holt's linear smoothing per window: a recurrence, so it steps through window offsets
    (at most the longest window's sample count), each step vectorised across all windows."""
    lo, hi = flat.lo.ravel(), flat.hi.ravel()
    sf = _per_window(flat, call.scalar(1))
    tf = _per_window(flat, call.scalar(2))
    ok = (hi - lo) >= 2
    first, _ = gather_rows(flat.values, lo, hi, 0)
    second, _ = gather_rows(flat.values, lo, hi, 1)
    with np.errstate(all="ignore"):
        level, trend = first.copy(), second - first
        previous = np.zeros_like(level)
        for offset in range(1, int((hi - lo).max(initial=0))):
            call.ctx.check_deadline()
            value, active = gather_rows(flat.values, lo, hi, offset)
            if offset > 1:
                trend = np.where(active, tf * (level - previous) + (1 - tf) * trend, trend)
            new_level = sf * value + (1 - sf) * (level + trend)
            previous = np.where(active, level, previous)
            level = np.where(active, new_level, level)
    return level.reshape(flat.shape), ok.reshape(flat.shape)


_SMOOTH = over_time(_smooth)


def _smoothing(call: CallArgs) -> Vector:
    for name, index in (("smoothing", 1), ("trend", 2)):
        for value in np.unique(call.scalar(index)).tolist():
            if not 0 < value < 1:
                raise ExecutionError(
                    f"invalid {name} factor. Expected: 0 < {name[0]}f < 1, got: {value:f}"
                )
    return _SMOOTH(call)


FUNCTIONS: dict[str, Function] = {
    "deriv": over_time(_deriv),
    "predict_linear": over_time(_predict),
    "double_exponential_smoothing": _smoothing,
}
