"""jobspec2's decoding: an evaluated HCL body -> Nomad API JSON, as `nomad job run -output` prints it.

The struct walk is gohcl's (Nomad's fork, hcl v2.20.2-nomad-1 gohcl/decode.go), driven by the
committed api schema (`nomadmesh.nomad_schema`: hcl tags, Go types, JSON keys). Nomad's own rules
come from jobspec2 at aa026cc: parse.go, types.config.go, types.variables.go, hcl_conversions.go,
parse_map.go and parse_job.go (`normalizeJob`). The result holds only the fields Nomad's decoder
sets (a nil pointer or empty field is left out), with Nomad's JSON keys.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from fractions import Fraction
from functools import cache
from typing import Any

from nomadmesh.hcl import _syntax as syn
from nomadmesh.hcl._body import Attr, BlockRef, Schema, View
from nomadmesh.hcl._diag import Diagnostic, HclDiagnostics, JobConversionDiagnostic, Source, go_quote
from nomadmesh.hcl._eval import Ctx, Function, evaluate, start_range
from nomadmesh.hcl._values import (
    BOOL,
    DYNAMIC,
    NUMBER,
    STRING,
    ConversionError,
    ListVal,
    Null,
    SetVal,
    Type,
    Unknown,
    convert,
    is_number,
    list_of,
    map_of,
    to_json_number,
    type_of,
)
from nomadmesh.nomad_schema import GoField, schema

# --- the api structs as gohcl sees them --------------------------------------------------------


class StructSpec:
    """One api struct's hcl schema: attributes, blocks, labels, with their Go fields."""

    __slots__ = ("attrs", "blocks", "labels", "name", "schema")

    def __init__(self, name: str, fields: tuple[GoField, ...]) -> None:
        self.name = name
        self.attrs: dict[str, GoField] = {}
        self.blocks: dict[str, GoField] = {}
        self.labels: list[GoField] = []
        for f in fields:
            if not f.hcl and f.hcl_kind != "label":
                continue
            if f.hcl_kind == "label":
                self.labels.append(f)
            elif f.hcl_kind == "block":
                self.blocks[f.hcl] = f
            elif f.hcl_kind in ("", "optional"):
                self.attrs[f.hcl] = f
        attr_schema = {
            name: (f.hcl_kind == "" and not f.go_type.startswith("*"))
            for name, f in sorted(self.attrs.items())
        }
        block_schema = {name: block_labels(f) for name, f in sorted(self.blocks.items())}
        self.schema: Schema = (attr_schema, block_schema)


def block_labels(field: GoField) -> tuple[str, ...]:
    if not field.elem:
        return ()
    return tuple(f.hcl for f in spec(field.elem).labels)


@cache
def spec(name: str) -> StructSpec:
    return StructSpec(name, schema().struct(name))


# --- values into Go types (gocty) ----------------------------------------------------------------

_INT_RANGES = {
    "int": (-(1 << 63), (1 << 63) - 1),
    "int64": (-(1 << 63), (1 << 63) - 1),
    "int8": (-128, 127),
    "int32": (-(1 << 31), (1 << 31) - 1),
    "int16": (-(1 << 15), (1 << 15) - 1),
    "uint8": (0, 255),
    "uint16": (0, 65535),
    "uint32": (0, (1 << 32) - 1),
    "uint64": (0, (1 << 64) - 1),
}


def implied_type(go_type: str) -> Type:
    """gocty.ImpliedType of a scalar, slice or map Go type."""
    base = go_type.lstrip("*")
    if base.startswith("[]"):
        return list_of(implied_type(base[2:]))
    if base.startswith("map[string]"):
        return map_of(implied_type(base[len("map[string]") :]))
    if base in ("string", "api.CSIPluginType"):
        return STRING
    if base == "bool":
        return BOOL
    if base in _INT_RANGES or base in ("float64", "time.Duration"):
        return NUMBER
    return DYNAMIC


class _GoError(Exception):
    """gocty.FromCtyValue's error text."""


