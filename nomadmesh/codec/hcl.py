"""HCL2 job files, both ways: python-hcl2 parses, the field tables map names, a small writer emits.

Decoding is one pass over python-hcl2's output with a compiled plan per model class (HCL name ->
field), evaluating input variables, locals and string templates on the way (`_hcl_eval`), and
collecting every problem with its path before raising one ValidationError. Runtime interpolations
(`${NOMAD_*}`, `${attr.*}`, `${meta.*}`, ...) stay literal; expressions nomadmesh cannot evaluate
raise UnsupportedExpression. Passthrough blocks (`extra`) and `connect` are kept in Nomad JSON form
and converted between snake_case blocks and CamelCase keys with a small table of exceptions.

`format_hcl` reformats only files without `variable`/`variables`/`locals` blocks: formatting goes
through the model, which holds evaluated values, so a file with variables would lose them.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from typing import Any

import hcl2
from hcl2.utils import SerializationOptions, process_escape_sequences

from nomadmesh.codec._hcl_eval import (
    EvalProblem,
    Scope,
    Unsupported,
    convert,
    evaluate,
    format_number,
    is_identifier,
    parse_type,
    parse_value_text,
    runtime_reference,
    type_name,
    unsupported_error,
)
from nomadmesh.errors import InputError, ParseError, Problem, ValidationError
from nomadmesh.model import Affinity, Constraint, Job
from nomadmesh.model._base import (
    DurationError,
    FieldSpec,
    Kind,
    describe,
    format_duration,
    freeze,
    label_spec,
    parse_duration,
    specs,
)

_OPTIONS = SerializationOptions(with_comments=False)
_WITH_COMMENTS = SerializationOptions(with_comments=True)

# Where a comment was, as the path of blocks around it: (("job", "web"), ("group", "api"),
# ("service", 0)) — labelled blocks by label, unlabelled ones by their index among siblings.
_BlockPath = tuple[tuple[str, "str | int"], ...]


# --- public API --------------------------------------------------------------------------------


def decode_job(text: str, *, variables: Mapping[str, Any] | None = None,
               source: str | None = None, validate: bool = True) -> Job:
    """A Job from an HCL2 jobspec; raises ParseError, UnsupportedExpression or ValidationError."""
    tree = _parse(text, source)
    problems: list[Problem] = []
    try:
        scope = _scope(tree, variables or {}, problems)
        if problems:  # references to a broken variable would only repeat these problems
            raise ValidationError(problems, subject=source or "variables")
        job = _decode_tree(tree, scope, problems)
    except _Located as exc:
        raise unsupported_error(exc.inner, source, text, exc.path) from None
    if problems:
        raise ValidationError(problems, subject=_subject(job, source))
    assert job is not None
    if validate:
        from nomadmesh.model.validation import problems as rule_problems

        found = list(rule_problems(job, job.path))
        if found:
            raise ValidationError(found, subject=_subject(job, source))
    return job


def encode_job(job: Job, *, comments: Mapping[_BlockPath, list[str]] | None = None) -> str:
    """The job as an HCL2 jobspec that python-hcl2 and Nomad parse back to the same job.

    `comments` (from the file being formatted) are written at the top of the block they were in.
    """
    w = _Writer(comments or {})
    w.open("job", [job.id])
    _write_object(w, job)
    w.close()
    return w.text()


def decode_variables(text: str, *, source: str | None = None) -> dict[str, Any]:
    """Variable values from a var file (`name = value` lines), as `variables=` takes them."""
    tree = _parse(text, source)
    values: dict[str, Any] = {}
    problems: list[Problem] = []
    empty = Scope({}, {})
    for name, raw in tree.items():
        if name.startswith("__"):
            continue
        if _blocks(raw) is not None:
            problems.append(Problem(name, "a variable file holds only `name = value` lines"))
            continue
        try:
            value = _value(raw, name, problems, empty)
        except _Located as exc:
            raise unsupported_error(exc.inner, source, text, exc.path) from None
        if value is not _NOTHING:
            values[name] = value
    if problems:
        raise ValidationError(problems, subject=source or "variable file")
    return values


def format_hcl(text: str, source: str | None = None) -> str:
    """Rewrite an HCL2 jobspec canonically (files with variables or locals are refused)."""
    tree = _parse(text, source)
    used = sorted(k for k in ("variable", "variables", "locals") if k in tree)
    if used:
        raise InputError(f"{source or '<input>'}: cannot reformat a file with {' / '.join(used)} "
                         "blocks: formatting goes through evaluated values and would drop them")
    job = decode_job(text, source=source, validate=False)
    return encode_job(job, comments=_comments(hcl2.loads(text, serialization_options=_WITH_COMMENTS)))


def _comments(tree: Any, path: _BlockPath = ()) -> dict[_BlockPath, list[str]]:
    """Every comment in a parsed file, keyed by the path of the block that holds it.

    python-hcl2 keeps comments per block but not their line, so `fmt` moves each comment to the
    top of its block: the text is kept, its exact position is not.
    """
    found: dict[_BlockPath, list[str]] = {}
    if not isinstance(tree, dict):
        return found
    texts = [str(c.get("value", "")).strip() for c in tree.get("__comments__", ())
             if isinstance(c, dict)]
    if texts:
        found[path] = texts
    for key, value in tree.items():
        if key.startswith("__") or not isinstance(value, list):
            continue
        index = 0
        for item in value:
            if not isinstance(item, dict):
                continue
            if item.get("__is_block__"):
                found.update(_comments(item, (*path, (key, index))))
                index += 1
            elif len(item) == 1:
                [(label, body)] = item.items()
                if isinstance(body, dict) and body.get("__is_block__"):
                    found.update(_comments(body, (*path, (key, _label(label)))))
    return found


# --- parsing and the top level -----------------------------------------------------------------


class _Located(Exception):
    def __init__(self, inner: Unsupported, path: str) -> None:
        super().__init__(inner.expression)
        self.inner = inner
        self.path = path


def _parse(text: str, source: str | None) -> dict[str, Any]:
    if not isinstance(text, str):
        raise ParseError(f"expected HCL text, got {describe(text)}", source=source)
    try:
        tree = hcl2.loads(text, serialization_options=_OPTIONS)
    except Exception as exc:  # python-hcl2 raises lark errors, RuntimeError, ValueError, ...
        line = getattr(exc, "line", None)
        column = getattr(exc, "column", None)
        message = _syntax_message(exc)
        if isinstance(exc, RecursionError):
            message = "the file is nested too deeply to parse"
        raise ParseError(f"invalid HCL: {message}",
                         source=source,
                         line=line if isinstance(line, int) and line > 0 else None,
                         column=column if isinstance(column, int) and column > 0 else None,
                         ) from None
    if not isinstance(tree, dict):
        raise ParseError("invalid HCL: the file is not a body of blocks", source=source)
    return tree


def _syntax_message(exc: Exception) -> str:
    """A one-line description of a python-hcl2/lark syntax error (position is reported apart)."""
    token = getattr(exc, "token", None)
    expected = sorted(getattr(exc, "expected", None) or getattr(exc, "allowed", None) or ())
    if token is not None:
        text = str(token).strip().split("\n", 1)[0]
        what = f"unexpected {text[:20]!r}" if text else "unexpected end of input or line"
    elif getattr(exc, "char", None) is not None:
        what = f"unexpected character {exc.char!r}"  # type: ignore[attr-defined]
    else:
        return str(exc).split("\n", 1)[0] or type(exc).__name__
    if expected:
        what += " (expected " + ", ".join(expected[:6]) + (", ..." if len(expected) > 6 else "") + ")"
    return what


def _subject(job: Job | None, source: str | None) -> str:
    if job is not None:
        return f"job {job.id!r}"
    return source or "job"


_TOP = ("job", "variable", "variables", "locals")


def _decode_tree(tree: dict[str, Any], scope: Scope, problems: list[Problem]) -> Job | None:
    for key in tree:
        if key not in _TOP and not key.startswith("__"):
            problems.append(_unknown(key, key, _TOP))
    blocks = _blocks(tree.get("job"))
    if not blocks:
        problems.append(Problem("job", "the file needs a job \"<id>\" { ... } block"))
        return None
    if len(blocks) > 1:
        problems.append(Problem("job", "only one job block is allowed per file"))
        return None
    labels, body = blocks[0]
    if len(labels) != 1:
        problems.append(Problem("job", "a job block needs exactly one label: job \"<id>\" { }"))
        return None
    job_id = labels[0]
    return _decoder(Job)(body, job_id, f"job[{job_id}]", problems, scope)  # type: ignore[no-any-return]


def _scope(tree: dict[str, Any], supplied: Mapping[str, Any], problems: list[Problem]) -> Scope:
    declared: dict[str, tuple[Any, Any]] = {}  # name -> (type or None, default raw or missing)
    for labels, body in _blocks(tree.get("variable")) or ():
        if len(labels) != 1:
            problems.append(Problem("variable", "a variable block needs one label: variable \"x\""))
            continue
        name = labels[0]
        where = f"variable[{name}]"
        if name in declared:
            problems.append(Problem(where, f"variable {name!r} is declared twice"))
        vtype = None
        for key, raw in body.items():
            if key == "type":
                try:
                    vtype = parse_type(raw)
                except EvalProblem as exc:
                    problems.append(Problem(f"{where}.type", str(exc)))
            elif key == "validation":
                raise _Located(Unsupported("validation { condition = ... }", "variable validation"),
                               where)
            elif key not in ("default", "description", "sensitive", "__is_block__", "nullable"):
                problems.append(_unknown(f"{where}.{key}", key,
                                         ("type", "default", "description", "sensitive")))
        declared[name] = (vtype, body.get("default", _MISSING))
    for _, body in _blocks(tree.get("variables")) or ():
        for name, raw in body.items():
            if not name.startswith("__"):
                declared[name] = (None, raw)
    locals_raw: dict[str, Any] = {}
    for _, body in _blocks(tree.get("locals")) or ():
        for name, raw in body.items():
            if name.startswith("__"):
                continue
            if name in locals_raw:
                problems.append(Problem(f"local.{name}", f"local {name!r} is defined twice"))
            locals_raw[name] = raw
    values: dict[str, Any] = {}
    empty = Scope({}, {})
    for name in supplied:
        if name not in declared:
            hint = difflib.get_close_matches(name, list(declared), n=1)
            more = f"; did you mean {hint[0]!r}?" if hint else ""
            problems.append(Problem(f"var.{name}",
                                    f"variable {name!r} is given a value but not declared{more}"))
    for name, (vtype, default_raw) in declared.items():
        where = f"var.{name}"
        try:
            if name in supplied:
                value = supplied[name]
            elif default_raw is not _MISSING:
                value = _evaluate(default_raw, empty, where)
            else:
                problems.append(Problem(where, f"variable {name!r} has no value: give it one "
                                        "(--var / variables=) or a default"))
                continue
            if vtype is not None and value is not None:
                value = convert(value, vtype, where, parse_value_text)
        except EvalProblem as exc:
            problems.append(Problem(where, f"{exc} (declared type {type_name(vtype)})"
                                    if vtype is not None else str(exc)))
            continue
        values[name] = value
    return Scope(values, locals_raw)


_MISSING = object()


def _evaluate(raw: Any, scope: Scope, path: str) -> Any:
    try:
        return evaluate(raw, scope)
    except Unsupported as exc:
        raise _Located(exc, path) from None


def _blocks(raw: Any) -> list[tuple[list[str], dict[str, Any]]] | None:
    """python-hcl2 blocks as (labels, body) pairs; None when `raw` is not a list of blocks."""
    if type(raw) is not list or not raw:
        return None
    out = []
    for item in raw:
        if type(item) is not dict:
            return None
        labels: list[str] = []
        while "__is_block__" not in item:
            if len(item) != 1:
                return None
            (key, inner), = item.items()
            if type(inner) is not dict:
                return None
            labels.append(_label(key))
            item = inner
        out.append((labels, item))
    return out


def _label(key: str) -> str:
    """A block label as written (`"web"`): quotes removed, backslash escapes resolved."""
    if not key.startswith('"'):
        return key
    text = key[1:-1]
    return process_escape_sequences(text) if "\\" in text else text


def _unknown(path: str, key: str, known: Any) -> Problem:
    hint = difflib.get_close_matches(key, list(known), n=1)
    more = f"; did you mean {hint[0]!r}?" if hint else ""
    return Problem(path, f"unknown field {key!r}{more}")


# --- decoding model objects --------------------------------------------------------------------

_Decoder = Callable[[dict[str, Any], "str | None", str, list[Problem], Scope], Any]
_decoders: dict[type, _Decoder] = {}
_NOTHING = object()

# Constraint shorthands (jobspec2 decodeConstraint): attribute name -> operator; later ones win.
_CONSTRAINT_SHORTHANDS = ("version", "semver", "regexp", "set_contains")
_AFFINITY_SHORTHANDS = ("version", "semver", "regexp", "set_contains_any", "set_contains_all",
                        "set_contains")
# ANY fields whose content is Nomad JSON with CamelCase keys (the rest keep their keys as written).
_CAMEL_FIELDS: frozenset[str] = frozenset()
# Every Nomad field is typed in the model now; nothing is passed through (kept while this codec
# is replaced by nomadmesh.hcl).
PASSTHROUGH: dict[type, frozenset[str]] = {}
PASSTHROUGH_HCL: dict[str, str] = {}


def _decoder(cls: type) -> _Decoder:
    try:
        return _decoders[cls]
    except KeyError:
        pass
    table: dict[str, FieldSpec] = {s.hcl: s for s in specs(cls) if not s.label and s.hcl}
    lab = label_spec(cls)
    passthrough = {PASSTHROUGH_HCL.get(k) or _snake(k): k for k in PASSTHROUGH.get(cls, ())}
    allowed_extra = PASSTHROUGH.get(cls, frozenset())
    shorthands = (_CONSTRAINT_SHORTHANDS if cls is Constraint
                  else _AFFINITY_SHORTHANDS if cls is Affinity else ())
    known = sorted(set(table) | set(passthrough) | set(shorthands)
                   | ({"distinct_hosts", "distinct_property"} if cls is Constraint else set()))
    _decoders[cls] = lambda b, lb, p, pr, sc: decode_obj(b, lb, p, pr, sc)
    subs = {s.hcl: _decoder(s.block) for s in table.values() if s.block is not None}

    def decode_obj(body: dict[str, Any], label: str | None, path: str, problems: list[Problem],
                   scope: Scope) -> Any:
        kwargs: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        before = len(problems)
        if lab is not None:
            kwargs[lab.name] = label
        for key, raw in body.items():
            if key[0] == "_" and key.startswith("__"):
                continue
            where = f"{path}.{key}"
            spec = table.get(key)
            if spec is None:
                if key == "dynamic":
                    found = _blocks(raw)
                    label = found[0][0][0] if found and found[0][0] else ""
                    raise _Located(Unsupported(f'dynamic "{label}"', "dynamic block"), where)
                if key in passthrough:
                    _decode_extra(key, raw, where, problems, scope, extra, allowed_extra)
                elif key in shorthands or (cls is Constraint and key in ("distinct_hosts",
                                                                         "distinct_property")):
                    _decode_shorthand(key, raw, where, problems, scope, kwargs)
                else:
                    problems.append(_unknown(where, key, known))
                continue
            kind = spec.kind
            if kind is Kind.BLOCKS or kind is Kind.BLOCK or kind is Kind.BLOCK_MAP:
                blocks = _blocks(raw)
                if blocks is None:
                    problems.append(Problem(where, f"{key} is a block: write {key} "
                                            + ('"<label>" ' if label_spec(spec.block) else "")  # type: ignore[arg-type]
                                            + "{ ... }, not an assignment"))
                    continue
                sub = subs[key]
                sub_label = label_spec(spec.block)  # type: ignore[arg-type]
                if kind is Kind.BLOCK and len(blocks) > 1:
                    problems.append(Problem(where, f"only one {key} block is allowed here"))
                    continue
                items = []
                for i, (labels, inner) in enumerate(blocks):
                    if sub_label is not None and len(labels) != 1:
                        problems.append(Problem(f"{where}[{i}]", f'a {key} block needs one label: '
                                                f'{key} "<{sub_label.name}>" {{ ... }}'))
                        continue
                    if sub_label is None and labels:
                        problems.append(Problem(f"{where}[{labels[0]}]",
                                                f"a {key} block takes no label"))
                        continue
                    tag = labels[0] if labels else i
                    item_path = where if kind is Kind.BLOCK else f"{where}[{tag}]"
                    decoded = sub(inner, labels[0] if labels else None, item_path, problems, scope)
                    if decoded is not None:
                        items.append(decoded)
                if kind is Kind.BLOCK:
                    if items:
                        kwargs[spec.name] = items[0]
                elif kind is Kind.BLOCK_MAP:
                    kwargs[spec.name] = {x.name: x for x in items}
                else:
                    kwargs[spec.name] = tuple(items)
                continue
            if kind is Kind.MAP or kind is Kind.ANY or kind is Kind.MAP_STRS:
                value = _decode_map(key, raw, where, problems, scope, spec)
            else:
                value = _decode_scalar(raw, where, problems, scope, kind)
            if value is not _NOTHING:
                kwargs[spec.name] = value
        if len(problems) > before:
            return None
        if extra:
            kwargs["extra"] = extra
        return cls(**kwargs)

    _decoders[cls] = decode_obj
    return decode_obj


def _value(raw: Any, where: str, problems: list[Problem], scope: Scope) -> Any:
    try:
        return evaluate(raw, scope)
    except Unsupported as exc:
        raise _Located(exc, where) from None
    except EvalProblem as exc:
        problems.append(Problem(where, str(exc)))
        return _NOTHING


def _decode_scalar(raw: Any, where: str, problems: list[Problem], scope: Scope,
                   kind: Kind) -> Any:
    if type(raw) is list and raw and type(raw[0]) is dict and _blocks(raw) is not None:
        problems.append(Problem(where, f"expected {kind.article}, got a block"))
        return _NOTHING
    value = _value(raw, where, problems, scope)
    if value is _NOTHING or value is None:
        return _NOTHING
    vt = type(value)
    if kind is Kind.STR:
        if vt is str:
            return value
        if vt in (int, float, bool):  # HCL converts numbers and bools to strings
            return ("true" if value else "false") if vt is bool else format_number(value)
    elif kind is Kind.INT:
        if vt is int:
            return value
        if vt is float and value.is_integer():
            return int(value)
        if vt is str and value.strip().lstrip("-").isdigit():
            return int(value)
    elif kind is Kind.BOOL:
        if vt is bool:
            return value
        if value in ("true", "false"):
            return value == "true"
    elif kind is Kind.DURATION:
        if vt is str:
            try:
                return parse_duration(value)
            except DurationError as exc:
                problems.append(Problem(where, str(exc)))
                return _NOTHING
        problems.append(Problem(where, f"expected a duration string like \"10s\", got "
                                f"{describe(value)}"))
        return _NOTHING
    elif kind is Kind.INTS and vt is list and all(type(v) is int for v in value):
        return tuple(value)
    elif kind is Kind.STRS and vt is list:
        out = []
        for i, v in enumerate(value):
            if type(v) is str:
                out.append(v)
            elif type(v) in (int, float, bool):
                out.append(("true" if v else "false") if type(v) is bool
                           else format_number(v))
            else:
                problems.append(Problem(f"{where}[{i}]",
                                        f"expected a string, got {describe(v)}"))
                return _NOTHING
        return tuple(out)
    problems.append(Problem(where, f"expected {kind.article}, got {describe(value)}"))
    return _NOTHING


def _decode_map(key: str, raw: Any, where: str, problems: list[Problem], scope: Scope,
                spec: FieldSpec) -> Any:
    """meta/env/config/...: `key { a = "b" }` (block) or `key = { "a.b" = "c" }` (attribute)."""
    blocks = _blocks(raw)
    camel = spec.name in _CAMEL_FIELDS
    if blocks is not None:
        if len(blocks) > 1:
            problems.append(Problem(where, f"only one {key} block is allowed here"))
            return _NOTHING
        labels, body = blocks[0]
        if labels:
            problems.append(Problem(where, f"a {key} block takes no label"))
            return _NOTHING
        if camel:
            value = _camel_body(body, where, problems, scope)
        elif spec.kind is Kind.MAP and spec.name != "config":
            value = {}
            for k, v in body.items():
                if not k.startswith("__"):
                    item = _decode_scalar(v, f"{where}.{k}", problems, scope, Kind.STR)
                    if item is not _NOTHING:
                        value[k] = item
        else:
            value = _free_body(body, where, problems, scope)
    else:
        value = _value(raw, where, problems, scope)
        if value is _NOTHING or value is None:
            return _NOTHING
        if not isinstance(value, dict):
            problems.append(Problem(where, f"expected a {key} block or map, got {describe(value)}"))
            return _NOTHING
        if spec.kind is Kind.MAP and spec.name != "config":
            for k, v in value.items():
                if type(v) in (int, float, bool):
                    value[k] = ("true" if v else "false") if type(v) is bool else format_number(v)
                elif not isinstance(v, str):
                    problems.append(Problem(f"{where}.{k}", f"expected a string, got {describe(v)}"))
    return freeze(value)


def _free_body(body: dict[str, Any], where: str, problems: list[Problem],
               scope: Scope) -> dict[str, Any]:
    """A free-form map (task config): nested blocks become lists of maps, keys are kept."""
    out: dict[str, Any] = {}
    for k, raw in body.items():
        if k.startswith("__"):
            continue
        blocks = _blocks(raw)
        if blocks is None:
            value = _value(raw, f"{where}.{k}", problems, scope)
            if value is not _NOTHING:
                out[k] = value
            continue
        items = []
        for i, (labels, inner) in enumerate(blocks):
            if labels:
                problems.append(Problem(f"{where}.{k}[{i}]",
                                        f"labelled {k} blocks are not supported inside a map"))
                continue
            items.append(_free_body(inner, f"{where}.{k}[{i}]", problems, scope))
        out[k] = items
    return out


def _decode_shorthand(key: str, raw: Any, where: str, problems: list[Problem], scope: Scope,
                      kwargs: dict[str, Any]) -> None:
    """`distinct_hosts = true`, `regexp = "..."` and friends, as jobspec2 decodes them."""
    if key == "distinct_hosts":
        value = _decode_scalar(raw, where, problems, scope, Kind.BOOL)
        if value is True:
            kwargs["operator"] = "distinct_hosts"
        return
    value = _decode_scalar(raw, where, problems, scope, Kind.STR)
    if value is _NOTHING or value == "":
        return
    if key == "distinct_property":
        kwargs["operator"] = "distinct_property"
        kwargs["attribute"] = value
    else:
        kwargs["operator"] = key
        kwargs["value"] = value


# --- passthrough blocks and connect: snake_case HCL <-> CamelCase Nomad JSON --------------------

# HCL attribute / block names whose JSON key is not the plain CamelCase of the name.
_ATTR_API = {
    "cpu": "CPU", "memory": "MemoryMB", "memory_max": "MemoryMaxMB", "disk": "DiskMB",
    "max_file_size": "MaxFileSizeMB", "uid": "UID", "exclude_outbound_cidrs": "ExcludeOutboundCIDRs",
    "exclude_uids": "ExcludeUIDs", "no_dns": "NoDNS",
    "disable_default_tcp_check": "DisableDefaultTCPCheck",
    "envoy_dns_discovery_type": "EnvoyDNSDiscoveryType", "ca_file": "CAFile", "sni": "SNI",
    "ttl": "TTL", "fs_type": "FSType", "id": "ID", "tls_min_version": "TLSMinVersion",
    "tls_max_version": "TLSMaxVersion", "ip": "IP", "cidr": "CIDR", "mbits": "MBits",
    "url": "URL", "iops": "IOPS",
}
_BLOCK_API = {
    "path": "Paths", "listener": "Listeners", "service": "Services",
    "volume_mount": "VolumeMounts", "logs": "LogConfig", "tls": "TLS", "sds": "SDS",
    "link": "Links", "network": "Networks", "region": "Regions", "dns": "DNS", "ui": "UI",
    "csi_plugin": "CSIPluginConfig", "numa": "NUMA", "cni": "CNI",
}
# Labelled blocks: JSON list entries named by the label, or a JSON map keyed by it.
_LABELLED_LIST = {"identity": "Identities", "device": "Devices", "action": "Actions",
                  "region": "Regions"}
_LABELLED_MAP = frozenset({"EnvoyGatewayBindAddresses"})
_LIST_BLOCKS = frozenset({"Upstreams", "Paths", "Listeners", "Services", "VolumeMounts", "Links",
                          "Devices", "Networks", "Identities", "Actions", "Regions"})
_FREE_MAPS = frozenset({"Config", "Meta", "Env"})
_DURATIONS = frozenset({"KillTimeout", "ShutdownDelay", "ConnectTimeout", "LostAfter",
                        "StopOnClientAfter", "TTL"})
_API_HCL = {**{v: k for k, v in _ATTR_API.items()}, **{v: k for k, v in _BLOCK_API.items()},
            **{v: k for k, v in _LABELLED_LIST.items()}}
_CAMEL_SPLIT = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def _snake(name: str) -> str:
    return _API_HCL.get(name) or _CAMEL_SPLIT.sub("_", name).lower()


def _decode_extra(key: str, raw: Any, where: str, problems: list[Problem], scope: Scope,
                  extra: dict[str, Any], allowed: frozenset[str]) -> None:
    converted = _camel_body({key: raw}, where.rsplit(".", 1)[0], problems, scope)
    for api, value in converted.items():
        if api not in allowed:
            problems.append(Problem(where, f"{key} cannot be used here"))
        elif not (value is None or value is False or value == "" or value == 0 or value == []
                  or value == {}):
            extra[api] = freeze(value)


def _camel_body(body: dict[str, Any], where: str, problems: list[Problem],
                scope: Scope) -> dict[str, Any]:
    """A snake_case HCL body as Nomad JSON (CamelCase keys, durations in nanoseconds)."""
    out: dict[str, Any] = {}
    for key, raw in body.items():
        if key.startswith("__"):
            continue
        path = f"{where}.{key}"
        blocks = _blocks(raw)
        if blocks is None:
            api = _ATTR_API.get(key) or _camel(key)
            value = _value(raw, path, problems, scope)
            if value is _NOTHING:
                continue
            if api in _DURATIONS and isinstance(value, str):
                try:
                    value = parse_duration(value)
                except DurationError as exc:
                    problems.append(Problem(path, str(exc)))
                    continue
            out[api] = value
            continue
        if key in _LABELLED_LIST and any(labels for labels, _ in blocks):
            out[_LABELLED_LIST[key]] = [{"Name": labels[0],
                                         **_camel_body(inner, f"{path}[{labels[0]}]", problems,
                                                       scope)}
                                        for labels, inner in blocks if labels]
            blocks = [(labels, inner) for labels, inner in blocks if not labels]
            if not blocks:
                continue
        api = _BLOCK_API.get(key) or _camel(key)
        if api in _LABELLED_MAP:
            out[api] = {labels[0] if labels else "": _camel_body(inner, f"{path}[{i}]", problems,
                                                                 scope)
                        for i, (labels, inner) in enumerate(blocks)}
        elif api in _FREE_MAPS:
            out[api] = _free_body(blocks[0][1], path, problems, scope)
        elif api in _LIST_BLOCKS or len(blocks) > 1:
            out[api] = [_camel_body(inner, f"{path}[{i}]", problems, scope)
                        for i, (_, inner) in enumerate(blocks)]
        else:
            out[api] = _camel_body(blocks[0][1], path, problems, scope)
    return out


# --- encoding ----------------------------------------------------------------------------------


class _Writer:
    """Deterministic `nomad fmt`-style HCL: attributes first with aligned `=`, then each block
    after a blank line; task and group blocks last, as jobspecs are usually read."""

    _LAST = frozenset({"task", "group"})

    def __init__(self, comments: Mapping[_BlockPath, list[str]]) -> None:
        self._comments = comments
        root = _Body((), comments.get((), []))
        self._bodies: list[_Body] = [root]

    def attr(self, name: str, expr: str) -> None:
        key = name if is_identifier(name) else _quote(name)
        self._bodies[-1].attributes.append((key, expr))

    def open(self, name: str, labels: list[str] | tuple[str, ...] = ()) -> None:
        parent = self._bodies[-1]
        if labels:
            step: tuple[str, str | int] = (name, labels[0])
        else:
            step = (name, parent.unlabelled.get(name, 0))
            parent.unlabelled[name] = int(step[1]) + 1
        path = (*parent.path, step)
        head = " ".join([name, *(_quote_label(lb) for lb in labels)])
        self._bodies.append(_Body(path, self._comments.get(path, []), head))

    def close(self) -> None:
        body = self._bodies.pop()
        inner = body.render()
        lines = ([f"{body.head} {{", *(f"  {line}" if line else "" for line in inner), "}"]
                 if inner else [f"{body.head} {{}}"])
        parent = self._bodies[-1]
        (parent.last if body.head.split(" ", 1)[0] in self._LAST else parent.blocks).append(lines)

    def text(self) -> str:
        return "\n".join(self._bodies[0].render()) + "\n"


class _Body:
    """One block's contents while it is written: comments, attributes, then nested blocks."""

    def __init__(self, path: _BlockPath, comments: list[str], head: str = "") -> None:
        self.path = path
        self.head = head
        self.comments = comments
        self.attributes: list[tuple[str, str]] = []
        self.blocks: list[list[str]] = []
        self.last: list[list[str]] = []
        self.unlabelled: dict[str, int] = {}

    def render(self) -> list[str]:
        out = [f"# {line.strip()}".rstrip() for text in self.comments
               for line in text.splitlines()]
        width = max((len(k) for k, _ in self.attributes), default=0)
        out += [f"{key.ljust(width)} = {expr}" for key, expr in self.attributes]
        for block in (*self.blocks, *self.last):
            if out:
                out.append("")
            out.extend(block)
        return out


