"""Walk a job and collect every problem with its path: types first, then each block's rules."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from nomadmesh.errors import Problem
from nomadmesh.model._base import Kind, check_types, label_spec, specs

# Per class: (field name, HCL name, is a list, label attribute of the items or None).
_Plan = tuple[tuple[str, str, bool, str | None], ...]
_plans: dict[type, _Plan] = {}


def problems(obj: Any, path: str | None = None, *, typed: bool = False) -> Iterator[Problem]:
    """Every problem in `obj` and the blocks inside it; a Job's root path is `job[<id>]`.

    `typed=True` skips the field type checks, for objects a codec has already type-checked.
    """
    if path is None:
        path = f"job[{getattr(obj, 'id', '')}]" if type(obj).__name__ == "Job" else ""
    found: list[Problem] = []
    if typed:
        _typed_collector(type(obj))(obj, path, found)
    else:
        _collect(obj, path, typed, found)
    return iter(found)


_Collector = Callable[[Any, str, list[Problem]], None]
_collectors: dict[type, _Collector] = {}


def _typed_collector(cls: type) -> _Collector:
    """Generate a straight-line walker running each block's rules (types already checked)."""
    try:
        return _collectors[cls]
    except KeyError:
        pass
    ns: dict[str, Any] = {}
    lines = ["def collect(obj, path, out):"]
    if hasattr(cls, "problems"):
        lines.append("    out.extend(obj.problems(path))")
    for i, (name, hcl, is_list, label) in enumerate(_plan(cls)):
        block = next(s.block for s in specs(cls) if s.name == name)
        ns[f"sub{i}"] = _typed_collector(block)  # type: ignore[arg-type]
        lines.append(f"    v = obj.{name}")
        if not is_list:
            lines.append(f"    if v is not None: sub{i}(v, path + {'.' + hcl!r}, out)")
        elif label is None:
            lines.append("    for n, x in enumerate(v):")
            lines.append(f"        sub{i}(x, f'{{path}}.{hcl}[{{n}}]', out)")
        else:
            lines.append("    for x in v:")
            lines.append(f"        sub{i}(x, f'{{path}}.{hcl}[{{x.{label}}}]', out)")
    if len(lines) == 1:
        lines.append("    return None")
    # Generated from the model's own field table only; named so profiles and tracebacks say which.
    exec(compile("\n".join(lines), f"<nomadmesh rules {cls.__name__}>", "exec"), ns)
    collector: _Collector = ns["collect"]
    _collectors[cls] = collector
    return collector


def _collect(obj: Any, path: str, typed: bool, out: list[Problem]) -> None:
    skip: set[str] = set()
    if not typed:
        type_problems = list(check_types(obj, path))
        if type_problems:
            # Rules assume well-typed fields: report the types, then check the nested blocks.
            out.extend(type_problems)
            skip = {p.path for p in type_problems}
    if not skip:
        own = getattr(obj, "problems", None)
        if own is not None:
            out.extend(own(path))
    for name, hcl, is_list, label in _plan(type(obj)):
        value = getattr(obj, name)
        if not value:
            continue
        where = f"{path}.{hcl}" if path else hcl
        if where in skip:
            continue
        if not is_list:
            _collect(value, where, typed, out)
        elif label is None:
            for i, item in enumerate(value):
                _collect(item, f"{where}[{i}]", typed, out)
        else:
            for i, item in enumerate(value):
                _collect(item, f"{where}[{getattr(item, label, i)}]", typed, out)


def _plan(cls: type) -> _Plan:
    try:
        return _plans[cls]
    except KeyError:
        pass
    entries = []
    for s in specs(cls):
        if s.kind is Kind.BLOCK or s.kind is Kind.BLOCKS:
            lab = label_spec(s.block) if s.block is not None else None
            entries.append((s.name, s.hcl, s.kind is Kind.BLOCKS, lab.name if lab else None))
    plan = tuple(entries)
    _plans[cls] = plan
    return plan



