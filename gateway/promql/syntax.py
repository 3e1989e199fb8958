"""Where a PromQL query stops being valid, for parse errors a user can act on.

promql-parser answers some syntax errors with a bare "invalid promql query". This module reads
the query again with a small lexer and a recursive-descent recogniser of PromQL's grammar (it
builds nothing) and reports the first token that cannot continue the query, in Prometheus'
wording: `unexpected <token>[ in <context>][, expected <what>]`, with the token's byte
offset for the `line:column` prefix. It only runs after promql-parser has refused a query.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

AGGREGATORS = frozenset({
    "sum", "avg", "count", "min", "max", "group", "stddev", "stdvar", "topk", "bottomk",
    "count_values", "quantile", "limitk", "limit_ratio",
})
KEYWORDS = frozenset({
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
})
_SET_OPS = {"and": 2, "unless": 2, "or": 1}
_BINARY = {
    "^": 6, "*": 5, "/": 5, "%": 5, "atan2": 5, "+": 4, "-": 4,
    "==": 3, "!=": 3, ">": 3, "<": 3, ">=": 3, "<=": 3, **_SET_OPS,
}
_COMPARISONS = frozenset({"==", "!=", ">", "<", ">=", "<="})
# Words that only ever modify a binary operator: never a metric name.
_MODIFIER_WORDS = frozenset({"bool", "on", "ignoring", "group_left", "group_right"})
_TOKEN = re.compile(
    r"""
    (?P<space>\s+|\#[^\n]*)
  | (?P<duration>(?:\d+(?:ms|s|m|h|d|w|y))+)(?![\w.])
  | (?P<number>0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`[^`]*`)
  | (?P<op>==|!=|=~|!~|>=|<=|[-+*/%^<>=@(){}\[\],:])
  | (?P<ident>[a-zA-Z_][a-zA-Z0-9_]*(?::[a-zA-Z0-9_:]*)*)
    """,
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # "ident", "number", "duration", "string", "op", "eof"
    text: str
    pos: int  # character offset in the query

    def describe(self) -> str:
        """The token as Prometheus names it in parse errors."""
        word = self.text.lower()
        if self.kind == "eof":
            return "end of input"
        if self.kind == "ident" and word in AGGREGATORS:
            return f"<aggr:{word}>"
        if self.kind == "ident" and word in ("and", "or", "unless", "atan2"):
            return f"<op:{word}>"
        if self.kind == "ident" and word in KEYWORDS:
            return f"<{word}>"
        if self.kind == "op" and self.text not in "(){}[],:@=":
            return f"<op:{self.text}>"
        if self.kind == "op":
            return _go_quote(self.text)
        shown = self.text if len(self.text) <= 10 else self.text[:10]
        quoted = _go_quote(shown) + ("..." if len(self.text) > 10 else "")
        kind = {"ident": "identifier"}.get(self.kind, self.kind)
        return f"{kind} {quoted}"


def _go_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class SyntaxFault(Exception):
    """The first token that cannot continue the query."""

    def __init__(self, token: Token, context: str = "", expected: str = "") -> None:
        text = "unexpected " + token.describe()
        if context:
            text += " in " + context
        if expected:
            text += ", expected " + expected
        super().__init__(text)
        self.token = token
        self.text = text


def tokenize(query: str) -> list[Token] | None:
    """Tokens of the query, or None when it does not even lex (promql-parser says why)."""
    out: list[Token] = []
    i = 0
    while i < len(query):
        match = _TOKEN.match(query, i)
        if match is None:
            return None
        kind = match.lastgroup or ""
        if kind != "space":
            out.append(Token(kind, match.group(), i))
        i = match.end()
    out.append(Token("eof", "", len(query)))
    return out


def diagnose(query: str) -> tuple[int, str] | None:
    """(character offset, message) of the first syntax error, or None if none is found."""
    tokens = tokenize(query)
    if tokens is None:
        return None
    try:
        _Recognizer(tokens).query()
    except SyntaxFault as fault:
        return fault.token.pos, fault.text
    except RecursionError:
        # Absurdly deep nesting: leave the message to promql-parser.
        return None
    return None


class _Recognizer:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.i = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def word(self) -> str:
        return self.tok.text.lower() if self.tok.kind == "ident" else ""

    def take(self, text: str) -> bool:
        if self.tok.kind == "op" and self.tok.text == text:
            self.i += 1
            return True
        return False

    def expect(self, text: str, context: str = "", expected: str = "") -> None:
        if not self.take(text):
            raise SyntaxFault(self.tok, context, expected)

    def query(self) -> None:
        self.expr(0)
        if self.tok.kind != "eof":
            raise SyntaxFault(self.tok)

    def binary_op(self) -> str | None:
        if self.tok.kind == "op" and self.tok.text in _BINARY:
            return self.tok.text
        if self.word() in _BINARY:
            return self.word()
        return None

    def expr(self, min_prec: int) -> None:
        self.unary()
        while (op := self.binary_op()) is not None and _BINARY[op] >= min_prec:
            self.i += 1
            self.bin_modifiers(op)
            # `^` is right-associative, every other operator left-associative.
            self.expr(_BINARY[op] if op == "^" else _BINARY[op] + 1)

    def bin_modifiers(self, op: str) -> None:
        if self.word() == "bool" and op in _COMPARISONS:
            self.i += 1
        if self.word() in ("on", "ignoring"):
            self.i += 1
            self.label_list("grouping opts")
            if self.word() in ("group_left", "group_right"):
                self.i += 1
                if self.tok.kind == "op" and self.tok.text == "(":
                    self.label_list("grouping opts")
        # Experimental fill modifiers (fill(v), fill_left(v), fill_right(v)), in any number.
        while self.word() in ("fill", "fill_left", "fill_right") and self.peek_is("("):
            self.i += 2
            self.unary()
            self.expect(")")

    def unary(self) -> None:
        while self.tok.kind == "op" and self.tok.text in "+-":
            self.i += 1
        self.primary()
        self.postfix()

    def primary(self) -> None:
        tok = self.tok
        word = self.word()
        if tok.kind in ("number", "string", "duration"):
            self.i += 1
        elif tok.kind == "op" and tok.text == "(":
            self.i += 1
            self.expr(0)
            self.expect(")")
        elif tok.kind == "op" and tok.text == "{":
            self.matchers()
        elif word in AGGREGATORS:
            self.aggregation()
        elif tok.kind == "ident" and word not in _MODIFIER_WORDS:
            # Other keywords (by, offset, and, ...) may name a metric, as in Prometheus.
            self.i += 1
            if self.take("("):
                self.call_args()
            elif self.tok.kind == "op" and self.tok.text == "{":
                self.matchers()
        else:
            raise SyntaxFault(tok)

    def peek_is(self, *texts: str) -> bool:
        following = self.tokens[self.i + 1]
        return following.text.lower() in texts and following.kind in ("op", "ident")

    def call_args(self) -> None:
        if self.take(")"):
            return
        while True:
            self.expr(0)
            if self.take(")"):
                return
            self.expect(",")

    def aggregation(self) -> None:
        self.i += 1
        modified = self.word() in ("by", "without")
        if modified:
            self.i += 1
            self.label_list("grouping opts")
        self.expect("(", "aggregation")
        self.call_args()
        if not modified and self.word() in ("by", "without"):
            self.i += 1
            self.label_list("grouping opts")

    def label_list(self, context: str) -> None:
        self.expect("(", context, '"("')
        while not self.take(")"):
            if self.tok.kind not in ("ident", "string"):
                raise SyntaxFault(self.tok, context, "label")
            self.i += 1
            if self.take(")"):
                return
            self.expect(",", context, '"," or ")"')

    def matchers(self) -> None:
        self.expect("{")
        while not self.take("}"):
            if self.tok.kind not in ("ident", "string"):
                raise SyntaxFault(self.tok, "label matching", 'identifier or "}"')
            self.i += 1
            if self.tok.kind == "op" and self.tok.text in ("=", "!=", "=~", "!~"):
                self.i += 1
                if self.tok.kind != "string":
                    raise SyntaxFault(self.tok, "label matching", "string")
                self.i += 1
            elif self.tokens[self.i - 1].kind != "string":
                raise SyntaxFault(self.tok, "label matching", "label matching operator")
            if self.take("}"):
                return
            self.expect(",", "label matching", '"," or "}"')

    def postfix(self) -> None:
        while True:
            if self.take("["):
                self.brackets()
            elif self.word() == "offset":
                self.i += 1
                self.take("-")
                if self.tok.kind not in ("duration", "number"):
                    raise SyntaxFault(self.tok, "offset", "duration")
                self.i += 1
            elif self.take("@"):
                self.at()
            else:
                return

    def brackets(self) -> None:
        if self.tok.kind not in ("duration", "number"):
            raise SyntaxFault(self.tok, "subquery selector", "number/duration")
        self.i += 1
        if self.take("]"):
            return
        if not self.take(":"):
            raise SyntaxFault(self.tok, "subquery or range", '":" or "]"')
        if self.tok.kind in ("duration", "number"):
            self.i += 1
            self.expect("]", "subquery selector", '"]"')
        else:
            self.expect("]", "subquery selector", 'number/duration or "]"')

    def at(self) -> None:
        if self.tok.kind == "op" and self.tok.text in "+-":
            self.i += 1
        if self.tok.kind in ("number", "duration"):
            self.i += 1
        elif self.word() in ("start", "end"):
            self.i += 1
            self.expect("(", "@", "timestamp")
            self.expect(")", "@", "timestamp")
        else:
            raise SyntaxFault(self.tok, "@", "timestamp")
