"""The Nomad HTTP API's JSON, both ways: Go field names, nanosecond durations, split port lists.

Each model class gets a compiled plan from its field table (`nomadmesh.model._base.field`), so
encoding and decoding are one pass of dict lookups. Decoding checks every value's type, rejects
unknown keys with their path, and collects every problem before raising one ValidationError.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from nomadmesh._gc import collector_paused
from nomadmesh.codec._tables import PASSTHROUGH, SERVER
from nomadmesh.errors import Problem, ValidationError
from nomadmesh.model import Job, Network, Port
from nomadmesh.model._base import (
    FrozenDict,
    Kind,
    describe,
    field_defaults,
    freeze,
    label_spec,
    specs,
    thaw,
)

# --- encoding ----------------------------------------------------------------------------------

_Encoder = Callable[[Any], dict[str, Any]]
_encoders: dict[type, _Encoder] = {}


def encode_job(job: Job) -> dict[str, Any]:
    """The job as Nomad API JSON (a fresh dict of plain JSON types)."""
    return _encoder(Job)(job)


def _encoder(cls: type) -> _Encoder:
    """Compile a straight-line encoder for `cls` from its field table (one line per field)."""
    try:
        return _encoders[cls]
    except KeyError:
        pass
    namespace: dict[str, Any] = {"thaw": thaw, "encode_ports": _encode_ports}
    lines = ["def encode_obj(obj):", "    out = {}"]
    for i, s in enumerate(specs(cls)):
        lines.append(f"    v = obj.{s.name}")
        key = repr(s.api)
        if s.kind is Kind.BLOCKS and s.block is Port:
            lines.append("    if v: encode_ports(v, out)")
        elif s.kind is Kind.BLOCKS:
            namespace[f"sub{i}"] = _encoder(s.block)  # type: ignore[arg-type]
            lines.append(f"    if v: out[{key}] = [sub{i}(x) for x in v]")
        elif s.kind is Kind.BLOCK:
            namespace[f"sub{i}"] = _encoder(s.block)  # type: ignore[arg-type]
            lines.append(f"    if v is not None: out[{key}] = sub{i}(v)")
        elif s.kind is Kind.STRS:
            lines.append(f"    if v: out[{key}] = list(v)")
        elif s.kind is Kind.MAP:
            convert = "thaw(v)" if s.name == "config" else "dict(v)"
            lines.append(f"    if v: out[{key}] = {convert}")
        elif s.kind is Kind.ANY:
            lines.append(f"    if v is not None: out[{key}] = thaw(v)")
        else:
            lines.append(f"    if v is not None: out[{key}] = v")
    if "extra" in attrs.fields_dict(cls):
        lines.append("    if obj.extra: out.update(thaw(obj.extra))")
    lines.append("    return out")
    # Generated from the model's own field table only; named so profiles and tracebacks say which.
    exec(compile("\n".join(lines), f"<nomadmesh encoder {cls.__name__}>", "exec"), namespace)
    encoder: _Encoder = namespace["encode_obj"]
    _encoders[cls] = encoder
    return encoder


def _encode_ports(ports: tuple[Port, ...], out: dict[str, Any]) -> None:
    reserved: list[dict[str, Any]] = []
    dynamic: list[dict[str, Any]] = []
    for p in ports:
        entry: dict[str, Any] = {"Label": p.label}
        if p.static:
            entry["Value"] = p.static
        if p.to is not None:
            entry["To"] = p.to
        if p.host_network:
            entry["HostNetwork"] = p.host_network
        if p.ignore_collision is not None:
            entry["IgnoreCollision"] = p.ignore_collision
        (reserved if p.static else dynamic).append(entry)
    if reserved:
        out["ReservedPorts"] = reserved
    if dynamic:
        out["DynamicPorts"] = dynamic


# --- decoding ----------------------------------------------------------------------------------


def decode_job(data: Mapping[str, Any], *, validate: bool = True) -> Job:
    """A Job from Nomad JSON: a bare job, `{"Job": {...}}`, or what `GET /v1/job/<id>` returns.

    Raises ValidationError with every problem (wrong types, unknown keys, rule violations).
    """
    if isinstance(data, Mapping) and set(data) <= {"Job", "EnforceIndex", "JobModifyIndex",
                                                   "PolicyOverride", "PreserveCounts",
                                                   "Submission", "Diff", "Region", "Namespace",
                                                   "SecretID", "EvalPriority"} and "Job" in data:
        data = data["Job"]
    problems: list[Problem] = []
    if not isinstance(data, Mapping):
        raise ValidationError.single("job", f"expected a JSON object, got {describe(data)}")
    job_id = data.get("ID")
    root = f"job[{job_id}]" if isinstance(job_id, str) and job_id else "job"
    # With validate=True each block's rules run as soon as the block is built (types checked).
    with collector_paused():
        job = _decoder(Job, validate)(data, root, problems)
    if problems:
        raise ValidationError(problems, subject=f"job {job_id!r}" if job_id else "job")
    assert job is not None
    return job  # type: ignore[no-any-return]


_Decoder = Callable[[Any, str, list[Problem]], Any]
_decoders: dict[tuple[type, bool], _Decoder] = {}

_SCALAR, _BLOCK, _BLOCKS, _STRS, _MAP, _CONFIG, _ANY = range(7)
_SCALAR_TYPES: dict[Kind, tuple[type, ...]] = {
    Kind.STR: (str,),
    Kind.INT: (int,),
    Kind.FLOAT: (int, float),
    Kind.BOOL: (bool,),
    Kind.DURATION: (int,),
}


def _zero(value: Any) -> bool:
    """Go zero values: what Nomad reports for a field nobody set."""
    return value is None or value is False or value == "" or value == 0 or value == [] or value == {}


def _decoder(cls: type, rules: bool) -> _Decoder:
    """The decoder for `cls`: a generated fast path for well-formed input, which hands any
    object it does not like to the thorough path that reports every problem with its path.
    With `rules`, each object's validation rules run right after it is built."""
    try:
        return _decoders[cls, rules]
    except KeyError:
        pass
    fast = _fast_decoder(cls, _thorough_decoder(cls), rules)
    _decoders[cls, rules] = fast
    return fast


