"""Compiled copies for the canonical passes: `evolve` with a fixed set of changed fields.

`copier(cls, names, namespace, name)` gives `copy(obj, *values)`, which returns exactly what
`evolve(obj, **dict(zip(names, values)))` returns (the instance's own values, the changed fields
through their converters) without building and walking a keyword dict: the canonical passes copy
~15,000 blocks of a 500-group job, each with up to 14 fields named at the call site.

The copy is compiled from the class's own field table on its first call and replaces the stand-in
in `namespace[name]`, so a caller's global lookup finds it directly afterwards. An object of
another class (a subclass), or a class `evolve` copies through `__init__`, is copied by `evolve`
itself. tests/test_model_fused.py checks every copier against `evolve`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from nomadmesh.model import _base
from nomadmesh.model._base import FrozenDict, evolve

T = TypeVar("T")


# Every copy declared with `copier`, as (class, fields): what tests/test_model_fused.py checks.
DECLARED: list[tuple[type, tuple[str, ...]]] = []


def copier(cls: type[T], names: Sequence[str], namespace: dict[str, Any],
           name: str) -> Callable[..., T]:
    """A stand-in for `cls`'s copy with `names` changed, compiled into `namespace[name]` on first use."""
    fields = tuple(names)
    DECLARED.append((cls, fields))

    def first(obj: Any, *values: Any) -> T:
        compiled = namespace[name] = compile_copier(cls, fields)
        copy: T = compiled(obj, *values)
        return copy

    first.__qualname__ = name
    return first


def compile_copier(cls: type[T], names: tuple[str, ...]) -> Callable[..., T]:
    """`copy(obj, *values)`: `evolve(obj, **dict(zip(names, values)))`, compiled for `cls`."""
    params = [f"v{i}" for i in range(len(names))]
    given = "".join(f"{v}, " for v in params)
    namespace: dict[str, Any] = {"__cls": cls, "__evolve": evolve, "__names": names,
                                 "__new": object.__new__, "__set": object.__setattr__,
                                 **fixed_point_names()}
    lines = [f"def copy(obj, {given}):",
             "    if __type(obj) is not __cls:",
             f"        return __evolve(obj, **dict(zip(__names, ({given}))))"]
    table = converters(cls)
    if table is None or any(n not in table for n in names):
        # Copied through __init__ by evolve (or a name it refuses): evolve does it all.
        lines.append(f"    return __evolve(obj, **dict(zip(__names, ({given}))))")
    else:
        lines.append("    d = obj.__dict__.copy()")
        for i, (field, v) in enumerate(zip(names, params, strict=True)):
            lines.append("    " + _store(field, v, table[field], f"__c{i}", namespace))
        lines += ["    new = __new(__cls)", "    __set(new, '__dict__', d)", "    return new"]
    code = _base.compile_generated("\n".join(lines), f"<nomadmesh copier {cls.__name__}>")
    exec(code, namespace)
    result: Callable[..., T] = namespace["copy"]
    return result


def _store(field: str, value: str, convert: Callable[[Any], Any] | None, name: str,
           namespace: dict[str, Any]) -> str:
    """Python storing variable `value` as `field` of the new dict `d`, through `convert` (bound
    to `name` in `namespace`) unless the field is stored as given."""
    if convert is None:
        return f"d[{field!r}] = {value}"
    namespace[name] = convert
    return f"d[{field!r}] = {fixed_point(convert, value, name)}"


def fixed_point(convert: Callable[[Any], Any], value: str, name: str) -> str:
    """Python for `convert(value)` (`convert` bound to `name`, `value` a variable) with the
    converter's fast path inline, as the compiled constructors store it: a value already in
    its stored form is stored as it is (every converter maps its own output to itself)."""
    return _base._FIXED_POINTS.get(convert, "{c}({v})").format(v=value, c=name)


def fixed_point_names() -> dict[str, Any]:
    """What the expressions of `fixed_point` refer to."""
    return {"__ZEROS": _base._ZEROS, "__FrozenDict": FrozenDict,
            "__type": type, "__tuple": tuple, "__int": int}


def converters(cls: type) -> dict[str, Callable[[Any], Any] | None] | None:
    """`evolve`'s own table of `cls`'s converters (None: `evolve` copies through `__init__`)."""
    if cls in _base._copy_converters:
        return _base._copy_converters[cls]
    return _base._copy_converters_for(cls)


