"""Parsing PromQL text into promql-parser's typed AST, and reading that AST's modifiers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import promql_parser as pp

from gateway.model.labels import METRIC_NAME
from gateway.model.matchers import BadMatcher, Matcher, check_selector
from gateway.promql.errors import BadData
from gateway.promql.syntax import diagnose

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# promql-parser's MatchOp values are not hashable, so compare them one by one.
_OPS = (
    (pp.MatchOp.Equal, "="),
    (pp.MatchOp.NotEqual, "!="),
    (pp.MatchOp.Re, "=~"),
    (pp.MatchOp.NotRe, "!~"),
)


def _op(op: pp.MatchOp) -> str:
    return next(text for member, text in _OPS if member == op)


def parse_query(query: str) -> pp.Expr:
    """Parse a query, turning parser failures into `BadData` with the offending text."""
    if not query.strip():
        raise BadData("invalid parameter \"query\": empty query")
    try:
        return pp.parse(query)
    except (ValueError, RuntimeError) as exc:
        raise BadData(f"invalid parameter \"query\": {parse_error_text(query, str(exc))}") from None


def parse_error_text(query: str, message: str) -> str:
    """Prometheus' `LINE:COL: parse error: ...` where the position is known, else no position.

    promql-parser reports no position. Errors about a missing end (unclosed brackets, input
    that ends too early) are at the end of the input, as Prometheus reports them. For its bare
    "invalid promql query", and for messages our own reading of the query agrees with, the
    query is read again (`syntax.diagnose`) to name and place the offending token.
    """
    found = diagnose(query)
    if found is not None:
        pos, text = found
        if message == "invalid promql query" or text == message.replace("'", '"'):
            return f"{position(query, pos)}: parse error: {text}"
    if message == "unexpected end of input inside brackets":
        message = "unclosed left bracket"  # Prometheus' lexer words it so
    if "unclosed" in message or "end of input" in message:
        return f"{position(query, len(query))}: parse error: {message}"
    return f"parse error: {message}"


def position(query: str, offset: int) -> str:
    """`line:column` of a character offset, columns counted in bytes from 1 (as Prometheus)."""
    before = query[:offset].encode("utf-8", "surrogatepass")
    line = before.count(b"\n") + 1
    column = len(before) - before.rfind(b"\n")
    return f"{line}:{column}"


def delta_ms(delta: timedelta | None) -> int:
    """A timedelta as whole milliseconds (0 for None)."""
    if delta is None:
        return 0
    return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000


def at_ms(at: pp.AtModifier | None, start_ms: int, end_ms: int) -> int | None:
    """The absolute time an `@` modifier pins evaluation to, or None without one."""
    if at is None:
        return None
    if at.type == pp.AtModifierType.Start:
        return start_ms
    if at.type == pp.AtModifierType.End:
        return end_ms
    assert at.at is not None
    return delta_ms(at.at - _EPOCH)


def selector_matchers(selector: pp.VectorSelector) -> list[Matcher]:
    """The selector's matchers as model matchers, including the metric name."""
    if selector.matchers.or_matchers:
        raise BadData("selectors with `or` between matchers are not supported")
    try:
        out = [Matcher.of(m.name, _op(m.op), m.value) for m in selector.matchers.matchers]
        if selector.name is not None:
            out.insert(0, Matcher.of(METRIC_NAME, "=", selector.name))
        check_selector(out)
    except BadMatcher as exc:
        raise BadData(str(exc)) from None
    return out


def op_name(token: pp.TokenType) -> str:
    """The operator or aggregation keyword of a token, lower-cased."""
    return str(token).lower()
