"""Query entry points: parse, plan, fetch through a `SeriesSource`, evaluate, shape results."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import promql_parser as pp

from gateway.promql.context import EngineOptions, EvalContext
from gateway.promql.errors import BadData, QueryTimeout
from gateway.promql.evaluator import bounds_of, evaluate
from gateway.promql.gostrings import raw_strings
from gateway.promql.parse import parse_query
from gateway.promql.plan import plan
from gateway.promql.result import (
    MatrixValue,
    Result,
    Sample,
    ScalarValue,
    Series,
    StringValue,
    VectorValue,
)
from gateway.promql.rows import merge_duplicates
from gateway.promql.source import SeriesSource
from gateway.promql.types import Grid, RangeVector, Scalar, String, Value, Vector, without_name

__all__ = ["EngineOptions", "instant_query", "range_query"]


async def instant_query(
    source: SeriesSource, query: str, time_ms: int, options: EngineOptions | None = None
) -> Result:
    """Evaluate `query` at one instant."""
    options = options or EngineOptions()
    expr = parse_query(query)
    grid = Grid.of(time_ms, time_ms, 0)
    ctx = await _prepare(source, query, expr, grid, time_ms, time_ms, options)
    value = await _evaluate(expr, Grid.of(time_ms, time_ms, 0), ctx)
    return _finish(_instant_value(value, time_ms), ctx)


async def range_query(
    source: SeriesSource,
    query: str,
    start_ms: int,
    end_ms: int,
    step_ms: int,
    options: EngineOptions | None = None,
) -> Result:
    """Evaluate `query` at start, start+step, ... <= end; the result is always a matrix."""
    options = options or EngineOptions()
    if step_ms <= 0:
        raise BadData(
            "zero or negative query resolution step widths are not accepted. "
            "Try a positive integer"
        )
    if end_ms < start_ms:
        raise BadData("end timestamp must not be before start time")
    # Prometheus counts intervals, not points: (end - start) / step may reach the maximum.
    if (end_ms - start_ms) // step_ms > options.max_points_per_series:
        raise BadData(
            f"exceeded maximum resolution of {options.max_points_per_series:,} points per "
            "timeseries. Try decreasing the query resolution (?step=XX)"
        )
    expr = parse_query(query)
    grid = Grid.of(start_ms, end_ms, step_ms)
    ctx = await _prepare(source, query, expr, grid, start_ms, end_ms, options, is_range=True)
    ctx.step_ms = step_ms
    value = await _evaluate(expr, grid, ctx)
    if isinstance(value, Scalar):
        value = Vector([()], value.values[None, :], np.ones((1, len(grid)), np.bool_),
                       np.zeros(1, np.bool_))
    if not isinstance(value, Vector):
        kind = "string" if isinstance(value, String) else "range vector"
        raise BadData(
            f'invalid expression type "{kind}" for range query, must be Scalar or instant Vector'
        )
    vector = _drop_names(value)
    series = [
        Series(labels, grid.times[vector.present[i]], vector.values[i][vector.present[i]])
        for i, labels in enumerate(vector.labels)
        if vector.present[i].any()
    ]
    series.sort(key=lambda s: s.labels)
    return _finish(MatrixValue(series), ctx)


async def _prepare(
    source: SeriesSource,
    query: str,
    expr: pp.Expr,
    grid: Grid,
    start_ms: int,
    end_ms: int,
    options: EngineOptions,
    is_range: bool = False,
) -> EvalContext:
    """Plan the fetches and run them concurrently; the context holds what they returned."""
    ctx = EvalContext(options, start_ms, end_ms, is_range, {})
    ctx.deadline = time.monotonic() + options.timeout_s
    ctx.strings = raw_strings(query)
    fetches = {f.key: f for f in plan(expr, grid, bounds_of(ctx))}
    try:
        # Awaited here, not through wait_for: a cancelled gather then has its outcome read
        # (wait_for left it unread, and asyncio logged "exception was never retrieved").
        async with asyncio.timeout(options.timeout_s):
            results = await asyncio.gather(
                *(source.select(f.matchers, f.start_ms, f.end_ms) for f in fetches.values())
            )
    except TimeoutError:
        raise QueryTimeout("query timed out in series selection") from None
    ctx.data = dict(zip(fetches, results, strict=True))
    ctx.check_samples(sum(len(s.timestamps) for r in results for s in r))
    return ctx


async def _evaluate(expr: pp.Expr, grid: Grid, ctx: EvalContext) -> Value:
    """Evaluate on a worker thread, so the event loop keeps serving while numpy works.

    When the awaiting task is cancelled (a timeout, a client gone), the thread is told to stop:
    it raises at its next check instead of running on unobserved.
    """
    try:
        return await asyncio.to_thread(evaluate, expr, grid, ctx)
    except asyncio.CancelledError:
        ctx.canceled = True
        raise


def _drop_names(vector: Vector) -> Vector:
    """Apply delayed `__name__` removal, then refuse label sets that now collide."""
    if not vector.drop_name.any():
        return merge_duplicates(vector)
    labels = [
        without_name(ls) if drop else ls
        for ls, drop in zip(vector.labels, vector.drop_name.tolist(), strict=True)
    ]
    renamed = Vector(labels, vector.values, vector.present, np.zeros(len(labels), np.bool_))
    return merge_duplicates(renamed)


def _instant_value(
    value: Value, time_ms: int
) -> VectorValue | MatrixValue | ScalarValue | StringValue:
    if isinstance(value, Scalar):
        return ScalarValue(time_ms, float(value.values[0]))
    if isinstance(value, String):
        return StringValue(time_ms, value.value)
    if isinstance(value, RangeVector):
        series = []
        for i, data in enumerate(value.series):
            lo, hi = value.bounds(i)
            a, b = int(lo[0]), int(hi[0])
            if b > a:
                labels = without_name(data.labels) if value.drop_name[i] else data.labels
                series.append(Series(labels, data.timestamps[a:b], data.values[a:b]))
        return MatrixValue(series)
    vector = _drop_names(value)
    samples = [
        Sample(labels, time_ms, float(vector.values[i, 0]))
        for i, labels in enumerate(vector.labels)
        if vector.present[i, 0]
    ]
    return VectorValue(samples)


def _finish(
    value: VectorValue | MatrixValue | ScalarValue | StringValue, ctx: EvalContext
) -> Result:
    notes = ctx.annotations
    return Result(value, list(notes.warnings), list(notes.infos))
