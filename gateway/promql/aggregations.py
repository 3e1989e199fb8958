"""Aggregation operators (sum, avg, min, max, count, group, stddev, stdvar, quantile) with
by/without; topk and its kin are in `selection`, count_values in `count_values`.

Rows are sorted by group once, so every group is a run of consecutive rows and each reduction
is a few numpy passes over all groups and steps: pairwise double-double sums per run (as exact
as Prometheus' Kahan sums), reduceat for counts and extremes, and a flat (step, group) layout
of the present values for quantiles and for replaying Prometheus' sequential algorithms on the
rare cells whose sums could overflow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import promql_parser as pp

from gateway.promql import count_values, selection
from gateway.promql.context import EvalContext, go_float
from gateway.promql.errors import BadData
from gateway.promql.functions.compensated import (
    SAFE_TOTAL,
    Check,
    ieee_total,
    kahan_mean_windows,
    kahan_windows,
    segment_sums,
    welford_windows,
)
from gateway.promql.functions.moments import squares, variance_of
from gateway.promql.functions.ordered import window_quantiles
from gateway.promql.grouping import group_rows
from gateway.promql.parse import op_name
from gateway.promql.types import BOOL, F64, I64, Scalar, String, Value, Vector, type_name

# Squares of magnitudes in [_TINY, _HUGE] neither overflow nor lose bits to underflow.
_HUGE = 1e150
_TINY = 1e-100


@dataclass(frozen=True, slots=True, eq=False)
class _Cells:
    """Sorted values of one aggregation: (rows sorted by group, steps), present mask."""

    values: F64
    present: BOOL
    starts: I64

    @property
    def heads(self) -> I64:
        return self.starts[:-1]

    def per_group(self, flags: BOOL) -> I64:
        """How many rows of each group have a flag set, per step: (groups, steps)."""
        return np.add.reduceat(flags.astype(np.int64), self.heads, axis=0)

    def finite(self) -> F64:
        return np.where(self.present & np.isfinite(self.values), self.values, 0.0)

    def flat(self) -> tuple[F64, I64, I64]:
        """Present values laid out step by step, group by group, and each (group, step)
        cell's [lo, hi) in that layout, cells ordered (group, step)."""
        flat = self.values.T[self.present.T]
        counts = np.add.reduceat(self.present.T.astype(np.int64), self.heads, axis=1)
        hi = np.cumsum(counts.ravel())
        lo = hi - counts.ravel()
        groups, steps = len(self.heads), self.values.shape[1]
        as_cells = np.arange(groups * steps).reshape(steps, groups).T.ravel()
        return flat, lo[as_cells], hi[as_cells]

    def nonfinite(self) -> tuple[I64, I64, I64]:
        v, p = self.values, self.present
        return (
            self.per_group(p & np.isnan(v)),
            self.per_group(p & (v == np.inf)),
            self.per_group(p & (v == -np.inf)),
        )

    def max_abs(self) -> F64:
        return np.asarray(np.maximum.reduceat(np.abs(self.finite()), self.heads, axis=0))

    def all_finite(self) -> bool:
        return bool(np.isfinite(self.values[self.present]).all())

    def with_nonfinite(self, out: F64) -> F64:
        """IEEE's rules for NaN and infinities among a cell's values (a no-op without any)."""
        if self.all_finite():
            return out
        with np.errstate(invalid="ignore"):
            return ieee_total(out, *self.nonfinite())

    def overflow_risk(self, count: F64) -> BOOL:
        """Cells whose partial sums could overflow; none when the largest value times the
        largest group could not."""
        biggest = float(np.abs(self.finite()).max(initial=0.0))
        if biggest * float(count.max(initial=0)) < SAFE_TOTAL:
            return np.zeros(count.shape, dtype=np.bool_)
        with np.errstate(over="ignore"):
            return np.asarray(count * self.max_abs() >= SAFE_TOTAL)


# A sequential algorithm over (flat values, lo, hi, check), replayed on the risky cells.
Replay = Callable[[F64, I64, I64, Check], F64]


def _replay(cells: _Cells, risky: BOOL, out: F64, fn: Replay, check: Check) -> F64:
    """Recompute the risky (group, step) cells with Prometheus' sequential algorithm."""
    if risky.any():
        flat, lo, hi = cells.flat()
        take = np.flatnonzero(risky.ravel())
        out = out.copy()
        out.ravel()[take] = fn(flat, lo[take], hi[take], check)
    return out


def _sum(cells: _Cells, count: F64, check: Check) -> F64:
    high, low = segment_sums(cells.finite(), None, cells.starts, check)
    out = cells.with_nonfinite(high + low)
    return _replay(cells, cells.overflow_risk(count), out, kahan_windows, check)


