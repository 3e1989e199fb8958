"""Evaluating an AST node over a grid of steps, all steps at once."""

from __future__ import annotations

import numpy as np
import promql_parser as pp

from gateway.model.series import SeriesData
from gateway.promql import aggregations, binary
from gateway.promql.context import EvalContext
from gateway.promql.errors import BadData
from gateway.promql.functions import FUNCTIONS, CallArgs
from gateway.promql.parse import delta_ms
from gateway.promql.plan import Bounds, selector_fetch, subquery_grid
from gateway.promql.selectors import instant_vector, range_vector, sample_times
from gateway.promql.types import Grid, RangeVector, Scalar, String, Value, Vector


def bounds_of(ctx: EvalContext) -> Bounds:
    """The planning bounds matching an evaluation context."""
    return Bounds(
        ctx.start_ms,
        ctx.end_ms,
        ctx.options.lookback_delta_ms,
        ctx.options.default_subquery_step_ms,
    )


def evaluate(expr: pp.Expr, grid: Grid, ctx: EvalContext) -> Value:
    """The value of `expr` at every step of `grid`."""
    ctx.check_deadline()
    if isinstance(expr, pp.NumberLiteral):
        return Scalar(np.full(len(grid), expr.val, dtype=np.float64))
    if isinstance(expr, pp.StringLiteral):
        return String(ctx.strings.get(expr.val, expr.val))
    if isinstance(expr, pp.ParenExpr):
        return evaluate(expr.expr, grid, ctx)
    if isinstance(expr, pp.UnaryExpr):
        return _negate(evaluate(expr.expr, grid, ctx))
    if isinstance(expr, pp.VectorSelector):
        fetch, ends = selector_fetch(expr, grid.times, None, bounds_of(ctx))
        vector = instant_vector(ctx.data[fetch.key], ends, ctx.options.lookback_delta_ms)
        ctx.check_samples(int(vector.present.sum()))
        return vector
    if isinstance(expr, pp.MatrixSelector):
        fetch, ends = selector_fetch(
            expr.vector_selector, grid.times, delta_ms(expr.range), bounds_of(ctx)
        )
        return range_vector(ctx.data[fetch.key], ends, delta_ms(expr.range))
    if isinstance(expr, pp.SubqueryExpr):
        return _subquery(expr, grid, ctx)
    if isinstance(expr, pp.Call):
        return _call(expr, grid, ctx)
    if isinstance(expr, pp.AggregateExpr):
        param = None if expr.param is None else evaluate(expr.param, grid, ctx)
        inner = evaluate(expr.expr, grid, ctx)
        return aggregations.aggregate(expr, param, inner, ctx)
    if isinstance(expr, pp.BinaryExpr):
        lhs = evaluate(expr.lhs, grid, ctx)
        rhs = evaluate(expr.rhs, grid, ctx)
        return binary.apply(expr, lhs, rhs, ctx)
    raise BadData(f"unsupported expression {type(expr).__name__}")


def _negate(value: Value) -> Value:
    if isinstance(value, Scalar):
        return Scalar(-value.values)
    if isinstance(value, Vector):
        return Vector(
            value.labels, -value.values, value.present, np.ones(len(value.labels), np.bool_)
        )
    raise BadData("unary expression only allowed on expressions of type scalar or instant vector")


def _subquery(expr: pp.SubqueryExpr, grid: Grid, ctx: EvalContext) -> RangeVector:
    inner_grid, ends, range_ms = subquery_grid(expr, grid.times, bounds_of(ctx))
    inner = evaluate(expr.expr, inner_grid, ctx)
    if isinstance(inner, Scalar):
        inner = Vector(
            [()],
            inner.values[None, :],
            np.ones((1, len(inner_grid)), np.bool_),
            np.zeros(1, np.bool_),
        )
    if not isinstance(inner, Vector):
        raise BadData("subquery is only allowed on instant vector")
    series = [
        SeriesData(labels, inner_grid.times[inner.present[i]], inner.values[i][inner.present[i]])
        for i, labels in enumerate(inner.labels)
    ]
    return RangeVector(series, ends, range_ms, inner.drop_name.copy())


def _call(expr: pp.Call, grid: Grid, ctx: EvalContext) -> Value:
    name = expr.func.name
    nodes = list(expr.args)
    if name == "timestamp":
        target = nodes[0]
        while isinstance(target, pp.ParenExpr):
            target = target.expr
        if isinstance(target, pp.VectorSelector):
            # timestamp() of a plain selector reports when the selected sample was written.
            fetch, ends = selector_fetch(target, grid.times, None, bounds_of(ctx))
            vector = sample_times(ctx.data[fetch.key], ends, ctx.options.lookback_delta_ms)
            return Vector(vector.labels, vector.values, vector.present, ~vector.drop_name)
    impl = FUNCTIONS.get(name)
    if impl is None:
        raise BadData(f"unknown function with name {name!r}")
    args = [evaluate(node, grid, ctx) for node in nodes]
    return impl(CallArgs(name, args, nodes, grid, ctx))
