"""Nomad's HTTP API JSON, both ways, driven by each class's field table.

Each model class gets a compiled encoder and decoder from its field table (`_base.field`): one
straight line per field, so a job is converted in one pass of dict lookups. Decoding checks every
value as Nomad's Go decoder would (types, integer ranges, shapes: a Go map is a JSON object, a
slice a list), reports unknown keys with their path (Nomad silently drops them), collects every
problem before raising one ValidationError, and builds each object through its class.

Decoding has two compiled decoders per class: a fast one, tried first, which builds no path and no
problem list and gives up (`_Refer`) at the first thing it does not accept, and the thorough one,
run only then, which names every problem. For input the fast one accepts both store the same
objects (tests/test_model_decode.py). A fast decoder learns the key shapes its class's input
repeats and is recompiled with a branch per shape that reads only those keys (`_learn`); within one
`decode`, a shape of scalar fields only returns the object it built for equal values
(`_shared_maps`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import attrs

from nomadmesh._gc import collector_paused
from nomadmesh.errors import Problem, ValidationError
from nomadmesh.model import _copy
from nomadmesh.model._base import (
    INT_RANGES,
    MAX_DEPTH,
    FrozenDict,
    Kind,
    compile_generated,
    compiled_on_first_use,
    describe,
    duration_value,
    evolve,
    label_spec,
    model_fields,
    specs,
    thaw,
    to_duration,
    to_tuple,
    unset_zero,
)

T = TypeVar("T")

_Encoder = Callable[[Any], dict[str, Any]]
_Decoder = Callable[[Any, str, list[Problem], list[Problem]], Any]
_encoders: dict[type, _Encoder] = {}
_decoders: dict[type, _Decoder] = {}

# The register body around a job (api.JobRegisterRequest with its WriteRequest, and a plan's Diff).
REGISTER_KEYS = frozenset({"Job", "Submission", "EnforceIndex", "JobModifyIndex", "PolicyOverride",
                           "PreserveCounts", "PreserveResources", "EvalPriority", "Region",
                           "Namespace", "SecretID", "Diff"})


# --- encoding ----------------------------------------------------------------------------------


def encode(obj: Any) -> dict[str, Any]:
    """A model object as Nomad API JSON: a fresh dict of plain JSON types, unset fields left out.

    A job's JSON is tens of thousands of new dicts and lists with no cycles: the cyclic collector
    is paused while they are built.
    """
    with collector_paused():
        return encoder(type(obj))(obj)


def encoder(cls: type) -> _Encoder:
    """The compiled encoder of a model class."""
    try:
        return _encoders[cls]
    except KeyError:
        pass
    namespace: dict[str, Any] = {"thaw": thaw, "ports": _encode_ports}

    def block(name: str, of: type) -> None:
        namespace[name] = compiled_on_first_use(encoder, _encoders, of, namespace, name)

    lines = ["def encode(obj):", "    out = {}", "    d = obj.__dict__"]
    for i, s in enumerate(specs(cls)):
        key = repr(s.api)
        lines.append(f"    v = d[{s.name!r}]")
        if s.api == "*ports":
            namespace["port"] = encoder(s.block)  # type: ignore[arg-type]
            lines.append("    if v: ports(v, out, port)")
        elif s.kind is Kind.BLOCKS:
            block(f"sub{i}", s.block)  # type: ignore[arg-type]
            lines.append(f"    if v: out[{key}] = [sub{i}(x) for x in v]")
        elif s.kind is Kind.BLOCK:
            block(f"sub{i}", s.block)  # type: ignore[arg-type]
            lines.append(f"    if v is not None: out[{key}] = sub{i}(v)")
        elif s.kind is Kind.BLOCK_MAP:
            block(f"sub{i}", s.block)  # type: ignore[arg-type]
            lines.append(f"    if v: out[{key}] = {{k: sub{i}(x) for k, x in v.items()}}")
        elif s.kind in (Kind.STRS, Kind.INTS):
            lines.append(f"    if v: out[{key}] = list(v)")
        elif s.kind is Kind.MAP:
            lines.append(f"    if v: out[{key}] = dict(v)")
        elif s.kind in (Kind.ANY, Kind.MAP_STRS):
            lines.append(f"    if v: out[{key}] = thaw(v)")
        else:
            lines.append(f"    if v is not None: out[{key}] = v")
    lines.append("    return out")
    # Generated from the model's own field table only; named so profiles and tracebacks say which.
    exec(compile_generated("\n".join(lines), f"<nomadmesh encoder {cls.__name__}>"), namespace)
    result: _Encoder = namespace["encode"]
    _encoders[cls] = result
    return result


def _encode_ports(ports: tuple[Any, ...], out: dict[str, Any], port: _Encoder) -> None:
    """Nomad's JSON lists ports with a static value under ReservedPorts, the others DynamicPorts."""
    reserved = [port(p) for p in ports if p.static]
    dynamic = [port(p) for p in ports if not p.static]
    if reserved:
        out["ReservedPorts"] = reserved
    if dynamic:
        out["DynamicPorts"] = dynamic


# --- decoding ----------------------------------------------------------------------------------


