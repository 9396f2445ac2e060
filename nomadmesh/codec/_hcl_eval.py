"""Evaluating the values python-hcl2 returns: strings, templates, references, variables, locals.

python-hcl2 keeps source text: strings arrive quoted with their escapes, heredocs with their
markers, and every other expression as `${...}`. This module turns that text into values the way
Nomad's jobspec2 does for the subset nomadmesh supports locally: literals, `var.*` and `local.*`
references with attribute and index access, and string templates. A reference rooted anywhere
else (`NOMAD_*`, `attr.*`, `meta.*`, `node.*`, `env.*`, ...) is a runtime interpolation and stays
the literal text `${...}`, as Nomad's `UnknownVariable` hook keeps it. Anything else (functions,
conditionals, for-expressions, arithmetic, splats, template directives) is UnsupportedExpression.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from hcl2.utils import process_escape_sequences

from nomadmesh.errors import UnsupportedExpression

SUGGESTION = ("nomadmesh evaluates only literals, var.* / local.* references and string templates; "
              "let a Nomad server parse this file instead (`nomad job run -output FILE` or "
              "POST /v1/jobs/parse) and load the JSON it prints")

_TRAVERSAL = re.compile(
    r"\s*([A-Za-z_][\w-]*)((?:\s*\.\s*[A-Za-z_][\w-]*|\s*\.\s*\d+|\s*\[\s*(?:\d+|\"[^\"\\]*\")\s*\])*)\s*\Z"
)
_STEP = re.compile(r"\.\s*([A-Za-z_][\w-]*|\d+)|\[\s*(\d+|\"[^\"\\]*\")\s*\]")
_NUMBER = re.compile(r"\s*-?\s*\d+(?:\.\d+)?(?:[eE][+-]?\d+)?\s*\Z")
_IDENTIFIER = re.compile(r"[A-Za-z_][\w-]*\Z", re.ASCII)
_FUNCTION = re.compile(r"[A-Za-z_][\w:]*\s*\(")
_SCOPES = ("var", "local")
# python-hcl2 returns heredocs as `"<<EOF\n...EOF"`; a quoted string never holds a raw newline.
_HEREDOC = re.compile(r"<<-?[A-Za-z_][\w-]*\r?\n")


class Unsupported(Exception):
    """An expression outside the locally supported subset (carries the expression text)."""

    def __init__(self, expression: str, what: str) -> None:
        super().__init__(expression)
        self.expression = expression
        self.what = what


class EvalProblem(Exception):
    """A supported expression that cannot be evaluated (unknown variable, bad index...)."""


def is_identifier(text: str) -> bool:
    """Whether `text` can be written bare as an HCL attribute name or object key."""
    return _IDENTIFIER.match(text) is not None and text not in ("true", "false", "null")


def runtime_reference(expr: str) -> bool:
    """Whether `${expr}` is a Nomad runtime interpolation kept literally (not var/local)."""
    m = _TRAVERSAL.match(expr)
    return m is not None and m.group(1) not in _SCOPES and m.group(1) not in ("true", "false",
                                                                             "null")


def classify(expr: str) -> str:
    """Name the kind of an unsupported expression for the error message."""
    stripped = expr.strip()
    if stripped.startswith(("[for ", "{for ", "[ for", "{ for")):
        return "for-expression"
    if _FUNCTION.match(stripped) or _FUNCTION.search(stripped):
        return "function call"
    if "[*]" in stripped or ".*" in stripped:
        return "splat expression"
    if "?" in stripped and ":" in stripped:
        return "conditional expression"
    if stripped.startswith("%{") or "%{" in stripped:
        return "template directive"
    return "expression"


class Scope:
    """Input variable values and lazily evaluated locals, for `var.x` and `local.y`."""

    def __init__(self, variables: Mapping[str, Any], locals_raw: Mapping[str, Any]) -> None:
        self.variables = variables
        self.locals_raw = locals_raw
        self.locals: dict[str, Any] = {}
        self._evaluating: list[str] = []

    def local(self, name: str) -> Any:
        """The value of `local.<name>`, evaluating it (and what it references) on first use."""
        if name in self.locals:
            return self.locals[name]
        if name not in self.locals_raw:
            raise EvalProblem(f"local.{name} is not defined in any locals block")
        if name in self._evaluating:
            cycle = " -> ".join(f"local.{n}" for n in
                                (*self._evaluating[self._evaluating.index(name):], name))
            raise EvalProblem(f"locals reference each other in a cycle: {cycle}")
        self._evaluating.append(name)
        try:
            value = evaluate(self.locals_raw[name], self)
        finally:
            self._evaluating.pop()
        self.locals[name] = value
        return value

    def lookup(self, expr: str) -> Any:
        """Resolve a traversal expression; runtime interpolations come back as `${expr}`."""
        m = _TRAVERSAL.match(expr)
        if m is None:
            if _NUMBER.match(expr):
                return _number(expr.replace(" ", ""))
            raise Unsupported(expr, classify(expr))
        root, rest = m.group(1), m.group(2)
        if root not in _SCOPES:
            if root in ("true", "false"):
                return root == "true"
            if root == "null":
                return None
            return "${" + expr.strip() + "}"
        steps = [s[0] or s[1] for s in _STEP.findall(rest)]
        if not steps:
            raise EvalProblem(f"{root!r} alone is not a value; use {root}.<name>")
        name = steps[0]
        if root == "var":
            if name not in self.variables:
                raise EvalProblem(f"var.{name} is not declared (add a variable \"{name}\" block)")
            value = self.variables[name]
        else:
            value = self.local(name)
        where = f"{root}.{name}"
        for step in steps[1:]:
            value = _index(value, step, where)
            where += f"[{step}]" if step[0] in '"0123456789' else f".{step}"
        return value


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)


def _index(value: Any, step: str, where: str) -> Any:
    if isinstance(value, list):
        if not step.isdigit():
            raise EvalProblem(f"{where} is a list; index it with a number, not {step}")
        i = int(step)
        if i >= len(value):
            raise EvalProblem(f"{where}[{i}] is out of range (the list has {len(value)} items)")
        return value[i]
    if isinstance(value, dict):
        key = step[1:-1] if step.startswith('"') else step
        if key not in value:
            raise EvalProblem(f"{where} has no key {key!r}")
        return value[key]
    raise EvalProblem(f"{where} is {type(value).__name__}, which has no attribute {step!r}")


def evaluate(raw: Any, scope: Scope) -> Any:
    """Evaluate one python-hcl2 value (attribute value, list item, object) to plain Python."""
    if type(raw) is str:
        return evaluate_text(raw, scope)
    if type(raw) is list:
        return [evaluate(v, scope) for v in raw]
    if type(raw) is dict:
        return {object_key(k, scope): evaluate(v, scope) for k, v in raw.items()
                if not k.startswith("__")}
    return raw


def object_key(key: str, scope: Scope) -> str:
    """An object key as written: bare identifiers as is, quoted keys unquoted and evaluated."""
    if key.startswith('"'):
        value = evaluate_text(key, scope)
    elif key.startswith("${"):
        value = scope.lookup(key[2:-1])
    else:
        return key
    if not isinstance(value, str):
        raise EvalProblem(f"object key {key} must be a string, got {type(value).__name__}")
    return value


def evaluate_text(raw: str, scope: Scope) -> Any:
    """A string from python-hcl2: a quoted template, a heredoc, or a `${...}` expression."""
    if raw.startswith('"'):
        body = raw[1:-1]
        if body.startswith("<<") and _HEREDOC.match(body):
            return render(heredoc_body(body), scope, escapes=False)
        if "$" not in body and "%" not in body:
            return process_escape_sequences(body) if "\\" in body else body
        return render(body, scope, escapes=True)
    if raw.startswith("${") and raw.endswith("}"):
        return scope.lookup(raw[2:-1])
    return scope.lookup(raw)


def heredoc_body(text: str) -> str:
    """The value of a heredoc from its source (`<<EOF\\n...\\nEOF`), `<<-` indentation removed."""
    first, _, rest = text.partition("\n")
    lines = rest.split("\n")
    if lines:
        lines.pop()  # the closing marker line
    if first.startswith("<<-"):
        widths = [len(line) - len(line.lstrip(" ")) for line in lines if line.strip()]
        cut = min(widths, default=0)
        lines = [line[cut:] for line in lines]
    return "".join(line + "\n" for line in lines)


def render(body: str, scope: Scope, *, escapes: bool) -> Any:
    """Render a template: literal text, `$${`/`%%{` escapes and `${expr}` interpolations.

    A template that is exactly one interpolation yields the value unchanged (a number stays a
    number), as in HCL.
    """
    parts: list[Any] = []
    literal: list[str] = []
    i, n = 0, len(body)
    while i < n:
        c = body[i]
        if c == "$" and body.startswith("$${", i):
            literal.append("${")
            i += 3
        elif c == "%" and body.startswith("%%{", i):
            literal.append("%{")
            i += 3
        elif c == "$" and body.startswith("${", i):
            end = _closing_brace(body, i + 2)
            expr = body[i + 2:end]
            if literal:
                text = "".join(literal)
                parts.append(process_escape_sequences(text) if escapes else text)
                literal = []
            parts.append(scope.lookup(expr))
            i = end + 1
        elif c == "%" and body.startswith("%{", i):
            end = _closing_brace(body, i + 2)
            raise Unsupported(body[i:end + 1], "template directive")
        else:
            j = i + 1
            while j < n and body[j] not in "$%":
                j += 1
            literal.append(body[i:j])
            i = j
    if literal:
        text = "".join(literal)
        parts.append(process_escape_sequences(text) if escapes else text)
    if len(parts) == 1:
        return parts[0]
    return "".join(_as_string(p) for p in parts)


def _closing_brace(body: str, start: int) -> int:
    """Index of the `}` closing an interpolation opened before `start` (strings skipped)."""
    depth = 0
    i = start
    in_string = False
    while i < len(body):
        c = body[i]
        if in_string:
            if c == "\\":
                i += 1
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c == "{":
            depth += 1
        elif c == "}":
            if depth == 0:
                return i
            depth -= 1
        i += 1
    raise Unsupported(body[start - 2:], "unterminated interpolation")


def _as_string(value: Any) -> str:
    """HCL's conversion of a template part to string (numbers and bools; not lists or maps)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return format_number(value)
    raise EvalProblem(f"a {type(value).__name__} cannot be interpolated into a string")


