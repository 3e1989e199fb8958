"""Label matchers -> parameterised ClickHouse SQL. No user string is ever pasted into SQL."""

from __future__ import annotations

from collections.abc import Sequence
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