def _write_object(w: _Writer, obj: Any) -> None:
    for s in specs(type(obj)):
        if s.label or not s.hcl:
            continue
        value = getattr(obj, s.name)
        if value is None:
            continue
        kind = s.kind
        if kind is Kind.BLOCK:
            w.open(s.hcl)
            _write_object(w, value)
            w.close()
        elif kind is Kind.BLOCK_MAP:
            for key, item in value.items():
                w.open(s.hcl, [key])
                _write_object(w, item)
                w.close()
        elif kind is Kind.BLOCKS:
            sub_label = label_spec(s.block)  # type: ignore[arg-type]
            for item in value:
                w.open(s.hcl, [getattr(item, sub_label.name)] if sub_label else [])
                _write_object(w, item)
                w.close()
        elif kind is Kind.MAP:
            if value and s.name == "config":
                _write_free(w, s.hcl, value)
            elif value:
                _write_string_map(w, s.hcl, value)
        elif kind is Kind.ANY or kind is Kind.MAP_STRS:
            if not value:
                continue
            if s.name in _CAMEL_FIELDS and isinstance(value, Mapping):
                w.open(s.hcl)
                _write_camel_entries(w, value)
                w.close()
            else:
                _write_free(w, s.hcl, value)
        elif kind is Kind.DURATION and type(value) is int:
            w.attr(s.hcl, _quote(format_duration(value)))
        elif kind is Kind.STRS or kind is Kind.INTS:
            if value:
                w.attr(s.hcl, _expr(value))
        elif kind is Kind.STR and isinstance(value, str):
            w.attr(s.hcl, _string(value))
        else:
            w.attr(s.hcl, _expr(value))
    extra = getattr(obj, "extra", None)
    if extra:
        _write_camel_entries(w, dict(sorted(extra.items())))  # sorted: the same text every time