def format_number(value: int | float) -> str:
    """A number as HCL writes it (integral floats without a fraction)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(value)


# --- input variables -----------------------------------------------------------------------------

_TYPE_TOKEN = re.compile(r"\s*(?:([A-Za-z_]\w*)|(.))")


def parse_type(raw: Any) -> Any:
    """A variable's `type` as a nested tuple: ("string",), ("list", T), ("object", {k: T})."""
    text = raw[2:-1] if isinstance(raw, str) and raw.startswith("${") else raw
    if not isinstance(text, str):
        raise EvalProblem(f"type must be a type expression like string or list(number), got {raw!r}")
    tokens = [(m.group(1), m.group(2)) for m in _TYPE_TOKEN.finditer(text) if m.group(0).strip()]
    pos = 0

    def take() -> tuple[str | None, str | None]:
        nonlocal pos
        if pos >= len(tokens):
            raise EvalProblem(f"incomplete type expression {text!r}")
        pos += 1
        return tokens[pos - 1]

    def expect(ch: str) -> None:
        if take()[1] != ch:
            raise EvalProblem(f"malformed type expression {text!r}")

    def one() -> Any:
        nonlocal pos
        name, _ = take()
        if name in ("string", "number", "bool", "any"):
            return (name,)
        if name in ("list", "set", "map"):
            expect("(")
            inner = one()
            expect(")")
            return (name, inner)
        if name == "object":
            expect("(")
            expect("{")
            fields: dict[str, Any] = {}
            while tokens[pos][1] != "}":
                key, _ = take()
                if key is None:
                    raise EvalProblem(f"malformed type expression {text!r}")
                sep = take()[1]
                if sep not in ("=", ":"):
                    raise EvalProblem(f"malformed type expression {text!r}")
                fields[key] = one()
                if pos < len(tokens) and tokens[pos][1] == ",":
                    pos += 1
            expect("}")
            expect(")")
            return ("object", fields)
        if name == "tuple":
            expect("(")
            expect("[")
            items = []
            while tokens[pos][1] != "]":
                items.append(one())
                if tokens[pos][1] == ",":
                    pos += 1
            expect("]")
            expect(")")
            return ("tuple", tuple(items))
        raise EvalProblem(f"unknown type {name or text!r} (string, number, bool, list(...), "
                          "set(...), map(...), object({...}), tuple([...]) or any)")

    try:
        result = one()
    except IndexError:
        raise EvalProblem(f"incomplete type expression {text!r}") from None
    if pos != len(tokens):
        raise EvalProblem(f"malformed type expression {text!r}")
    return result


