"""Nomad's `api` structs as data, read with the emulator's own loader.

The file is `nomadmesh/data/nomad_api_schema.json`, printed by `nomad-api-oracle schema` (Nomad
2.0.6's `api` package, compiled unmodified). The client reads it through `nomadmesh.nomad_schema`;
the emulator shares no code with the client it checks, so it reads the JSON here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True, slots=True)
class Field:
    """One exported field of a Go struct: its Go name, JSON key, Go type and `omitempty`."""

    name: str
    json: str
    go_type: str
    omitempty: bool
    via: str = ""  # the embedded struct a promoted field comes from (Go names it in errors)


_WRITE = (
    Field("Region", "Region", "string", False, "WriteRequest"),
    Field("Namespace", "Namespace", "string", False, "WriteRequest"),
    Field("SecretID", "SecretID", "string", False, "WriteRequest"),
)

# Request bodies the agent decodes that `schema` does not reach from api.JobRegisterRequest:
# api/jobs.go at aa026cc JobPlanRequest :1527, JobValidateRequest :1444 (both embed
# api.WriteRequest, whose fields Go promotes), and the dispatch body, which the agent decodes into
# nomad/structs/structs.go:927 JobDispatchRequest (embedding structs.WriteRequest :432).
_EXTRA: dict[str, tuple[Field, ...]] = {
    "JobPlanRequest": (
        Field("Job", "Job", "*api.Job", False),
        Field("Diff", "Diff", "bool", False),
        Field("PolicyOverride", "PolicyOverride", "bool", False),
        *_WRITE,
    ),
    "JobValidateRequest": (Field("Job", "Job", "*api.Job", False), *_WRITE),
    # api/jobs.go:73
    "JobsParseRequest": (
        Field("JobHCL", "JobHCL", "string", False),
        Field("Variables", "Variables", "string", False),
        Field("Canonicalize", "Canonicalize", "bool", False),
    ),
    "JobDispatchRequest": (
        Field("JobID", "JobID", "string", False),
        Field("Payload", "Payload", "[]uint8", False),
        Field("Meta", "Meta", "map[string]string", False),
        Field("Region", "Region", "string", False, "WriteRequest"),
        Field("Namespace", "Namespace", "string", False, "WriteRequest"),
        Field("AuthToken", "AuthToken", "string", False, "WriteRequest"),
        Field("IdempotencyToken", "IdempotencyToken", "string", False, "WriteRequest"),
        Field("Forwarded", "Forwarded", "bool", False, "WriteRequest.InternalRpcInfo"),
        Field("IdPrefixTemplate", "IdPrefixTemplate", "string", False),
        Field("Priority", "Priority", "int", False),
    ),
}


@cache
def structs() -> dict[str, tuple[Field, ...]]:
    """Every api struct by name, its fields in Go declaration order."""
    text = resources.files("nomadmesh.data").joinpath("nomad_api_schema.json").read_text("utf-8")
    data = json.loads(text)
    out: dict[str, tuple[Field, ...]] = {}
    for name, fields in data["structs"].items():
        out[name] = ()
        for f in fields or ():
            if f["json"] == "-" or (f["skip"] and not str(f["hcl"]).startswith("-")):
                continue  # `json:"-"`: Go's decoder never sets it (the schema marks it skip)
            if f["kind"] == "struct" and f["name"] == f["elem"] == "WriteRequest":
                out[name] += _WRITE  # embedded: Go promotes its fields (api/jobs.go:1503)
                continue
            out[name] += (Field(f["name"], f["json"], f["type"], bool(f["omitempty"])),)
    out.update(_EXTRA)
    return out


@cache
def fields_by_json(struct: str) -> dict[str, Field]:
    """A struct's fields keyed by JSON key."""
    return {f.json: f for f in structs()[struct]}
