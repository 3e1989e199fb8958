"""The schema's DDL per deployment mode, compared with golden files (UPDATE_GOLDEN=1 rewrites)."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import pytest

from gateway.config import load
from gateway.storage.schema import Layout, migrations, render_schema

GOLDEN = Path(__file__).parent / "golden"
# The same options in every mode, so the files differ only by what the mode changes.
COMMON = {"storage.retention_days": 30, "storage.sample_shards": 2}
MODES = {
    "embedded": {"storage.dsn": "chdb:///var/lib/metrics-gateway", "storage.database": "metrics"},
    "server": {"storage.dsn": "https://gateway:secret@clickhouse:8443/metrics"},
    "cluster": {
        "storage.dsn": "http://gateway:secret@clickhouse:8123/metrics",
        "storage.cluster": "metrics_cluster",
    },
}


def layout_for(mode: str) -> Layout:
    return Layout.for_config(load(None, {**COMMON, **MODES[mode]}).storage)


@pytest.mark.parametrize("mode", sorted(MODES))
def test_ddl_matches_the_golden_file(mode: str) -> None:
    rendered = render_schema(layout_for(mode))
    path = GOLDEN / f"{mode}.sql"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(rendered)
    assert path.exists(), f"{path} is missing: run UPDATE_GOLDEN=1 pytest {__file__}"
    assert rendered == path.read_text(), (
        f"the {mode} DDL changed: review it, then run UPDATE_GOLDEN=1 pytest {__file__}"
    )


def test_one_node_modes_share_their_ddl() -> None:
    # The embedded engine runs exactly what a single server runs (the embedded DDL is executed
    # by tests/storage/test_schema.py), so single-server mode is covered by the same DDL.
    assert render_schema(layout_for("embedded")) == render_schema(layout_for("server"))


def test_cluster_tables_are_replicated_and_distributed_by_series() -> None:
    layout = layout_for("cluster")
    statements = [s for version in migrations(layout).values() for s in version]
    locals_ = {m for s in statements for m in re.findall(r"TABLE IF NOT EXISTS (\S+_local)", s)}
    distributed = re.findall(
        r"TABLE IF NOT EXISTS (\S+) ON CLUSTER metrics_cluster AS (\S+)\n"
        r"ENGINE = Distributed\(metrics_cluster, metrics, (\S+), (.+)\)",
        "\n".join(statements),
    )
    assert {d[1] for d in distributed} == locals_
    # Every DDL statement runs on the whole cluster; data copies go through Distributed tables.
    ddl = [s for s in statements if not s.startswith("INSERT")]
    assert all(s.count(" ON CLUSTER metrics_cluster") == 1 for s in ddl)
    assert all(
        "Replicated" in s and "'/clickhouse/tables/{shard}/{database}/{table}', '{replica}'" in s
        for s in statements
        if s.startswith("CREATE TABLE") and "_local ON CLUSTER" in s.split("\n")[0]
    )
    keys = {name: key for name, _, _, key in distributed}
    series_keyed = [layout.series_table, layout.labels_table, *layout.samples_tables]
    assert {keys[name] for name in series_keyed} == {"intHash64(series_id)"}
    # Reads and writes name the Distributed tables; the local ones hold a node's rows.
    assert layout.series_table == "metrics.series"
    assert layout.local_table("series") == "metrics.series_local"
    assert layout_for("server").local_table("series") == "metrics.series"


def test_cluster_alterations_change_local_tables_and_the_distributed_columns() -> None:
    one_node, cluster = layout_for("server"), layout_for("cluster")
    for version, statements in migrations(one_node).items():
        alters = [s for s in statements if s.startswith("ALTER TABLE")]
        clustered = [s for s in migrations(cluster)[version] if s.startswith("ALTER TABLE")]
        for alter in alters:
            table = alter.split()[2]  # metrics.<name>
            names = (f"{table}_local", table)
            local, *distributed = [s for s in clustered if s.split()[2] in names]
            # The local table gets exactly the one-node change, on every node.
            on_cluster = f"{table}_local ON CLUSTER metrics_cluster\n"
            assert local == alter.replace(f"{table}\n", on_cluster)
            actions = alter.split("\n")[1:]
            columns = [a.rstrip(",") for a in actions if "ADD COLUMN" in a]
            if columns:
                (follow,) = distributed
                assert follow.startswith(f"ALTER TABLE {table} ON CLUSTER metrics_cluster\n")
                assert [a.rstrip(",") for a in follow.split("\n")[1:]] == columns
            else:
                assert distributed == []
    assert any(s.startswith("ALTER TABLE") for v in migrations(cluster).values() for s in v)


@pytest.mark.parametrize("mode", sorted(MODES))
def test_retention_changes_are_rendered_per_mode(mode: str) -> None:
    from gateway.storage.schema import retention_statements

    layout = layout_for(mode)
    keep = retention_statements(layout, 1)
    forever = retention_statements(dataclasses.replace(layout, retention_days=0), 1)
    local = "metrics.samples_1_local ON CLUSTER metrics_cluster" if layout.cluster else (
        "metrics.samples_1")
    # Only the table holding rows has a TTL: never the Distributed table.
    assert keep == [
        f"ALTER TABLE {local}\n    MODIFY TTL toDateTime(timestamp) + INTERVAL 30 DAY DELETE"
    ]
    assert forever == [f"ALTER TABLE {local}\n    REMOVE TTL"]


def test_the_schema_command_prints_the_configured_stores_ddl(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from gateway.cli import main

    overrides = [f"--{key}={value}" for key, value in {**COMMON, **MODES["cluster"]}.items()]
    assert main(["schema", *overrides]) == 0
    assert capsys.readouterr().out == (GOLDEN / "cluster.sql").read_text()
