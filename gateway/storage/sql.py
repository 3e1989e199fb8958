"""Label matchers -> parameterised ClickHouse SQL. No user string is ever pasted into SQL."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.model.labels import METRIC_NAME
from gateway.model.matchers import Matcher, MatchOp

_OPERATORS = {
    MatchOp.EQUAL: "{column} = {value}",
    MatchOp.NOT_EQUAL: "{column} != {value}",
    MatchOp.REGEX: "match({column}, {value})",
    MatchOp.NOT_REGEX: "NOT match({column}, {value})",
}


@dataclass(slots=True)
class Params:
    """Collects query parameters and hands out their placeholders."""

    values: dict[str, Any] = field(default_factory=dict)

    def add(self, value: Any, kind: str) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f"{{{name}:{kind}}}"

    def add_ids(self, ids: Iterable[int]) -> str:
        """An `Array(UInt64)` parameter of series ids, handed over as its text: ClickHouse parses
        it as the typed array all the same, while clickhouse-connect's generic formatting and
        string escaping cost ~2 us per id (20 ms for the 10k ids of one selection)."""
        text = "[" + ",".join(map(str, map(int, ids))) + "]"
        return self.add(_IdArrayText(text), "Array(UInt64)")


@dataclass(frozen=True, slots=True)
class _IdArrayText:
    """Digits, commas and brackets only: clickhouse-connect sends a value of a type it does not
    know as `str(value)`, which needs no escaping here."""

    text: str

    def __str__(self) -> str:
        return self.text


def matchers_sql(matchers: Sequence[Matcher], params: Params) -> str:
    """A WHERE fragment over the `series` table's `metric_name` and `labels` columns."""
    clauses = []
    for matcher in matchers:
        if matcher.name == METRIC_NAME:
            column = "metric_name"
        else:
            column = f"labels[{params.add(matcher.name, 'String')}]"
        value = matcher.anchored_pattern if matcher.op in (MatchOp.REGEX, MatchOp.NOT_REGEX) \
            else matcher.value
        clauses.append(
            _OPERATORS[matcher.op].format(column=column, value=params.add(value, "String"))
        )
    return " AND ".join(clauses) if clauses else "1"


def _index_lookup(matcher: Matcher, params: Params) -> str | None:
    """The inverted-index condition equivalent to `matcher`, or None when there is none."""
    if matcher.name == METRIC_NAME or matcher.matches_empty():
        return None
    if matcher.op is MatchOp.EQUAL:
        value_clause = f"value = {params.add(matcher.value, 'String')}"
    elif matcher.op is MatchOp.REGEX:
        value_clause = f"match(value, {params.add(matcher.anchored_pattern, 'String')})"
    else:
        return None
    return f"name = {params.add(matcher.name, 'String')} AND {value_clause}"


# A series row's last_seen is refreshed only once a sample is newer by part of this much (see
# ingest.known_series), so a series may have samples up to this long after it.
LAST_SEEN_SLACK_MS = 3_600_000


def series_selection_sql(
    series_table: str,
    labels_table: str,
    tenant: str,
    selectors: Sequence[Sequence[Matcher]],
    start_ms: int,
    end_ms: int,
    params: Params,
) -> str:
    """Series ids and labels (`found_labels`) matching any selector, seen in [start, end].

    Equality and regex matchers that do not match "" (on labels other than the metric name) are
    answered by the inverted index (tenant, name, value) alone: a series has such a label value
    exactly when the index lists it, so label sets are read only for the series found, never
    to re-check those matchers. The other matchers are checked on the series rows. (The
    aggregate is not called `labels`: that alias would shadow the column in WHERE.)
    """
    tenant_param = params.add(tenant, "String")
    alternatives = []
    for matchers in selectors or [[]]:
        checked: list[Matcher] = []
        lookups: list[str] = []
        for matcher in matchers:
            lookup = _index_lookup(matcher, params)
            if lookup is None:
                checked.append(matcher)
            else:
                lookups.append(
                    f"SELECT series_id FROM {labels_table} WHERE tenant = {tenant_param} "
                    f"AND {lookup}"
                )
        clauses = [matchers_sql(checked, params)]
        if lookups:
            clauses.append(f"series_id IN ({' INTERSECT '.join(lookups)})")
        alternatives.append("(" + " AND ".join(clauses) + ")")
    start = params.add(start_ms - LAST_SEEN_SLACK_MS, "Int64")
    end = params.add(end_ms, "Int64")
    return f"""
        SELECT series_id, any(labels) AS found_labels
        FROM {series_table}
        WHERE tenant = {tenant_param} AND ({" OR ".join(alternatives)})
        GROUP BY series_id
        HAVING max(last_seen) >= fromUnixTimestamp64Milli({start})
           AND min(first_seen) <= fromUnixTimestamp64Milli({end})
    """
