"""HCL's JSON syntax (hashicorp/hcl v2 json package), which jobspec2 reads for text starting with "{"
(parse.go:194 isJSON): a property is an argument or a block by the schema that asks for it, block
labels are nested object keys, a string is a template wherever expressions are evaluated."""

from __future__ import annotations

import re
from typing import Any

from nomadmesh.hcl import _syntax as syn
from nomadmesh.hcl._diag import Diagnostic, HclDiagnostics, Source, go_quote, name_suggestion

MAX_DEPTH = syn.MAX_DEPTH


class JValue(syn.Expr):
    """A JSON value; as an expression it evaluates by hcl's json rules (see _eval registration)."""

    __slots__ = ("kind", "value")

    def __init__(self, kind: str, value: Any, s: int, e: int) -> None:
        self.kind = kind  # "string", "number", "bool", "null", "array", "object"
        self.value = value  # for objects: list of (name, name_s, name_e, JValue)
        self.s = s
        self.e = e


class JsonBody(syn.Body):
    """A JSON object (or array of objects) read as a body; split by schema on request."""

    __slots__ = ("src", "val")

    def __init__(self, val: JValue, src: Source) -> None:
        self.val = val
        self.src = src
        props = self.properties()
        super().__init__({}, [], val.s, val.e)
        for name, ns, ne, v in props:
            if name != "//" and name not in self.attrs:
                self.attrs[name] = syn.Attribute(name, v, ns, ne, v.e)

    def properties(self) -> list[tuple[str, int, int, JValue]]:
        """collectDeepAttrs: the object's properties, or those of each object in an array."""
        v = self.val
        if v.kind == "object":
            return list(v.value)
        if v.kind == "array":
            out: list[tuple[str, int, int, JValue]] = []
            for item in v.value:
                if item.kind != "object":
                    raise _fail(
                        self.src,
                        "Incorrect JSON value type",
                        "A JSON object is required here, setting the arguments for this block.",
                        item.s,
                        item.s + 1,
                    )
                out.extend(item.value)
            return out
        raise _fail(
            self.src,
            "Incorrect JSON value type",
            "A JSON object is required here, setting the arguments for this block.",
            v.s,
            v.s + 1,
        )

    def missing_range(self) -> tuple[int, int]:
        v = self.val
        if v.kind == "object":
            return v.e - 1, v.e
        return v.s, v.s + 1

    def split(
        self,
        want_attrs: dict[str, bool],
        want_blocks: dict[str, tuple[str, ...]],
        hidden: frozenset[str],
        partial: bool,
    ) -> tuple[dict[str, syn.Attribute], list[syn.Block]]:
        """body.PartialContent / Content (json/structure.go:80)."""
        attrs: dict[str, syn.Attribute] = {}
        blocks: list[syn.Block] = []
        for name, ns, ne, v in self.properties():
            if name == "//" or name in hidden:
                continue
            if name in want_attrs:
                if name in attrs:
                    existing = attrs[name]
                    raise _fail(
                        self.src,
                        "Duplicate argument",
                        f"The argument {go_quote(name)} was already set at "
                        f"{self.src.range(existing.s, existing.e)}.",
                        ns,
                        ne,
                    )
                attrs[name] = syn.Attribute(name, v, ns, ne, v.e)
            elif name in want_blocks:
                self._unpack(v, name, (ns, ne), list(want_blocks[name]), [], [], blocks)
            elif not partial:
                suggestion = name_suggestion(name, [*want_attrs, *want_blocks])
                hint = f" Did you mean {go_quote(suggestion)}?" if suggestion else ""
                raise _fail(
                    self.src,
                    "Extraneous JSON object property",
                    f"No argument or block type is named {go_quote(name)}.{hint}",
                    ns,
                    ne,
                )
        return attrs, blocks

    def _unpack(
        self,
        v: JValue,
        type_name: str,
        type_range: tuple[int, int],
        labels_left: list[str],
        labels: list[str],
        label_ranges: list[tuple[int, int]],
        out: list[syn.Block],
    ) -> None:
        if labels_left:
            label_name = labels_left[0]
            props = JsonBody(v, self.src).properties() if v.kind in ("object", "array") else []
            if not props:
                raise _fail(
                    self.src,
                    "Missing block label",
                    f"At least one object property is required, whose name represents the "
                    f"{type_name} block's {label_name}.",
                    v.s,
                    v.s + 1,
                )
            for name, ns, ne, inner in props:
                self._unpack(
                    inner,
                    type_name,
                    type_range,
                    labels_left[1:],
                    [*labels, name],
                    [*label_ranges, (ns, ne)],
                    out,
                )
            return
        if v.kind == "null":
            return
        items = [v] if v.kind == "object" else v.value if v.kind == "array" else None
        if items is None:
            raise _fail(
                self.src,
                "Incorrect JSON value type",
                f"Either a JSON object or a JSON array is required, representing the contents of "
                f"one or more {go_quote(type_name)} blocks.",
                v.s,
                v.s + 1,
            )
        for item in items:
            body = JsonBody(item, self.src)
            out.append(
                syn.Block(
                    type_name,
                    list(labels),
                    list(label_ranges),
                    body,
                    type_range[0],
                    type_range[1],
                    (v.s, v.s + 1),
                    item.e,
                )
            )

    def just_attributes(self) -> dict[str, syn.Attribute]:
        """body.JustAttributes (json/structure.go:172): every property is an argument."""
        if self.val.kind != "object":
            raise _fail(
                self.src,
                "Incorrect JSON value type",
                "A JSON object is required here, setting the arguments for this block.",
                self.val.s,
                self.val.s + 1,
            )
        attrs: dict[str, syn.Attribute] = {}
        for name, ns, ne, v in self.val.value:
            if name == "//":
                continue
            if name in attrs:
                existing = attrs[name]
                raise _fail(
                    self.src,
                    "Duplicate attribute definition",
                    f"The argument {go_quote(name)} was already set at "
                    f"{self.src.range(existing.s, existing.e)}.",
                    ns,
                    ne,
                )
            attrs[name] = syn.Attribute(name, v, ns, ne, v.e)
        return attrs


