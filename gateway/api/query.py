"""`/api/v1/query` and `/api/v1/query_range`: PromQL over one tenant's data, as Prometheus."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from gateway.api import envelope
from gateway.api.query_guard import QueryBounds, guarded_text
from gateway.app_keys import CONFIG, LAYOUT, LIMITS, METRICS, RESOLVER, SERIES_LABELS, STORE
from gateway.config import QueryConfig
from gateway.errors import GatewayError
from gateway.limits.read_limits import query_limits
from gateway.middleware import count_rejection
from gateway.model.duration import BadDuration, parse_api_duration, parse_duration_ms
from gateway.promql import engine
from gateway.promql.errors import BadData, QueryCanceled, QueryError, QueryTimeout
from gateway.promql.result import MatrixValue, Result, VectorValue
from gateway.promql.result_json import data_text
from gateway.storage.clickhouse import StorageError
from gateway.storage.sample_reader import ClickHouseSeriesSource

Params = dict[str, list[str]]
# The `reason` of gateway_rejected_requests_total for each query errorType.
_REJECTION_REASONS = {
    "bad_data": "bad_query",
    "execution": "query_execution",
    "timeout": "query_timeout",
    "canceled": "canceled",
}


@dataclass(frozen=True, slots=True)
class _Request:
    """What every query endpoint reads first: tenant, parameters, options."""

    tenant: str
    params: Params
    options: engine.EngineOptions
    limit: int


async def query(request: web.Request) -> web.Response:
    """Instant query: `query`, `time` (default now), `timeout`, `limit`."""
    return await _measured(request, "query", _instant)


async def query_range(request: web.Request) -> web.Response:
    """Range query: `query`, `start`, `end`, `step` (seconds or duration), `timeout`, `limit`."""
    return await _measured(request, "query_range", _range)


async def _instant(request: web.Request) -> web.Response:
    common = await _common(request)
    now_ms = int(time.time() * 1000)
    at_ms = _time(common.params, "time", now_ms)
    text = _query_text(request, common.params)
    source = _source(request, common.tenant, common.options)
    result = await _run(
        engine.instant_query(source, text, at_ms, common.options), common.options
    )
    return _respond(result, common.limit)


async def _range(request: web.Request) -> web.Response:
    common = await _common(request)
    params = common.params
    start_ms = _required_time(params, "start")
    end_ms = _required_time(params, "end")
    if end_ms < start_ms:
        raise BadData('invalid parameter "end": end timestamp must not be before start time')
    step_ms = round(_duration(params, "step") * 1000)
    if step_ms <= 0:
        raise BadData(
            'invalid parameter "step": zero or negative query resolution step widths are not '
            "accepted. Try a positive integer"
        )
    if (end_ms - start_ms) // step_ms > common.options.max_points_per_series:
        raise BadData(
            f"exceeded maximum resolution of {common.options.max_points_per_series:,} points "
            "per timeseries. Try decreasing the query resolution (?step=XX)"
        )
    text = _query_text(request, params)
    source = _source(request, common.tenant, common.options)
    result = await _run(
        engine.range_query(source, text, start_ms, end_ms, step_ms, common.options),
        common.options,
    )
    return _respond(result, common.limit)


async def _common(request: web.Request) -> _Request:
    tenant = request.app[RESOLVER].resolve(request.headers)
    params = await envelope.request_params(request)
    options = engine_options(request.app[CONFIG].query)
    if envelope.first(params, "timeout"):
        requested = _duration(params, "timeout")
        if requested > 0:
            options = dataclasses.replace(options, timeout_s=min(options.timeout_s, requested))
    try:
        limit = envelope.parse_limit(envelope.first(params, "limit"))
    except GatewayError as exc:
        raise BadData(exc.fields["detail"]) from None
    return _Request(tenant, params, options, limit)


def engine_options(config: QueryConfig) -> engine.EngineOptions:
    """The engine's options from the `query` section of the configuration."""
    return engine.EngineOptions(
        lookback_delta_ms=parse_duration_ms(config.lookback_delta),
        max_samples=config.max_samples,
        timeout_s=parse_duration_ms(config.timeout) / 1000,
        max_points_per_series=config.max_points_per_series,
        default_subquery_step_ms=parse_duration_ms(config.default_subquery_step),
    )


