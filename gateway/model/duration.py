"""Prometheus durations (`1h30m`, `15s`, `500ms`) and API duration parameters (also `0.5`)."""

from __future__ import annotations

import math
import re

_UNITS_MS = (
    ("y", 365 * 86_400_000),
    ("w", 7 * 86_400_000),
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1000),
    ("ms", 1),
)
# Units in this order, each at most once, as Prometheus' model.ParseDuration accepts them.
_DURATION = re.compile("".join(f"(?:(\\d+){unit})?" for unit, _ in _UNITS_MS))
_MAX_MS = 2**63 // 1_000_000 - 1


class BadDuration(ValueError):
    """The text is not a duration."""


def parse_duration_ms(text: str) -> int:
    """A Prometheus duration such as `1h30m` or `500ms` as milliseconds."""
    match = _DURATION.fullmatch(text)
    if not text or match is None:
        raise BadDuration(f"not a valid duration string: {text!r}")
    total = sum(
        int(count) * unit_ms
        for count, (_, unit_ms) in zip(match.groups(), _UNITS_MS, strict=True)
        if count is not None
    )
    if total > _MAX_MS:
        raise BadDuration(f"duration {text!r} out of range")
    return total


def parse_api_duration(text: str) -> float:
    """An API duration parameter: float seconds (`15`, `0.5`) or a duration (`1m`), in seconds."""
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds) or abs(seconds * 1000) > _MAX_MS:
            raise BadDuration(
                f"cannot parse {_go_quote(text)} to a valid duration. It overflows int64"
            )
        return seconds
    try:
        return parse_duration_ms(text) / 1000
    except BadDuration:
        raise BadDuration(f"cannot parse {_go_quote(text)} to a valid duration") from None


def _go_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