def decode(cls: type[T], data: Any, path: str, *, strict: bool = True) -> T:
    """A model object from Nomad JSON; raises ValidationError listing every problem with its path.

    With `strict=False` unknown keys are dropped, as Nomad does, instead of reported. The fast
    decoder builds the object; the thorough one runs only for input the fast one refers to it.
    """
    problems: list[Problem] = []
    unknown: list[Problem] = []
    with collector_paused():
        try:
            return fast_decoder(cls)(data, not strict)  # type: ignore[no-any-return]
        except _Refer:
            pass
        finally:
            _forget_shared()
        obj = decoder(cls)(data, path, problems, unknown)
    if strict:
        problems.extend(unknown)
    if problems:
        raise ValidationError(problems, subject=path or cls.__name__)
    assert obj is not None
    return obj  # type: ignore[no-any-return]


def decoder(cls: type) -> _Decoder:
    """The compiled decoder of a model class: (data, path, problems, unknown) -> object or None."""
    try:
        return _decoders[cls]
    except KeyError:
        pass
    result = _decoders[cls] = _compile_decoder(cls)
    return result


_SCALAR_TESTS = {
    Kind.STR: ("type(v) is str", "a string"),
    Kind.BOOL: ("type(v) is bool", "true or false"),
}
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def go_text(text: str) -> str:
    """A string as Go's JSON decoder reads it: a lone UTF-16 surrogate (valid in Python's JSON,
    not in UTF-8) becomes U+FFFD."""
    if text.isascii():
        return text
    return _LONE_SURROGATE.sub("\ufffd", text)