def _source(
    request: web.Request, tenant: str, options: engine.EngineOptions
) -> ClickHouseSeriesSource:
    config = request.app[CONFIG].query
    limits = query_limits(request.app[LIMITS].limits_for(tenant), tenant, config)
    return ClickHouseSeriesSource(
        request.app[STORE], request.app[LAYOUT], tenant, limits, request.app[SERIES_LABELS]
    )


async def _run(call: Awaitable[Result], options: engine.EngineOptions) -> Result:
    """Await a query under its timeout; the engine stops its worker thread when abandoned."""
    try:
        async with asyncio.timeout(options.timeout_s):
            return await call
    except TimeoutError:
        raise QueryTimeout("query timed out in expression evaluation") from None


def _query_text(request: web.Request, params: Params) -> str:
    """The `query` parameter, checked against the parser's bounds (the engine parses it)."""
    text = envelope.first(params, "query") or ""
    return guarded_text(text, "query", QueryBounds.of(request.app[CONFIG].query))


def _required_time(params: Params, name: str) -> int:
    if not envelope.first(params, name):
        raise BadData(f'invalid parameter "{name}": cannot parse "" to a valid timestamp')
    return _time(params, name, 0)


def _time(params: Params, name: str, default: int) -> int:
    try:
        return envelope.parse_eval_time_ms(envelope.first(params, name), name, default)
    except GatewayError as exc:
        raise BadData(exc.fields["detail"]) from None


def _duration(params: Params, name: str) -> float:
    """A duration parameter in seconds."""
    try:
        return parse_api_duration(envelope.first(params, name) or "")
    except BadDuration as exc:
        raise BadData(f'invalid parameter "{name}": {exc}') from None


def _respond(result: Result, limit: int) -> web.Response:
    warnings = list(result.warnings)
    value = result.value
    if limit and isinstance(value, VectorValue) and len(value.samples) > limit:
        result = Result(VectorValue(value.samples[:limit]), result.warnings, result.infos)
        warnings.append("results truncated due to limit")
    elif limit and isinstance(value, MatrixValue) and len(value.series) > limit:
        result = Result(MatrixValue(value.series[:limit]), result.warnings, result.infos)
        warnings.append("results truncated due to limit")
    return envelope.success_text(data_text(result), warnings, result.infos)


async def _measured(
    request: web.Request,
    endpoint: str,
    handler: Callable[[web.Request], Awaitable[web.Response]],
) -> web.Response:
    """Run a query handler: answer query errors in the envelope, time and count every outcome."""
    metrics = request.app[METRICS]
    started = time.perf_counter()
    status, error_type = 500, "internal"
    try:
        try:
            response = await handler(request)
        except QueryError as exc:
            response = envelope.error(exc.status, exc.message, exc.error_type)
            error_type = exc.error_type
            count_rejection(request, _REJECTION_REASONS.get(error_type, "internal"), exc.status)
        status = response.status
        return response
    except GatewayError as exc:
        status = exc.status
        error_type = envelope.ERROR_TYPES.get(status, "internal")
        raise
    except StorageError:
        status, error_type = 503, "unavailable"
        raise
    except asyncio.CancelledError:
        # The client went away (or the server is stopping): nobody reads an answer.
        status, error_type = QueryCanceled.status, QueryCanceled.error_type
        raise
    finally:
        metrics.query_duration.labels(endpoint, str(status)).observe(
            time.perf_counter() - started
        )
        if status >= 400:
            metrics.query_errors.labels(endpoint, error_type).inc()
