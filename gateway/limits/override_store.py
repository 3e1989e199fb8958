"""ClickHouse I/O of the admin API's limits overrides and their audit log (storage threads).

Every change is a new `limits_overrides` row whose `updated_at` is its **version**: a change
reads the tenant's latest row first and takes `max(now, latest + 1 ms)` (and more than any
version the writing replica has seen), so a change made after another one orders after it even
when the replicas' clocks disagree. The latest row is the one with the highest
(version, limits text): two changes that saw neither each other and got the same millisecond are
ordered by their text, the same way on every replica.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from gateway.limits.model import BadLimits, overrides_json, parse_overrides
from gateway.storage.clickhouse import Client
from gateway.storage.schema import Layout

log = logging.getLogger(__name__)
_MS = pa.timestamp("ms", tz="UTC")
OVERRIDES_TABLE = "limits_overrides"
AUDIT_TABLE = "limits_audit"


@dataclass(frozen=True, slots=True)
class StoredOverrides:
    """A tenant's latest overrides row: None when deleted (or unreadable), and its version."""

    overrides: dict[str, Any] | None
    version: int
    """`updated_at` in ms."""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One change of a tenant's limits."""

    at_ms: int
    tenant: str
    actor: str
    remote: str
    action: str
    old: dict[str, Any]
    new: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "time": self.at_ms / 1000, "tenant": self.tenant, "actor": self.actor,
            "remote": self.remote, "action": self.action, "old": self.old, "new": self.new,
        }


def _latest_sql(layout: Layout, where: str) -> str:
    # The version tuple breaks ties between rows of one millisecond by their text.
    return f"""SELECT tenant, argMax(limits, (updated_at, limits)),
            argMax(deleted, (updated_at, limits)), toUnixTimestamp64Milli(max(updated_at))
        FROM {layout.table(OVERRIDES_TABLE)} {where} GROUP BY tenant"""


def _stored(tenant: str, text: str, deleted: int, version: int) -> StoredOverrides:
    if deleted:
        return StoredOverrides(None, int(version))
    try:
        return StoredOverrides(parse_overrides(json.loads(text)), int(version))
    except (ValueError, BadLimits) as exc:
        log.error("ignoring stored limits of tenant %r: %s", tenant, exc)
        return StoredOverrides(None, int(version))


def read_overrides(client: Client, layout: Layout) -> dict[str, StoredOverrides]:
    """Every tenant's latest overrides row (deleted ones included, with overrides None)."""
    rows = client.query(_latest_sql(layout, "")).result_rows
    return {str(t): _stored(str(t), text, deleted, v) for t, text, deleted, v in rows}


def read_override(client: Client, layout: Layout, tenant: str) -> StoredOverrides | None:
    """One tenant's latest overrides row, None when it never had one."""
    rows = client.query(
        _latest_sql(layout, "WHERE tenant = {tenant:String}"), parameters={"tenant": tenant}
    ).result_rows
    return _stored(tenant, *rows[0][1:]) if rows else None


def change_override(
    client: Client,
    layout: Layout,
    template: AuditEntry,
    change: Callable[[dict[str, Any]], dict[str, Any]],
    min_version: int = 0,
) -> AuditEntry:
    """Read-modify-write of a tenant's overrides against storage; returns the audit entry.

    `change` maps the stored overrides to the new ones (empty = delete). The new row's version
    is above the stored one and `min_version`, and at least the current time.
    """
    current = read_override(client, layout, template.tenant)
    old = (current.overrides or {}) if current else {}
    new = change(dict(old))
    version = max(now_ms(), min_version, (current.version + 1) if current else 0)
    entry = AuditEntry(
        version, template.tenant, template.actor, template.remote, template.action,
        overrides_json(old), overrides_json(new),
    )
    write_override(client, layout, new or None, entry)
    return entry


def write_override(
    client: Client, layout: Layout, overrides: dict[str, Any] | None, entry: AuditEntry
) -> None:
    """Store a tenant's new overrides (None deletes them) at version `entry.at_ms`, audited."""
    text = json.dumps(overrides_json(overrides or {}), sort_keys=True)
    client.insert_arrow(
        layout.table(OVERRIDES_TABLE),
        pa.table(
            {
                "tenant": pa.array([entry.tenant], pa.string()),
                "limits": pa.array([text], pa.string()),
                "deleted": pa.array([0 if overrides else 1], pa.uint8()),
                "updated_at": pa.array([entry.at_ms], pa.int64()).cast(_MS),
            }
        ),
    )
    client.insert_arrow(
        layout.table(AUDIT_TABLE),
        pa.table(
            {
                "at": pa.array([entry.at_ms], pa.int64()).cast(_MS),
                "tenant": pa.array([entry.tenant], pa.string()),
                "actor": pa.array([entry.actor], pa.string()),
                "remote": pa.array([entry.remote], pa.string()),
                "action": pa.array([entry.action], pa.string()),
                "old": pa.array([json.dumps(entry.old, sort_keys=True)], pa.string()),
                "new": pa.array([json.dumps(entry.new, sort_keys=True)], pa.string()),
            }
        ),
    )


def read_audit(
    client: Client, layout: Layout, tenant: str | None, limit: int
) -> list[AuditEntry]:
    """Audit entries, newest first."""
    where = "WHERE tenant = {tenant:String}" if tenant else ""
    rows = client.query(
        f"""SELECT toUnixTimestamp64Milli(at), tenant, actor, remote, action, old, new
        FROM {layout.table(AUDIT_TABLE)} {where} ORDER BY at DESC LIMIT {{limit:UInt64}}""",
        parameters={"tenant": tenant or "", "limit": limit},
    ).result_rows
    return [
        AuditEntry(int(at), str(t), str(actor), str(remote), str(action), json.loads(old),
                   json.loads(new))
        for at, t, actor, remote, action, old, new in rows
    ]


def now_ms() -> int:
    return int(time.time() * 1000)
