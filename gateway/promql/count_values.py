"""count_values: count the series per distinct sample value, the value becoming a label.

As Prometheus does it: each series first gets the value label (the value formatted like
Go's strconv.FormatFloat(v, 'f', -1, 64)), then series are counted per group of the
`by`/`without` labels of that new label set. Every present sample is handled at once: values
are told apart by their bit pattern (so -0 and 0 stay different), each distinct value is
formatted once, and the counts come from one bincount over (output series, step).
"""

from __future__ import annotations

import numpy as np
import promql_parser as pp

from gateway.model.labels import Labels
from gateway.promql.errors import ExecutionError
from gateway.promql.functions.compensated import Check
from gateway.promql.gostrings import go_quote, is_valid_utf8
from gateway.promql.grouping import group_key, grouping
from gateway.promql.result import format_value
from gateway.promql.types import Vector, without_name


def count_values(
    label: str, inner: Vector, modifier: pp.AggModifier | None, check: Check
) -> Vector:
    """The count_values aggregation of `inner` with the value label `label`."""
    if not label or not is_valid_utf8(label):
        raise ExecutionError(f"invalid label name {go_quote(label)}")
    names, without = grouping(modifier)
    # The value label replaces any label of that name; `without` may list it, and then drops it.
    keep_value = not (without and label in names)
    base_ids: dict[Labels, int] = {}
    base_of_row = np.zeros(len(inner.labels), dtype=np.int64)
    drop = inner.drop_name.tolist()
    for row, labels in enumerate(inner.labels):
        if row & 1023 == 0:
            check()
        own = without_name(labels) if drop[row] else labels
        key = tuple(p for p in group_key(own, names | {label}, without) if p[0] != label)
        base_of_row[row] = base_ids.setdefault(key, len(base_ids))
    rows, steps = np.nonzero(inner.present)
    if len(rows) == 0:
        return Vector.empty(inner.steps)
    bits = inner.values[rows, steps].view(np.uint64)
    distinct, value_of = np.unique(bits, return_inverse=True)
    texts = [format_value(float(v)) for v in distinct.view(np.float64).tolist()]
    # Different bit patterns (NaN payloads) may print alike: one label value per text.
    text_ids: dict[str, int] = {}
    text_of = np.array([text_ids.setdefault(t, len(text_ids)) for t in texts], dtype=np.int64)
    combo = base_of_row[rows] * len(text_ids) + text_of[value_of.ravel()]
    combos, combo_of = np.unique(combo, return_inverse=True)
    bases = list(base_ids)
    names_of_text = list(text_ids)
    out_ids: dict[Labels, int] = {}
    out_of_combo = np.zeros(len(combos), dtype=np.int64)
    for i, value in enumerate(combos.tolist()):
        base, text = bases[value // len(text_ids)], names_of_text[value % len(text_ids)]
        labels = tuple(sorted([*base, (label, text)])) if keep_value else base
        # Groups that differ only in the overwritten label merge (as Prometheus counts them).
        out_of_combo[i] = out_ids.setdefault(labels, len(out_ids))
    target = out_of_combo[combo_of.ravel()] * inner.steps + steps
    counts = np.bincount(target, minlength=len(out_ids) * inner.steps).astype(np.float64)
    counts = counts.reshape(len(out_ids), inner.steps)
    return Vector(list(out_ids), counts, counts > 0, np.zeros(len(out_ids), dtype=np.bool_))
