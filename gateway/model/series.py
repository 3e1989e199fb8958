"""A series with its samples: what storage returns and what the query and read paths consume."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gateway.model.labels import Labels


@dataclass(frozen=True, slots=True, eq=False)
class SeriesData:
    """Sorted labels and samples in time order without duplicate timestamps."""

    labels: Labels
    timestamps: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]

    def __post_init__(self) -> None:
        if len(self.timestamps) != len(self.values):
            raise ValueError(f"{len(self.timestamps)} timestamps but {len(self.values)} values")
