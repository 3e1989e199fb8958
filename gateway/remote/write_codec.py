"""Remote-write 1.0 and 2.0 request bodies -> `DecodedWrite` (pure: bytes in, typed values out).

The decoders never build a Python object per label or per sample of a known series: each series
gets a 128-bit identity digest of its raw label encoding (located for all series at once by
`series_scan`, or by the C protobuf runtime through the views in proto/gateway/write_views.proto
for unusual encodings), samples are decoded with numpy, and a series' labels are decoded only
when the caller asks for them, which it does for series it has not seen before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from operator import attrgetter

import numpy as np
import numpy.typing as npt
import xxhash
from google.protobuf.message import DecodeError

from gateway._pb.gateway import write_views_pb2 as views
from gateway._pb.io.prometheus.write.v2 import remote_write_v2_pb2 as v2
from gateway._pb.prometheus import remote_pb2 as v1
from gateway.errors import Errors, GatewayError
from gateway.ingest.request_caps import check_count
from gateway.remote.samples import MalformedSample, decode_sample_spans, decode_samples
from gateway.remote.series_scan import scan_series

RawLabels = list[tuple[bytes, bytes]]

_V1_TYPES = {value: name.lower() for name, value in v1.MetricMetadata.MetricType.items()}
_V2_TYPES = {
    value: name.removeprefix("METRIC_TYPE_").lower()
    for name, value in v2.Metadata.MetricType.items()
}
_V2_TYPES[0] = "unknown"
# RW2 keys start with a byte no RW1 key can start with (RW1 keys start with a field tag).
_V2_KEY_PREFIX = b"\x00"


@dataclass(frozen=True, slots=True)
class Metadata:
    """Type, help and unit of one metric family."""

    metric_family: str
    type: str
    help: str
    unit: str


@dataclass(frozen=True, slots=True)
class DecodedWrite:
    """One write request, columnar. Series i owns `sample_counts[i]` consecutive samples."""

    keys: list[int]
    sample_counts: npt.NDArray[np.int64]
    timestamps: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]
    raw_labels: Callable[[int], RawLabels]
    metadata: list[Metadata]
    histograms: int
    exemplars: int
    longest_label: int
    """No label name or value in the request has more bytes (a bound, not always attained):
    per-series length checks are skipped when it is within the limits."""

    @property
    def series_count(self) -> int:
        return len(self.keys)


def decode_v1(data: bytes, max_series: int = 0) -> DecodedWrite:
    """Decode a remote-write 1.0 `prometheus.WriteRequest` (at most `max_series`; 0 = any)."""
    try:
        records = views.RawSeriesV1.FromString(data).timeseries
        # Before anything else is parsed: a flood of empty series costs no more than this.
        check_count(len(records), max_series, "series", "ingest.max_series_per_request")
        metadata = [
            Metadata(m.metric_family_name, _V1_TYPES.get(m.type, "unknown"), m.help, m.unit)
            for m in views.MetadataV1.FromString(data).metadata
        ]
    except DecodeError as exc:
        raise GatewayError(Errors.BAD_PROTOBUF, message="WriteRequest", detail=exc) from None
    scanned = scan_series(records)
    if scanned is None:
        return _decode_v1_exact(data, metadata)
    buffer = scanned.buffer
    label_spans = map(slice, scanned.label_starts.tolist(), scanned.label_ends.tolist())
    keys = list(map(xxhash.xxh3_128_intdigest, map(buffer.__getitem__, label_spans)))
    try:
        timestamps, values = decode_sample_spans(
            scanned.padded, scanned.sample_starts, scanned.sample_ends
        )
    except MalformedSample as exc:
        raise _bad_sample(exc, scanned.sample_counts) from None

    def raw_labels(index: int) -> RawLabels:
        start, end = int(scanned.label_starts[index]), int(scanned.label_ends[index])
        return _v1_labels(views.SeriesKey.FromString(buffer[start:end]).labels)

    return DecodedWrite(
        keys=keys,
        sample_counts=scanned.sample_counts,
        timestamps=timestamps,
        values=values,
        raw_labels=raw_labels,
        metadata=metadata,
        exemplars=0,
        histograms=0,
        # A series' encoded labels are longer than any of its names and values.
        longest_label=int((scanned.label_ends - scanned.label_starts).max(initial=0)),
    )


def _decode_v1_exact(data: bytes, metadata: list[Metadata]) -> DecodedWrite:
    """The protobuf runtime's decoding, for series in a shape `scan_series` does not take."""
    try:
        series = views.SeriesKeysV1.FromString(data).timeseries
        merged = views.AllSamplesV1.FromString(data).timeseries
    except DecodeError as exc:
        raise GatewayError(Errors.BAD_PROTOBUF, message="WriteRequest", detail=exc) from None
    # The key of a series is its encoded labels, as `scan_series` hashes them.
    labels_only = [views.SeriesKey(labels=one.labels).SerializeToString() for one in series]
    counts = np.fromiter(
        map(len, map(attrgetter("samples"), series)), dtype=np.int64, count=len(series)
    )
    timestamps, values = _samples(merged.samples, counts)

    def raw_labels(index: int) -> RawLabels:
        return _v1_labels(series[index].labels)

    return DecodedWrite(
        keys=list(map(xxhash.xxh3_128_intdigest, labels_only)),
        sample_counts=counts,
        timestamps=timestamps,
        values=values,
        raw_labels=raw_labels,
        metadata=metadata,
        exemplars=len(merged.v1_exemplars_v2_histograms),
        histograms=len(merged.v1_histograms_v2_exemplars),
        longest_label=max(map(len, labels_only), default=0),
    )


