"""Bounds on PromQL text, checked before it reaches the parser: the API's one parse entry point.

promql-parser's time grows faster than linearly with nesting depth and with the length of
operator chains (measured: 1600 nested parentheses 1.6 s, 1600 chained `+` 3.9 s; 32 000 nested
parentheses, 64 KB, crash the process with SIGSEGV), and it runs on the event loop. So every
text the API hands to the parser (`query`, `match[]`, the cardinality `selector`, ...) goes
through `parse_promql` (or, for the engine, `guarded_text`), which first measures it with one
linear scan that skips string literals and comments. tests/security/test_parser_guard.py checks
that no other module of gateway/api calls the parser.
"""

from __future__ import annotations

from dataclasses import dataclass

import promql_parser

from gateway.config import QueryConfig
from gateway.errors import Errors, GatewayError

_OPEN = "([{"
_CLOSE = ")]}"
_OPERATOR_CHARS = "+-*/%^<>"
_KEYWORDS = frozenset({"and", "or", "unless", "atan2"})


@dataclass(frozen=True, slots=True)
class QueryBounds:
    """The caps of `query.max_query_bytes`, `max_query_depth`, `max_query_operators` (0 = off)."""

    max_bytes: int
    max_depth: int
    max_operators: int

    @classmethod
    def of(cls, config: QueryConfig) -> QueryBounds:
        return cls(config.max_query_bytes, config.max_query_depth, config.max_query_operators)


@dataclass(frozen=True, slots=True)
class Shape:
    """What the guard measures of a query text."""

    depth: int
    operators: int


def measure(text: str) -> Shape:
    """Deepest bracket nesting and number of operators, outside strings and comments."""
    depth = deepest = operators = 0
    index, size = 0, len(text)
    while index < size:
        char = text[index]
        if char in "\"'`":
            index = _skip_string(text, index)
            continue
        if char == "#":
            newline = text.find("\n", index)
            index = size if newline == -1 else newline
            continue
        if char in _OPEN:
            depth += 1
            deepest = max(deepest, depth)
        elif char in _CLOSE:
            depth = max(0, depth - 1)
        elif char in _OPERATOR_CHARS or (char in "=!" and text.startswith("=", index + 1)):
            operators += 1
        elif char.isalpha():
            end = index
            while end < size and (text[end].isalnum() or text[end] in "_:"):
                end += 1
            operators += text[index:end].lower() in _KEYWORDS
            index = end
            continue
        index += 1
    return Shape(deepest, operators)


def _skip_string(text: str, start: int) -> int:
    """Index just past the string literal opening at `start` (or the end of the text)."""
    quote, index = text[start], start + 1
    while index < len(text):
        char = text[index]
        if char == "\\" and quote != "`":
            index += 2
            continue
        if char == quote:
            return index + 1
        index += 1
    return len(text)


def check_query(text: str, name: str, bounds: QueryBounds) -> None:
    """Raise a 400 GatewayError (reason bad_query) when `text` exceeds a bound."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if bounds.max_bytes and size > bounds.max_bytes:
        raise GatewayError(
            Errors.QUERY_TOO_COMPLEX, param=name, what=f"is {size} bytes long",
            limit=bounds.max_bytes, setting="query.max_query_bytes",
        )
    shape = measure(text)
    if bounds.max_depth and shape.depth > bounds.max_depth:
        raise GatewayError(
            Errors.QUERY_TOO_COMPLEX, param=name, what=f"nests brackets {shape.depth} deep",
            limit=bounds.max_depth, setting="query.max_query_depth",
        )
    if bounds.max_operators and shape.operators > bounds.max_operators:
        raise GatewayError(
            Errors.QUERY_TOO_COMPLEX, param=name, what=f"has {shape.operators} operators",
            limit=bounds.max_operators, setting="query.max_query_operators",
        )


def guarded_text(text: str, name: str, bounds: QueryBounds) -> str:
    """`text` once it is within bounds and its times readable, for the PromQL engine.

    The engine parses the text again (a few microseconds within the bounds); a syntax error
    is left for it to report in its own words.
    """
    check_query(text, name, bounds)
    try:
        expr = promql_parser.parse(text)
    except (ValueError, RuntimeError):
        return text
    check_times(expr, name)
    return text


def parse_promql(text: str, name: str, bounds: QueryBounds) -> promql_parser.Expr:
    """Parse `text` with promql-parser after checking it; parser errors raise ValueError."""
    check_query(text, name, bounds)
    expr = promql_parser.parse(text)
    check_times(expr, name)
    return expr


_TIMES = ("at", "offset", "range", "step")
_CHILDREN = ("expr", "lhs", "rhs", "param", "vector_selector")


def check_times(expr: promql_parser.Expr, name: str) -> None:
    """Raise a 400 when an `@`, offset, range or step of the AST cannot be represented.

    promql-parser turns them into Python values only when read, and fails there: `@ 1e19`
    raises ValueError, `@ 253402300800` OverflowError, and any negative `@` panics in Rust
    (PanicException, a BaseException that would escape every handler and drop the
    connection). Reading each one here turns all of them into a clean bad_data error.
    """
    stack: list[object] = [expr]
    while stack:
        node = stack.pop()
        for attr in _TIMES:
            _read_time(node, attr, name)
        stack.extend(
            child for attr in _CHILDREN if (child := getattr(node, attr, None)) is not None
        )
        if isinstance(node, promql_parser.Call):
            stack.extend(node.args)


def _read_time(node: object, attr: str, name: str) -> None:
    # Not hasattr(): it would let the very errors this looks for escape.
    try:
        value = getattr(node, attr)
        if attr == "at" and value is not None:
            value.at  # noqa: B018 - reading converts it, which is what may fail
    except AttributeError:
        return  # this kind of node has no such time
    except BaseException as exc:
        if not (isinstance(exc, Exception) or is_parser_panic(exc)):
            raise
        what = "@ modifier" if attr == "at" else attr
        raise GatewayError(
            Errors.BAD_QUERY_PARAM,
            detail=f'invalid parameter "{name}": the {what} is out of the supported range '
            "(times from 1970 to 9999, durations within 292 years)",
        ) from None


def is_parser_panic(exc: BaseException) -> bool:
    """A Rust panic inside promql-parser, raised as pyo3's PanicException (a BaseException)."""
    return type(exc).__name__ == "PanicException" and type(exc).__module__ == "pyo3_runtime"