def to_go(value: Any, go_type: str) -> Any:
    """A converted cty value as the JSON of the Go value gocty would make (None for nil)."""
    pointer = go_type.startswith("*")
    base = go_type.lstrip("*")
    if type(value) is Unknown:
        raise _GoError("value must be known")
    if value is None or type(value) is Null:
        if pointer or base.startswith("[]") or base.startswith("map["):
            return None
        raise _GoError("null value is not allowed")
    if base.startswith("[]"):
        inner = base[2:]
        return [to_go(x, inner) for x in value]
    if base.startswith("map[string]"):
        inner = base[len("map[string]") :]
        return {k: to_go(x, inner) for k, x in value.items()}
    if base in _INT_RANGES:
        lo, hi = _INT_RANGES[base]
        if type(value) is not int or not lo <= value <= hi:
            if base.startswith("u"):
                raise _GoError(f"value must be a whole number, between 0 and {hi} inclusive")
            raise _GoError(f"value must be a whole number, between {lo} and {hi}")
        return value
    return value


def decode_expression(attr: Attr, field: GoField) -> Any:
    """gohcl DecodeExpression into the field's Go type (with jobspec2's duration decoder)."""
    expr = attr.expr
    value = attr.value()
    ctx = attr.ctx
    if field.is_duration:
        return decode_duration(value, expr, ctx)
    want = implied_type(field.go_type)
    try:
        converted = convert(value, want)
    except ConversionError as exc:
        raise ctx.fail("Unsuitable value type", f"Unsuitable value: {exc}", *start_range(expr)) from None
    try:
        return to_go(converted, field.go_type)
    except _GoError as exc:
        raise ctx.fail("Unsuitable value type", f"Unsuitable value: {exc}", *start_range(expr)) from None


def decode_duration(value: Any, expr: syn.Expr, ctx: Ctx) -> int:
    """jobspec2 decodeDuration (hcl_conversions.go:41): Go duration strings or nanoseconds."""
    if value is None or type(value) is Null:
        raise ctx.fail("Unsuitable value", "Unsuitable duration value: nil", *start_range(expr))
    if type(value) is str:
        try:
            value = parse_go_duration(value)
        except ValueError as exc:
            raise ctx.fail(
                "Unsuitable value type", f"Unsuitable duration value: {exc}", *start_range(expr)
            ) from None
    if not is_number(value):
        raise ctx.fail(
            "Unsuitable value type",
            f"Unsuitable value: expected a string but found {_go_type_name(type_of(value))}",
            *start_range(expr),
        )
    if type(value) is not int or not -(1 << 63) <= value < (1 << 63):
        raise ctx.fail(
            "Unsuitable value type",
            "Unsuitable value: value must be a whole number, between "
            "-9223372036854775808 and 9223372036854775807",
            *start_range(expr),
        )
    return value


def _go_type_name(t: Type) -> str:
    """A cty.Type printed with Go's %s: the struct of its type implementation, as the oracle
    prints it (primitive kinds are bytes: 'S' 83, 'N' 78, 'B' 66)."""
    kind = t.kind
    if kind in _PRIMITIVE_KINDS:
        return f"{{{{{{}} %!s(cty.primitiveTypeKind={_PRIMITIVE_KINDS[kind]})}}}}"
    if kind in ("list", "set", "map"):
        assert t.elem is not None
        return f"{{{{{{}} {_go_type_name(t.elem)}}}}}"
    if kind == "tuple":
        return "{{{} [" + " ".join(_go_type_name(e) for e in t.elems) + "]}}"
    if kind == "object":
        attrs = " ".join(f"{k}:{_go_type_name(v)}" for k, v in sorted(t.attrs.items()))
        optional = " ".join(f"{k}:{{}}" for k in sorted(t.optional))
        return f"{{{{{{}} map[{attrs}] map[{optional}]}}}}"
    return "{{{}}}"  # cty.DynamicPseudoType (an unknown's type here)


_PRIMITIVE_KINDS = {"string": 83, "number": 78, "bool": 66}


_DURATION_UNITS = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,
    "\u03bcs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_DURATION_PART = re.compile(r"([0-9]*)(\.[0-9]*)?([^0-9.]*)")


