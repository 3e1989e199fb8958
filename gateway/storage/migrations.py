"""Start-up of a store: create or upgrade the schema, check fixed settings, apply retention."""

from __future__ import annotations

import logging

from gateway.storage.base import Client, SchemaError
from gateway.storage.retention import apply_retention
from gateway.storage.schema import SCHEMA_VERSION, Layout, bootstrap_statements, migrations
from gateway.storage.store_settings import check_fixed_settings, new_writer

log = logging.getLogger(__name__)

# The oldest ClickHouse the schema (Map, DateTime64 codecs, the Distributed settings) and the
# PromQL functions (timeSeries*ToGrid) are made for: the 25.8 LTS release.
MIN_CLICKHOUSE_VERSION = (25, 8)


def migrate(client: Client, layout: Layout) -> int:
    """Create or upgrade the schema to SCHEMA_VERSION, check the store's fixed settings and
    apply the configured retention; returns the schema version found before."""
    check_server_version(str(client.command("SELECT version()")))
    found = upgrade_schema(client, layout)
    writer = new_writer()
    check_fixed_settings(client, layout, writer)
    apply_retention(client, layout, writer)
    return found


def upgrade_schema(client: Client, layout: Layout, target: int = SCHEMA_VERSION) -> int:
    """Apply the schema versions the store lacks, up to `target`; returns the version found."""
    for statement in bootstrap_statements(layout):
        client.command(statement)
    found = schema_version(client, layout)
    if found > SCHEMA_VERSION:
        raise SchemaError(
            f"the store has schema version {found}, newer than this gateway's {SCHEMA_VERSION}: "
            "upgrade the gateway"
        )
    for version, statements in sorted(migrations(layout).items()):
        if not found < version <= target:
            continue
        for statement in statements:
            client.command(statement)
        client.command(f"INSERT INTO {layout.migrations_table} (version) VALUES ({version})")
        log.info("schema migrated to version %d", version)
    return found


def schema_version(client: Client, layout: Layout) -> int:
    """The schema version of the store (0 when it has none)."""
    return int(client.command(f"SELECT max(version) FROM {layout.migrations_table}") or 0)


def check_server_version(version: str) -> None:
    """Refuse a ClickHouse older than the oldest release the schema and queries are made for."""
    try:
        found = tuple(int(part) for part in version.split(".")[:2])
    except ValueError:
        return  # an unusual build string: let the DDL speak for itself
    if found < MIN_CLICKHOUSE_VERSION:
        wanted = ".".join(map(str, MIN_CLICKHOUSE_VERSION))
        raise SchemaError(f"ClickHouse {version} is too old: the gateway needs {wanted} or newer")