def _compile_decoder(cls: type, *, direct: bool = True) -> _Decoder:
    """`direct=False`: build the object through its constructor (what tests compare with)."""
    table = specs(cls)
    server_keys: frozenset[str] = getattr(cls, "_server", frozenset())
    namespace: dict[str, Any] = {
        "cls": cls, "KNOWN": _known_keys(cls), "SERVER": server_keys, "Problem": Problem,
        "describe": describe, "unknown_keys": _unknown_keys, "FrozenDict": FrozenDict,
        "free": _free_form, "strs": _strings, "ints": _integers, "smap": _freeze_map,
        "lmap": _string_lists, "ports": _decode_ports, "text": go_text,
    }
    namespace["Mapping"] = Mapping
    state = _direct_state(cls, table) if direct else None
    if state is not None:
        # The object's own dict is built here (the defaults its constructor stores, then each
        # decoded field through its converter) instead of a keyword call of the constructor.
        namespace.update(DEFAULTS=state[0], new=object.__new__, set_state=object.__setattr__,
                         **_copy.fixed_point_names())
    converters = state[1] if state is not None else {}
    lines = [
        "def decode(data, path, problems, unknown):",
        "    if type(data) is not dict:",
        "        if not isinstance(data, Mapping):",
        "            problems.append(Problem(path, 'expected a JSON object, got ' + describe(data)))",
        "            return None",
        "    n = len(problems)",
        "    kw = DEFAULTS.copy()" if state is not None else "    kw = {}",
        "    if not data.keys() <= KNOWN: data = unknown_keys(data, KNOWN, path, unknown)",
    ]

    def put(field: str, value: str) -> str:
        """`kw[field] = value`, through the field's converter when the dict is built here;
        `value` is a name or an expression evaluated once."""
        convert = converters.get(field)
        if convert is None:
            return f"kw[{field!r}] = {value}"
        namespace[f"conv_{field}"] = convert
        if value.isidentifier():
            return f"kw[{field!r}] = " + _copy.fixed_point(convert, value, f"conv_{field}")
        return f"kw[{field!r}] = conv_{field}({value})"

    def block(name: str, of: type) -> None:
        namespace[name] = compiled_on_first_use(decoder, _decoders, of, namespace, name)

    if server_keys:
        # In the input's key order (a frozenset's order depends on the hash seed).
        lines.append("    srv = {k: v for k, v in data.items() if k in SERVER and v is not None}")
        lines.append("    if srv: " + put("server", "srv"))
    for i, s in enumerate(table):
        where = repr("." + s.where) if not s.label else "''"
        if s.api == "*ports":
            block("port", s.block)  # type: ignore[arg-type]
            lines.append("    if data.get('ReservedPorts') is not None or "
                         "data.get('DynamicPorts') is not None:")
            lines.append("        " + put("ports", "ports(data, path, problems, unknown, port)"))
            continue
        if s.label:
            lines.append(f"    v = data.get({s.api!r})")
            lines.append(f"    if v is None: problems.append(Problem(path, 'missing {s.api}'))")
            lines.append("    elif type(v) is str: " + put(s.name, "(v if v.isascii() else text(v))"))
            lines.append("    else: problems.append(Problem(path + '.' + " + repr(s.api)
                         + ", 'expected a string, got ' + describe(v)))")
            continue
        # A membership test skips an absent field (most are, in any one block) without the
        # method call of `data.get`.
        lines.append(f"    if {s.api!r} in data and (v := data[{s.api!r}]) is not None:")
        bad = f"problems.append(Problem(path + {where}, 'expected {{}}, got ' + describe(v)))"
        if s.kind in _SCALAR_TESTS:
            test, what = _SCALAR_TESTS[s.kind]
            value = "(v if v.isascii() else text(v))" if s.kind is Kind.STR else "v"
            store = put(s.name, value) if s.ptr else "if v: " + put(s.name, value)
            lines.append(f"        if {test}:")
            lines.append(f"            {store}")
            lines.append(f"        else: {bad.format(what)}")
        elif s.kind is Kind.INT or s.kind is Kind.DURATION:
            go_int = "int64" if s.kind is Kind.DURATION else s.go_int
            low, high = INT_RANGES[go_int]
            what = ("integer nanoseconds" if s.kind is Kind.DURATION
                    else f"an integer from {low} to {high} (Go {go_int})")
            store = put(s.name, "v") if s.ptr else "if v: " + put(s.name, "v")
            lines.append(f"        if type(v) is int and {low} <= v <= {high}:")
            lines.append(f"            {store}")
            lines.append(f"        else: {bad.format(what)}")
        elif s.kind is Kind.STRS:
            lines.append(f"        v = strs(v, path + {where}, problems)")
            lines.append("        if v: " + put(s.name, "v"))
        elif s.kind is Kind.INTS:
            lines.append(f"        v = ints(v, path + {where}, problems, {s.go_int!r})")
            lines.append("        if v: " + put(s.name, "v"))
        elif s.kind is Kind.MAP:
            lines.append(f"        v = smap(v, path + {where}, problems)")
            lines.append("        if v: " + put(s.name, "v"))
        elif s.kind is Kind.MAP_STRS:
            lines.append(f"        v = lmap(v, path + {where}, problems)")
            lines.append("        if v: " + put(s.name, "v"))
        elif s.kind is Kind.ANY:
            lines.append(f"        v = free(v, path + {where}, problems)")
            lines.append("        if v: " + put(s.name, "v"))
        elif s.kind is Kind.BLOCK:
            block(f"sub{i}", s.block)  # type: ignore[arg-type]
            lines.append(f"        o = sub{i}(v, path + {where}, problems, unknown)")
            lines.append("        if o is not None: " + put(s.name, "o"))
        elif s.kind is Kind.BLOCKS:
            block(f"sub{i}", s.block)  # type: ignore[arg-type]
            sub_label = label_spec(s.block)  # type: ignore[arg-type]
            lines.append("        if type(v) is list:")
            lines.append("            items = []")
            lines.append("            for j, x in enumerate(v):")
            if sub_label is not None:
                lines.append(f"                t = x.get({sub_label.api!r}) if type(x) is dict else None")
                lines.append("                if type(t) is not str or not t: t = j")
            else:
                lines.append("                t = j")
            lines.append(f"                o = sub{i}(x, f'{{path}}.{s.where}[{{t}}]', problems, unknown)")
            lines.append("                if o is not None: items.append(o)")
            lines.append("            if items: " + put(s.name, "tuple(items)"))
            lines.append(f"        else: {bad.format('a list')}")
        elif s.kind is Kind.BLOCK_MAP:
            block(f"sub{i}", s.block)  # type: ignore[arg-type]
            lines.append("        if type(v) is dict:")
            lines.append("            items = {}")
            lines.append("            for k, x in v.items():")
            map_label = label_spec(s.block)  # type: ignore[arg-type]
            if map_label is not None:
                # The label is the map key: the server's structs may not repeat it (a GET of a
                # gateway's bind addresses has no Name).
                lines.append(f"                if type(x) is dict and {map_label.api!r} not in x: "
                             f"x = {{{map_label.api!r}: k, **x}}")
            lines.append(f"                o = sub{i}(x, f'{{path}}.{s.where}[{{k}}]', problems, unknown)")
            lines.append("                if o is not None: items[k] = o")
            lines.append("            if items: " + put(s.name, "FrozenDict(items)"))
            lines.append(f"        else: {bad.format('a JSON object keyed by name')}")
        else:  # pragma: no cover - every kind is handled above
            raise AssertionError(s.kind)
    lines.append("    if len(problems) > n: return None")
    if state is None:
        lines.append("    return cls(**kw)")
    else:
        lines += ["    obj = new(cls)", "    set_state(obj, '__dict__', kw)", "    return obj"]
    # Generated from the model's own field table only; named so profiles and tracebacks say which.
    exec(compile_generated("\n".join(lines), f"<nomadmesh decoder {cls.__name__}>"), namespace)
    result: _Decoder = namespace["decode"]
    return result


class _Refer(Exception):
    """Raised by a fast decoder at anything the thorough decoder must see: a problem, or a shape
    only it handles (a Mapping that is not a dict, an unknown key kept for `strict`)."""


_FastDecoder = Callable[[Any, bool], Any]
_fast_decoders: dict[type, _FastDecoder] = {}


def fast_decoder(cls: type) -> _FastDecoder:
    """The compiled fast decoder of a model class: (data, drop unknown keys) -> object.

    It stores exactly what `decoder(cls)` stores for input it accepts, and raises `_Refer` for
    everything else; it builds no path and no list of problems (`decode` runs the thorough
    decoder, which reports them, only then).
    """
    try:
        return _fast_decoders[cls]
    except KeyError:
        pass
    result = _fast_decoders[cls] = _compile_fast_decoder(cls, ())
    return result


# Converters that return a truthy value of the decoded type as it is: `unset_zero` any non-empty
# string, non-zero integer or true; the duration converters any non-zero integer.
_KEEPS_TRUTHY = {Kind.STR: frozenset({unset_zero}), Kind.BOOL: frozenset({unset_zero}),
                 Kind.INT: frozenset({unset_zero, to_duration, duration_value}),
                 Kind.DURATION: frozenset({unset_zero, to_duration, duration_value})}