def _v1_labels(encoded: Iterable[bytes]) -> RawLabels:
    try:
        labels = [v1.Label.FromString(raw) for raw in encoded]
    except DecodeError as exc:
        raise GatewayError(Errors.BAD_PROTOBUF, message="Label", detail=exc) from None
    return [(label.name, label.value) for label in labels]


def decode_v2(data: bytes, max_series: int = 0, max_symbols: int = 0) -> DecodedWrite:
    """Decode a remote-write 2.0 `io.prometheus.write.v2.Request`.

    Created timestamps are ignored: the gateway stores float samples and does not synthesise
    zero samples at the created time.
    """
    try:
        request = v2.Request.FromString(data)
        check_count(len(request.symbols), max_symbols, "symbols", "ingest.max_symbols_per_request")
        check_count(len(request.timeseries), max_series, "series", "ingest.max_series_per_request")
        merged = views.AllSamplesV2.FromString(data).timeseries
    except DecodeError as exc:
        raise GatewayError(Errors.BAD_PROTOBUF, message="Request", detail=exc) from None
    symbols = list(request.symbols)
    series = request.timeseries
    label_refs: list[list[int]] = []
    keys: list[int] = []
    metadata: dict[str, Metadata] = {}
    digest = xxhash.xxh3_128_intdigest
    for index, one in enumerate(series):
        refs = list(one.labels_refs)
        if len(refs) % 2:
            raise GatewayError(Errors.ODD_LABEL_REFS, series=index, count=len(refs))
        try:
            strings = [symbols[ref] for ref in refs]
        except IndexError:
            bad = next(ref for ref in refs if ref >= len(symbols))
            raise GatewayError(
                Errors.BAD_SYMBOL_REF, series=index, ref=bad, count=len(symbols)
            ) from None
        label_refs.append(refs)
        keys.append(digest(_V2_KEY_PREFIX + b"\xff".join(strings)))
        if one.HasField("metadata"):
            meta = one.metadata
            family = _v2_metadata(strings, symbols, meta)
            if family is not None:
                metadata[family.metric_family] = family
    counts = np.fromiter(
        map(len, map(attrgetter("samples"), series)), dtype=np.int64, count=len(series)
    )
    timestamps, values = _samples(merged.samples, counts)

    def raw_labels(index: int) -> RawLabels:
        refs = label_refs[index]
        return [(symbols[refs[i]], symbols[refs[i + 1]]) for i in range(0, len(refs), 2)]

    return DecodedWrite(
        keys=keys,
        sample_counts=counts,
        timestamps=timestamps,
        values=values,
        raw_labels=raw_labels,
        metadata=list(metadata.values()),
        histograms=len(merged.v1_exemplars_v2_histograms),
        exemplars=len(merged.v1_histograms_v2_exemplars),
        longest_label=max(map(len, symbols), default=0),
    )


def _v2_metadata(strings: list[bytes], symbols: list[bytes], meta: v2.Metadata) -> Metadata | None:
    if meta.type == 0 and meta.help_ref == 0 and meta.unit_ref == 0:
        return None
    names = strings[0::2]
    if b"__name__" not in names:
        return None
    family = strings[2 * names.index(b"__name__") + 1]
    try:
        help_text = symbols[meta.help_ref]
        unit = symbols[meta.unit_ref]
    except IndexError:
        raise GatewayError(
            Errors.BAD_SYMBOL_REF,
            series=family.decode("utf-8", "replace"),
            ref=max(meta.help_ref, meta.unit_ref),
            count=len(symbols),
        ) from None
    try:
        return Metadata(
            family.decode(), _V2_TYPES.get(meta.type, "unknown"), help_text.decode(), unit.decode()
        )
    except UnicodeDecodeError:
        raise GatewayError(
            Errors.BAD_PROTOBUF, message="Metadata", detail="string is not valid UTF-8"
        ) from None


def _samples(
    payloads: list[bytes] | object, counts: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    try:
        return decode_samples(payloads)  # type: ignore[arg-type]
    except MalformedSample as exc:
        raise _bad_sample(exc, counts) from None


def _bad_sample(exc: MalformedSample, counts: npt.NDArray[np.int64]) -> GatewayError:
    series = int(np.searchsorted(np.cumsum(counts), exc.index, side="right"))
    return GatewayError(Errors.BAD_SAMPLE_ENCODING, series=series)
