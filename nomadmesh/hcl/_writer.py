"""API JSON job -> HCL2 text that jobspec2 reads back to the same job, laid out as `nomad fmt` does.

The walk is the decoder's in reverse, from the same schema: hcl names and labels for JSON keys,
Go durations for nanoseconds, `identity` for the default identity (parse_job.go moved it), plain
objects inside `config` kept from being read as one-item lists (hclutil's attrExpr), and strings
escaped so that only what the job holds comes back (`$${` for a literal `${` that Nomad would
evaluate; runtime references like `${NOMAD_ALLOC_DIR}` stay as they are, since jobspec2 keeps them).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from nomadmesh.nomad_schema import GoField, schema

_IDENT = re.compile(r"[^\W\d][\w-]*\Z")
_RUNTIME = re.compile(r"\$\{([^\W\d][\w-]*(?:\.[^\W\d][\w-]*|\[\"[^\"\\$%{}]*\"\]|\[[0-9]+\])*)\}")
_INTERP = re.compile(r"\$\{|%\{")
# Fields a server or Nomad's parser sets itself: never written (api/jobs.go, parse_job.go).
_UNWRITTEN = {
    "Job": {
        "ParentID",
        "Dispatched",
        "DispatchIdempotencyToken",
        "Payload",
        "NomadTokenID",
        "Status",
        "StatusDescription",
        "Stable",
        "Version",
        "SubmitTime",
        "CreateIndex",
        "ModifyIndex",
        "JobModifyIndex",
        "VersionTag",
    },
    "ScalingPolicy": {"ID", "Namespace", "Target", "CreateIndex", "ModifyIndex"},
    "PeriodicConfig": {"SpecType"},
}


class WriteError(ValueError):
    """A job value Nomad's HCL has no way to write."""


def write_job(job: Mapping[str, Any]) -> str:
    """HCL2 for an API JSON job (bare, or the value of a register body's "Job")."""
    from nomadmesh.hcl._format import format_text

    job_id = job.get("ID") or job.get("Name")
    if not isinstance(job_id, str) or not job_id:
        raise WriteError("job: an ID is required to write a jobspec")
    out = _Out()
    out.open(f"job {quote(job_id)}")
    body = {k: v for k, v in job.items() if k != "ID"}
    if body.get("Name") == job_id:
        del body["Name"]
    _struct(out, "Job", body, "job")
    out.close()
    return format_text(out.text(), "job.nomad.hcl")


