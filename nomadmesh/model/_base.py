"""The machinery every model class shares: frozen maps, durations, converters and the field table.

Each model class is a frozen attrs class that names the Go struct of Nomad's `api` package it
mirrors (`_go`) and declares each field with its Nomad JSON key, its HCL name (when it differs from
the Python name) and its kind, beside the field. The JSON converter (`nomadmesh.model._json`), the
validation walker, the docs table and the schema test read that table; nothing else knows the
mapping, so a new Nomad field is added in one module.

Go's zero values decide what "unset" means. A Go pointer (`*string`, `*int`, `*time.Duration`)
distinguishes nil from zero, so the model keeps `0`, `""` and `False` there. A plain Go value
(`string`, `int`, `bool`) cannot, so the model stores its zero as None: `Task(leader=False)`,
`Task(leader=None)` and a decoded `"Leader": false` are the same task.

Fields whose Python input differs from what is stored (durations, lists, maps of blocks) are
declared with `attrs.field(converter=...)` directly, so type checkers see the converter and accept
what it accepts (`interval="10s"`, `groups=[...]`); the others use `field()`.

Classes are frozen attrs classes backed by an instance dict (`slots=False`): a dict-backed frozen
`__init__` stores a field with one dict assignment where a slotted one makes a call per field
(~40% of the construction time; measured in benchmarks/bench_model.py), and copies (`evolve`,
`nomadmesh.model._copy`) and decoders (`nomadmesh.model._json`) build that dict directly, storing
exactly what `__init__` would (tests/test_model_evolve.py, tests/test_model_fused.py).
"""

from __future__ import annotations

import atexit
import contextlib
import enum
import inspect
import marshal
import math
import operator
import os
import re
import reprlib
import sys
import types
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import timedelta
from importlib.util import MAGIC_NUMBER as _MAGIC
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import attrs

from nomadmesh.errors import Problem, ValidationError

T = TypeVar("T")
F = TypeVar("F")

# How deep a free-form value (task config, scaling policy...) may nest. Python's own JSON parser
# stops near 1,000 levels; hashing and encoding recurse per level, so the limit keeps them safe.
MAX_DEPTH = 100


class FrozenDict(dict[str, Any]):
    """An immutable, hashable dict: model maps (meta, env, config) are values like everything else.

    It is a real `dict` subclass so `json.dumps` serializes it at C speed.
    """

    __slots__ = ("_hash",)
    _hash: int

    def _immutable(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("model maps are immutable; build a new object with nomadmesh.model.evolve()")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _immutable
    __ior__ = _immutable

    def __hash__(self) -> int:  # type: ignore[override]
        try:
            return self._hash
        except AttributeError:
            self._hash = hash(frozenset(self.items()))
            return self._hash

    def __repr__(self) -> str:
        return f"{dict.__repr__(self)}"

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenDict, (dict(self),))


EMPTY = FrozenDict()
_ATOMS = frozenset({str, int, bool, type(None)})


class _TooDeep(Exception):
    """A free-form value nests deeper than MAX_DEPTH (reported as a Problem or ValidationError)."""


def freeze(value: Any, depth: int = 0) -> Any:
    """Deep-convert JSON-like data to immutable form: dicts to FrozenDict, lists to tuples.

    A FrozenDict is taken as already frozen (the model only builds deep-frozen ones).
    """
    t = type(value)
    if t in _ATOMS or t is float or t is FrozenDict:
        return value
    if depth >= MAX_DEPTH:
        raise _TooDeep
    if t is dict or isinstance(value, Mapping):
        return FrozenDict({k if type(k) is str else str(k): v if type(v) in _ATOMS else freeze(v, depth + 1)
                           for k, v in value.items()})
    if t is list or t is tuple:
        return tuple(v if type(v) in _ATOMS else freeze(v, depth + 1) for v in value)
    return value