def overlay(base: T, override: T | None) -> T:
    """`_base.overlay` (Nomad's Merge: `base` with every field `override` sets), compiled per
    class: the fields read from the instance dict, one copy only when one is set."""
    if override is None or override is base:
        return base  # (a value merged over itself is itself)
    if base is None:
        return override
    cls = type(override)
    try:
        merge = _overlays[cls]
    except KeyError:
        merge = _overlays[cls] = _compile_overlay(cls)
    merged: T = merge(base, override)
    return merged


_overlays: dict[type, Callable[[Any, Any], Any]] = {}


def _compile_overlay(cls: type) -> Callable[[Any, Any], Any]:
    """`merge(base, override)` for an `override` of `cls`: what `_base.overlay` returns."""
    table = converters(cls)
    names = [s.name for s in _base.specs(cls)]
    if table is None or any(n not in table for n in names):
        return _base.overlay
    namespace: dict[str, Any] = {"__cls": cls, "__slow": _base.overlay, "__new": object.__new__,
                                 "__set": object.__setattr__, **fixed_point_names()}
    lines = ["def merge(base, override):",
             "    if __type(base) is not __cls:",
             "        return __slow(base, override)",
             "    o = override.__dict__",
             "    d = None"]
    for i, field in enumerate(names):
        lines += [f"    v = o[{field!r}]", "    if v is not None:",
                  "        if d is None: d = base.__dict__.copy()"]
        lines.append("        " + _store(field, "v", table[field], f"__c{i}", namespace))
    lines += ["    if d is None:", "        return base", "    new = __new(__cls)",
              "    __set(new, '__dict__', d)", "    return new"]
    code = _base.compile_generated("\n".join(lines), f"<nomadmesh overlay {cls.__name__}>")
    exec(code, namespace)
    result: Callable[[Any, Any], Any] = namespace["merge"]
    return result


# A memo that has kept this many results and found fewer hits than that stops keeping: on a job
# that shares no block, looking up and keeping every block costs more than it saves.
MEMO_LIMIT = 64


class Memo:
    """The canonical form of blocks and their merges within one canonical pass, keyed by the
    identity of their inputs: a decoded job shares its equal blocks of scalar fields (one object,
    see nomadmesh.model._json), so each is canonicalized once and its canonical form is shared
    too, and the rules see it once (nomadmesh.model.validation). Only context-free work is kept:
    `block.canonicalize()` with no argument or with a string one (keyed on it too), and
    `overlay(base, override)` keyed on both. Model objects are immutable values, and the memo
    holds its inputs, so no id is reused while kept. Past `MEMO_LIMIT` results with fewer hits,
    it computes each again (the same values, unshared)."""

    __slots__ = ("_hits", "_kept", "on")

    def __init__(self) -> None:
        self.on = True  # false once it stopped keeping
        # id -> (block, result) for `canonical`; (id, id) -> (base, override, result) for
        # `overlay`, (id, str) -> (block, arg, result) for `canonical_for`: keys of different
        # shapes or element types never compare equal.
        self._kept: dict[Any, tuple[Any, ...]] = {}
        self._hits = 0

    def _keep(self, key: Any, entry: tuple[Any, ...]) -> None:
        kept = self._kept
        kept[key] = entry
        if len(kept) >= MEMO_LIMIT and self._hits < len(kept):
            self.on = False
            kept.clear()

    def canonical(self, block: T) -> T:
        """`block.canonicalize()`, made once per block."""
        if not self.on:
            return block.canonicalize()  # type: ignore[attr-defined, no-any-return]
        hit = self._kept.get(id(block))
        if hit is not None:
            self._hits += 1
            return hit[1]  # type: ignore[no-any-return]
        result = block.canonicalize()  # type: ignore[attr-defined]
        self._keep(id(block), (block, result))
        return result  # type: ignore[no-any-return]

    def canonical_for(self, block: T, arg: str) -> T:
        """`block.canonicalize(arg)`, made once per block and `arg` (a reschedule policy's job
        type)."""
        if not self.on:
            return block.canonicalize(arg)  # type: ignore[attr-defined, no-any-return]
        key = (id(block), arg)
        hit = self._kept.get(key)
        if hit is not None:
            self._hits += 1
            return hit[2]  # type: ignore[no-any-return]
        result = block.canonicalize(arg)  # type: ignore[attr-defined]
        self._keep(key, (block, arg, result))
        return result  # type: ignore[no-any-return]

    def overlay(self, base: T, override: T | None) -> T:
        """`overlay(base, override)`, made once per pair."""
        if override is None or override is base or base is None or not self.on:
            return overlay(base, override)
        key = (id(base), id(override))
        hit = self._kept.get(key)
        if hit is not None:
            self._hits += 1
            return hit[2]  # type: ignore[no-any-return]
        result = overlay(base, override)
        self._keep(key, (base, override, result))
        return result