def _fail(src: Source, summary: str, detail: str, s: int, e: int) -> HclDiagnostics:
    return HclDiagnostics([Diagnostic(summary, detail, src.range(s, e))])


# --- the JSON parser (json/parser.go) ------------------------------------------------------------

_WS = re.compile(r"[ \t\r\n]*")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_STRING = re.compile(r'"((?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9A-Fa-f]{4})*)"')
_KEYWORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class _Parser:
    def __init__(self, src: Source) -> None:
        self.src = src
        self.text = src.text
        self.pos = 0
        self.depth = 0

    def skip(self) -> None:
        m = _WS.match(self.text, self.pos)
        assert m is not None
        self.pos = m.end()

    def fail(self, summary: str, detail: str, s: int | None = None) -> HclDiagnostics:
        at = self.pos if s is None else s
        return _fail(self.src, summary, detail, at, min(at + 1, len(self.text)) if self.text else at)

    def value(self) -> JValue:
        self.skip()
        text, pos = self.text, self.pos
        if pos >= len(text):
            raise self.fail(
                "Missing JSON value",
                "A JSON value must start with a brace, a bracket, a number, a string, or a keyword.",
            )
        ch = text[pos]
        if ch == "{":
            return self.obj()
        if ch == "[":
            return self.array()
        if ch == '"':
            return self.string()
        if ch == "-" or ch.isdigit():
            m = _NUMBER.match(text, pos)
            if m is None:
                raise self.fail("Invalid JSON number", "There is a syntax error in the given JSON number.")
            self.pos = m.end()
            return JValue("number", m.group(), pos, self.pos)
        m = _KEYWORD.match(text, pos)
        if m is not None:
            word = m.group()
            self.pos = m.end()
            if word in ("true", "false"):
                return JValue("bool", word == "true", pos, self.pos)
            if word == "null":
                return JValue("null", None, pos, self.pos)
            raise self.fail(
                "Invalid JSON keyword",
                f'{go_quote(word)} is not a valid JSON keyword. Valid keywords are "true", '
                '"false", and "null".',
                pos,
            )
        raise self.fail(
            "Invalid start of value",
            "A JSON value must start with a brace, a bracket, a number, a string, or a keyword.",
        )

    def string(self) -> JValue:
        import json

        m = _STRING.match(self.text, self.pos)
        if m is None:
            raise self.fail("Invalid JSON string", "There is a syntax error in the given JSON string.")
        start = self.pos
        self.pos = m.end()
        try:
            value = json.loads(m.group())
        except ValueError:
            raise self.fail(
                "Invalid JSON string", "There is a syntax error in the given JSON string.", start
            ) from None
        return JValue("string", value, start, self.pos)

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail("Nesting too deep", f"nomadmesh reads at most {MAX_DEPTH} nested JSON values.")

    def obj(self) -> JValue:
        start = self.pos
        self.pos += 1
        self.enter()
        props: list[tuple[str, int, int, JValue]] = []
        while True:
            self.skip()
            if self.text.startswith("}", self.pos):
                self.pos += 1
                break
            if not self.text.startswith('"', self.pos):
                if self.pos >= len(self.text):
                    raise self.fail(
                        "Unclosed object", "No closing brace was found for this JSON object.", start
                    )
                raise self.fail(
                    "Invalid object property name", "A JSON object property name must be a string"
                )
            key = self.string()
            self.skip()
            if not self.text.startswith(":", self.pos):
                raise self.fail(
                    "Missing property value colon",
                    "A colon must appear between an object property's name and its value.",
                )
            self.pos += 1
            value = self.value()
            props.append((key.value, key.s, key.e, value))
            self.skip()
            if self.text.startswith(",", self.pos):
                comma = self.pos
                self.pos += 1
                self.skip()
                if self.text.startswith("}", self.pos):
                    raise self.fail(
                        "Trailing comma in object",
                        "JSON does not permit a trailing comma after the final property in an object.",
                        comma,
                    )
                continue
            if self.text.startswith("}", self.pos):
                self.pos += 1
                break
            if self.pos >= len(self.text):
                raise self.fail("Unclosed object", "No closing brace was found for this JSON object.", start)
            raise self.fail(
                "Missing attribute seperator comma",
                "A comma must appear between each property definition in an object.",
            )
        self.depth -= 1
        return JValue("object", props, start, self.pos)

    def array(self) -> JValue:
        start = self.pos
        self.pos += 1
        self.enter()
        items: list[JValue] = []
        while True:
            self.skip()
            if self.text.startswith("]", self.pos):
                self.pos += 1
                break
            items.append(self.value())
            self.skip()
            if self.text.startswith(",", self.pos):
                comma = self.pos
                self.pos += 1
                self.skip()
                if self.text.startswith("]", self.pos):
                    raise self.fail(
                        "Trailing comma in array",
                        "JSON does not permit a trailing comma after the final value in an array.",
                        comma,
                    )
                continue
            if self.text.startswith("]", self.pos):
                self.pos += 1
                break
            if self.pos >= len(self.text):
                raise self.fail("Unclosed object", "No closing bracket was found for this JSON array.", start)
            raise self.fail(
                "Missing attribute seperator comma", "A comma must appear between each value in an array."
            )
        self.depth -= 1
        return JValue("array", items, start, self.pos)