def convert(value: Any, vtype: Any, where: str, parse_text: Callable[[str], Any]) -> Any:
    """Convert a supplied value to a declared type (strings parsed as HCL/JSON where needed)."""
    kind = vtype[0]
    if kind == "any":
        return value
    if kind == "string":
        if isinstance(value, str):
            return value
        if isinstance(value, (bool, int, float)):
            return _as_string(value)
    elif kind == "number":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and _NUMBER.match(value):
            return _number(value.strip())
    elif kind == "bool":
        if isinstance(value, bool):
            return value
        if value in ("true", "false"):
            return value == "true"
    else:
        if isinstance(value, str):
            value = parse_text(value)
        if kind in ("list", "set") and isinstance(value, (list, tuple)):
            return [convert(v, vtype[1], f"{where}[{i}]", parse_text) for i, v in enumerate(value)]
        if kind == "tuple" and isinstance(value, (list, tuple)) and len(value) == len(vtype[1]):
            return [convert(v, t, f"{where}[{i}]", parse_text)
                    for i, (v, t) in enumerate(zip(value, vtype[1], strict=False))]
        if kind == "map" and isinstance(value, Mapping):
            return {str(k): convert(v, vtype[1], f"{where}.{k}", parse_text)
                    for k, v in value.items()}
        if kind == "object" and isinstance(value, Mapping):
            missing = sorted(set(vtype[1]) - set(value))
            if missing:
                raise EvalProblem(f"{where} is missing attribute {missing[0]!r}")
            return {k: convert(value[k], t, f"{where}.{k}", parse_text)
                    for k, t in vtype[1].items()}
    nested = "." in where[4:] or "[" in where
    raise EvalProblem(f"{value!r} is not a {type_name(vtype)}" + (f" (at {where})" if nested else ""))