# ... and any value of the decoded type (a pointer field's zero too): the duration converter any
# integer, the list converters any tuple.
_KEEPS_ANY = {Kind.INT: frozenset({to_duration}), Kind.DURATION: frozenset({to_duration}),
              Kind.BLOCKS: frozenset({to_tuple})}

# Key shapes. A job repeats a few shapes of each block many times (every task with the same keys),
# so a class's fast decoder learns them: a set of keys seen `_SHAPE_AFTER` times on input it
# accepted is compiled into it as a branch that reads exactly those keys, with no membership test
# per field and no count of the keys read (a dict of that size holding all of them holds nothing
# else). At most `_MAX_SHAPES` shapes per class, one per number of keys; other input takes the
# general path, which stores the same objects.
_SHAPE_AFTER = 8
_MAX_SHAPES = 8
_SHAPE_SAMPLES = 8  # distinct key sets counted per number of keys before it is given up


class _Shapes:
    """What a class's fast decoder has learnt of its input's key shapes, across its recompiles."""

    __slots__ = ("closed", "compiled", "counts", "users")

    def __init__(self) -> None:
        self.compiled: tuple[tuple[str, ...], ...] = ()
        self.closed: set[int] = set()  # key counts not learnt (any more)
        self.counts: dict[int, dict[tuple[str, ...], int]] = {}
        # Where other decoders hold this class's decoder: (namespace, name), rebound on recompile.
        self.users: list[tuple[dict[str, Any], str]] = []


_shapes: dict[type, _Shapes] = {}

# Blocks of scalar fields only (resources, logs, ports, checks...) repeat across a job's groups
# and tasks: within one `decode`, a learnt shape of such a block returns the object it built for
# equal values, as immutable values may be shared. A shape whose values do not repeat stops
# looking once `_SHARED_LIMIT` different ones are kept. The maps are emptied (and the shapes
# look again) when `decode` returns, so nothing is kept between decodes.
_SCALAR_KINDS = frozenset({Kind.STR, Kind.INT, Kind.BOOL, Kind.DURATION})
_SHARED_LIMIT = 64
# Each shape's map, and the namespace and name of its flag (false once it stopped looking).
_shared_maps: list[tuple[dict[tuple[Any, ...], Any], dict[str, Any], str]] = []


def _forget_shared() -> None:
    for shared, namespace, flag in _shared_maps:
        if shared:
            shared.clear()
            namespace[flag] = True


def _learn(cls: type, data: dict[str, Any]) -> None:
    """Count `data`'s key shape (accepted by the general path); compile it in once it is common."""
    shapes = _shapes[cls]
    size = len(data)
    if size in shapes.closed:
        return
    seen = shapes.counts.setdefault(size, {})
    key = tuple(data)
    count = seen.get(key, 0) + 1
    if count < _SHAPE_AFTER:
        if count == 1 and len(seen) >= _SHAPE_SAMPLES:
            shapes.closed.add(size)  # too varied at this size
        else:
            seen[key] = count
        return
    shapes.closed.add(size)
    del shapes.counts[size]
    shapes.compiled += (key,)
    if len(shapes.compiled) >= _MAX_SHAPES:
        shapes.closed.update(range(len(_known_keys(cls)) + 3))
        shapes.counts.clear()
    old = _fast_decoders[cls].__globals__
    _shared_maps[:] = [entry for entry in _shared_maps if entry[1] is not old]
    compiled = _fast_decoders[cls] = _compile_fast_decoder(cls, shapes.compiled)
    for namespace, name in shapes.users:
        namespace[name] = compiled


