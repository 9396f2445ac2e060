"""Checks a document's text gets before a parser that would fail badly on it reads it."""

from __future__ import annotations

import re
import sys

# A run of digits (and the `_` separators TOML and YAML 1.1 allow) that starts at a non-digit,
# so that the search reads each run once; int() counts the digits without the separators.
_DIGIT_RUN = re.compile(r"(?<![0-9_])[0-9_]{2,}")
_BRACKET_OR_QUOTE = re.compile(r"[][{}\"'\\]")


def max_int_digits() -> int:
    """How many decimal digits int() converts (4,300 by default; 0: no limit, Python < 3.10.7)."""
    limit = getattr(sys, "get_int_max_str_digits", None)
    return int(limit()) if limit is not None else 0


def long_integer_line(text: str) -> int | None:
    """The 1-based line of the first decimal integer with more digits than int() converts."""
    limit = max_int_digits()
    if limit == 0:
        return None
    for run in _DIGIT_RUN.finditer(text):
        digits = run.group()
        if len(digits) > limit and len(digits) - digits.count("_") > limit:
            return text.count("\n", 0, run.start()) + 1
    return None


def brackets_deeper_than(text: str, limit: int, quotes: str = '"') -> bool:
    """Whether `[` and `{` outside quoted strings nest deeper than `limit`.

    Checked before a recursive parser (JSON, YAML flow collections) sees the text: PyYAML's
    scanner is quadratic in flow depth and needs seconds for 5,000 brackets.
    """
    level = 0
    quote = ""
    escaped = False
    for found in _BRACKET_OR_QUOTE.finditer(text):  # the text between them is skipped in C
        char = found.group()
        if quote:
            if escaped:
                escaped = False
            elif char == "\\" and quote == '"':
                escaped = True
            elif char == quote:
                quote = ""
        elif char in quotes:
            quote = char
        elif char in "[{":
            level += 1
            if level > limit:
                return True
        elif char in "]}":
            level -= 1
    return False