def parse_go_duration(text: str) -> int:
    """Go's time.ParseDuration (nanoseconds), with its error messages."""
    orig = text
    quoted = go_quote(orig)
    neg = False
    if text and text[0] in "+-":
        neg = text[0] == "-"
        text = text[1:]
    if text == "0":
        return 0
    if not text:
        raise ValueError(f"time: invalid duration {quoted}")
    total = 0
    while text:
        m = _DURATION_PART.match(text)
        assert m is not None
        whole, frac, unit = m.group(1), m.group(2) or "", m.group(3)
        if not whole and len(frac) <= 1:
            raise ValueError(f"time: invalid duration {quoted}")
        if not unit:
            raise ValueError(f"time: missing unit in duration {quoted}")
        if unit not in _DURATION_UNITS:
            raise ValueError(f"time: unknown unit {go_quote(unit)} in duration {quoted}")
        scale = _DURATION_UNITS[unit]
        v = int(whole) if whole else 0
        if v > (1 << 63) // scale:
            raise ValueError(f"time: invalid duration {quoted}")
        v *= scale
        if len(frac) > 1:
            digits = frac[1:]
            f = 0
            fscale = 1.0
            for ch in digits:
                if f > ((1 << 63) - 1) // 10:
                    break
                f = f * 10 + int(ch)
                fscale *= 10
            v += int(float(f) * (float(scale) / fscale))
        total += v
        if total > (1 << 63) - 1 + (1 if neg else 0):
            raise ValueError(f"time: invalid duration {quoted}")
        text = text[m.end() :]
    return -total if neg else total


def interface_value(value: Any, expr: syn.Expr, ctx: Ctx) -> Any:
    """parse_map.go interfaceFromCtyValue: a cty value as the JSON of Go's interface{} value."""
    t = type(value)
    if value is None or t is str or t is bool:
        return value
    if t is Null:
        return None
    if t is Unknown:
        raise ctx.fail("unsuitable value type", "Unsuitable value: value is not known", *start_range(expr))
    if t is int or t is Fraction or t is float:
        number = to_json_number(value)
        if type(number) is float and not math.isfinite(number):
            # Go keeps the infinity; encoding the job as JSON fails once the whole file is
            # decoded (so an HCL error elsewhere in the file would come first in Nomad)
            detail = f"json: unsupported value: {_go_float(number)}"
            subject = ctx.src.range(*start_range(expr))
            raise HclDiagnostics([JobConversionDiagnostic("Error converting job", detail, subject)])
        return number
    if t is list or t is ListVal or t is SetVal:
        return [interface_value(x, expr, ctx) for x in value]
    return {k: interface_value(x, expr, ctx) for k, x in sorted(value.items())}


def _go_float(x: float) -> str:
    if x != x:
        return "NaN"
    return "+Inf" if x > 0 else "-Inf"


# --- the struct walk ----------------------------------------------------------------------------

BlockDecoder = Callable[[View], dict[str, Any]]


def decode_struct(view: View, name: str) -> dict[str, Any]:
    """gohcl decodeBodyToStruct for one api struct (or jobspec2's registered decoder for it)."""
    custom = _CUSTOM.get(name)
    if custom is not None:
        return custom(view)
    return decode_generic(view, spec(name))


def decode_generic(view: View, s: StructSpec) -> dict[str, Any]:
    attrs, blocks = view.content(s.schema, partial=False)
    out: dict[str, Any] = {}
    for hcl_name, attr in attrs.items():
        field = s.attrs[hcl_name]
        value = decode_expression(attr, field)
        if value is not None:
            out[field.json] = value
    if blocks:
        decode_blocks(blocks, s, out, view)
    return out


def decode_blocks(blocks: list[BlockRef], s: StructSpec, out: dict[str, Any], view: View) -> None:
    by_type: dict[str, list[BlockRef]] = {}
    for b in blocks:
        by_type.setdefault(b.type, []).append(b)
    for btype, group in by_type.items():
        field = s.blocks[btype]
        go_type = field.go_type
        is_slice = go_type.startswith("[]")
        base = go_type[2:] if is_slice else go_type
        base = base.lstrip("*")
        is_map = base.startswith("map[")
        if len(group) > 1 and not is_slice and not (is_map and len(group[0].labels) == 1):
            raise view.fail(
                f"Duplicate {btype} block",
                f"Only one {btype} block is allowed. Another was defined at "
                f"{view.ctx.src.range(*group[0].def_range)}.",
                group[1].def_range,
            )
        if is_slice:
            out[field.json] = [decode_block(b, field.elem) for b in group]
        elif is_map and field.elem and len(group[0].labels) == 1:
            label_field = spec(field.elem).labels[0]
            result: dict[str, Any] = {}
            for b in group:
                value = decode_struct(b.view, field.elem)
                value[label_field.json] = b.labels[0]
                result[b.labels[0]] = value
            out[field.json] = result
        elif is_map:
            out[field.json] = decode_map(group[0].view, base)
        else:
            out[field.json] = decode_block(group[0], field.elem)


