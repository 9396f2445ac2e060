"""Source positions and diagnostics in hashicorp/hcl's form: `file:line,col-col: Summary; Detail`."""

from __future__ import annotations

import bisect


class Source:
    """One file's text; turns character offsets into HCL's 1-based lines and columns."""

    __slots__ = ("_starts", "filename", "text")

    def __init__(self, text: str, filename: str) -> None:
        self.text = text
        self.filename = filename
        self._starts: list[int] | None = None

    def position(self, offset: int) -> tuple[int, int]:
        """(line, column) of a character offset."""
        starts = self._starts
        if starts is None:
            starts = [0]
            find = self.text.find
            i = find("\n")
            while i >= 0:
                starts.append(i + 1)
                i = find("\n", i + 1)
            self._starts = starts
        line = bisect.bisect_right(starts, offset) - 1
        return line + 1, offset - starts[line] + 1

    def range(self, start: int, end: int) -> Range:
        return Range(self, start, end)


class Range:
    """A source range; prints as hcl.Range does."""

    __slots__ = ("end", "source", "start")

    def __init__(self, source: Source, start: int, end: int) -> None:
        self.source = source
        self.start = start
        self.end = end

    @property
    def line(self) -> int:
        return self.source.position(self.start)[0]

    @property
    def column(self) -> int:
        return self.source.position(self.start)[1]

    def __str__(self) -> str:
        line, col = self.source.position(self.start)
        end_line, end_col = self.source.position(self.end)
        name = self.source.filename
        if line == end_line:
            return f"{name}:{line},{col}-{end_col}"
        return f"{name}:{line},{col}-{end_line},{end_col}"


class ZeroRange(Range):
    """The empty hcl.Range of an expression built without a source (jobspec2's string -var values)."""

    def __init__(self) -> None:
        super().__init__(Source("", ""), 0, 0)

    @property
    def line(self) -> int:
        return 0

    @property
    def column(self) -> int:
        return 0

    def __str__(self) -> str:
        return ":0,0-0"


class Diagnostic:
    """One HCL error diagnostic."""

    __slots__ = ("detail", "subject", "summary")

    def __init__(self, summary: str, detail: str, subject: Range | None) -> None:
        self.summary = summary
        self.detail = detail
        self.subject = subject

    def __str__(self) -> str:
        where = str(self.subject) if self.subject is not None else "<nil>"
        return f"{where}: {self.summary}; {self.detail}"

    def __repr__(self) -> str:
        return f"Diagnostic({self})"


class JobConversionDiagnostic(Diagnostic):
    """The CLI's failure to write the parsed job as JSON (command/job_run.go "Error converting
    job"): Nomad's text has no position; the subject is kept for nomadmesh's own message."""

    __slots__ = ()

    def __str__(self) -> str:
        return f"{self.summary}: {self.detail}"


class HclDiagnostics(Exception):
    """Internal carrier of error diagnostics; the public API turns it into a nomadmesh error."""

    def __init__(self, diags: list[Diagnostic], unknown_type: object = None) -> None:
        super().__init__(diags)
        self.diags = diags
        # hcl returns cty.UnknownVal(T) beside its errors; T matters to an enclosing conditional.
        self.unknown_type = unknown_type


def go_quote(text: str) -> str:
    """Go's `%q` rendering of a string."""
    if text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    out = ['"']
    for ch in text:
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        elif not ch.isprintable() and ord(ch) > 0x7F:
            out.append(f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def levenshtein(a: str, b: str) -> int:
    """Edit distance, as the agext/levenshtein package hcl uses for suggestions."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def name_suggestion(given: str, suggestions: list[str]) -> str:
    """The first name within edit distance 2, as hcl's nameSuggestion picks it."""
    for suggestion in suggestions:
        # The distance is at least the length difference: skip the quadratic count for a name
        # that cannot be within 2 (a block type 200 KB long took 20 s otherwise).
        if abs(len(given) - len(suggestion)) < 3 and levenshtein(given, suggestion) < 3:
            return suggestion
    return ""