class _Out:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.depth = 0
        self.blank = False

    def line(self, text: str) -> None:
        self.lines.append("  " * self.depth + text)

    def open(self, header: str) -> None:
        if self.lines and not self.lines[-1].endswith("{"):
            self.lines.append("")
        self.line(header + " {")
        self.depth += 1

    def close(self) -> None:
        self.depth -= 1
        self.line("}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _fields(struct: str) -> list[GoField]:
    return list(schema().struct(struct))


def _empty(value: Any) -> bool:
    return value is None or value == [] or value == {}


def _struct(out: _Out, struct: str, value: Mapping[str, Any], path: str) -> None:
    fields = {f.json: f for f in _fields(struct)}
    unwritten = _UNWRITTEN.get(struct, set())
    for key in value:
        if key not in fields and not (struct == "Task" and key == "Identity"):
            raise WriteError(f"{path}: {key!r} is not a field of Nomad's {struct}")
    attrs: list[tuple[GoField, Any]] = []
    blocks: list[tuple[GoField, Any]] = []
    for f in _fields(struct):
        v = value.get(f.json)
        # An empty struct block is meaningful (`sidecar_service {}`: a sidecar with defaults).
        struct_block = f.hcl_kind == "block" and f.kind in ("ptr", "struct") and isinstance(v, Mapping)
        if f.json in unwritten or f.hcl_kind == "label" or (_empty(v) and not struct_block):
            continue
        if f.skip or not f.hcl:
            if f.json == "Identity" and struct == "Task":
                continue
            raise WriteError(f"{path}.{f.json}: Nomad's HCL has no way to write this field")
        if f.hcl_kind == "block":
            blocks.append((f, v))
        else:
            attrs.append((f, v))
    for f, v in attrs:
        out.line(f"{f.hcl} = {_attr_value(f, v, path)}")
    if struct == "Task" and not _empty(value.get("Identity")):
        out.open("identity")
        _struct(out, "WorkloadIdentity", value["Identity"], f"{path}.Identity")
        out.close()
    for f, v in blocks:
        if (
            struct in ("Job", "TaskGroup", "Task")
            and f.hcl in ("meta", "env")
            and not all(_IDENT.match(k) for k in v)
        ):
            out.line(f"{f.hcl} = {_attr_value(f, v, path)}")  # decodeAsAttribute reads this form
            continue
        _block(out, f, v, f"{path}.{f.json}")


def _labels(struct: str, value: Mapping[str, Any]) -> str:
    parts = []
    for f in _fields(struct):
        if f.hcl_kind == "label":
            label = value.get(f.json)
            if not isinstance(label, str):
                raise WriteError(f"{struct}: the label {f.json} is required")
            parts.append(quote(label))
    return " ".join(parts)


def _header(name: str, labels: str) -> str:
    return f"{name} {labels}" if labels else name


def _block(out: _Out, f: GoField, value: Any, path: str) -> None:
    go_type = f.go_type
    if go_type == "map[string]interface {}":
        out.open(f.hcl)
        for key, item in value.items():
            out.line(f"{_key(key, path)} = {_free(item, top=True)}")
        out.close()
        return
    if go_type.startswith("map[string]") and not f.elem:
        out.open(f.hcl)
        for key, item in value.items():
            out.line(f"{_key(key, path, block_body=True)} = {_plain(item)}")
        out.close()
        return
    if go_type.startswith("map[string]"):
        label_field = next(x for x in _fields(f.elem) if x.hcl_kind == "label")
        for key, item in value.items():
            out.open(_header(f.hcl, quote(key)))
            _struct(out, f.elem, {k: v for k, v in item.items() if k != label_field.json}, f"{path}[{key}]")
            out.close()
        return
    items = value if isinstance(value, list) else [value]
    for i, item in enumerate(items):
        name = f.hcl
        if f.elem == "Port" and f.json == "ReservedPorts" and item.get("Value", 0) > 0:
            name = "port"
        if f.elem == "ScalingPolicy" and f.json == "ScalingPolicies":
            label = {"vertical_cpu": "cpu", "vertical_mem": "mem"}.get(item.get("Type", ""))
            if label is None:
                raise WriteError(f"{path}[{i}]: a task scaling policy is vertical_cpu or vertical_mem")
            out.open(f'scaling "{label}"')
        elif f.elem in ("Constraint", "Affinity"):
            out.open(name)
            _placement(out, item)
            out.close()
            continue
        else:
            out.open(_header(name, _labels(f.elem, item)))
        _struct(out, f.elem, item, f"{path}[{i}]")
        out.close()


def _placement(out: _Out, item: Mapping[str, Any]) -> None:
    """constraint/affinity in the plain attribute/operator/value form decodeConstraint reads."""
    if item.get("LTarget"):
        out.line(f"attribute = {quote(item['LTarget'])}")
    operand = item.get("Operand") or "="
    if operand != "=":
        out.line(f"operator = {quote(operand)}")
    if item.get("RTarget"):
        out.line(f"value = {quote(item['RTarget'])}")
    if item.get("Weight") is not None:
        out.line(f"weight = {int(item['Weight'])}")


def _attr_value(f: GoField, v: Any, path: str) -> str:
    if f.is_duration:
        if isinstance(v, list):
            return "[" + ", ".join(quote(go_duration(int(x))) for x in v) + "]"
        return quote(go_duration(int(v)))
    if f.go_type.lstrip("*").startswith("map[string]"):
        return "{" + ", ".join(f"{_key(k, path)} = {_plain(x)}" for k, x in v.items()) + "}"
    return _plain(v)


def _key(key: str, path: str, *, block_body: bool = False) -> str:
    if _IDENT.match(key):
        return key
    if block_body:
        raise WriteError(
            f"{path}: the key {key!r} is not an HCL name, and Nomad reads this block only with names as keys"
        )
    return quote(key)


def _plain(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise WriteError(f"{v} is not a number HCL can hold")
        return repr(v)
    if isinstance(v, str):
        return quote(v)
    if isinstance(v, Mapping):
        return (
            "{"
            + ", ".join(
                f"{quote(str(k)) if not _IDENT.match(str(k)) else k} = {_plain(x)}" for k, x in v.items()
            )
            + "}"
        )
    return "[" + ", ".join(_plain(x) for x in v) + "]"


def _free(v: Any, *, top: bool = False) -> str:
    """A value inside a map[string]interface{} block: an object at the top in parentheses, so
    hclutil does not read it as a one-item list."""
    if isinstance(v, Mapping):
        text = (
            "{"
            + ", ".join(
                f"{quote(str(k)) if not _IDENT.match(str(k)) else k} = {_free(x)}" for k, x in v.items()
            )
            + "}"
        )
        return f"({text})" if top else text
    if isinstance(v, list):
        return "[" + ", ".join(_free(x) for x in v) + "]"
    return _plain(v)


def quote(text: str) -> str:
    """A quoted HCL string whose value is exactly `text`."""
    body = json.dumps(text, ensure_ascii=False)[1:-1]
    if "${" not in body and "%{" not in body:
        return '"' + body + '"'
    out = []
    pos = 0
    for m in _INTERP.finditer(body):
        if m.start() < pos:
            continue
        out.append(body[pos : m.start()])
        runtime = _RUNTIME.match(body, m.start()) if m.group() == "${" else None
        if (
            runtime is not None
            and runtime.group(1).split(".")[0].split("[")[0] not in ("var", "local")
            and body[runtime.end() : runtime.end() + 1] not in ("}", " ")
        ):
            out.append(runtime.group())
            pos = runtime.end()
        else:
            out.append(m.group()[0] + m.group())
            pos = m.end()
    out.append(body[pos:])
    return '"' + "".join(out) + '"'


def hcl_value(value: Any) -> str:
    """A Python value as an HCL expression (for -var values of complex types)."""
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{quote(str(k))} = {hcl_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(hcl_value(v) for v in value) + "]"
    return _plain(value)


_UNITS = ((3_600_000_000_000, "h"), (60_000_000_000, "m"))


def go_duration(ns: int) -> str:
    """Go's time.Duration.String()."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    n = abs(ns)
    if n < 1_000_000_000:
        for unit, name in ((1_000_000, "ms"), (1_000, "\u00b5s"), (1, "ns")):
            if n >= unit:
                return sign + _frac(n, unit) + name
    hours, rest = divmod(n, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    seconds = _frac(rest, 1_000_000_000) + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}"
    if minutes:
        return f"{sign}{minutes}m{seconds}"
    return sign + seconds


def _frac(n: int, unit: int) -> str:
    whole, rest = divmod(n, unit)
    if not rest:
        return str(whole)
    digits = len(str(unit)) - 1
    return f"{whole}." + str(rest).rjust(digits, "0").rstrip("0")
