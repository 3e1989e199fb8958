"""Parse errors name and place the offending token, as Prometheus' `LINE:COL: parse error:`."""

from __future__ import annotations

import re
from pathlib import Path

import promql_parser as pp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.promql.errors import BadData
from gateway.promql.parse import parse_query
from gateway.promql.syntax import diagnose
from tests.promql.promqltest import Eval, parse_script

PREFIX = 'invalid parameter "query": '

CASES = [
    ("sum(x) by", '1:10: parse error: unexpected end of input in grouping opts, expected "("'),
    ("x +", "1:4: parse error: unexpected end of input"),
    ("1 +* 2", "1:4: parse error: unexpected <op:*>"),
    ("x @ foo()", '1:5: parse error: unexpected identifier "foo" in @, expected timestamp'),
    ("sum by (job) rate(x[5m])",
     '1:14: parse error: unexpected identifier "rate" in aggregation'),
    ("sum(x) by (a b)",
     '1:14: parse error: unexpected identifier "b" in grouping opts, expected "," or ")"'),
    ('x{a="b" c="d"}',
     '1:9: parse error: unexpected identifier "c" in label matching, expected "," or "}"'),
    ("x{a=b}", '1:5: parse error: unexpected identifier "b" in label matching, expected string'),
    ("x[5m 1]",
     '1:6: parse error: unexpected number "1" in subquery or range, expected ":" or "]"'),
    ("x offset foo",
     '1:10: parse error: unexpected identifier "foo" in offset, expected duration'),
    ("rate(x[5m] 2)", '1:12: parse error: unexpected number "2"'),
    ("up\n  + * 2", "2:5: parse error: unexpected <op:*>"),
    ('{a="ü"} and', "1:13: parse error: unexpected end of input"),  # columns count bytes
    # Kept as before: the end of the input, and the parser's own message.
    ("sum(up", "1:7: parse error: unclosed left parenthesis"),
    ("up offset", "1:10: parse error: unexpected end of input in offset, expected duration"),
]


@pytest.mark.parametrize(("query", "message"), CASES)
def test_message_and_position(query: str, message: str) -> None:
    with pytest.raises(BadData) as info:
        parse_query(query)
    assert info.value.message == PREFIX + message


def test_no_complaint_about_queries_the_parser_accepts() -> None:
    """The recogniser accepts every query of the PromQL test scripts that the parser does."""
    checked = 0
    for path in sorted((Path(__file__).parent / "testdata").glob("*.test")):
        try:
            commands = parse_script(path.read_text())
        except ValueError:
            continue  # a script with series notation our reader does not know
        for command in commands:
            if not isinstance(command, Eval):
                continue
            try:
                pp.parse(command.query)
            except ValueError:
                continue
            checked += 1
            assert diagnose(command.query) is None, (path.name, command.query)
    assert checked > 1500


PIECES = st.sampled_from([
    "x", "sum", "by", "(", ")", "{", "}", "[", "]", "5m", ":", ",", "@", "offset", "+", "*",
    "==", "bool", "on", "group_left", '"s"', "a=", "1", "-", "start()", "rate", " ", "\n",
    "#c\n", "ü", "=~", "and", "^", "1e3", "0x1f", "Inf",
])


@settings(max_examples=400, deadline=None)
@given(st.lists(PIECES, max_size=14).map("".join))
def test_any_input_gives_bad_data_or_parses(query: str) -> None:
    try:
        parse_query(query)
    except BadData as exc:
        text = exc.message.removeprefix(PREFIX)
        found = re.match(r"(\d+):(\d+): parse error: ", text)
        if found:
            line, column = int(found.group(1)), int(found.group(2))
            lines = query.split("\n")
            assert 1 <= line <= len(lines)
            assert 1 <= column <= len(lines[line - 1].encode()) + 1
        else:
            assert text.startswith("parse error: ") or text == "empty query", text
