"""Markdown references generated from the code: every configuration key and every error.

`metrics-gateway config-reference` and `metrics-gateway errors-reference` print them; the
checked-in docs/configuration.md and docs/errors.md are their output (a test compares).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from gateway.config import Config, flag_paths
from gateway.errors import ErrorKind, Errors

_TYPE_NAMES = {int: "integer", float: "number", bool: "boolean", str: "string"}

# What a user does about an error, where it says more than the status' general advice.
_ADVICE = {
    "body-too-large": "Lower the sender's batch size (Prometheus: "
    "`queue_config.max_samples_per_send`) or raise `ingest.max_body_bytes`.",
    "decoded-too-large": "Lower the sender's batch size or raise `ingest.max_decoded_bytes`.",
    "unsupported-content-type": "Send remote-write 1.0 or 2.0 protobuf (Prometheus does by "
    "default); check a proxy does not rewrite Content-Type.",
    "unsupported-encoding": "Send snappy-compressed bodies (the remote-write default).",
    "timestamp-out-of-range": "Fix the sender's clock or the exporter that sets timestamps.",
    "native-histograms-unsupported": "Send classic histograms "
    "(Prometheus: `send_native_histograms: false`); float samples were stored.",
    "exemplars-unsupported": "Disable exemplars in remote-write (`send_exemplars: false`); "
    "float samples were stored.",
    "tenant-missing": "Send `X-Scope-OrgID` (Grafana: datasource custom header) or credentials.",
    "tenant-invalid": "Use a tenant ID of letters, digits and `!-_.*'()`, at most 150 bytes.",
    "unauthenticated": "Send the bearer token or basic-auth credentials configured in "
    "`auth.tenants`.",
    "tenant-mismatch": "Drop `X-Scope-OrgID` or make it match the credentials' tenant.",
    "max-series-per-query": "Narrow the selector or time range, or raise the query limit.",
    "max-samples-per-query": "Narrow the selector, shorten the range or increase the step.",
    "storage-unavailable": "Check ClickHouse (`/-/ready` says why); senders retry and lose no "
    "data. See \"Storage not ready\" in docs/operations.md.",
    "admin-disabled": "Start the gateway with `--admin-token` or `GATEWAY_ADMIN_TOKEN` "
    "(at least 16 characters) to turn the admin API on.",
    "max-samples-per-request": "The whole request was refused: lower the sender's batch size "
    "(Prometheus: `queue_config.max_samples_per_send`) or raise the tenant's limit.",
    "max-metadata-per-user": "The metadata entries were dropped, samples were stored: raise "
    "the tenant's `max_metadata_per_user`.",
    "shutting-down": "Nothing: senders retry against another replica or after the restart.",
    "ingestion-rate-limited": "Raise the tenant's `ingestion_rate`/`ingestion_burst_size`, "
    "or let the sender retry (Prometheus: `retry_on_http_429: true`).",
    "ingestion-burst-exceeded": "Nothing of the request was stored and a retry cannot succeed: "
    "lower the sender's batch size (Prometheus: `queue_config.max_samples_per_send`) below the "
    "tenant's `ingestion_burst_size`, or raise it.",
}
# Advice shared by every error of one reason, where the status' general advice is wrong.
_BY_REASON = {
    "bad_query": "Fix the parameter or expression the message names (PromQL: docs/promql.md); "
    "nothing was read.",
    "bad_limits": "Fix the limits body: the message names the key or value (docs/limits.md); "
    "nothing was changed.",
    "request_too_big": "Nothing of the request was stored: send smaller requests "
    "(Prometheus: `queue_config.max_samples_per_send`) or raise the named setting.",
    "admin": "Call the admin API with `Authorization: Bearer <admin.token>`.",
}
_BY_STATUS = {
    400: "The sender's data breaks a rule or a limit named in the message: fix the data, or "
    "raise the named limit. Other series of the request were stored.",
    401: "Authenticate (see `auth` in docs/configuration.md).",
    403: "The credentials are not allowed to do this.",
    404: "Check the URL.",
    413: "Send smaller requests.",
    415: "Send a supported format.",
    422: "The query is too expensive under the limit named in the message: narrow it.",
    429: "Slow down or raise the tenant's rate limits; retry later.",
    503: "Transient: retry later.",
}


def configuration_reference() -> str:
    """Every configuration key with its type, default and description, as markdown."""
    defaults = Config()
    lines = [
        "# Configuration reference",
        "",
        "Generated from `gateway/config.py` by `metrics-gateway config-reference`; do not edit.",
        "",
        "Every key can be set in the YAML file (`--config FILE`, sections as below) or as a flag",
        "named by its path (`--storage.dsn chdb:///var/lib/metrics-gateway`); a flag wins over",
        "the file. The environment variable `GATEWAY_STORAGE_DSN` sets `storage.dsn` (so a",
        "password need not be on the command line). `metrics-gateway check-config FILE`",
        "validates a file.",
    ]
    section = ""
    for path, text in flag_paths():
        head, _, _ = path.partition(".")
        if head != section:
            section = head
            lines += ["", f"## `{section}`", "", "| key | type | default | description |"]
            lines.append("|---|---|---|---|")
        kind, default = _type_and_default(defaults, path)
        lines.append(f"| `{path}` | {kind} | {default} | {_cell(text)} |")
    return "\n".join(lines) + "\n"


def errors_reference() -> str:
    """Every error the gateway answers with: id, status, discard reason, message, advice."""
    lines = [
        "# Errors reference",
        "",
        "Generated from `gateway/errors.py` by `metrics-gateway errors-reference`; do not edit.",
        "",
        "Every error message ends with `(err-gateway-<id>)`; search this page for the id. The",
        "reason is the `reason` label of `gateway_discarded_samples_total` and",
        "`gateway_rejected_requests_total`. Braces in a message are filled in per request.",
        "",
        "| id | status | reason | message | what to do |",
        "|---|---|---|---|---|",
    ]
    for error in Errors:
        kind: ErrorKind = error.value
        advice = _ADVICE.get(
            kind.id,
            _BY_REASON.get(kind.reason, _BY_STATUS.get(kind.status, "See the message.")),
        )
        lines.append(
            f"| `err-gateway-{kind.id}` | {kind.status} | `{kind.reason}` "
            f"| {_cell(kind.template)} | {_cell(advice)} |"
        )
    return "\n".join(lines) + "\n"


def _type_and_default(defaults: Config, path: str) -> tuple[str, str]:
    owner: Any = defaults
    *parents, leaf = path.split(".")
    for part in parents:
        owner = getattr(owner, part)
    kind = typing.get_type_hints(type(owner))[leaf]
    value = getattr(owner, leaf)
    if typing.get_origin(kind) is types.UnionType:  # `X | None`
        (member,) = [arg for arg in typing.get_args(kind) if arg is not type(None)]
        name = f"{_TYPE_NAMES.get(member, str(member))} or null"
        return name, "`null`" if value is None else f"`{value}`"
    if typing.get_origin(kind) is tuple:
        (item, _) = typing.get_args(kind)
        if dataclasses.is_dataclass(item):
            keys = ", ".join(item_field.name for item_field in dataclasses.fields(item))
            item_name = f"{{{keys}}}"
        else:
            item_name = f"{_TYPE_NAMES.get(item, str(item))}s"
        return f"list of {item_name}", "`[]`" if not value else f"`{list(value)!r}`"
    if typing.get_origin(kind) is dict:
        key, item = typing.get_args(kind)
        name = f"map of {_TYPE_NAMES.get(key, str(key))} to {_TYPE_NAMES.get(item, str(item))}"
        return name, f"`{dict(value)!r}`"
    name = _TYPE_NAMES.get(kind, str(kind))
    if isinstance(value, str):
        return name, f'`"{value}"`' if value else '`""`'
    if isinstance(value, bool):
        return name, f"`{str(value).lower()}`"
    return name, f"`{value:_}`" if isinstance(value, int) and value >= 10_000 else f"`{value}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")
