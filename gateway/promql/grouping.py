"""Grouping rows by their `by`/`without` labels, shared by the aggregation operators."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import promql_parser as pp

from gateway.model.labels import METRIC_NAME, Labels
from gateway.promql.functions.compensated import Check
from gateway.promql.types import I64, Vector, without_name


@dataclass(frozen=True, slots=True, eq=False)
class Groups:
    """Rows grouped by their grouping labels: group g is rows order[starts[g]:starts[g+1]]."""

    keys: list[Labels]
    of_row: I64
    order: I64
    starts: I64


def group_key(labels: Labels, names: set[str], without: bool) -> Labels:
    """The labels a row is grouped by."""
    if without:
        return tuple(p for p in labels if p[0] not in names and p[0] != METRIC_NAME)
    return tuple(p for p in labels if p[0] in names)


def grouping(modifier: pp.AggModifier | None) -> tuple[set[str], bool]:
    """The `by`/`without` label names and whether they are a `without` list."""
    without = modifier is not None and modifier.type == pp.AggModifierType.Without
    return (set(modifier.labels) if modifier is not None else set()), without


def group_rows(vector: Vector, modifier: pp.AggModifier | None, check: Check) -> Groups:
    """Group the rows; groups are numbered in order of first appearance."""
    names, without = grouping(modifier)
    ids: dict[Labels, int] = {}
    rows: list[int] = []
    # A name already marked for removal takes no part in grouping (`without` drops the name
    # anyway, and `by` keeps it only when it lists it).
    drop = vector.drop_name.tolist() if not without and METRIC_NAME in names else None
    for row, labels in enumerate(vector.labels):
        if row & 1023 == 0:
            check()
        own = without_name(labels) if drop is not None and drop[row] else labels
        rows.append(ids.setdefault(group_key(own, names, without), len(ids)))
    of_row = np.array(rows, dtype=np.int64)
    order = np.argsort(of_row, kind="stable")
    starts = np.zeros(len(ids) + 1, dtype=np.int64)
    np.cumsum(np.bincount(of_row, minlength=len(ids)), out=starts[1:])
    return Groups(list(ids), of_row, order, starts)