def decode_block(block: BlockRef, struct_name: str) -> dict[str, Any]:
    """gohcl decodeBlockToValue: the body, then the labels into the label fields."""
    value = decode_struct(block.view, struct_name)
    if block.labels:
        for label_field, label in zip(spec(struct_name).labels, block.labels, strict=False):
            value[label_field.json] = label
    return value


def decode_map(view: View, go_type: str) -> dict[str, Any]:
    """gohcl decodeBodyToMap (map-typed blocks: meta, env, config, ...)."""
    attrs = view.just_attributes()
    elem = go_type[len("map[string]") :]
    out: dict[str, Any] = {}
    if elem == "interface {}":
        for name, attr in attrs.items():
            value = interface_value(attr.value(), attr.expr, attr.ctx)
            if value is not None:  # parse_map.go: SetMapIndex with a nil value deletes the key
                out[name] = value
        return out
    field = GoField(
        name="",
        json="",
        hcl="",
        hcl_kind="",
        go_type=elem,
        kind="scalar",
        elem="",
        omitempty=False,
        skip=False,
    )
    for name, attr in attrs.items():
        out[name] = decode_expression(attr, field)
    return out


def decode_as_attribute(view: View, name: str) -> tuple[dict[str, str] | None, View]:
    """jobspec2 decodeAsAttribute (hcl_conversions.go:389): `meta = {...}` / `env = {...}`."""
    node = view.body.attrs.get(name)
    if node is None or name in view.hidden_attrs:
        return None, view
    remain = view.remain(({name: False}, {}))
    for block in view.body.blocks:
        if block.type == name and name not in view.hidden_blocks:
            raise view.fail(
                f"Duplicate {name} block",
                f"{name} may not be defined more than once. Another definition is defined at "
                f"{view.ctx.src.range(node.s, node.e)}.",
                block.def_range(),
            )
    attr = Attr(node, node.expr, view.ctx)
    field = GoField(
        name="",
        json="",
        hcl="",
        hcl_kind="",
        go_type="map[string]string",
        kind="map",
        elem="",
        omitempty=False,
        skip=False,
    )
    value = decode_expression(attr, field)
    return (value if value is not None else {}), remain


# --- jobspec2's registered decoders ---------------------------------------------------------------

_CONSTRAINT_ATTRS = {
    "attribute": STRING,
    "value": STRING,
    "operator": STRING,
    "distinct_property": STRING,
    "distinct_hosts": BOOL,
    "regexp": STRING,
    "version": STRING,
    "semver": STRING,
    "set_contains": STRING,
    "set_contains_all": STRING,
    "set_contains_any": STRING,
    "is_set": STRING,
    "is_not_set": STRING,
}
_AFFINITY_ATTRS = {
    "attribute": STRING,
    "value": STRING,
    "operator": STRING,
    "weight": NUMBER,
    "version": STRING,
    "semver": STRING,
    "regexp": STRING,
    "set_contains": STRING,
    "set_contains_all": STRING,
    "set_contains_any": STRING,
}


def _hcldec_object(view: View, attrs: dict[str, Type]) -> dict[str, Any]:
    found, _ = view.content(({n: False for n in sorted(attrs)}, {}), partial=False)
    out: dict[str, Any] = {}
    for name, attr in found.items():
        value = attr.value()
        try:
            converted = convert(value, attrs[name])
        except ConversionError as exc:
            raise attr.ctx.fail(
                "Incorrect attribute value type",
                f"Inappropriate value for attribute {go_quote(name)}: {exc}.",
                attr.expr.s,
                attr.expr.e,
            ) from None
        if type(converted) is Unknown:
            # Nomad's decodeConstraint/decodeAffinity panic here ("value is unknown"); refuse as
            # gohcl refuses an unknown elsewhere.
            raise attr.ctx.fail(
                "Unsuitable value type", "Unsuitable value: value must be known", *start_range(attr.expr)
            )
        out[name] = None if type(converted) is Null else converted
    return out


