"""`/api/v1/series`, `/api/v1/labels`, `/api/v1/label/<name>/values` for one tenant."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from aiohttp import web

from gateway.api import envelope
from gateway.api.query_guard import QueryBounds
from gateway.api.selectors import parse_selector
from gateway.app_keys import CONFIG, LAYOUT, RESOLVER, STORE
from gateway.middleware import count_rejection
from gateway.model.matchers import BadMatcher, Matcher
from gateway.storage import querier
from gateway.storage.querier import TimeRange


async def _common(
    request: web.Request, require_match: bool
) -> tuple[str, dict[str, list[str]], list[list[Matcher]], TimeRange, int]:
    tenant = request.app[RESOLVER].resolve(request.headers)
    params = await envelope.request_params(request)
    texts = params.get("match[]", [])
    if require_match and not texts:
        raise envelope.bad_param("no match[] parameter provided")
    bounds = QueryBounds.of(request.app[CONFIG].query)
    try:
        selectors = [parse_selector(text, bounds) for text in texts]
    except BadMatcher as exc:
        raise envelope.bad_param(str(exc)) from None
    start = envelope.parse_time_ms(envelope.first(params, "start"), "start", envelope.MIN_TIME_MS)
    end = envelope.parse_time_ms(envelope.first(params, "end"), "end", envelope.MAX_TIME_MS)
    limit = envelope.parse_limit(envelope.first(params, "limit"))
    return tenant, params, selectors, TimeRange(start, end), limit


async def series(request: web.Request) -> web.Response:
    tenant, _, selectors, time_range, limit = await _common(request, require_match=True)
    if time_range.end_ms < time_range.start_ms:
        return envelope.success([])  # as Prometheus: an empty range, not an error
    call = functools.partial(
        querier.find_series,
        layout=request.app[LAYOUT], tenant=tenant, selectors=selectors,
        time_range=time_range, limit=limit + 1 if limit else 0,
    )
    found = await request.app[STORE].run(lambda client: call(client))
    warnings = _truncation(found, limit)
    return envelope.success([dict(labels) for labels in found[: limit or None]], warnings)


async def labels(request: web.Request) -> web.Response:
    tenant, _, selectors, time_range, limit = await _common(request, require_match=False)
    if time_range.end_ms < time_range.start_ms:
        return envelope.success([])  # as Prometheus: an empty range, not an error
    call = functools.partial(
        querier.label_names,
        layout=request.app[LAYOUT], tenant=tenant, selectors=selectors,
        time_range=time_range, limit=limit + 1 if limit else 0,
    )
    names = await request.app[STORE].run(lambda client: call(client))
    return envelope.success(names[: limit or None], _truncation(names, limit))


async def label_values(request: web.Request) -> web.Response:
    name = unescape_label_name(request.match_info["name"])
    tenant, _, selectors, time_range, limit = await _common(request, require_match=False)
    if time_range.end_ms < time_range.start_ms:
        return envelope.success([])  # as Prometheus: an empty range, not an error
    call = functools.partial(
        querier.label_values,
        layout=request.app[LAYOUT], tenant=tenant, name=name, selectors=selectors,
        time_range=time_range, limit=limit + 1 if limit else 0,
    )
    values = await request.app[STORE].run(lambda client: call(client))
    return envelope.success(values[: limit or None], _truncation(values, limit))


async def method_not_allowed(request: web.Request) -> web.Response:
    """What Prometheus' router answers to POST on a GET-only endpoint: plain text, not JSON."""
    count_rejection(request, "http", 405)
    return web.Response(status=405, text="Method Not Allowed\n", headers={"Allow": "GET, OPTIONS"})


def _truncation(found: Sequence[object], limit: int) -> list[str] | None:
    if limit and len(found) > limit:
        return [f"results truncated due to limit of {limit}"]
    return None


def unescape_label_name(text: str) -> str:
    """Undo Prometheus' `U__` escaping of UTF-8 label names in URL paths.

    `U__` starts an escaped name: `_` stands for itself when doubled (`__`), `_XX_` (hex code
    point) for any other character; a name that does not decode is used as given.
    """
    if not text.startswith("U__"):
        return text
    body, out, index = text[3:], [], 0
    while index < len(body):
        char = body[index]
        if char != "_":
            out.append(char)
            index += 1
            continue
        if body.startswith("__", index):
            out.append("_")
            index += 2
            continue
        close = body.find("_", index + 1)
        if close == -1:
            return text
        try:
            out.append(chr(int(body[index + 1 : close], 16)))
        except ValueError:
            return text
        index = close + 1
    return "".join(out)
