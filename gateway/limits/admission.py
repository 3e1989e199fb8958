"""Applies one tenant's limits to one write request: label rules, series budgets, metadata.

Series the tracker knows (the steady state) pass in one vectorised lookup. Series new to the
tracker are shaped one by one (drop_labels, label count and lengths), then budgeted as a whole:
when the request's new series fit every budget together, which is the usual case, they are
admitted at once; otherwise one by one in request order, each budget used up by the earlier
series (the reference semantics the whole-request path must equal).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter, methodcaller

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

    def lengths_fit(self, longest: int) -> bool:
        """Whether a string of `longest` characters fits both label length limits."""
        limits = self.limits
        return checks.is_within(longest, limits.max_label_name_length) and checks.is_within(
            longest, limits.max_label_value_length
        )

    def shape(self, labels: Labels, lengths_fit: bool = False) -> Labels:
        """Drop the tenant's drop_labels, then check label count and lengths (raises 400s).

        `lengths_fit`: the caller knows every name and value is within the length limits (a
        request's longest string is: see `lengths_fit`), so they are not measured one by one.
        """
        limits = self.limits
        drop = limits.drop_labels
        if drop and not set(drop).isdisjoint(map(itemgetter(0), labels)):
            labels = tuple(pair for pair in labels if pair[0] not in drop)
            if not labels:
                raise GatewayError(Errors.NO_LABELS)
        if not checks.is_within_label_names_per_series(
            len(labels), limits.max_label_names_per_series
        ):
            raise GatewayError(
                Errors.MAX_LABEL_NAMES_PER_SERIES, count=len(labels),
                limit=limits.max_label_names_per_series, tenant=self.tenant,
                series=describe(labels),
            )
        if not lengths_fit:
            self._check_lengths(labels, limits.max_label_name_length, limits.max_label_value_length)
        return labels

    def _check_lengths(self, labels: Labels, name_limit: int, value_limit: int) -> None:
        names, values = zip(*labels, strict=True)  # C-level passes: max(map(len, ...))
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
        # Each new series once, in request order (a series may come twice, encoded apart).
        _, first = np.unique(series_ids[candidates], return_index=True)
        first.sort()
        indices = candidates[first].tolist()
        try:
            labels = list(map(labels_of, indices))
        except GatewayError:
            # A stored series whose labels a lowered limit now refuses: it is refused alone.
            return self._admit_each(series_ids, candidates, labels_of)
        metrics = list(map(metric_name, labels))
        fresh_values = self._fresh_values_if_all_fit(labels, metrics)
        if fresh_values is None:
            return self._admit_each(series_ids, candidates, labels_of)
        self.tracker.add(self.tenant, series_ids[indices], metrics)
        for name, values in fresh_values.items():
            self.label_values.add_all(self.tenant, name, values)
        return []

    def _fresh_values_if_all_fit(
        self, labels: list[Labels], metrics: list[str]
    ) -> dict[str, set[str]] | None:
        """The unknown values of budgeted labels if every series fits every budget, else None.

        The usual request fits: whole-request sums decide it, with C-level passes instead of
        Python per series. A request that may not fit goes through `_admit_each`.
        """
        limits, tenant, tracker = self.limits, self.tenant, self.tracker
        if not checks.is_within_series_budget(
            tracker.count(tenant), len(labels), limits.max_global_series_per_user
        ):
            return None
        if limits.max_global_series_per_metric or limits.metric_budgets:
            for metric, adding in Counter(metrics).items():
                limit = limits.metric_limit(metric)
                if limit and not checks.is_within_series_budget(
                    tracker.metric_count(tenant, metric), adding, limit
                ):
                    return None
        fresh: dict[str, set[str]] = {}
        budgets = limits.max_values_per_label
        if not budgets:
            return fresh
        by_name = list(map(dict, labels))
        for name, budget in budgets.items():
            # Validated labels have no empty values: filter() drops only the series without it.
            values = set(filter(None, map(methodcaller("get", name), by_name)))
            unknown = self.label_values.unknown(tenant, name, values)
            if not checks.is_within_label_budget_all(
                self.label_values.count(tenant, name), len(values), len(unknown), budget
            ):
                return None
            if unknown:
                fresh[name] = unknown
        return fresh

    def _admit_each(
        self,
        series_ids: npt.NDArray[np.uint64],
        candidates: npt.NDArray[np.intp],
        labels_of: Callable[[int], Labels],
    ) -> list[tuple[int, GatewayError]]:
        """Admit new series one by one in request order, until each budget is used up."""
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
