"""Bounds on PromQL text (`query`, `match[]`) checked before it reaches the parser.

promql-parser's time grows faster than linearly with nesting depth and with the length of
operator chains (measured: 1600 nested parentheses 1.6 s, 1600 chained `+` 3.9 s, 100 000 nested
parentheses crash the process), and it runs on the event loop, so both are capped here with one
linear scan that skips string literals and comments.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.api import envelope
from gateway.app_keys import CONFIG
from gateway.errors import Errors, GatewayError

_GUARDED_PARAMS = ("query", "match[]")
_UNGUARDED_PATHS = ("/api/v1/write", "/api/v1/push", "/api/v1/read")
_OPEN = "([{"
_CLOSE = ")]}"
_OPERATOR_CHARS = "+-*/%^<>"
_KEYWORDS = frozenset({"and", "or", "unless", "atan2"})


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


def check_query(text: str, name: str, max_bytes: int, max_depth: int, max_operators: int) -> None:
    """Raise a 400 GatewayError when `text` exceeds a bound (each 0 = unlimited)."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if max_bytes and size > max_bytes:
        raise GatewayError(
            Errors.QUERY_TOO_COMPLEX, param=name, what=f"is {size} bytes long",
            limit=max_bytes, setting="query.max_query_bytes",
        )
    shape = measure(text)
    if max_depth and shape.depth > max_depth:
        raise GatewayError(
            Errors.QUERY_TOO_COMPLEX, param=name, what=f"nests brackets {shape.depth} deep",
            limit=max_depth, setting="query.max_query_depth",
        )
    if max_operators and shape.operators > max_operators:
        raise GatewayError(
            Errors.QUERY_TOO_COMPLEX, param=name, what=f"has {shape.operators} operators",
            limit=max_operators, setting="query.max_query_operators",
        )


@web.middleware
async def guard_queries(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Check `query` and `match[]` of every Prometheus API request before its handler runs."""
    path = request.path
    if path.startswith("/api/v1/") and not path.startswith(_UNGUARDED_PATHS):
        config = request.app[CONFIG].query
        params = await envelope.request_params(request)
        for name in _GUARDED_PARAMS:
            for text in params.get(name, ()):
                check_query(
                    text, name, config.max_query_bytes, config.max_query_depth,
                    config.max_query_operators,
                )
    return await handler(request)
