"""A reader for Prometheus' PromQL test-script language (`*.test` files); see promqlcheck.

Commands: `load <interval>` (and `load_with_nhcb`), `clear`, `eval instant at <t> <expr>`,
`eval range from <t0> to <t1> step <s> <expr>`, the legacy `eval_fail`/`eval_warn`/`eval_info`/
`eval_ordered` forms, and `expect fail|warn|no_warn|info|no_info|ordered|string|range vector`
lines under an eval. Values compare with Prometheus' relative tolerance of 1e-6.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import promql_parser as pp

from gateway.model.labels import METRIC_NAME, Labels
from gateway.model.matchers import Matcher
from gateway.promql.types import STALE_NAN

_INSTANT = re.compile(r"^eval(?:_(\w+))?\s+instant\s+at\s+(\S+)\s+(.+)$")
_RANGE = re.compile(r"^eval(?:_(\w+))?\s+range\s+from\s+(\S+)\s+to\s+(\S+)\s+step\s+(\S+)\s+(.+)$")
_RANGE_VECTOR = re.compile(r"^range vector from\s+(\S+)\s+to\s+(\S+)\s+step\s+(\S+)$")

_DURATION_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_UNITS_MS = {
    "ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000,
    "y": 31_536_000_000,
}

Point = float | None  # None = no sample at this position


@dataclass
class SeriesLine:
    labels: Labels
    values: list[Point]
    native: bool = False


@dataclass
class Eval:
    """One eval command with what it expects."""

    line: int
    query: str
    start_ms: int
    end_ms: int
    step_ms: int  # 0 = instant query
    expected: list[SeriesLine] = field(default_factory=list)
    scalar: float | None = None
    string: str | None = None
    fail: bool = False
    fail_msg: str | None = None
    fail_regex: str | None = None
    ordered: bool = False
    warn: bool | None = None
    warn_msg: str | None = None
    info: bool | None = None
    info_msg: str | None = None
    range_vector: tuple[int, int, int] | None = None
    native: bool = False


@dataclass
class Load:
    interval_ms: int
    series: list[SeriesLine]
    nhcb: bool = False


@dataclass
class Clear:
    pass


Command = Load | Clear | Eval


def parse_duration_ms(text: str) -> int:
    """A Prometheus duration ("1m30s") or plain seconds ("10", "1.5") as milliseconds."""
    try:
        return round(float(text) * 1000)
    except ValueError:
        pass
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"bad duration {text!r}")
    return sum(int(n) * _UNITS_MS[u] for n, u in parts)


def parse_number(text: str) -> float:
    """A sample value: decimal, hex, Inf/NaN in any case, or `stale`."""
    lowered = text.lower()
    if lowered == "stale":
        return STALE_NAN
    if lowered.lstrip("+-") in ("inf", "nan"):
        return float(lowered)
    if lowered.lstrip("+-").startswith("0x"):
        return float(int(lowered, 16))
    return float(text)


def expand_values(text: str) -> list[Point]:
    """Expand series notation: `1 2 _ stale 0+10x3 1-1x2 _x3 5x2`."""
    out: list[Point] = []
    for token in text.split():
        if token == "_":
            out.append(None)
            continue
        if token.startswith("_x"):
            out.extend([None] * int(token[2:]))
            continue
        match = re.fullmatch(r"([+-]?[^+\-]+?)(?:([+-])([^+\-x]+))?x(\d+)", token)
        if match is None or token.lower().lstrip("+-") in ("inf", "nan"):
            out.append(parse_number(token))
            continue
        start = parse_number(match.group(1))
        step = 0.0
        if match.group(2):
            step = parse_number(match.group(3)) * (-1 if match.group(2) == "-" else 1)
        current = start
        for _ in range(int(match.group(4)) + 1):
            out.append(current)
            current += step
    return out


def split_series(line: str) -> tuple[str, str]:
    """Split `metric{labels} values` into its selector text and value text."""
    text = line.strip()
    brace = text.find("{")
    space = re.search(r"\s", text)
    if brace < 0 or (space is not None and space.start() < brace):
        if space is None:
            return text, ""
        return text[: space.start()], text[space.start() :]
    quote: str | None = None
    i = brace
    while i < len(text):
        char = text[i]
        if quote:
            if char == "\\":
                i += 1
            elif char == quote:
                quote = None
        elif char in "\"'`":
            quote = char
        elif char == "}":
            return text[: i + 1], text[i + 1 :]
        i += 1
    raise ValueError(f"unbalanced braces in {line!r}")


def parse_labels(selector: str) -> Labels:
    """Labels of a series written as a selector (`name{a="b"}`, `{}`)."""
    if selector.strip() in ("{}", ""):
        return ()
    expr = pp.parse(selector)
    if not isinstance(expr, pp.VectorSelector):
        raise ValueError(f"not a series: {selector!r}")
    pairs = {m.name: m.value for m in selector_matchers_loose(expr)}
    return tuple(sorted((k, v) for k, v in pairs.items() if v))


def selector_matchers_loose(expr: pp.VectorSelector) -> list[Matcher]:
    """Selector matchers without the "must match something" check (series may be `{a=""}`)."""
    out = [Matcher.of(m.name, "=", m.value) for m in expr.matchers.matchers]
    if expr.name is not None:
        out.append(Matcher.of(METRIC_NAME, "=", expr.name))
    return out


def parse_series_line(line: str) -> SeriesLine:
    selector, values = split_series(line)
    if "{{" in values:
        return SeriesLine(parse_labels(selector), [], native=True)
    return SeriesLine(parse_labels(selector), expand_values(values))


def _logical_lines(text: str) -> list[str]:
    # Comments end a block just like blank lines do, as in Prometheus' reader.
    return ["" if ln.strip().startswith("#") else ln.rstrip() for ln in text.splitlines()]


def parse_script(text: str) -> list[Command]:
    """All commands of a test script, in order."""
    lines = _logical_lines(text)
    commands: list[Command] = []
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if not line:
            continue
        block: list[tuple[int, str]] = []
        while i < len(lines) and lines[i].strip() and not _is_command(lines[i]):
            block.append((i + 1, lines[i].strip()))
            i += 1
        commands.append(_command(i - len(block), line, block))
    return commands


def _is_command(line: str) -> bool:
    # Commands start in column 0; indented lines belong to the command above.
    return not line[:1].isspace() and line.split()[0] in (
        "load", "load_with_nhcb", "clear", "eval", "eval_fail", "eval_warn", "eval_info",
        "eval_ordered",
    )


def _command(line_no: int, line: str, block: list[tuple[int, str]]) -> Command:
    words = line.split()
    if words[0] == "clear":
        return Clear()
    if words[0] in ("load", "load_with_nhcb"):
        return Load(
            parse_duration_ms(words[1]),
            [parse_series_line(text) for _, text in block],
            nhcb=words[0] == "load_with_nhcb",
        )
    return _eval(line_no, line, block)


def _eval(line_no: int, line: str, block: list[tuple[int, str]]) -> Eval:
    instant = _INSTANT.match(line)
    if instant:
        legacy, at, query = instant.groups()
        t = parse_duration_ms(at)
        ev = Eval(line_no, query, t, t, 0)
    else:
        ranged = _RANGE.match(line)
        if ranged is None:
            raise ValueError(f"line {line_no}: cannot read {line!r}")
        legacy, start, end, step, query = ranged.groups()
        ev = Eval(
            line_no, query, parse_duration_ms(start), parse_duration_ms(end),
            parse_duration_ms(step),
        )
    if legacy == "fail":
        ev.fail = True
    elif legacy == "warn":
        ev.warn = True
    elif legacy == "info":
        ev.info = True
    elif legacy == "ordered":
        ev.ordered = True
    for _, text in block:
        if text.startswith("expect "):
            _expectation(ev, text[len("expect ") :].strip())
        elif "{{" in text:
            ev.native = True
        elif ev.step_ms == 0 and ev.range_vector is None and _is_number(text):
            ev.scalar = parse_number(text)
        else:
            ev.expected.append(parse_series_line(text))
    return ev


def _is_number(text: str) -> bool:
    try:
        parse_number(text)
    except ValueError:
        return False
    return True


def _expectation(ev: Eval, text: str) -> None:
    kind, _, rest = text.partition(" ")
    rest = rest.strip()
    msg = rest[len("msg:") :].strip() if rest.startswith("msg:") else None
    if kind == "fail":
        ev.fail = True
        ev.fail_msg = msg
        if rest.startswith("regex:"):
            ev.fail_regex = rest[len("regex:") :].strip()
    elif kind in ("warn", "no_warn"):
        ev.warn, ev.warn_msg = kind == "warn", msg
    elif kind in ("info", "no_info"):
        ev.info, ev.info_msg = kind == "info", msg
    elif kind == "ordered":
        ev.ordered = True
    elif kind == "string":
        ev.string = _unquote(rest)
    elif kind == "range":
        match = _RANGE_VECTOR.match(text)
        if match is None:
            raise ValueError(f"cannot read expectation {text!r}")
        start, end, step = (parse_duration_ms(g) for g in match.groups())
        ev.range_vector = (start, end, step)
    else:
        raise ValueError(f"unknown expectation {text!r}")


def _unquote(text: str) -> str:
    if text.startswith("`") and text.endswith("`"):
        return text[1:-1]
    expr = pp.parse(text)
    assert isinstance(expr, pp.StringLiteral)
    return expr.val