def _compile_fast_decoder(cls: type, shapes: tuple[tuple[str, ...], ...]) -> _FastDecoder:
    table = specs(cls)
    server_keys: frozenset[str] = getattr(cls, "_server", frozenset())
    learnt = _shapes.get(cls)
    if learnt is None:
        learnt = _shapes[cls] = _Shapes()
    namespace: dict[str, Any] = {
        "cls": cls, "KNOWN": _known_keys(cls), "SERVER": server_keys, "Refer": _Refer,
        "fold": _fold_keys, "free": _fast_free_form, "strs": _fast_strings, "ints": _fast_integers,
        "smap": _fast_freeze_map, "lmap": _fast_string_lists, "ports": _fast_ports,
        "text": go_text, "FrozenDict": FrozenDict, "tuple": tuple, "type": type,
        "str": str, "int": int, "bool": bool, "list": list, "dict": dict,
        "CLOSED": learnt.closed, "learn": _learn, "SHARED_LIMIT": _SHARED_LIMIT,
    }
    state = _direct_state(cls, table)
    if state is not None:
        namespace.update(DEFAULTS=state[0], new=object.__new__, **_copy.fixed_point_names())
    converters = state[1] if state is not None else {}

    def put(field: str, value: str, keeps: frozenset[Any] = frozenset()) -> str:
        """`kw[field] = value` through the field's converter (`value` a name), skipped when it is
        one of `keeps`, the converters known to return this value as it is."""
        convert = converters.get(field)
        if convert is None or convert in keeps:
            return f"kw[{field!r}] = {value}"
        namespace[f"conv_{field}"] = convert
        return f"kw[{field!r}] = " + _copy.fixed_point(convert, value, f"conv_{field}")

    def block(name: str, of: type) -> None:
        namespace[name] = compiled_on_first_use(fast_decoder, _fast_decoders, of, namespace, name)
        users = _shapes.setdefault(of, _Shapes()).users
        if not any(held is namespace and key == name for held, key in users):
            users.append((namespace, name))

    start = ["obj = new(cls)", "kw = obj.__dict__", "kw.update(DEFAULTS)"] if state is not None \
        else ["kw = {}"]
    finish = "return cls(**kw)" if state is None else "return obj"

    def body(present: Callable[[str], str | None], count: bool) -> list[str]:
        """The statements that build the object, at no indentation. `present(key)` is the
        expression reading `data[key]` (None: the key is absent), or with `count` a membership
        test and a count of the keys read are generated."""
        lines = list(start)
        if server_keys:
            # In the input's key order (a frozenset's order depends on the hash seed).
            if count:
                lines.append("srv = [k for k in data if k in SERVER]")
                lines.append("n += len(srv)")
                lines.append("srv = {k: data[k] for k in srv if data[k] is not None}")
            else:
                lines.append("srv = {k: v for k, v in data.items() if k in SERVER and v is not None}")
            lines.append("if srv: " + put("server", "srv"))
        for i, s in enumerate(table):
            if s.api == "*ports":
                block("port", s.block)  # type: ignore[arg-type]
                if count:
                    lines.append("n += ('ReservedPorts' in data) + ('DynamicPorts' in data)")
                elif present("ReservedPorts") is None and present("DynamicPorts") is None:
                    continue
                lines.append("if data.get('ReservedPorts') is not None or "
                             "data.get('DynamicPorts') is not None:")
                lines.append("    v = ports(data, drop, port)")
                lines.append("    " + put("ports", "v"))
                continue
            if s.label:
                lines.append(f"v = data.get({s.api!r})" if count else f"v = {present(s.api)}")
                lines.append("if type(v) is not str: raise Refer")
                if count:
                    lines.append("n += 1")
                lines.append("if not v.isascii(): v = text(v)")
                lines.append(put(s.name, "v"))
                continue
            if count:
                lines.append(f"if {s.api!r} in data:")
                lines.append("    n += 1")
                lines.append(f"    if (v := data[{s.api!r}]) is not None:")
                lines += ["        " + line for line in _fast_field(s, i, put, block)]
            else:
                read = present(s.api)
                if read is not None:
                    lines.append(f"if (v := {read}) is not None:")
                    lines += ["    " + line for line in _fast_field(s, i, put, block)]
        return lines

    def shared_body(shape: tuple[str, ...], local: dict[str, str], j: int) -> list[str] | None:
        """For a shape of scalar fields only: the statements that check its values, then return
        the object already decoded from equal values (`_shared_maps`), else build and keep it.
        None for any other shape."""
        fields = [f for f in table if f.api in local]
        if len(fields) != len(shape) or any(f.kind not in _SCALAR_KINDS for f in fields):
            return None
        checks: list[str] = []
        stores: list[str] = []
        for f in fields:
            a = local[f.api]
            if f.label:
                checks += [f"if type({a}) is not str: raise Refer",
                           f"if not {a}.isascii(): {a} = text({a})"]
                stores.append(put(f.name, a))
                continue
            if f.kind is Kind.STR:
                checks += [f"if {a} is not None:",
                           f"    if type({a}) is not str: raise Refer",
                           f"    if not {a}.isascii(): {a} = text({a})"]
            elif f.kind is Kind.BOOL:
                checks.append(f"if {a} is not None and type({a}) is not bool: raise Refer")
            else:
                low, high = INT_RANGES["int64" if f.kind is Kind.DURATION else f.go_int]
                checks.append(f"if {a} is not None and (type({a}) is not int "
                              f"or not {low} <= {a} <= {high}): raise Refer")
            if f.ptr:
                stores.append(f"if {a} is not None: "
                              + put(f.name, a, _KEEPS_ANY.get(f.kind, frozenset())))
            else:
                stores.append(f"if {a}: " + put(f.name, a, _KEEPS_TRUTHY[f.kind]))
        shared_map: dict[tuple[Any, ...], Any] = {}
        namespace[f"SHARED{j}"] = shared_map
        namespace[f"SHARING{j}"] = True
        _shared_maps.append((shared_map, namespace, f"SHARING{j}"))
        # Checked, each value is None or of its field's exact type (an int is not a bool), so
        # equal keys decode to equal objects.
        key = "(" + "".join(f"{local[k]}, " for k in shape) + ")"
        build = [*start, *stores]
        return [*checks,
                f"if SHARING{j}:",
                f"    key = {key}",
                f"    obj = SHARED{j}.get(key)",
                "    if obj is None:",
                *("        " + line for line in build),
                f"        if len(SHARED{j}) < SHARED_LIMIT: SHARED{j}[key] = obj",
                f"        else: SHARING{j} = False",
                "    return obj",
                *build,
                "return obj"]

    lines = ["def decode(data, drop):", "    if type(data) is not dict: raise Refer"]
    flags: list[str] = []
    if shapes:
        lines.append("    m = len(data)")
    for j, shape in enumerate(shapes):
        local = {key: f"a{k}" for k, key in enumerate(shape)}
        lines.append(f"    {'if' if j == 0 else 'elif'} m == {len(shape)}:")
        lines.append("        try:")
        lines += [f"            {name} = data[{key!r}]" for key, name in local.items()]
        if not shape:
            lines.append("            pass")
        lines += ["        except KeyError:", "            pass", "        else:"]
        shared = shared_body(shape, local, j) if state is not None and not server_keys else None
        if shared is not None:
            flags.append(f"SHARING{j}")
            lines += ["            " + line for line in shared]
        else:
            lines += ["            " + line for line in body(local.get, count=False)]
            lines.append("            " + finish)
    # The keys read are counted: a key no field reads (an unknown one, or one Go matches
    # case-insensitively) makes the count differ from the dict's size, which is cheaper to test
    # once than every key against the known ones.
    lines.append("    n = 0")
    lines += ["    " + line for line in body(lambda key: None, count=True)]
    lines.append("    if n != len(data): return decode(fold(data, KNOWN, drop), drop)")
    lines.append("    if n not in CLOSED: learn(cls, data)")
    lines.append("    " + finish)
    if flags:
        lines.insert(1, f"    global {', '.join(flags)}")
    # Generated from the model's own field table only; named so profiles and tracebacks say which.
    exec(compile_generated("\n".join(lines), f"<nomadmesh fast decoder {cls.__name__}>"), namespace)
    result: _FastDecoder = namespace["decode"]
    return result