def thaw(value: Any) -> Any:
    """Deep-convert frozen data back to plain dicts and lists (what `to_api()` returns)."""
    t = type(value)
    if t is FrozenDict or t is dict:
        out = dict(value)
        for k, v in out.items():  # replacing values in place: the dict's size does not change
            t = type(v)
            if t is tuple and _all_atoms(map(type, v)):
                out[k] = list(v)
            elif t not in _ATOMS:
                out[k] = thaw(v)
        return out
    if t is tuple and _all_atoms(map(type, value)):
        return list(value)
    if isinstance(value, dict):
        return {k: v if type(v) in _ATOMS else thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [v if type(v) in _ATOMS else thaw(v) for v in value]
    return value


_all_atoms = frozenset({*_ATOMS, float}).issuperset


def _too_deep() -> ValidationError:
    return ValidationError.single("", f"nomadmesh: a value nests more than {MAX_DEPTH} levels deep",
                                  subject="value")


# --- converters (each named and typed, so type checkers accept what they accept) ----------------


def to_tuple(value: Iterable[T] | None) -> tuple[T, ...]:
    """Any iterable (or None) becomes a tuple; a lone string or map is kept for validation to name."""
    if type(value) is tuple:
        return value
    if type(value) is list:
        return tuple(value)
    if value is None:
        return ()
    if isinstance(value, (str, bytes, Mapping)):
        return (value,)  # type: ignore[return-value]
    return tuple(value)


def strings(value: Iterable[str] | None) -> tuple[str, ...]:
    """Converter for a list of strings."""
    return to_tuple(value)


def integers(value: Iterable[int] | None) -> tuple[int, ...]:
    """Converter for a list of integers."""
    return to_tuple(value)


def freeze_map(value: Mapping[str, Any] | None) -> FrozenDict:
    """Converter for string maps (meta, env): None becomes the empty map."""
    if value is None:
        return EMPTY
    if type(value) is FrozenDict:
        return value
    try:
        return FrozenDict({k if type(k) is str else str(k): freeze(v) for k, v in value.items()})
    except _TooDeep:
        raise _too_deep() from None
    except AttributeError:
        return value  # type: ignore[return-value]  # not a map: validation names it


def free_form(value: Mapping[str, Any] | None) -> FrozenDict:
    """Converter for free-form maps (task config, scaling policy): deep-frozen."""
    if value is None:
        return EMPTY
    if type(value) is FrozenDict:
        return value
    raw: Any = value
    if not isinstance(raw, Mapping):
        return raw  # type: ignore[no-any-return]  # not a map: validation names it
    try:
        return freeze(raw)  # type: ignore[no-any-return]
    except _TooDeep:
        raise _too_deep() from None


def unset_zero(value: T) -> T | None:
    """Converter for Go value fields: their zero ("", 0, False) is the same as unset (None)."""
    return None if value in _ZEROS else value


_ZEROS = ("", 0)  # False == 0, so bools are covered too


def block_map(value: Any) -> FrozenDict:
    """Converter for maps of blocks keyed by name (group volumes): a map, or blocks with names."""
    if value is None:
        return EMPTY
    if type(value) is FrozenDict:
        return value
    if isinstance(value, Mapping):
        return FrozenDict({str(k): v for k, v in value.items()})
    if isinstance(value, (str, bytes)):
        return value  # type: ignore[return-value]  # validation names it
    try:
        return FrozenDict({getattr(v, "name", None) or str(i): v for i, v in enumerate(value)})
    except TypeError:
        return value  # type: ignore[no-any-return]


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
               "\v": "\\v", "\\": "\\\\", '"': '\\"'}


def go_quote(text: str) -> str:
    """Go's %q of a string (strconv.Quote): printable characters as they are, the rest escaped."""
    out = []
    for c in text:
        if c in _GO_ESCAPES:
            out.append(_GO_ESCAPES[c])
        elif c.isprintable() or c == " ":
            out.append(c)
        elif ord(c) < 0x80:
            out.append(f"\\x{ord(c):02x}")
        elif ord(c) < 0x10000:
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(f"\\U{ord(c):08x}")
    return '"' + "".join(out) + '"'


# --- durations ---------------------------------------------------------------------------------

NANOSECOND = 1
MICROSECOND = 1_000
MILLISECOND = 1_000_000
SECOND = 1_000_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE

Duration = int | str | timedelta
"""What a duration field accepts: integer nanoseconds, a Go duration string ("10s"), a timedelta."""

_UNITS = {
    "ns": NANOSECOND,
    "us": MICROSECOND,
    "\u00b5s": MICROSECOND,
    "\u03bcs": MICROSECOND,
    "ms": MILLISECOND,
    "s": SECOND,
    "m": MINUTE,
    "h": HOUR,
}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")


class DurationError(ValueError):
    """A value is not a Go duration (raised internally, reported as a Problem with a path)."""


def parse_duration(text: str) -> int:
    """Parse a Go duration string ("10s", "1h30m", "1.5s", "-5m") into integer nanoseconds."""
    s = text.strip()
    if not s:
        raise DurationError("empty duration")
    sign = 1
    if s[0] in "+-":
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    if s == "0":
        return 0
    pos = 0
    total = 0
    for match in _DURATION_PART.finditer(s):
        if match.start() != pos:
            break
        number, unit = match.groups()
        whole, _, frac = number.partition(".")
        scale = _UNITS[unit]
        total += int(whole or "0") * scale
        if frac:
            total += int(frac) * scale // (10 ** len(frac))
        pos = match.end()
    if pos != len(s) or pos == 0:
        raise DurationError(
            f"{text!r} is not a duration (use a number with a unit: ns, us, ms, s, m, h, e.g. '10s')"
        )
    return sign * total


def format_duration(ns: int) -> str:
    """Format nanoseconds as a compact Go duration string ("10s", "1h30m", "500ms")."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns % SECOND:
        for unit, scale in (("ms", MILLISECOND), ("us", MICROSECOND), ("ns", NANOSECOND)):
            if ns % scale == 0:
                return f"{sign}{ns // scale}{unit}"
    parts = []
    for unit, scale in (("h", HOUR), ("m", MINUTE), ("s", SECOND)):
        if ns >= scale:
            parts.append(f"{ns // scale}{unit}")
            ns %= scale
    return sign + "".join(parts)


def to_duration(value: Duration | None) -> int | None:
    """Converter for Go `*time.Duration` fields: "10s", timedelta or nanoseconds become nanoseconds.

    Anything else is kept as given so that validation reports it with its path.
    """
    if value is None or type(value) is int:
        return value
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except DurationError:
            return value  # type: ignore[return-value]
    if isinstance(value, timedelta):
        return (value.days * 86_400 + value.seconds) * SECOND + value.microseconds * MICROSECOND
    return value  # not a duration: validation names it


def duration_value(value: Duration | None) -> int | None:
    """Converter for Go `time.Duration` value fields: as `to_duration`, and zero means unset."""
    ns = to_duration(value)
    return None if ns == 0 else ns


# --- the field table -----------------------------------------------------------------------------


class Kind(enum.Enum):
    """What a model field holds in Nomad's JSON; the converter and the type checks dispatch on it."""

    STR = "string"
    INT = "integer"
    BOOL = "boolean"
    DURATION = "duration"
    STRS = "list of strings"
    INTS = "list of integers"
    MAP = "map of strings"
    MAP_STRS = "map of string lists"
    ANY = "free-form object"
    BLOCK = "block"
    BLOCKS = "list of blocks"
    BLOCK_MAP = "map of blocks"

    @property
    def article(self) -> str:
        """The kind with its indefinite article, for messages ("an integer")."""
        return ("an " if self.value[0] in "aeiou" else "a ") + self.value


