"""Engine options and the per-query evaluation context (fetched data, annotations, budget)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from gateway.model.series import SeriesData
from gateway.promql.errors import QueryCanceled, QueryTimeout, TooManySamples
from gateway.promql.plan import FetchKey


@dataclass(frozen=True, slots=True)
class EngineOptions:
    """Knobs of one query; defaults follow Prometheus."""

    lookback_delta_ms: int = 5 * 60_000
    max_samples: int = 50_000_000
    timeout_s: float = 120.0
    max_points_per_series: int = 11_000
    default_subquery_step_ms: int = 60_000
    # Range functions evaluate this many (series x steps) cells at a time: their temporaries
    # then stay a few MB, in the CPU's caches (see functions/flat.by_row_blocks).
    block_cells: int = 1 << 16


@dataclass(slots=True)
class Annotations:
    """Warnings and infos in first-seen order, without repeats."""

    warnings: dict[str, None] = field(default_factory=dict)
    infos: dict[str, None] = field(default_factory=dict)

    def warn(self, message: str) -> None:
        self.warnings.setdefault("PromQL warning: " + message)

    def info(self, message: str) -> None:
        self.infos.setdefault("PromQL info: " + message)


@dataclass(slots=True)
class EvalContext:
    """What evaluation needs besides the AST: data, options, query bounds, budgets."""

    options: EngineOptions
    start_ms: int
    end_ms: int
    is_range: bool
    data: dict[FetchKey, list[SeriesData]]
    annotations: Annotations = field(default_factory=Annotations)
    deadline: float = 0.0
    step_ms: int = 0
    canceled: bool = False
    # String literals Go reads as other bytes than promql-parser does (see gostrings).
    strings: dict[str, str] = field(default_factory=dict)

    def check_deadline(self) -> None:
        """Raise QueryCanceled once abandoned, QueryTimeout once the deadline has passed."""
        if self.canceled:
            raise QueryCanceled("query was canceled in expression evaluation")
        if self.deadline and time.monotonic() > self.deadline:
            raise QueryTimeout("query timed out in expression evaluation")

    def check_samples(self, count: int) -> None:
        """Raise TooManySamples when one value would hold more than max_samples points."""
        if count > self.options.max_samples:
            raise TooManySamples()


def go_float(value: float) -> str:
    """A float as Go's %g prints it in annotation messages (NaN, +Inf, 2, 0.5)."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    text = repr(value)
    return text[:-2] if text.endswith(".0") else text