def decode_constraint(view: View) -> dict[str, Any]:
    """hcl_conversions.go:200 decodeConstraint, with its shorthands and Operand "=" default."""
    v = _hcldec_object(view, _CONSTRAINT_ATTRS)

    def attr(name: str) -> str:
        return v.get(name) or ""

    ltarget, rtarget, operand = attr("attribute"), attr("value"), attr("operator")
    for key in ("version", "semver", "regexp", "set_contains"):
        if attr(key):
            operand, rtarget = key, attr(key)
    if v.get("distinct_hosts") is not None:
        operand, rtarget = "distinct_hosts", "true" if v["distinct_hosts"] else "false"
    if attr("distinct_property"):
        operand, ltarget = "distinct_property", attr("distinct_property")
    return {"LTarget": ltarget, "RTarget": rtarget, "Operand": operand or "="}


def decode_affinity(view: View) -> dict[str, Any]:
    """hcl_conversions.go:109 decodeAffinity (int8 weight as Go converts it)."""
    v = _hcldec_object(view, _AFFINITY_ATTRS)

    def attr(name: str) -> str:
        return v.get(name) or ""

    out: dict[str, Any] = {
        "LTarget": attr("attribute"),
        "RTarget": attr("value"),
        "Operand": attr("operator"),
    }
    weight = v.get("weight")
    if weight is not None:
        w = (
            int(weight)
            if not isinstance(weight, float)
            else (0 if weight != weight else int(max(min(weight, 9.2e18), -9.2e18)))
        )
        w = max(min(w, (1 << 63) - 1), -(1 << 63))
        out["Weight"] = ((w + 128) & 0xFF) - 128
    for key in ("version", "semver", "regexp", "set_contains_any", "set_contains_all", "set_contains"):
        if attr(key):
            out["Operand"], out["RTarget"] = key, attr(key)
    if not out["Operand"]:
        out["Operand"] = "="
    return out


def decode_task_group(view: View) -> dict[str, Any]:
    """hcl_conversions.go:274 decodeTaskGroup: meta as attribute, vault/secret inheritance, scaling."""
    meta, view = decode_as_attribute(view, "meta")
    extra_schema: Schema = ({}, {"secret": ("name",), "vault": ()})
    _, extra = view.content(extra_schema, partial=True)
    group_view = view.remain(extra_schema)
    vault = None
    secrets: list[dict[str, Any]] = []
    for b in extra:
        if b.type == "vault":
            vault = decode_struct(b.view, "Vault")
        else:
            secret = decode_struct(b.view, "Secret")
            if len(b.labels) == 1:
                secret["Name"] = b.labels[0]
            secrets.append(secret)
    tg = decode_generic(group_view, spec("TaskGroup"))
    if meta is not None:
        tg["Meta"] = meta
    tasks = tg.get("Tasks") or []
    if vault is not None:
        for t in tasks:
            if t.get("Vault") is None:
                t["Vault"] = vault
    if secrets:
        for t in tasks:
            if not t.get("Secrets"):
                t["Secrets"] = secrets
            else:
                t["Secrets"] = t["Secrets"] + t["Secrets"]  # jobspec2 appends the task's own (sic)
    scaling = tg.get("Scaling")
    if scaling is not None:
        if not scaling.get("Type"):
            scaling["Type"] = "horizontal"
        _validate_group_scaling(scaling, group_view)
    return tg


def _validate_group_scaling(scaling: dict[str, Any], view: View) -> None:
    """hcl_conversions.go:499 validateGroupScalingPolicy."""
    if scaling.get("Max") is not None and scaling["Type"] == "horizontal":
        return
    _, blocks = view.content(({}, {"scaling": ()}), partial=True)
    if not blocks:
        return
    sv = blocks[0].view
    attrs, _ = sv.content(({"max": True, "type": False}, {}), partial=True)
    if scaling["Type"] != "horizontal" and "type" in attrs:
        expr = attrs["type"].expr
        raise sv.fail(
            "Invalid group scaling type",
            f"task group scaling policy had invalid type: {go_quote(scaling['Type'])}",
            (expr.s, expr.e),
        )


