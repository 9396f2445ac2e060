"""The machinery every model class shares: frozen maps, durations and the field table.

Each model class declares its fields with `field()`, which records beside the field what Nomad calls
it in JSON (`api`), what the jobspec calls it in HCL (`hcl`, when it differs from the Python name)
and what kind of value it holds. The codecs read that table; nothing else knows the mapping.

Model classes are frozen attrs classes without `__slots__`: a frozen slotted class pays one
`object.__setattr__` call per field on construction, while a dict-backed one lets the JSON decoder
build a fully type-checked object with a single `__dict__.update` (see `field_defaults`). Decoding a
large job is dominated by object construction, so this is where the time goes.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import timedelta
from typing import Any, NoReturn, TypeVar

import attrs

from nomadmesh.errors import Problem

T = TypeVar("T")


class FrozenDict(dict[str, Any]):
    """An immutable, hashable dict: model maps (meta, env, config) are values like everything else.

    It is a real `dict` subclass so `json.dumps` serializes it at C speed.
    """

    __slots__ = ("_hash",)
    _hash: int

    def _immutable(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("model maps are immutable; build a new object with attrs.evolve()")

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


_ATOMS = frozenset({str, int, float, bool, type(None)})


def freeze(value: Any) -> Any:
    """Deep-convert JSON-like data to immutable form: dicts to FrozenDict, lists to tuples."""
    t = type(value)
    if t in _ATOMS or t is FrozenDict:
        return value
    if t is dict or isinstance(value, dict):
        return FrozenDict({k if type(k) is str else str(k): v if type(v) in _ATOMS else freeze(v)
                           for k, v in value.items()})
    if t is list or t is tuple:
        return tuple(v if type(v) in _ATOMS else freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """Deep-convert frozen data back to plain dicts and lists (for YAML, HCL writers, users)."""
    if isinstance(value, dict):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    return value


def freeze_map(value: Mapping[str, Any] | None) -> FrozenDict:
    """Converter for string-keyed maps (meta, env): None becomes the empty map."""
    if value is None:
        return EMPTY
    if isinstance(value, FrozenDict):
        return value
    return FrozenDict({str(k): freeze(v) for k, v in value.items()})


def to_tuple(value: Iterable[T] | None) -> tuple[T, ...]:
    """Converter for repeated fields: any iterable (or None) becomes a tuple."""
    if value is None:
        return ()
    if isinstance(value, tuple):
        return value
    if isinstance(value, (str, bytes, Mapping)):
        # A lone string or map where a list is expected is kept as given so validation can say so.
        return (value,)  # type: ignore[return-value]
    return tuple(value)


# --- durations ---------------------------------------------------------------------------------

NANOSECOND = 1
MICROSECOND = 1_000
MILLISECOND = 1_000_000
SECOND = 1_000_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE

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


def to_duration(value: Any) -> Any:
    """Converter for duration fields: "10s", timedelta or int nanoseconds become int nanoseconds.

    Anything else is kept as given so that validation reports it with its path.
    """
    if value is None or type(value) is int:
        return value
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except DurationError:
            return value
    if isinstance(value, timedelta):
        return (value.days * 86_400 + value.seconds) * SECOND + value.microseconds * MICROSECOND
    return value


# --- the field table -----------------------------------------------------------------------------


class Kind(enum.Enum):
    """What a model field holds; the codecs and the type checks dispatch on it."""

    STR = "string"
    INT = "integer"
    FLOAT = "number"
    BOOL = "boolean"
    DURATION = "duration"
    STRS = "list of strings"
    MAP = "map of strings"
    ANY = "free-form value"
    BLOCK = "block"
    BLOCKS = "list of blocks"

    @property
    def article(self) -> str:
        """The kind with its indefinite article, for messages ("an integer")."""
        return ("an " if self.value[0] in "aeiou" else "a ") + self.value


@attrs.frozen
class FieldSpec:
    """Codec facts about one model field: its Python name, Nomad JSON key and HCL name."""

    name: str
    api: str
    hcl: str
    kind: Kind
    block: type | None = None
    label: bool = False  # the HCL block label (job "id", group "name", port "label")
    hcl_block: bool = False  # written as a block in HCL (maps like meta/env/config)


_SPEC = "nomadmesh"

_CONVERTERS: dict[Kind, Callable[[Any], Any]] = {
    Kind.DURATION: to_duration,
    Kind.STRS: to_tuple,
    Kind.BLOCKS: to_tuple,
    Kind.MAP: freeze_map,
    Kind.ANY: freeze,
}


def field(
    api: str,
    kind: Kind,
    *,
    hcl: str | None = None,
    block: type | str | None = None,
    default: Any = None,
    hcl_block: bool = False,
    converter: Callable[[Any], Any] | None = None,
) -> Any:
    """Declare an optional, keyword-only model field and its Nomad JSON / HCL names."""
    if kind in (Kind.STRS, Kind.BLOCKS):
        default = ()
    elif kind is Kind.MAP:
        default = EMPTY
    meta = {_SPEC: (api, hcl, kind, block, False, hcl_block)}
    return attrs.field(
        default=default, kw_only=True, converter=converter or _CONVERTERS.get(kind), metadata=meta
    )


def label(api: str, *, kind: Kind = Kind.STR) -> Any:
    """Declare the positional field that names a block (the HCL label)."""
    return attrs.field(metadata={_SPEC: (api, None, kind, None, True, False)})


def server_fields() -> Any:
    """Fields Nomad sets itself (Status, Version, indexes...): kept aside, ignored by equality."""
    return attrs.field(
        default=EMPTY, kw_only=True, converter=freeze_map, eq=False, repr=False,
        metadata={_SPEC: ("", None, Kind.MAP, None, False, False)},
    )


def extra_fields() -> Any:
    """Known Nomad fields nomadmesh does not model: kept verbatim in Nomad JSON form."""
    return attrs.field(
        default=EMPTY, kw_only=True, converter=freeze_map,
        metadata={_SPEC: ("", None, Kind.MAP, None, False, False)},
    )


_specs_cache: dict[type, tuple[FieldSpec, ...]] = {}


def specs(cls: type) -> tuple[FieldSpec, ...]:
    """The field table of a model class (excluding the `extra` and `server` side fields)."""
    try:
        return _specs_cache[cls]
    except KeyError:
        pass
    import nomadmesh.model as model_pkg

    out = []
    for a in attrs.fields(cls):
        raw = a.metadata.get(_SPEC)
        if raw is None or a.name in ("extra", "server"):
            continue
        api, hcl, kind, block, is_label, hcl_block = raw
        if isinstance(block, str):
            block = getattr(model_pkg, block)
        out.append(FieldSpec(a.name, api, hcl or a.name, kind, block, is_label, hcl_block))
    result = tuple(out)
    _specs_cache[cls] = result
    return result


def overlay(base: T, override: T | None) -> T:
    """`base` with every field `override` sets (not None) taken from `override`; Nomad's Merge.

    An unset override, or an empty `extra` map, leaves `base` as it is; a None base takes the
    override whole.
    """
    if override is None:
        return base
    if base is None:
        return override
    changes = {
        a.name: value
        for a in attrs.fields(type(override))  # type: ignore[arg-type]
        if (value := getattr(override, a.name)) is not None and (a.name != "extra" or value)
    }
    return attrs.evolve(base, **changes) if changes else base  # type: ignore[misc]


_defaults_cache: dict[type, dict[str, Any]] = {}


def field_defaults(cls: type) -> dict[str, Any]:
    """Every field's default value (all immutable), for building objects from checked data."""
    try:
        return _defaults_cache[cls]
    except KeyError:
        pass
    out = {}
    for a in attrs.fields(cls):
        if a.default is attrs.NOTHING:
            continue
        out[a.name] = a.default
    _defaults_cache[cls] = out
    return out


