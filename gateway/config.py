"""Configuration: frozen dataclasses loaded from YAML, overridden by flags, validated strictly.

Every key of the YAML file is also a command-line flag named by its path (`storage.dsn` ->
`--storage.dsn`); flag values are parsed as YAML, so lists and maps can be given inline.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gateway.limits.model import Limits
from gateway.typed_config import ConfigError, build, leaf_paths, parse_flag_value, set_dotted

__all__ = [
    "AdminConfig", "AuthConfig", "Config", "ConfigError", "IngestConfig", "LimitsConfig",
    "QueryConfig", "RemoteReadConfig", "ServerConfig", "StorageConfig", "TenantCredential",
    "flag_paths", "listen_address", "load", "parse_flag_value",
]


@dataclass(frozen=True, slots=True)
class ServerConfig:
    listen: str = "127.0.0.1:9201"
    """Address to serve HTTP on, HOST:PORT."""
    shutdown_grace_seconds: float = 10.0
    """On SIGTERM, how long in-flight requests may take to finish before the batch is flushed."""
    workers: int = 1
    """Worker processes serving the one port (SO_REUSEPORT); above 1 needs a server DSN."""


@dataclass(frozen=True, slots=True)
class StorageConfig:
    dsn: str = "chdb://./data/clickhouse"
    """chdb://PATH (embedded ClickHouse) or http(s)://user:password@host:8123/database."""
    database: str = "metrics"
    """Database for the gateway's tables (embedded mode; a server DSN's path overrides it)."""
    sample_shards: int = 2
    """Number of sample tables; a series' samples live in table (series hash mod N)."""
    retention_days: int = 0
    """Samples older than this are deleted by ClickHouse TTL; 0 keeps them forever."""
    threads: int = 4
    """Threads (each with its own ClickHouse client) that run storage calls."""
    cluster: str = ""
    """ClickHouse cluster name: replicated local tables + Distributed tables, ON CLUSTER DDL."""
    tls_verify: bool = True
    """With an https:// DSN, verify the server's certificate."""
    ca_cert: str = ""
    """With an https:// DSN, a PEM file of the CA that signed the server's certificate."""
    client_cert: str = ""
    """With an https:// DSN, a PEM client certificate (mutual TLS); without a password in the
    DSN it authenticates the DSN's user."""
    client_key: str = ""
    """The client certificate's PEM private key, unless `client_cert` contains it."""
    server_hostname: str = ""
    """With an https:// DSN, the name sent as SNI and checked in the server's certificate, when
    it differs from the DSN's host (a tunnel, a proxy, an IP address)."""
    min_free_bytes: int = 16 << 20
    """Embedded mode: not ready (writes 503) while the data directory's disk has less free."""


@dataclass(frozen=True, slots=True)
class IngestConfig:
    max_body_bytes: int = 16 << 20
    """Largest compressed request body accepted (413 above)."""
    max_decoded_bytes: int = 32 << 20
    """Largest decompressed body, checked against snappy's header before decoding (413 above)."""
    batch_max_rows: int = 100_000
    """A group-commit batch is inserted at once when it holds this many samples."""
    batch_min_delay_ms: int = 5
    """With a flush slot free, a batch waits this long for simultaneous requests to join."""
    batch_max_delay_ms: int = 200
    """With every flush slot busy, a batch waits at most this long before its own insert."""
    flush_concurrency: int = 2
    """Batches that may be inserting at the same time."""
    known_series_cache_size: int = 4_000_000
    """Series remembered as stored (across tenants), so their labels need no decoding; about
    155 bytes each (4M: ~600 MiB). Series past it are decoded and registered again."""
    max_series_per_request: int = 500_000
    """Series one write request may carry (the whole request is refused, 400); 0 = unlimited."""
    max_samples_per_request: int = 5_000_000
    """Samples one write request may carry (the whole request is refused, 400); 0 = unlimited."""
    max_symbols_per_request: int = 1_000_000
    """Symbols one remote-write 2.0 request may carry (refused, 400); 0 = unlimited."""
    max_labels_per_series: int = 512
    """Labels a new series may have (that series is refused, 400); 0 = unlimited."""
    max_label_bytes_per_series: int = 256 << 10
    """Bytes of label names and values a new series may have (refused, 400); 0 = unlimited."""


