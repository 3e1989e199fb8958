"""Reads one tenant's metric metadata (type, help, unit per metric family)."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.storage.clickhouse import Client
from gateway.storage.schema import Layout
from gateway.storage.sql import Params


@dataclass(frozen=True, slots=True)
class FamilyMetadata:
    metric_family: str
    type: str
    help: str
    unit: str


def read_metadata(
    client: Client, layout: Layout, tenant: str, metric: str, limit: int
) -> list[FamilyMetadata]:
    """The latest metadata of each family (or of `metric` only), sorted; limit < 0: all."""
    params = Params()
    where = f"tenant = {params.add(tenant, 'String')}"
    if metric:
        where += f" AND metric_family = {params.add(metric, 'String')}"
    limit_sql = f"LIMIT {params.add(limit, 'UInt64')}" if limit >= 0 else ""
    # Rows of a family are replaced by newer ones only when parts merge; argMax picks the
    # newest now.
    sql = f"""
        SELECT metric_family, argMax(tuple(type, help, unit), updated_at) AS latest
        FROM {layout.metadata_table} WHERE {where}
        GROUP BY metric_family ORDER BY metric_family {limit_sql}
    """
    rows = client.query(sql, parameters=params.values).result_rows
    return [
        FamilyMetadata(str(family), str(latest[0]), str(latest[1]), str(latest[2]))
        for family, latest in rows
    ]
