"""topk, bottomk, limitk and limit_ratio: aggregations that keep some of the input series.

Every row gets its rank inside its group at every step at once (one stable lexsort along the
rows for topk/bottomk, a running count for limitk), and the first k ranks stay present. The
chosen rows keep their own labels.
"""

from __future__ import annotations

import numpy as np

from gateway.model.labels import series_hash
from gateway.promql.context import EvalContext, go_float
from gateway.promql.errors import ExecutionError
from gateway.promql.types import BOOL, F64, I64, Vector

SELECTORS = ("topk", "bottomk", "limitk", "limit_ratio")
_MAX_UINT64 = float(2**64 - 1)


def select(op: str, param: F64, inner: Vector, of_row: I64, ctx: EvalContext) -> Vector:
    """Keep, per group and step, the rows the operator chooses."""
    if np.isnan(param).any():
        what = "Ratio" if op == "limit_ratio" else "Parameter"
        raise ExecutionError(f"{what} value is NaN")
    rows = len(inner.labels)
    if rows == 0:
        return inner
    if op == "limit_ratio":
        keep = inner.present & _ratio_keep(param, inner, ctx)
        rank = np.zeros(inner.values.shape, dtype=np.int64)
    else:
        rank = _ranks(op, inner, of_row)
        keep = inner.present & (rank < _k(param, rows)[None, :])
    out = Vector(inner.labels, inner.values, keep, inner.drop_name)
    if inner.steps != 1:
        return out
    # An instant query lists the chosen series group by group, in rank order.
    chosen = np.flatnonzero(keep[:, 0])
    order = np.lexsort((rank[chosen, 0], of_row[chosen]))
    return out.take(chosen[order])


def _k(param: F64, rows: int) -> I64:
    """k per step as Prometheus truncates it; infinities mean all or none."""
    with np.errstate(all="ignore"):
        k = np.where(np.isfinite(param), np.trunc(param), np.where(param > 0, rows, 0))
    return np.clip(k, 0, rows).astype(np.int64)


def _ranks(op: str, inner: Vector, of_row: I64) -> I64:
    """Each row's 0-based position within its group at each step (absent rows last)."""
    rows, steps = inner.values.shape
    absent = ~inner.present
    if op == "limitk":
        # Rows in input order: the rank is how many present rows of the group came before.
        order = np.argsort(of_row, kind="stable")
    else:
        values = inner.values
        nan = np.isnan(values)
        key = np.where(nan, 0.0, -values if op == "topk" else values)
        group = np.broadcast_to(of_row[:, None], (rows, steps))
        # NaN ranks after every number, absent after everything; ties keep input order.
        order = np.lexsort((key, nan, absent, group), axis=0)
    ranked = _rank_sorted(order, of_row, absent)
    rank = np.empty((rows, steps), dtype=np.int64)
    if order.ndim == 1:
        rank[order] = ranked
    else:
        np.put_along_axis(rank, order, ranked, axis=0)
    return rank


def _rank_sorted(order: I64, of_row: I64, absent: BOOL) -> I64:
    """Positions within the group of rows listed in `order` (1-D: the same for every step)."""
    steps = absent.shape[1]
    if order.ndim == 1:
        sorted_absent = absent[order]
        present = (~sorted_absent).astype(np.int64)
        before = np.cumsum(present, axis=0) - present
        groups = of_row[order]
        starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
        base = np.repeat(before[starts], np.diff(np.r_[starts, len(groups)]), axis=0)
        # Absent rows never stay present, so their rank does not matter.
        return np.asarray(before - base)
    groups = of_row[order]
    position = np.broadcast_to(np.arange(len(of_row))[:, None], (len(of_row), steps))
    first = np.zeros(int(of_row.max()) + 2, dtype=np.int64)
    np.cumsum(np.bincount(of_row, minlength=int(of_row.max()) + 1), out=first[1:])
    return np.asarray(position - first[groups])


def _ratio_keep(param: F64, inner: Vector, ctx: EvalContext) -> BOOL:
    """limit_ratio: a row stays when its label hash falls inside the ratio's share of 2^64."""
    for value in np.unique(param).tolist():
        if abs(value) > 1:
            capped = 1.0 if value > 0 else -1.0
            ctx.annotations.warn(
                f"ratio value should be between -1 and 1, got {go_float(value)}, "
                f"capping to {go_float(capped)}"
            )
    ratio = np.clip(param, -1.0, 1.0)[None, :]
    # Hashed once per series, not per step.
    offset = np.fromiter(
        (series_hash(labels) / _MAX_UINT64 for labels in inner.labels),
        np.float64,
        len(inner.labels),
    )[:, None]
    return np.asarray(
        ((ratio >= 0) & (offset < ratio)) | ((ratio < 0) & (offset >= 1.0 + ratio))
    )
