"""Binary operators: arithmetic, comparison (filter or bool) and set operators with matching."""

from __future__ import annotations

import numpy as np
import promql_parser as pp

from gateway.model.labels import METRIC_NAME, Labels
from gateway.promql.context import EvalContext
from gateway.promql.errors import BadData, ExecutionError
from gateway.promql.gostrings import go_labels
from gateway.promql.parse import op_name
from gateway.promql.rows import RowBuilder
from gateway.promql.types import BOOL, F64, Scalar, Value, Vector

COMPARISONS = ("==", "!=", ">", "<", ">=", "<=")
SET_OPS = ("and", "or", "unless")


def arithmetic(op: str, lhs: F64, rhs: F64) -> F64:
    """Element-wise arithmetic with IEEE semantics (no warnings on x/0)."""
    with np.errstate(all="ignore"):
        if op == "+":
            return lhs + rhs
        if op == "-":
            return lhs - rhs
        if op == "*":
            return lhs * rhs
        if op == "/":
            return lhs / rhs
        if op == "%":
            return np.fmod(lhs, rhs)
        if op == "^":
            return np.power(lhs, rhs)
        if op == "atan2":
            return np.arctan2(lhs, rhs)
    raise BadData(f"unknown operator {op}")


def compare(op: str, lhs: F64, rhs: F64) -> BOOL:
    """Element-wise comparison."""
    with np.errstate(all="ignore"):
        if op == "==":
            hit = lhs == rhs
        elif op == "!=":
            hit = lhs != rhs
        elif op == ">":
            hit = lhs > rhs
        elif op == "<":
            hit = lhs < rhs
        elif op == ">=":
            hit = lhs >= rhs
        else:
            hit = lhs <= rhs
    return np.asarray(hit, dtype=np.bool_)


def _elements(op: str, lhs: F64, rhs: F64, as_bool: bool) -> tuple[F64, BOOL | None]:
    """(values, keep): keep is None when every element is kept."""
    if op in COMPARISONS:
        hit = compare(op, lhs, rhs)
        if as_bool:
            return hit.astype(np.float64), None
        return lhs, hit
    return arithmetic(op, lhs, rhs), None


def apply(expr: pp.BinaryExpr, lhs: Value, rhs: Value, ctx: EvalContext) -> Value:
    """Evaluate a binary expression over already evaluated operands."""
    op = op_name(expr.op)
    modifier = expr.modifier
    as_bool = modifier is not None and modifier.return_bool
    if isinstance(lhs, Scalar) and isinstance(rhs, Scalar):
        values, _ = _elements(op, lhs.values, rhs.values, True)
        return Scalar(values)
    if isinstance(lhs, Vector) and isinstance(rhs, Scalar):
        return _vector_scalar(op, lhs, rhs.values[None, :], as_bool, vector_left=True)
    if isinstance(lhs, Scalar) and isinstance(rhs, Vector):
        return _vector_scalar(op, rhs, lhs.values[None, :], as_bool, vector_left=False)
    if not isinstance(lhs, Vector) or not isinstance(rhs, Vector):
        raise BadData(f"binary operator {op} needs scalar or instant vector operands")
    if op in SET_OPS:
        return _set_op(op, lhs, rhs, modifier, ctx)
    return _vector_vector(op, lhs, rhs, modifier, as_bool, ctx)


def _vector_scalar(
    op: str, vector: Vector, scalar: F64, as_bool: bool, vector_left: bool
) -> Vector:
    left, right = (vector.values, scalar) if vector_left else (scalar, vector.values)
    values, keep = _elements(op, np.broadcast_to(left, vector.values.shape),
                             np.broadcast_to(right, vector.values.shape), as_bool)
    present = vector.present.copy()
    if keep is not None:
        # A filter keeps the vector's own value, whichever side the scalar is on.
        values = vector.values
        present &= keep
    filtering = op in COMPARISONS and not as_bool
    drop = vector.drop_name.copy() if filtering else np.ones(len(vector.labels), np.bool_)
    return Vector(vector.labels, np.where(present, values, 0.0), present, drop)


def _signature(labels: Labels, matching: pp.LabelModifier | None) -> Labels:
    if matching is not None and matching.type == pp.LabelModifierType.Include:
        names = set(matching.labels)
        return tuple(p for p in labels if p[0] in names)
    ignored = set(matching.labels) if matching is not None else set()
    ignored.add(METRIC_NAME)
    return tuple(p for p in labels if p[0] not in ignored)


def _sig_rows(
    vector: Vector, matching: pp.LabelModifier | None, ctx: EvalContext
) -> dict[Labels, list[int]]:
    out: dict[Labels, list[int]] = {}
    for row, labels in enumerate(vector.labels):
        if row & 1023 == 0:
            ctx.check_deadline()
        out.setdefault(_signature(labels, matching), []).append(row)
    return out


def _any_present(vector: Vector, rows: list[int]) -> BOOL:
    return np.asarray(vector.present[rows].any(axis=0))


