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
from gateway.storage.base import (
    Client,
    SchemaError,
    StorageError,
    StorageLocked,
    StorageNotWritable,
)
from gateway.storage.migrations import MIN_CLICKHOUSE_VERSION, migrate, schema_version

# Storage modules and their callers import these from here (the pool) as well.
__all__ = [
    "MIN_CLICKHOUSE_VERSION",
    "ClickHouse",
    "Client",
    "SchemaError",
    "StorageError",
    "StorageLocked",
    "StorageNotWritable",
    "migrate",
    "schema_version",
]

log = logging.getLogger(__name__)

T = TypeVar("T")


# Session settings on a cluster. Series, label-index and sample rows of one series share a shard
# (one sharding key), so an `IN (SELECT ... FROM <Distributed>)` subquery may run on each shard's
# local table; and an INSERT into a Distributed table returns only once every shard has its rows,
# so a 2xx still means "stored".
CLUSTER_SETTINGS: Mapping[str, Any] = {
    "distributed_product_mode": "local",
    "distributed_foreground_insert": 1,
}


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
        client_cert: str = "",
        client_key: str = "",
        server_hostname: str = "",
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        self.dsn = dsn
        self._options: dict[str, Any] = {}
        if not dsn.startswith("chdb://"):
            self._options = {
                # clickhouse-connect takes TLS from the port (443/8443), not the DSN's scheme:
                # without this, https://host:8123 would send the password in plain text.
                "interface": urlsplit(dsn).scheme,
                "settings": dict(settings or {}),
                **tls_options(
                    dsn,
                    verify=tls_verify,
                    ca_cert=ca_cert,
                    client_cert=client_cert,
                    client_key=client_key,
                    server_hostname=server_hostname,
                ),
            }
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
            client_cert=storage.client_cert,
            client_key=storage.client_key,
            server_hostname=storage.server_hostname,
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


def tls_options(
    dsn: str,
    *,
    verify: bool,
    ca_cert: str,
    client_cert: str,
    client_key: str,
    server_hostname: str,
) -> dict[str, Any]:
    """clickhouse-connect's TLS arguments for a server DSN (used only with https://).

    With a client certificate, the DSN's password decides what the certificate is for: with a
    password, TLS presents the certificate and the password authenticates the user
    (`tls_mode="strict"`); without one, the certificate authenticates the DSN's user
    (`"mutual"`: ClickHouse checks it against the user's `<ssl_certificates>`).
    """
    options: dict[str, Any] = {"verify": verify}
    if ca_cert:
        options["ca_cert"] = ca_cert
    if client_cert:
        options["client_cert"] = client_cert
        options["tls_mode"] = "strict" if urlsplit(dsn).password else "mutual"
        if client_key:
            options["client_cert_key"] = client_key
    if server_hostname:
        # Sent as SNI and, when verifying, the name the certificate must carry.
        options["server_host_name"] = server_hostname
    return options


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