STR, INT, BOOL, DURATION = Kind.STR, Kind.INT, Kind.BOOL, Kind.DURATION
STRS, INTS, MAP, MAP_STRS, ANY = Kind.STRS, Kind.INTS, Kind.MAP, Kind.MAP_STRS, Kind.ANY
BLOCK, BLOCKS, BLOCK_MAP = Kind.BLOCK, Kind.BLOCKS, Kind.BLOCK_MAP

# The range of each Go integer type Nomad's JSON decoder enforces (a value outside is a 400).
INT_RANGES: dict[str, tuple[int, int]] = {
    "int": (-(2**63), 2**63 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "int8": (-128, 127),
    "uint8": (0, 255),
    "uint16": (0, 65535),
    "uint32": (0, 2**32 - 1),
    "uint64": (0, 2**64 - 1),
}


@attrs.frozen
class FieldSpec:
    """What Nomad calls one model field and how it is shaped in Nomad's JSON."""

    name: str  # the Python attribute
    api: str  # the JSON key (the Go field name)
    hcl: str  # the jobspec name ("" when HCL cannot set it)
    kind: Kind
    block: type | None = None  # the model class of a block field
    label: bool = False  # the HCL block label (group "name", port "label")
    ptr: bool = False  # a Go pointer: zero is a value, nil is unset
    go_int: str = "int"  # the Go integer type of an INT field

    @property
    def where(self) -> str:
        """The name used in error paths: the HCL name, else the Python one."""
        return self.hcl or self.name


_SPEC = "nomadmesh"
_NO_HCL = "-"

# One attrs Converter per function, shared by every field it converts: attrs inspects a plain
# function's signature again for each field (176 of the model's 273 converted fields come here).
_FREE_FORM: attrs.Converter[Any, Any] = attrs.Converter(free_form)
_UNSET_ZERO: attrs.Converter[Any, Any] = attrs.Converter(unset_zero)
_CONVERTERS: dict[Kind, attrs.Converter[Any, Any]] = {
    Kind.MAP: attrs.Converter(freeze_map),
    Kind.MAP_STRS: _FREE_FORM,
    Kind.ANY: _FREE_FORM,
}
_EMPTY_DEFAULTS: dict[Kind, Any] = {
    Kind.STRS: (), Kind.INTS: (), Kind.BLOCKS: (), Kind.MAP: EMPTY, Kind.MAP_STRS: EMPTY,
    Kind.ANY: EMPTY, Kind.BLOCK_MAP: EMPTY,
}


def go(api: str, kind: Kind, *, hcl: str | None = None, block: type | None = None,
       ptr: bool = False, go_int: str = "int") -> dict[str, Any]:
    """The metadata of a field declared with `attrs.field(...)` directly (see the module doc).

    `hcl=""` marks a field Nomad's HCL cannot set (it is JSON only).
    """
    return {_SPEC: (api, _NO_HCL if hcl == "" else hcl, kind, block, False, ptr, go_int)}


def field(api: str, kind: Kind = Kind.STR, *, hcl: str | None = None, block: type | None = None,
          ptr: bool = False, go_int: str = "int") -> Any:
    """Declare an optional, keyword-only field whose Python type is what it stores."""
    converter = _CONVERTERS.get(kind)
    if converter is None and not ptr and kind in (Kind.STR, Kind.INT, Kind.BOOL):
        converter = _UNSET_ZERO
    return attrs.field(default=_EMPTY_DEFAULTS.get(kind), kw_only=True, converter=converter,
                       metadata=go(api, kind, hcl=hcl, block=block, ptr=ptr, go_int=go_int))


def label(api: str, *, kind: Kind = Kind.STR, ptr: bool = False) -> Any:
    """Declare the positional field that names a block (its HCL label)."""
    return attrs.field(metadata={_SPEC: (api, None, kind, None, True, ptr, "int")})


def side() -> Any:
    """Fields Nomad sets itself (Status, Version, indexes...): kept aside, ignored by equality."""
    return attrs.field(default=EMPTY, kw_only=True, converter=_FREE_FORM, eq=False, repr=False)


# --- class creation ------------------------------------------------------------------------------

# attrs' `@attrs.frozen` compiles an `__init__`, `__eq__` and `__hash__` for every class it builds
# (one `compile()` per class, ~0.3 ms each, ~25 ms for the model's import), and the model replaces
# that `__init__` with its own compiled constructor anyway. Model classes are declared with
# `_base.frozen` instead: type checkers see `attrs.frozen` itself (so mypy's attrs plugin and
# pyright read them as attrs classes), while at run time a plain model class (annotated
# `attrs.field`s, no base class, no hooks, validators or factories) is built here without
# generated code: its equality and hash are one shared implementation over the fields attrs
# would compare, its constructor is compiled by its first construction, and its attrs metadata
# (`__attrs_attrs__`, what `attrs.fields`, `attrs.has`, `attrs.evolve` and `attrs.asdict` read)
# is built by attrs itself, from the same field definitions, the first time it is asked for.
# Any other class (and any other decorator option) is built by `attrs.frozen` as before.

if TYPE_CHECKING:
    from attrs import frozen as frozen
else:
    def frozen(maybe_cls: type | None = None, /, **options: Any) -> Any:
        """`attrs.frozen`, building plain model classes without generated code (see above)."""

        def wrap(cls: type) -> type:
            if options == _PLAIN_OPTIONS:
                built = _plain_model_class(cls)
                if built is not None:
                    return built
            return attrs.frozen(cls, **options)

        return wrap if maybe_cls is None else wrap(maybe_cls)


_PLAIN_OPTIONS = {"slots": False, "repr": False}


class _Field:
    """What the model's own code reads of a field (the names of `attrs.Attribute`'s attributes)."""

    __slots__ = ("alias", "converter", "default", "eq", "init", "kw_only", "metadata", "name",
                 "type", "validator")

    def __init__(self, name: str, ca: Any, type_: Any) -> None:
        self.name = name
        self.alias = ca.alias or name.lstrip("_")
        self.default = ca._default
        self.converter = ca.converter
        self.eq = ca.eq
        self.init = ca.init
        self.kw_only = ca.kw_only
        self.metadata = ca.metadata
        self.type = type_
        self.validator = None


# What a model class's `__dict__` must not define for the plain path (attrs would keep or use it).
_OWN_METHODS = frozenset({
    "__init__", "__eq__", "__ne__", "__hash__", "__lt__", "__le__", "__gt__", "__ge__",
    "__setattr__", "__delattr__", "__getstate__", "__setstate__", "__attrs_pre_init__",
    "__attrs_post_init__", "__attrs_init_subclass__", "__attrs_attrs__", "__attrs_props__",
    "__slots__",
})
_CLASS_VAR_PREFIXES = ("typing.ClassVar", "t.ClassVar", "ClassVar", "typing_extensions.ClassVar")


_COUNTING = type(attrs.field())  # what `attrs.field()` returns (attrs' _CountingAttr)


def _plain_model_class(cls: type) -> type | None:
    """`cls` made a frozen model class without generated code, or None when it is not plain."""
    counting = _COUNTING
    own = cls.__dict__
    if cls.__bases__ != (object,) or not _OWN_METHODS.isdisjoint(own):
        return None
    annotations = own.get("__annotations__", {})
    fields: list[_Field] = []
    definitions: dict[str, Any] = {}
    defaulted = False
    for name, annotation in annotations.items():
        text = str(annotation).strip("'\"")
        if text.startswith(_CLASS_VAR_PREFIXES):
            continue
        ca = own.get(name, attrs.NOTHING)
        if not isinstance(ca, counting):
            if ca is not attrs.NOTHING:
                return None  # a plain default: attrs makes it a field (kept to attrs)
            ca = attrs.field()
        if (ca._validator is not None or ca.on_setattr is not None or not ca.init
                or ca.eq_key is not None or ca.hash is not None or ca.order_key is not None
                or isinstance(ca._default, attrs.Factory)  # type: ignore[arg-type]
                or (ca.converter is not None and _plain(ca.converter) is None)):
            return None
        if not ca.kw_only:
            if ca._default is attrs.NOTHING and defaulted:
                return None  # attrs refuses the class: let it say why
            defaulted = defaulted or ca._default is not attrs.NOTHING
        fields.append(_Field(name, ca, annotation))
        definitions[name] = ca
    if any(isinstance(v, counting) and k not in definitions for k, v in own.items()):
        return None  # an unannotated attrs.field(): attrs decides what that means
    for f in fields:
        if f.name in own:
            delattr(cls, f.name)
    compared = tuple(f.name for f in fields if f.eq)
    if len(compared) > 1:
        key: Callable[[Any], tuple[Any, ...]] = operator.attrgetter(*compared)
    elif compared:
        one = operator.attrgetter(compared[0])
        key = lambda obj: (one(obj),)  # noqa: E731
    else:
        key = _no_key
    added: dict[str, Any] = {
        "__model_fields__": tuple(fields),
        "__model_key__": key,
        "__setattr__": FieldSpec.__setattr__,
        "__delattr__": FieldSpec.__delattr__,
        "__eq__": _model_eq,
        "__ne__": FieldSpec.__ne__,
        "__hash__": _model_hash,
        "__init__": _FirstConstructor(cls),
        "__attrs_attrs__": _TwinAttribute(cls, "__attrs_attrs__"),
        "__attrs_props__": _TwinAttribute(cls, "__attrs_props__"),
    }
    _definitions[cls] = (definitions, dict(annotations))
    if "__match_args__" not in own:
        added["__match_args__"] = tuple(f.name for f in fields if f.init and not f.kw_only)
    for name, value in added.items():
        setattr(cls, name, value)
    return cls


def _no_key(obj: Any) -> tuple[Any, ...]:
    return ()


def _model_eq(self: Any, other: Any) -> Any:
    """attrs' generated `__eq__`: the same class, and equal fields (those with `eq=True`)."""
    if other.__class__ is not self.__class__:
        return NotImplemented
    key = self.__class__.__model_key__
    return key(self) == key(other)


def _model_hash(self: Any) -> int:
    """attrs' generated `__hash__` of a frozen class: the class and the compared fields."""
    key = self.__class__.__model_key__  # the defining class's own: it stands for the class
    return hash((key, *key(self)))


_twins: dict[type, type] = {}
_definitions: dict[type, tuple[dict[str, Any], dict[str, Any]]] = {}  # each plain class's own


def _attrs_twin(cls: type) -> type:
    """The class attrs builds from a plain model class's own field definitions (its metadata and
    attrs' generated `__init__` are what `cls` would have had from `attrs.frozen`)."""
    twin = _twins.get(cls)
    if twin is None:
        definitions, annotations = _definitions[cls]
        namespace: dict[str, Any] = dict(definitions)
        namespace.update(__annotations__=annotations, __module__=cls.__module__,
                         __qualname__=cls.__qualname__, __doc__=cls.__doc__)
        twin = _twins[cls] = attrs.frozen(type(cls.__name__, (), namespace), slots=False,
                                          repr=False)
    return twin


class _TwinAttribute:
    """A class attribute attrs sets (`__attrs_attrs__`...), taken from the twin on first use."""

    __slots__ = ("cls", "name")

    def __init__(self, cls: type, name: str) -> None:
        self.cls = cls
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        value = _attrs_twin(self.cls).__dict__[self.name]
        type.__setattr__(self.cls, self.name, value)
        return value


class _FirstConstructor:
    """A plain model class's `__init__` until its first use compiles it (see compile_constructor);
    `inspect.signature` reads the compiled one's."""

    __slots__ = ("cls",)

    def __init__(self, cls: type) -> None:
        self.cls = cls

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        return self if obj is None else types.MethodType(self, obj)

    def __call__(self, obj: Any, /, *args: Any, **kwargs: Any) -> None:
        self.compiled()(obj, *args, **kwargs)

    def compiled(self) -> Callable[..., None]:
        init: Callable[..., None] = self.cls.__dict__["__init__"]
        if init is self:
            init = _compiled_constructor(self.cls, self.cls.__dict__["__model_fields__"], None)
        return init

    @property
    def __signature__(self) -> inspect.Signature:
        return inspect.signature(self.compiled())


def model_fields(cls: type) -> Sequence[Any]:
    """A model class's fields: `attrs.fields(cls)`, or for a plain model class the same field
    definitions without building attrs' metadata (the attributes the model reads are the same)."""
    own: Sequence[Any] | None = cls.__dict__.get("__model_fields__")
    return own if own is not None else attrs.fields(cls)


_specs_cache: dict[type, tuple[FieldSpec, ...]] = {}


def specs(cls: type) -> tuple[FieldSpec, ...]:
    """The field table of a model class (side values such as `server` are not in it)."""
    try:
        return _specs_cache[cls]
    except KeyError:
        pass
    out = []
    for a in model_fields(cls):
        raw = a.metadata.get(_SPEC)
        if raw is None:
            continue
        api, hcl, kind, block, is_label, ptr, go_int = raw
        hcl_name = "" if hcl == _NO_HCL else (hcl or a.name)
        out.append(FieldSpec(a.name, api, hcl_name, kind, block, is_label, ptr, go_int))
    result = tuple(out)
    _specs_cache[cls] = result
    return result


def label_spec(cls: type) -> FieldSpec | None:
    """The field holding a class's HCL block label, if it has one."""
    for s in specs(cls):
        if s.label:
            return s
    return None


def model_classes(root: type) -> tuple[type, ...]:
    """Every model class reachable from `root` through block fields, `root` first."""
    seen: dict[type, None] = {root: None}
    queue = [root]
    while queue:
        for s in specs(queue.pop(0)):
            if s.block is not None and s.block not in seen:
                seen[s.block] = None
                queue.append(s.block)
    return tuple(seen)


# --- construction --------------------------------------------------------------------------------

# A converter's fixed points, as an expression over the value `{v}`: a value that passes is what
# the converter would return for it, so the compiled constructor stores it without the call.
# `{c}` is the converter itself, called for every other value.
_FIXED_POINTS: dict[Callable[[Any], Any], str] = {
    unset_zero: "{v} if {v} is None else (None if {v} in __ZEROS else {v})",
    to_tuple: "{v} if __type({v}) is __tuple else {c}({v})",
    strings: "{v} if __type({v}) is __tuple else {c}({v})",
    integers: "{v} if __type({v}) is __tuple else {c}({v})",
    freeze_map: "{v} if __type({v}) is __FrozenDict else {c}({v})",
    free_form: "{v} if __type({v}) is __FrozenDict else {c}({v})",
    block_map: "{v} if __type({v}) is __FrozenDict else {c}({v})",
    to_duration: "{v} if {v} is None or __type({v}) is __int else {c}({v})",
    duration_value: "({v} or None) if __type({v}) is __int else {c}({v})",
}


def _delegate_to(converter: Callable[[Any], Any]) -> Callable[[Any], Any] | None:
    """The converter of `_base` a model module's typed converter only calls, if it is one.

    Model modules declare converters such as `def tasks(value: Iterable[Task] | None) ->
    tuple[Task, ...]: return to_tuple(value)` so type checkers see the element type; a converter
    whose code is exactly that call (same bytecode, same global) behaves as the one it calls.
    """
    code = getattr(converter, "__code__", None)
    if code is None or code.co_argcount != 1 or len(code.co_names) != 1:
        return None
    target = getattr(converter, "__globals__", {}).get(code.co_names[0])
    if target is None or target not in _FIXED_POINTS:
        return None
    return target if code.co_code == _delegating.__code__.co_code else None


def _plain(converter: Any) -> Callable[[Any], Any] | None:
    """A field's converter as a one-argument function (an attrs Converter unwrapped), or None
    for one that also takes the instance or the field (which compiled constructors do not pass)."""
    if not isinstance(converter, attrs.Converter):
        return converter  # type: ignore[no-any-return]
    wrapped: Any = converter  # attrs' stubs do not declare a Converter's attributes
    return None if wrapped.takes_self or wrapped.takes_field else wrapped.converter


def _delegating(value: Any) -> Any:
    return to_tuple(value)


_attrs_inits: dict[type, Callable[..., None]] = {}


def compile_constructor(cls: type) -> None:
    """Give a model class the `__init__` attrs would, with its converters' fast paths inline.

    The constructor keeps attrs' signature, defaults, converters and field order; a value already
    in its stored form (a tuple, a frozen map, nanoseconds, a non-zero string) is stored without a
    converter call, which is most of what building an object costs (decoding, `evolve`, the
    canonical forms of validation, injection all construct through it). A class using an attrs
    feature this does not reproduce (validators, factories, hooks) keeps attrs' own `__init__`.
    The constructor is compiled by the class's first construction (a stand-in until then, with
    attrs' signature), so an import compiles none and a small job only those it builds. A plain
    model class (`frozen`) has that stand-in from its creation.
    """
    if "__model_fields__" in cls.__dict__:
        return
    fields = attrs.fields(cls)
    if (cls in _attrs_inits or hasattr(cls, "__attrs_pre_init__")
            or hasattr(cls, "__attrs_post_init__")
            or any(a.validator is not None or not a.init
                   or (a.converter is not None and _plain(a.converter) is None)
                   # attrs' stubs type Factory as a function; at run time it is the class.
                   or isinstance(a.default, attrs.Factory)  # type: ignore[arg-type]
                   for a in fields)):
        return
    original = cls.__init__  # type: ignore[misc]

    def first(self: Any, *args: Any, **kwargs: Any) -> None:
        _compiled_constructor(cls, fields, original)(self, *args, **kwargs)

    first.__qualname__ = original.__qualname__
    first.__module__ = original.__module__
    first.__wrapped__ = original  # type: ignore[attr-defined]  # inspect.signature: attrs' own
    _attrs_inits[cls] = original
    cls.__init__ = first  # type: ignore[misc]


def _compiled_constructor(cls: type, fields: Sequence[Any],
                          original: Callable[..., None] | None) -> Callable[..., None]:
    """Compile `cls`'s constructor (see `compile_constructor`) and install it."""
    # Helpers are named with two underscores, which no field's parameter (its alias) starts with.
    namespace: dict[str, Any] = {"__ZEROS": _ZEROS, "__FrozenDict": FrozenDict, "__type": type,
                                 "__tuple": tuple, "__int": int}
    positional: list[str] = []
    keywords: list[str] = []
    body: list[str] = []
    for i, a in enumerate(fields):
        name = a.alias
        if a.default is attrs.NOTHING:
            (keywords if a.kw_only else positional).append(name)
        else:
            namespace[f"__d{i}"] = a.default
            (keywords if a.kw_only else positional).append(f"{name}=__d{i}")
        value = name
        plain = _plain(a.converter)
        if plain is not None:
            converter = _delegate_to(plain) or plain
            namespace[f"__c{i}"] = converter
            fixed = _FIXED_POINTS.get(converter, "{c}({v})")
            value = fixed.format(v=name, c=f"__c{i}")
        body.append(f"    __d[{a.name!r}] = {value}")
    params = ["self", *positional] + (["*", *keywords] if keywords else [])
    lines = [f"def __init__({', '.join(params)}):", "    __d = self.__dict__", *body]
    # Generated from the class's own attrs fields only; named so profiles and tracebacks say which.
    exec(compile_generated("\n".join(lines), f"<nomadmesh constructor {cls.__name__}>"), namespace)
    init: Callable[..., None] = namespace["__init__"]
    if original is not None:
        init.__qualname__ = original.__qualname__
        init.__module__ = original.__module__
        init.__annotations__ = dict(getattr(original, "__annotations__", {}))
    else:  # a plain model class: the names and annotations attrs gives its `__init__`
        init.__qualname__ = f"{cls.__qualname__}.__init__"
        init.__module__ = cls.__module__
        init.__annotations__ = _init_annotations(fields)
    cls.__init__ = init  # type: ignore[misc]
    return init


def _init_annotations(fields: Sequence[Any]) -> dict[str, Any]:
    """The `__annotations__` attrs gives a generated `__init__`: each field's type, or for a
    converted field the type of its converter's first parameter (when it declares one)."""
    annotations: dict[str, Any] = {"return": None}
    for a in fields:
        if a.converter is None:
            if a.type is not None:
                annotations[a.alias] = a.type
        else:
            first = _first_param_type(a.converter)
            if first:
                annotations[a.alias] = first
    return annotations


_first_param_types: dict[Any, Any] = {}


def _first_param_type(converter: Any) -> Any:
    try:
        return _first_param_types[converter]
    except KeyError:
        pass
    wrapped = converter if isinstance(converter, attrs.Converter) else attrs.Converter(converter)
    result = _first_param_types[converter] = getattr(wrapped, "_first_param_type", None)
    return result


def attrs_constructor(cls: type) -> Callable[..., None]:
    """The `__init__` attrs generated for a model class (what `compile_constructor` replaced, or
    for a plain model class what `attrs.frozen` would have generated)."""
    if "__model_fields__" in cls.__dict__:
        twin_init: Callable[..., None] = _attrs_twin(cls).__init__  # type: ignore[misc]
        return twin_init
    return _attrs_inits.get(cls) or cls.__init__  # type: ignore[misc]


def compiled_on_first_use(compile_for: Callable[[type], F], compiled: Mapping[type, F], cls: type,
                          namespace: dict[str, Any], name: str) -> F:
    """What generated code calls as `namespace[name]` for a block of class `cls`: its compiled
    function (`compiled[cls]`, from `compile_for`) if there is one, else a stand-in whose first
    call compiles it and puts it there.

    Compiling a class's codec does not compile every class below it, so a job pays only for the
    classes it uses (a model import and a small job's first decode or check stay cheap).
    """
    done = compiled.get(cls)
    if done is not None:
        return done

    def first(*args: Any) -> Any:
        function = namespace[name] = compile_for(cls)
        return function(*args)  # type: ignore[operator]

    return first  # type: ignore[return-value]


# --- generated code, compiled once per installation ------------------------------------------------

# The model generates constructors, JSON codecs and type checks per class on first use; compiling
# them is most of what a small job's first decode and check cost in a fresh process (~14 ms of a
# `nomadmesh validate`). `compile_generated` keeps what it compiled, as Python keeps a module's
# byte code: in one file of this package's `__pycache__` (named by the interpreter's cache tag,
# checked against its magic number), written at exit when Python writes byte code
# (`sys.dont_write_bytecode` is false) and the directory is writable. An entry is keyed by the
# generated source and file name themselves, so a changed generator or class only misses the cache.

_CACHE_FILE = os.path.join(os.path.dirname(__file__), "__pycache__",
                           f"nomadmesh-generated.{sys.implementation.cache_tag}.bin")
_CACHE_LIMIT = 4096  # entries; a file past it is started again
_generated: dict[str, bytes] | None = None
_new_generated: dict[str, bytes] = {}


def compile_generated(source: str, filename: str) -> types.CodeType:
    """`compile(source, filename, "exec")`, from the cache of generated code when it has it."""
    global _generated
    if _generated is None:
        _generated = _read_generated()
    key = f"{filename}\0{source}"
    data = _generated.get(key)
    if data is not None:
        try:
            code = marshal.loads(data)
        except (EOFError, ValueError, TypeError):
            pass
        else:
            if type(code) is types.CodeType:
                return code
    code = compile(source, filename, "exec")
    if not sys.dont_write_bytecode and _CACHE_FILE:
        if not _new_generated:
            atexit.register(_write_generated)
        _new_generated[key] = marshal.dumps(code)
    return code


def _read_generated() -> dict[str, bytes]:
    try:
        with open(_CACHE_FILE, "rb") as f:
            data = f.read()
    except OSError:
        return {}
    if data[:len(_MAGIC)] != _MAGIC:
        return {}
    try:
        table = marshal.loads(memoryview(data)[len(_MAGIC):])
    except (EOFError, ValueError, TypeError):
        return {}
    return table if type(table) is dict else {}


def _write_generated() -> None:
    """Add what this process compiled to the cache file (atomically; errors are ignored)."""
    table = dict(_read_generated())
    if len(table) + len(_new_generated) > _CACHE_LIMIT:
        table = {}
    table.update(_new_generated)
    _new_generated.clear()
    temporary = f"{_CACHE_FILE}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(_CACHE_FILE), exist_ok=True)
        with open(temporary, "wb") as f:
            f.write(_MAGIC + marshal.dumps(table))
        os.replace(temporary, _CACHE_FILE)
    except OSError:
        with contextlib.suppress(OSError):
            os.remove(temporary)


# --- copying -------------------------------------------------------------------------------------


def evolve(obj: T, **changes: Any) -> T:
    """`obj` with `changes` applied: `attrs.evolve`, cheaper.

    The copy starts from the instance's own (already converted) values and runs the converters
    of the changed fields only, so it stores exactly what the class's `__init__` would store for
    the merged fields (every converter maps its own output to itself;
    tests/test_model_evolve.py checks this for every class). A class with an attrs feature
    the compiled constructors do not reproduce (validators, hooks) is copied through `__init__`.
    """
    cls = type(obj)
    try:
        converters = _copy_converters[cls]
    except KeyError:
        converters = _copy_converters_for(cls)
    if converters is None:
        return cls(**{**obj.__dict__, **changes})
    new = _new(cls)
    state = obj.__dict__.copy()
    _set_state(new, "__dict__", state)  # the instance is not frozen before it is returned
    for name, value in changes.items():
        try:
            convert = converters[name]
        except KeyError:
            raise TypeError(f"{cls.__qualname__}.__init__() got an unexpected keyword argument "
                            f"{name!r}") from None
        state[name] = value if convert is None else convert(value)
    return new


_new = object.__new__
_set_state = object.__setattr__
_copy_converters: dict[type, dict[str, Callable[[Any], Any] | None] | None] = {}


def _copy_converters_for(cls: type) -> dict[str, Callable[[Any], Any] | None] | None:
    """Each field's one-argument converter (None: stored as given) for `evolve`'s copies of a
    class whose constructor is compiled, else None (copied through `__init__`)."""
    converters: dict[str, Callable[[Any], Any] | None] | None = None
    is_plain = "__model_fields__" in cls.__dict__
    fields = model_fields(cls) if cls in _attrs_inits or is_plain else ()
    if fields and all(a.alias == a.name for a in fields):
        converters = {}
        for a in fields:
            plain = _plain(a.converter) if a.converter is not None else None
            converters[a.name] = None if plain is None else _delegate_to(plain) or plain
    _copy_converters[cls] = converters
    return converters


def overlay(base: T, override: T | None) -> T:
    """`base` with every field `override` sets (not None) taken from `override`; Nomad's Merge."""
    if override is None:
        return base
    if base is None:
        return override
    changes = {s.name: value for s in specs(type(override))
               if (value := getattr(override, s.name)) is not None}
    return evolve(base, **changes) if changes else base


# --- type checks (for objects built in Python; the JSON decoder checks as it decodes) ----------


_repr = reprlib.Repr()
_repr.maxstring = 30
_repr.maxother = 30


def describe(value: Any) -> str:
    """A short description of a wrong value for error messages (safe for any nesting)."""
    return f"{type(value).__name__} {_repr.repr(value)}"


def _is_int(value: Any, go_int: str) -> bool:
    if type(value) is not int:
        return False
    low, high = INT_RANGES[go_int]
    return low <= value <= high


def json_problem(value: Any, path: str) -> Problem | None:
    """Why a free-form value is not JSON Nomad decodes (non-finite floats, sets, objects...)."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        v, where = stack.pop()
        t = type(v)
        if t in _ATOMS:
            continue
        if t is float:
            if not math.isfinite(v):
                return Problem(where, f"{v!r} is not a JSON number")
            continue
        if isinstance(v, Mapping):
            stack.extend((x, f"{where}.{k}") for k, x in v.items())
        elif isinstance(v, (tuple, list)):
            stack.extend((x, f"{where}[{i}]") for i, x in enumerate(v))
        else:
            return Problem(where, f"expected a JSON value, got {describe(v)}")
    return None


def type_problems(obj: Any, path: str) -> Iterator[Problem]:
    """Type problems of one model object's own fields (nested blocks are checked by the walker)."""
    for s in specs(type(obj)):
        value = getattr(obj, s.name)
        if value is None:
            if s.label:
                yield Problem(path, f"a {type(obj).__name__} needs its {s.where}")
            continue
        where = f"{path}.{s.where}" if not s.label else path
        kind = s.kind
        if kind is Kind.STR:
            if type(value) is not str:
                yield Problem(where, f"expected a string, got {describe(value)}")
        elif kind is Kind.INT:
            if not _is_int(value, s.go_int):
                low, high = INT_RANGES[s.go_int]
                yield Problem(where, f"expected an integer from {low} to {high} (Go {s.go_int}), "
                                     f"got {describe(value)}")
        elif kind is Kind.BOOL:
            if type(value) is not bool:
                yield Problem(where, f"expected true or false, got {describe(value)}")
        elif kind is Kind.DURATION:
            if isinstance(value, str):
                yield Problem(where, f"{value!r} is not a duration (e.g. '10s', '1h30m')")
            elif not _is_int(value, "int64"):
                yield Problem(where, f"expected a duration, got {describe(value)}")
        elif kind is Kind.STRS or kind is Kind.INTS:
            want = str if kind is Kind.STRS else int
            if type(value) is not tuple:
                yield Problem(where, f"expected {kind.article}, got {describe(value)}")
            else:
                for i, x in enumerate(value):
                    if type(x) is not want:
                        what = "a string" if want is str else "an integer"
                        yield Problem(f"{where}[{i}]", f"expected {what}, got {describe(x)}")
        elif kind is Kind.MAP:
            if not isinstance(value, Mapping):
                yield Problem(where, f"expected a map of strings, got {describe(value)}")
            else:
                for k, v in value.items():
                    if type(v) is not str:
                        yield Problem(f"{where}.{k}", f"expected a string, got {describe(v)}")
        elif kind is Kind.MAP_STRS:
            if not isinstance(value, Mapping):
                yield Problem(where, f"expected a map of string lists, got {describe(value)}")
            else:
                for k, v in value.items():
                    if type(v) is not tuple or any(type(x) is not str for x in v):
                        yield Problem(f"{where}.{k}", f"expected a list of strings, got {describe(v)}")
        elif kind is Kind.ANY:
            if not isinstance(value, Mapping):
                yield Problem(where, f"expected a map, got {describe(value)}")
            else:
                problem = json_problem(value, where)
                if problem is not None:
                    yield problem
        elif kind is Kind.BLOCK:
            if type(value) is not s.block:
                yield Problem(where, f"expected {_block_name(s)}, got {describe(value)}")
        elif kind is Kind.BLOCKS:
            if type(value) is not tuple:
                yield Problem(where, f"expected a list of {_block_name(s)}s, got {describe(value)}")
            else:
                for i, x in enumerate(value):
                    if type(x) is not s.block:
                        yield Problem(f"{where}[{i}]", f"expected {_block_name(s)}, got {describe(x)}")
        elif kind is Kind.BLOCK_MAP:
            if not isinstance(value, Mapping):
                yield Problem(where, f"expected a map of {_block_name(s)}s, got {describe(value)}")
            else:
                for k, x in value.items():
                    if type(x) is not s.block:
                        yield Problem(f"{where}[{k}]", f"expected {_block_name(s)}, got {describe(x)}")


def _block_name(s: FieldSpec) -> str:
    assert s.block is not None
    return f"a {s.block.__name__}"