def _write_string_map(w: _Writer, name: str, value: Mapping[str, Any]) -> None:
    """meta/env: the block form when every key is an identifier, the map attribute otherwise."""
    if all(is_identifier(k) for k in value):
        w.open(name)
        for k, v in value.items():
            w.attr(k, _string(v) if isinstance(v, str) else _expr(v))
        w.close()
    else:
        w.attr(name, _expr(value))


def _write_free(w: _Writer, name: str, value: Any) -> None:
    """A free-form map (config): a block whose lists of maps are written as repeated blocks."""
    if isinstance(value, Mapping) and all(is_identifier(k) for k in value):
        w.open(name)
        for k, v in value.items():
            if _block_list(v):
                for item in v:
                    _write_free(w, k, item)
            else:
                w.attr(k, _string(v) if isinstance(v, str) else _expr(v))
        w.close()
    else:
        w.attr(name, _expr(value))


def _block_list(value: Any) -> bool:
    return (isinstance(value, tuple) and bool(value)
            and all(isinstance(v, Mapping) and all(is_identifier(k) for k in v) for v in value))


def _write_camel_entries(w: _Writer, data: Mapping[str, Any]) -> None:
    """Nomad JSON (CamelCase) written back as snake_case HCL attributes and blocks."""
    for api, value in data.items():
        if value is None:
            continue
        name = _snake(api)
        if api in _FREE_MAPS and isinstance(value, Mapping):
            _write_free(w, name, value)
        elif api in _DURATIONS and type(value) is int:
            w.attr(name, _quote(format_duration(value)))
        elif api in _LABELLED_MAP and isinstance(value, Mapping):
            for label, body in value.items():
                w.open(name, [label])
                _write_camel_entries(w, body)
                w.close()
        elif (api in _LIST_BLOCKS or api in _LABELLED_LIST.values()) and isinstance(value, tuple) \
                and value and all(isinstance(v, Mapping) for v in value):
            labelled = name in _LABELLED_LIST and _LABELLED_LIST[name] == api
            for item in value:
                if labelled:
                    w.open(name, [item.get("Name", "")])
                    _write_camel_entries(w, {k: v for k, v in item.items() if k != "Name"})
                else:
                    w.open(name)
                    _write_camel_entries(w, item)
                w.close()
        elif isinstance(value, Mapping):
            w.open(name)
            _write_camel_entries(w, value)
            w.close()
        else:
            w.attr(name, _expr(value))


