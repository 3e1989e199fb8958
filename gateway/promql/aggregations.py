"""Aggregation operators (sum, avg, topk, quantile, count_values, ...) with by/without."""

from __future__ import annotations

import math

import numpy as np
import promql_parser as pp

from gateway.model.labels import METRIC_NAME, Labels, series_hash
from gateway.promql.context import EvalContext, go_float
from gateway.promql.errors import BadData, ExecutionError
from gateway.promql.functions.windows import quantile
from gateway.promql.parse import op_name
from gateway.promql.result import format_value
from gateway.promql.rows import RowBuilder
from gateway.promql.types import BOOL, F64, Scalar, String, Value, Vector, without_name

_SELECTORS = ("topk", "bottomk", "limitk", "limit_ratio")


def _group_key(labels: Labels, names: set[str], without: bool) -> Labels:
    if without:
        return tuple(p for p in labels if p[0] not in names and p[0] != METRIC_NAME)
    return tuple(p for p in labels if p[0] in names)


def _groups(vector: Vector, modifier: pp.AggModifier | None) -> dict[Labels, list[int]]:
    without = modifier is not None and modifier.type == pp.AggModifierType.Without
    names = set(modifier.labels) if modifier is not None else set()
    groups: dict[Labels, list[int]] = {}
    for row, labels in enumerate(vector.labels):
        # A name already marked for removal takes no part in grouping.
        own = without_name(labels) if vector.drop_name[row] else labels
        groups.setdefault(_group_key(own, names, without), []).append(row)
    return groups


def _kahan_add(inc: F64, total: F64, comp: F64) -> tuple[F64, F64]:
    new = total + inc
    bigger = np.abs(total) >= np.abs(inc)
    step = np.where(bigger, (total - new) + inc, (inc - new) + total)
    return new, np.where(np.isinf(new), 0.0, comp + step)


def kahan_sum(values: F64, present: BOOL) -> F64:
    """Compensated sum over rows, per step, as Prometheus sums floats."""
    total = np.zeros(values.shape[1], dtype=np.float64)
    comp = np.zeros(values.shape[1], dtype=np.float64)
    with np.errstate(all="ignore"):
        for row in range(values.shape[0]):
            total, comp = _kahan_add(np.where(present[row], values[row], 0.0), total, comp)
        return np.asarray(total + comp, dtype=np.float64)


def welford_variance(values: F64, present: BOOL) -> F64:
    """Population variance over rows per step (Welford with compensated sums)."""
    steps = values.shape[1]
    count, mean, mean_c, aux, aux_c = (np.zeros(steps) for _ in range(5))
    with np.errstate(all="ignore"):
        for row in range(values.shape[0]):
            here, value = present[row], values[row]
            new_count = count + here
            delta = value - (mean + mean_c)
            new_mean, new_mean_c = _kahan_add(delta / new_count, mean, mean_c)
            new_aux, new_aux_c = _kahan_add(
                delta * (value - (new_mean + new_mean_c)), aux, aux_c
            )
            count = new_count
            mean, mean_c = np.where(here, new_mean, mean), np.where(here, new_mean_c, mean_c)
            aux, aux_c = np.where(here, new_aux, aux), np.where(here, new_aux_c, aux_c)
        return np.asarray((aux + aux_c) / count, dtype=np.float64)


def _reduce(op: str, values: F64, present: BOOL, param: F64 | None) -> F64:
    count = present.sum(axis=0)
    with np.errstate(all="ignore"):
        if op == "sum":
            return kahan_sum(values, present)
        if op == "avg":
            mean = kahan_sum(values, present) / count
            bad = np.isinf(mean) & np.isfinite(np.where(present, values, 0.0)).all(axis=0)
            if bad.any():
                incremental = np.where(present, values / np.maximum(count, 1), 0.0).sum(axis=0)
                mean = np.where(bad, incremental, mean)
            return np.asarray(mean, dtype=np.float64)
        if op == "count":
            return np.asarray(count, dtype=np.float64)
        if op == "group":
            return np.ones(values.shape[1], dtype=np.float64)
        if op in ("min", "max"):
            masked = np.where(present, values, np.nan)
            reducer = np.fmin if op == "min" else np.fmax
            return np.asarray(reducer.reduce(masked, axis=0), dtype=np.float64)
        if op in ("stddev", "stdvar"):
            dev = welford_variance(values, present)
            return np.asarray(np.sqrt(dev) if op == "stddev" else dev, dtype=np.float64)
        if op == "quantile":
            assert param is not None
            out = np.zeros(values.shape[1], dtype=np.float64)
            for j in np.flatnonzero(count).tolist():
                out[j] = quantile(float(param[j]), values[present[:, j], j])
            return out
    raise BadData(f"unknown aggregation {op}")