def _fast_field(s: Any, i: int, put: Callable[..., str], block: Callable[[str, type], None]) -> list[str]:
    """A fast decoder's statements storing field `s` from its value `v` (present, not null)."""
    lines: list[str] = []
    if s.kind is Kind.STR or s.kind is Kind.BOOL:
        lines.append(f"if type(v) is not {'str' if s.kind is Kind.STR else 'bool'}: raise Refer")
        if s.kind is Kind.STR:
            lines.append("if not v.isascii(): v = text(v)")
        if s.ptr:
            lines.append(put(s.name, "v", _KEEPS_ANY.get(s.kind, frozenset())))
        else:
            lines.append("if v: " + put(s.name, "v", _KEEPS_TRUTHY[s.kind]))
    elif s.kind is Kind.INT or s.kind is Kind.DURATION:
        low, high = INT_RANGES["int64" if s.kind is Kind.DURATION else s.go_int]
        lines.append(f"if type(v) is not int or not {low} <= v <= {high}: raise Refer")
        if s.ptr:
            lines.append(put(s.name, "v", _KEEPS_ANY[s.kind]))
        else:
            lines.append("if v: " + put(s.name, "v", _KEEPS_TRUTHY[s.kind]))
    elif s.kind in _FAST_VALUES:
        extra = f", {s.go_int!r}" if s.kind is Kind.INTS else ""
        lines.append(f"v = {_FAST_VALUES[s.kind]}(v{extra})")
        lines.append("if v: " + put(s.name, "v"))
    elif s.kind is Kind.BLOCK:
        block(f"sub{i}", s.block)
        lines.append(f"v = sub{i}(v, drop)")
        lines.append(put(s.name, "v"))
    elif s.kind is Kind.BLOCKS:
        block(f"sub{i}", s.block)
        lines.append("if type(v) is not list: raise Refer")
        # Most lists of blocks hold one: no list comprehension (a function call) for it.
        lines.append(f"if v: v = (sub{i}(v[0], drop),) if len(v) == 1 else "
                     f"tuple([sub{i}(x, drop) for x in v]); " + put(s.name, "v", _KEEPS_ANY[s.kind]))
    elif s.kind is Kind.BLOCK_MAP:
        block(f"sub{i}", s.block)
        lines.append("if type(v) is not dict: raise Refer")
        lines.append("if v:")
        lines.append("    items = {}")
        lines.append("    for k, x in v.items():")
        map_label = label_spec(s.block)
        if map_label is not None:
            lines.append(f"        if type(x) is dict and {map_label.api!r} not in x: "
                         f"x = {{{map_label.api!r}: k, **x}}")
        lines.append(f"        items[k] = sub{i}(x, drop)")
        lines.append("    v = FrozenDict(items); " + put(s.name, "v"))
    else:  # pragma: no cover - every kind is handled above
        raise AssertionError(s.kind)
    return lines


_FAST_VALUES = {Kind.STRS: "strs", Kind.INTS: "ints", Kind.MAP: "smap", Kind.MAP_STRS: "lmap",
                Kind.ANY: "free"}


def _known_keys(cls: type) -> frozenset[str]:
    """The JSON keys a class's decoder reads: its fields' and the server's own."""
    table = specs(cls)
    keys = {s.api for s in table if s.api != "*ports"}
    if any(s.api == "*ports" for s in table):
        keys |= {"ReservedPorts", "DynamicPorts"}
    return frozenset(keys | getattr(cls, "_server", frozenset()))


def _fold_keys(data: dict[str, Any], known: frozenset[str], drop: bool) -> dict[str, Any]:
    """`_unknown_keys` for a fast decoder: the keys Go's decoder matches, unknown ones dropped
    when `drop`, else left to the thorough decoder to report."""
    out, unknown = _matched_keys(data, known)
    if unknown and not drop:
        raise _Refer
    return out


