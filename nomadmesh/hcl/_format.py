"""`nomad fmt`: hclwrite's token formatter (hcl v2.20.2 hclwrite/format.go) on our tokens.

Only the spaces between tokens change: indentation (two spaces per open bracket), one space
around operators, aligned `=` and trailing comments in runs of lines. Tokens themselves, their
order, comments and blank lines stay as written; a file with syntax errors is refused, as
`nomad fmt` refuses it (command/fmt.go processFile).
"""

from __future__ import annotations

from nomadmesh.hcl import _syntax as syn
from nomadmesh.hcl._diag import Source


class _Tok:
    __slots__ = ("kind", "spaces", "text")

    def __init__(self, kind: str, text: str, spaces: int) -> None:
        self.kind = kind
        self.text = text
        self.spaces = spaces


_OPEN = {"{", "[", "(", syn.CONTROL, syn.INTERP}
_CLOSE = {"}", "]", ")", syn.SEQEND}


def format_text(text: str, filename: str) -> str:
    """The formatted text; raises HclDiagnostics when the file is not valid HCL syntax."""
    src = Source(text, filename)
    syn.parse_config(src)
    tokens = _writer_tokens(text, syn.scan(src))
    _format(tokens)
    return "".join(" " * t.spaces + t.text for t in tokens)


def _writer_tokens(text: str, raw: list[syn.Token]) -> list[_Tok]:
    out: list[_Tok] = []
    last = 1 if text.startswith("\ufeff") else 0
    for kind, tok_text, start, end in raw:
        out.append(_Tok(kind, tok_text, start - last))
        last = end
    return out


def _bracket(t: _Tok) -> int:
    if t.kind in _OPEN:
        return 1
    if t.kind in _CLOSE:
        return -1
    return 0


def _is_newline(t: _Tok) -> bool:
    return t.kind is syn.NL or (t.kind is syn.COMMENT and t.text.endswith("\n"))


class _Line:
    __slots__ = ("assign", "comment", "lead")

    def __init__(self, lead: list[_Tok]) -> None:
        self.lead = lead
        self.assign: list[_Tok] | None = None
        self.comment: list[_Tok] | None = None


def _columns(tokens: list[_Tok] | None) -> int:
    return sum(t.spaces + grapheme_count(t.text) for t in tokens or ())


def grapheme_count(text: str) -> int:
    """Characters as a reader counts them (textseg grapheme clusters, for the common cases)."""
    if text.isascii():
        return len(text)
    import unicodedata

    count = 0
    join_next = False
    regional = False
    for ch in text:
        cp = ord(ch)
        if join_next or unicodedata.combining(ch) or 0xFE00 <= cp <= 0xFE0F or 0x1F3FB <= cp <= 0x1F3FF:
            join_next = False
            continue
        if cp == 0x200D:
            join_next = True
            continue
        if 0x1F1E6 <= cp <= 0x1F1FF:
            if regional:
                regional = False
                continue
            regional = True
        else:
            regional = False
        count += 1
    return count


def _lines(tokens: list[_Tok]) -> list[_Line]:
    lines: list[_Line] = []
    start = 0
    for i, tok in enumerate(tokens):
        if tok.kind is syn.EOF:
            lines.append(_Line(tokens[start:i]))
            start = len(tokens)
            break
        if _is_newline(tok):
            lines.append(_Line(tokens[start : i + 1]))
            start = i + 1
    if start < len(tokens):
        rest = [t for t in tokens[start:] if t.kind is not syn.EOF]
        lines.append(_Line(rest))
    for line in lines:
        lead = line.lead
        if not lead:
            continue
        if len(lead) > 1 and lead[-1].kind is syn.COMMENT:
            line.comment = lead[-1:]
            line.lead = lead = lead[:-1]
        for i, tok in enumerate(lead):
            if i > 0 and tok.kind == "=":
                if sum(_bracket(t) for t in lead[i:]) == 0:
                    line.assign = lead[i:]
                    line.lead = lead[:i]
                break
    return lines


def _format(tokens: list[_Tok]) -> None:
    lines = _lines(tokens)
    _indent(lines)
    _spaces(lines)
    _cells(lines)


