"""The demo stack (docker-compose.yml, deploy/, grafana/) is consistent; no Docker engine runs here.

Checked: every file parses, every mounted file exists, hostnames and ports agree between the
services, the gateway's config passes the real `check-config`, and Prometheus' config passes
`promtool check config` when promtool is installed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from gateway.config import listen_address, load
from gateway.storage.schema import Layout, render_schema

ROOT = Path(__file__).parent.parent
COMPOSE = ROOT / "docker-compose.yml"
GATEWAY_CONFIG_IN_CONTAINER = "/etc/metrics-gateway/gateway.yml"


def read_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return read_yaml(COMPOSE)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]  # type: ignore[no-any-return]


def gateway_port() -> int:
    return listen_address(load(ROOT / "deploy" / "gateway.yml"))[1]


def bind_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    mounts = []
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith((".", "/")):
            mounts.append((source, target))
    return mounts


def test_the_stack_has_its_services_with_pinned_images(services: dict[str, Any]) -> None:
    assert set(services) == {"clickhouse", "gateway", "prometheus", "grafana"}
    for name, service in services.items():
        if name != "gateway":
            _, _, tag = service["image"].partition(":")
            assert tag and tag != "latest", f"{name}: pin the image version"
    tag = services["clickhouse"]["image"].split(":")[1]
    assert services["clickhouse"]["image"].startswith("clickhouse/clickhouse-server:")
    # An exact patch release (major.minor.patch.build), not a moving `25.8`.
    assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+", tag), tag
    assert tuple(int(part) for part in tag.split(".")[:2]) >= (25, 8)


def test_the_stack_mounts_nothing_from_the_host_but_this_repository(
    services: dict[str, Any],
) -> None:
    # Host mounts such as `/:/host:ro,rslave` fail on Docker Desktop (macOS, Windows).
    for name, service in services.items():
        for source, _ in bind_mounts(service):
            assert source.startswith("./"), f"{name} mounts {source} from the host"
        assert "pid" not in service and "network_mode" not in service, name
        assert not service.get("privileged"), name


def test_prometheus_scrapes_clickhouse_on_its_metrics_port(services: dict[str, Any]) -> None:
    prometheus = read_yaml(ROOT / "deploy" / "prometheus.yml")
    (job,) = [job for job in prometheus["scrape_configs"] if job["job_name"] == "clickhouse"]
    endpoint = ET.parse(ROOT / "deploy" / "clickhouse" / "gateway.xml").getroot().find("prometheus")
    assert endpoint is not None
    assert job["static_configs"][0]["targets"] == [f"clickhouse:{endpoint.findtext('port')}"]
    assert job.get("metrics_path", "/metrics") == endpoint.findtext("endpoint")
    mounts = dict(bind_mounts(services["clickhouse"]))
    assert mounts["./deploy/clickhouse/gateway.xml"].startswith("/etc/clickhouse-server/config.d/")


# Keys Prometheus 3.x reads but 2.42 refuses (promtool 2.42 would fail on them), and keys 3.x no
# longer reads (which promtool 2.42 would accept): the demo's config avoids both.
ONLY_IN_PROMETHEUS_3 = {
    "protobuf_message", "fallback_scrape_protocol", "always_scrape_classic_histograms",
    "convert_classic_histograms_to_nhcb", "metric_name_validation_scheme",
    "metric_name_escaping_scheme", "scrape_protocols", "round_robin_dns",
}
DROPPED_IN_PROMETHEUS_3 = {"scrape_classic_histograms"}


def keys(node: Any) -> set[str]:
    if isinstance(node, dict):
        return set(node) | {key for value in node.values() for key in keys(value)}
    if isinstance(node, list):
        return {key for item in node for key in keys(item)}
    return set()


def test_the_prometheus_config_means_the_same_to_prometheus_2_and_3(
    services: dict[str, Any],
) -> None:
    used = keys(read_yaml(ROOT / "deploy" / "prometheus.yml"))
    assert not used & (ONLY_IN_PROMETHEUS_3 | DROPPED_IN_PROMETHEUS_3)
    assert services["prometheus"]["image"].startswith("prom/prometheus:v3.")
    # Flags 3.x removed (`--storage.tsdb.retention`, without `.time`) are not used either.
    assert all(
        flag.split("=")[0] != "--storage.tsdb.retention"
        for flag in services["prometheus"]["command"]
    )


def test_the_package_carries_the_embedded_engine_of_the_default_dsn() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "chdb>=4.1.7" in project["dependencies"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install --no-cache-dir ." in dockerfile


def test_without_chdb_a_server_gateway_starts_and_an_embedded_one_says_what_to_install() -> None:
    # A machine where chdb failed to install (an import of it fails).
    code = """
import sys
sys.modules["chdb"] = None  # as if not installed: `import chdb` raises ImportError
from gateway.app import create_app
from gateway.config import ConfigError, load
create_app(load(None, {"storage.dsn": "http://gw:pw@clickhouse:8123/metrics"}))
try:
    load(None)
