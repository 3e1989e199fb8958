"""label_replace, label_join and the sort family: functions that rearrange series."""

from __future__ import annotations

import re

import numpy as np
import re2

from gateway.model.labels import METRIC_NAME, Labels
from gateway.model.matchers import anchor
from gateway.promql.errors import ExecutionError
from gateway.promql.functions.base import CallArgs, Function
from gateway.promql.gostrings import is_valid_utf8
from gateway.promql.types import Vector

_NAME_CHARS = re.compile(r"[A-Za-z0-9_]+")


def expand(template: str, match: re2._Match) -> str:
    """Expand `$1`, `${1}`, `$name`, `${name}` and `$$` the way Go's regexp.Expand does."""
    out: list[str] = []
    i = 0
    while i < len(template):
        char = template[i]
        if char != "$" or i + 1 >= len(template):
            out.append(char)
            i += 1
            continue
        nxt = template[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
            continue
        if nxt == "{":
            close = template.find("}", i + 2)
            name = template[i + 2 : close] if close > 0 else ""
            if not name or not _NAME_CHARS.fullmatch(name):
                out.append(char)
                i += 1
                continue
            i = close + 1
        else:
            found = _NAME_CHARS.match(template, i + 1)
            if found is None:
                out.append(char)
                i += 1
                continue
            name = found.group(0)
            i = found.end()
        out.append(_group(match, name))
    return "".join(out)


def _group(match: re2._Match, name: str) -> str:
    try:
        value = match.group(int(name) if name.isdigit() else name)
    except (IndexError, KeyError, re2.error, ValueError):
        return ""
    return value or ""


def _set_label(labels: Labels, name: str, value: str) -> Labels:
    rest = [pair for pair in labels if pair[0] != name]
    if value:
        rest.append((name, value))
    return tuple(sorted(rest))


def _check_name(name: str, fn: str) -> None:
    if not name or not is_valid_utf8(name):
        raise ExecutionError(f"invalid destination label name in {fn}(): {name}")


def _label_replace(call: CallArgs) -> Vector:
    vector = call.vector(0)
    dst, replacement = call.string(1), call.string(2)
    src, pattern = call.string(3), call.string(4)
    try:
        regex = re2.compile(anchor(pattern))
    except re2.error as exc:
        raise ExecutionError(f"invalid regular expression in label_replace(): {pattern}") from exc
    _check_name(dst, "label_replace")
    labels: list[Labels] = []
    for i, row in enumerate(vector.labels):
        if i & 1023 == 0:
            call.ctx.check_deadline()
        match = regex.fullmatch(dict(row).get(src, ""))
        labels.append(row if match is None else _set_label(row, dst, expand(replacement, match)))
    return _relabelled(vector, labels, dst)


def _label_join(call: CallArgs) -> Vector:
    vector = call.vector(0)
    dst, separator = call.string(1), call.string(2)
    sources = [call.string(i) for i in range(3, len(call.args))]
    _check_name(dst, "label_join")
    labels = []
    for i, row in enumerate(vector.labels):
        if i & 1023 == 0:
            call.ctx.check_deadline()
        current = dict(row)
        joined = separator.join(current.get(name, "") for name in sources)
        labels.append(_set_label(row, dst, joined))
    return _relabelled(vector, labels, dst)


def _relabelled(vector: Vector, labels: list[Labels], dst: str) -> Vector:
    drop = vector.drop_name.copy()
    if dst == METRIC_NAME:
        # A name written on purpose is kept even when an earlier step marked it for removal.
        drop[:] = False
    return Vector(labels, vector.values, vector.present, drop)


def _sort_warning(call: CallArgs) -> bool:
    if call.ctx.is_range:
        call.ctx.annotations.warn(
            "sort is ineffective for range queries since results are always ordered by labels"
        )
        return True
    return False


def _sort(descending: bool) -> Function:
    def impl(call: CallArgs) -> Vector:
        vector = call.vector(0)
        if _sort_warning(call) or vector.steps != 1:
            return vector
        rows = np.flatnonzero(vector.present[:, 0]).tolist()
        values = vector.values[:, 0]

        def key(row: int) -> tuple[int, float]:
            value = float(values[row])
            # NaNs go last either way.
            if value != value:
                return (1, 0.0)
            return (0, -value if descending else value)

        return vector.take(sorted(rows, key=key))

    return impl


def natural_key(value: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key comparing digit runs as numbers ("a2" < "a10")."""
    parts = re.findall(r"\d+|\D+", value)
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts)


def _sort_by_label(descending: bool) -> Function:
    def impl(call: CallArgs) -> Vector:
        vector = call.vector(0)
        names = [call.string(i) for i in range(1, len(call.args))]
        if _sort_warning(call) or vector.steps != 1:
            return vector
        rows = np.flatnonzero(vector.present[:, 0]).tolist()

        def key(row: int) -> tuple[object, ...]:
            current = dict(vector.labels[row])
            return (
                tuple(natural_key(current.get(name, "")) for name in names),
                vector.labels[row],
            )

        return vector.take(sorted(rows, key=key, reverse=descending))

    return impl


FUNCTIONS: dict[str, Function] = {
    "label_replace": _label_replace,
    "label_join": _label_join,
    "sort": _sort(False),
    "sort_desc": _sort(True),
    "sort_by_label": _sort_by_label(False),
    "sort_by_label_desc": _sort_by_label(True),
}