def _indent(lines: list[_Line]) -> None:
    indents: list[int] = []
    for line in lines:
        if not line.lead:
            continue
        if line.lead[0].kind is syn.NL:
            line.lead[0].spaces = 0
            continue
        net = 0
        for tok in line.lead:
            net += _bracket(tok)
            if tok.kind is syn.OHEREDOC:
                break
        for tok in line.assign or ():
            net += _bracket(tok)
        if net > 0:
            line.lead[0].spaces = 2 * len(indents)
            indents.append(net)
        elif net < 0:
            closed = -net
            while closed > 0 and indents:
                if closed > indents[-1]:
                    closed -= indents.pop()
                elif closed < indents[-1]:
                    indents[-1] -= closed
                    closed = 0
                else:
                    indents.pop()
                    closed = 0
            line.lead[0].spaces = 2 * len(indents)
        else:
            line.lead[0].spaces = 2 * len(indents)


_NIL = _Tok("NIL", "", 0)
_MINUS_TIGHT_AFTER = {
    "NIL",
    "(",
    "{",
    "[",
    "=",
    ":",
    ",",
    "?",
    "+",
    "*",
    "/",
    "%",
    "-",
    "==",
    "!=",
    ">",
    ">=",
    "<",
    "<=",
    "&&",
    "||",
    "!",
}


def _space_after(subject: _Tok, before: _Tok, after: _Tok) -> bool:
    """hclwrite spaceAfterToken."""
    s, a = subject.kind, after.kind
    if a is syn.NL or a == "NIL":
        return False
    if s is syn.IDENT and a == "(":
        return False
    if (s is syn.IDENT and a == "::") or (s == "::" and a is syn.IDENT):
        return False
    if s == "." or a == ".":
        return False
    if a == "," or a == "...":
        return False
    if s == ",":
        return True
    if s in (syn.QLIT, syn.SLIT, syn.OQUOTE, syn.OHEREDOC) or a in (
        syn.QLIT,
        syn.SLIT,
        syn.CQUOTE,
        syn.CHEREDOC,
    ):
        return False
    if s is syn.IDENT and subject.text == "in" and before.kind is syn.IDENT:
        return True
    if a == "[" and (s is syn.IDENT or s is syn.NUMBER or _bracket(subject) < 0):
        return False
    if s == "!":
        return False
    if s == "-":
        return before.kind not in _MINUS_TIGHT_AFTER
    if s == "{" or a == "}":
        return not (s == "{" and a == "}")
    if (s is syn.INTERP or s is syn.CONTROL) and a == "{":
        return True
    if s == "}" and a is syn.SEQEND:
        return True
    if s is syn.SEQEND and (a is syn.INTERP or a is syn.CONTROL):
        return False
    if _bracket(subject) > 0:
        return False
    return not _bracket(after) < 0


def _spaces(lines: list[_Line]) -> None:
    for line in lines:
        lead = line.lead
        for i in range(len(lead) - 1):
            before = lead[i - 1] if i > 0 else _NIL
            lead[i + 1].spaces = 1 if _space_after(lead[i], before, lead[i + 1]) else 0
        assign = line.assign
        if assign:
            assign[0].spaces = 1
            for i in range(len(assign) - 1):
                before = assign[i - 1] if i > 0 else _NIL
                assign[i + 1].spaces = 1 if _space_after(assign[i], before, assign[i + 1]) else 0


def _cells(lines: list[_Line]) -> None:
    chain: list[_Line] = []
    widest = 0
    for line in [*lines, None]:
        if line is None or line.assign is None:
            for member in chain:
                assert member.assign is not None
                member.assign[0].spaces = widest - _columns(member.lead) + 1
            chain, widest = [], 0
        else:
            chain.append(line)
            widest = max(widest, _columns(line.lead))
    for line in [*lines, None]:
        if line is None or line.comment is None:
            for member in chain:
                assert member.comment is not None
                member.comment[0].spaces = widest - _columns(member.lead) - _columns(member.assign) + 1
            chain, widest = [], 0
        else:
            chain.append(line)
            widest = max(widest, _columns(line.lead) + _columns(line.assign))
