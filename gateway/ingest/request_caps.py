"""Hard per-request caps of the `ingest` section: series, samples, symbols, labels per series.

Request totals are compared before any per-series Python work; the per-series caps are applied
only to series not seen before, whose labels are decoded anyway, so known series cost nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gateway.errors import Errors, GatewayError

_MAX_SERIES_TEXT = 200


@dataclass(frozen=True, slots=True)
class SeriesCaps:
    """Label caps of one new series (0 = unlimited)."""

    max_labels: int = 0
    max_label_bytes: int = 0


def check_count(count: int, limit: int, what: str, setting: str) -> None:
    """Refuse the whole request (400) when `count` exceeds `limit` (0 = unlimited)."""
    if limit and count > limit:
        raise GatewayError(
            Errors.REQUEST_TOO_BIG, count=count, what=what, limit=limit, setting=setting
        )


def check_series_labels(raw: Sequence[tuple[bytes, bytes]], caps: SeriesCaps) -> None:
    """Refuse one new series (400) with too many labels or too many label bytes."""
    if caps.max_labels and len(raw) > caps.max_labels:
        raise GatewayError(
            Errors.SERIES_TOO_MANY_LABELS, count=len(raw), limit=caps.max_labels,
            setting="ingest.max_labels_per_series", series=_preview(raw),
        )
    if caps.max_label_bytes:
        size = sum(len(name) + len(value) for name, value in raw)
        if size > caps.max_label_bytes:
            raise GatewayError(
                Errors.SERIES_LABELS_TOO_LONG, size=size, limit=caps.max_label_bytes,
                setting="ingest.max_label_bytes_per_series", series=_preview(raw),
            )


def _preview(raw: Sequence[tuple[bytes, bytes]]) -> str:
    """The first labels of a series for a message, cut short."""
    text = ", ".join(
        f"{bytes(name).decode('utf-8', 'replace')}={bytes(value).decode('utf-8', 'replace')!r}"
        for name, value in raw[:8]
    )
    text = "{" + text + (", ...}" if len(raw) > 8 else "}")
    return text if len(text) <= _MAX_SERIES_TEXT else text[:_MAX_SERIES_TEXT] + "...}"
