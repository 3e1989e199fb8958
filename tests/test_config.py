"""Configuration loading, strict validation, flags and check-config."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli import build_parser, main, overrides_from
from gateway.config import ConfigError, flag_paths, load


def test_defaults_give_a_working_gateway() -> None:
    config = load(None)
    assert config.server.listen == "127.0.0.1:9201"
    assert config.storage.dsn == "chdb://" + os.path.abspath("./data/clickhouse")
    assert config.auth.default_tenant == "anonymous"


def test_yaml_file_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yml"
    path.write_text("server:\n  listen: 0.0.0.0:9999\ningest:\n  batch_max_rows: 5000\n")
    config = load(path, {"ingest.batch_max_delay_ms": 50})
    assert config.server.listen == "0.0.0.0:9999"
    assert config.ingest.batch_max_rows == 5000
    assert config.ingest.batch_max_delay_ms == 50


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("storage:\n  dsnn: x\n", "storage.dsnn: unknown key"),
        ("nope: 1\n", "nope: unknown key"),
        ("ingest:\n  batch_max_rows: many\n", "ingest.batch_max_rows: expected an integer"),
        ("ingest:\n  batch_max_rows: true\n", "ingest.batch_max_rows: expected an integer"),
        ("server:\n  listen: nowhere\n", "server.listen"),
        ("storage:\n  dsn: postgres://x\n", "storage.dsn"),
        ("storage:\n  sample_shards: 0\n", "storage.sample_shards"),
        ("auth:\n  tenants: [{tenant: '..', bearer_token: t}]\n", "auth.tenants[0].tenant"),
        ("auth:\n  tenants: [{tenant: a}]\n", "exactly one of bearer_token or username"),
        (
            "auth:\n  tenants: [{tenant: a, bearer_token: t}, {tenant: b, bearer_token: t}]\n",
            "used twice",
        ),
        ("- a\n- b\n", "top level must be a mapping"),
        ("server: [\n", "not valid YAML"),
    ],
)
def test_invalid_configs_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load(path)


def test_every_key_is_a_flag() -> None:
    parser = build_parser()
    paths = [path for path, _ in flag_paths()]
    assert "storage.dsn" in paths and "ingest.batch_max_rows" in paths
    argv = ["serve", "--config", "x.yml", "--listen", "127.0.0.1:1", "--storage", "chdb:///d"]
    argv += [f"--{path}" for path in ("ingest.batch_max_rows",)] + ["7"]
    argv += ["--auth.tenants", "[{tenant: a, bearer_token: t}]"]
    args = parser.parse_args(argv)
    overrides = overrides_from(args, {})
    assert overrides == {
        "server.listen": "127.0.0.1:1",
        "storage.dsn": "chdb:///d",
        "ingest.batch_max_rows": 7,
        "auth.tenants": [{"tenant": "a", "bearer_token": "t"}],
    }
    assert args.config == "x.yml"


def test_check_config_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.yml"
    good.write_text("server:\n  listen: 127.0.0.1:9300\n")
    assert main(["check-config", str(good)]) == 0
    bad = tmp_path / "bad.yml"
    bad.write_text("server:\n  lisen: x\n")
    assert main(["check-config", str(bad)]) == 1
    assert "server.lisen: unknown key" in capsys.readouterr().err


def test_serve_refuses_an_invalid_config_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("storage:\n  threads: 0\n")
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "serve", "--config", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "storage.threads" in result.stderr
