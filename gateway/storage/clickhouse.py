"""ClickHouse access: a thread pool whose threads each own a clickhouse-connect client.

The same code serves the embedded engine (`chdb://PATH`) and a server (`http(s)://...`).
There is no async client: every call runs in the pool so the event loop never blocks, and one
client per thread lets the embedded engine work on several calls in parallel.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import re
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import clickhouse_connect

from gateway.config import StorageConfig
from gateway.errors import GatewayError
from gateway.storage.schema import (
    SCHEMA_VERSION,
    Layout,
    bootstrap_statements,
    migrations,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
Client = Any
"""A clickhouse-connect client (the package ships no type information)."""


# Session settings on a cluster. Series, label-index and sample rows of one series share a shard
# (one sharding key), so an `IN (SELECT ... FROM <Distributed>)` subquery may run on each shard's
# local table; and an INSERT into a Distributed table returns only once every shard has its rows,
# so a 2xx still means "stored".
CLUSTER_SETTINGS: Mapping[str, Any] = {
    "distributed_product_mode": "local",
    "distributed_foreground_insert": 1,
}


# The oldest ClickHouse the schema (Map, DateTime64 codecs, the Distributed settings above) and the
# PromQL functions (timeSeries*ToGrid) are made for: the 25.8 LTS release.
MIN_CLICKHOUSE_VERSION = (25, 8)


class StorageError(Exception):
    """Storage failed; writes answer 503 so the sender retries."""


class StorageLocked(StorageError):
    """Another process owns the embedded data directory."""


class SchemaError(StorageError):
    """The stored schema cannot be used by this gateway."""


class StorageNotWritable(StorageError):
    """The data directory (or the server's disk) refuses writes: permissions, read-only, full."""


# What the engine says when its files cannot be written, and what to tell the operator.
_NOT_WRITABLE = (
    ("Permission denied", "permission denied"),
    ("Read-only file system", "read-only file system"),
    ("No space left on device", "no space left on device"),
    ("NOT_ENOUGH_SPACE", "not enough disk space"),
    ("Cannot reserve", "not enough disk space"),
)


class ClickHouse:
    """Runs storage calls in a thread pool, one client per thread."""

    def __init__(
        self,
        dsn: str,
        threads: int,
        *,
        tls_verify: bool = True,
        ca_cert: str = "",
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        self.dsn = dsn
        self._options: dict[str, Any] = {}
        if not dsn.startswith("chdb://"):
            self._options = {"verify": tls_verify, "settings": dict(settings or {})}
            if ca_cert:
                self._options["ca_cert"] = ca_cert
        self._local = threading.local()
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="clickhouse")

    @classmethod
    def for_config(cls, storage: StorageConfig) -> ClickHouse:
        """The pool for `storage`, with the session settings a cluster needs."""
        return cls(
            storage.dsn,
            storage.threads,
            tls_verify=storage.tls_verify,
            ca_cert=storage.ca_cert,
            settings=CLUSTER_SETTINGS if storage.cluster else None,
        )

    async def run(self, call: Callable[[Client], T]) -> T:
        """Run `call(client)` on a pool thread; storage failures become StorageError."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._invoke, call)

    def run_sync(self, call: Callable[[Client], T]) -> T:
        """Run on a pool thread and wait (start-up, tools, tests)."""
        return self._executor.submit(self._invoke, call).result()

    def close(self) -> None:
        self._executor.shutdown(wait=True)

    def _invoke(self, call: Callable[[Client], T]) -> T:
        client = getattr(self._local, "client", None)
        try:
            if client is None:
                client = self._connect()
                self._local.client = client
            return call(client)
        except (StorageError, GatewayError):
            raise  # already says what went wrong (e.g. a query limit)
        except Exception as exc:
            raise self._storage_error(exc, _one_line(exc)) from exc

    def _storage_error(self, exc: Exception, message: str) -> StorageError:
        """StorageNotWritable, naming the directory and the cause, when files cannot be written;
        else a StorageError with `message`."""
        text = str(exc)
        for needle, cause in _NOT_WRITABLE:
            if needle in text:
                if self.dsn.startswith("chdb://"):
                    where = f"the data directory {self.dsn.removeprefix('chdb://')}"
                    return StorageNotWritable(
                        f"{where} is not writable: {cause} (the gateway runs as uid "
                        f"{os.getuid()}; check the directory's owner, mode, mount and free space)"
                    )
                return StorageNotWritable(f"the ClickHouse server cannot write: {cause}")
        return StorageError(message)

    def _connect(self) -> Client:
        try:
            if self.dsn.startswith("chdb://"):
                return clickhouse_connect.get_client(dsn=self.dsn)
            return clickhouse_connect.get_client(dsn=server_dsn(self.dsn), **self._options)
        except Exception as exc:
            # chdb 4.4 reports a held lock only as "Error initializing EmbeddedServer" (the
            # "Cannot lock file" text goes to fd 2), so ask the lock itself.
            if self.dsn.startswith("chdb://") and directory_in_use(self.dsn):
                raise StorageLocked(locked_message(self.dsn)) from None
            raise self._storage_error(
                exc, f"cannot connect to {_redact(self.dsn)}: {_one_line(exc)}"
            ) from exc


def directory_in_use(dsn: str) -> bool:
    """Whether a process holds the engine lock of a `chdb://` directory (ClickHouse flocks
    `<dir>/status`). Also true when this process has the engine open: ask before opening."""
    try:
        with open(os.path.join(dsn.removeprefix("chdb://"), "status"), "rb") as status:
            fcntl.flock(status, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released by close
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False


def server_dsn(dsn: str) -> str:
    """The DSN to connect with: without its database path, which may not exist yet (migrate
    creates it; every statement names its tables with the database)."""
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, "", parts.query, parts.fragment))


def locked_message(dsn: str) -> str:
    return (
        f"the data directory {dsn.removeprefix('chdb://')} is in use by another process "
        "(the embedded ClickHouse allows one process per directory)"
    )


def migrate(client: Client, layout: Layout) -> int:
    """Create or upgrade the schema to SCHEMA_VERSION; returns the version found before."""
    _check_server_version(str(client.command("SELECT version()")))
    for statement in bootstrap_statements(layout):
        client.command(statement)
    found = int(client.command(f"SELECT max(version) FROM {layout.migrations_table}") or 0)
    if found > SCHEMA_VERSION:
        raise SchemaError(
            f"the store has schema version {found}, newer than this gateway's {SCHEMA_VERSION}: "
            "upgrade the gateway"
        )
    for version, statements in sorted(migrations(layout).items()):
        if version <= found:
            continue
        for statement in statements:
            client.command(statement)
        client.command(f"INSERT INTO {layout.migrations_table} (version) VALUES ({version})")
        log.info("schema migrated to version %d", version)
    _check_fixed_settings(client, layout)
    return found


def _check_server_version(version: str) -> None:
    """Refuse a ClickHouse older than the oldest release the schema and queries are made for."""
    try:
        found = tuple(int(part) for part in version.split(".")[:2])
    except ValueError:
        return  # an unusual build string: let the DDL speak for itself
    if found < MIN_CLICKHOUSE_VERSION:
        wanted = ".".join(map(str, MIN_CLICKHOUSE_VERSION))
        raise SchemaError(f"ClickHouse {version} is too old: the gateway needs {wanted} or newer")


def schema_version(client: Client, layout: Layout) -> int:
    """The schema version of the store (0 when it has none)."""
    return int(client.command(f"SELECT max(version) FROM {layout.migrations_table}") or 0)


def _check_fixed_settings(client: Client, layout: Layout) -> None:
    """Settings that decide where data lives cannot change once data exists."""
    wanted = {"sample_shards": str(layout.sample_shards)}
    rows = client.query(
        f"SELECT name, argMax(value, value) FROM {layout.settings_table} GROUP BY name"
    ).result_rows
    stored = {name: value for name, value in rows}
    for name, value in wanted.items():
        if name not in stored:
            client.insert(layout.settings_table, [[name, value]], column_names=["name", "value"])
        elif stored[name] != value:
            raise SchemaError(
                f"storage.{name} is {value} in the configuration but {stored[name]} in the "
                f"store; it cannot change once data exists (set it back to {stored[name]})"
            )


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    # Without the per-request query id, so that a repeated failure reads the same (logged once).
    return _QUERY_ID.sub("", text[0])[:500] if text else type(exc).__name__


_QUERY_ID = re.compile(r"\?query_id=[0-9a-f-]+")


def _redact(dsn: str) -> str:
    """A DSN without its password, for messages."""
    scheme, sep, rest = dsn.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at:
        return dsn
    user = credentials.partition(":")[0]
    return f"{scheme}{sep}{user}:***@{host}"
