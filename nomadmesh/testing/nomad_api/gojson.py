"""Go's `encoding/json` as the Nomad agent runs it: decode a body into api structs, marshal back.

`decode(raw, struct)` follows `json.NewDecoder(body).Decode(&out)` (command/agent/http.go:870
decodeBody) into a struct of Nomad's `api` package, driven by the schema: exact key first, then
Go's case-insensitive match; unknown keys dropped; an object where Go has a map or struct, a list
where it has a slice; numbers into integer fields only when they are integer literals in range;
`null` leaves scalars and structs alone and clears pointers, slices and maps; `[]byte` from base64
or a list of bytes; `interface{}` holds JSON as Go does (numbers are float64). A type error does not
stop decoding: the first one is reported, as Go's `d.saveError` does. Syntax errors and the
nesting limit use Go's scanner texts (encoding/json/scanner.go).

The decoded value is a dict per struct with every field in Go declaration order and Go's zero value
where the body had nothing (`None` for nil pointers, slices, maps and interfaces), so `marshal`
prints exactly what Go's `json.Marshal` prints for it.
"""

from __future__ import annotations

import base64
import decimal
import json
import math
import re
from functools import cache
from typing import Any

from nomadmesh.testing.nomad_api.errors import NomadApiError
from nomadmesh.testing.nomad_api.schema import Field, fields_by_json, structs

MAX_DEPTH = 10000  # encoding/json/scanner.go maxNestingDepth

_INT_RANGES = {
    "int": (-(2**63), 2**63 - 1), "int64": (-(2**63), 2**63 - 1), "int32": (-(2**31), 2**31 - 1),
    "int16": (-(2**15), 2**15 - 1), "int8": (-128, 127), "time.Duration": (-(2**63), 2**63 - 1),
    "uint": (0, 2**64 - 1), "uint64": (0, 2**64 - 1), "uint32": (0, 2**32 - 1),
    "uint16": (0, 2**16 - 1), "uint8": (0, 255),
}
_STRING_TYPES = {"string", "api.CSIPluginType"}


class Number(str):
    """A JSON number literal as written (Go checks the literal against the target type)."""


class Pairs:
    """A JSON object as its members in order, duplicates kept (Go decodes each one in turn)."""

    __slots__ = ("items",)

    def __init__(self, items: list[Any]) -> None:
        self.items = items  # (key, value) pairs


