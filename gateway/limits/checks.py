"""Pure limit checks: `is_within_...() -> bool`. Callers build the error and count the discard."""

from __future__ import annotations


def is_within(count: int, limit: int) -> bool:
    """Whether `count` items fit a limit (0 = unlimited)."""
    return limit == 0 or count <= limit


def is_within_series_budget(active: int, adding: int, limit: int) -> bool:
    """Whether `adding` more series fit next to `active` ones under a series budget."""
    return limit == 0 or active + adding <= limit


def is_within_samples_per_request(samples: int, limit: int) -> bool:
    return is_within(samples, limit)


def is_within_label_names_per_series(names: int, limit: int) -> bool:
    return is_within(names, limit)


def is_within_label_name_length(name: str, limit: int) -> bool:
    return is_within(len(name), limit)


def is_within_label_value_length(value: str, limit: int) -> bool:
    return is_within(len(value), limit)


def is_within_label_budget(known_values: int, value_is_known: bool, limit: int | None) -> bool:
    """Whether a label value fits its label's budget (None = no budget, 0 = label forbidden)."""
    if limit is None:
        return True
    if limit == 0:
        return False
    return value_is_known or known_values < limit


def is_within_label_budget_all(
    known_values: int, values: int, unknown_values: int, limit: int | None
) -> bool:
    """Whether series carrying `values` distinct values of a label, `unknown_values` of them
    new, all fit the label's budget (None = no budget, 0 = label forbidden)."""
    if limit is None or values == 0:
        return True
    return limit > 0 and known_values + unknown_values <= limit


def is_within_metadata_budget(families: int, family_is_known: bool, limit: int) -> bool:
    return limit == 0 or family_is_known or families < limit
