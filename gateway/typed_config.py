"""A tree of frozen dataclasses built from nested mappings (YAML), strictly.

Unknown keys and values of the wrong type are errors naming their dotted path; a field's help
text is the string literal under it (an attribute docstring). What the configuration holds and
which values are valid is gateway.config; this is only how such a tree is read.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import itertools
import textwrap
import types
import typing
from typing import Any

import yaml


class ConfigError(ValueError):
    """The configuration is invalid; the message names the key."""


def leaf_paths(cls: type[Any], prefix: str = "") -> list[tuple[str, str]]:
    """Every leaf field of a dataclass tree as (dotted path, its attribute docstring)."""
    result: list[tuple[str, str]] = []
    docs = _field_docs(cls)
    for item in dataclasses.fields(cls):
        path = f"{prefix}{item.name}"
        kind = _resolved_types(cls)[item.name]
        if dataclasses.is_dataclass(kind):
            result.extend(leaf_paths(typing.cast(type[Any], kind), path + "."))
        else:
            result.append((path, docs.get(item.name, "")))
    return result


def parse_flag_value(text: str) -> Any:
    """Flag values are YAML, so `--auth.tenants '[{tenant: a, bearer_token: t}]'` works."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Put `value` at a dotted path (`storage.dsn`) of nested mappings, making sections."""
    *parents, leaf = dotted.split(".")
    node = data
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{dotted}: {part} is not a section")
        node = child
    node[leaf] = value


def _resolved_types(cls: type[Any]) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def build(cls: type[Any], data: Any, path: str = "") -> Any:
    """An instance of the dataclass `cls` from nested mappings: unknown keys and values of the
    wrong type are refused with a ConfigError naming their path."""
    where = path or "the configuration"
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = _resolved_types(cls)
    known = {item.name for item in dataclasses.fields(cls)}
    for key in data:
        if key not in known:
            where_key = f"{path}.{key}" if path else str(key)
            raise ConfigError(f"{where_key}: unknown key (known: {', '.join(sorted(known))})")
    values = {
        key: _convert(hints[key], value, f"{path + '.' if path else ''}{key}")
        for key, value in data.items()
    }
    return cls(**values)


def _convert(kind: Any, value: Any, path: str) -> Any:
    if dataclasses.is_dataclass(kind):
        return build(typing.cast(type[Any], kind), value, path)
    origin = typing.get_origin(kind)
    if origin is dict:
        (key_kind, item_kind) = typing.get_args(kind)
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {type(value).__name__}")
        return {
            _convert(key_kind, key, f"{path}.{key}"): _convert(item_kind, item, f"{path}.{key}")
            for key, item in value.items()
        }
    if origin is tuple:
        (item_kind, _) = typing.get_args(kind)
        if not isinstance(value, list):
            raise ConfigError(f"{path}: expected a list, got {type(value).__name__}")
        return tuple(_convert(item_kind, item, f"{path}[{i}]") for i, item in enumerate(value))
    if origin is types.UnionType:
        # `X | None`: null (or absent) keeps None, meaning "not set, use the fallback".
        members = [arg for arg in typing.get_args(kind) if arg is not type(None)]
        if len(members) != 1 or len(typing.get_args(kind)) != 2:
            raise ConfigError(f"{path}: unsupported type")
        return None if value is None else _convert(members[0], value, path)
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {value!r}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        return float(value)
    if kind is str:
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return str(value)
    raise ConfigError(f"{path}: unsupported type {kind}")


def _field_docs(cls: type[Any]) -> dict[str, str]:
    """Attribute docstrings (the string literal under each field), for flag help and docs."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError):
        return {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    docs: dict[str, str] = {}
    for first, second in itertools.pairwise(body):
        if (
            isinstance(first, ast.AnnAssign)
            and isinstance(first.target, ast.Name)
            and isinstance(second, ast.Expr)
            and isinstance(second.value, ast.Constant)
            and isinstance(second.value.value, str)
        ):
            docs[first.target.id] = second.value.value
    return docs
