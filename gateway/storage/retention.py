"""Retention: the sample tables' TTL follows `storage.retention_days` at every start.

The TTL is set when a table is created; a changed `retention_days` is applied to existing tables
with `ALTER TABLE ... MODIFY TTL` (or `REMOVE TTL` for 0), on every node of a cluster. What a
table has is read from ClickHouse itself (system.tables, on every replica of a cluster), not from
what a gateway remembers, so a partly applied change is finished by the next start.
`materialize_ttl_after_modify = 1`: ClickHouse re-evaluates the new TTL on the parts already
stored, in the background (a mutation), so shortening the retention also deletes old samples
written before the change, not only new parts.
"""

from __future__ import annotations

import logging
import re

from gateway.storage.base import Client
from gateway.storage.schema import Layout, retention_statements, sample_ttls_query
from gateway.storage.store_settings import read_settings, record_setting

log = logging.getLogger(__name__)

ALTER_SETTINGS = {"materialize_ttl_after_modify": 1}

# How ClickHouse prints our TTL back: `toDateTime(timestamp) + toIntervalDay(30)` (25.x and 26.x),
# or as written (`INTERVAL 30 DAY`); the DELETE action is implied and not printed.
_TABLE_TTL = re.compile(r"\sTTL\s(?P<ttl>.+?)(?:\sSETTINGS\s|$)")
_DAYS = re.compile(
    r"toDateTime\(timestamp\)\s*\+\s*(?:toIntervalDay\((?P<f>\d+)\)|INTERVAL\s+(?P<i>\d+)\s+DAY)"
    r"(?:\s+DELETE)?"
)


def ttl_days(engine_full: str) -> int | None:
    """The retention in days a table's `engine_full` shows; 0 without TTL; None if unknown."""
    found = _TABLE_TTL.search(engine_full)
    if found is None:
        return 0
    days = _DAYS.fullmatch(found["ttl"].strip())
    if days is None:
        return None  # a TTL someone else set: replaced by ours
    return int(days["f"] or days["i"])


def stored_ttls(client: Client, layout: Layout) -> dict[int, set[int | None]]:
    """Per sample shard, the retentions its tables have (one per replica on a cluster)."""
    names = {layout.local_name(f"samples_{shard}"): shard for shard in range(layout.sample_shards)}
    rows = client.query(
        sample_ttls_query(layout),
        parameters={"database": layout.database, "tables": sorted(names)},
        # A replica that is down is checked at a later start; it must not stop this one.
        settings={"skip_unavailable_shards": 1},
    ).result_rows
    found: dict[int, set[int | None]] = {shard: set() for shard in names.values()}
    for name, engine_full in rows:
        found[names[name]].add(ttl_days(engine_full))
    return found


def apply_retention(client: Client, layout: Layout, writer: str) -> list[int]:
    """Give every sample table the configured retention; returns the shards changed."""
    wanted = layout.retention_days
    found = stored_ttls(client, layout)
    changed = [shard for shard, days in sorted(found.items()) if days != {wanted}]
    for shard in changed:
        for statement in retention_statements(layout, shard):
            client.command(statement, settings=ALTER_SETTINGS)
    previous = read_settings(client, layout).get("retention_days")
    if changed:
        before = sorted({_describe(days) for shard in changed for days in found[shard]})
        log.warning(
            "storage.retention_days: sample tables %s had %s, now %s (%s)",
            ", ".join(f"samples_{shard}" for shard in changed),
            " / ".join(before),
            _describe(wanted),
            "ClickHouse deletes older samples in the background"
            if wanted
            else "samples are kept forever",
        )
    if changed or previous is None or previous.last != str(wanted):
        record_setting(client, layout, "retention_days", str(wanted), writer)
    return changed


def _describe(days: int | None) -> str:
    return "no TTL" if days == 0 else "a TTL of its own" if days is None else f"{days} days"