_thorough: dict[type, _Decoder] = {}


def _fast_decoder(cls: type, thorough: _Decoder, rules: bool) -> _Decoder:
    """Generate straight-line code: one `data.get` and one exact type test per field."""
    model_keys = {s.api for s in specs(cls) if s.api != "*ports"}
    rest_keys = PASSTHROUGH.get(cls, frozenset()) | SERVER.get(cls, frozenset())
    if cls is Network:
        rest_keys = rest_keys | {"ReservedPorts", "DynamicPorts"}
    ns: dict[str, Any] = {
        "thorough": thorough, "cls": cls, "MODEL": frozenset(model_keys),
        "KNOWN": frozenset(model_keys | rest_keys), "FrozenDict": FrozenDict, "freeze": freeze,
        "rest": _rest_fields, "ports": _decode_ports, "new": object.__new__,
        "DEFAULTS": field_defaults(cls),
    }
    lab = label_spec(cls)
    lines = [
        "def decode_fast(data, path, problems):",
        "    if type(data) is not dict: return thorough(data, path, problems)",
        "    keys = data.keys()",
        "    kw = {}",
        "    bad = False",
        "    if not keys <= MODEL:",
        "        if not keys <= KNOWN: return thorough(data, path, problems)",
        "        n = len(problems)",
        "        rest(cls, data, keys - MODEL, kw, path, problems)",
        "        bad = len(problems) > n",
    ]
    if lab is not None:
        lines.append(f"    if data.get({lab.api!r}) is None: return thorough(data, path, problems)")
    slow = "return thorough(data, path, problems)"
    for i, sp in enumerate(specs(cls)):
        if sp.api == "*ports":
            continue
        key, name = repr(sp.api), repr(sp.name)
        lines.append(f"    v = data.get({key})")
        lines.append("    if v is not None:")
        if sp.kind is Kind.BLOCKS or sp.kind is Kind.BLOCK:
            ns[f"sub{i}"] = _decoder(sp.block, rules)  # type: ignore[arg-type]
            where = f"path + {'.' + sp.hcl!r}"
            if sp.kind is Kind.BLOCK:
                lines.append(f"        o = sub{i}(v, {where}, problems)")
                lines.append("        if o is None: bad = True")
                lines.append(f"        else: kw[{name}] = o")
                continue
            sub_lab = label_spec(sp.block)  # type: ignore[arg-type]
            lines.append(f"        if type(v) is not list: {slow}")
            lines.append("        items = []")
            lines.append("        for n, x in enumerate(v):")
            if sub_lab is not None:
                lines.append(f"            t = x.get({sub_lab.api!r}) or n if type(x) is dict else n")
            else:
                lines.append("            t = n")
            lines.append(f"            o = sub{i}(x, f'{{path}}.{sp.hcl}[{{t}}]', problems)")
            lines.append("            if o is None: bad = True")
            lines.append("            else: items.append(o)")
            lines.append(f"        kw[{name}] = tuple(items)")
        elif sp.kind is Kind.STRS:
            lines.append(f"        if type(v) is not list: {slow}")
            lines.append("        for x in v:")
            lines.append(f"            if type(x) is not str: {slow}")
            lines.append(f"        kw[{name}] = tuple(v)")
        elif sp.kind is Kind.MAP and sp.name != "config":
            lines.append(f"        if type(v) is not dict: {slow}")
            lines.append("        for x in v.values():")
            lines.append(f"            if type(x) is not str: {slow}")
            lines.append(f"        kw[{name}] = FrozenDict(v)")
        elif sp.kind is Kind.MAP:
            lines.append(f"        if type(v) is not dict: {slow}")
            lines.append(f"        kw[{name}] = freeze(v)")
        elif sp.kind is Kind.ANY:
            lines.append(f"        kw[{name}] = freeze(v)")
        else:
            types = _SCALAR_TYPES[sp.kind]
            test = (f"type(v) is not {types[0].__name__}" if len(types) == 1
                    else f"type(v) not in ({', '.join(t.__name__ for t in types)})")
            lines.append(f"        if {test}: {slow}")
            lines.append(f"        kw[{name}] = v")
    # A child that failed has reported why; a parent of a failed child is not built.
    lines.append("    if bad: return None")
    # Every value is already checked and in its final immutable form, so the object is built
    # directly rather than through __init__'s converters (see nomadmesh.model._base).
    lines.append("    obj = new(cls)")
    lines.append("    d = obj.__dict__")
    lines.append("    d.update(DEFAULTS)")
    lines.append("    d.update(kw)")
    if rules and hasattr(cls, "problems"):
        lines.append("    problems.extend(obj.problems(path))")
    lines.append("    return obj")
    # Generated from the model's own field table only; named so profiles and tracebacks say which.
    exec(compile("\n".join(lines), f"<nomadmesh decoder {cls.__name__}>", "exec"), ns)
    decoder: _Decoder = ns["decode_fast"]
    return decoder


