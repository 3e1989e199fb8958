"""deriv, predict_linear and double_exponential_smoothing: trends fitted per window."""

from __future__ import annotations

import math

import numpy as np

from gateway.promql.errors import ExecutionError
from gateway.promql.functions.base import CallArgs, Function
from gateway.promql.functions.overtime import over_time, per_window
from gateway.promql.types import F64, I64, Vector


def linear_regression(ts: I64, vals: F64, intercept_ms: int) -> tuple[float, float]:
    """Least-squares slope (per second) and intercept at `intercept_ms`."""
    if (vals == vals[0]).all():
        if math.isinf(vals[0]):
            return math.nan, math.nan
        return 0.0, float(vals[0])
    x = (ts - intercept_ms) / 1000.0
    n = float(len(vals))
    with np.errstate(all="ignore"):
        sum_x, sum_y = float(np.sum(x)), float(np.sum(vals))
        cov_xy = float(np.sum(x * vals)) - sum_x * sum_y / n
        var_x = float(np.sum(x * x)) - sum_x * sum_x / n
        slope = cov_xy / var_x if var_x != 0 else math.nan
        intercept = sum_y / n - slope * sum_x / n
    return slope, intercept


def _deriv(ts: I64, vals: F64, end: int, j: int, c: CallArgs) -> float | None:
    return linear_regression(ts, vals, int(ts[0]))[0]


def _predict(ts: I64, vals: F64, end: int, j: int, c: CallArgs) -> float | None:
    # Prometheus extrapolates from the step's own time, even under `@`.
    slope, intercept = linear_regression(ts, vals, int(c.grid.times[j]))
    return slope * float(c.scalar(1)[j]) + intercept


def _smooth(ts: I64, vals: F64, end: int, j: int, c: CallArgs) -> float | None:
    sf, tf = float(c.scalar(1)[j]), float(c.scalar(2)[j])
    level, trend = float(vals[0]), float(vals[1] - vals[0])
    previous = 0.0
    for i in range(1, len(vals)):
        if i > 1:
            trend = tf * (level - previous) + (1 - tf) * trend
        previous, level = level, sf * float(vals[i]) + (1 - sf) * (level + trend)
    return level


_SMOOTH = over_time(per_window(_smooth, min_samples=2))


def _smoothing(call: CallArgs) -> Vector:
    for name, index in (("smoothing", 1), ("trend", 2)):
        for value in np.unique(call.scalar(index)).tolist():
            if not 0 < value < 1:
                raise ExecutionError(
                    f"invalid {name} factor. Expected: 0 < {name[0]}f < 1, got: {value:f}"
                )
    return _SMOOTH(call)


FUNCTIONS: dict[str, Function] = {
    "deriv": over_time(per_window(_deriv, min_samples=2)),
    "predict_linear": over_time(per_window(_predict, min_samples=2)),
    "double_exponential_smoothing": _smoothing,
}
