"""Applies one tenant's limits to one write request: label rules, series budgets, metadata.

Series the tracker knows (the steady state) pass in one vectorised lookup; the per-series Python
below runs only for series that are new to the tracker.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gateway.errors import Errors, GatewayError
from gateway.limits import checks
from gateway.limits.distinct import DistinctValues
from gateway.limits.model import Limits
from gateway.limits.tracker import ActiveSeriesTracker
from gateway.model.labels import Labels, format_labels, metric_name

_MAX_SERIES_TEXT = 300
METADATA_KEY = ""


def describe(labels: Labels) -> str:
    """A series for an error message, cut short (an over-long value must not flood the log)."""
    text = format_labels(labels)
    return text if len(text) <= _MAX_SERIES_TEXT else text[:_MAX_SERIES_TEXT] + "...}"


@dataclass(frozen=True, slots=True)
class Admission:
    """One tenant's limits and the shared state they are checked against."""

    tenant: str
    limits: Limits
    tracker: ActiveSeriesTracker
    label_values: DistinctValues
    metadata_families: DistinctValues

    def shape(self, labels: Labels) -> Labels:
        """Drop the tenant's drop_labels, then check label count and lengths (raises 400s)."""
        limits = self.limits
        # C-level passes over the labels (zip/map/max): this runs for every new series.
        names, values = zip(*labels, strict=True)
        if limits.drop_labels and not set(limits.drop_labels).isdisjoint(names):
            labels = tuple(pair for pair in labels if pair[0] not in limits.drop_labels)
            if not labels:
                raise GatewayError(Errors.NO_LABELS)
            names, values = zip(*labels, strict=True)
        if not checks.is_within_label_names_per_series(
            len(labels), limits.max_label_names_per_series
        ):
            raise GatewayError(
                Errors.MAX_LABEL_NAMES_PER_SERIES, count=len(labels),
                limit=limits.max_label_names_per_series, tenant=self.tenant,
                series=describe(labels),
            )
        name_limit, value_limit = limits.max_label_name_length, limits.max_label_value_length
        if name_limit and not checks.is_within(max(map(len, names)), name_limit):
            name = next(n for n in names if not checks.is_within_label_name_length(n, name_limit))
            raise GatewayError(
                Errors.LABEL_NAME_TOO_LONG, name=name[:64], length=len(name), limit=name_limit,
                tenant=self.tenant, series=describe(labels),
            )
        if value_limit and not checks.is_within(max(map(len, values)), value_limit):
            name, value = next(
                pair for pair in labels
                if not checks.is_within_label_value_length(pair[1], value_limit)
            )
            raise GatewayError(
                Errors.LABEL_VALUE_TOO_LONG, name=name, length=len(value), limit=value_limit,
                tenant=self.tenant, series=describe(labels),
            )
        return labels

    def admit(
        self,
        series_ids: npt.NDArray[np.uint64],
        keep: npt.NDArray[np.bool_],
        labels_of: Callable[[int], Labels],
    ) -> list[tuple[int, GatewayError]]:
        """Refresh tracked series; admit new ones within budget. Returns refused (index, error).

        Admitted series are tracked at once, so concurrent requests cannot both take the last
        free places of a budget.
        """
        tracked = self.tracker.touch(self.tenant, series_ids)
        candidates = np.flatnonzero(keep & ~tracked)
        if not len(candidates):
            return []
        refused: list[tuple[int, GatewayError]] = []
        refused_ids: dict[int, GatewayError] = {}
        admitted: dict[int, str] = {}
        # Per metric of this request: its budget and the series it uses (tracked + admitted).
        metric_use: dict[str, list[int]] = {}
        active = self.tracker.count(self.tenant)
        candidate_ids = series_ids[candidates].tolist()
        for index, series_id in zip(candidates.tolist(), candidate_ids, strict=True):
            if series_id in admitted:
                continue
            earlier = refused_ids.get(series_id)
            if earlier is not None:
                refused.append((index, earlier))
                continue
            try:
                labels = labels_of(index)
                metric = metric_name(labels)
                use = metric_use.get(metric)
                if use is None:
                    limit = self.limits.metric_limit(metric)
                    in_use = self.tracker.metric_count(self.tenant, metric) if limit else 0
                    use = metric_use[metric] = [limit, in_use]
                self._check_series(labels, active + len(admitted), metric, use)
            except GatewayError as exc:
                refused.append((index, exc))
                refused_ids[series_id] = exc
                continue
            admitted[series_id] = metric
            use[1] += 1
        self.tracker.add(self.tenant, list(admitted), list(admitted.values()))
        return refused

    def _check_series(self, labels: Labels, active: int, metric: str, use: list[int]) -> None:
        """Raise the first budget a new series does not fit; else count its label values."""
        limits, tenant = self.limits, self.tenant
        if not checks.is_within_series_budget(active, 1, limits.max_global_series_per_user):
            raise GatewayError(
                Errors.PER_USER_SERIES_LIMIT, limit=limits.max_global_series_per_user,
                tenant=tenant, series=describe(labels),
            )
        metric_limit, in_use = use
        if not checks.is_within_series_budget(in_use, 1, metric_limit):
            setting = (
                f"metric_budgets.{metric}" if metric in limits.metric_budgets
                else "max_global_series_per_metric"
            )
            raise GatewayError(
                Errors.PER_METRIC_SERIES_LIMIT, limit=metric_limit, metric=metric,
                tenant=tenant, setting=setting, series=describe(labels),
            )
        budgets = limits.max_values_per_label
        if not budgets:
            return
        # Label budgets first all checked, then counted: a refused series must not use up
        # label values. Usually a series has one budgeted label or none.
        fresh: list[tuple[str, str]] = []
        for name, value in labels:
            budget = budgets.get(name)
            if budget is None:
                continue
            known, count = self.label_values.lookup(tenant, name, value)
            if not checks.is_within_label_budget(count, known, budget):
                if budget == 0:
                    raise GatewayError(
                        Errors.LABEL_FORBIDDEN, name=name, tenant=tenant, series=describe(labels)
                    )
                raise GatewayError(
                    Errors.LABEL_VALUES_LIMIT, limit=budget, name=name, tenant=tenant,
                    series=describe(labels),
                )
            if not known:
                fresh.append((name, value))
        for name, value in fresh:
            self.label_values.add(tenant, name, value)

    def admit_metadata(self, families: Sequence[str]) -> list[bool]:
        """Which metadata entries fit max_metadata_per_user (known families always do)."""
        limit = self.limits.max_metadata_per_user
        if limit == 0:
            return [True] * len(families)
        result = []
        for family in families:
            known = self.metadata_families.contains(self.tenant, METADATA_KEY, family)
            count = self.metadata_families.count(self.tenant, METADATA_KEY)
            fits = checks.is_within_metadata_budget(count, known, limit)
            if fits and not known:
                self.metadata_families.add(self.tenant, METADATA_KEY, family)
            result.append(fits)
        return result