class _Decoder:
    """One decode: the error context (struct name, field stack) and the first saved error."""

    def __init__(self) -> None:
        self.error: str | None = None
        self.struct = ""
        self.stack: list[str] = []

    def save(self, what: str, go_type: str) -> None:
        if self.error is not None:
            return
        if self.struct or self.stack:
            where = f"Go struct field {self.struct}.{'.'.join(self.stack)}"
        else:
            where = "Go value"
        self.error = f"json: cannot unmarshal {what} into {where} of type {go_type}"

    def value(self, v: Any, go_type: str, current: Any) -> Any:
        """Decode JSON value `v` into a Go value of `go_type` whose current value is `current`."""
        if go_type.startswith("*"):
            if v is None:
                return None
            return self.value(v, go_type[1:], current)
        if v is None:
            if go_type.startswith(("[]", "map[")) or go_type == "interface {}":
                return None
            return current
        if go_type == "interface {}":
            return self.generic(v)
        if go_type == "[]uint8":
            return self.byte_slice(v, current)
        if go_type.startswith("[]"):
            if not isinstance(v, list):
                self.save(_kind(v), go_type)
                return current
            elem = go_type[2:]
            # decode.go array(): elements decode into the slice's existing ones, then truncate
            old = current if isinstance(current, list) else []
            return [self.value(x, elem, old[i] if i < len(old) else _zero(elem))
                    for i, x in enumerate(v)]
        if go_type.startswith("map[string]"):
            if not isinstance(v, Pairs):
                self.save(_kind(v), go_type)
                return current
            elem = go_type[len("map[string]"):]
            out = current if isinstance(current, dict) else {}
            for key, x in v.items:  # each member decodes into a fresh element (decode.go object)
                out[key] = self.value(x, elem, _zero(elem))
            return out
        if go_type.startswith("api."):
            name = go_type[4:]
            if name in structs():
                return self.struct_value(v, name, current)
        return self.scalar(v, go_type, current)

    def struct_value(self, v: Any, name: str, current: Any) -> Any:
        if not isinstance(v, Pairs):
            self.save(_kind(v), "api." + name)
            return current
        out = current if isinstance(current, dict) else new_struct(name)
        by_json = fields_by_json(name)
        saved_struct, depth = self.struct, len(self.stack)
        for key, x in v.items:
            f = by_json.get(key) or _fold_match(name, key)
            if f is None:
                continue  # Go drops unknown keys
            self.struct = name
            self.stack.append(f"{f.via}.{f.json}" if f.via else f.json)
            out[f.json] = self.value(x, f.go_type, out[f.json])
            del self.stack[depth:]
        self.struct = saved_struct
        return out

    def scalar(self, v: Any, go_type: str, current: Any) -> Any:
        if go_type in _STRING_TYPES:
            if isinstance(v, str) and not isinstance(v, Number):
                return v
            self.save(_kind(v), go_type)
            return current
        if go_type == "bool":
            if isinstance(v, bool):
                return v
            self.save(_kind(v), go_type)
            return current
        bounds = _INT_RANGES.get(go_type)
        if bounds is None:
            raise AssertionError(f"Go type {go_type} is not handled")
        if not isinstance(v, Number):
            self.save(_kind(v), go_type)
            return current
        if re.fullmatch(r"-?\d+", v) is None or not bounds[0] <= int(v) <= bounds[1]:
            self.save(f"number {v}", go_type)
            return current
        return int(v)

    def byte_slice(self, v: Any, current: Any) -> Any:
        if isinstance(v, str) and not isinstance(v, Number):
            decoded = _base64(v)
            if isinstance(decoded, str):
                if self.error is None:
                    self.error = decoded
                return current
            return decoded
        if isinstance(v, list):
            out = bytearray()
            for x in v:
                b = self.value(x, "uint8", 0)
                out.append(b if isinstance(b, int) else 0)
            return bytes(out)
        self.save(_kind(v), "[]uint8")
        return current

    def generic(self, v: Any) -> Any:
        """JSON into `interface{}`: maps, slices, float64 numbers (decode.go valueInterface)."""
        if not isinstance(v, (list, Pairs)):
            return self.generic_scalar(v)
        root: list[Any] = [v]
        todo: list[tuple[Any, Any]] = [(root, 0)]  # (container, key) whose value to convert
        while todo:
            container, key = todo.pop()
            x = container[key]
            if isinstance(x, list):
                x = list(x)
                todo.extend((x, i) for i in range(len(x)))
            elif isinstance(x, Pairs):
                x = dict(x.items)  # a map[string]interface{}: the last duplicate wins
                todo.extend((x, k) for k in x)
            else:
                x = self.generic_scalar(x)
            container[key] = x
        return root[0]

    def generic_scalar(self, v: Any) -> Any:
        if isinstance(v, Number):
            f = float(v)
            if math.isinf(f):
                self.save(f"number {v}", "float64")
                return None
            return go_float(f)
        return v


def go_float(f: float) -> float | int:
    """A float64 as Go prints it: integral values within its plain-digit range as that int."""
    if f.is_integer() and abs(f) < 1e21:
        return int(decimal.Decimal(repr(f)))  # the shortest digits, as strconv 'f' -1 gives
    return f


def decode(raw: bytes, struct: str) -> dict[str, Any]:
    """Decode a request body into api struct `struct`, or raise the agent's 400 with Go's text."""
    value = parse(raw)
    decoder = _Decoder()
    out = decoder.value(value, "api." + struct, new_struct(struct))
    if decoder.error is not None:
        raise NomadApiError(400, decoder.error)
    return out  # type: ignore[no-any-return]