def _rest_fields(cls: type, data: dict[str, Any], keys: Any, kw: dict[str, Any], path: str,
                 problems: list[Problem]) -> None:
    """Fill `extra`, `server` and ports from the keys outside the model's own fields."""
    passthrough = PASSTHROUGH.get(cls, frozenset())
    extra: dict[str, Any] = {}
    kept: dict[str, Any] = {}
    for key in keys:
        value = data[key]
        if key in passthrough:
            if not _zero(value):
                extra[key] = freeze(value)
        elif key in ("ReservedPorts", "DynamicPorts"):
            if value is not None:
                kw["ports"] = kw.get("ports", ()) + _decode_ports(value, key, path, problems)
        else:
            kept[key] = value
    if "ports" in kw:
        # Reserved ports first, as the model keeps them (Network's converter does the same).
        ports = kw["ports"]
        kw["ports"] = tuple(p for p in ports if p.static) + tuple(p for p in ports if not p.static)
    if extra:
        kw["extra"] = extra
    if kept:
        kw["server"] = kept


def _thorough_decoder(cls: type) -> _Decoder:
    """Compile the thorough decoder for `cls`: checks every key and reports every problem.

    It only sees objects the fast path rejected, so it reports structure and types; the rules
    need well-formed blocks and run on the fast path.
    """
    try:
        return _thorough[cls]
    except KeyError:
        pass
    # A placeholder lets nested compilation refer to this class before it is finished.
    _thorough[cls] = lambda d, p, pr: decode_obj(d, p, pr)
    table: dict[str, tuple[str, str, int, Any, Any, str | None, str]] = {}
    for s in specs(cls):
        sub: Any = None
        sub_label: str | None = None
        allowed: Any = ()
        if s.kind is Kind.BLOCKS or s.kind is Kind.BLOCK:
            if s.block is not Port:
                sub = _thorough_decoder(s.block)  # type: ignore[arg-type]
                lab_spec = label_spec(s.block)  # type: ignore[arg-type]
                sub_label = lab_spec.api if lab_spec is not None else None
            code = _BLOCKS if s.kind is Kind.BLOCKS else _BLOCK
        elif s.kind is Kind.STRS:
            code = _STRS
        elif s.kind is Kind.MAP:
            code = _CONFIG if s.name == "config" else _MAP
        elif s.kind is Kind.ANY:
            code = _ANY
        else:
            code = _SCALAR
            allowed = _SCALAR_TYPES[s.kind]
        what = "integer nanoseconds" if s.kind is Kind.DURATION else s.kind.article
        table[s.api] = (s.name, s.hcl, code, allowed, sub, sub_label, what)
    lab = label_spec(cls)
    passthrough = PASSTHROUGH.get(cls, frozenset())
    server = SERVER.get(cls, frozenset())
    known = sorted(set(table) | passthrough | server)
    is_network = cls is Network

    def decode_obj(data: Any, path: str, problems: list[Problem]) -> Any:
        if type(data) is not dict and not isinstance(data, Mapping):
            problems.append(Problem(path, f"expected a JSON object, got {describe(data)}"))
            return None
        kwargs: dict[str, Any] = {}
        extra: dict[str, Any] | None = None
        kept: dict[str, Any] | None = None
        before = len(problems)
        for key, value in data.items():
            entry = table.get(key)
            if entry is None:
                if key in passthrough:
                    if not _zero(value):
                        if extra is None:
                            extra = {}
                        extra[key] = freeze(value)
                elif key in server:
                    if kept is None:
                        kept = {}
                    kept[key] = value
                elif is_network and key in ("ReservedPorts", "DynamicPorts"):
                    if value is not None:
                        ports = _decode_ports(value, key, path, problems)
                        kwargs["ports"] = kwargs.get("ports", ()) + ports
                else:
                    hint = difflib.get_close_matches(str(key), known, n=1)
                    more = f"; did you mean {hint[0]!r}?" if hint else ""
                    problems.append(Problem(
                        f"{path}.{key}", f"unknown field {key!r} (Nomad would silently drop it){more}"))
                continue
            if value is None:
                continue
            name, hcl, code, allowed, sub, sub_label, what = entry
            if code is _SCALAR:
                if type(value) in allowed:
                    kwargs[name] = value
                elif allowed == (int,) and type(value) is float and value.is_integer():
                    kwargs[name] = int(value)
                else:
                    problems.append(Problem(f"{path}.{hcl}", f"expected {what}, got {describe(value)}"))
            elif code is _BLOCKS:
                if type(value) is not list:
                    problems.append(Problem(f"{path}.{hcl}", f"expected a list, got {describe(value)}"))
                    continue
                items = []
                for i, item in enumerate(value):
                    tag: Any = i
                    if sub_label is not None and type(item) is dict:
                        tag = item.get(sub_label) or i
                    decoded = sub(item, f"{path}.{hcl}[{tag}]", problems)
                    if decoded is not None:
                        items.append(decoded)
                kwargs[name] = tuple(items)
            elif code is _BLOCK:
                decoded = sub(value, f"{path}.{hcl}", problems)
                if decoded is not None:
                    kwargs[name] = decoded
            elif code is _STRS:
                if type(value) is list and all(type(v) is str for v in value):
                    kwargs[name] = tuple(value)
                else:
                    problems.append(Problem(f"{path}.{hcl}",
                                            f"expected a list of strings, got {describe(value)}"))
            elif code is _MAP:
                if type(value) is not dict and not isinstance(value, Mapping):
                    problems.append(Problem(f"{path}.{hcl}", f"expected an object, got {describe(value)}"))
                    continue
                for k, v in value.items():
                    if type(v) is not str:
                        problems.append(Problem(f"{path}.{hcl}.{k}", f"expected a string, got {describe(v)}"))
                kwargs[name] = FrozenDict(value)
            elif code is _CONFIG:
                if type(value) is not dict and not isinstance(value, Mapping):
                    problems.append(Problem(f"{path}.{hcl}", f"expected an object, got {describe(value)}"))
                    continue
                kwargs[name] = freeze(value)
            else:
                kwargs[name] = freeze(value)
        if lab is not None and lab.name not in kwargs:
            problems.append(Problem(path, f"missing {lab.api!r}"))
            return None
        if len(problems) > before:
            return None
        if extra:
            kwargs["extra"] = extra
        if kept:
            kwargs["server"] = kept
        return cls(**kwargs)

    _thorough[cls] = decode_obj
    return decode_obj


