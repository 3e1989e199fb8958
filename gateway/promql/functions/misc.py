"""absent, absent_over_time, scalar and vector: functions that change a value's shape."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import promql_parser as pp

from gateway.model.labels import METRIC_NAME, Labels
from gateway.promql.functions.base import CallArgs, Function
from gateway.promql.functions.flat import flatten
from gateway.promql.parse import selector_matchers
from gateway.promql.types import BOOL, F64, Scalar, Vector


def absent_labels(node: pp.Expr) -> Labels:
    """Labels for absent(): the equality matchers of a plain selector argument."""
    if isinstance(node, pp.MatrixSelector):
        node = node.vector_selector
    if not isinstance(node, pp.VectorSelector):
        return ()
    out: dict[str, str] = {}
    seen: set[str] = set()
    for matcher in selector_matchers(node):
        if matcher.name == METRIC_NAME:
            continue
        if matcher.op.value == "=" and matcher.name not in seen:
            out[matcher.name] = matcher.value
        else:
            # A label matched twice, or not by equality, has no single value to report.
            out.pop(matcher.name, None)
        seen.add(matcher.name)
    return tuple(sorted((k, v) for k, v in out.items() if v))


def _single(labels: Labels, missing: BOOL) -> Vector:
    steps = len(missing)
    return Vector(
        [labels], np.ones((1, steps)), missing.reshape(1, steps).copy(), np.zeros(1, np.bool_)
    )


def _absent(call: CallArgs) -> Vector:
    vector = call.vector(0)
    missing = np.asarray(~vector.present.any(axis=0), dtype=np.bool_)
    return _single(absent_labels(call.nodes[0]), missing)


def _absent_over_time(call: CallArgs) -> Vector:
    rv = call.range(0)
    seen = np.asarray((flatten(rv).counts > 0).any(axis=0), dtype=np.bool_)
    return _single(absent_labels(call.nodes[0]), ~seen)


def _scalar(call: CallArgs) -> Scalar:
    vector = call.vector(0)
    counts = vector.present.sum(axis=0)
    picked = np.where(vector.present, vector.values, 0.0).sum(axis=0)
    return Scalar(np.where(counts == 1, picked, np.nan))


def _vector(call: CallArgs) -> Vector:
    values = call.scalar(0)
    return Vector(
        [()], values[None, :].copy(), np.ones((1, len(values)), np.bool_), np.zeros(1, np.bool_)
    )


def _query_constant(pick: Callable[[CallArgs], int]) -> Function:
    def impl(call: CallArgs) -> Scalar:
        return Scalar(np.full(len(call.grid), pick(call) / 1000.0))

    return impl


def _pairwise(fn: Callable[[F64, F64], F64]) -> Function:
    def impl(call: CallArgs) -> Scalar:
        return Scalar(fn(call.scalar(0), call.scalar(1)))

    return impl


FUNCTIONS: dict[str, Function] = {
    "step": _query_constant(lambda c: c.ctx.step_ms),
    "range": _query_constant(lambda c: c.ctx.end_ms - c.ctx.start_ms),
    "start": _query_constant(lambda c: c.ctx.start_ms),
    "end": _query_constant(lambda c: c.ctx.end_ms),
    "min_of": _pairwise(np.minimum),
    "max_of": _pairwise(np.maximum),
    "absent": _absent,
    "absent_over_time": _absent_over_time,
    "scalar": _scalar,
    "vector": _vector,
}
