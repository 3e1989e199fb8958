"""Server and cluster mode: DSN handling, TLS options, refusals, and an unreachable server."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, load
from gateway.storage.clickhouse import CLUSTER_SETTINGS, ClickHouse, StorageError, server_dsn
from gateway.storage.schema import Layout


def test_the_dsn_path_names_the_database() -> None:
    config = load(None, {"storage.dsn": "https://u:p%40ss@ch.example:8443/prod_metrics"})
    assert config.storage.database == "prod_metrics"
    assert config.storage.dsn == "https://u:p%40ss@ch.example:8443/prod_metrics"
    without_path = load(None, {"storage.dsn": "http://ch:8123", "storage.database": "m2"})
    assert without_path.storage.database == "m2"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"storage.dsn": "http://ch:8123/a/b"}, "one database name"),
        ({"storage.dsn": "http://ch:8123/bad-name"}, "must be an identifier"),
        ({"storage.dsn": "http://ch:port/db"}, "storage.dsn"),
        ({"storage.dsn": "http:///db"}, "needs a host"),
        ({"storage.dsn": "chdb:///tmp/x", "storage.cluster": "c"}, "storage.cluster needs"),
        ({"storage.dsn": "http://ch:8123/db", "storage.cluster": "a-b"}, "storage.cluster"),
        ({"storage.dsn": "https://ch/db", "storage.ca_cert": "/nonexistent.pem"}, "ca_cert"),
        ({"storage.dsn": "https://u@ch/db", "storage.client_cert": "/no.pem"}, "client_cert: no"),
        ({"storage.dsn": "https://ch/db", "storage.client_key": "/no.key"}, "client_key: no such"),
        ({"storage.dsn": "https://ch/db", "storage.server_hostname": "a b"}, "not a host name"),
        ({"storage.dsn": "https://ch/db", "storage.server_hostname": "-x.io"}, "not a host name"),
        ({"storage.dsn": "http://ch/db", "storage.server_hostname": "ch.io"}, "needs an https://"),
        ({"storage.dsn": "chdb:///tmp/x", "storage.server_hostname": "ch.io"}, "needs an https://"),
        ({"storage.dsn": "chdb:///tmp/x", "server.workers": 3}, "server.workers is 3"),
        ({"storage.dsn": "http://ch:8123/db", "server.workers": 0}, "server.workers must be"),
    ],
)
def test_invalid_server_settings_are_refused(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(None, overrides)


@pytest.mark.parametrize(
    ("dsn", "extra", "message"),
    [
        ("http://u:p@ch:8123/db", {"storage.client_cert": "CERT"}, "client_cert needs an https://"),
        ("http://u:p@ch:8123/db", {"storage.ca_cert": "CERT"}, "ca_cert needs an https://"),
        ("https://u:p@ch/db", {"storage.client_key": "CERT"}, "client_key needs storage.client"),
        ("https://ch/db", {"storage.client_cert": "CERT"}, "the DSN needs a user"),
    ],
)
def test_tls_files_need_https_and_each_other(
    tmp_path: Path, dsn: str, extra: dict[str, str], message: str
) -> None:
    pem = tmp_path / "file.pem"
    pem.write_text("checked to exist; parsed at connection\n")
    overrides = {"storage.dsn": dsn, **{k: str(pem) for k in extra}}
    with pytest.raises(ConfigError, match=message):
        load(None, overrides)


def test_tls_options_reach_the_client(tmp_path: Path) -> None:
    cert, key, ca = (tmp_path / name for name in ("client.pem", "client.key", "ca.pem"))
    for path in (cert, key, ca):
        path.write_text("x\n")
    common = {
        "storage.client_cert": str(cert),
        "storage.client_key": str(key),
        "storage.ca_cert": str(ca),
        "storage.server_hostname": "ch.internal",
    }
    modes = (("https://gw:pw@10.0.0.5:8123/m", "strict"), ("https://gw@10.0.0.5/m", "mutual"))
    for dsn, mode in modes:
        store = ClickHouse.for_config(load(None, {"storage.dsn": dsn, **common}).storage)
        try:
            assert store._options == {
                "interface": "https",  # on any port: clickhouse-connect guesses from 443/8443
                "settings": {},
                "verify": True,
                "ca_cert": str(ca),
                "client_cert": str(cert),
                "client_cert_key": str(key),
                "tls_mode": mode,
                "server_host_name": "ch.internal",
            }
        finally:
            store.close()
    plain = ClickHouse("http://gw:pw@ch:8443/m", threads=1)
    try:
        assert plain._options["interface"] == "http"  # not TLS although the port is 8443
    finally:
        plain.close()


def test_connect_dsn_drops_only_the_database() -> None:
    # The database may not exist before migrate creates it; statements name it themselves.
    assert server_dsn("https://u:p@h:8443/db?compress=1") == "https://u:p@h:8443?compress=1"
    assert server_dsn("http://h:8123") == "http://h:8123"


def test_cluster_configuration_gives_a_cluster_layout_and_session_settings(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not parsed until a connection is made\n")
    config = load(
        None,
        {
            "storage.dsn": "https://gw:pw@ch:8443/metrics",
            "storage.cluster": "main",
            "storage.ca_cert": str(ca),
            "storage.tls_verify": False,
            "server.workers": 4,
        },
    )
    layout = Layout.for_config(config.storage)
    assert layout == Layout("metrics", 2, 0, cluster="main")
    store = ClickHouse.for_config(config.storage)
    try:
        assert store._options == {
            "interface": "https",
            "verify": False,
            "ca_cert": str(ca),
            "settings": dict(CLUSTER_SETTINGS),
        }
    finally:
        store.close()


def test_an_unreachable_server_is_a_storage_error_without_the_password() -> None:
    store = ClickHouse("http://gw:hunter2@127.0.0.1:9/metrics", threads=1)
    try:
        with pytest.raises(StorageError) as caught:
            store.run_sync(lambda client: client.command("SELECT 1"))
    finally:
        store.close()
    message = str(caught.value)
    assert "cannot connect to http://gw:***@127.0.0.1:9/metrics" in message
    assert "hunter2" not in message and "query_id" not in message


def test_a_server_older_than_the_minimum_is_refused() -> None:
    from gateway.storage.migrations import SchemaError, check_server_version

    check_server_version("25.8.2.29")
    check_server_version("26.9.1.1")  # the embedded engine here
    with pytest.raises(SchemaError, match=r"ClickHouse 18\.16\.1 is too old: .* 25\.8 or newer"):
        check_server_version("18.16.1")