def decode_task(view: View) -> dict[str, Any]:
    """hcl_conversions.go:341 decodeTask: env/meta as attributes, scaling "cpu"/"mem" policies."""
    env, view = decode_as_attribute(view, "env")
    meta, view = decode_as_attribute(view, "meta")
    scaling_schema: Schema = ({}, {"scaling": ("name",)})
    _, scaling_blocks = view.content(scaling_schema, partial=True)
    task_view = view.remain(scaling_schema)
    policies = _task_scaling(scaling_blocks, view)
    task = decode_generic(task_view, spec("Task"))
    if policies:
        task["ScalingPolicies"] = policies
    if env is not None:
        task["Env"] = env
    if meta is not None:
        task["Meta"] = meta
    return task


def _task_scaling(blocks: list[BlockRef], view: View) -> list[dict[str, Any]]:
    """hcl_conversions.go:443 decodeTaskScalingPolicies."""
    seen: dict[str, BlockRef] = {}
    out: list[dict[str, Any]] = []
    for b in blocks:
        label = b.labels[0].lower()
        if label not in ("cpu", "mem"):
            raise view.fail(
                "Invalid scaling policy name", 'scaling policy name must be "cpu" or "mem"', b.label_ranges[0]
            )
        if label in seen:
            raise view.fail(
                f"Duplicate scaling {go_quote(label)} block",
                f"Only one scaling {label} block is allowed. Another was defined at "
                f"{view.ctx.src.range(*seen[label].def_range)}.",
                b.def_range,
            )
        seen[label] = b
        policy_type = "vertical_cpu" if label == "cpu" else "vertical_mem"
        policy = decode_struct(b.view, "ScalingPolicy")
        if not policy.get("Type"):
            policy["Type"] = policy_type
        elif policy["Type"] != policy_type:
            raise view.fail(
                "Invalid scaling policy type",
                f"Invalid policy type, expected {go_quote(policy['Type'])} but found {go_quote(policy_type)}",
                b.def_range,
            )
        out.append(policy)
    return out


_CUSTOM: dict[str, BlockDecoder] = {
    "Constraint": decode_constraint,
    "Affinity": decode_affinity,
    "TaskGroup": decode_task_group,
    "Task": decode_task,
}


# --- the job ---------------------------------------------------------------------------------------


def decode_job_block(
    block: syn.Block, ctx: Ctx
) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any] | None, list[dict[str, Any]]]:
    """types.config.go:239 decodeJob for the one job block: (job, job-level tasks, vault, secrets)."""
    view = View(block.body, ctx, expand=True, as_attrs=True)
    meta, view = decode_as_attribute(view, "meta")
    extra_schema: Schema = ({}, {"secret": ("name",), "task": ("name",), "vault": ()})
    _, extra = view.content(extra_schema, partial=True)
    job_view = view.remain(extra_schema)
    vault = None
    vault_block: BlockRef | None = None
    secrets: list[dict[str, Any]] = []
    tasks: list[dict[str, Any]] = []
    for b in extra:
        if b.type == "vault":
            if vault_block is not None:
                raise view.fail(
                    "Duplicate vault block",
                    'Only one block of type "vault" is allowed. Previous definition was at '
                    f"{ctx.src.range(*vault_block.def_range)}.",
                    b.def_range,
                )
            vault_block = b
            vault = decode_struct(b.view, "Vault")
        elif b.type == "task":
            task = decode_struct(b.view, "Task")
            if len(b.labels) == 1:
                task["Name"] = b.labels[0]
                tasks.append(task)
        else:
            secret = decode_struct(b.view, "Secret")
            if len(b.labels) == 1:
                secret["Name"] = b.labels[0]
                secrets.append(secret)
    job = decode_generic(job_view, spec("Job"))
    if meta is not None:
        job["Meta"] = meta
    return job, tasks, vault, secrets


