"""Cardinality explorer of one tenant: Mimir's `/api/v1/cardinality/*` and Prometheus'
`/api/v1/status/tsdb`, computed in ClickHouse.

`count_method` (Mimir's parameter) chooses the series counted: `inmemory` (the default) every
stored series of the tenant, `active` those active within the active-series window. Parameters
are checked as Mimir checks them (`limit` 0-500, default 20) on its endpoints and as Prometheus
does (`limit` > 0, default 10) on `/api/v1/status/tsdb`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web

from gateway.api import cardinality_queries as queries
from gateway.api import envelope
from gateway.api.query_guard import QueryBounds
from gateway.api.selectors import parse_selector
from gateway.app_keys import CONFIG, LAYOUT, LIMITS, RESOLVER, STORE
from gateway.model.matchers import BadMatcher, Matcher
from gateway.storage.clickhouse import Client
from gateway.storage.schema import Layout

T = TypeVar("T")
DEFAULT_LIMIT = 20
MAX_LIMIT = 500
TSDB_DEFAULT_LIMIT = 10
COUNT_METHODS = {"inmemory": False, "active": True}
"""count_method -> whether only active series count."""


def add_routes(router: web.UrlDispatcher) -> None:
    for method in ("GET", "POST"):
        router.add_route(method, "/api/v1/cardinality/label_names", label_names)
        router.add_route(method, "/api/v1/cardinality/label_values", label_values)
        router.add_route(method, "/api/v1/cardinality/active_series", active_series)
    router.add_get("/api/v1/status/tsdb", tsdb)


async def _scope(
    request: web.Request,
    params: dict[str, list[str]],
    require_selector: bool = False,
    active: bool = False,
) -> queries.Scope:
    """The tenant's series a request counts; `active` ignores count_method (active only)."""
    tenant = request.app[RESOLVER].resolve(request.headers)
    selector = envelope.first(params, "selector") or ""
    if require_selector and not selector:
        raise envelope.bad_param("the selector parameter is required")
    matchers: list[Matcher] = []
    if selector:
        try:
            bounds = QueryBounds.of(request.app[CONFIG].query)
            matchers = parse_selector(selector, bounds, "selector")
        except BadMatcher as exc:
            raise envelope.bad_param(str(exc)) from None
    method = "active" if active else envelope.first(params, "count_method") or "inmemory"
    if method not in COUNT_METHODS:
        raise envelope.bad_param(
            f'invalid parameter "count_method": {method[:100]!r} is not one of '
            f"{', '.join(COUNT_METHODS)}"
        )
    service = request.app[LIMITS]
    active_only = COUNT_METHODS[method]
    if active_only:
        # Series this replica admitted since its last sync would be missing from the counts.
        await service.persist_new_series(tenant)
    cutoff = service.tracker.minute() - service.tracker.window_minutes
    return queries.Scope(tenant, matchers, active_only, cutoff)


def _limit(params: dict[str, list[str]]) -> int:
    """Mimir's `limit`: 0 to 500, default 20."""
    text = envelope.first(params, "limit")
    if text is None or text == "":
        return DEFAULT_LIMIT
    limit = envelope.parse_limit(text)
    if limit > MAX_LIMIT:
        raise envelope.bad_param(f'invalid parameter "limit": must be at most {MAX_LIMIT}')
    return limit


def _tsdb_limit(params: dict[str, list[str]]) -> int:
    """Prometheus' `limit` of the TSDB status: a positive integer, default 10."""
    text = envelope.first(params, "limit")
    if text is None or text == "":
        return TSDB_DEFAULT_LIMIT
    try:
        limit = int(text)
    except ValueError:
        limit = 0
    if limit < 1:
        raise envelope.bad_param("limit must be a positive number")
    return limit


async def _run(request: web.Request, call: Callable[[Client, Layout], T]) -> T:
    layout = request.app[LAYOUT]
    return await request.app[STORE].run(lambda client: call(client, layout))


async def label_names(request: web.Request) -> web.Response:
    """Label names with their distinct value counts, most values first (Mimir's shape)."""
    params = await envelope.request_params(request)
    scope = await _scope(request, params)
    limit = _limit(params)
    rows = await _run(request, lambda c, layout: queries.label_names(c, layout, scope))
    return web.json_response(
        {
            "label_values_count_total": sum(values for _, values in rows),
            "label_names_count": len(rows),
            "cardinality": [
                {"label_name": name, "label_values_count": values} for name, values in rows[:limit]
            ],
        }
    )


async def label_values(request: web.Request) -> web.Response:
    """Per requested label name: value count, series count and the top values (Mimir's shape)."""
    params = await envelope.request_params(request)
    names = list(dict.fromkeys(params.get("label_names[]", [])))
    if not names:
        raise envelope.bad_param("the label_names[] parameter is required")
    scope = await _scope(request, params)
    limit = _limit(params)

    def call(client: Client, layout: Layout) -> tuple[int, dict[str, queries.NameStats]]:
        total = queries.series_stats(client, layout, scope)[0]
        return total, queries.name_stats(client, layout, scope, limit, names)

    total, stats = await _run(request, call)
    labels: list[dict[str, Any]] = []
    for name in names:
        found = stats.get(name)
        labels.append(
            {
                "label_name": name,
                "label_values_count": found.values if found else 0,
                "series_count": found.series if found else 0,
                "cardinality": [
                    {"label_value": value, "series_count": count}
                    for value, count in (found.top[:limit] if found else [])
                ],
            }
        )
    labels.sort(key=lambda item: (-item["series_count"], item["label_name"]))
    return web.json_response({"series_count_total": total, "labels": labels})


async def active_series(request: web.Request) -> web.Response:
    """Label sets of the tenant's active series matching `selector` (Mimir's shape)."""
    params = await envelope.request_params(request)
    scope = await _scope(request, params, require_selector=True, active=True)
    limit = envelope.parse_limit(envelope.first(params, "limit"))
    data = await _run(request, lambda c, layout: queries.active_series(c, layout, scope, limit))
    return web.json_response({"data": data})


async def tsdb(request: web.Request) -> web.Response:
    """Prometheus' TSDB status: top metrics, label names and label pairs by series."""
    params = await envelope.request_params(request)
    limit = _tsdb_limit(params)
    scope = await _scope(request, params)
    data = await _run(request, lambda c, layout: queries.tsdb_status(c, layout, scope, limit))
    return envelope.success(data)
