"""A small evaluator for the `filter` expressions of Consul and Nomad list endpoints.

Supports the subset tests and the xDS source use: selectors (`Service.Meta.version`,
`Service.Tags`, `Meta["x"]`), `==`, `!=`, `in`, `not in`, `contains`, `not contains`,
`is empty`, `is not empty`, `matches`, `not matches`, `and`, `or`, `not` and parentheses.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

Predicate = Callable[[Any], bool]

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>"(?:[^"\\]|\\.)*"|`[^`]*`)
      | (?P<op>==|!=|\(|\))
      | (?P<word>[A-Za-z_][A-Za-z0-9_\-]*(?:(?:\.[A-Za-z0-9_\-]+)|(?:\[\s*"[^"]*"\s*\]))*)
      | (?P<num>-?\d+(?:\.\d+)?)
    )""",
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "not", "in", "contains", "is", "empty", "matches"}


class FilterError(ValueError):
    """The expression cannot be parsed."""


@functools.lru_cache(maxsize=256)
def compile_filter(text: str) -> Predicate:
    """Parse `text` into a predicate over JSON-like data; FilterError when it is malformed.
    Predicates hold no state, so one parse serves every request with the same filter."""
    tokens = _tokenize(text)
    parser = _Parser(tokens)
    pred = parser.expr()
    if parser.pos != len(tokens):
        raise FilterError(f"unexpected {tokens[parser.pos][1]!r}")
    return pred


def _tokenize(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise FilterError(f"unexpected character at position {pos}")
        kind = match.lastgroup or ""
        value = match.group(kind)
        if kind == "str":
            value = value[1:-1].replace('\\"', '"') if value[0] == '"' else value[1:-1]
        elif kind == "word" and value in _KEYWORDS:
            kind = "kw"
        out.append((kind, value))
        pos = match.end()
    return out


_SELECTOR_PART = re.compile(r'\[\s*"([^"]*)"\s*\]|([^.\[\]]+)')


def _keys(selector: str) -> tuple[str, ...]:
    """A selector's keys (`Meta["a.b"].x` -> ("Meta", "a.b", "x")), parsed once per filter."""
    return tuple(bracket or dotted for bracket, dotted in _SELECTOR_PART.findall(selector))


def _select(data: Any, keys: tuple[str, ...]) -> Any:
    for key in keys:
        if isinstance(data, dict):
            data = data.get(key)
        else:
            return None
    return data


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.pos = 0

    def _peek(self) -> tuple[str, str]:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else ("end", "")

    def _take(self, kind: str, value: str | None = None) -> str:
        tok = self._peek()
        if tok[0] != kind or (value is not None and tok[1] != value):
            raise FilterError(f"expected {value or kind}, got {tok[1] or 'end of expression'!r}")
        self.pos += 1
        return tok[1]

    def _accept(self, value: str) -> bool:
        if self._peek()[1] == value and self._peek()[0] in ("kw", "op"):
            self.pos += 1
            return True
        return False

    def expr(self) -> Predicate:
        left = self._and()
        while self._accept("or"):
            right = self._and()
            left = (lambda a, b: lambda d: a(d) or b(d))(left, right)
        return left

    def _and(self) -> Predicate:
        left = self._unary()
        while self._accept("and"):
            right = self._unary()
            left = (lambda a, b: lambda d: a(d) and b(d))(left, right)
        return left

    def _unary(self) -> Predicate:
        if self._accept("not"):
            inner = self._unary()
            return lambda d: not inner(d)
        if self._accept("("):
            inner = self.expr()
            self._take("op", ")")
            return inner
        return self._match()

    def _value(self) -> str:
        kind, value = self._peek()
        if kind in ("str", "num", "word"):
            self.pos += 1
            return value
        raise FilterError(f"expected a value, got {value or 'end of expression'!r}")

    def _match(self) -> Predicate:
        kind, value = self._peek()
        if kind in ("str", "num"):
            self.pos += 1
            negate = self._accept("not")
            self._take("kw", "in")
            keys = _keys(self._take("word"))
            return _negated(negate, lambda d: _contains(_select(d, keys), value))
        selector = self._take("word")
        keys = _keys(selector)
        if self._accept("=="):
            expected = self._value()
            return lambda d: _text(_select(d, keys)) == expected
        if self._accept("!="):
            expected = self._value()
            return lambda d: _text(_select(d, keys)) != expected
        if self._accept("is"):
            negate = self._accept("not")
            self._take("kw", "empty")
            return _negated(negate, lambda d: not _select(d, keys))
        negate = self._accept("not")
        if self._accept("contains"):
            expected = self._value()
            return _negated(negate, lambda d: _contains(_select(d, keys), expected))
        if self._accept("matches"):
            pattern = re.compile(self._value())
            return _negated(negate, lambda d: bool(pattern.search(_text(_select(d, keys)))))
        raise FilterError(f"expected an operator after {selector!r}")


def _negated(negate: bool, pred: Predicate) -> Predicate:
    return (lambda d: not pred(d)) if negate else pred


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _contains(collection: Any, value: str) -> bool:
    if isinstance(collection, dict):
        return value in collection
    if isinstance(collection, (list, tuple)):
        return value in [_text(v) for v in collection]
    if isinstance(collection, str):
        return value in collection
    return False