def label_spec(cls: type) -> FieldSpec | None:
    """The field holding a class's HCL block label, if it has one."""
    for s in specs(cls):
        if s.label:
            return s
    return None


# --- validation helpers ------------------------------------------------------------------------

_TYPE_CHECKS: dict[Kind, Callable[[Any], bool]] = {
    Kind.STR: lambda v: isinstance(v, str),
    Kind.INT: lambda v: isinstance(v, int) and not isinstance(v, bool),
    Kind.FLOAT: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    Kind.BOOL: lambda v: isinstance(v, bool),
    Kind.DURATION: lambda v: isinstance(v, int) and not isinstance(v, bool),
    Kind.STRS: lambda v: isinstance(v, tuple) and all(isinstance(x, str) for x in v),
    Kind.MAP: lambda v: isinstance(v, Mapping),
    Kind.ANY: lambda v: True,
}


def describe(value: Any) -> str:
    """A short description of a wrong value for error messages."""
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{type(value).__name__} {text}"


def child_path(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def check_types(obj: Any, path: str) -> Iterator[Problem]:
    """Type problems of one model object's own fields (nested blocks are checked by their owner)."""
    for s in specs(type(obj)):
        value = getattr(obj, s.name)
        if value is None:
            continue
        where = child_path(path, s.hcl)
        block: type = s.block if s.block is not None else object
        if s.kind is Kind.BLOCK:
            if not isinstance(value, block):
                yield Problem(where, f"expected a {block.__name__} block, got {describe(value)}")
        elif s.kind is Kind.BLOCKS:
            if not isinstance(value, tuple):
                yield Problem(where, f"expected a list of {block.__name__} blocks")
                continue
            for i, item in enumerate(value):
                if not isinstance(item, block):
                    yield Problem(f"{where}[{i}]",
                                  f"expected a {block.__name__} block, got {describe(item)}")
        elif s.kind is Kind.DURATION and isinstance(value, str):
            yield Problem(where, f"{value!r} is not a duration (e.g. '10s', '1h30m')")
        elif not _TYPE_CHECKS[s.kind](value):
            yield Problem(where, f"expected {s.kind.article}, got {describe(value)}")
        elif s.kind is Kind.MAP and s.name != "config":
            for k, v in value.items():
                if not isinstance(v, str):
                    yield Problem(f"{where}.{k}", f"expected a string, got {describe(v)}")
