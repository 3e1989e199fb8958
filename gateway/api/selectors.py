"""`match[]` selectors (`up{job="x"}`) -> label matchers, through the PromQL parser."""

from __future__ import annotations

import promql_parser

from gateway.api.query_guard import QueryBounds, parse_promql
from gateway.model.labels import METRIC_NAME
from gateway.model.matchers import BadMatcher, Matcher, MatchOp, check_selector

_OPS = {
    "Equal": MatchOp.EQUAL,
    "NotEqual": MatchOp.NOT_EQUAL,
    "Re": MatchOp.REGEX,
    "NotRe": MatchOp.NOT_REGEX,
}


def parse_selector(text: str, bounds: QueryBounds, param: str = "match[]") -> list[Matcher]:
    """Parse one series selector; raises BadMatcher with a message for the user.

    Text over `bounds` raises a 400 GatewayError naming `param` before the parser sees it.
    """
    try:
        node = parse_promql(text, param, bounds)
    except (ValueError, RuntimeError) as exc:
        raise BadMatcher(f'1:1: parse error in selector "{text}": {exc}') from None
    if not isinstance(node, promql_parser.VectorSelector):
        raise BadMatcher(
            f'invalid selector "{text}": expected a series selector like up{{job="x"}}'
        )
    if node.matchers.or_matchers:
        raise BadMatcher(f'invalid selector "{text}": "or" inside a selector is not supported')
    matchers = []
    if node.name:
        matchers.append(Matcher.of(METRIC_NAME, MatchOp.EQUAL, node.name))
    for item in node.matchers.matchers:
        op_name = str(item.op).rpartition(".")[2]
        matchers.append(Matcher.of(item.name, _OPS[op_name], item.value))
    check_selector(matchers)
    return matchers
