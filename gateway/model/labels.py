"""Label sets: validation, canonical form and the 64-bit series hash.

A series is identified by xxHash64 of its canonical bytes: labels sorted by name, each written as
`name 0xFF value 0xFF`. 0xFF never occurs in UTF-8, so the encoding is unambiguous, and ClickHouse
computes the same hash from the stored labels (see `storage.schema.SERIES_HASH_SQL`).

Naming rules (Prometheus 3.x accepts UTF-8 names, and so do we): a label name is any non-empty
valid UTF-8 string; a value is any valid UTF-8 string. An empty value means "no such label", so
empty-valued labels are dropped, as Prometheus does. Labels arriving unsorted are sorted; a name
that occurs twice refuses the series, like Prometheus' TSDB.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import xxhash

from gateway.errors import Errors, GatewayError

Labels = tuple[tuple[str, str], ...]
"""A validated label set, sorted by name, without empty values."""

METRIC_NAME = "__name__"
_SEP = b"\xff"


def validate_labels(raw: Sequence[tuple[bytes, bytes]]) -> Labels:
    """Validate raw (name, value) pairs and return the canonical sorted label set."""
    pairs: list[tuple[str, str]] = []
    for name_bytes, value_bytes in raw:
        if not value_bytes:
            continue
        try:
            name = name_bytes.decode("utf-8")
        except UnicodeDecodeError:
            raise GatewayError(
                Errors.LABEL_NAME_INVALID,
                name=name_bytes.decode("utf-8", "replace"),
                why="not valid UTF-8",
                series=_describe_raw(raw),
            ) from None
        if not name:
            raise GatewayError(
                Errors.LABEL_NAME_INVALID, name="", why="empty", series=_describe_raw(raw)
            )
        try:
            value = value_bytes.decode("utf-8")
        except UnicodeDecodeError:
            raise GatewayError(
                Errors.LABEL_VALUE_INVALID, name=name, series=_describe_raw(raw)
            ) from None
        pairs.append((name, value))
    if not pairs:
        raise GatewayError(Errors.NO_LABELS)
    pairs.sort()
    for (left, _), (right, _) in itertools.pairwise(pairs):
        if left == right:
            raise GatewayError(
                Errors.DUPLICATE_LABEL_NAMES, name=left, series=format_labels(tuple(pairs))
            )
    return tuple(pairs)


def canonical_bytes(labels: Labels) -> bytes:
    """The bytes the series hash is computed over."""
    return b"".join(
        name.encode() + _SEP + value.encode() + _SEP for name, value in labels
    )


def series_hash(labels: Labels) -> int:
    """The 64-bit series id of a canonical label set (xxHash64, seed 0)."""
    return xxhash.xxh64_intdigest(canonical_bytes(labels))


def metric_name(labels: Labels) -> str:
    """The value of `__name__`, or "" for a series without one."""
    for name, value in labels:
        if name == METRIC_NAME:
            return value
    return ""


def format_labels(labels: Labels) -> str:
    """Prometheus' text form of a label set: `name{a="1", b="2"}`."""
    name = metric_name(labels)
    inner = ", ".join(
        f"{key}={_quote(value)}" for key, value in labels if key != METRIC_NAME
    )
    return f"{name}{{{inner}}}"


def _quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _describe_raw(raw: Sequence[tuple[bytes, bytes]]) -> str:
    shown = ", ".join(
        f"{n.decode('utf-8', 'replace')}={_quote(v.decode('utf-8', 'replace'))}" for n, v in raw
    )
    return "{" + shown + "}"
