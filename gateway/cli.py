"""Command line: `metrics-gateway serve` and `metrics-gateway check-config`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from gateway import __version__
from gateway.config import Config, ConfigError, flag_paths, listen_address, load, parse_flag_value
from gateway.storage.clickhouse import StorageLocked, directory_in_use, locked_message

# Short names for the flags people type most.
_ALIASES = {"listen": "server.listen", "storage": "storage.dsn"}
_ENV_SECRETS = {"GATEWAY_STORAGE_DSN": "storage.dsn"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="metrics-gateway",
        description="Prometheus-compatible multi-tenant metrics gateway on ClickHouse.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the gateway")
    _add_config_flags(serve)
    check = commands.add_parser("check-config", help="validate a configuration file and exit")
    check.add_argument("file", help="YAML configuration file")
    return parser


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="YAML configuration file")
    parser.add_argument("--listen", metavar="HOST:PORT", help="alias of --server.listen")
    parser.add_argument("--storage", metavar="DSN", help="alias of --storage.dsn")
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    group = parser.add_argument_group("configuration keys (override the file)")
    for path, help_text in flag_paths():
        group.add_argument(f"--{path}", dest=f"key:{path}", metavar="VALUE", help=help_text)


def overrides_from(args: argparse.Namespace, environ: dict[str, str]) -> dict[str, Any]:
    """Dotted-key overrides: environment first, then aliases, then explicit key flags."""
    result: dict[str, Any] = {}
    for variable, path in _ENV_SECRETS.items():
        if environ.get(variable):
            result[path] = environ[variable]
    for alias, path in _ALIASES.items():
        value = getattr(args, alias, None)
        if value is not None:
            result[path] = value
    for dest, value in vars(args).items():
        if dest.startswith("key:") and value is not None:
            path = dest.removeprefix("key:")
            kind_is_text = path in ("server.listen", "storage.dsn", "storage.database")
            result[path] = value if kind_is_text else parse_flag_value(value)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    import os

    args = build_parser().parse_args(argv)
    if args.command == "check-config":
        try:
            load(args.file)
        except ConfigError as exc:
            print(f"metrics-gateway: {args.file}: {exc}", file=sys.stderr)
            return 1
        print(f"{args.file}: configuration is valid")
        return 0
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        config = load(args.config, overrides_from(args, dict(os.environ)))
    except ConfigError as exc:
        print(f"metrics-gateway: invalid configuration: {exc}", file=sys.stderr)
        return 2
    return serve(config)


def serve(config: Config) -> int:
    """Run until SIGINT/SIGTERM; in-flight requests get the grace period, then batches flush."""
    from gateway.app import create_app

    host, port = listen_address(config)
    if config.storage.dsn.startswith("chdb://") and directory_in_use(config.storage.dsn):
        # Checked before opening the engine, which would print its own error to stderr.
        print(f"metrics-gateway: {locked_message(config.storage.dsn)}", file=sys.stderr)
        return 1
    try:
        web.run_app(
            create_app(config),
            host=host,
            port=port,
            shutdown_timeout=config.server.shutdown_grace_seconds,
            print=lambda text: logging.getLogger("gateway").info(
                "listening on %s (storage %s)", config.server.listen, _safe_dsn(config)
            ),
            access_log=None,
            loop=asyncio.new_event_loop(),
        )
    except StorageLocked as exc:
        print(f"metrics-gateway: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"metrics-gateway: cannot listen on {config.server.listen}: {exc}", file=sys.stderr)
        return 1
    return 0


def _safe_dsn(config: Config) -> str:
    from gateway.storage.clickhouse import _redact

    return _redact(config.storage.dsn)
