"""Validation: every field's type, then the rules Nomad's server applies (nomad/structs)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from nomadmesh.errors import Problem
from nomadmesh.model._base import Kind, label_spec, specs, type_problems


def problems(obj: Any, path: str | None = None) -> Iterator[Problem]:
    """Every type problem in `obj` and the blocks inside it, then (when types are sound) the rules.

    A Job's root path is `job[<id>]`.
    """
    if path is None:
        path = f"job[{getattr(obj, 'id', '')}]" if type(obj).__name__ == "Job" else ""
    found = list(types(obj, path))
    if found:
        return iter(found)
    rules = getattr(obj, "rule_problems", None)
    return iter(list(rules(path)) if rules is not None else [])


def types(obj: Any, path: str) -> Iterator[Problem]:
    """Type problems of `obj` and every block inside it, with paths in HCL names."""
    stack: list[tuple[Any, str]] = [(obj, path)]
    while stack:
        item, where = stack.pop()
        own = list(type_problems(item, where))
        yield from own
        bad = {p.path for p in own}
        children: list[tuple[Any, str]] = []
        for s in specs(type(item)):
            value = getattr(item, s.name)
            if not value or s.block is None:
                continue
            at = f"{where}.{s.where}"
            if at in bad:
                continue
            if s.kind is Kind.BLOCK:
                children.append((value, at))
            elif s.kind is Kind.BLOCKS:
                lab = label_spec(s.block)
                for i, x in enumerate(value):
                    tag = getattr(x, lab.name, None) if lab is not None else None
                    children.append((x, f"{at}[{tag if isinstance(tag, str) and tag else i}]"))
            elif s.kind is Kind.BLOCK_MAP:
                children.extend((x, f"{at}[{k}]") for k, x in value.items())
        stack.extend(reversed(children))
