"""Building vectors row by row and merging rows that share a label set."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gateway.model.labels import Labels
from gateway.promql.errors import ExecutionError
from gateway.promql.types import BOOL, F64, Vector

DUPLICATE_LABELSET = "vector cannot contain metrics with the same labelset"


@dataclass(slots=True)
class RowBuilder:
    """Collects output rows; rows with equal labels are merged step by step."""

    steps: int
    duplicate_message: str = DUPLICATE_LABELSET
    _index: dict[tuple[Labels, bool], int] = field(default_factory=dict)
    _labels: list[Labels] = field(default_factory=list)
    _values: list[F64] = field(default_factory=list)
    _present: list[BOOL] = field(default_factory=list)
    _drop: list[bool] = field(default_factory=list)

    def add(self, labels: Labels, values: F64, present: BOOL, drop_name: bool) -> None:
        """Add a row; raises ExecutionError if an equal row is present at the same step."""
        if not present.any():
            return
        key = (labels, drop_name)
        at = self._index.get(key)
        if at is None:
            self._index[key] = len(self._labels)
            self._labels.append(labels)
            self._values.append(np.where(present, values, 0.0))
            self._present.append(present.copy())
            self._drop.append(drop_name)
            return
        if (self._present[at] & present).any():
            raise ExecutionError(self.duplicate_message)
        self._values[at] = np.where(present, values, self._values[at])
        self._present[at] |= present

    def build(self) -> Vector:
        """The collected rows as a vector."""
        if not self._labels:
            return Vector.empty(self.steps)
        return Vector(
            list(self._labels),
            np.vstack(self._values),
            np.vstack(self._present),
            np.array(self._drop, dtype=np.bool_),
        )


def merge_duplicates(vector: Vector, message: str = DUPLICATE_LABELSET) -> Vector:
    """Merge rows with equal labels (and name flag); overlapping rows raise ExecutionError."""
    if len(set(vector.labels)) == len(vector.labels):
        return vector
    builder = RowBuilder(vector.steps, message)
    for i, labels in enumerate(vector.labels):
        builder.add(labels, vector.values[i], vector.present[i], bool(vector.drop_name[i]))
    return builder.build()
