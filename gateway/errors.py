"""Every error the gateway answers with, defined once: id, discard reason, HTTP status, message.

Handlers raise `GatewayError(Errors.X, **fields)`; one middleware maps it to HTTP. The `reason`
is the label of `gateway_discarded_samples_total{tenant,reason}` when the error discards data.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any


@dataclass(frozen=True, slots=True)
class ErrorKind:
    id: str
    reason: str
    status: int
    template: str


class Errors(Enum):
    """The error table. Templates are `str.format`ted with the raising site's fields."""

    # Request-level problems (the whole body is refused).
    BODY_TOO_LARGE = ErrorKind(
        "body-too-large", "body_too_large", 413,
        "request body of {size} bytes exceeds the limit of {limit} bytes ({setting})",
    )
    DECODED_TOO_LARGE = ErrorKind(
        "decoded-too-large", "body_too_large", 413,
        "decompressed body of {size} bytes exceeds the limit of {limit} bytes ({setting})",
    )
    BAD_SNAPPY = ErrorKind(
        "bad-snappy", "bad_body", 400, "cannot decompress the snappy body: {detail}"
    )
    BAD_PROTOBUF = ErrorKind(
        "bad-protobuf", "bad_body", 400, "cannot decode {message} protobuf: {detail}"
    )
    BAD_SAMPLE_ENCODING = ErrorKind(
        "bad-sample-encoding", "bad_body", 400, "malformed sample encoding in series {series}"
    )
    UNSUPPORTED_CONTENT_TYPE = ErrorKind(
        "unsupported-content-type", "bad_body", 415,
        "unsupported Content-Type {content_type!r}; expected application/x-protobuf "
        "(remote-write 1.0) or application/x-protobuf;proto=io.prometheus.write.v2.Request",
    )
    UNSUPPORTED_ENCODING = ErrorKind(
        "unsupported-encoding", "bad_body", 415,
        "unsupported Content-Encoding {encoding!r}; only snappy is supported",
    )
    BAD_SYMBOL_REF = ErrorKind(
        "bad-symbol-ref", "bad_body", 400,
        "series {series} refers to symbol {ref} but the symbols table has {count} entries",
    )
    ODD_LABEL_REFS = ErrorKind(
        "odd-label-refs", "bad_body", 400,
        "series {series} has an odd number of label references ({count})",
    )

    # Series-level problems (that series is dropped; the rest of the request is written).
    LABEL_NAME_INVALID = ErrorKind(
        "label-name-invalid", "label_invalid", 400,
        "received a series with an invalid label name {name!r}: {why}; series: {series}",
    )
    LABEL_VALUE_INVALID = ErrorKind(
        "label-value-invalid", "label_value_invalid", 400,
        "received a series with a label value that is not valid UTF-8 for label {name!r}; "
        "series: {series}",
    )
    DUPLICATE_LABEL_NAMES = ErrorKind(
        "duplicate-label-names", "duplicate_label_names", 400,
        "received a series with duplicate label name {name!r}; series: {series}",
    )
    NO_LABELS = ErrorKind(
        "missing-labels", "missing_labels", 400, "received a series without any label"
    )
    TIMESTAMP_OUT_OF_RANGE = ErrorKind(
        "timestamp-out-of-range", "sample_out_of_bounds", 400,
        "{count} samples have timestamps outside the storable range "
        "(1900-01-01 to 2299-12-31); first: {timestamp} ms in series {series}",
    )
    NATIVE_HISTOGRAMS_UNSUPPORTED = ErrorKind(
        "native-histograms-unsupported", "native_histograms_unsupported", 400,
        "{count} native histogram samples were not stored: native histograms are not "
        "supported yet (float samples of the request were stored)",
    )
    EXEMPLARS_UNSUPPORTED = ErrorKind(
        "exemplars-unsupported", "exemplars_unsupported", 400,
        "{count} exemplars were not stored: exemplars are not supported yet "
        "(float samples of the request were stored)",
    )

    REQUEST_TOO_BIG = ErrorKind(
        "max-request-size", "request_too_big", 400,
        "the request has {count} {what}, more than the limit of {limit} ({setting})",
    )
    SERIES_TOO_MANY_LABELS = ErrorKind(
        "max-labels-per-series", "max_label_names_per_series", 400,
        "received a series with {count} labels, more than the limit of {limit} ({setting}); "
        "series: {series}",
    )
    SERIES_LABELS_TOO_LONG = ErrorKind(
        "max-label-bytes-per-series", "max_label_bytes_per_series", 400,
        "received a series whose labels take {size} bytes, more than the limit of {limit} "
        "({setting}); series: {series}",
    )

    # Per-tenant limits (gateway.limits); the message names the limit, its value and the tenant.
    PER_USER_SERIES_LIMIT = ErrorKind(
        "max-series-per-user", "per_user_series_limit", 400,
        'per-tenant series limit of {limit} exceeded for tenant "{tenant}" '
        "(max_global_series_per_user); series: {series}",
    )
    PER_METRIC_SERIES_LIMIT = ErrorKind(
        "max-series-per-metric", "per_metric_series_limit", 400,
        'per-metric series limit of {limit} exceeded for metric "{metric}" of tenant "{tenant}" '
        "({setting}); series: {series}",
    )
    LABEL_VALUES_LIMIT = ErrorKind(
        "max-values-per-label", "label_values_limit", 400,
        'label budget of {limit} distinct values exceeded for label "{name}" of tenant '
        '"{tenant}" (max_values_per_label); series: {series}',
    )
    LABEL_FORBIDDEN = ErrorKind(
        "label-forbidden", "label_forbidden", 400,
        'label "{name}" is not allowed for tenant "{tenant}" (max_values_per_label is 0); '
        "series: {series}",
    )
    MAX_LABEL_NAMES_PER_SERIES = ErrorKind(
        "max-label-names-per-series", "max_label_names_per_series", 400,
        "series has {count} label names, more than the limit of {limit} for tenant "
        '"{tenant}" (max_label_names_per_series); series: {series}',
    )
    LABEL_NAME_TOO_LONG = ErrorKind(
        "label-name-too-long", "label_name_too_long", 400,
        "label name {name!r} is {length} characters long, more than the limit of {limit} for "
        'tenant "{tenant}" (max_label_name_length); series: {series}',
    )
    LABEL_VALUE_TOO_LONG = ErrorKind(
        "label-value-too-long", "label_value_too_long", 400,
        "the value of label {name!r} is {length} characters long, more than the limit of "
        '{limit} for tenant "{tenant}" (max_label_value_length); series: {series}',
    )
    TOO_MANY_SAMPLES_PER_REQUEST = ErrorKind(
        "max-samples-per-request", "max_samples_per_request", 400,
        "the request has {count} samples, more than the limit of {limit} for tenant "
        '"{tenant}" (max_samples_per_request)',
    )
    RATE_LIMITED = ErrorKind(
        "ingestion-rate-limited", "rate_limited", 429,
        "the request of {count} samples exceeds the ingestion rate limit of {rate} samples/s "
        'with a burst of {burst} for tenant "{tenant}" (ingestion_rate, ingestion_burst_size); '
        "retry after {retry} s",
    )
    INGESTION_BURST_EXCEEDED = ErrorKind(
        "ingestion-burst-exceeded", "ingestion_burst_exceeded", 400,
        "the request of {count} samples is larger than the ingestion burst size of {burst} "
        'samples for tenant "{tenant}" (ingestion_burst_size) and can never be accepted: '
        "send smaller requests or raise ingestion_burst_size",
    )
    PER_USER_METADATA_LIMIT = ErrorKind(
        "max-metadata-per-user", "per_user_metadata_limit", 400,
        "{count} metadata entries refused: per-tenant metadata limit of {limit} exceeded for "
        'tenant "{tenant}" (max_metadata_per_user)',
    )
    LIMITS_NOT_LOADED = ErrorKind(
        "limits-not-loaded", "storage", 503,
        "active series are not loaded from storage yet, retry later",
    )

    # Admin API.
    ADMIN_DISABLED = ErrorKind(
        "admin-disabled", "admin", 404,
        "the admin API is disabled: start the gateway with --admin-token or GATEWAY_ADMIN_TOKEN",
    )
    ADMIN_UNAUTHORIZED = ErrorKind(
        "admin-unauthorized", "admin", 401, "admin authentication required: {detail}"
    )
    BAD_LIMITS = ErrorKind("bad-limits", "bad_limits", 400, "invalid limits: {detail}")

    # Who is asking.
    TENANT_MISSING = ErrorKind(
        "tenant-missing", "auth", 401, "no tenant: send X-Scope-OrgID or credentials"
    )
    TENANT_INVALID = ErrorKind("tenant-invalid", "auth", 400, "invalid tenant ID {tenant!r}: {why}")
    UNAUTHENTICATED = ErrorKind(
        "unauthenticated", "auth", 401, "authentication required: {detail}"
    )
    TENANT_MISMATCH = ErrorKind(
        "tenant-mismatch", "auth", 403,
        "X-Scope-OrgID {header!r} does not match the tenant of the credentials",
    )

    # Query-side problems (Prometheus API).
    BAD_QUERY_PARAM = ErrorKind("bad-query-param", "bad_query", 400, "{detail}")
    BAD_READ_MATCHER = ErrorKind(
        "bad-read-matcher", "bad_query", 400,
        "invalid label matcher in remote-read query {query}: {detail}",
    )
    UNSUPPORTED_READ_RESPONSE_TYPE = ErrorKind(
        "unsupported-read-response-type", "bad_query", 400,
        "none of the accepted remote-read response types {accepted} is supported; "
        "supported: 0 (SAMPLES), 1 (STREAMED_XOR_CHUNKS)",
    )

    QUERY_TOO_COMPLEX = ErrorKind(
        "query-too-complex", "bad_query", 400,
        'invalid parameter "{param}": the expression {what}, more than the limit of {limit} '
        "({setting})",
    )
    QUERY_TOO_MANY_SERIES = ErrorKind(
        "max-series-per-query", "query_limit", 422,
        "the query hit the max number of series limit (limit: {limit} series, "
        "{setting}); narrow the selector or the time range",
    )
    QUERY_TOO_MANY_SAMPLES = ErrorKind(
        "max-samples-per-query", "query_limit", 422,
        "the query hit the max number of samples limit (limit: {limit} samples, "
        "{setting}); narrow the selector or the time range",
    )

    # Storage: the sender must retry.
    STORAGE_UNAVAILABLE = ErrorKind(
        "storage-unavailable", "storage", 503,
        "storage unavailable, retry later: {detail}",
    )
    READ_TIMEOUT = ErrorKind(
        "read-timeout", "storage", 503,
        "the request did not finish within {seconds:g} s ({setting}): storage is slow or the "
        "request selects too much; retry later or narrow it",
    )
    SHUTTING_DOWN = ErrorKind(
        "shutting-down", "storage", 503, "the gateway is shutting down, retry later"
    )


class GatewayError(Exception):
    """An error from the table, with the fields its message needs."""

    def __init__(self, error: Errors, **fields: Any) -> None:
        self.error = error
        self.fields = fields
        super().__init__(self.message)

    @property
    def kind(self) -> ErrorKind:
        return self.error.value

    @property
    def status(self) -> int:
        return self.kind.status

    @property
    def reason(self) -> str:
        return self.kind.reason

    @property
    def message(self) -> str:
        text = self.kind.template.format(**self.fields)
        return f"{text} (err-gateway-{self.kind.id})"