def new_struct(name: str) -> dict[str, Any]:
    """A Go struct value with every field zero."""
    return {key: new_struct(nested) if nested else value for key, nested, value in _layout(name)}


@cache
def _layout(name: str) -> tuple[tuple[str, str, Any], ...]:
    """(JSON key, nested struct name or "", immutable zero value) per field."""
    out = []
    for f in structs()[name]:
        zero = _zero(f.go_type)
        nested = f.go_type[4:] if isinstance(zero, dict) else ""
        out.append((f.json, nested, None if nested else zero))
    return tuple(out)


def marshal(value: Any, go_type: str) -> Any:
    """What Go's json.Marshal prints for a decoded value (omitempty fields left out)."""
    if value is None:
        return None
    if go_type.startswith("*"):
        return marshal(value, go_type[1:])
    if go_type == "[]uint8":
        return base64.b64encode(value).decode("ascii")
    if go_type.startswith("[]"):
        return [marshal(x, go_type[2:]) for x in value]
    if go_type.startswith("map[string]"):
        elem = go_type[len("map[string]"):]
        return {k: marshal(value[k], elem) for k in sorted(value)}
    if go_type.startswith("api.") and go_type[4:] in structs():
        out = {}
        for f in structs()[go_type[4:]]:
            x = value[f.json]
            if f.omitempty and _empty(x):
                continue
            out[f.json] = marshal(x, f.go_type)
        return out
    return value


def _empty(x: Any) -> bool:
    return x is None or x is False or x == 0 or x == "" or x == [] or x == {} or x == b""


def _zero(go_type: str) -> Any:
    if go_type.startswith(("*", "[]", "map[")) or go_type == "interface {}":
        return None
    if go_type in _STRING_TYPES:
        return ""
    if go_type == "bool":
        return False
    if go_type.startswith("api.") and go_type[4:] in structs():
        return new_struct(go_type[4:])
    return 0


def _kind(v: Any) -> str:
    if isinstance(v, Number):
        return "number"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"  # Pairs


def _fold(name: str) -> str | None:
    """Go's foldName for matching against ASCII field names; None when no ASCII name can match."""
    out = []
    for c in name:
        if c == "\u212a":  # KELVIN SIGN folds to k
            c = "K"
        elif c == "\u017f":  # LATIN SMALL LETTER LONG S folds to s
            c = "S"
        elif ord(c) > 127:
            return None
        out.append(c.upper())
    return "".join(out)


def _fold_match(struct: str, key: str) -> Field | None:
    folded = _fold(key)
    if folded is None:
        return None
    for f in structs()[struct]:
        if f.json.upper() == folded:
            return f
    return None


_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _base64(s: str) -> bytes | str:
    """base64.StdEncoding.Decode as Go runs it for []byte fields; a str is Go's error text."""
    src = s.encode("utf-8")
    bad = _base64_error(src)
    if bad is not None:
        return f"illegal base64 data at input byte {bad}"
    return base64.b64decode(src.replace(b"\r", b"").replace(b"\n", b""))


def _base64_error(src: bytes) -> int | None:
    """The offset Go's decodeQuantum (encoding/base64/base64.go) reports, or None when valid."""
    si, n = 0, len(src)
    while si < n:
        j = 0
        while j < 4:
            if si == n:
                if j == 0:
                    return None
                return si - j
            c = src[si]
            si += 1
            if c in _B64_ALPHABET:
                j += 1
                continue
            if c in b"\r\n":
                continue
            if c != ord("=") or j < 2:
                return si - 1
            while si < n and src[si] in b"\r\n":
                si += 1
            if j == 2:
                if si == n:
                    return n
                if src[si] != ord("="):
                    return si - 1
                si += 1
            while si < n and src[si] in b"\r\n":
                si += 1
            return si if si < n else None
    return None


