"""Walk a job and collect every problem with its path: types first, then each block's rules."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from nomadmesh.errors import Problem
from nomadmesh.model._base import Kind, check_types, child_path, label_spec, specs


def problems(obj: Any, path: str | None = None) -> Iterator[Problem]:
    """Every problem in `obj` and the blocks inside it; a Job's root path is `job[<id>]`."""
    if path is None:
        path = f"job[{getattr(obj, 'id', '')}]" if type(obj).__name__ == "Job" else ""
    type_problems = list(check_types(obj, path))
    yield from type_problems
    bad_fields = {p.path for p in type_problems}
    own = getattr(obj, "problems", None)
    if own is not None and not type_problems:
        yield from own(path)
    for s in specs(type(obj)):
        if s.kind is Kind.BLOCK:
            value = getattr(obj, s.name)
            where = child_path(path, s.hcl)
            if value is not None and where not in bad_fields:
                yield from problems(value, where)
        elif s.kind is Kind.BLOCKS:
            where = child_path(path, s.hcl)
            items = getattr(obj, s.name)
            if where in bad_fields or not isinstance(items, tuple):
                continue
            lab = label_spec(s.block) if s.block is not None else None
            for i, item in enumerate(items):
                if s.block is not None and not isinstance(item, s.block):
                    continue
                key = getattr(item, lab.name) if lab is not None else i
                yield from problems(item, f"{where}[{key}]")
