"""HCL2 native syntax: a regex-driven scanner and a recursive-descent parser, as hashicorp/hcl's
hclsyntax (v2.20.2-nomad-1) reads files: the same tokens, grammar, precedence and diagnostics.

Nodes keep character offsets into the source; `Source` turns them into HCL's `line,col` ranges.
Nesting is bounded (`MAX_DEPTH`) so hostile input ends in a diagnostic, not a RecursionError.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from nomadmesh.hcl._diag import Diagnostic, HclDiagnostics, Source

MAX_DEPTH = 200  # nested blocks, brackets and templates together

# --- tokens -------------------------------------------------------------------------------------
# A token is a tuple (kind, text, start, end); punctuation kinds are their own text.
IDENT, NUMBER, NL, COMMENT, EOF = "IDENT", "NUMBER", "NL", "COMMENT", "EOF"
OQUOTE, CQUOTE, OHEREDOC, CHEREDOC = "OQUOTE", "CQUOTE", "OHEREDOC", "CHEREDOC"
QLIT, SLIT, INTERP, CONTROL, SEQEND = "QLIT", "SLIT", "INTERP", "CONTROL", "SEQEND"
QNL, INVALID = "QNL", "INVALID"

Token = tuple[str, str, int, int]

_MAIN = re.compile(
    r"""[ \t]*(?:
 (?P<ident>[^\W\d][\w-]*)
|(?P<heredoc><<(-?)([^\W\d][\w-]*)\r?\n)
|(?P<comment>\#[^\n]*\n?|//[^\n]*\n?|/\*[\s\S]*?\*/)
|(?P<op>==|!=|>=|<=|&&|\|\||::|\.\.\.|=>|~\}|[\[\]().,*/%+\-=<>!?:&|~^;`'])
|(?P<nl>\r?\n)
|(?P<str>"[^"\\$%\r\n]*")
|(?P<quote>")
|(?P<ob>\{)
|(?P<cb>\})
|(?P<num>[0-9](?:[0-9]|[eE][+-]?[0-9]|\.+(?:[0-9]|[eE][+-]?[0-9]))*)
|(?P<eof>\Z)
|(?P<inv>[\s\S]))""",
    re.VERBOSE,
)

_QUOTED = re.compile(
    r"""
 (?P<interp>\$\{~?)
|(?P<control>%\{~?)
|(?P<cq>")
|(?P<lit>\$\$\{~?|%%\{~?|\$(?!\{)|%(?!\{)|(?:\\[^\r\n]|[^$%"\\\r\n])+)
|(?P<qnl>[\r\n]+)
|(?P<inv>[\s\S])
""",
    re.VERBOSE,
)

_HEREDOC = re.compile(
    r"""
 (?P<interp>\$\{~?)
|(?P<control>%\{~?)
|(?P<lit>(?:\$\$\{~?|%%\{~?|\$(?!\{)|%(?!\{)|[^$%\r\n]*)(?P<eol>\r?\n)?)
""",
    re.VERBOSE,
)

_INVALID_DETAIL = {
    "&": ("Unsupported operator", 'Bitwise operators are not supported. Did you mean boolean AND ("&&")?'),
    "|": ("Unsupported operator", 'Bitwise operators are not supported. Did you mean boolean OR ("||")?'),
    "^": ("Unsupported operator", "Bitwise operators are not supported."),
    "~": ("Unsupported operator", 'Bitwise operators are not supported. Did you mean boolean NOT ("!")?'),
    "`": (
        "Invalid character",
        'The "`" character is not valid. To create a multi-line string, use the '
        '"heredoc" syntax, like "<<EOT".',
    ),
    "'": ("Invalid character", 'Single quotes are not valid. Use double quotes (") to enclose strings.'),
    ";": (
        "Invalid character",
        'The ";" character is not valid. Use newlines to separate arguments and '
        "blocks, and commas to separate items in collection values.",
    ),
}


_LEXICAL_PROBLEMS = frozenset("&|^~`';")


def scan(src: Source) -> list[Token]:
    """Every token of a configuration file, comments included, ending with EOF."""
    return scan_tokens(src)[0]


def scan_tokens(src: Source, *, template: bool = False) -> tuple[list[Token], bool]:
    """The tokens, and whether any is one that checkInvalidTokens reports; `template` scans the
    text as a bare template (hclsyntax's scanTemplate mode: no quotes, no end marker)."""
    text = src.text
    bad = False
    pos = 1 if text.startswith("\ufeff") else 0
    n = len(text)
    out: list[Token] = []
    add = out.append
    # mode stack: "m" main, "q" quoted template, "h" heredoc (with marker, start-of-line flag)
    modes: list[Any] = [["h", None, False]] if template else ["m"]
    braces = 0
    ret_braces: list[int] = []
    main_match = _MAIN.match
    quoted_match = _QUOTED.match
    heredoc_match = _HEREDOC.match
    while pos < n:
        mode = modes[-1]
        if mode == "m":
            m = main_match(text, pos)
            assert m is not None
            kind = m.lastgroup
            end = m.end()
            tok = m.group(kind)  # type: ignore[arg-type]
            start = end - len(tok)
            if kind == "ident":
                add((IDENT, tok, start, end))
            elif kind == "op":
                if tok == "~}":
                    braces -= 1
                    add((SEQEND, tok, start, end))
                    if ret_braces and ret_braces[-1] == braces + 1:
                        ret_braces.pop()
                        modes.pop()
                else:
                    if tok in _LEXICAL_PROBLEMS:
                        bad = True
                    add((tok, tok, start, end))
            elif kind == "nl":
                add((NL, tok, start, end))
            elif kind == "str":  # a plain quoted string: no escapes, no templates
                add((OQUOTE, '"', start, start + 1))
                if end - start > 2:
                    add((QLIT, tok[1:-1], start + 1, end - 1))
                add((CQUOTE, '"', end - 1, end))
            elif kind == "num":
                add((NUMBER, tok, start, end))
            elif kind == "ob":
                braces += 1
                add(("{", "{", start, end))
            elif kind == "cb":
                if ret_braces and ret_braces[-1] == braces:
                    ret_braces.pop()
                    modes.pop()
                    add((SEQEND, "}", start, end))
                else:
                    add(("}", "}", start, end))
                braces -= 1
            elif kind == "comment":
                add((COMMENT, tok, start, end))
            elif kind == "quote":
                add((OQUOTE, '"', start, end))
                modes.append("q")
            elif kind == "heredoc":
                add((OHEREDOC, tok, start, end))
                modes.append(["h", _heredoc_marker(tok), True])
            elif kind == "eof":
                break
            else:
                bad = True
                add((INVALID, tok, start, end))
            pos = end
        elif mode == "q":
            m = quoted_match(text, pos)
            assert m is not None
            kind = m.lastgroup
            end = m.end()
            if kind == "lit":
                add((QLIT, m.group(), pos, end))
            elif kind == "cq":
                add((CQUOTE, '"', pos, end))
                modes.pop()
            elif kind == "interp" or kind == "control":
                add((INTERP if kind == "interp" else CONTROL, m.group(), pos, end))
                braces += 1
                ret_braces.append(braces)
                modes.append("m")
            elif kind == "qnl":
                bad = True
                add((QNL, m.group(), pos, end))
            else:
                bad = True
                add((INVALID, m.group(), pos, end))
            pos = end
        else:
            m = heredoc_match(text, pos)
            assert m is not None
            kind = m.lastgroup
            end = m.end()
            if kind == "interp" or kind == "control":
                add((INTERP if kind == "interp" else CONTROL, m.group(), pos, end))
                braces += 1
                ret_braces.append(braces)
                mode[2] = False
                modes.append("m")
                pos = end
                continue
            if end == pos:  # a lone "\r": nothing in HCL matches it
                bad = True
                add((INVALID, text[pos], pos, pos + 1))
                pos += 1
                continue
            lit = m.group()
            if m.group("eol") is not None:
                if mode[2] and lit.strip() == mode[1]:
                    nl_start = end - len(m.group("eol"))
                    add((CHEREDOC, text[pos:nl_start], pos, nl_start))
                    add((NL, text[nl_start:end], nl_start, end))
                    modes.pop()
                    pos = end
                    continue
                mode[2] = True
            else:
                mode[2] = False
            add((SLIT, lit, pos, end))
            pos = end
    add((EOF, "", n, n))
    return out, bad


def _heredoc_marker(opener: str) -> str:
    marker = opener[2:].rstrip("\r\n")
    return marker[1:] if marker.startswith("-") else marker


def invalid_token_diagnostics(src: Source, tokens: list[Token]) -> list[Diagnostic]:
    """The lexical problems hclsyntax's checkInvalidTokens reports, in token order."""
    diags: list[Diagnostic] = []
    told: dict[str, int] = {}
    for kind, text, start, end in tokens:
        if kind in _INVALID_DETAIL and kind == text:
            key = kind if kind in "`';" else "bitwise"
            count = told.get(key, 0)
            if key in "`'":
                if count % 2 == 0:
                    summary, detail = _INVALID_DETAIL[kind]
                    diags.append(Diagnostic(summary, detail, src.range(start, end)))
                if count <= 2:
                    told[key] = count + 1
            elif count < (4 if key == "bitwise" else 1):
                summary, detail = _INVALID_DETAIL[kind]
                diags.append(Diagnostic(summary, detail, src.range(start, end)))
                told[key] = count + 1
        elif kind == QNL:
            diags.append(
                Diagnostic(
                    "Invalid multi-line string",
                    "Quoted strings may not be split over multiple lines. To produce a multi-line string, "
                    'either use the \\n escape to represent a newline character or use the "heredoc" '
                    "multi-line template syntax.",
                    src.range(start, end),
                )
            )
        elif kind == INVALID:
            if text in "\u201c\u201d":
                detail = (
                    '"Curly quotes" are not valid here. These can sometimes be inadvertently '
                    "introduced when sharing code via documents or discussion forums. It might "
                    'help to replace the character with a "straight quote".'
                )
            else:
                detail = "This character is not used within the language."
            diags.append(Diagnostic("Invalid character", detail, src.range(start, end)))
    return diags


# --- syntax tree -------------------------------------------------------------------------------


class Node:
    """A syntax tree node: `s`/`e` are character offsets of its source range."""

    __slots__ = ("e", "s")
    s: int
    e: int


class Expr(Node):
    """An expression; evaluation lives in `_eval`."""

    __slots__ = ()


class Literal(Expr):
    __slots__ = ("value",)

    def __init__(self, value: Any, s: int, e: int) -> None:
        self.value = value
        self.s = s
        self.e = e


class TemplateExpr(Expr):
    __slots__ = ("parts",)

    def __init__(self, parts: list[Expr], s: int, e: int) -> None:
        self.parts = parts
        self.s = s
        self.e = e

    def is_string_literal(self) -> bool:
        return len(self.parts) == 1 and type(self.parts[0]) is Literal and type(self.parts[0].value) is str


class TemplateWrap(Expr):
    """A template that is a single interpolation: its value unconverted, as HCL unwraps it."""

    __slots__ = ("wrapped",)

    def __init__(self, wrapped: Expr, s: int, e: int) -> None:
        self.wrapped = wrapped
        self.s = s
        self.e = e


class TemplateJoin(Expr):
    """A `%{ for }` directive: the for expression's strings joined."""

    __slots__ = ("tuple",)

    def __init__(self, for_expr: ForExpr) -> None:
        self.tuple = for_expr
        self.s = for_expr.s
        self.e = for_expr.e


# traversal steps: ("attr", name, s, e) or ("index", key_value, s, e)
Step = tuple[str, Any, int, int]


class ScopeTraversal(Expr):
    __slots__ = ("root", "root_e", "steps")

    def __init__(self, root: str, s: int, e: int) -> None:
        self.root = root
        self.root_e = e
        self.steps: list[Step] = []
        self.s = s
        self.e = e


class RelativeTraversal(Expr):
    __slots__ = ("source", "steps")

    def __init__(self, source: Expr, steps: list[Step], s: int, e: int) -> None:
        self.source = source
        self.steps = steps
        self.s = s
        self.e = e


class FunctionCall(Expr):
    __slots__ = ("args", "expand_final", "name", "name_e", "open_e", "open_s")

    def __init__(
        self,
        name: str,
        args: list[Expr],
        expand_final: bool,
        s: int,
        name_e: int,
        open_s: int,
        open_e: int,
        e: int,
    ) -> None:
        self.name = name
        self.args = args
        self.expand_final = expand_final
        self.s = s
        self.name_e = name_e
        self.open_s = open_s
        self.open_e = open_e
        self.e = e


class Conditional(Expr):
    __slots__ = ("cond", "false", "true")

    def __init__(self, cond: Expr, true: Expr, false: Expr, s: int, e: int) -> None:
        self.cond = cond
        self.true = true
        self.false = false
        self.s = s
        self.e = e


class BinaryOp(Expr):
    __slots__ = ("lhs", "op", "rhs")

    def __init__(self, op: str, lhs: Expr, rhs: Expr) -> None:
        self.op = op
        self.lhs = lhs
        self.rhs = rhs
        self.s = lhs.s
        self.e = rhs.e


class UnaryOp(Expr):
    __slots__ = ("op", "operand", "sym_e")

    def __init__(self, op: str, operand: Expr, s: int, sym_e: int) -> None:
        self.op = op
        self.operand = operand
        self.s = s
        self.sym_e = sym_e
        self.e = operand.e


class TupleCons(Expr):
    __slots__ = ("exprs", "open_e")

    def __init__(self, exprs: list[Expr], s: int, open_e: int, e: int) -> None:
        self.exprs = exprs
        self.s = s
        self.open_e = open_e
        self.e = e


class ObjectKey(Expr):
    __slots__ = ("force_non_literal", "wrapped")

    def __init__(self, wrapped: Expr, force_non_literal: bool) -> None:
        self.wrapped = wrapped
        self.force_non_literal = force_non_literal
        self.s = wrapped.s
        self.e = wrapped.e

    def literal_name(self) -> str | None:
        """The bare identifier a key like `name = ...` stands for, as HCL reads it."""
        w = self.wrapped
        if not self.force_non_literal and type(w) is ScopeTraversal and not w.steps:
            return w.root
        return None


class ObjectCons(Expr):
    __slots__ = ("items", "open_e")

    def __init__(self, items: list[tuple[ObjectKey, Expr]], s: int, open_e: int, e: int) -> None:
        self.items = items
        self.s = s
        self.open_e = open_e
        self.e = e


class ForExpr(Expr):
    __slots__ = ("coll", "cond", "group", "key_expr", "key_var", "open_e", "val_expr", "val_var")

    def __init__(
        self,
        key_var: str | None,
        val_var: str,
        coll: Expr,
        key_expr: Expr | None,
        val_expr: Expr,
        cond: Expr | None,
        group: bool,
        s: int,
        open_e: int,
        e: int,
    ) -> None:
        self.key_var = key_var
        self.val_var = val_var
        self.coll = coll
        self.key_expr = key_expr
        self.val_expr = val_expr
        self.cond = cond
        self.group = group
        self.s = s
        self.open_e = open_e
        self.e = e


class IndexExpr(Expr):
    __slots__ = ("bracket_s", "coll", "key")

    def __init__(self, coll: Expr, key: Expr, bracket_s: int, e: int) -> None:
        self.coll = coll
        self.key = key
        self.bracket_s = bracket_s
        self.s = coll.s
        self.e = e


class AnonSymbol(Expr):
    __slots__ = ()

    def __init__(self, s: int, e: int) -> None:
        self.s = s
        self.e = e


class Splat(Expr):
    __slots__ = ("each", "item", "marker_s", "source")

    def __init__(self, source: Expr, each: Expr, item: AnonSymbol, marker_s: int, e: int) -> None:
        self.source = source
        self.each = each
        self.item = item
        self.marker_s = marker_s
        self.s = source.s
        self.e = e


class Parens(Expr):
    __slots__ = ("expr",)

    def __init__(self, expr: Expr, s: int, e: int) -> None:
        self.expr = expr
        self.s = s
        self.e = e


class Attribute(Node):
    __slots__ = ("expr", "name", "name_e")

    def __init__(self, name: str, expr: Expr, s: int, name_e: int, e: int) -> None:
        self.name = name
        self.expr = expr
        self.s = s
        self.name_e = name_e
        self.e = e


class Block(Node):
    __slots__ = ("body", "label_ranges", "labels", "obrace", "type", "type_e")

    def __init__(
        self,
        type_: str,
        labels: list[str],
        label_ranges: list[tuple[int, int]],
        body: Body,
        s: int,
        type_e: int,
        obrace: tuple[int, int],
        e: int,
    ) -> None:
        self.type = type_
        self.labels = labels
        self.label_ranges = label_ranges
        self.body = body
        self.s = s
        self.type_e = type_e
        self.obrace = obrace
        self.e = e

    def def_range(self) -> tuple[int, int]:
        """The block header, `type "label"`, as HCL's DefRange."""
        return self.s, self.label_ranges[-1][1] if self.label_ranges else self.type_e


class Body(Node):
    """Attributes by name (source order kept) and blocks in source order."""

    __slots__ = ("attrs", "blocks")

    def __init__(self, attrs: dict[str, Attribute], blocks: list[Block], s: int, e: int) -> None:
        self.attrs = attrs
        self.blocks = blocks
        self.s = s
        self.e = e


# --- parser --------------------------------------------------------------------------------------

_BINARY_PREC = {
    "||": 1,
    "&&": 2,
    "==": 3,
    "!=": 3,
    ">": 4,
    ">=": 4,
    "<": 4,
    "<=": 4,
    "+": 5,
    "-": 5,
    "*": 6,
    "/": 6,
    "%": 6,
}
_OPENERS = {"(": ")", "[": "]", "{": "}", OQUOTE: CQUOTE, OHEREDOC: CHEREDOC, INTERP: SEQEND, CONTROL: SEQEND}


class _ParseAbort(Exception):
    """The first syntax error: hclsyntax goes on recovering, we report the first and stop."""


class Parser:
    """Recursive descent over the token list, with hclsyntax's newline rules."""

    def __init__(self, src: Source, tokens: list[Token]) -> None:
        self.src = src
        toks: list[Token] = []
        for tok in tokens:
            if tok[0] is COMMENT:
                # A line comment ends its line: the peeker turns it into a newline.
                if tok[1].endswith("\n"):
                    toks.append((NL, "\n", tok[3] - 1, tok[3]))
                continue
            toks.append(tok)
        self.toks = toks
        self.pos = 0
        self.nl_stack: list[bool] = [True]
        self.depth = 0

    # peeker
    def peek(self) -> Token:
        toks = self.toks
        i = self.pos
        if not self.nl_stack[-1]:
            while toks[i][0] is NL:
                i += 1
        return toks[i]

    def read(self) -> Token:
        toks = self.toks
        i = self.pos
        if not self.nl_stack[-1]:
            while toks[i][0] is NL:
                i += 1
        tok = toks[i]
        if tok[0] is not EOF:
            i += 1
        self.pos = i
        return tok

    def prev_end(self) -> int:
        i = self.pos - 1
        return self.toks[i][3] if i >= 0 else 0

    def fail(self, summary: str, detail: str, s: int, e: int) -> _ParseAbort:
        return _ParseAbort(Diagnostic(summary, detail, self.src.range(s, e)))

    def enter(self, s: int, e: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail(
                "Nesting too deep",
                f"nomadmesh reads at most {MAX_DEPTH} nested blocks, brackets and templates.",
                s,
                e,
            )

    # bodies
    def parse_body(self, end: str, start: int) -> Body:
        attrs: dict[str, Attribute] = {}
        blocks: list[Block] = []
        while True:
            tok = self.peek()
            kind = tok[0]
            if kind is end or kind == end:
                self.read()
                return Body(attrs, blocks, start, tok[3])
            if kind is NL:
                self.read()
                continue
            if kind is IDENT:
                item = self.parse_body_item()
                if type(item) is Attribute:
                    existing = attrs.get(item.name)
                    if existing is not None:
                        raise self.fail(
                            "Attribute redefined",
                            f"The argument {_go_quote(item.name)} was already set at "
                            f"{self.src.range(existing.s, existing.name_e)}. Each argument may be "
                            "set only once.",
                            item.s,
                            item.name_e,
                        )
                    attrs[item.name] = item
                else:
                    blocks.append(item)  # type: ignore[arg-type]
                continue
            self.read()
            if kind is OQUOTE:
                raise self.fail("Invalid argument name", "Argument names must not be quoted.", tok[2], tok[3])
            if kind is EOF:
                if end == "}":
                    raise self.fail(
                        "Unclosed configuration block",
                        "There is no closing brace for this block before the end of the file. "
                        "This may be caused by incorrect brace nesting elsewhere in this file.",
                        start,
                        start + 1,
                    )
                raise self.fail(
                    "Unclosed configuration body",
                    "Found end of file before the end of this configuration body.",
                    start,
                    start,
                )
            raise self.fail(
                "Argument or block definition required",
                "An argument or block definition is required here.",
                tok[2],
                tok[3],
            )

    def parse_body_item(self) -> Attribute | Block:
        ident = self.read()
        nxt = self.peek()[0]
        if nxt == "=":
            return self.finish_attribute(ident, single_line=False)
        if nxt is OQUOTE or nxt == "{" or nxt is IDENT:
            return self.finish_block(ident)
        raise self.fail(
            "Argument or block definition required",
            "An argument or block definition is required here. To set an argument, use "
            'the equals sign "=" to introduce the argument value.',
            ident[2],
            ident[3],
        )

    def finish_attribute(self, ident: Token, single_line: bool) -> Attribute:
        self.read()  # "="
        expr = self.parse_expression()
        end = self.prev_end()
        if not single_line:
            tok = self.peek()
            if tok[0] is not NL and tok[0] is not EOF:
                if tok[0] == ",":
                    raise self.fail(
                        "Unexpected comma after argument",
                        "Argument definitions must be separated by newlines, not commas. "
                        "An argument definition must end with a newline.",
                        tok[2],
                        tok[3],
                    )
                raise self.fail(
                    "Missing newline after argument",
                    "An argument definition must end with a newline.",
                    tok[2],
                    tok[3],
                )
            self.read()
        return Attribute(ident[1], expr, ident[2], ident[3], end)

    def finish_block(self, ident: Token) -> Block:
        labels: list[str] = []
        label_ranges: list[tuple[int, int]] = []
        while True:
            tok = self.peek()
            kind = tok[0]
            if kind == "{":
                obrace = self.read()
                break
            if kind is OQUOTE:
                s = tok[2]
                labels.append(self.parse_quoted_label())
                label_ranges.append((s, self.prev_end()))
                continue
            if kind is IDENT:
                self.read()
                labels.append(tok[1])
                label_ranges.append((tok[2], tok[3]))
                continue
            if kind == "=":
                detail = (
                    'The equals sign "=" indicates an argument definition, and must not be '
                    "used when defining a block."
                )
            elif kind is NL:
                detail = (
                    'A block definition must have block content delimited by "{" and "}", '
                    "starting on the same line as the block header."
                )
            else:
                detail = 'Either a quoted string block label or an opening brace ("{") is expected here.'
            raise self.fail("Invalid block definition", detail, tok[2], tok[3])
        self.enter(obrace[2], obrace[3])
        nxt = self.peek()[0]
        if nxt is NL or nxt is EOF or nxt == "}":
            body = self.parse_body("}", obrace[2])
        else:
            body = self.parse_single_attr_body(obrace)
        self.depth -= 1
        close_e = self.prev_end()
        eol = self.peek()
        if eol[0] is NL or eol[0] is EOF:
            self.read()
        else:
            raise self.fail(
                "Missing newline after block definition",
                "A block definition must end with a newline.",
                eol[2],
                eol[3],
            )
        return Block(
            ident[1], labels, label_ranges, body, ident[2], ident[3], (obrace[2], obrace[3]), close_e
        )

    def parse_single_attr_body(self, obrace: Token) -> Body:
        ident = self.read()
        if ident[0] is not IDENT:
            raise self.fail(
                "Argument or block definition required",
                "An argument or block definition is required here.",
                ident[2],
                ident[3],
            )
        nxt = self.peek()
        if nxt[0] == "=":
            attr = self.finish_attribute(ident, single_line=True)
        elif nxt[0] is OQUOTE or nxt[0] == "{" or nxt[0] is IDENT:
            raise self.fail(
                "Argument definition required",
                "A single-line block definition can contain only a single argument. If you meant to "
                f"define argument {_go_quote(ident[1])}, use an equals sign to assign it a value. To "
                "define a nested block, place it on a line of its own within its parent block.",
                ident[2],
                nxt[3],
            )
        else:
            raise self.fail(
                "Argument or block definition required",
                "An argument or block definition is required here. To set an argument, use "
                'the equals sign "=" to introduce the argument value.',
                ident[2],
                ident[3],
            )
        close = self.peek()
        if close[0] == "}":
            self.read()
        elif close[0] == ",":
            raise self.fail(
                "Invalid single-argument block definition",
                "Single-line block syntax can include only one argument definition. To "
                "define multiple arguments, use the multi-line block syntax with one "
                "argument definition per line.",
                close[2],
                close[3],
            )
        elif close[0] is NL:
            raise self.fail(
                "Invalid single-argument block definition",
                "An argument definition on the same line as its containing block creates "
                "a single-line block definition, which must also be closed on the same "
                "line. Place the block's closing brace immediately after the argument "
                "definition.",
                close[2],
                close[3],
            )
        elif close[0] is EOF:
            raise self.fail(
                "Unclosed configuration block",
                "There is no closing brace for this block before the end of the file. "
                "This may be caused by incorrect brace nesting elsewhere in this file.",
                obrace[2],
                obrace[3],
            )
        else:
            raise self.fail(
                "Invalid single-argument block definition",
                "A single-line block definition must end with a closing brace "
                "immediately after its single argument definition.",
                close[2],
                close[3],
            )
        return Body({attr.name: attr}, [], attr.s, attr.e)

    def parse_quoted_label(self) -> str:
        oquote = self.read()
        parts: list[str] = []
        while True:
            tok = self.read()
            kind = tok[0]
            if kind is CQUOTE:
                return "".join(parts)
            if kind is QLIT:
                parts.append(self.string_literal(tok))
                continue
            if kind is INTERP or kind is CONTROL:
                raise self.fail(
                    "Invalid string literal",
                    "Template sequences are not allowed in this string. To include a "
                    f"literal {_go_quote(tok[1][0])}, double it (as {_go_quote(tok[1][0] * 2)})"
                    " to escape it.",
                    tok[2],
                    tok[3],
                )
            raise self.fail(
                "Unterminated template string",
                "No closing marker was found for the string.",
                oquote[2],
                tok[3],
            )

    def string_literal(self, tok: Token) -> str:
        text = tok[1]
        quoted = tok[0] is QLIT
        if quoted and "\\" in text:
            return _unescape(self, tok)
        if "{" in text and (text.startswith("$${") or text.startswith("%%{")):
            return text[1:]
        return text

    # expressions
    def parse_expression(self) -> Expr:
        start = self.peek()[2]
        cond = self.parse_binary(1)
        if self.peek()[0] != "?":
            return cond
        self.read()
        true = self.parse_expression()
        colon = self.peek()
        if colon[0] != ":":
            raise self.fail(
                "Missing false expression in conditional",
                "The conditional operator (...?...:...) requires a false expression, delimited by a colon.",
                colon[2],
                colon[3],
            )
        self.read()
        false = self.parse_expression()
        return Conditional(cond, true, false, start, false.e)

    def parse_binary(self, min_prec: int) -> Expr:
        lhs = self.parse_with_traversals()
        prec_of = _BINARY_PREC
        while True:
            op = self.peek()[0]
            prec = prec_of.get(op)
            if prec is None or prec < min_prec:
                return lhs
            self.read()
            rhs = self.parse_binary(prec + 1)
            lhs = BinaryOp(op, lhs, rhs)

    def parse_with_traversals(self) -> Expr:
        return self.parse_traversals(self.parse_term())

    def parse_traversals(self, ret: Expr) -> Expr:
        while True:
            tok = self.peek()
            kind = tok[0]
            if kind == ".":
                dot = self.read()
                attr = self.peek()
                if attr[0] is IDENT:
                    self.read()
                    ret = _extend(ret, ("attr", attr[1], dot[2], attr[3]))
                elif attr[0] is NUMBER:
                    self.read()
                    if "." in attr[1]:
                        first, _, second = attr[1].partition(".")
                        raise self.fail(
                            "Invalid legacy index syntax",
                            "When using the legacy index syntax, chaining two indexes "
                            "together is not permitted. Use the proper index syntax "
                            f"instead, like [{first}][{second}].",
                            attr[2],
                            attr[3],
                        )
                    ret = _extend(ret, ("index", self.number_value(attr), dot[2], attr[3]))
                elif attr[0] == "*":
                    marker = self.read()
                    steps: list[Step] = []
                    first_s = self.peek()[2]
                    last_e = marker[3]
                    while self.peek()[0] == ".":
                        d = self.read()
                        nt = self.peek()
                        if nt[0] is NUMBER:
                            self.read()
                            steps.append(("index", self.number_value(nt), d[2], nt[3]))
                        elif nt[0] is IDENT:
                            self.read()
                            steps.append(("attr", nt[1], d[2], nt[3]))
                        elif nt[0] == "*":
                            raise self.fail(
                                "Nested splat expression not allowed",
                                "A splat expression (*) cannot be used inside another "
                                "attribute-only splat expression.",
                                nt[2],
                                nt[3],
                            )
                        else:
                            raise self.fail(
                                "Invalid attribute name",
                                "An attribute name is required after a dot.",
                                marker[2],
                                marker[3],
                            )
                        last_e = nt[3]
                    item = AnonSymbol(dot[2], marker[3])
                    each: Expr = RelativeTraversal(item, steps, first_s, last_e) if steps else item
                    ret = Splat(ret, each, item, dot[2], last_e)
                else:
                    raise self.fail(
                        "Invalid attribute name",
                        "An attribute name is required after a dot.",
                        attr[2],
                        attr[3],
                    )
            elif kind == "[":
                open_ = self.read()
                if self.peek()[0] == "*":
                    self.read()
                    close = self.read()
                    if close[0] != "]":
                        raise self.fail(
                            "Missing close bracket on splat index",
                            "The star for a full splat operator must be immediately "
                            'followed by a closing bracket ("]").',
                            close[2],
                            close[3],
                        )
                    item = AnonSymbol(open_[2], close[3])
                    each = self.parse_traversals(item)
                    ret = Splat(ret, each, item, open_[2], each.e)
                    continue
                self.nl_stack.append(False)
                self.enter(open_[2], open_[3])
                key = self.parse_expression()
                close = self.read()
                self.depth -= 1
                self.nl_stack.pop()
                if close[0] != "]":
                    raise self.fail(
                        "Missing close bracket on index",
                        'The index operator must end with a closing bracket ("]").',
                        close[2],
                        close[3],
                    )
                if type(key) is Literal:
                    ret = _extend(ret, ("index", key.value, open_[2], close[3]))
                elif type(key) is TemplateExpr and key.is_string_literal():
                    part = key.parts[0]
                    assert type(part) is Literal
                    ret = _extend(
                        ret,
                        (
                            "index",
                            part.value,
                            open_[2],
                            close[3],
                        ),
                    )
                else:
                    ret = IndexExpr(ret, key, open_[2], close[3])
            else:
                return ret

    def number_value(self, tok: Token) -> Any:
        from nomadmesh.hcl._values import parse_number

        value = parse_number(tok[1])
        if value is None:
            raise self.fail(
                "Invalid number literal",
                "Failed to recognize the value of this number literal.",
                tok[2],
                tok[3],
            )
        return value

    def parse_term(self) -> Expr:
        tok = self.peek()
        kind = tok[0]
        if kind is IDENT:
            self.read()
            nxt = self.peek()[0]
            if nxt == "(" or nxt == "::":
                return self.finish_call(tok)
            name = tok[1]
            if name == "true":
                return Literal(True, tok[2], tok[3])
            if name == "false":
                return Literal(False, tok[2], tok[3])
            if name == "null":
                return Literal(None, tok[2], tok[3])
            return ScopeTraversal(name, tok[2], tok[3])
        if kind is NUMBER:
            self.read()
            return Literal(self.number_value(tok), tok[2], tok[3])
        if kind is OQUOTE or kind is OHEREDOC:
            self.read()
            if kind is OQUOTE:
                toks = self.toks
                i = self.pos
                lit = toks[i]
                if (
                    lit[0] is QLIT
                    and toks[i + 1][0] is CQUOTE
                    and "\\" not in lit[1]
                    and "{" not in lit[1][:3]
                ):
                    self.pos = i + 2  # the common case: a plain string, no escapes or templates
                    return TemplateExpr([Literal(lit[1], lit[2], lit[3])], tok[2], toks[i + 1][3])
            return self.parse_template(tok)
        if kind == "(":
            self.read()
            self.nl_stack.append(False)
            self.enter(tok[2], tok[3])
            expr = self.parse_expression()
            close = self.peek()
            if close[0] != ")":
                raise self.fail(
                    "Unbalanced parentheses",
                    "Expected a closing parenthesis to terminate the expression.",
                    close[2],
                    close[3],
                )
            self.read()
            self.depth -= 1
            self.nl_stack.pop()
            return Parens(expr, tok[2], close[3])
        if kind == "[":
            return self.parse_tuple()
        if kind == "{":
            return self.parse_object()
        if kind == "-" or kind == "!":
            self.read()
            self.enter(tok[2], tok[3])
            operand = self.parse_with_traversals()
            self.depth -= 1
            return UnaryOp(kind, operand, tok[2], tok[3])
        if kind is EOF:
            raise self.fail(
                "Missing expression",
                "Expected the start of an expression, but found the end of the file.",
                tok[2],
                tok[3],
            )
        raise self.fail(
            "Invalid expression",
            "Expected the start of an expression, but found an invalid expression token.",
            tok[2],
            tok[3],
        )

    def finish_call(self, name: Token) -> FunctionCall:
        open_ = self.read()
        fname = name[1]
        name_e = name[3]
        while open_[0] == "::":
            nxt = self.read()
            if nxt[0] is not IDENT:
                raise self.fail(
                    "Missing function name",
                    "Function scope resolution symbol :: must be followed by a function name in this scope.",
                    nxt[2],
                    nxt[3],
                )
            fname += "::" + nxt[1]
            name_e = nxt[3]
            open_ = self.read()
        if open_[0] != "(":
            raise self.fail(
                "Missing open parenthesis",
                "Function selector must be followed by an open parenthesis to begin the function call.",
                open_[2],
                open_[3],
            )
        args: list[Expr] = []
        expand = False
        self.nl_stack.append(False)
        self.enter(open_[2], open_[3])
        while True:
            if self.peek()[0] == ")":
                close = self.read()
                break
            args.append(self.parse_expression())
            sep = self.read()
            if sep[0] == ")":
                close = sep
                break
            if sep[0] == "...":
                expand = True
                close = self.read()
                if close[0] != ")":
                    raise self.fail(
                        "Missing closing parenthesis",
                        "An expanded function argument (with ...) must be immediately "
                        "followed by closing parentheses.",
                        sep[2],
                        sep[3],
                    )
                break
            if sep[0] != ",":
                if sep[0] is EOF:
                    raise self.fail(
                        "Unterminated function call",
                        "There is no closing parenthesis for this function call before "
                        "the end of the file. This may be caused by incorrect parenthesis "
                        "nesting elsewhere in this file.",
                        name[2],
                        open_[3],
                    )
                raise self.fail(
                    "Missing argument separator",
                    "A comma is required to separate each function argument from the next.",
                    sep[2],
                    sep[3],
                )
            if self.peek()[0] == ")":
                close = self.read()
                break
        self.depth -= 1
        self.nl_stack.pop()
        return FunctionCall(fname, args, expand, name[2], name_e, open_[2], open_[3], close[3])

    def parse_tuple(self) -> Expr:
        open_ = self.read()
        self.nl_stack.append(False)
        self.enter(open_[2], open_[3])
        try:
            tok = self.peek()
            if tok[0] is IDENT and tok[1] == "for":
                return self.finish_for(open_)
            exprs: list[Expr] = []
            while True:
                if self.peek()[0] == "]":
                    close = self.read()
                    break
                exprs.append(self.parse_expression())
                nxt = self.peek()
                if nxt[0] == "]":
                    close = self.read()
                    break
                if nxt[0] != ",":
                    if nxt[0] is EOF:
                        raise self.fail(
                            "Unterminated tuple constructor expression",
                            "There is no corresponding closing bracket before the end of "
                            "the file. This may be caused by incorrect bracket nesting "
                            "elsewhere in this file.",
                            open_[2],
                            open_[3],
                        )
                    raise self.fail(
                        "Missing item separator",
                        "Expected a comma to mark the beginning of the next item.",
                        nxt[2],
                        nxt[3],
                    )
                self.read()
            return TupleCons(exprs, open_[2], open_[3], close[3])
        finally:
            self.depth -= 1
            self.nl_stack.pop()

    def parse_object(self) -> Expr:
        open_ = self.read()
        self.nl_stack.append(False)
        tok = self.peek()
        self.nl_stack.pop()
        self.enter(open_[2], open_[3])
        try:
            if tok[0] is IDENT and tok[1] == "for":
                self.nl_stack.append(False)
                try:
                    return self.finish_for(open_)
                finally:
                    self.nl_stack.pop()
            self.nl_stack.append(True)
            try:
                return self.finish_object(open_)
            finally:
                self.nl_stack.pop()
        finally:
            self.depth -= 1

    def finish_object(self, open_: Token) -> ObjectCons:
        items: list[tuple[ObjectKey, Expr]] = []
        unterminated = (
            "Unterminated object constructor expression",
            "There is no corresponding closing brace before the end of the file. This may "
            "be caused by incorrect brace nesting elsewhere in this file.",
        )
        while True:
            nxt = self.peek()
            if nxt[0] is NL:
                self.read()
                continue
            if nxt[0] == "}":
                close = self.read()
                break
            force = nxt[0] == "("
            key = ObjectKey(self.parse_expression(), force)
            nxt = self.peek()
            if nxt[0] != "=" and nxt[0] != ":":
                if nxt[0] is NL or nxt[0] == ",":
                    raise self.fail(
                        "Missing attribute value",
                        'Expected an attribute value, introduced by an equals sign ("=").',
                        nxt[2],
                        nxt[3],
                    )
                if nxt[0] is IDENT:
                    raise self.fail(
                        "Missing key/value separator",
                        'Expected an equals sign ("=") to mark the beginning of the '
                        "attribute value. If you intended to given an attribute name "
                        "containing periods or spaces, write the name in quotes to create "
                        "a string literal.",
                        nxt[2],
                        nxt[3],
                    )
                if nxt[0] is EOF:
                    raise self.fail(*unterminated, open_[2], open_[3])
                raise self.fail(
                    "Missing key/value separator",
                    'Expected an equals sign ("=") to mark the beginning of the attribute value.',
                    nxt[2],
                    nxt[3],
                )
            self.read()
            value = self.parse_expression()
            items.append((key, value))
            nxt = self.peek()
            if nxt[0] == "}":
                close = self.read()
                break
            if nxt[0] != "," and nxt[0] is not NL:
                if nxt[0] is EOF:
                    raise self.fail(*unterminated, open_[2], open_[3])
                raise self.fail(
                    "Missing attribute separator",
                    "Expected a newline or comma to mark the beginning of the next attribute.",
                    nxt[2],
                    nxt[3],
                )
            self.read()
        return ObjectCons(items, open_[2], open_[3], close[3])

    def finish_for(self, open_: Token) -> Expr:
        self.read()  # "for"
        make_obj = open_[0] == "{"
        close_kind = "}" if make_obj else "]"

        def bad(detail: str) -> _ParseAbort:
            tok = self.peek()
            return self.fail("Invalid 'for' expression", detail, tok[2], tok[3])

        if self.peek()[0] is not IDENT:
            raise bad("For expression requires variable name after 'for'.")
        val_var = self.read()[1]
        key_var = None
        if self.peek()[0] == ",":
            self.read()
            key_var = val_var
            if self.peek()[0] is not IDENT:
                raise bad("For expression requires value variable name after comma.")
            val_var = self.read()[1]
        tok = self.peek()
        if tok[0] is not IDENT or tok[1] != "in":
            raise bad("For expression requires the 'in' keyword after its name declarations.")
        self.read()
        coll = self.parse_expression()
        if self.peek()[0] != ":":
            raise bad("For expression requires a colon after the collection expression.")
        self.read()
        val_expr = self.parse_expression()
        key_expr = None
        if self.peek()[0] == "=>":
            self.read()
            key_expr = val_expr
            val_expr = self.parse_expression()
        group = False
        ellipsis = None
        if self.peek()[0] == "...":
            ellipsis = self.read()
            group = True
        cond = None
        tok = self.peek()
        if tok[0] is IDENT and tok[1] == "if":
            self.read()
            cond = self.parse_expression()
        if self.peek()[0] != close_kind:
            raise bad("Extra characters after the end of the 'for' expression.")
        close = self.read()
        if not make_obj:
            if key_expr is not None:
                raise self.fail(
                    "Invalid 'for' expression",
                    "Key expression is not valid when building a tuple.",
                    key_expr.s,
                    key_expr.e,
                )
            if ellipsis is not None:
                raise self.fail(
                    "Invalid 'for' expression",
                    "Grouping ellipsis (...) cannot be used when building a tuple.",
                    ellipsis[2],
                    ellipsis[3],
                )
        elif key_expr is None:
            raise self.fail(
                "Invalid 'for' expression",
                "Key expression is required when building an object.",
                val_expr.s,
                val_expr.e,
            )
        return ForExpr(key_var, val_var, coll, key_expr, val_expr, cond, group, open_[2], open_[3], close[3])

    # templates
    def parse_template(self, open_: Token) -> Expr:
        flush = open_[0] is OHEREDOC and open_[1].startswith("<<-")
        end = CQUOTE if open_[0] is OQUOTE else CHEREDOC
        self.enter(open_[2], open_[3])
        parts, close_e = self.template_parts(open_, end)
        self.depth -= 1
        if flush:
            _flush_heredoc(parts)
        parts = _meld(parts)
        tp = _TemplateParser(self, parts)
        exprs = tp.parse_root()
        if len(parts) == 2 and parts[0][0] == "interp":
            return TemplateWrap(exprs[0], open_[2], close_e)
        return TemplateExpr(exprs, open_[2], close_e)

    def template_parts(self, open_: Token, end: str) -> tuple[list[list[Any]], int]:
        # part: ["lit", value, s, e] | ["interp", expr, s, e] | ["if"/"for"/"else"/"endif"/"endfor", ...]
        parts: list[list[Any]] = []
        ltrim_next = False
        next_can_trim_prev = False
        first = self.peek()
        start = first[2]
        while True:
            tok = self.read()
            kind = tok[0]
            if kind is end:
                close_e = tok[3]
                break
            ltrim = ltrim_next
            ltrim_next = False
            can_trim_prev = next_can_trim_prev
            next_can_trim_prev = False
            if kind is QLIT or kind is SLIT:
                value = self.string_literal(tok)
                if ltrim:
                    value = value.lstrip(_SPACE)
                parts.append(["lit", value, tok[2], tok[3]])
                next_can_trim_prev = True
            elif kind is INTERP:
                if can_trim_prev and tok[1].endswith("~") and parts and parts[-1][0] == "lit":
                    parts[-1][1] = parts[-1][1].rstrip(_SPACE)
                self.nl_stack.append(False)
                expr = self.parse_expression()
                close = self.peek()
                if close[0] is not SEQEND:
                    self.nl_stack.pop()
                    raise self._bad_interp_end(close, (first[2], first[3]), end)
                self.read()
                if close[1] == "~}":
                    ltrim_next = True
                self.nl_stack.pop()
                parts.append(["interp", expr, tok[2], close[3]])
            elif kind is CONTROL:
                if can_trim_prev and tok[1].endswith("~") and parts and parts[-1][0] == "lit":
                    parts[-1][1] = parts[-1][1].rstrip(_SPACE)
                self.nl_stack.append(False)
                parts.append(self._directive(tok, start))
                close = self.peek()
                if close[0] is not SEQEND:
                    raise self.fail(
                        f"Extra characters in {parts[-1][-1]} marker",
                        "Expected a closing brace to end the sequence, but found extra characters.",
                        close[2],
                        close[3],
                    )
                self.read()
                parts[-1][3] = close[3]
                if close[1] == "~}":
                    ltrim_next = True
                self.nl_stack.pop()
            else:
                raise self.fail(
                    "Unterminated template string",
                    "No closing marker was found for the string.",
                    tok[2],
                    tok[3],
                )
        if not parts:
            parts.append(["lit", "", first[3], first[3]])
        parts.append(["end", None, close_e, close_e])
        return parts, close_e

    def _bad_interp_end(self, close: Token, start_range: tuple[int, int], end: str) -> _ParseAbort:
        if close[0] is EOF:
            return self.fail(
                "Unclosed template interpolation sequence",
                "There is no closing brace for this interpolation sequence before the end "
                "of the file. This might be caused by incorrect nesting inside the given "
                "expression.",
                *start_range,
            )
        if close[0] == ":":
            return self.fail(
                "Extra characters after interpolation expression",
                "Template interpolation doesn't expect a colon at this location. Did you "
                "intend this to be a literal sequence to be processed as part of another "
                'language? If so, you can escape it by starting with "$${" instead of just '
                '"${".',
                close[2],
                close[3],
            )
        if (close[0] is CQUOTE or close[0] is OQUOTE) and end is CQUOTE:
            return self.fail(
                "Unclosed template interpolation sequence",
                "There is no closing brace for this interpolation sequence before the end "
                "of the quoted template. This might be caused by incorrect nesting inside "
                "the given expression.",
                *start_range,
            )
        return self.fail(
            "Extra characters after interpolation expression",
            "Expected a closing brace to end the interpolation expression, but found extra "
            "characters.\n\nThis can happen when you include interpolation syntax for "
            "another language, such as shell scripting, but forget to escape the "
            "interpolation start token. If this is an embedded sequence for another "
            'language, escape it by starting with "$${" instead of just "${".',
            close[2],
            close[3],
        )

    def _directive(self, open_: Token, start: int) -> list[Any]:
        kw = self.peek()
        if kw[0] is not IDENT:
            raise self.fail(
                "Invalid template directive",
                'A template directive keyword ("if", "for", etc) is expected at the '
                "beginning of a %{ sequence.",
                kw[2],
                kw[3],
            )
        self.read()
        word = kw[1]
        if word == "if":
            cond = self.parse_expression()
            return ["if", cond, open_[2], self.peek()[2], word]
        if word in ("else", "endif", "endfor"):
            return [word, None, open_[2], self.peek()[2], word]
        if word == "for":

            def bad(detail: str) -> _ParseAbort:
                tok = self.peek()
                return self.fail("Invalid 'for' directive", detail, tok[2], tok[3])

            if self.peek()[0] is not IDENT:
                raise bad("For directive requires variable name after 'for'.")
            val_var = self.read()[1]
            key_var = None
            if self.peek()[0] == ",":
                self.read()
                key_var = val_var
                if self.peek()[0] is not IDENT:
                    raise bad("For directive requires value variable name after comma.")
                val_var = self.read()[1]
            tok = self.peek()
            if tok[0] is not IDENT or tok[1] != "in":
                raise bad("For directive requires 'in' keyword after names.")
            self.read()
            coll = self.parse_expression()
            return ["for", (key_var, val_var, coll), open_[2], self.peek()[2], word]
        from nomadmesh.hcl._diag import name_suggestion

        suggestion = name_suggestion(word, ["if", "for", "else", "endif", "endfor"])
        hint = f" Did you mean {_go_quote(suggestion)}?" if suggestion else ""
        raise self.fail(
            "Invalid template control keyword",
            f"{_go_quote(word)} is not a valid template control keyword.{hint}",
            kw[2],
            kw[3],
        )


_SPACE = (
    " \t\n\r\v\f\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000"
)


class _TemplateParser:
    """Template parts (literals, interpolations, directives) into expressions."""

    def __init__(self, parser: Parser, parts: list[list[Any]]) -> None:
        self.p = parser
        self.parts = parts
        self.pos = 0

    def parse_root(self) -> list[Expr]:
        exprs: list[Expr] = []
        while self.parts[self.pos][0] != "end":
            exprs.append(self.parse_expr())
        return exprs

    def parse_expr(self) -> Expr:
        part = self.parts[self.pos]
        kind = part[0]
        self.pos += 1
        if kind == "lit":
            return Literal(part[1], part[2], part[3])
        if kind == "interp":
            return part[1]  # type: ignore[no-any-return]
        if kind == "if":
            return self.parse_if(part)
        if kind == "for":
            return self.parse_for(part)
        raise self.p.fail(
            f"Unexpected {kind} directive",
            "The control directives within this template are unbalanced.",
            part[2],
            part[3],
        )

    def parse_if(self, open_: list[Any]) -> Expr:
        if_exprs: list[Expr] = []
        else_exprs: list[Expr] = []
        current = if_exprs
        src = self.p.src
        while True:
            part = self.parts[self.pos]
            kind = part[0]
            if kind == "end":
                raise self.p.fail(
                    "Unexpected end of template",
                    f"The if directive at {src.range(open_[2], open_[3])} is missing its "
                    "corresponding endif directive.",
                    part[2],
                    part[3],
                )
            if kind in ("else", "endif", "endfor"):
                self.pos += 1
                if kind == "else" and current is if_exprs:
                    current = else_exprs
                    continue
                if kind == "endif":
                    endif = part
                    break
                if kind == "else":
                    raise self.p.fail(
                        "Unexpected else directive",
                        f"Already in the else clause for the if started at {src.range(open_[2], open_[3])}.",
                        part[2],
                        part[3],
                    )
                raise self.p.fail(
                    f"Unexpected {kind} directive",
                    f"Expecting an endif directive for the if started at {src.range(open_[2], open_[3])}.",
                    part[2],
                    part[3],
                )
            current.append(self.parse_expr())
        if not if_exprs:
            if_exprs.append(Literal("", open_[3], open_[3]))
        if not else_exprs:
            else_exprs.append(Literal("", endif[2], endif[2]))
        true = TemplateExpr(if_exprs, if_exprs[0].s, if_exprs[-1].e)
        false = TemplateExpr(else_exprs, else_exprs[0].s, else_exprs[-1].e)
        return Conditional(open_[1], true, false, open_[2], endif[3])

    def parse_for(self, open_: list[Any]) -> Expr:
        content: list[Expr] = []
        src = self.p.src
        while True:
            part = self.parts[self.pos]
            kind = part[0]
            if kind == "end":
                raise self.p.fail(
                    "Unexpected end of template",
                    f"The for directive at {src.range(open_[2], open_[3])} is missing its "
                    "corresponding endfor directive.",
                    part[2],
                    part[3],
                )
            if kind in ("else", "endif", "endfor"):
                self.pos += 1
                if kind == "endfor":
                    endfor = part
                    break
                if kind == "else":
                    raise self.p.fail(
                        "Unexpected else directive",
                        "An else clause is not expected for a for directive.",
                        part[2],
                        part[3],
                    )
                raise self.p.fail(
                    f"Unexpected {kind} directive",
                    "Expecting an endfor directive corresponding to the for directive at "
                    f"{src.range(open_[2], open_[3])}.",
                    part[2],
                    part[3],
                )
            content.append(self.parse_expr())
        if not content:
            content.append(Literal("", open_[3], open_[3]))
        key_var, val_var, coll = open_[1]
        body = TemplateExpr(content, content[0].s, content[-1].e)
        fe = ForExpr(key_var, val_var, coll, None, body, None, False, open_[2], open_[3], endfor[3])
        return TemplateJoin(fe)


def _flush_heredoc(parts: list[list[Any]]) -> None:
    """`<<-` heredocs: drop the smallest indentation shared by the lines, as hclsyntax does."""
    min_spaces = 1 << 62
    newline = True
    adjust: list[list[Any]] = []
    for part in parts:
        if newline:
            newline = False
            spaces = 0
            if part[0] == "lit":
                orig = part[1]
                trimmed = orig.lstrip(_SPACE)
                if not trimmed and orig.endswith("\n"):
                    spaces = 1 << 62
                else:
                    spaces = len(orig) - len(trimmed)
                    adjust.append(part)
            elif part[0] == "end":
                break
            min_spaces = min(min_spaces, spaces)
        if part[0] == "lit" and part[1].endswith("\n"):
            newline = True
    for part in adjust:
        part[1] = part[1][min_spaces:]
        part[2] += min_spaces


def _meld(parts: list[list[Any]]) -> list[list[Any]]:
    if len(parts) <= 2:
        return parts
    out: list[list[Any]] = []
    for part in parts:
        if out and part[0] == "lit" and out[-1][0] == "lit":
            out[-1] = ["lit", out[-1][1] + part[1], out[-1][2], part[3]]
        else:
            out.append(part)
    return out


_ESCAPE = re.compile(r"\\(u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|.?)|\$\$\{|%%\{", re.DOTALL)
_SIMPLE_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}


def _unescape(parser: Parser, tok: Token) -> str:
    text = tok[1]

    def repl(m: re.Match[str]) -> str:
        whole = m.group()
        if whole[0] != "\\":
            return whole[1:]
        sel = m.group(1)
        if not sel:
            raise parser.fail(
                "Invalid escape sequence",
                "Backslash must be followed by an escape sequence selector character.",
                tok[2] + m.start(),
                tok[2] + m.end(),
            )
        if sel in _SIMPLE_ESCAPES:
            return _SIMPLE_ESCAPES[sel]
        if sel[0] in "uU" and len(sel) > 1:
            code = int(sel[1:], 16)
            if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                raise parser.fail(
                    "Invalid escape sequence",
                    f"Cannot encode character U+{code:04x} in UTF-8.",
                    tok[2] + m.start(),
                    tok[2] + m.end(),
                )
            return chr(code)
        if sel == "u":
            raise parser.fail(
                "Invalid escape sequence",
                "The \\u escape sequence must be followed by four hexadecimal digits.",
                tok[2] + m.start(),
                tok[2] + m.end(),
            )
        if sel == "U":
            raise parser.fail(
                "Invalid escape sequence",
                "The \\U escape sequence must be followed by eight hexadecimal digits.",
                tok[2] + m.start(),
                tok[2] + m.end(),
            )
        raise parser.fail(
            "Invalid escape sequence",
            f"The symbol {_go_quote(sel)} is not a valid escape sequence selector.",
            tok[2] + m.start(),
            tok[2] + m.end(),
        )

    return _ESCAPE.sub(repl, text)


def _extend(expr: Expr, step: Step) -> Expr:
    if type(expr) is ScopeTraversal or type(expr) is RelativeTraversal:
        expr.steps.append(step)
        expr.e = step[3]
        return expr
    return RelativeTraversal(expr, [step], expr.s, step[3])


def _go_quote(text: str) -> str:
    """Go's %q for the simple strings diagnostics quote."""
    from nomadmesh.hcl._diag import go_quote

    return go_quote(text)


# --- entry points -------------------------------------------------------------------------------


def parse_config(src: Source) -> Body:
    """A whole configuration file's body; raises HclDiagnostics on the first syntax error."""
    tokens, bad = scan_tokens(src)
    if bad:
        raise HclDiagnostics(invalid_token_diagnostics(src, tokens))
    parser = Parser(src, tokens)
    try:
        return parser.parse_body(EOF, 0)
    except _ParseAbort as exc:
        raise HclDiagnostics([exc.args[0]]) from None


def parse_template_text(src: Source, text: str, base: int) -> Expr:
    """hclsyntax.ParseTemplate of a string found at `base` in `src` (a JSON string's value)."""
    tokens, bad = scan_tokens(Source(text, src.filename), template=True)
    shifted = [(k, t, s + base, e + base) for k, t, s, e in tokens]
    if bad:
        raise HclDiagnostics(invalid_token_diagnostics(src, shifted))
    parser = Parser(src, shifted)
    try:
        first = parser.peek()
        parts, close_e = parser.template_parts(first, EOF)
        parts = _meld(parts)
        exprs = _TemplateParser(parser, parts).parse_root()
        if len(parts) == 2 and parts[0][0] == "interp":
            return TemplateWrap(exprs[0], base, close_e)
        return TemplateExpr(exprs, base, close_e)
    except _ParseAbort as exc:
        raise HclDiagnostics([exc.args[0]]) from None


def parse_expression(src: Source) -> Expr:
    """One expression (a `-var` value or a variable `type`), all of the source."""
    tokens, bad = scan_tokens(src)
    if bad:
        raise HclDiagnostics(invalid_token_diagnostics(src, tokens))
    parser = Parser(src, tokens)
    parser.nl_stack = [False]
    try:
        expr = parser.parse_expression()
        tok = parser.peek()
        if tok[0] is not EOF:
            raise parser.fail(
                "Extra characters after expression",
                "An expression was successfully parsed, but extra characters were found after it.",
                tok[2],
                tok[3],
            )
        return expr
    except _ParseAbort as exc:
        raise HclDiagnostics([exc.args[0]]) from None


def line_starts(text: str) -> list[int]:
    """Offsets where each line begins."""
    starts = [0]
    find = text.find
    i = find("\n")
    while i >= 0:
        starts.append(i + 1)
        i = find("\n", i + 1)
    return starts


def walk_blocks(body: Body) -> Iterator[Block]:
    """Every block in a body, depth first."""
    for block in body.blocks:
        yield block
        yield from walk_blocks(block.body)
