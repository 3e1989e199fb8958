"""Turns a decoded write request into rows for storage (pure but for the known-series map).

Known series go straight through; only unseen series have their labels decoded, validated and
hashed. A series that fails validation is dropped with its samples and reported, and the rest
of the request is still written (Prometheus/Mimir partial-write semantics).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from gateway.errors import Errors, GatewayError
from gateway.ingest.known_series import KnownSeries, Registered, needs_registration
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
    new_keys: list[Registered]
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
    errors: list[GatewayError] = []
    discarded: Counter[str] = Counter()
    counts, timestamps, values = _storable_samples(decoded, errors, discarded)
    ends = np.cumsum(counts)
    sampled = counts > 0
    first_ms, last_ms = _sample_spans(timestamps, counts, ends)
    cached = known.lookup(tenant, decoded.keys)
    series_ids = cached.series_ids.copy()
    refresh = sampled & needs_registration(cached, first_ms, last_ms, series_ids)
    keep = np.ones(len(counts), dtype=bool)
    fresh: dict[int, Labels] = {}
    lengths_fit = admission is not None and admission.lengths_fit(decoded.longest_label)

    def refuse(index: int, exc: GatewayError) -> None:
        keep[index] = False
        errors.append(exc)
        discarded[exc.reason] += int(counts[index])

    def labels_of(index: int) -> Labels:
        labels = fresh.get(index)
        if labels is None:  # stored before, new to the limits tracker
            labels = validate_labels(decoded.raw_labels(index))
            labels = admission.shape(labels, lengths_fit) if admission is not None else labels
        return labels

    for index in np.flatnonzero(~cached.found | refresh).tolist():
        try:
            raw = decoded.raw_labels(index)
            if caps is not None:
                check_series_labels(raw, caps)
            labels = validate_labels(raw)
            if admission is not None:
                labels = admission.shape(labels, lengths_fit)
        except GatewayError as exc:
            if exc.status != 400:
                raise
            refuse(index, exc)
            continue
        series_ids[index] = series_hash(labels)
        fresh[index] = labels

    if admission is not None:
        # Series without samples in this request do not become active.
        for index, error in admission.admit(series_ids, keep & sampled, labels_of):
            refuse(index, error)
    new_series: dict[int, NewSeries] = {}
    registered: list[Registered] = []
    for index, labels in fresh.items():
        if not sampled[index] or not keep[index]:
            continue
        series_id = int(series_ids[index])
        first, last = int(first_ms[index]), int(last_ms[index])
        # A refreshed row's label index entries are stored already.
        index_labels = not refresh[index]
        seen = new_series.get(series_id)
        if seen is not None:
            first, last = min(first, seen.first_seen_ms), max(last, seen.last_seen_ms)
            index_labels = index_labels or seen.index_labels
        new_series[series_id] = NewSeries(tenant, series_id, labels, first, last, index_labels)
        registered.append(Registered(decoded.keys[index], series_id, first, last))

    rows = np.repeat(series_ids, counts)
    if not keep.all():
        sample_keep = np.repeat(keep, counts)
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
        new_keys=registered,
        metadata=[(tenant, item) for item in metadata],
        errors=errors,
        discarded=discarded,
        discarded_metadata=discarded_metadata,
    )


def _storable_samples(
    decoded: DecodedWrite, errors: list[GatewayError], discarded: Counter[str]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Per-series counts, timestamps and values without samples ClickHouse cannot store.

    Refused first, so a series whose every sample is refused is neither registered nor counted
    against a budget, and stored time spans never include a refused timestamp.
    """
    counts, timestamps, values = decoded.sample_counts, decoded.timestamps, decoded.values
    out_of_range = (timestamps < MIN_TIMESTAMP_MS) | (timestamps > MAX_TIMESTAMP_MS)
    if not out_of_range.any():
        return counts, timestamps, values
    first_bad = int(np.argmax(out_of_range))
    bad_series = int(np.searchsorted(np.cumsum(counts), first_bad, side="right"))
    refused = int(out_of_range.sum())
    error = GatewayError(
        Errors.TIMESTAMP_OUT_OF_RANGE,
        count=refused,
        timestamp=int(timestamps[first_bad]),
        series=_describe(decoded, bad_series),
    )
    errors.append(error)
    discarded[error.reason] += refused
    owner = np.repeat(np.arange(len(counts)), counts)
    kept = ~out_of_range
    counts = np.bincount(owner[kept], minlength=len(counts)).astype(np.int64)
    return counts, timestamps[kept], values[kept]


def _sample_spans(
    timestamps: npt.NDArray[np.int64], counts: npt.NDArray[np.int64], ends: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Oldest and newest timestamp of each series (0 for series without samples)."""
    first = np.zeros(len(counts), np.int64)
    last = np.zeros(len(counts), np.int64)
    sampled = counts > 0
    if sampled.any():
        starts = (ends - counts)[sampled]
        first[sampled] = np.minimum.reduceat(timestamps, starts)
        last[sampled] = np.maximum.reduceat(timestamps, starts)
    return first, last


def _describe(decoded: DecodedWrite, index: int) -> str:
    try:
        return format_labels(validate_labels(decoded.raw_labels(index)))
    except GatewayError:
        return f"#{index}"