def _avg(cells: _Cells, count: F64, check: Check) -> F64:
    high, low = segment_sums(cells.finite(), None, cells.starts, check)
    with np.errstate(all="ignore"):
        out = cells.with_nonfinite(high / count + low / count)
    return _replay(cells, cells.overflow_risk(count), out, kahan_mean_windows, check)


def _variance(cells: _Cells, count: F64, check: Check) -> F64:
    finite = cells.finite()
    steps = finite.shape[1]
    sq_h, sq_l = squares(finite)
    # Values and their squares side by side: one pairwise pass sums both.
    high, low = segment_sums(
        np.concatenate([finite, sq_h], axis=1),
        np.concatenate([np.zeros_like(finite), sq_l], axis=1),
        cells.starts,
        check,
    )
    out = variance_of((high[:, :steps], low[:, :steps]), (high[:, steps:], low[:, steps:]), count)
    masked = np.where(cells.present, cells.values, np.nan)
    low = np.fmin.reduceat(masked, cells.heads, axis=0)
    high = np.fmax.reduceat(masked, cells.heads, axis=0)
    # Welford gives exactly 0 for equal values; so must we (no rounding residue).
    out = np.where(low == high, 0.0, out)
    nans, pos_inf, neg_inf = cells.nonfinite()
    out = np.where(nans + pos_inf + neg_inf > 0, np.nan, out)
    biggest = cells.max_abs()
    risky = (biggest >= _HUGE) | ((biggest > 0) & (biggest < _TINY))
    with np.errstate(over="ignore"):
        risky |= count * biggest * biggest >= SAFE_TOTAL
    return _replay(cells, risky & (count > 0), out, welford_windows, check)


def _quantile(cells: _Cells, param: F64, check: Check) -> F64:
    flat, lo, hi = cells.flat()
    groups, steps = len(cells.heads), cells.values.shape[1]
    q = np.broadcast_to(param[None, :], (groups, steps)).ravel()
    return window_quantiles(flat, lo, hi, q, check).reshape(groups, steps)


def _reduce(op: str, cells: _Cells, param: F64 | None, check: Check) -> F64:
    count = cells.per_group(cells.present).astype(np.float64)
    with np.errstate(all="ignore"):
        if op == "sum":
            return _sum(cells, count, check)
        if op == "avg":
            return _avg(cells, count, check)
        if op == "count":
            return count
        if op == "group":
            return np.ones_like(count)
        if op in ("min", "max"):
            masked = np.where(cells.present, cells.values, np.nan)
            reducer = np.fmin if op == "min" else np.fmax
            return np.asarray(reducer.reduceat(masked, cells.heads, axis=0))
        if op in ("stddev", "stdvar"):
            variance = _variance(cells, count, check)
            return np.sqrt(variance) if op == "stddev" else variance
        if op == "quantile":
            assert param is not None
            return _quantile(cells, param, check)
    raise BadData(f"unknown aggregation {op}")


def aggregate(
    expr: pp.AggregateExpr, param: Value | None, inner: Value, ctx: EvalContext
) -> Vector:
    """Evaluate an aggregation over an evaluated inner vector."""
    op = op_name(expr.op)
    if not isinstance(inner, Vector):
        raise BadData(f"expected instant vector in aggregation {op}")
    if op == "count_values":
        if not isinstance(param, String):
            raise BadData("count_values requires a string parameter")
        return count_values.count_values(param.value, inner, expr.modifier, ctx.check_deadline)
    if op in (*selection.SELECTORS, "quantile") and not isinstance(param, Scalar):
        # promql-parser checks this for topk, bottomk and quantile only (Prometheus, at parsing).
        got = "nothing" if param is None else type_name(param)
        raise BadData(f"parse error: expected type scalar in aggregation parameter, got {got}")
    groups = group_rows(inner, expr.modifier, ctx.check_deadline)
    scalar = param.values if isinstance(param, Scalar) else None
    if op in selection.SELECTORS:
        assert scalar is not None
        return selection.select(op, scalar, inner, groups.of_row, ctx)
    if op == "quantile" and scalar is not None:
        for q in np.unique(scalar).tolist():
            if not 0 <= q <= 1:
                ctx.annotations.warn(
                    f"quantile value should be between 0 and 1, got {go_float(q)}"
                )
    if not groups.keys:
        return Vector.empty(inner.steps)
    cells = _Cells(inner.values[groups.order], inner.present[groups.order], groups.starts)
    values = _reduce(op, cells, scalar, ctx.check_deadline)
    present = cells.per_group(cells.present) > 0
    values = np.where(present, values, 0.0)
    keys = groups.keys
    return Vector(keys, values, present, np.zeros(len(keys), dtype=np.bool_))