# --- the syntax layer ---------------------------------------------------------------------------

_WS = " \t\n\r"


def parse(raw: bytes) -> Any:
    """The first JSON value of a body, as json.Decoder reads it (trailing data is not read)."""
    text = raw.decode("utf-8", errors="replace")
    start = 0
    while start < len(text) and text[start] in _WS:
        start += 1
    if start == len(text):
        raise NomadApiError(400, "EOF")
    if text.count("[") + text.count("{") > MAX_DEPTH:
        _check_depth(text)
    try:
        value, _ = _PY_DECODER.raw_decode(text, start)
    except (ValueError, RecursionError):
        return _Scanner(text, start).document()
    if "\\u" in text and _SURROGATE.search(text):
        value = _replace_surrogates(value)
    return value


_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")


def _replace_surrogates(value: Any) -> Any:
    """Go decodes an unpaired surrogate escape as U+FFFD; Python keeps the lone code point."""
    def fix(s: Any) -> Any:
        return re.sub("[\ud800-\udfff]", "\ufffd", s) if isinstance(s, str) and not isinstance(
            s, Number) else s

    root = [value]
    todo: list[tuple[Any, Any]] = [(root, 0)]
    while todo:
        container, key = todo.pop()
        x = container[key]
        if isinstance(x, list):
            todo.extend((x, i) for i in range(len(x)))
        elif isinstance(x, Pairs):
            x.items = [[fix(k), v] for k, v in x.items]  # each [key, value] fixed in place
            todo.extend((member, 1) for member in x.items)
        else:
            container[key] = fix(x)
    return root[0]


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def _check_depth(text: str) -> None:
    """Go's scanner refuses nesting deeper than 10000 before decoding anything."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    depth = 0
    for c in brackets:
        depth += _STEP[c]
        if depth > MAX_DEPTH:
            raise NomadApiError(400, f"invalid character '{c}' exceeded max depth")
        if depth < 0:
            return  # unbalanced: the syntax error comes first, from the parser


def _no_constant(name: str) -> Any:
    raise ValueError(name)


_PY_DECODER = json.JSONDecoder(parse_int=Number, parse_float=Number, parse_constant=_no_constant,
                               object_pairs_hook=Pairs)


def _quote_char(c: str) -> str:
    """encoding/json/scanner.go quoteChar."""
    if c == "'":
        return "'\\''"
    if c == '"':
        return "'\"'"
    if ord(c) < 32 or ord(c) == 127:
        named = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
                 "\t": "\\t", "\v": "\\v"}
        return "'" + named.get(c, f"\\x{ord(c):02x}") + "'"
    return f"'{c}'"


class _Scanner:
    """A non-recursive JSON parser with Go's scanner error texts (used when Python's refuses)."""

    def __init__(self, text: str, pos: int) -> None:
        self.s = text
        self.i = pos

    def fail(self, context: str) -> NomadApiError:
        if self.i >= len(self.s):
            return NomadApiError(400, "unexpected EOF")
        return NomadApiError(400, f"invalid character {_quote_char(self.s[self.i])} {context}")

    def ws(self) -> None:
        while self.i < len(self.s) and self.s[self.i] in _WS:
            self.i += 1

    def document(self) -> Any:
        # stack entries: [container, pending key or None]
        stack: list[list[Any]] = []
        while True:
            self.ws()
            value = self.scalar_or_open(stack)
            while True:
                if value is not _OPEN:
                    if not stack:
                        return value
                    top = stack[-1]
                    if isinstance(top[0], list):
                        top[0].append(value)
                    else:
                        top[0].items.append((top[1], value))
                    self.ws()
                    closer = "]" if isinstance(top[0], list) else "}"
                    after = "after array element" if closer == "]" else \
                        "after object key:value pair"
                    c = self.s[self.i] if self.i < len(self.s) else ""
                    if c == ",":
                        self.i += 1
                        if closer == "}":
                            self.key(top)
                        break
                    if c == closer:
                        self.i += 1
                        value = stack.pop()[0]
                        continue
                    raise self.fail(after)
                break

    def scalar_or_open(self, stack: list[list[Any]]) -> Any:
        c = self.s[self.i] if self.i < len(self.s) else ""
        if c in "[{":
            if len(stack) >= MAX_DEPTH:
                raise NomadApiError(400, "invalid character '[' exceeded max depth" if c == "[" else
                                     "invalid character '{' exceeded max depth")
            self.i += 1
            self.ws()
            if c == "[":
                if self.s[self.i:self.i + 1] == "]":
                    self.i += 1
                    return []
                stack.append([[], None])
                return _OPEN
            if self.s[self.i:self.i + 1] == "}":
                self.i += 1
                return Pairs([])
            entry: list[Any] = [Pairs([]), None]
            stack.append(entry)
            self.key(entry)
            return _OPEN
        if c == '"':
            return self.string()
        if c == "-" or c.isdigit():
            return self.number()
        for word, value in (("true", True), ("false", False), ("null", None)):
            if c == word[0]:
                for expect in word[1:]:
                    self.i += 1
                    if self.i >= len(self.s):
                        raise self.fail("")
                    if self.s[self.i] != expect:
                        raise self.fail(f"in literal {word} (expecting '{expect}')")
                self.i += 1
                return value
        raise self.fail("looking for beginning of value")

    def key(self, entry: list[Any]) -> None:
        self.ws()
        if self.s[self.i:self.i + 1] != '"':
            raise self.fail("looking for beginning of object key string")
        entry[1] = self.string()
        self.ws()
        if self.s[self.i:self.i + 1] != ":":
            raise self.fail("after object key")
        self.i += 1

    def string(self) -> str:
        self.i += 1
        out: list[str] = []
        while True:
            if self.i >= len(self.s):
                raise self.fail("")
            c = self.s[self.i]
            if c == '"':
                self.i += 1
                return "".join(out)
            if ord(c) < 0x20:
                raise self.fail("in string literal")
            if c == "\\":
                self.i += 1
                if self.i >= len(self.s):
                    raise self.fail("")
                e = self.s[self.i]
                simple = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n",
                          "r": "\r", "t": "\t"}
                if e in simple:
                    out.append(simple[e])
                    self.i += 1
                    continue
                if e != "u":
                    raise self.fail("in string escape code")
                code = 0
                for _ in range(4):
                    self.i += 1
                    if self.i >= len(self.s):
                        raise self.fail("")
                    h = self.s[self.i]
                    if h not in "0123456789abcdefABCDEF":
                        raise self.fail("in \\u hexadecimal character escape")
                    code = code * 16 + int(h, 16)
                self.i += 1
                out.append(chr(code) if not 0xD800 <= code <= 0xDFFF else "\ufffd")
                continue
            out.append(c)
            self.i += 1

    def number(self) -> Number:
        start = self.i
        if self.s[self.i] == "-":
            self.i += 1
            self.digits("in numeric literal")
        elif self.s[self.i] == "0":
            self.i += 1
        else:
            self.digits("in numeric literal")
        if self.s[self.i:self.i + 1] == ".":
            self.i += 1
            self.digits("after decimal point in numeric literal")
        if self.s[self.i:self.i + 1] in ("e", "E"):
            self.i += 1
            if self.s[self.i:self.i + 1] in ("+", "-"):
                self.i += 1
            self.digits("in exponent of numeric literal")
        if self.i >= len(self.s):
            raise self.fail("")  # a number may go on: the stream needs more input
        return Number(self.s[start:self.i])

    def digits(self, context: str) -> None:
        if self.i >= len(self.s):
            raise self.fail("")
        if not "0" <= self.s[self.i] <= "9":
            raise self.fail(context)
        while self.i < len(self.s) and "0" <= self.s[self.i] <= "9":
            self.i += 1


_OPEN = object()
