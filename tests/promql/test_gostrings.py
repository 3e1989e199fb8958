"""String literals read as Go reads them: `\\x` and octal escapes are bytes, not code points."""

from __future__ import annotations

import pytest

from gateway.promql.engine import instant_query
from gateway.promql.errors import ExecutionError
from gateway.promql.gostrings import go_quote, is_valid_utf8, raw_strings
from gateway.promql.result import StringValue, VectorValue
from gateway.promql.source import MemorySource


def test_byte_escapes_are_bytes() -> None:
    mapping = raw_strings(r'label_replace(x, "\xff", "\xe2\x82\xac", "a", "\377")')
    assert mapping["\u00ff"] == "\udcff"  # "\xff" and "\377": the raw byte 0xFF
    assert mapping["\u00e2\u0082\u00ac"] == "\u20ac"  # three bytes that spell the euro sign
    assert not is_valid_utf8(mapping["\u00ff"])


def test_literals_without_byte_escapes_are_left_alone() -> None:
    assert raw_strings(r'x{a="\u00ff"} + on() label_join(y, "b", "\x41", `\xff`)') == {}
    # Inside a literal `#` is text; after it, the rest of the line is a comment.
    found = raw_strings('"# not a comment \\xff"  # "\\xfe" is one')
    assert found == {"# not a comment \u00ff": "# not a comment \udcff"}


def test_go_quote() -> None:
    assert go_quote("a\udcc5z") == '"a\\xc5z"'
    assert go_quote('q"\\\n\x01\u00e9') == '"q\\"\\\\\\n\\x01\u00e9"'


async def test_invalid_label_names_fail_as_in_prometheus() -> None:
    source = MemorySource()
    source.add((("__name__", "x"), ("src", "a")), [0], [1.0])
    with pytest.raises(ExecutionError) as info:
        await instant_query(source, 'count_values("a\\xc5z", x)', 0)
    assert info.value.message == 'invalid label name "a\\xc5z"'
    with pytest.raises(ExecutionError, match="invalid destination label name"):
        await instant_query(source, 'label_replace(x, "\\xff", "", "src", "(.*)")', 0)


async def test_valid_utf8_written_as_bytes() -> None:
    source = MemorySource()
    source.add((("__name__", "x"), ("src", "a")), [0], [1.0])
    result = await instant_query(source, 'label_replace(x, "dst", "\\xe2\\x82\\xac", "", "")', 0)
    assert isinstance(result.value, VectorValue)
    assert dict(result.value.samples[0].labels)["dst"] == "\u20ac"
    text = await instant_query(source, '"\\xe2\\x82\\xac"', 0)
    assert isinstance(text.value, StringValue) and text.value.value == "\u20ac"