@dataclass(frozen=True, slots=True)
class RemoteReadConfig:
    max_body_bytes: int = 4 << 20
    """Largest compressed remote-read request body accepted (413 above)."""
    max_decoded_bytes: int = 32 << 20
    """Largest decompressed remote-read request, checked before decoding (413 above)."""
    max_series_per_query: int = 100_000
    """Series one remote-read query may select (422 above); 0 = unlimited."""
    max_samples_per_query: int = 50_000_000
    """Samples one remote-read query may return (422 above); 0 = unlimited."""
    max_bytes_in_frame: int = 1 << 20
    """Target size of one STREAMED_XOR_CHUNKS frame (a frame may exceed it by one chunk)."""


@dataclass(frozen=True, slots=True)
class TenantCredential:
    tenant: str
    bearer_token: str = ""
    username: str = ""
    password: str = ""


@dataclass(frozen=True, slots=True)
class AuthConfig:
    tenants: tuple[TenantCredential, ...] = ()
    """Credentials and the tenant each maps to. Empty: X-Scope-OrgID selects the tenant."""
    default_tenant: str = "anonymous"
    """Tenant of requests without X-Scope-OrgID when no credentials are configured."""


@dataclass(frozen=True, slots=True)
class QueryConfig:
    lookback_delta: str = "5m"
    """How far back an instant selector looks for the latest sample (a Prometheus duration)."""
    timeout: str = "2m"
    """Longest a read may run (PromQL, series, labels, metadata, cardinality, remote-read;
    503 after); a query's smaller `timeout` parameter wins."""
    max_samples: int = 50_000_000
    """Most samples one query may hold in memory at once (422 above)."""
    max_points_per_series: int = 11_000
    """Most steps a range query may have per series (400 above), as Prometheus."""
    max_fetched_series_per_query: int = 0
    """Most series one selector of a query may fetch (422 above); 0 = unlimited."""
    default_subquery_step: str = "1m"
    """Step of subqueries written without one (`x[1h:]`)."""
    max_query_bytes: int = 128 << 10
    """Longest PromQL text (`query`, `match[]`, `selector`) accepted (400 above); 0 = unlimited."""
    max_query_depth: int = 64
    """Deepest bracket nesting of PromQL text (400 above); 0 = unlimited."""
    max_query_operators: int = 256
    """Most operators in one PromQL text (400 above; parse time grows fast with more); 0 = off."""
    series_labels_cache_size: int = 200_000
    """Label sets of recently selected series kept in memory (PromQL, remote-read), so repeated
    queries read only series ids from ClickHouse; about 1 KiB each with 8-12 labels (200k:
    ~200 MiB); 0 = off."""


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    enabled: bool = True
    """Enforce limits and track active series; false skips both (benchmarks, trusted senders)."""
    defaults: Limits = field(default_factory=Limits)
    """Limits of every tenant without overrides (see docs/limits.md); 0 = unlimited."""
    active_series_window_seconds: int = 3600
    """A series is active while it received a sample this recently (budgets count these)."""
    overrides_file: str = ""
    """Optional YAML file `overrides: {tenant: {limit: value}}`, re-read when it changes."""
    reload_interval_seconds: float = 2.0
    """How often admin API overrides (and the overrides file) are re-read."""
    sync_interval_seconds: float = 10.0
    """How often this replica persists its series' last-seen minutes."""
    reconcile_interval_seconds: float = 30.0
    """How often this replica merges every replica's active series from storage."""


@dataclass(frozen=True, slots=True)
class AdminConfig:
    token: str = ""
    """Bearer token of the admin API (also --admin-token or GATEWAY_ADMIN_TOKEN); empty = off."""
    max_body_bytes: int = 1 << 20
    """Largest JSON body of an admin PUT/PATCH (413 above)."""


