"""Element-wise math on instant vectors: abs, rounding, logs, trigonometry, clamping."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from gateway.promql.functions.base import CallArgs, Function, map_vector
from gateway.promql.types import F64, Scalar, Vector


def _elementwise(fn: Callable[[F64], F64]) -> Function:
    def impl(call: CallArgs) -> Vector:
        return map_vector(call.vector(0), fn)

    return impl


def _sgn(values: F64) -> F64:
    return np.where(values > 0, 1.0, np.where(values < 0, -1.0, values))


def _round(call: CallArgs) -> Vector:
    vector = call.vector(0)
    to_nearest = call.scalar(1) if len(call.args) > 1 else np.ones(vector.steps)
    with np.errstate(all="ignore"):
        inverse = 1.0 / to_nearest
    return map_vector(vector, lambda v: np.floor(v * inverse + 0.5) / inverse)


def _clamp(call: CallArgs) -> Vector:
    vector = call.vector(0)
    low, high = call.scalar(1), call.scalar(2)
    out = map_vector(vector, lambda v: np.maximum(low, np.minimum(high, v)))
    # An empty range (max < min) yields nothing at that step.
    out.present[:, high < low] = False
    return out


def _clamp_min(call: CallArgs) -> Vector:
    low = call.scalar(1)
    return map_vector(call.vector(0), lambda v: np.maximum(low, v))


def _clamp_max(call: CallArgs) -> Vector:
    high = call.scalar(1)
    return map_vector(call.vector(0), lambda v: np.minimum(high, v))


def _pi(call: CallArgs) -> Scalar:
    return Scalar(np.full(len(call.grid), np.pi))


FUNCTIONS: dict[str, Function] = {
    "abs": _elementwise(np.abs),
    "ceil": _elementwise(np.ceil),
    "floor": _elementwise(np.floor),
    "sqrt": _elementwise(np.sqrt),
    "exp": _elementwise(np.exp),
    "ln": _elementwise(np.log),
    "log2": _elementwise(np.log2),
    "log10": _elementwise(np.log10),
    "sgn": _elementwise(_sgn),
    "acos": _elementwise(np.arccos),
    "acosh": _elementwise(np.arccosh),
    "asin": _elementwise(np.arcsin),
    "asinh": _elementwise(np.arcsinh),
    "atan": _elementwise(np.arctan),
    "atanh": _elementwise(np.arctanh),
    "cos": _elementwise(np.cos),
    "cosh": _elementwise(np.cosh),
    "sin": _elementwise(np.sin),
    "sinh": _elementwise(np.sinh),
    "tan": _elementwise(np.tan),
    "tanh": _elementwise(np.tanh),
    "deg": _elementwise(np.degrees),
    "rad": _elementwise(np.radians),
    "round": _round,
    "clamp": _clamp,
    "clamp_min": _clamp_min,
    "clamp_max": _clamp_max,
    "pi": _pi,
}