except ConfigError as exc:
    print(exc)
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert "chdb:// needs the embedded ClickHouse" in result.stdout
    assert "pip install 'chdb>=4.1.7'" in result.stdout


def test_every_mounted_file_exists_and_named_volumes_are_declared(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    for name, service in services.items():
        for source, _ in bind_mounts(service):
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith((".", "/")):
                assert source in compose["volumes"], f"{name}: undeclared volume {source}"
    assert (ROOT / services["gateway"]["build"] / "Dockerfile").exists()


def test_gateway_image_runs_the_mounted_config(services: dict[str, Any]) -> None:
    gateway = services["gateway"]
    assert ("./deploy/gateway.yml", GATEWAY_CONFIG_IN_CONTAINER) in bind_mounts(gateway)
    assert gateway["command"] == ["serve", "--config", GATEWAY_CONFIG_IN_CONTAINER]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install" in dockerfile and 'ENTRYPOINT ["metrics-gateway"]' in dockerfile
    assert f'CMD ["serve", "--config", "{GATEWAY_CONFIG_IN_CONTAINER}"]' in dockerfile
    port = gateway_port()
    assert f"{port}:{port}" in gateway["ports"]
    probe = " ".join(gateway["healthcheck"]["test"])
    assert f"http://127.0.0.1:{port}/-/ready" in probe


def test_gateway_config_passes_check_config() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "check-config", str(ROOT / "deploy" / "gateway.yml")],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "configuration is valid" in result.stdout


def test_gateway_reaches_the_clickhouse_service(services: dict[str, Any]) -> None:
    config = load(ROOT / "deploy" / "gateway.yml")
    dsn = urlsplit(config.storage.dsn)
    clickhouse = services["clickhouse"]["environment"]
    assert (dsn.hostname, dsn.port) == ("clickhouse", 8123)
    assert (dsn.username, dsn.password) == (
        clickhouse["CLICKHOUSE_USER"], clickhouse["CLICKHOUSE_PASSWORD"]
    )
    assert config.storage.database == clickhouse["CLICKHOUSE_DB"]
    assert config.server.workers > 1  # the demo shows the multi-process mode
    assert services["gateway"]["depends_on"]["clickhouse"]["condition"] == "service_healthy"


