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
from gateway.ingest.request_caps import SeriesCaps, check_series_labels
from gateway.limits.admission import Admission
from gateway.model.labels import Labels, format_labels, series_hash, validate_labels
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
    discarded_metadata: Counter[str] = field(default_factory=Counter)


def prepare(
    decoded: DecodedWrite,
    tenant: str,
    known: KnownSeries,
    admission: Admission | None = None,
    caps: SeriesCaps | None = None,
) -> PreparedWrite:
    """Resolve series ids and collect new series, refusing invalid ones and those over limits."""
    counts = decoded.sample_counts
    ends = np.cumsum(counts)
    ids = known.lookup(tenant, decoded.keys)
    keep = np.ones(len(ids), dtype=bool)
    fresh: dict[int, Labels] = {}
    errors: list[GatewayError] = []
    discarded: Counter[str] = Counter()

    def refuse(index: int, exc: GatewayError) -> None:
        keep[index] = False
        errors.append(exc)
        discarded[exc.reason] += int(counts[index])

    def labels_of(index: int) -> Labels:
        labels = fresh.get(index)
        if labels is None:  # stored before, new to the limits tracker
            labels = validate_labels(decoded.raw_labels(index))
            labels = admission.shape(labels) if admission is not None else labels
        return labels

    for index, found in enumerate(ids):
        if found is not None:
            continue
        try:
            raw = decoded.raw_labels(index)
            if caps is not None:
                check_series_labels(raw, caps)
            labels = validate_labels(raw)
            if admission is not None:
                labels = admission.shape(labels)
        except GatewayError as exc:
            if exc.status != 400:
                raise
            refuse(index, exc)
            continue
        ids[index] = series_hash(labels)
        fresh[index] = labels

    series_ids = np.array([0 if sid is None else sid for sid in ids], dtype=np.uint64)
    if admission is not None:
        # Series without samples in this request do not become active.
        for index, error in admission.admit(series_ids, keep & (counts > 0), labels_of):
            refuse(index, error)
    new_series: dict[int, NewSeries] = {}
    new_keys: list[tuple[int, int]] = []
    for index, labels in fresh.items():
        count = int(counts[index])
        if count == 0 or not keep[index]:
            continue
        series_id = int(series_ids[index])
        window = decoded.timestamps[int(ends[index]) - count : int(ends[index])]
        seen = new_series.get(series_id)
        first, last = int(window.min()), int(window.max())
        if seen is not None:
            first, last = min(first, seen.first_seen_ms), max(last, seen.last_seen_ms)
        new_series[series_id] = NewSeries(tenant, series_id, labels, first, last)
        new_keys.append((decoded.keys[index], series_id))

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
    metadata = decoded.metadata
    discarded_metadata: Counter[str] = Counter()
    if admission is not None and metadata:
        fits = admission.admit_metadata([item.metric_family for item in metadata])
        refused = len(fits) - sum(fits)
        if refused:
            metadata = [item for item, ok in zip(metadata, fits, strict=True) if ok]
            error = GatewayError(
                Errors.PER_USER_METADATA_LIMIT, count=refused, tenant=tenant,
                limit=admission.limits.max_metadata_per_user,
            )
            errors.append(error)
            discarded_metadata[error.reason] += refused
    return PreparedWrite(
        tenant=tenant,
        samples=TenantSamples(tenant, rows, timestamps, values),
        new_series=list(new_series.values()),
        new_keys=new_keys,
        metadata=[(tenant, item) for item in metadata],
        errors=errors,
        discarded=discarded,
        discarded_metadata=discarded_metadata,
    )


def _describe(decoded: DecodedWrite, index: int) -> str:
    try:
        return format_labels(validate_labels(decoded.raw_labels(index)))
    except GatewayError:
        return f"#{index}"
