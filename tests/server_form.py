"""The JSON `GET /v1/job/<id>` returns for a stored job, built from Nomad's facts, not the emulator.

command/agent/job_endpoint.go:522 jobQuery encodes the server's structs.Job with go-msgpack's JSON
handle (nomad/structs/handlers.go:18): every field of every struct, a nil pointer, slice or map as
null, a plain value as its Go zero even when unset, a struct value as an object; structs.Port and
NetworkResource omit their empty fields (`_struct bool codec:",omitempty"`, structs.go:2811,
:2881). Which api field the server keeps as a value, as a struct value, not at all, or under
another spelling comes from nomadmesh/data/nomad_structs_values.json (scripts/regen-structs-values
over nomad/structs); the keys and Go types from nomadmesh/data/nomad_api_schema.json.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from nomadmesh.model import Job

_OMIT_EMPTY = {"Port", "NetworkResource"}


@cache
def _facts() -> tuple[dict[str, Any], dict[str, Any]]:
    from importlib import resources

    root = resources.files("nomadmesh.data")
    schema = json.loads(root.joinpath("nomad_api_schema.json").read_text("utf-8"))["structs"]
    structs = json.loads(root.joinpath("nomad_structs_values.json").read_text("utf-8"))
    return schema, structs


def _zero(go_type: str) -> Any:
    t = go_type.lstrip("*")
    if t == "bool":
        return False
    if t.startswith(("int", "uint", "float", "time.Duration")):
        return 0
    return ""  # string and named string types (api.CSIPluginType)


def _struct(name: str, value: dict[str, Any] | None) -> dict[str, Any]:
    schema, structs = _facts()
    value = value or {}
    values = set(structs["values"].get(name, ()))
    blocks = set(structs["blocks"].get(name, ()))
    dropped = set(structs["dropped"].get(name, ()))
    renamed = structs["renamed"].get(name, {})
    out: dict[str, Any] = {}
    for f in schema[name] or ():
        key = f["json"]
        if f["skip"] or key in dropped:
            continue
        given = value.get(key)
        if given is not None:
            item: Any = given
            if f["elem"] and f["kind"] in ("ptr", "struct"):
                item = _struct(f["elem"], given)
            elif f["elem"] and f["kind"] == "slice":
                item = [_struct(f["elem"], x) for x in given]
            elif f["elem"] and f["kind"] == "map":
                item = {k: _struct(f["elem"], x) for k, x in given.items()}
        elif key in blocks:
            item = _struct(f["elem"], None)
        elif f["kind"] == "scalar" or key in values:
            item = _zero(f["type"])
        else:
            item = None
        out[renamed.get(key, key)] = item
    if name in _OMIT_EMPTY:
        out = {k: v for k, v in out.items() if v not in (None, "", 0, False, [], {})}
    return out


def server_form(stored: Job, *, index: int = 11) -> dict[str, Any]:
    """What a GET returns for `stored` (canonicalize(job)), with the server's own fields."""
    out = _struct("Job", stored.to_api())
    out.update(Status="pending", StatusDescription="", Stable=False, Version=0,
               SubmitTime=1_764_633_600_000_000_000, CreateIndex=index, ModifyIndex=index,
               JobModifyIndex=index, ParentID="", Dispatched=False, NomadTokenID="")
    for group in out["TaskGroups"] or ():
        services = [*(group["Services"] or ()),
                    *(s for t in group["Tasks"] or () for s in t["Services"] or ())]
        for service in services:
            # structs/services.go:747: the server sets the namespace of every service.
            service["Namespace"] = "default" if service["Provider"] == "consul" else out["Namespace"]
        policies = [group["Scaling"]] if group["Scaling"] else []
        policies += [p for t in group["Tasks"] or () for p in t["ScalingPolicies"] or ()]
        for policy in policies:
            policy.update(ID="3f6a-policy", CreateIndex=index, ModifyIndex=index,
                          Target={"Namespace": out["Namespace"], "Job": out["ID"],
                                  "Group": group["Name"]})
    return out
