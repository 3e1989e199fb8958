"""What every storage module shares: the client type and the storage exceptions.

Kept apart from the connection pool (`gateway.storage.clickhouse`) so that schema migrations,
which the pool's users call through it, need not import the pool.
"""

from __future__ import annotations

from typing import Any

Client = Any
"""A clickhouse-connect client (the package ships no type information)."""


class StorageError(Exception):
    """Storage failed; writes answer 503 so the sender retries."""


class StorageLocked(StorageError):
    """Another process owns the embedded data directory."""


class SchemaError(StorageError):
    """The stored schema cannot be used by this gateway."""


class StorageNotWritable(StorageError):
    """The data directory (or the server's disk) refuses writes: permissions, read-only, full."""