_PORT_KEYS = {"Label": "label", "Value": "static", "To": "to", "HostNetwork": "host_network",
              "IgnoreCollision": "ignore_collision"}


def _decode_ports(value: Any, key: str, path: str, problems: list[Problem]) -> tuple[Port, ...]:
    if type(value) is not list:
        problems.append(Problem(f"{path}.{key}", f"expected a list, got {describe(value)}"))
        return ()
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, Mapping):
            problems.append(Problem(f"{path}.port[{i}]", f"expected an object, got {describe(item)}"))
            continue
        tag = item.get("Label") or i
        where = f"{path}.port[{tag}]"
        kwargs: dict[str, Any] = {}
        ok = True
        for k, v in item.items():
            name = _PORT_KEYS.get(k)
            if name is None:
                problems.append(Problem(f"{where}.{k}", f"unknown field {k!r}"))
                ok = False
                continue
            if v is None:
                continue
            expected: type = str if name in ("label", "host_network") else (
                bool if name == "ignore_collision" else int)
            if type(v) is not expected:
                problems.append(Problem(f"{where}.{name}",
                                        f"expected a {expected.__name__}, got {describe(v)}"))
                ok = False
                continue
            kwargs[name] = v
        if "label" not in kwargs:
            problems.append(Problem(where, "a port needs a Label"))
            ok = False
        if key == "DynamicPorts":
            # Nomad assigns Value for dynamic ports itself; a value here is the server's pick.
            kwargs.pop("static", None)
        elif key == "ReservedPorts" and not kwargs.get("static"):
            problems.append(Problem(f"{where}.static", "a reserved port needs a Value"))
            ok = False
        if ok:
            out.append(Port(**kwargs))
    return tuple(out)