def _direct_state(cls: type, table: tuple[Any, ...]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """For a class whose copies `evolve` builds from the instance dict (nomadmesh.model._copy):
    the dict its constructor stores when given no argument (every field in order, the label a
    placeholder the decoder always replaces) and its fields' converters. None for a class built
    through its constructor: one `evolve` copies through `__init__`, one with a required field
    other than its label, or one whose converted default is not one shared value."""
    converters = _copy.converters(cls)
    if converters is None:
        return None
    label = next((s.name for s in table if s.label), None)
    defaults: dict[str, Any] = {}
    for a in model_fields(cls):  # not attrs.fields: that builds attrs' own class first
        if a.default is attrs.NOTHING:
            if a.name != label:
                return None
            defaults[a.name] = None
            continue
        convert = converters[a.name]
        value = a.default if convert is None else convert(a.default)
        if convert is not None and convert(a.default) is not value:
            return None
        defaults[a.name] = value
    return defaults, {k: v for k, v in converters.items() if v is not None}


def _unknown_keys(data: Mapping[str, Any], known: frozenset[str], path: str,
                  unknown: list[Problem]) -> dict[str, Any]:
    """`data` as Go's decoder reads it (`_matched_keys`), its unknown keys reported."""
    out, keys = _matched_keys(data, known)
    if keys:
        import difflib  # only a job with an unknown key pays for it

        for key in keys:
            hint = difflib.get_close_matches(str(key), sorted(known), n=1)
            more = f"; did you mean {hint[0]!r}?" if hint else ""
            unknown.append(Problem(f"{path}.{key}", "nomadmesh: unknown field "
                                   f"{key!r} (Nomad would silently drop it){more}"))
    return out


def _matched_keys(data: Mapping[str, Any], known: frozenset[str]) -> tuple[dict[str, Any], list[Any]]:
    """`data` as Go's decoder reads it: a key that is no field's exactly names the field it matches
    case-insensitively (encoding/json; the server's JobUILink.Url is the api's URL), later keys
    winning; and the keys that match none, in order."""
    folded = {k.casefold(): k for k in known}
    out: dict[str, Any] = {}
    unknown = []
    for key, value in data.items():
        field = key if key in known else folded.get(str(key).casefold())
        if field is not None:
            out[field] = value
        else:
            unknown.append(key)
    return out, unknown


_STR = {str}
_INT = {int}


# Each value helper comes in two: `_fast_x(value)` returns the stored value or raises `_Refer`
# (the fast decoders' path), and `_x(value, path, problems)` is the same with the problems named.


def _fast_strings(value: Any) -> tuple[str, ...]:
    # A loop, not `set(map(type, value))`: lists in a job are short, and for a few items the
    # loop is about twice as fast.
    if type(value) is not list:
        raise _Refer
    ascii = True
    for item in value:
        if type(item) is not str:
            raise _Refer
        if not item.isascii():
            ascii = False
    return tuple(value) if ascii else tuple(map(go_text, value))


def _strings(value: Any, path: str, problems: list[Problem]) -> tuple[str, ...] | None:
    try:
        return _fast_strings(value)
    except _Refer:
        problems.append(Problem(path, f"expected a list of strings, got {describe(value)}"))
        return None


def _fast_integers(value: Any, go_int: str) -> tuple[int, ...]:
    low, high = INT_RANGES[go_int]
    if type(value) is list and (not value or (set(map(type, value)) == _INT
                                              and low <= min(value) and max(value) <= high)):
        return tuple(value)
    raise _Refer


def _integers(value: Any, path: str, problems: list[Problem], go_int: str) -> tuple[int, ...] | None:
    try:
        return _fast_integers(value, go_int)
    except _Refer:
        low, high = INT_RANGES[go_int]
        problems.append(Problem(path, f"expected a list of integers from {low} to {high} "
                                      f"(Go {go_int}), got {describe(value)}"))
        return None


def _fast_freeze_map(value: Any) -> FrozenDict | None:
    if type(value) is dict or isinstance(value, Mapping):
        if not value:
            return None
        ascii = True
        for k, v in value.items():
            if type(v) is not str or type(k) is not str:
                raise _Refer
            if not (v.isascii() and k.isascii()):
                ascii = False
        if ascii:
            return FrozenDict(value)
        return FrozenDict({go_text(k): go_text(v) for k, v in value.items()})
    raise _Refer


def _freeze_map(value: Any, path: str, problems: list[Problem]) -> FrozenDict | None:
    try:
        return _fast_freeze_map(value)
    except _Refer:
        pass
    if not (type(value) is dict or isinstance(value, Mapping)):
        problems.append(Problem(path, f"expected a JSON object of strings, got {describe(value)}"))
        return None
    for k, v in value.items():
        if type(k) is not str:
            problems.append(Problem(f"{path}.{k}", f"map keys must be strings, got {describe(k)}"))
        elif type(v) is not str:
            problems.append(Problem(f"{path}.{k}", f"expected a string, got {describe(v)}"))
    return None


def _fast_string_lists(value: Any) -> FrozenDict | None:
    if not (type(value) is dict or isinstance(value, Mapping)):
        raise _Refer
    out = {str(k): () if v is None else _fast_strings(v) for k, v in value.items()}
    return FrozenDict(out) if out else None


def _string_lists(value: Any, path: str, problems: list[Problem]) -> FrozenDict | None:
    if not (type(value) is dict or isinstance(value, Mapping)):
        problems.append(Problem(path, f"expected a JSON object of string lists, got {describe(value)}"))
        return None
    out: dict[str, tuple[str, ...]] = {}
    for k, v in value.items():
        if v is None:
            out[str(k)] = ()
            continue
        items = _strings(v, f"{path}.{k}", problems)
        if items is not None:
            out[str(k)] = items
    return FrozenDict(out) if out else None


_FLOAT_MAX = 1.7976931348623157e308


def _fast_free_form(value: Any) -> FrozenDict | None:
    """A free-form JSON object (task config...), frozen, refusing what Go's decoder refuses:
    numbers beyond float64, NaN and infinities (not JSON), non-string keys, nesting too deep.

    The common object is frozen in one pass here: ASCII string keys, each value an ASCII string,
    a list of them, a finite number, a bool or null. Anything else is frozen by `_freeze_json`.
    """
    if not (type(value) is dict or isinstance(value, Mapping)):
        raise _Refer
    out = {}
    for k, v in value.items():
        t = type(v)
        if type(k) is not str or not k.isascii():
            break
        if t is str:
            if not v.isascii():
                break
        elif t is list:
            for x in v:
                if type(x) is not str or not x.isascii():
                    break
            else:
                v = tuple(v)
                out[k] = v
                continue
            break
        elif t is int:
            if not -_FLOAT_MAX <= v <= _FLOAT_MAX:
                break
        elif t is float:
            if not math.isfinite(v):
                break
        elif t is not bool and v is not None:
            break
        out[k] = v
    else:
        return FrozenDict(out) if out else None
    problems: list[Problem] = []
    frozen = _freeze_json(value, "", 0, problems)
    if problems:
        raise _Refer
    return frozen if frozen else None


def _free_form(value: Any, path: str, problems: list[Problem]) -> FrozenDict | None:
    try:
        return _fast_free_form(value)
    except _Refer:
        pass
    if not (type(value) is dict or isinstance(value, Mapping)):
        problems.append(Problem(path, f"expected a JSON object, got {describe(value)}"))
    else:
        _freeze_json(value, path, 0, problems)
    return None


def _freeze_json(value: Any, path: str, depth: int, problems: list[Problem]) -> Any:
    t = type(value)
    if t is str:
        return go_text(value)
    if t is bool or value is None:
        return value
    if t is int:
        if -_FLOAT_MAX <= value <= _FLOAT_MAX:
            return value
        problems.append(Problem(path, "number out of range (Nomad decodes it as a float64)"))
        return None
    if t is float:
        if math.isfinite(value):
            return value
        problems.append(Problem(path, f"{value!r} is not a JSON number"))
        return None
    if depth >= MAX_DEPTH:
        problems.append(Problem(path, f"nomadmesh: nested more than {MAX_DEPTH} levels deep"))
        return None
    if t is dict or isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if type(k) is not str:
                problems.append(Problem(f"{path}.{k!r}", f"map keys must be strings, got {describe(k)}"))
                continue
            out[go_text(k)] = _freeze_json(v, f"{path}.{k}", depth + 1, problems)
        return FrozenDict(out)
    if t is list or t is tuple:
        if not value or (set(map(type, value)) == _STR and all(map(str.isascii, value))):
            return tuple(value)
        return tuple(_freeze_json(v, f"{path}[{i}]", depth + 1, problems)
                     for i, v in enumerate(value))
    problems.append(Problem(path, f"expected a JSON value, got {describe(value)}"))
    return None


def _decode_ports(data: Mapping[str, Any], path: str, problems: list[Problem],
                  unknown: list[Problem], port: _Decoder) -> tuple[Any, ...]:
    """ReservedPorts and DynamicPorts into one list, reserved first (see `network.Port`)."""
    out = []
    for key in ("ReservedPorts", "DynamicPorts"):
        value = data.get(key)
        if value is None:
            continue
        if type(value) is not list:
            problems.append(Problem(f"{path}.{key}", f"expected a list, got {describe(value)}"))
            continue
        for i, item in enumerate(value):
            tag = item.get("Label") if type(item) is dict else None
            decoded = port(item, f"{path}.port[{tag if isinstance(tag, str) and tag else i}]",
                           problems, unknown)
            if decoded is None:
                continue
            if key == "DynamicPorts" and decoded.static is not None:
                decoded = _dynamic(decoded)
            out.append(decoded)
    return tuple(out)


def _fast_ports(data: Mapping[str, Any], drop: bool, port: _FastDecoder) -> tuple[Any, ...]:
    """`_decode_ports` for a fast decoder."""
    out = []
    for key in ("ReservedPorts", "DynamicPorts"):
        value = data.get(key)
        if value is None:
            continue
        if type(value) is not list:
            raise _Refer
        for item in value:
            decoded = port(item, drop)
            if key == "DynamicPorts" and decoded.static is not None:
                decoded = _dynamic(decoded)
            out.append(decoded)
    return tuple(out)


def _dynamic(port: Any) -> Any:
    return evolve(port, static=None)