def type_name(vtype: Any) -> str:
    """A declared type written back as HCL (`list(string)`)."""
    if len(vtype) == 1:
        return str(vtype[0])
    if vtype[0] == "object":
        return "object({" + ", ".join(f"{k} = {type_name(t)}" for k, t in vtype[1].items()) + "})"
    if vtype[0] == "tuple":
        return "tuple([" + ", ".join(type_name(t) for t in vtype[1]) + "])"
    return f"{vtype[0]}({type_name(vtype[1])})"


def parse_value_text(text: str) -> Any:
    """Parse a variable value given as text (`--var k=[1,2]`): JSON first, then HCL syntax."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    import hcl2

    try:
        parsed = hcl2.loads(f"v = {text}\n")
    except Exception as exc:  # any python-hcl2/lark failure means the text is not a value
        raise EvalProblem(f"{text!r} is not a valid HCL or JSON value") from exc
    return evaluate(parsed.get("v"), Scope({}, {}))


def locate(source_text: str, expression: str) -> int | None:
    """The 1-based line where `expression` appears in the source, when it can be found."""
    for probe in (expression, expression.strip()[:24]):
        if probe:
            at = source_text.find(probe)
            if at >= 0:
                return source_text.count("\n", 0, at) + 1
    return None


def unsupported_error(exc: Unsupported, source: str | None, text: str,
                      path: str) -> UnsupportedExpression:
    """The user-facing error for an expression nomadmesh cannot evaluate."""
    where = f" at {path}" if path else ""
    return UnsupportedExpression(
        f"cannot evaluate {exc.what} `{exc.expression.strip()}`{where}; {SUGGESTION}",
        source=source, line=locate(text, exc.expression),
    )

