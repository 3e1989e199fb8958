"""`/api/v1/metadata` and `/api/v1/query_exemplars` (no exemplars are stored: always empty)."""

from __future__ import annotations

from aiohttp import web

from gateway.api import envelope
from gateway.api.query_guard import QueryBounds, parse_promql
from gateway.app_keys import CONFIG, LAYOUT, RESOLVER, STORE
from gateway.storage.metadata_reader import read_metadata


async def metadata(request: web.Request) -> web.Response:
    tenant = request.app[RESOLVER].resolve(request.headers)
    params = await envelope.request_params(request)
    # As Prometheus: a negative or absent limit means all; limit=0 returns nothing.
    limit = _number(params, "limit", -1)
    _number(params, "limit_per_metric", -1)  # one entry per family is kept: nothing to cut
    metric = envelope.first(params, "metric") or ""
    layout = request.app[LAYOUT]
    found = await request.app[STORE].run(
        lambda client: read_metadata(client, layout, tenant, metric, limit)
    )
    return envelope.success(
        {one.metric_family: [{"type": one.type, "help": one.help, "unit": one.unit}]
         for one in found}
    )


def _number(params: dict[str, list[str]], name: str, default: int) -> int:
    text = envelope.first(params, name)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise envelope.bad_param(f"{name} must be a number") from None


async def query_exemplars(request: web.Request) -> web.Response:
    request.app[RESOLVER].resolve(request.headers)
    params = await envelope.request_params(request)
    start = envelope.parse_time_ms(envelope.first(params, "start"), "start", envelope.MIN_TIME_MS)
    end = envelope.parse_time_ms(envelope.first(params, "end"), "end", envelope.MAX_TIME_MS)
    if end < start:
        raise envelope.bad_param("end timestamp must not be before start timestamp")
    query = envelope.first(params, "query") or ""
    try:
        parse_promql(query, "query", QueryBounds.of(request.app[CONFIG].query))
    except (ValueError, RuntimeError) as exc:
        raise envelope.bad_param(f"parse error: {exc}") from None
    return envelope.success([])
