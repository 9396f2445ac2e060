"""Aligned columns as `nomad` prints them (ryanuber/columnize via helpers.go formatList/formatKV):
two spaces between columns, `<none>` for an empty cell, `Key = value` pairs."""

from __future__ import annotations

from collections.abc import Sequence

EMPTY = "<none>"


def columns(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A header and rows, each column as wide as its widest cell (formatList)."""
    table = [list(header), *([c or EMPTY for c in row] for row in rows)]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in table)


def key_values(pairs: Sequence[tuple[str, str]]) -> str:
    """`Key = value` lines with the keys padded to one width (formatKV)."""
    width = max((len(k) for k, _ in pairs), default=0)
    return "\n".join(f"{k.ljust(width)} = {v or EMPTY}" for k, v in pairs)
