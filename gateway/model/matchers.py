"""Label matchers (`=`, `!=`, `=~`, `!~`) with Prometheus semantics.

Regexes are RE2 (the `google-re2` binding, so no catastrophic backtracking), fully anchored, and
`.` matches a newline as in Prometheus 3.x. A missing label has the value "", so `{a=""}`
selects series without `a`. ClickHouse's `match()` is RE2 too, so the same pattern text
(`Matcher.anchored_pattern`) is used in SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum

import re2

from gateway.model.labels import Labels

MAX_REGEX_BYTES = 64 << 10


class MatchOp(Enum):
    EQUAL = "="
    NOT_EQUAL = "!="
    REGEX = "=~"
    NOT_REGEX = "!~"


class BadMatcher(ValueError):
    """A matcher that cannot be used (bad regex, empty selector)."""


@dataclass(frozen=True, slots=True)
class Matcher:
    name: str
    op: MatchOp
    value: str
    _regex: re2._Regexp | None = field(default=None, compare=False, repr=False)

    @staticmethod
    def of(name: str, op: MatchOp | str, value: str) -> Matcher:
        """Build a matcher, compiling its regex (raises BadMatcher)."""
        op = MatchOp(op)
        regex = None
        if op in (MatchOp.REGEX, MatchOp.NOT_REGEX):
            if len(value.encode()) > MAX_REGEX_BYTES:
                raise BadMatcher(f"regex for {name} is longer than {MAX_REGEX_BYTES} bytes")
            try:
                regex = re2.compile(anchor(value))
            except re2.error as exc:
                raise BadMatcher(f"invalid regex {value!r} for {name}: {exc}") from None
        return Matcher(name, op, value, regex)

    @property
    def anchored_pattern(self) -> str:
        return anchor(self.value)

    def matches(self, value: str) -> bool:
        """Does a label value ("" when absent) satisfy this matcher?"""
        if self.op is MatchOp.EQUAL:
            return value == self.value
        if self.op is MatchOp.NOT_EQUAL:
            return value != self.value
        assert self._regex is not None
        found = self._regex.fullmatch(value) is not None
        return found if self.op is MatchOp.REGEX else not found

    def matches_empty(self) -> bool:
        return self.matches("")

    def matches_labels(self, labels: Labels) -> bool:
        return self.matches(dict(labels).get(self.name, ""))

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.name}{self.op.value}"{escaped}"'


def anchor(pattern: str) -> str:
    """Prometheus anchors regexes and lets `.` match newlines (3.x)."""
    return f"(?s:^(?:{pattern})$)"


def check_selector(matchers: Sequence[Matcher]) -> None:
    """Refuse selectors that would match every series (Prometheus' rule)."""
    if not matchers or all(m.matches_empty() for m in matchers):
        raise BadMatcher(
            "vector selector must contain at least one non-empty matcher"
        )
