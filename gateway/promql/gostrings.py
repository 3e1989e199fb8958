"""Go's view of PromQL string literals: bytes, not code points.

In Go (and so in Prometheus) `"\xff"` and `"\377"` are the single byte 0xFF, and
`"\xe2\x82\xac"` is the three bytes of "€". promql-parser decodes those escapes as code points
instead (U+00FF, and "â\x82¬"). `raw_strings` reads the literals of the query text again the
way Go does, and tells which parser strings stand for other bytes. Bytes that are not valid
UTF-8 are kept with Python's surrogateescape (0xFF -> U+DCFF), so they survive as a `str` and
are recognised as invalid where Prometheus checks (`is_valid_utf8`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_LEGACY_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_SIMPLE = {
    "a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
    "\\": "\\", "'": "'", '"': '"',
}
_QUOTE_ESCAPES = {
    "\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
    "\v": "\\v", "\\": "\\\\", '"': '\\"',
}


def is_valid_utf8(text: str) -> bool:
    """Whether the string is valid UTF-8 (holds no escaped raw byte)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def go_quote(text: str) -> str:
    """The string as Go's %q prints it (raw bytes as \\xNN)."""
    out = ['"']
    for char in text:
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:
            out.append(f"\\x{code - 0xDC00:02x}")
        elif char in _QUOTE_ESCAPES:
            out.append(_QUOTE_ESCAPES[char])
        elif char.isprintable():
            out.append(char)
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def go_labels(labels: Sequence[tuple[str, str]]) -> str:
    """A label set as Prometheus' Labels.String() prints it: `{__name__="x", a="1"}`, names
    quoted when they are not legacy names."""
    parts = []
    for name, value in labels:
        shown = name if _LEGACY_NAME.fullmatch(name) else go_quote(name)
        parts.append(f"{shown}={go_quote(value)}")
    return "{" + ", ".join(parts) + "}"


def raw_strings(query: str) -> dict[str, str]:
    """For each quoted literal whose byte escapes make Go read it differently from
    promql-parser: parser's value -> Go's value (invalid bytes surrogate-escaped)."""
    out: dict[str, str] = {}
    i = 0
    while i < len(query):
        char = query[i]
        if char == "#":
            end = query.find("\n", i)
            i = len(query) if end < 0 else end
        elif char == "`":
            end = query.find("`", i + 1)
            i = len(query) if end < 0 else end + 1
        elif char in "\"'":
            decoded = _decode(query, i + 1, char)
            if decoded is None:
                return out
            as_points, as_bytes, i = decoded
            go_value = as_bytes.decode("utf-8", "surrogateescape")
            if go_value != as_points:
                out[as_points] = go_value
        else:
            i += 1
    return out


def _decode(query: str, i: int, quote: str) -> tuple[str, bytes, int] | None:
    """(code-point reading, byte reading, index after the closing quote), or None."""
    points: list[str] = []
    raw = bytearray()
    while i < len(query):
        char = query[i]
        if char == quote:
            return "".join(points), bytes(raw), i + 1
        if char != "\\":
            points.append(char)
            raw += char.encode("utf-8", "surrogatepass")
            i += 1
            continue
        kind = query[i + 1 : i + 2]
        if kind in _SIMPLE:
            points.append(_SIMPLE[kind])
            raw += _SIMPLE[kind].encode()
            i += 2
        elif kind == "x" or (kind != "" and kind in "01234567"):
            width, base, skip = (2, 16, 2) if kind == "x" else (3, 8, 1)
            digits = query[i + skip : i + skip + width]
            try:
                value = int(digits, base)
            except ValueError:
                return None
            if len(digits) != width or value > 0xFF:
                return None
            points.append(chr(value))
            raw.append(value)
            i += skip + width
        elif kind in ("u", "U"):
            width = 4 if kind == "u" else 8
            try:
                value = int(query[i + 2 : i + 2 + width], 16)
                text = chr(value)
            except ValueError:
                return None
            points.append(text)
            raw += text.encode("utf-8", "surrogatepass")
            i += 2 + width
        else:
            return None
    return None
