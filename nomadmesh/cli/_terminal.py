"""Color on or off, as `nomad` decides it: -no-color / -force-color anywhere on the command line,
NOMAD_CLI_NO_COLOR / NOMAD_CLI_FORCE_COLOR (any non-empty value), else only on a terminal
(command/meta.go:261-283 at aa026cc). NO_COLOR (no-color.org) also turns color off."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import TextIO

NO_COLOR_FLAGS = ("-no-color", "--no-color")
FORCE_COLOR_FLAGS = ("-force-color", "--force-color")

# The few colors nomad's output uses (mitchellh/colorstring's codes).
GREEN, RED, YELLOW, LIGHT_YELLOW, CYAN, BLUE, BOLD = "32", "31", "33", "93", "36", "34", "1"

_choice: dict[str, bool] = {"no": False, "force": False}


def configure(args: Sequence[str], env: Mapping[str, str]) -> list[str]:
    """Record the color choice of this run; the arguments without the color flags."""
    rest: list[str] = []
    no_color = bool(env.get("NOMAD_CLI_NO_COLOR")) or bool(env.get("NO_COLOR"))
    force = bool(env.get("NOMAD_CLI_FORCE_COLOR"))
    for i, arg in enumerate(args):
        if arg == "--":
            rest.extend(args[i:])
            break
        if arg in NO_COLOR_FLAGS:
            no_color = True
        elif arg in FORCE_COLOR_FLAGS:
            force = True
        else:
            rest.append(arg)
    _choice.update(no=no_color, force=force)
    return rest


def color(stream: TextIO | None = None) -> bool:
    """Whether output to `stream` (default stdout) is colored: -no-color wins over -force-color."""
    if _choice["no"]:
        return False
    if _choice["force"]:
        return True
    target = stream if stream is not None else sys.stdout
    isatty = getattr(target, "isatty", None)
    return bool(isatty and isatty())


def paint(text: str, *codes: str, stream: TextIO | None = None) -> str:
    """`text` in the given SGR codes when color is on for `stream`, else unchanged."""
    if not codes or not text or not color(stream):
        return text
    return f"\x1b[{';'.join(codes)}m{text}\x1b[0m"


def error_line(message: str) -> str:
    """`error: ...` for standard error, red when color is on there (as nomad's ColoredUi)."""
    return paint(f"error: {message}", RED, stream=sys.stderr)


def click_color() -> bool | None:
    """click's `color` setting for this run: True forced, False off, None to detect per stream
    (click strips ANSI codes from output that is not a terminal unless told otherwise)."""
    if _choice["no"]:
        return False
    return True if _choice["force"] else None


def rich_options() -> dict[str, bool | None]:
    """Keyword arguments for rich.console.Console that follow the same choice."""
    if _choice["no"]:
        return {"no_color": True, "force_terminal": None}
    if _choice["force"]:
        return {"no_color": False, "force_terminal": True}
    return {"no_color": False, "force_terminal": None}