def normalize_job(
    job: dict[str, Any],
    job_id: str,
    tasks: list[dict[str, Any]],
    vault: dict[str, Any] | None,
    secrets: list[dict[str, Any]],
) -> None:
    """parse_job.go:13 normalizeJob: Name/ID, periodic SpecType, job-level tasks, vault, templates,
    network ports, the default identity."""
    if job.get("Name") is None:
        job["Name"] = job_id
    if job.get("ID") is None:
        job["ID"] = job_id
    periodic = job.get("Periodic")
    if periodic is not None and (periodic.get("Spec") is not None or periodic.get("Specs") is not None):
        periodic["SpecType"] = "cron"
    _normalize_vault(vault)
    if tasks:
        alone = [{"Name": t["Name"], "Tasks": [t]} for t in tasks]
        job["TaskGroups"] = alone + (job.get("TaskGroups") or [])
    for tg in job.get("TaskGroups") or ():
        _normalize_ports(tg.get("Networks"))
        for t in tg.get("Tasks") or ():
            resources = t.get("Resources")
            if resources is not None:
                _normalize_ports(resources.get("Networks"))
            _normalize_templates(t.get("Templates"))
            _normalize_vault(t.get("Vault"))
            if t.get("Vault") is None and vault is not None:
                t["Vault"] = vault
            if not t.get("Secrets"):
                if secrets:
                    t["Secrets"] = secrets
            else:
                t["Secrets"] = t["Secrets"] + secrets
            identities = t.get("Identities")
            if identities:
                for i, wid in enumerate(identities):
                    if wid.get("Name", "") in ("", "default"):
                        t["Identity"] = wid
                        rest = identities[:i] + identities[i + 1 :]
                        if rest:
                            t["Identities"] = rest
                        else:
                            t["Identities"] = []
                        break


def _normalize_vault(v: dict[str, Any] | None) -> None:
    if v is None:
        return
    v.setdefault("Env", True)
    v.setdefault("DisableFile", False)
    v.setdefault("ChangeMode", "restart")


def _normalize_ports(networks: list[dict[str, Any]] | None) -> None:
    for n in networks or ():
        ports = n.get("DynamicPorts")
        if not ports:
            continue
        dynamic = [p for p in ports if not p.get("Value", 0) > 0]
        reserved = [p for p in ports if p.get("Value", 0) > 0]
        if dynamic:
            n["DynamicPorts"] = dynamic
        else:
            n.pop("DynamicPorts", None)
        if reserved:
            n["ReservedPorts"] = reserved
        else:
            n.pop("ReservedPorts", None)


def _normalize_templates(templates: list[dict[str, Any]] | None) -> None:
    for t in templates or ():
        t.setdefault("ChangeMode", "restart")
        t.setdefault("Perms", "0644")
        t.setdefault("Splay", 5_000_000_000)
        t.setdefault("ErrMissingKey", False)
        script = t.get("ChangeScript")
        if script is not None:
            script.setdefault("Args", [])
            script.setdefault("Timeout", 5_000_000_000)
            script.setdefault("FailOnError", False)
            script.setdefault("RunOnFirstRender", False)


# --- the undefined-variable hook -------------------------------------------------------------------


def undefined_variable(text: str) -> Callable[[syn.ScopeTraversal], Any]:
    """types.config.go:335 UndefinedVariable: a runtime reference (`${NOMAD_ALLOC_DIR}`,
    `${attr.kernel.name}`, ...) stays literal, re-wrapped in `${...}` as jobspec2 slices it."""

    def hook(traversal: syn.ScopeTraversal) -> str:
        start, end = traversal.s, traversal.e
        v = text[start:end]
        bracketed = False
        i = start - 1
        while i >= 1:
            ch = text[i]
            if ch == "{" and text[i - 1] == "$":
                bracketed = True
                v = text[i - 1 : start] + v
                break
            if ch != " ":
                break
            i -= 1
        if bracketed:
            j = end + 1
            while j < len(text):
                ch = text[j]
                if ch == "}":
                    v += text[end:j]
                elif ch != " ":
                    v += "}"
                    break
                j += 1
        else:
            v = "${" + v + "}"
        return v

    return hook


def diagnostics_error(diags: list[Diagnostic]) -> str:
    """hcl.Diagnostics.Error(): the first diagnostic and how many follow."""
    if len(diags) == 1:
        return str(diags[0])
    return f"{diags[0]}, and {len(diags) - 1} other diagnostic(s)"


def new_ctx(src: Source, variables: Mapping[str, Any], functions: dict[str, Function], job_text: str) -> Ctx:
    return Ctx(src, dict(variables), functions, undefined_variable(job_text))


__all__ = ["HclDiagnostics", "decode_job_block", "evaluate", "normalize_job"]
