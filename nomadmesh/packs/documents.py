"""Pack variable values read from JSON, YAML and TOML text: data only, bounded, and finite.

Whatever the text holds, the answer is a document of dicts, lists, strings, booleans, finite
numbers and None, or a ParseError saying where and why: nesting deeper than MAX_DEPTH, numbers
that are not finite (NaN, Infinity: Go's JSON decoder refuses them, and so does Nomad), integers
longer than Python reads (4,300 digits), YAML anchors and aliases (an alias bomb expands
exponentially), and YAML tags that would build objects (only the safe loader is used).
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any

from nomadmesh._reading import brackets_deeper_than
from nomadmesh.errors import ParseError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

MAX_DEPTH = 100


def parse_json(text: str, source: str) -> Any:
    """A JSON document; NaN and Infinity are refused, as JSON itself does."""
    _check_brackets(text, source)
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise ParseError(exc.msg, source=source, line=exc.lineno, column=exc.colno) from None
    except _Constant as exc:
        raise ParseError(f"{exc.token} is not a JSON number", source=source) from None
    except ValueError as exc:  # an integer of more than 4,300 digits
        raise ParseError(f"a number is too long: {exc}", source=source) from None
    return checked(data, source)


def parse_yaml(text: str, source: str) -> Any:
    """A YAML document through the safe loader, without anchors and aliases."""
    import yaml

    _check_brackets(text, source, quotes="\"'")

    class Loader(yaml.SafeLoader):
        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise ParseError("YAML aliases (*name) are not supported in variable files",
                                 source=source, line=mark.line + 1, column=mark.column + 1)
            return super().compose_node(parent, index)

    try:
        data = yaml.load(text, Loader=Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ParseError(str(getattr(exc, "problem", None) or exc), source=source,
                         line=mark.line + 1 if mark else None,
                         column=mark.column + 1 if mark else None) from None
    except RecursionError:
        raise ParseError(f"nested deeper than {MAX_DEPTH} levels", source=source) from None
    except ValueError as exc:  # an integer of more than 4,300 digits
        raise ParseError(f"a number is too long: {exc}", source=source) from None
    return checked(data, source)


def parse_toml(text: str, source: str) -> Any:
    """A TOML document (nan and inf, which TOML allows, are refused)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ParseError(str(exc), source=source) from None
    except RecursionError:
        raise ParseError(f"nested deeper than {MAX_DEPTH} levels", source=source) from None
    except ValueError as exc:
        raise ParseError(f"a number is too long: {exc}", source=source) from None
    return checked(data, source)


def checked(data: Any, source: str) -> Any:
    """`data` itself when it is nested at most MAX_DEPTH deep and every float is finite."""
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        node, level = stack.pop()
        if level > MAX_DEPTH:
            raise ParseError(f"nested deeper than {MAX_DEPTH} levels", source=source)
        if isinstance(node, float) and not math.isfinite(node):
            raise ParseError(f"{node} is not a finite number", source=source)
        if isinstance(node, dict):
            stack.extend((v, level + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, level + 1) for v in node)
    return data


class _Constant(Exception):
    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.token = token


def _no_constant(token: str) -> Any:
    raise _Constant(token)


def _check_brackets(text: str, source: str, quotes: str = '"') -> None:
    """Refuse brackets nested deeper than MAX_DEPTH (outside quoted strings) before a recursive
    parser sees them: JSON, and YAML's flow collections (PyYAML needs seconds for 5,000)."""
    if brackets_deeper_than(text, MAX_DEPTH, quotes):
        raise ParseError(f"nested deeper than {MAX_DEPTH} levels", source=source)