def _expr(value: Any) -> str:
    """Any JSON-like value as a one-line HCL expression."""
    if isinstance(value, str):
        return _quote(value)
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        items = ", ".join(f"{k if is_identifier(k) else _quote(k)} = {_expr(v)}"
                          for k, v in value.items())
        return "{ " + items + " }"
    return "[" + ", ".join(_expr(v) for v in value) + "]"


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u2028\u2029]")
_TEMPLATE_START = re.compile(r"[$%]\{")
_RUNTIME_AT = re.compile(r"\$\{([A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*|\.\d+|\[\d+\])*)\}")


def _escape_templates(text: str) -> str:
    """Escape `${`/`%{` as `$${`/`%%{`, keeping runtime interpolations like `${NOMAD_X}` live."""
    out: list[str] = []
    pos = 0
    for m in _TEMPLATE_START.finditer(text):
        i = m.start()
        if text[i] == "$":
            rt = _RUNTIME_AT.match(text, i)
            if rt is not None and runtime_reference(rt.group(1)) and (i == 0 or text[i - 1] != "$"):
                continue
        before = text[pos:i]
        # A `$`/`%` right before an escape would merge with it; spell it as a unicode escape.
        if before.endswith(text[i]):
            before = before[:-1] + ("\\u0024" if text[i] == "$" else "\\u0025")
        out.append(before)
        # python-hcl2 lexes `$${`/`%%{` only up to a closing `}`; without one, escape the brace.
        out.append(text[i] * 2 + "{" if "}" in text[i + 2:] else text[i] + "\\u007b")
        pos = i + 2
    out.append(text[pos:])
    return "".join(out)


def _quote_label(text: str) -> str:
    """A block label: a plain string literal (labels are not templates)."""
    s = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    if _CONTROL.search(s):
        s = _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", s)
    return f'"{s}"'


def _quote(text: str) -> str:
    """A quoted HCL string literal whose value is exactly `text`."""
    s = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    if _CONTROL.search(s):
        s = _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", s)
    if "{" in s:
        s = _escape_templates(s)
    return f'"{s}"'


def _string(text: str) -> str:
    """A string attribute value: a heredoc for multi-line text when that is exact, else quoted."""
    if "\n" in text and text.endswith("\n") and len(text) > 1 and not _CONTROL.search(text) \
            and ("{" not in text or _escape_templates(text) == text):
        lines = text[:-1].split("\n")
        marker = "EOT"
        while any(line.strip() == marker for line in lines):
            marker += "X"
        return f"<<{marker}\n{text}{marker}"
    return _quote(text)
