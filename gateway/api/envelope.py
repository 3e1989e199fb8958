"""Prometheus API JSON envelopes and request-parameter parsing shared by the API handlers."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from aiohttp import web

from gateway.errors import Errors, GatewayError
from gateway.ingest.prepare import MAX_TIMESTAMP_MS, MIN_TIMESTAMP_MS

# Prometheus' errorType for each status the gateway answers with.
ERROR_TYPES = {
    400: "bad_data",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "bad_data",
    415: "bad_data",
    422: "execution",
    429: "too_many_requests",
    499: "canceled",
    503: "unavailable",
    500: "internal",
}

# Times a sample can have: ClickHouse DateTime64(3)'s range (writes outside it are refused).
STORABLE_MIN_MS = MIN_TIMESTAMP_MS
STORABLE_MAX_MS = MAX_TIMESTAMP_MS
# The defaults of an absent start/end: Prometheus uses its minTime/maxTime, which clamp to these.
MIN_TIME_MS = STORABLE_MIN_MS
MAX_TIME_MS = STORABLE_MAX_MS
# Decimal seconds a Prometheus time can hold (int64 milliseconds); beyond is refused.
_MIN_SECONDS = Decimal(-(2**63)) / 1000
_MAX_SECONDS = Decimal(2**63 - 1) / 1000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Go's time range in years (Prometheus' minTime/maxTime format as -292273086 and 292277025).
_MAX_YEARS = 292_277_026
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_SURROGATE = re.compile("[\ud800-\udfff]")
_RFC3339 = re.compile(
    r"(?P<year>[+-]?\d{4,})-(?P<rest>\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d))",
    re.IGNORECASE,
)


def success(
    data: Any, warnings: list[str] | None = None, infos: list[str] | None = None
) -> web.Response:
    return success_text(_dumps(data), warnings, infos)


def success_text(
    data_text: str, warnings: list[str] | None = None, infos: list[str] | None = None
) -> web.Response:
    """The success envelope around a `data` object already written as JSON text."""
    body = '{"status":"success","data":' + data_text
    if warnings:
        body += ',"warnings":' + _dumps(warnings)
    if infos:
        body += ',"infos":' + _dumps(infos)
    return _json_response(body + "}", 200)


def error(status: int, message: str, error_type: str | None = None) -> web.Response:
    body = {
        "status": "error",
        "errorType": error_type or ERROR_TYPES.get(status, "internal"),
        "error": message,
    }
    return _json_response(_dumps(body), status)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _json_response(text: str, status: int) -> web.Response:
    """A JSON body in UTF-8. Bytes of a query's string literals that are not UTF-8 travel as
    surrogate escapes (gostrings) and may reach a message or a label: written as U+FFFD, as
    Go's encoding/json writes invalid UTF-8 in Prometheus' answers."""
    try:
        body = text.encode("utf-8")
    except UnicodeEncodeError:
        body = _SURROGATE.sub("\ufffd", text).encode("utf-8")
    return web.Response(body=body, status=status, content_type="application/json", charset="utf-8")


def bad_param(detail: str) -> GatewayError:
    return GatewayError(Errors.BAD_QUERY_PARAM, detail=detail)


def parse_time_ms(text: str | None, name: str, default: int) -> int:
    """A Prometheus API time bounding a search (float Unix seconds or RFC3339), in ms,
    clamped to the storable range: Prometheus' minTime/maxTime and Grafana's extremes work."""
    if text is None or text == "":
        return default
    return max(STORABLE_MIN_MS, min(STORABLE_MAX_MS, _time_ms(text, name)))


def parse_eval_time_ms(text: str | None, name: str, default: int) -> int:
    """A time a query is evaluated at, in ms; refused outside the storable range (a clamped
    time would give an answer at other timestamps than asked for)."""
    if text is None or text == "":
        return default
    moment = _time_ms(text, name)
    if not STORABLE_MIN_MS <= moment <= STORABLE_MAX_MS:
        raise bad_param(
            f'invalid parameter "{name}": timestamp "{text}" is outside the storable range '
            "1900-01-01T00:00:00Z to 2299-12-31T23:59:59.999Z"
        )
    return moment


def _time_ms(text: str, name: str) -> int:
    """Milliseconds of a time; beyond the storable range only its side matters (the result is
    then just past the range), so years beyond datetime's 1..9999 need no exact value."""
    if not _NUMBER.fullmatch(text):
        moment = _rfc3339_ms(text)
        if moment is None:
            raise _bad_time(name, text) from None
        return moment
    seconds = Decimal(text)  # NaN and Inf fail the pattern
    if not _MIN_SECONDS <= seconds <= _MAX_SECONDS:
        raise _bad_time(name, text)
    return int((seconds * 1000).to_integral_value(ROUND_HALF_EVEN))


def _bad_time(name: str, text: str) -> GatewayError:
    return bad_param(f'invalid parameter "{name}": cannot parse "{text}" to a valid timestamp')


def _rfc3339_ms(text: str) -> int | None:
    match = _RFC3339.fullmatch(text)
    if match is None:
        return None
    year = int(match["year"])
    if abs(year) > _MAX_YEARS:
        return None
    if year < 1:
        return STORABLE_MIN_MS - 1
    if year > 9999:
        return STORABLE_MAX_MS + 1
    rest = match["rest"].upper().replace("Z", "+00:00")
    try:
        moment = datetime.fromisoformat(f"{year:04d}-{rest}")
    except ValueError:
        return None
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def parse_limit(text: str | None) -> int:
    """`limit` parameter: 0 or absent means no limit."""
    if text is None or text == "":
        return 0
    try:
        limit = int(text)
    except ValueError:
        raise bad_param(f'invalid parameter "limit": cannot parse "{text}"') from None
    if limit < 0:
        raise bad_param('invalid parameter "limit": must be non-negative')
    return limit


async def request_params(request: web.Request) -> dict[str, list[str]]:
    """Query-string and form-body parameters together, as Prometheus reads them."""
    params: dict[str, list[str]] = {}
    for key, value in request.query.items():
        params.setdefault(key, []).append(value)
    if request.method == "POST" and request.content_type == "application/x-www-form-urlencoded":
        form = await request.post()
        for key, field_value in form.items():
            if isinstance(field_value, str):
                params.setdefault(key, []).append(field_value)
    return params


def first(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    return values[0] if values else None
