"""Nomad's HTTP API JSON, both ways, driven by each class's field table.

Each model class gets a compiled encoder and decoder from its field table (`_base.field`): one
straight line per field, so a job is converted in one pass of dict lookups. Decoding checks every
value as Nomad's Go decoder would (types, integer ranges, shapes: a Go map is a JSON object, a
slice a list), reports unknown keys with their path (Nomad silently drops them), collects every
problem before raising one ValidationError, and builds each object through its class.
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
    evolve,
    label_spec,
    model_fields,
    specs,
    thaw,
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

    With `strict=False` unknown keys are dropped, as Nomad does, instead of reported.
    """
    problems: list[Problem] = []
    unknown: list[Problem] = []
    with collector_paused():
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
    model_keys = {s.api for s in table if s.api != "*ports"}
    if any(s.api == "*ports" for s in table):
        model_keys |= {"ReservedPorts", "DynamicPorts"}
    known = frozenset(model_keys | server_keys)
    namespace: dict[str, Any] = {
        "cls": cls, "KNOWN": known, "SERVER": server_keys, "Problem": Problem,
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
        lines.append("    srv = {k: data[k] for k in SERVER.intersection(data) if data[k] is not None}")
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
    """`data` as Go's decoder reads it: a key that is no field's exactly names the field it matches
    case-insensitively (encoding/json; the server's JobUILink.Url is the api's URL), later keys
    winning; the rest are reported."""
    folded = {k.casefold(): k for k in known}
    out: dict[str, Any] = {}
    for key, value in data.items():
        field = key if key in known else folded.get(str(key).casefold())
        if field is not None:
            out[field] = value
            continue
        import difflib  # only a job with an unknown key pays for it

        hint = difflib.get_close_matches(str(key), sorted(known), n=1)
        more = f"; did you mean {hint[0]!r}?" if hint else ""
        unknown.append(Problem(f"{path}.{key}",
                               f"nomadmesh: unknown field {key!r} (Nomad would silently drop it){more}"))
    return out


_STR = {str}
_INT = {int}


def _strings(value: Any, path: str, problems: list[Problem]) -> tuple[str, ...] | None:
    if type(value) is list and (not value or set(map(type, value)) == _STR):
        if all(map(str.isascii, value)):
            return tuple(value)
        return tuple(map(go_text, value))
    problems.append(Problem(path, f"expected a list of strings, got {describe(value)}"))
    return None


def _integers(value: Any, path: str, problems: list[Problem], go_int: str) -> tuple[int, ...] | None:
    low, high = INT_RANGES[go_int]
    if type(value) is list and (not value or (set(map(type, value)) == _INT
                                              and low <= min(value) and max(value) <= high)):
        return tuple(value)
    problems.append(Problem(path, f"expected a list of integers from {low} to {high} (Go {go_int}), "
                                  f"got {describe(value)}"))
    return None


def _freeze_map(value: Any, path: str, problems: list[Problem]) -> FrozenDict | None:
    if type(value) is dict or isinstance(value, Mapping):
        if not value:
            return None
        if set(map(type, value.values())) == _STR and set(map(type, value)) == _STR:
            if all(map(str.isascii, value.values())) and all(map(str.isascii, value)):
                return FrozenDict(value)
            return FrozenDict({go_text(k): go_text(v) for k, v in value.items()})
        for k, v in value.items():
            if type(k) is not str:
                problems.append(Problem(f"{path}.{k}", f"map keys must be strings, got {describe(k)}"))
            elif type(v) is not str:
                problems.append(Problem(f"{path}.{k}", f"expected a string, got {describe(v)}"))
        return None
    problems.append(Problem(path, f"expected a JSON object of strings, got {describe(value)}"))
    return None


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


def _free_form(value: Any, path: str, problems: list[Problem]) -> FrozenDict | None:
    """A free-form JSON object (task config...), frozen, with what Go's decoder refuses reported:
    numbers beyond float64, NaN and infinities (not JSON), non-string keys, nesting too deep."""
    if not (type(value) is dict or isinstance(value, Mapping)):
        problems.append(Problem(path, f"expected a JSON object, got {describe(value)}"))
        return None
    flat = _flat_config(value)
    if flat is not None:
        return flat
    before = len(problems)
    frozen = _freeze_json(value, path, 0, problems)
    if len(problems) > before:
        return None
    return frozen if frozen else None


def _flat_config(value: Mapping[Any, Any]) -> FrozenDict | None:
    """The common free-form object, frozen in one pass: ASCII string keys, each value an ASCII
    string, a list of them, a finite number, a bool or null. None for anything else."""
    out = {}
    for k, v in value.items():
        t = type(v)
        if type(k) is not str or not k.isascii():
            return None
        if t is str:
            if not v.isascii():
                return None
        elif t is list:
            if v and not (set(map(type, v)) == _STR and all(map(str.isascii, v))):
                return None
            v = tuple(v)
        elif t is int:
            if not -_FLOAT_MAX <= v <= _FLOAT_MAX:
                return None
        elif t is float:
            if not math.isfinite(v):
                return None
        elif t is not bool and v is not None:
            return None
        out[k] = v
    return FrozenDict(out) if out else None


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


def _dynamic(port: Any) -> Any:
    return evolve(port, static=None)