def test_prometheus_scrapes_and_writes_to_compose_services(services: dict[str, Any]) -> None:
    prometheus = read_yaml(ROOT / "deploy" / "prometheus.yml")
    targets = {
        target
        for job in prometheus["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    }
    for target in targets:
        host, _, _ = target.partition(":")
        assert host in services, f"scrape target {target} is no compose service"
    assert f"gateway:{gateway_port()}" in targets
    (remote,) = prometheus["remote_write"]
    url = urlsplit(remote["url"])
    assert (url.hostname, url.port, url.path) == ("gateway", gateway_port(), "/api/v1/write")
    assert remote["headers"]["X-Scope-OrgID"]
    mounts = bind_mounts(services["prometheus"])
    assert ("./deploy/prometheus.yml", "/etc/prometheus/prometheus.yml") in mounts


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_the_prometheus_config() -> None:
    result = subprocess.run(
        ["promtool", "check", "config", str(ROOT / "deploy" / "prometheus.yml")],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_grafana_datasource_points_at_the_gateway_with_a_tenant(services: dict[str, Any]) -> None:
    provisioning = read_yaml(ROOT / "grafana" / "provisioning" / "datasources" / "gateway.yml")
    (datasource,) = provisioning["datasources"]
    url = urlsplit(datasource["url"])
    assert (datasource["type"], url.hostname, url.port) == ("prometheus", "gateway", gateway_port())
    assert datasource["jsonData"]["httpMethod"] == "POST"
    assert datasource["jsonData"]["httpHeaderName1"] == "X-Scope-OrgID"
    assert datasource["secureJsonData"]["httpHeaderValue1"]
    prometheus = read_yaml(ROOT / "deploy" / "prometheus.yml")
    tenant = prometheus["remote_write"][0]["headers"]["X-Scope-OrgID"]
    assert datasource["secureJsonData"]["httpHeaderValue1"] == tenant  # sees what is written


def test_grafana_loads_the_shipped_dashboards(services: dict[str, Any]) -> None:
    mounts = dict(bind_mounts(services["grafana"]))
    providers = read_yaml(ROOT / "grafana" / "provisioning" / "dashboards" / "gateway.yml")
    (provider,) = providers["providers"]
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]
    datasource_uid = read_yaml(
        ROOT / "grafana" / "provisioning" / "datasources" / "gateway.yml"
    )["datasources"][0]["uid"]
    uids = set()
    for path in (ROOT / "grafana" / "dashboards").glob("*.json"):
        dashboard = json.loads(path.read_text())
        uids.add(dashboard["uid"])
        (variable,) = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
        assert variable["current"]["value"] == datasource_uid
        assert all(panel["datasource"]["uid"] == "${datasource}" for panel in dashboard["panels"])
        ids = [panel["id"] for panel in dashboard["panels"]]
        assert len(ids) == len(set(ids)), f"{path.name}: duplicate panel ids"
    assert len(uids) == 2


def test_services_wait_for_healthy_dependencies(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            assert "healthcheck" in services[dependency], f"{dependency} has no healthcheck"
            assert condition["condition"] == "service_healthy"
    assert re.search(r"/-/ready", " ".join(services["gateway"]["healthcheck"]["test"]))


# -- the example ClickHouse cluster (deploy/clickhouse-cluster/) ------------------------------

CLUSTER_DIR = ROOT / "deploy" / "clickhouse-cluster"
# Macros ClickHouse fills in itself in a Replicated table's path.
BUILTIN_MACROS = {"database", "table", "uuid"}


def xml(path: Path) -> ET.Element:
    return ET.parse(path).getroot()  # raises on a file that is not well-formed


def cluster_gateway_config() -> Any:
    return load(CLUSTER_DIR / "gateway.yml")


def test_every_cluster_file_parses_and_is_a_clickhouse_config() -> None:
    files = sorted(CLUSTER_DIR.rglob("*.xml"))
    assert len(files) >= 9
    for path in files:
        assert xml(path).tag == "clickhouse", path


def test_the_cluster_gateway_config_names_the_example_cluster() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "check-config", str(CLUSTER_DIR / "gateway.yml")],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    config = cluster_gateway_config()
    clusters = xml(CLUSTER_DIR / "config.d" / "cluster.xml").find("remote_servers")
    assert clusters is not None and clusters.get("replace") == "true"
    assert [c.tag for c in clusters] == [config.storage.cluster]


def cluster_shards() -> list[list[str]]:
    """Replica hosts of each shard of the example cluster."""
    clusters = xml(CLUSTER_DIR / "config.d" / "cluster.xml").find("remote_servers")
    assert clusters is not None
    (cluster,) = list(clusters)
    shards = []
    for shard in cluster.findall("shard"):
        # Without it a Distributed insert writes every replica and replication copies again.
        assert shard.findtext("internal_replication") == "true"
        shards.append([replica.findtext("host") or "" for replica in shard.findall("replica")])
    return shards


def test_every_shard_replicates_internally_and_every_node_has_its_macros() -> None:
    shards = cluster_shards()
    assert len(shards) >= 2 and all(len(replicas) >= 2 for replicas in shards)
    hosts = [host for replicas in shards for host in replicas]
    macro_files = {path.stem: path for path in (CLUSTER_DIR / "macros").glob("*.xml")}
    assert sorted(macro_files) == sorted(hosts)
    # The macros the gateway's cluster DDL uses, as ClickHouse will expand them.
    layout = Layout.for_config(cluster_gateway_config().storage)
    used = set(re.findall(r"\{(\w+)\}", render_schema(layout))) - BUILTIN_MACROS
    assert used == {"shard", "replica"}
    shard_of: dict[str, str] = {}
    replica_names = []
    for index, replicas in enumerate(shards):
        for host in replicas:
            macros = xml(macro_files[host]).find("macros")
            assert macros is not None, host
            values = {element.tag: element.text for element in macros}
            assert used <= set(values), f"{host} lacks macros {used - set(values)}"
            shard_of[host] = values["shard"] or ""
            replica_names.append(values["replica"])
        # Replicas of a shard share its Keeper path; different shards never do.
        assert len({shard_of[host] for host in replicas}) == 1, replicas
        assert shard_of[replicas[0]] not in {shard_of[h] for s in shards[:index] for h in s}
    assert len(set(replica_names)) == len(replica_names)


def test_keeper_nodes_agree_with_each_other_and_with_the_clickhouse_nodes() -> None:
    keepers = sorted((CLUSTER_DIR / "keeper").glob("*.xml"))
    assert len(keepers) % 2 == 1  # a quorum survives the loss of (n-1)/2 nodes
    raft = set()
    ids = []
    for path in keepers:
        server = xml(path).find("keeper_server")
        assert server is not None, path
        ids.append(server.findtext("server_id"))
        members = tuple(
            (s.findtext("id"), s.findtext("hostname"), s.findtext("port"))
            for s in server.iterfind("raft_configuration/server")
        )
        raft.add(members)
        # Each keeper's own id is in the shared raft configuration, with its own host name.
        assert (ids[-1], path.stem) in {(m[0], m[1]) for m in members}
        client_port = server.findtext("tcp_port")
    (members,) = raft  # the same raft configuration everywhere
    assert sorted(ids) == sorted(m[0] for m in members) and len(set(ids)) == len(ids)
    zookeeper = xml(CLUSTER_DIR / "config.d" / "cluster.xml").find("zookeeper")
    assert zookeeper is not None
    nodes = {(n.findtext("host"), n.findtext("port")) for n in zookeeper.iterfind("node")}
    assert nodes == {(m[1], client_port) for m in members}