@dataclass(frozen=True, slots=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    remote_read: RemoteReadConfig = field(default_factory=RemoteReadConfig)
    query: QueryConfig = field(default_factory=QueryConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    admin: AdminConfig = field(default_factory=AdminConfig)


def load(path: str | Path | None, overrides: dict[str, Any] | None = None) -> Config:
    """Load a YAML file (or defaults), apply dotted-key overrides, validate."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path} is not valid YAML: {exc}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping")
        data = loaded or {}
    for dotted, value in (overrides or {}).items():
        set_dotted(data, dotted, value)
    return _finish(build(Config, data))


def flag_paths() -> list[tuple[str, str]]:
    """Every leaf key of the configuration as (dotted path, help text), for flags and docs."""
    return leaf_paths(Config)


def _finish(config: Config) -> Config:
    """Validate values and make relative paths absolute."""
    _parse_listen(config.server.listen)
    storage = config.storage
    dsn = storage.dsn
    if dsn.startswith("chdb://"):
        location = dsn.removeprefix("chdb://")
        if not location:
            raise ConfigError("storage.dsn: chdb:// needs a data directory path")
        dsn = "chdb://" + os.path.abspath(location)
    elif dsn.startswith(("http://", "https://")):
        storage = _server_storage(storage)
    else:
        raise ConfigError(
            f"storage.dsn: {dsn!r} is neither chdb://PATH nor http(s)://host:port/database"
        )
    embedded = dsn.startswith("chdb://")
    if embedded:
        _validate_tls(storage, https=False, user=None)
        _require(
            importlib.util.find_spec("chdb") is not None,
            "storage.dsn: chdb:// needs the embedded ClickHouse, which is not installed: "
            "pip install 'chdb>=4.1.7' (or use an http(s):// server DSN)",
        )
    _require(1 <= config.server.workers <= 256, "server.workers must be 1..256")
    _require(
        not (embedded and config.server.workers > 1),
        f"server.workers is {config.server.workers} but the embedded store (chdb://) allows "
        "one process per data directory: use --server.workers 1 or an http(s):// server DSN",
    )
    _require(
        not (embedded and storage.cluster),
        "storage.cluster needs an http(s):// ClickHouse server DSN, not chdb://",
    )
    _require(1 <= storage.sample_shards <= 256, "storage.sample_shards must be 1..256")
    _require(storage.retention_days >= 0, "storage.retention_days must be >= 0")
    _require(1 <= storage.threads <= 64, "storage.threads must be 1..64")
    _require(storage.min_free_bytes >= 0, "storage.min_free_bytes must be >= 0")
    _require(
        _is_identifier(storage.database),
        f"storage.database (or the DSN's path) {storage.database!r} must be an identifier",
    )
    ingest = config.ingest
    _require(ingest.max_body_bytes > 0, "ingest.max_body_bytes must be > 0")
    _require(ingest.max_decoded_bytes > 0, "ingest.max_decoded_bytes must be > 0")
    _require(ingest.batch_max_rows > 0, "ingest.batch_max_rows must be > 0")
    _require(ingest.batch_min_delay_ms >= 0, "ingest.batch_min_delay_ms must be >= 0")
    _require(
        ingest.batch_max_delay_ms >= ingest.batch_min_delay_ms,
        "ingest.batch_max_delay_ms must be >= ingest.batch_min_delay_ms",
    )
    _require(ingest.flush_concurrency >= 1, "ingest.flush_concurrency must be >= 1")
    _require(ingest.known_series_cache_size >= 0, "ingest.known_series_cache_size must be >= 0")
    _require(
        config.query.series_labels_cache_size >= 0, "query.series_labels_cache_size must be >= 0"
    )
    for name in (
        "max_series_per_request", "max_samples_per_request", "max_symbols_per_request",
        "max_labels_per_series", "max_label_bytes_per_series",
    ):
        _require(getattr(ingest, name) >= 0, f"ingest.{name} must be >= 0")
    _require(
        config.server.shutdown_grace_seconds >= 0, "server.shutdown_grace_seconds must be >= 0"
    )
    _validate_auth(config.auth)
    _validate_remote_read(config.remote_read)
    _validate_query(config.query)
    _validate_limits(config)
    return dataclasses.replace(config, storage=dataclasses.replace(storage, dsn=dsn))


def _server_storage(storage: StorageConfig) -> StorageConfig:
    """A server DSN: its path, when given, names the database (overriding storage.database)."""
    from urllib.parse import unquote, urlsplit

    try:
        parts = urlsplit(storage.dsn)
        _ = parts.port  # raises on a port that is not a number
    except ValueError as exc:
        raise ConfigError(f"storage.dsn: {exc}") from None
    _require(bool(parts.hostname), "storage.dsn: http(s):// needs a host")
    database = unquote(parts.path.strip("/"))
    _require("/" not in database, "storage.dsn: the path must be one database name")
    _require(
        not storage.cluster or _is_identifier(storage.cluster),
        "storage.cluster must be an identifier (letters, digits, _)",
    )
    _validate_tls(storage, parts.scheme == "https", parts.username)
    return dataclasses.replace(storage, database=database) if database else storage


def _validate_tls(storage: StorageConfig, https: bool, user: str | None) -> None:
    for name in ("ca_cert", "client_cert", "client_key"):
        path = getattr(storage, name)
        _require(not path or os.path.isfile(path), f"storage.{name}: no such file {path!r}")
    for name in ("ca_cert", "client_cert", "client_key", "server_hostname"):
        _require(
            https or not getattr(storage, name),
            f"storage.{name} needs an https:// DSN (TLS to a ClickHouse server)",
        )
    _require(
        not storage.client_key or bool(storage.client_cert),
        "storage.client_key needs storage.client_cert",
    )
    _require(
        not storage.client_cert or bool(user),
        "storage.client_cert: the DSN needs a user (https://user@host:8443/...), whom the "
        "certificate authenticates",
    )
    _require(
        not storage.server_hostname or _is_hostname(storage.server_hostname),
        f"storage.server_hostname {storage.server_hostname!r} is not a host name",
    )


def _is_hostname(name: str) -> bool:
    labels = name.rstrip(".").split(".")
    return len(name) <= 253 and all(
        0 < len(label) <= 63 and label.isascii() and label.replace("-", "").isalnum()
        and not label.startswith("-") and not label.endswith("-")
        for label in labels
    )


def _is_identifier(name: str) -> bool:
    return name.isidentifier() and name.isascii()


def _validate_remote_read(read: RemoteReadConfig) -> None:
    _require(read.max_body_bytes > 0, "remote_read.max_body_bytes must be > 0")
    _require(read.max_decoded_bytes > 0, "remote_read.max_decoded_bytes must be > 0")
    _require(read.max_series_per_query >= 0, "remote_read.max_series_per_query must be >= 0")
    _require(read.max_samples_per_query >= 0, "remote_read.max_samples_per_query must be >= 0")
    _require(read.max_bytes_in_frame >= 1024, "remote_read.max_bytes_in_frame must be >= 1024")


def _validate_auth(auth: AuthConfig) -> None:
    from gateway.tenancy import tenant_problem

    tokens: set[str] = set()
    users: set[str] = set()
    for index, cred in enumerate(auth.tenants):
        where = f"auth.tenants[{index}]"
        problem = tenant_problem(cred.tenant)
        _require(problem is None, f"{where}.tenant: {problem}")
        _require(
            bool(cred.bearer_token) != bool(cred.username),
            f"{where}: set exactly one of bearer_token or username (+ password)",
        )
        if cred.bearer_token:
            _require(cred.bearer_token not in tokens, f"{where}.bearer_token: used twice")
            tokens.add(cred.bearer_token)
        else:
            _require(bool(cred.password), f"{where}.password: required with username")
            _require(cred.username not in users, f"{where}.username: used twice")
            users.add(cred.username)
    problem = tenant_problem(auth.default_tenant)
    _require(problem is None, f"auth.default_tenant: {problem}")


def _validate_limits(config: Config) -> None:
    from gateway.limits.model import BadLimits, validate

    limits = config.limits
    try:
        validate(limits.defaults)
    except BadLimits as exc:
        raise ConfigError(f"limits.defaults.{exc}") from None
    _require(
        limits.active_series_window_seconds >= 60,
        "limits.active_series_window_seconds must be >= 60",
    )
    for name in ("reload_interval_seconds", "sync_interval_seconds", "reconcile_interval_seconds"):
        _require(getattr(limits, name) > 0, f"limits.{name} must be > 0")
    token = config.admin.token
    _require(
        not token or len(token) >= 16, "admin.token must be at least 16 characters long"
    )
    _require(config.admin.max_body_bytes > 0, "admin.max_body_bytes must be > 0")
    _require(
        not token or all(token != cred.bearer_token for cred in config.auth.tenants),
        "admin.token must differ from every tenant's bearer_token",
    )


def _validate_query(query: QueryConfig) -> None:
    from gateway.model.duration import BadDuration, parse_duration_ms

    for name in ("lookback_delta", "timeout", "default_subquery_step"):
        text = getattr(query, name)
        try:
            milliseconds = parse_duration_ms(text)
        except BadDuration:
            raise ConfigError(f"query.{name}: {text!r} is not a duration like 5m or 30s") from None
        _require(milliseconds > 0, f"query.{name} must be > 0")
    _require(query.max_samples > 0, "query.max_samples must be > 0")
    for name in ("max_query_bytes", "max_query_depth", "max_query_operators"):
        _require(getattr(query, name) >= 0, f"query.{name} must be >= 0")
    _require(query.max_points_per_series > 0, "query.max_points_per_series must be > 0")
    _require(
        query.max_fetched_series_per_query >= 0, "query.max_fetched_series_per_query must be >= 0"
    )


def _parse_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"server.listen: {listen!r} is not HOST:PORT")
    return host.strip("[]") or "0.0.0.0", int(port)


def listen_address(config: Config) -> tuple[str, int]:
    """(host, port) to bind."""
    return _parse_listen(config.server.listen)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)
