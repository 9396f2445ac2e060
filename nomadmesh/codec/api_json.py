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

from nomadmesh.codec._tables import PASSTHROUGH, SERVER
from nomadmesh.errors import Problem, ValidationError
from nomadmesh.model import Job, Network, Port
from nomadmesh.model._base import FrozenDict, Kind, describe, freeze, label_spec, specs, thaw

# --- encoding ----------------------------------------------------------------------------------

_Encoder = Callable[[Any], dict[str, Any]]
_encoders: dict[type, _Encoder] = {}


def encode_job(job: Job) -> dict[str, Any]:
    """The job as Nomad API JSON (a fresh dict of plain JSON types)."""
    return _encoder(Job)(job)


def encode(obj: Any) -> dict[str, Any]:
    """Any model object as Nomad API JSON."""
    return _encoder(type(obj))(obj)


def _encoder(cls: type) -> _Encoder:
    try:
        return _encoders[cls]
    except KeyError:
        pass
    plan: list[tuple[str, str, Kind, _Encoder | None]] = []
    for s in specs(cls):
        sub = _encoder(s.block) if s.block is not None and s.block is not Port else None
        plan.append((s.name, s.api, s.kind, sub))
    has_extra = "extra" in attrs.fields_dict(cls)

    def encode_obj(obj: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, api, kind, sub in plan:
            value = getattr(obj, name)
            if value is None:
                continue
            if kind is Kind.BLOCKS:
                if not value:
                    continue
                if api == "*ports":
                    _encode_ports(value, out)
                    continue
                out[api] = [sub(v) for v in value]  # type: ignore[misc]
            elif kind is Kind.BLOCK:
                out[api] = sub(value)  # type: ignore[misc]
            elif kind is Kind.STRS:
                if value:
                    out[api] = list(value)
            elif kind is Kind.MAP:
                if value:
                    out[api] = thaw(value) if name == "config" else dict(value)
            elif kind is Kind.ANY:
                out[api] = thaw(value)
            else:
                out[api] = value
        if has_extra and obj.extra:
            out.update(thaw(obj.extra))
        return out

    _encoders[cls] = encode_obj
    return encode_obj


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
    job = _decoder(Job)(data, root, problems)
    if job is not None and validate and not problems:
        from nomadmesh.model.validation import problems as rule_problems

        problems.extend(rule_problems(job, root))
    if problems:
        raise ValidationError(problems, subject=f"job {job_id!r}" if job_id else "job")
    assert job is not None
    return job  # type: ignore[no-any-return]


def decode(cls: type, data: Any, path: str = "") -> Any:
    """Any model object from its Nomad JSON form (no rule validation; type and key checks only)."""
    problems: list[Problem] = []
    obj = _decoder(cls)(data, path, problems)
    if problems:
        raise ValidationError(problems, subject=cls.__name__)
    return obj


_Decoder = Callable[[Any, str, list[Problem]], Any]
_decoders: dict[type, _Decoder] = {}

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


def _decoder(cls: type) -> _Decoder:
    try:
        return _decoders[cls]
    except KeyError:
        pass
    table: dict[str, tuple[str, str, Kind, Any]] = {}
    for s in specs(cls):
        table[s.api] = (s.name, s.hcl, s.kind, s.block)
    lab = label_spec(cls)
    label_api = lab.api if lab is not None else None
    passthrough = PASSTHROUGH.get(cls, frozenset())
    server = SERVER.get(cls, frozenset())
    known = sorted(set(table) | passthrough | server)
    is_network = cls is Network
    _decoders[cls] = lambda d, p, pr: decode_obj(d, p, pr)  # allow recursion while compiling
    subs = {api: _decoder(block) for api, (_, _, kind, block) in table.items()
            if block is not None and block is not Port}

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
                    problems.append(Problem(f"{path}.{key}",
                                            f"unknown field {key!r} (Nomad would silently drop it){more}"))
                continue
            if value is None:
                continue
            name, hcl, kind, block = entry
            if kind is Kind.BLOCKS:
                where = f"{path}.{hcl}"
                if type(value) is not list:
                    problems.append(Problem(where, f"expected a list, got {describe(value)}"))
                    continue
                sub = subs[key]
                sub_label = label_spec(block)
                items = []
                for i, item in enumerate(value):
                    tag: Any = i
                    if sub_label is not None and isinstance(item, Mapping):
                        lv = item.get(sub_label.api)
                        if isinstance(lv, str) and lv:
                            tag = lv
                    decoded = sub(item, f"{where}[{tag}]", problems)
                    if decoded is not None:
                        items.append(decoded)
                kwargs[name] = tuple(items)
            elif kind is Kind.BLOCK:
                decoded = subs[key](value, f"{path}.{hcl}", problems)
                if decoded is not None:
                    kwargs[name] = decoded
            elif kind is Kind.STRS:
                if type(value) is not list or not all(type(v) is str for v in value):
                    problems.append(Problem(f"{path}.{hcl}",
                                            f"expected a list of strings, got {describe(value)}"))
                else:
                    kwargs[name] = tuple(value)
            elif kind is Kind.MAP:
                if not isinstance(value, Mapping):
                    problems.append(Problem(f"{path}.{hcl}",
                                            f"expected an object, got {describe(value)}"))
                elif name == "config":
                    kwargs[name] = freeze(value)
                else:
                    for k, v in value.items():
                        if type(v) is not str:
                            problems.append(Problem(f"{path}.{hcl}.{k}",
                                                    f"expected a string, got {describe(v)}"))
                    kwargs[name] = FrozenDict(value)
            elif kind is Kind.ANY:
                kwargs[name] = freeze(value)
            else:
                vt = type(value)
                if vt not in _SCALAR_TYPES[kind] or (vt is bool and kind is not Kind.BOOL):
                    if kind is Kind.FLOAT and vt is int:
                        kwargs[name] = value
                        continue
                    if kind is Kind.INT and vt is float and value.is_integer():
                        kwargs[name] = int(value)
                        continue
                    what = "integer nanoseconds" if kind is Kind.DURATION else kind.article
                    problems.append(Problem(f"{path}.{hcl}",
                                            f"expected {what}, got {describe(value)}"))
                    continue
                kwargs[name] = value
        if lab is not None and lab.name not in kwargs:
            if label_api is not None and cls is not Job:
                problems.append(Problem(path, f"missing {label_api!r}"))
                return None
            if cls is Job:
                problems.append(Problem(path, "missing 'ID'"))
                return None
        if len(problems) > before:
            return None
        if extra:
            kwargs["extra"] = extra
        if kept:
            kwargs["server"] = kept
        return cls(**kwargs)

    _decoders[cls] = decode_obj
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
