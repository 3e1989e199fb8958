"""Planning: which series and time span every selector of a query needs.

The evaluator uses the same functions to find its data again, so a selector is fetched once
and identical selectors over identical spans share one fetch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import promql_parser as pp

from gateway.model.matchers import Matcher
from gateway.promql.parse import at_ms, delta_ms, selector_matchers
from gateway.promql.types import I64, Grid

FetchKey = tuple[tuple[str, str, str], ...] | tuple[object, ...]


@dataclass(frozen=True, slots=True)
class Fetch:
    """One `SeriesSource.select` call: matchers and an inclusive span."""

    matchers: tuple[Matcher, ...]
    start_ms: int
    end_ms: int

    @property
    def key(self) -> FetchKey:
        ids = tuple((m.name, m.op.value, m.value) for m in self.matchers)
        return (ids, self.start_ms, self.end_ms)


@dataclass(frozen=True, slots=True)
class Bounds:
    """The query's own start and end (what `@ start()` / `@ end()` mean)."""

    start_ms: int
    end_ms: int
    lookback_ms: int
    default_step_ms: int


def shifted_times(
    times: I64, at: pp.AtModifier | None, offset: timedelta | None, bounds: Bounds
) -> I64:
    """Evaluation times after applying `@` (pins every step) and `offset`."""
    pinned = at_ms(at, bounds.start_ms, bounds.end_ms)
    base = times if pinned is None else np.full(len(times), pinned, dtype=np.int64)
    return np.asarray(base - delta_ms(offset), dtype=np.int64)


def selector_fetch(
    selector: pp.VectorSelector, times: I64, range_ms: int | None, bounds: Bounds
) -> tuple[Fetch, I64]:
    """The fetch for a vector selector (range_ms None) or a matrix selector, and its times."""
    ends = shifted_times(times, selector.at, selector.offset, bounds)
    reach = bounds.lookback_ms if range_ms is None else range_ms
    matchers = tuple(selector_matchers(selector))
    if len(ends) == 0:
        return Fetch(matchers, 0, -1), ends
    return Fetch(matchers, int(ends.min()) - reach + 1, int(ends.max())), ends


def subquery_grid(sub: pp.SubqueryExpr, times: I64, bounds: Bounds) -> tuple[Grid, I64, int]:
    """The inner grid of a subquery, the window ends per outer step, and the range."""
    ends = shifted_times(times, sub.at, sub.offset, bounds)
    range_ms = delta_ms(sub.range)
    step = delta_ms(sub.step) or bounds.default_step_ms
    first = int(ends.min()) - range_ms
    # Inner steps are aligned to multiples of the step, starting after the earliest window start.
    start = -((-first) // step) * step
    if start == first:
        start += step
    return Grid.of(start, int(ends.max()), step), ends, range_ms


def plan(expr: pp.Expr, grid: Grid, bounds: Bounds) -> list[Fetch]:
    """Every fetch the expression needs when evaluated over `grid`."""
    out: list[Fetch] = []
    _walk(expr, grid.times, bounds, out)
    return out


def _walk(expr: pp.Expr, times: I64, bounds: Bounds, out: list[Fetch]) -> None:
    if isinstance(expr, pp.VectorSelector):
        out.append(selector_fetch(expr, times, None, bounds)[0])
    elif isinstance(expr, pp.MatrixSelector):
        out.append(selector_fetch(expr.vector_selector, times, delta_ms(expr.range), bounds)[0])
    elif isinstance(expr, pp.SubqueryExpr):
        inner, _, _ = subquery_grid(expr, times, bounds)
        _walk(expr.expr, inner.times, bounds, out)
    else:
        for child in children(expr):
            _walk(child, times, bounds, out)


def children(expr: pp.Expr) -> Sequence[pp.Expr]:
    """The sub-expressions of a node (selectors and literals have none)."""
    if isinstance(expr, pp.Call):
        return list(expr.args)
    if isinstance(expr, pp.AggregateExpr):
        return [expr.expr] if expr.param is None else [expr.param, expr.expr]
    if isinstance(expr, pp.BinaryExpr):
        return [expr.lhs, expr.rhs]
    if isinstance(expr, pp.ParenExpr | pp.UnaryExpr | pp.SubqueryExpr):
        return [expr.expr]
    return []
