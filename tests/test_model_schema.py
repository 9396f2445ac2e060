"""The model against Nomad's own schema (nomad-api-oracle schema, committed as data), field by field.

Every field reachable from api.Job is typed in the model with its JSON key, HCL name and JSON shape,
or listed as set by Nomad itself in the class's `_server`; nothing else is accepted.
"""

from __future__ import annotations

import pytest

from nomadmesh.model import Job, Submission, model_classes
from nomadmesh.model._base import FieldSpec, Kind, specs
from nomadmesh.nomad_schema import GoField, schema

CLASSES = (*model_classes(Job), Submission)

# Go type (pointers and slices stripped) -> the kind a scalar model field must have.
_SCALARS = {
    "string": Kind.STR, "api.CSIPluginType": Kind.STR, "bool": Kind.BOOL,
    "time.Duration": Kind.DURATION,
    **{t: Kind.INT for t in ("int", "int8", "int64", "uint8", "uint16", "uint32", "uint64")},
}


def _go(cls: type) -> str:
    return cls._go  # type: ignore[attr-defined, no-any-return]


def _expected_kind(f: GoField) -> Kind:
    """The model kind Nomad's Go type calls for: a Go map is a JSON object, a slice a list."""
    if f.kind == "map":
        if f.elem:
            return Kind.BLOCK_MAP
        if f.go_type == "map[string]string":
            return Kind.MAP
        if f.go_type == "map[string][]string":
            return Kind.MAP_STRS
        return Kind.ANY
    if f.kind == "slice":
        if f.elem:
            return Kind.BLOCKS
        return Kind.STRS if f.go_type == "[]string" else Kind.INTS
    if f.elem:
        return Kind.BLOCK
    return _SCALARS[f.go_type.lstrip("*")]


def _model_fields(cls: type) -> dict[str, FieldSpec]:
    out = {}
    for s in specs(cls):
        keys = ("ReservedPorts", "DynamicPorts") if s.api == "*ports" else (s.api,)
        for key in keys:
            out[key] = s
    return out


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_go_field_is_typed_or_set_by_nomad(cls: type) -> None:
    model = _model_fields(cls)
    server = getattr(cls, "_server", frozenset())
    go_fields = [f.json for f in schema().struct(_go(cls)) if not f.skip]
    missing = [k for k in go_fields if k not in model and k not in server]
    assert missing == [], f"{cls.__name__} ({_go(cls)}) lacks {missing}"


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_the_model_has_no_field_nomad_does_not(cls: type) -> None:
    go_fields = {f.json for f in schema().struct(_go(cls))}
    extra = [k for k in _model_fields(cls) if k not in go_fields]
    server_extra = sorted(getattr(cls, "_server", frozenset()) - go_fields)
    # structs.Service.Namespace is set by the server and returned by GET, though api.Service lacks it.
    assert extra == [] and server_extra in ([], ["Namespace"]), (extra, server_extra)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_json_shape_hcl_name_and_pointerness_match_the_schema(cls: type) -> None:
    wrong = []
    for f in schema().struct(_go(cls)):
        s = _model_fields(cls).get(f.json)
        if s is None or f.skip:
            continue
        if s.api == "*ports":
            if f.hcl == "port" and (s.hcl, s.kind, s.block.__name__ if s.block else None) != (
                    "port", Kind.BLOCKS, "Port"):
                wrong.append((f.json, "ports"))
            continue
        kind = _expected_kind(f)
        if s.kind is not kind:
            wrong.append((f.json, "kind", s.kind, kind))
        if f.elem and (s.block is None or _go(s.block) != f.elem):
            wrong.append((f.json, "block", s.block, f.elem))
        if kind is Kind.INT or kind is Kind.INTS:
            go_int = f.go_type.lstrip("*[]")
            if s.go_int != go_int:
                wrong.append((f.json, "integer type", s.go_int, go_int))
        if f.kind != "slice" and f.kind != "map" and not f.elem:
            ptr = f.go_type.startswith("*")
            if s.ptr != ptr:
                wrong.append((f.json, "pointer", s.ptr, ptr))
        if s.hcl != f.hcl and not s.label:  # `hcl:",label"` names no attribute
            wrong.append((f.json, "hcl", s.hcl, f.hcl))
        if s.label != (f.hcl_kind == "label") and not (cls is Job and f.json == "ID"):
            wrong.append((f.json, "label", s.label))
    assert wrong == []


def test_every_api_struct_below_job_has_a_model_class() -> None:
    covered = {_go(c) for c in CLASSES}
    wrappers = {"JobRegisterRequest", "WriteRequest", "JobVersionTag"}  # body, not job content
    assert set(schema().structs) - covered == wrappers


def test_job_id_is_the_positional_label_as_in_the_jobspec() -> None:
    # Not a label in api.Job (its hcl tag is "id,optional"); jobspec2 takes it from `job "<id>"`.
    assert Job("web").id == "web"
    assert [s.name for s in specs(Job) if s.label] == ["id"]
