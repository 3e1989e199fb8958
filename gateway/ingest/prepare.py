"""Turns a decoded write request into rows for storage (pure but for the known-series map).

Known series go straight through; only unseen series have their labels decoded, validated and
hashed. A series that fails validation is dropped with its samples and reported, and the rest
of the request is still written (Prometheus/Mimir partial-write semantics).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from gateway.errors import Errors, GatewayError
from gateway.ingest.known_series import KnownSeries
from gateway.model.labels import format_labels, series_hash, validate_labels
from gateway.remote.write_codec import DecodedWrite, Metadata
from gateway.storage.writer import NewSeries, TenantSamples

# ClickHouse DateTime64(3) covers 1900-01-01 .. 2299-12-31.
MIN_TIMESTAMP_MS = -2_208_988_800_000
MAX_TIMESTAMP_MS = 10_413_791_999_999


@dataclass(slots=True)
class PreparedWrite:
    """What one request adds to a batch, and what it refused."""

    tenant: str
    samples: TenantSamples
    new_series: list[NewSeries]
    new_keys: list[tuple[int, int]]
    metadata: list[tuple[str, Metadata]]
    errors: list[GatewayError] = field(default_factory=list)
    discarded: Counter[str] = field(default_factory=Counter)


def prepare(decoded: DecodedWrite, tenant: str, known: KnownSeries) -> PreparedWrite:
    """Resolve series ids and collect new series, refusing invalid ones."""
    counts = decoded.sample_counts
    ends = np.cumsum(counts)
    ids = known.lookup(tenant, decoded.keys)
    keep = np.ones(len(ids), dtype=bool)
    new_series: dict[int, NewSeries] = {}
    new_keys: list[tuple[int, int]] = []
    errors: list[GatewayError] = []
    discarded: Counter[str] = Counter()
    for index, found in enumerate(ids):
        if found is not None:
            continue
        count = int(counts[index])
        try:
            labels = validate_labels(decoded.raw_labels(index))
        except GatewayError as exc:
            if exc.status != 400:
                raise
            keep[index] = False
            errors.append(exc)
            discarded[exc.reason] += count
            continue
        series_id = series_hash(labels)
        ids[index] = series_id
        if count == 0:
            continue
        window = decoded.timestamps[int(ends[index]) - count : int(ends[index])]
        seen = new_series.get(series_id)
        first, last = int(window.min()), int(window.max())
        if seen is not None:
            first, last = min(first, seen.first_seen_ms), max(last, seen.last_seen_ms)
        new_series[series_id] = NewSeries(tenant, series_id, labels, first, last)
        new_keys.append((decoded.keys[index], series_id))

    series_ids = np.array([0 if sid is None else sid for sid in ids], dtype=np.uint64)
    rows = np.repeat(series_ids, counts)
    timestamps, values = decoded.timestamps, decoded.values
    sample_keep = np.repeat(keep, counts) if not keep.all() else None
    out_of_range = (timestamps < MIN_TIMESTAMP_MS) | (timestamps > MAX_TIMESTAMP_MS)
    if out_of_range.any():
        first_bad = int(np.argmax(out_of_range))
        bad_series = int(np.searchsorted(ends, first_bad, side="right"))
        error = GatewayError(
            Errors.TIMESTAMP_OUT_OF_RANGE,
            count=int(out_of_range.sum()),
            timestamp=int(timestamps[first_bad]),
            series=_describe(decoded, bad_series),
        )
        errors.append(error)
        discarded[error.reason] += int(out_of_range.sum())
        sample_keep = ~out_of_range if sample_keep is None else sample_keep & ~out_of_range
    if sample_keep is not None:
        rows, timestamps, values = rows[sample_keep], timestamps[sample_keep], values[sample_keep]
    if decoded.histograms:
        errors.append(GatewayError(Errors.NATIVE_HISTOGRAMS_UNSUPPORTED, count=decoded.histograms))
        discarded[Errors.NATIVE_HISTOGRAMS_UNSUPPORTED.value.reason] += decoded.histograms
    if decoded.exemplars:
        errors.append(GatewayError(Errors.EXEMPLARS_UNSUPPORTED, count=decoded.exemplars))
    return PreparedWrite(
        tenant=tenant,
        samples=TenantSamples(tenant, rows, timestamps, values),
        new_series=list(new_series.values()),
        new_keys=new_keys,
        metadata=[(tenant, item) for item in decoded.metadata],
        errors=errors,
        discarded=discarded,
    )


def _describe(decoded: DecodedWrite, index: int) -> str:
    try:
        return format_labels(validate_labels(decoded.raw_labels(index)))
    except GatewayError:
        return f"#{index}"
