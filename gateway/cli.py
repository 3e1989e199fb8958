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
from gateway.workers import WorkerIdentity

# Short names for the flags people type most.
_ALIASES = {
    "listen": "server.listen",
    "storage": "storage.dsn",
    "workers": "server.workers",
    "admin_token": "admin.token",
}
_ENV_SECRETS = {"GATEWAY_STORAGE_DSN": "storage.dsn", "GATEWAY_ADMIN_TOKEN": "admin.token"}
# Keys whose flag value is taken as text, not parsed as YAML (a cluster named `123` stays text).
_TEXT_KEYS = frozenset(
    {
        "server.listen", "storage.dsn", "storage.database", "storage.cluster", "storage.ca_cert",
        "storage.client_cert", "storage.client_key", "storage.server_hostname",
        "admin.token", "limits.overrides_file",
    }
)


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
    schema = commands.add_parser(
        "schema",
        help="print the DDL the configured store gets (to review it, or to create the tables "
        "on nodes added to a cluster: pipe it into clickhouse-client --multiquery)",
    )
    _add_config_flags(schema)
    commands.add_parser("config-reference", help="print the configuration reference (markdown)")
    commands.add_parser("errors-reference", help="print the errors reference (markdown)")
    return parser


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="YAML configuration file")
    parser.add_argument("--listen", metavar="HOST:PORT", help="alias of --server.listen")
    parser.add_argument("--storage", metavar="DSN", help="alias of --storage.dsn")
    parser.add_argument("--workers", metavar="N", type=int, help="alias of --server.workers")
    parser.add_argument(
        "--admin-token", metavar="TOKEN", help="alias of --admin.token (env GATEWAY_ADMIN_TOKEN)"
    )
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
            kind_is_text = path in _TEXT_KEYS
            result[path] = value if kind_is_text else parse_flag_value(value)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    import os

    args = build_parser().parse_args(argv)
    if args.command in ("config-reference", "errors-reference"):
        from gateway import reference_docs

        if args.command == "config-reference":
            sys.stdout.write(reference_docs.configuration_reference())
        else:
            sys.stdout.write(reference_docs.errors_reference())
        return 0
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
    if args.command == "schema":
        from gateway.storage.schema import Layout, render_schema

        sys.stdout.write(render_schema(Layout.for_config(config.storage)))
        return 0
    if config.server.workers > 1:
        from gateway.workers import supervise

        return supervise(config, args.log_level.upper())
    return serve(config)


def serve(config: Config, worker: WorkerIdentity | None = None) -> int:
    """Run until SIGINT/SIGTERM; in-flight requests get the grace period, then batches flush.

    A worker of a multi-process gateway shares the port with the others (SO_REUSEPORT).
    """
    from gateway.app import create_app, server_options

    host, port = listen_address(config)
    if config.storage.dsn.startswith("chdb://") and directory_in_use(config.storage.dsn):
        # Checked before opening the engine, which would print its own error to stderr.
        print(f"metrics-gateway: {locked_message(config.storage.dsn)}", file=sys.stderr)
        return 1
    try:
        web.run_app(
            create_app(config, worker),
            host=host,
            port=port,
            reuse_port=worker is not None,
            shutdown_timeout=config.server.shutdown_grace_seconds,
            print=lambda text: logging.getLogger("gateway").info(
                "listening on %s (storage %s)", config.server.listen, _safe_dsn(config)
            ),
            access_log=None,
            loop=asyncio.new_event_loop(),
            **server_options(),
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