def _set_op(
    op: str, lhs: Vector, rhs: Vector, modifier: pp.BinModifier | None, ctx: EvalContext
) -> Vector:
    matching = modifier.matching if modifier is not None else None
    steps = lhs.steps
    right = {sig: _any_present(rhs, rows) for sig, rows in _sig_rows(rhs, matching, ctx).items()}
    none = np.zeros(steps, dtype=np.bool_)
    if op in ("and", "unless"):
        present = lhs.present.copy()
        for row, labels in enumerate(lhs.labels):
            if row & 1023 == 0:
                ctx.check_deadline()
            other = right.get(_signature(labels, matching), none)
            present[row] &= other if op == "and" else ~other
        return Vector(lhs.labels, lhs.values, present, lhs.drop_name)
    left = {sig: _any_present(lhs, rows) for sig, rows in _sig_rows(lhs, matching, ctx).items()}
    builder = RowBuilder(steps)
    for row, labels in enumerate(lhs.labels):
        if row & 1023 == 0:
            ctx.check_deadline()
        builder.add(labels, lhs.values[row], lhs.present[row], bool(lhs.drop_name[row]))
    for row, labels in enumerate(rhs.labels):
        if row & 1023 == 0:
            ctx.check_deadline()
        mask = rhs.present[row] & ~left.get(_signature(labels, matching), none)
        builder.add(labels, rhs.values[row], mask, bool(rhs.drop_name[row]))
    return builder.build()


def _result_labels(
    many: Labels, one: Labels, card: pp.VectorMatchCardinality, modifier: pp.BinModifier | None
) -> Labels:
    out = dict(many)
    matching = modifier.matching if modifier is not None else None
    if card == pp.VectorMatchCardinality.OneToOne and matching is not None:
        names = set(matching.labels)
        if matching.type == pp.LabelModifierType.Include:
            out = {k: v for k, v in out.items() if k in names}
        else:
            out = {k: v for k, v in out.items() if k not in names}
    include = (modifier.group_labels or []) if modifier is not None else []
    one_labels = dict(one)
    for name in include:
        if one_labels.get(name):
            out[name] = one_labels[name]
        else:
            out.pop(name, None)
    return tuple(sorted(out.items()))


def _vector_vector(
    op: str,
    lhs: Vector,
    rhs: Vector,
    modifier: pp.BinModifier | None,
    as_bool: bool,
    ctx: EvalContext,
) -> Vector:
    card = modifier.card if modifier is not None else pp.VectorMatchCardinality.OneToOne
    matching = modifier.matching if modifier is not None else None
    swapped = card == pp.VectorMatchCardinality.OneToMany
    many, one = (rhs, lhs) if swapped else (lhs, rhs)
    # Prometheus skips a step outright when either side is empty there.
    active = lhs.present.any(axis=0) & rhs.present.any(axis=0)
    one_sigs = _sig_rows(one, matching, ctx)
    for sig, rows in one_sigs.items():
        counts = (one.present[rows] & active).sum(axis=0)
        if (counts > 1).any():
            # As Prometheus meets them at the first such step: the later series, then the one
            # already seen.
            step = int(np.argmax(counts > 1))
            first, second = [one.labels[r] for r in rows if one.present[r, step]][:2]
            raise ExecutionError(
                f"found duplicate series for the match group {go_labels(sig)} on the "
                f"{'left' if swapped else 'right'} hand-side of the operation: "
                f"[{go_labels(second)}, {go_labels(first)}];many-to-many matching not allowed: "
                "matching labels must be unique on one side"
            )
    one_any = {sig: _any_present(one, rows) & active for sig, rows in one_sigs.items()}
    filtering = op in COMPARISONS and not as_bool
    builder = RowBuilder(
        lhs.steps, "multiple matches for labels: grouping labels must ensure unique matches"
    )
    matched_per_sig: dict[Labels, np.ndarray] = {}
    for i, many_labels in enumerate(many.labels):
        if i & 1023 == 0:
            ctx.check_deadline()
        sig = _signature(many_labels, matching)
        if sig not in one_any:
            continue
        hit = many.present[i] & one_any[sig]
        if card == pp.VectorMatchCardinality.OneToOne:
            seen = matched_per_sig.setdefault(sig, np.zeros(lhs.steps, dtype=np.bool_))
            if (seen & hit).any():
                raise ExecutionError(
                    "multiple matches for labels: many-to-one matching must be explicit "
                    "(group_left/group_right)"
                )
            seen |= hit
        for j in one_sigs[sig]:
            mask = hit & one.present[j]
            if not mask.any():
                continue
            left, right = (one.values[j], many.values[i]) if swapped else (
                many.values[i], one.values[j]
            )
            values, keep = _elements(op, left, right, as_bool)
            if keep is not None:
                mask = mask & keep
            labels = _result_labels(many_labels, one.labels[j], card, modifier)
            drop = bool(many.drop_name[i]) if filtering else True
            builder.add(labels, values, mask, drop)
    return builder.build()