def parse_json_body(src: Source) -> JsonBody:
    """json.Parse: the whole text as one JSON value, read as a body."""
    parser = _Parser(src)
    value = parser.value()
    parser.skip()
    if parser.pos < len(src.text):
        raise parser.fail("Extraneous data after value", "Extra characters appear after the JSON value.")
    return JsonBody(value, src)


# --- values -------------------------------------------------------------------------------------


def _json_value(expr: JValue, ctx: Any) -> Any:
    """json/structure.go:384 expression.Value: strings are templates where evaluation has a context."""
    from nomadmesh.hcl._eval import evaluate
    from nomadmesh.hcl._values import STRING, ConversionError, convert, parse_number

    kind = expr.kind
    if kind == "string":
        if ctx.functions is None:
            return expr.value
        return evaluate(syn.parse_template_text(ctx.src, expr.value, expr.s + 1), ctx)
    if kind == "number":
        return parse_number(expr.value)
    if kind == "bool" or kind == "null":
        return expr.value
    if kind == "array":
        return [_json_value(v, ctx) for v in expr.value]
    out: dict[str, Any] = {}
    seen: dict[str, tuple[int, int]] = {}
    for name, ns, ne, v in expr.value:
        key = _json_value(JValue("string", name, ns, ne), ctx)
        try:
            key = convert(key, STRING)
        except ConversionError as exc:
            raise ctx.fail(
                "Invalid object key expression",
                f"Cannot use this expression as an object key: {exc}.",
                ns,
                ne,
            ) from None
        if key is None:
            raise ctx.fail("Invalid object key expression", "Cannot use null value as an object key.", ns, ne)
        if key in seen:
            raise ctx.fail(
                "Duplicate object attribute",
                f"An attribute named {go_quote(key)} was already defined at {ctx.src.range(*seen[key])}.",
                ns,
                ne,
            )
        seen[key] = (ns, ne)
        out[key] = _json_value(v, ctx)
    return out


def _register() -> None:
    from nomadmesh.hcl import _eval

    _eval._DISPATCH[JValue] = _json_value


_register()