def aggregate(
    expr: pp.AggregateExpr, param: Value | None, inner: Value, ctx: EvalContext
) -> Vector:
    """Evaluate an aggregation over an evaluated inner vector."""
    op = op_name(expr.op)
    if not isinstance(inner, Vector):
        raise BadData(f"expected instant vector in aggregation {op}")
    groups = _groups(inner, expr.modifier)
    if op == "count_values":
        if not isinstance(param, String):
            raise BadData("count_values requires a string parameter")
        return _count_values(param.value, inner, groups)
    scalar = param.values if isinstance(param, Scalar) else None
    if op in _SELECTORS:
        assert scalar is not None
        return _select(op, scalar, inner, groups)
    if op == "quantile" and scalar is not None:
        for q in np.unique(scalar).tolist():
            if not 0 <= q <= 1:
                ctx.annotations.warn(
                    f"quantile value should be between 0 and 1, got {go_float(q)}"
                )
    keys = list(groups)
    values = np.zeros((len(keys), inner.steps), dtype=np.float64)
    present = np.zeros((len(keys), inner.steps), dtype=np.bool_)
    for g, key in enumerate(keys):
        rows = groups[key]
        sub_present = inner.present[rows]
        values[g] = _reduce(op, inner.values[rows], sub_present, scalar)
        present[g] = sub_present.any(axis=0)
    values = np.where(present, values, 0.0)
    return Vector(keys, values, present, np.zeros(len(keys), dtype=np.bool_))


def _count_values(label: str, inner: Vector, groups: dict[Labels, list[int]]) -> Vector:
    if not label or "\ufffd" in label:
        raise ExecutionError(f"invalid label name {label!r}")
    builder = RowBuilder(inner.steps)
    counts: dict[Labels, F64] = {}
    for key, rows in groups.items():
        for row in rows:
            for j in np.flatnonzero(inner.present[row]).tolist():
                text = format_value(float(inner.values[row, j]))
                labels = tuple(sorted([*(p for p in key if p[0] != label), (label, text)]))
                counts.setdefault(labels, np.zeros(inner.steps))[j] += 1
    for labels, series in counts.items():
        builder.add(labels, series, series > 0, False)
    return builder.build()


def _check_param(op: str, param: F64) -> None:
    if np.isnan(param).any():
        what = "Ratio" if op == "limit_ratio" else "Parameter"
        raise ExecutionError(f"{what} value is NaN")


def _select(op: str, param: F64, inner: Vector, groups: dict[Labels, list[int]]) -> Vector:
    _check_param(op, param)
    keep = np.zeros_like(inner.present)
    order: list[int] = []
    for rows in groups.values():
        idx = np.asarray(rows)
        sub_values, sub_present = inner.values[idx], inner.present[idx]
        for j in np.flatnonzero(sub_present.any(axis=0)).tolist():
            chosen = _choose(op, float(param[j]), sub_values[:, j], sub_present[:, j], inner, idx)
            keep[idx[chosen], j] = True
            order.extend(int(idx[c]) for c in chosen)
    # Rows keep their own labels; only the chosen steps stay present.
    out = Vector(inner.labels, inner.values, keep, inner.drop_name)
    # An instant query lists the chosen series in rank order, as Prometheus does.
    return out.take(order) if inner.steps == 1 else out


def _choose(
    op: str, param: float, values: F64, present: BOOL, inner: Vector, idx: np.ndarray
) -> list[int]:
    candidates = np.flatnonzero(present).tolist()
    if op == "limit_ratio":
        ratio = max(-1.0, min(1.0, param))
        chosen = []
        for c in candidates:
            offset = series_hash(inner.labels[int(idx[c])]) / float(2**64 - 1)
            if (ratio >= 0 and offset < ratio) or (ratio < 0 and offset >= 1.0 + ratio):
                chosen.append(c)
        return chosen
    k = int(min(param, len(candidates))) if math.isfinite(param) else (
        len(candidates) if param > 0 else 0
    )
    if k < 1:
        return []
    if op == "limitk":
        return candidates[:k]
    sign = -1.0 if op == "topk" else 1.0

    def key(c: int) -> tuple[int, float]:
        v = float(values[c])
        return (1, 0.0) if math.isnan(v) else (0, sign * v)

    return sorted(candidates, key=key)[:k]
