"""The plan diff: nomad/structs/diff.go (Job.Diff and its helpers) and scheduler/annotate.go.

Jobs are structs dicts (as `admit` returns them). Values are flattened as helper/flatmap does
(primitive fields only, maps as `Name[key]`, durations in nanoseconds); objects compare as Go's
reflect.DeepEqual; a contextual diff lists unchanged fields of edited objects with Type "None".
Job-, group- and task-level fields are never contextual (diff.go:101, :267, :472), as in Nomad.
Multiregion blocks (Enterprise only; a CE server refuses them) are diffed with the generic rule.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

from nomadmesh.testing.nomad_api.convert import new as new_struct
from nomadmesh.testing.nomad_api.convert import structs_schema
from nomadmesh.testing.nomad_api.validate import go_duration

Obj = dict[str, Any]
ADDED, DELETED, EDITED, NONE = "Added", "Deleted", "Edited", "None"
_PRIMITIVE = {"string", "bool", "int", "int8", "int16", "int32", "int64", "uint", "uint8",
              "uint16", "uint32", "uint64", "float32", "float64", "time.Duration"}

_JOB_FILTER = ("ID", "Status", "StatusDescription", "Version", "Stable", "CreateIndex",
               "ModifyIndex", "JobModifyIndex", "Update", "SubmitTime", "NomadTokenID",
               "VaultToken")


# --- flatmap ------------------------------------------------------------------------------------

def _resolve(go_type: str) -> str:
    named = structs_schema()["named"]
    while go_type in named:
        go_type = named[go_type]
    return go_type


def _text(value: Any) -> str:
    """fmt %v of a primitive."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "nil"
    return str(value)


def flat(obj: Obj | None, struct: str, filter: Iterable[str] = ()) -> dict[str, str] | None:
    """helper/flatmap Flatten(obj, filter, primitiveOnly=true) of a structs value."""
    if obj is None:
        return None
    out: dict[str, str] = {}
    for f in structs_schema()["structs"][struct]:
        go_type = _resolve(f["type"])
        value = obj[f["json"]]
        if go_type in _PRIMITIVE:
            out[f["name"]] = _text(value)
        elif go_type.startswith("map[string]"):
            elem = _resolve(go_type[len("map[string]"):])
            if elem in _PRIMITIVE:
                for key, v in (value or {}).items():
                    out[f"{f['name']}[{key}]"] = _text(v)
    for key in filter:
        out.pop(key, None)
    return out


def flat_any(value: Any, prefix: str = "") -> dict[str, str]:
    """helper/flatmap Flatten(obj, nil, false) of JSON-shaped data (maps, lists, scalars)."""
    out: dict[str, str] = {}
    if isinstance(value, dict):
        for key, v in value.items():
            out.update(flat_any(v, f"{prefix}[{key}]" if prefix else str(key)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.update(flat_any(v, f"{prefix}[{i}]"))
    else:
        out[prefix] = _text(value)
    return out


# --- fields and ordering --------------------------------------------------------------------------

def _field(old: str, new: str, name: str, contextual: bool) -> Obj | None:
    """diff.go:3191 fieldDiff."""
    if old == new:
        if not contextual:
            return None
        return {"Type": NONE, "Name": name, "Old": old, "New": new, "Annotations": None}
    if old == "":
        return {"Type": ADDED, "Name": name, "Old": "", "New": new, "Annotations": None}
    if new == "":
        return {"Type": DELETED, "Name": name, "Old": old, "New": "", "Annotations": None}
    return {"Type": EDITED, "Name": name, "Old": old, "New": new, "Annotations": None}


def _fields(old: dict[str, str] | None, new: dict[str, str] | None,
            contextual: bool) -> list[Obj] | None:
    """diff.go:3252 fieldDiffs, sorted by name, old, new."""
    old, new = old or {}, new or {}
    out = [d for k in set(old) | set(new)
           if (d := _field(old.get(k, ""), new.get(k, ""), k, contextual)) is not None]
    out.sort(key=lambda f: (f["Name"], f["Old"], f["New"]))
    return out or None


_TYPE_ORDER = {EDITED: 0, ADDED: 1, DELETED: 2, NONE: 3}


def _object_cmp(a: Obj, b: Obj) -> int:
    """diff.go:3127 ObjectDiff.Less as a comparison."""
    if a == b:
        return 0
    if a["Name"] != b["Name"]:
        return -1 if a["Name"] < b["Name"] else 1
    if a["Type"] != b["Type"]:
        return -1 if _TYPE_ORDER[a["Type"]] < _TYPE_ORDER[b["Type"]] else 1
    for key in ("Fields", "Objects"):
        la, lb = len(a[key] or ()), len(b[key] or ())
        if la != lb:
            return -1 if la < lb else 1
    for fa, fb in zip(a["Fields"] or (), b["Fields"] or (), strict=True):
        ka = ("", "", "") if fa is None else (fa["Name"], fa["Old"], fa["New"])
        kb = ("", "", "") if fb is None else (fb["Name"], fb["Old"], fb["New"])
        if ka != kb:
            return -1 if ka < kb else 1
    for oa, ob in zip(a["Objects"] or (), b["Objects"] or (), strict=True):
        c = _object_cmp(oa, ob)
        if c:
            return c
    return 0


def _sorted(objects: list[Obj]) -> list[Obj] | None:
    return sorted(objects, key=functools.cmp_to_key(_object_cmp)) or None


def _object(name: str, kind: str, fields: list[Obj | None] | list[Obj] | None,
            objects: Iterable[Obj | None] = ()) -> Obj:
    return {"Type": kind, "Name": name, "Fields": fields,
            "Objects": [o for o in objects if o is not None] or None}


Children = Callable[[Obj, Obj], list[Obj | None]]


def _block(name: str, struct: str, old: Obj | None, new: Obj | None, contextual: bool, *,
           children: Children | None = None, filter: Iterable[str] = (),
           fields_contextual: bool | None = None) -> Obj | None:
    """The pattern most *Diff functions of diff.go follow (serviceDiff, vaultDiff, ...)."""
    if old == new:
        return None
    if old is None:
        kind, old_flat, new_flat = ADDED, None, flat(new, struct, filter)
    elif new is None:
        kind, old_flat, new_flat = DELETED, flat(old, struct, filter), None
    else:
        kind, old_flat, new_flat = EDITED, flat(old, struct, filter), flat(new, struct, filter)
    ctx = contextual if fields_contextual is None else fields_contextual
    fields = _fields(old_flat, new_flat, ctx)
    objects = children(old or new_struct(struct), new or new_struct(struct)) if children else []
    return _object(name, kind, fields, objects)


def _primitive(old: Obj | None, new: Obj | None, struct: str, name: str, contextual: bool,
               filter: Iterable[str] = ()) -> Obj | None:
    """diff.go:3363 primitiveObjectDiff."""
    fields = _fields(flat(old, struct, filter), flat(new, struct, filter), contextual)
    kinds = {f["Type"] for f in fields or ()}
    if EDITED in kinds or {ADDED, DELETED} <= kinds:
        kind = EDITED
    elif ADDED in kinds:
        kind = ADDED
    elif DELETED in kinds:
        kind = DELETED
    else:
        return None
    return _object(name, kind, fields)


def _set(old: list[Obj | None] | None, new: list[Obj | None] | None, struct: str, name: str,
         contextual: bool, key: Callable[[Obj], str], filter: Iterable[str] = ()) -> list[Obj]:
    """diff.go:3404 primitiveObjectSetDiff, keyed by DiffID (or the whole value)."""
    def keyed(items: list[Obj | None] | None) -> dict[str, Obj]:
        return {key(o) or repr(sorted(o.items())): o for o in items or () if o is not None}

    old_set, new_set = keyed(old), keyed(new)
    out = [d for k, o in old_set.items()
           if (d := _primitive(o, new_set.get(k), struct, name, contextual, filter))]
    out += [d for k, n in new_set.items() if k not in old_set
            if (d := _primitive(None, n, struct, name, contextual, filter))]
    return _sorted(out) or []


def _strings(old: list[Any] | None, new: list[Any] | None, name: str,
             contextual: bool) -> Obj | None:
    """diff.go:3276 stringSetDiff."""
    old_set, new_set = set(map(str, old or ())), set(map(str, new or ()))
    if old_set == new_set and not contextual:
        return None
    # fieldDiff of an empty string to itself is nil, and Go appends that nil too (diff.go:3295)
    fields: list[Obj | None] = []
    removed = added = False
    for k in old_set:
        if k not in new_set:
            fields.append(_field(k, "", name, contextual))
            removed = True
        elif contextual:
            fields.append(_field(k, k, name, contextual))
    for k in new_set - old_set:
        fields.append(_field("", k, name, contextual))
        added = True
    fields.sort(key=lambda f: ("", "", "") if f is None else (f["Name"], f["Old"], f["New"]))
    if added and removed:
        kind = EDITED
    elif added:
        kind = ADDED
    elif removed:
        kind = DELETED
    elif not fields:
        return None
    else:
        kind = NONE
    return _object(name, kind, fields)


def _map_object(name: str, old: Any, new: Any, contextual: bool, *,
                fields_contextual: bool | None = None) -> Obj | None:
    """configDiff / policyDiff / checkHeaderDiff / disconnect: a full flatten of free data."""
    if old == new:
        return None
    kind = ADDED if not old else DELETED if not new else EDITED
    ctx = contextual if fields_contextual is None else fields_contextual
    return _object(name, kind, _fields(flat_any(old or {}), flat_any(new or {}), ctx))


# --- the job tree -------------------------------------------------------------------------------

def job_diff(old: Obj | None, new: Obj | None, contextual: bool = True) -> Obj:
    """diff.go:73 Job.Diff (plan uses contextual=true, nomad/job_endpoint.go:1912)."""
    if old is None and new is None:
        return {"Type": NONE, "ID": "", "Fields": None, "Objects": None, "TaskGroups": None}
    kind = ADDED if old is None else DELETED if new is None else NONE
    old_flat, new_flat = flat(old, "Job", _JOB_FILTER), flat(new, "Job", _JOB_FILTER)
    old = old if old is not None else new_struct("Job")
    new = new if new is not None else new_struct("Job")
    diff: Obj = {"Type": kind, "ID": new["ID"] or old["ID"],
                 "Fields": _fields(old_flat, new_flat, False), "Objects": None,
                 "TaskGroups": None}
    objects: list[Obj | None] = []
    datacenters = _strings(old["Datacenters"], new["Datacenters"], "Datacenters", contextual)
    if datacenters is not None and datacenters["Type"] != NONE:
        objects.append(datacenters)
    objects += _constraints(old, new, contextual) + _affinities(old, new, contextual)
    diff["TaskGroups"] = _groups(old["TaskGroups"], new["TaskGroups"], contextual)
    objects.append(_periodic(old["Periodic"], new["Periodic"], contextual))
    objects.append(_block("ParameterizedJob", "ParameterizedJobConfig", old["ParameterizedJob"],
                          new["ParameterizedJob"], contextual, children=lambda o, n: [
                              _strings(o["MetaOptional"], n["MetaOptional"], "MetaOptional",
                                       contextual),
                              _strings(o["MetaRequired"], n["MetaRequired"], "MetaRequired",
                                       contextual)]))
    objects.append(_block("Multiregion", "Multiregion", old["Multiregion"], new["Multiregion"],
                          contextual))
    objects.append(_ui(old["UI"], new["UI"], contextual))
    diff["Objects"] = [o for o in objects if o is not None] or None
    if diff["Type"] == NONE and any(
            x["Type"] != NONE for x in (diff["Fields"] or []) + (diff["Objects"] or [])
            + (diff["TaskGroups"] or [])):
        diff["Type"] = EDITED
    return diff


def _ui(old: Obj | None, new: Obj | None, contextual: bool) -> Obj | None:
    """diff.go:2400 uiDiff with :2434 linkDiffs (links by position)."""
    def links(a: Obj, b: Obj) -> list[Obj | None]:
        out = []
        a_links, b_links = a["Links"] or [], b["Links"] or []
        for i in range(max(len(a_links), len(b_links))):
            x = a_links[i] if i < len(a_links) else new_struct("JobUILink")
            y = b_links[i] if i < len(b_links) else new_struct("JobUILink")
            if x == y:
                continue
            kind = EDITED if i < len(a_links) and i < len(b_links) else (
                DELETED if i < len(a_links) else ADDED)
            out.append(_object("Link", kind, _fields(flat(x, "JobUILink"), flat(y, "JobUILink"),
                                                    contextual)))
        return list(_sorted([o for o in out if o is not None]) or [])

    return _block("UI", "JobUIConfig", old, new, contextual, children=links)


def _constraints(old: Obj, new: Obj, contextual: bool) -> list[Obj | None]:
    return list(_set(old["Constraints"], new["Constraints"], "Constraint", "Constraint",
                     contextual, lambda c: f"{c['LTarget']} {c['Operand']} {c['RTarget']}"))


def _affinities(old: Obj, new: Obj, contextual: bool) -> list[Obj | None]:
    return list(_set(old["Affinities"], new["Affinities"], "Affinity", "Affinity", contextual,
                     lambda a: f"{a['LTarget']} {a['Operand']} {a['RTarget']} {a['Weight']}"))


def _periodic(old: Obj | None, new: Obj | None, contextual: bool) -> Obj | None:
    """diff.go:3328 periodicDiff."""
    if old == new:
        return None
    kind = ADDED if old is None else DELETED if new is None else EDITED
    out = _object("Periodic", kind, _fields(flat(old, "PeriodicConfig"),
                                            flat(new, "PeriodicConfig"), contextual))
    specs = _strings((old or {}).get("Specs"), (new or {}).get("Specs"), "Specs", contextual)
    if specs is not None and specs["Type"] != NONE:
        out["Objects"] = [specs]
    return out


def _named(old: list[Obj] | None, new: list[Obj] | None) -> list[tuple[Obj | None, Obj | None]]:
    old_by = {x["Name"]: x for x in old or ()}
    new_by = {x["Name"]: x for x in new or ()}
    return [(old_by.get(n), new_by.get(n)) for n in sorted(set(old_by) | set(new_by))]


def _groups(old: list[Obj] | None, new: list[Obj] | None, contextual: bool) -> list[Obj] | None:
    """diff.go:391 taskGroupDiffs, sorted by name."""
    return [group_diff(o, n, contextual) for o, n in _named(old, new)] or None


def group_diff(old: Obj | None, new: Obj | None, contextual: bool) -> Obj:
    """diff.go:223 TaskGroup.Diff."""
    kind = NONE
    if old is None:
        assert new is not None
        kind, old_flat, new_flat = ADDED, None, flat(new, "TaskGroup", ("Name",))
        old = new_struct("TaskGroup")
    elif new is None:
        kind, old_flat, new_flat = DELETED, flat(old, "TaskGroup", ("Name",)), None
        new = new_struct("TaskGroup")
    else:
        kind = EDITED if old != new else NONE
        old_flat, new_flat = flat(old, "TaskGroup", ("Name",)), flat(new, "TaskGroup", ("Name",))
        for f, g in ((old_flat, old), (new_flat, new)):
            assert f is not None
            f["ShutdownDelay"] = "" if g["ShutdownDelay"] is None else str(g["ShutdownDelay"])
    name = new["Name"] or old["Name"]
    objects: list[Obj | None] = []
    objects += _constraints(old, new, contextual) + _affinities(old, new, contextual)
    for key, struct, filter in (("RestartPolicy", "RestartPolicy", ()),
                                ("Migrate", "MigrateStrategy", ()),
                                ("ReschedulePolicy", "ReschedulePolicy", ()),
                                ("EphemeralDisk", "EphemeralDisk", ()),
                                ("Consul", "Consul", ()),
                                ("Update", "UpdateStrategy", ("Stagger",))):
        objects.append(_primitive(old[key], new[key], struct, key, contextual, filter))
    objects.append(_map_object("Disconnect", old["Disconnect"], new["Disconnect"], contextual))
    objects += _networks(old["Networks"], new["Networks"], contextual)
    objects.append(_scaling(old["Scaling"], new["Scaling"], contextual))
    objects += service_diffs(old["Services"], new["Services"], contextual)
    objects += _volumes(old["Volumes"], new["Volumes"], contextual)
    return {"Type": kind, "Name": name, "Fields": _fields(old_flat, new_flat, False),
            "Objects": [o for o in objects if o is not None] or None,
            "Tasks": [_task(o, n, contextual) for o, n in _named(old["Tasks"], new["Tasks"])]
            or None, "Updates": None}


def _task(old: Obj | None, new: Obj | None, contextual: bool) -> Obj:
    """diff.go:444 Task.Diff."""
    filter = ("Name", "Config")
    kind = NONE
    if old is None:
        assert new is not None
        kind, old_flat, new_flat = ADDED, None, flat(new, "Task", filter)
        old = new_struct("Task")
    elif new is None:
        kind, old_flat, new_flat = DELETED, flat(old, "Task", filter), None
        new = new_struct("Task")
    else:
        kind = EDITED if old != new else NONE
        old_flat, new_flat = flat(old, "Task", filter), flat(new, "Task", filter)
    objects: list[Obj | None] = []
    objects += _constraints(old, new, contextual) + _affinities(old, new, contextual)
    objects.append(_map_object("Config", old["Config"], new["Config"], contextual))
    objects.append(_resources(old["Resources"], new["Resources"], contextual))
    objects.append(_primitive(old["LogConfig"], new["LogConfig"], "LogConfig", "LogConfig",
                              contextual))
    objects.append(_primitive(old["DispatchPayload"], new["DispatchPayload"],
                              "DispatchPayloadConfig", "DispatchPayload", contextual))
    objects += _set(old["Artifacts"], new["Artifacts"], "TaskArtifact", "Artifact", contextual,
                    lambda a: str(a["RelativeDest"]))
    objects += service_diffs(old["Services"], new["Services"], contextual)
    objects.append(_block("Vault", "Vault", old["Vault"], new["Vault"], contextual))
    objects += _secrets(old["Secrets"], new["Secrets"], contextual)
    objects.append(_primitive(old["Consul"], new["Consul"], "Consul", "Consul", contextual))
    objects += _templates(old["Templates"], new["Templates"], contextual)
    objects.append(_identity(old["Identity"], new["Identity"], contextual))
    objects += _by_position(old["Identities"], new["Identities"],
                            lambda o, n: _identity(o, n, contextual))
    objects += _by_position(old["Actions"], new["Actions"], lambda o, n: _block(
        "Action", "Action", o, n, contextual,
        children=lambda a, b: [_strings(a["Args"], b["Args"], "Args", contextual)]))
    objects += _by_position(old["VolumeMounts"], new["VolumeMounts"], lambda o, n: _block(
        "VolumeMount", "VolumeMount", o, n, contextual))
    if old["Schedule"] != new["Schedule"]:
        objects.append(_primitive((old["Schedule"] or {}).get("Cron"),
                                  (new["Schedule"] or {}).get("Cron"), "TaskScheduleCron",
                                  "Schedule", contextual))
    return {"Type": kind, "Name": new["Name"] or old["Name"],
            "Fields": _fields(old_flat, new_flat, False),
            "Objects": [o for o in objects if o is not None] or None, "Annotations": None}


def _by_position(old: list[Obj] | None, new: list[Obj] | None,
                 one: Callable[[Obj | None, Obj | None], Obj | None]) -> list[Obj | None]:
    """actionDiffs / volumeMountsDiffs / idSliceDiffs: pairs by index, then sorted."""
    old, new = old or [], new or []
    out = [one(old[i] if i < len(old) else None, new[i] if i < len(new) else None)
           for i in range(max(len(old), len(new)))]
    return list(_sorted([o for o in out if o is not None]) or [])


def _identity(old: Obj | None, new: Obj | None, contextual: bool) -> Obj | None:
    """diff.go:3075 idDiff."""
    return _block("Identity", "WorkloadIdentity", old, new, contextual, children=lambda o, n: [
        _strings(o["Audience"], n["Audience"], "Audience", contextual)])


def _secrets(old: list[Obj] | None, new: list[Obj] | None, contextual: bool) -> list[Obj | None]:
    """diff.go:611 secretsDiffs (each secret fully flattened)."""
    out = []
    for o, n in _named(old, new):
        if o == n:
            continue
        kind = ADDED if o is None else DELETED if n is None else EDITED
        out.append(_object("Secret", kind, _fields(flat_any(o or {}), flat_any(n or {}),
                                                   contextual)))
    return list(_sorted(out) or [])


def _templates(old: list[Obj] | None, new: list[Obj] | None,
               contextual: bool) -> list[Obj | None]:
    """diff.go:2167 templateDiffs, matched by DiffID (DestPath)."""
    old, new = old or [], new or []
    if len(old) == 1 and len(new) == 1:
        return [_template(old[0], new[0], contextual)]
    matched: set[int] = set()
    out: list[Obj | None] = []
    for o in old:
        index = next((i for i, n in enumerate(new)
                      if i not in matched and n["DestPath"] == o["DestPath"]), -1)
        if index < 0:
            out.append(_template(o, None, contextual))
            continue
        matched.add(index)
        out.append(_template(o, new[index], contextual))
    out += [_template(None, n, contextual) for i, n in enumerate(new) if i not in matched]
    return list(_sorted([o for o in out if o is not None]) or [])


def _template(old: Obj | None, new: Obj | None, contextual: bool) -> Obj | None:
    """diff.go:2107 templateDiff (Uid and Gid pointers shown when set)."""
    if old == new:
        return None
    kind = ADDED if old is None else DELETED if new is None else EDITED
    flats = []
    for t in (old, new):
        f = flat(t, "Template")
        if f is not None:
            for key in ("Uid", "Gid"):
                if t is not None and t[key] is not None:
                    f[key] = str(t[key])
        flats.append(f)
    o, n = old or new_struct("Template"), new or new_struct("Template")
    return _object("Template", kind, _fields(flats[0], flats[1], contextual), [
        _block("Template", "WaitConfig", o["Wait"], n["Wait"], contextual),
        _block("ChangeScript", "ChangeScript", o["ChangeScript"], n["ChangeScript"], contextual,
               children=lambda a, b: [_strings(a["Args"], b["Args"], "Args", contextual)])])


def _resources(old: Obj | None, new: Obj | None, contextual: bool) -> Obj | None:
    """diff.go:2633 Resources.Diff."""
    return _block("Resources", "Resources", old, new, contextual, children=lambda o, n: [
        *_networks(o["Networks"], n["Networks"], contextual),
        *_set(o["Devices"], n["Devices"], "RequestedDevice", "Device", contextual,
              lambda d: str(d["Name"])),
        None if o["NUMA"] == n["NUMA"] else _block("NUMA", "NUMA", o["NUMA"], n["NUMA"],
                                                   contextual)])


def _networks(old: list[Obj] | None, new: list[Obj] | None,
              contextual: bool) -> list[Obj | None]:
    """diff.go:2802 networkResourceDiffs: by value, so a changed network is deleted + added."""
    def key(n: Obj) -> str:
        return repr(n)

    old_by = {key(n): n for n in old or ()}
    new_by = {key(n): n for n in new or ()}
    out = [_network(o, None, contextual) for k, o in old_by.items() if k not in new_by]
    out += [_network(None, n, contextual) for k, n in new_by.items() if k not in old_by]
    return list(_sorted([o for o in out if o is not None]) or [])


def _network(old: Obj | None, new: Obj | None, contextual: bool) -> Obj | None:
    """diff.go:2676 NetworkResource.Diff."""
    return _block("Network", "NetworkResource", old, new, contextual,
                  filter=("Device", "CIDR", "IP", "MBits"), children=lambda o, n: [
                      *_ports(o["ReservedPorts"], n["ReservedPorts"], False, contextual),
                      *_ports(o["DynamicPorts"], n["DynamicPorts"], True, contextual),
                      _dns(o["DNS"], n["DNS"], contextual),
                      None if o["CNI"] == n["CNI"] else _map_object(
                          "CNIConfig", (o["CNI"] or {}).get("Args"), (n["CNI"] or {}).get("Args"),
                          contextual)])


def _ports(old: list[Obj] | None, new: list[Obj] | None, dynamic: bool,
           contextual: bool) -> list[Obj | None]:
    """diff.go:2847 portDiffs, by label."""
    filter = ("Value", "IgnoreCollision") if dynamic else ()
    name = "Dynamic Port" if dynamic else "Static Port"
    old_by = {p["Label"]: p for p in old or ()}
    new_by = {p["Label"]: p for p in new or ()}
    out = [_primitive(p, new_by.get(label), "Port", name, contextual, filter)
           for label, p in old_by.items()]
    out += [_primitive(None, p, "Port", name, contextual, filter)
            for label, p in new_by.items() if label not in old_by]
    return list(_sorted([o for o in out if o is not None]) or [])


def _dns(old: Obj | None, new: Obj | None, contextual: bool) -> Obj | None:
    """diff.go:2722 DNSConfig.Diff (lists joined with commas)."""
    if old == new:
        return None

    def joined(conf: Obj | None) -> dict[str, str] | None:
        if conf is None:
            return None
        return {k: ",".join(conf[k]) for k in ("Servers", "Searches", "Options") if conf[k]}

    kind = ADDED if old is None else DELETED if new is None else EDITED
    return _object("DNS", kind, _fields(joined(old), joined(new), contextual))


def _scaling(old: Obj | None, new: Obj | None, contextual: bool) -> Obj | None:
    """diff.go:783 scalingDiff."""
    filter = ("CreateIndex", "ModifyIndex", "ID", "Type", "Target[Job]", "Target[Group]",
              "Target[Namespace]")
    return _block("Scaling", "ScalingPolicy", old, new, contextual, filter=filter,
                  fields_contextual=False, children=lambda o, n: [
                      _map_object("Policy", o["Policy"], n["Policy"], contextual,
                                  fields_contextual=False)])


def _volumes(old: dict[str, Obj] | None, new: dict[str, Obj] | None,
             contextual: bool) -> list[Obj | None]:
    """diff.go:2484 volumeDiffs (map order, unsorted in Nomad; here by name)."""
    if old == new:
        return []
    old, new = old or {}, new or {}
    return [_block("Volume", "VolumeRequest", old.get(k), new.get(k), contextual,
                   children=lambda o, n: [_block("MountOptions", "CSIMountOptions",
                                                 o["MountOptions"], n["MountOptions"],
                                                 contextual)])
            for k in sorted(set(old) | set(new))]


def service_diffs(old: list[Obj] | None, new: list[Obj] | None,
              contextual: bool) -> list[Obj | None]:
    """diff.go:900 serviceDiffs, matched by findServiceMatch's score."""
    old, new = old or [], new or []
    if len(old) == 1 and len(new) == 1:
        return [_service(old[0], new[0], contextual)]
    taken: dict[int, int] = {}
    out: list[Obj | None] = []
    for i, o in enumerate(old):
        best, best_score = -1, 0
        for j, n in enumerate(new):
            if j in taken:
                continue
            score = (i == j) + 2 * (o["PortLabel"] == n["PortLabel"]) + 3 * (
                o["Name"] == n["Name"])
            if score > 2 and score > best_score:
                best, best_score = j, score
        if best < 0:
            out.append(_service(o, None, contextual))
            continue
        taken[best] = i
        out.append(_service(o, new[best], contextual))
    out += [_service(None, n, contextual) for j, n in enumerate(new) if j not in taken]
    return list(_sorted([o for o in out if o is not None]) or [])


def _service(old: Obj | None, new: Obj | None, contextual: bool) -> Obj | None:
    """diff.go:843 serviceDiff."""
    return _block("Service", "Service", old, new, contextual, children=lambda o, n: [
        _strings(o["CanaryTags"], n["CanaryTags"], "CanaryTags", contextual),
        _strings(o["Tags"], n["Tags"], "Tags", contextual),
        *_checks(o["Checks"], n["Checks"], contextual),
        _connect(o["Connect"], n["Connect"], contextual),
        _identity(o["Identity"], n["Identity"], contextual),
        _weights(o["Weights"], n["Weights"], contextual)])


def _weights(old: Obj | None, new: Obj | None, contextual: bool) -> Obj | None:
    """diff.go:3037 weightsDiff."""
    if old == new:
        return None

    def positive(w: Obj | None) -> dict[str, str] | None:
        return None if w is None else {k: str(w[k]) for k in ("Passing", "Warning") if w[k] > 0}

    kind = ADDED if old is None else DELETED if new is None else EDITED
    return _object("Weights", kind, _fields(positive(old), positive(new), contextual))


def _checks(old: list[Obj] | None, new: list[Obj] | None, contextual: bool) -> list[Obj | None]:
    """diff.go:1989 serviceCheckDiffs, by check name."""
    out = [_block("Check", "ServiceCheck", o, n, contextual, children=lambda a, b: [
        _map_object("Header", a["Header"], b["Header"], contextual),
        _block("CheckRestart", "CheckRestart", a["CheckRestart"], b["CheckRestart"],
               contextual)]) for o, n in _named(old, new)]
    return list(_sorted([o for o in out if o is not None]) or [])


def _connect(old: Obj | None, new: Obj | None, contextual: bool) -> Obj | None:
    """diff.go:1118 connectDiffs (sidecar service and task; gateways as one object)."""
    return _block("ConsulConnect", "ConsulConnect", old, new, contextual, children=lambda o, n: [
        _block("SidecarService", "ConsulSidecarService", o["SidecarService"],
               n["SidecarService"], contextual, children=lambda a, b: [
                   _proxy(a["Proxy"], b["Proxy"], contextual)]),
        _block("SidecarTask", "SidecarTask", o["SidecarTask"], n["SidecarTask"], contextual,
               fields_contextual=False, children=lambda a, b: [
                   _map_object("Config", a["Config"], b["Config"], contextual),
                   _resources(a["Resources"], b["Resources"], contextual),
                   *_by_position(a["Identities"], b["Identities"],
                                 lambda x, y: _identity(x, y, contextual)),
                   _primitive(a["LogConfig"], b["LogConfig"], "LogConfig", "LogConfig",
                              contextual),
                   *_by_position(a["VolumeMounts"], b["VolumeMounts"], lambda x, y: _block(
                       "VolumeMount", "VolumeMount", x, y, contextual))]),
        _gateway(o["Gateway"], n["Gateway"], contextual)])


def _gateway(old: Obj | None, new: Obj | None, contextual: bool) -> Obj | None:
    """diff.go:1162 connectGatewayDiff and the gateway diffs below it."""
    def named(items: list[Obj] | None, key: Callable[[Obj], str]) -> dict[str, Obj]:
        return {key(x): x for x in items or () if x is not None}

    def by_key(a: list[Obj] | None, b: list[Obj] | None, key: Callable[[Obj], str],
               one: Callable[[Obj | None, Obj | None], Obj | None]) -> list[Obj | None]:
        a_by, b_by = named(a, key), named(b, key)
        out = [one(a_by.get(k), b_by.get(k)) for k in set(a_by) | set(b_by)]
        return list(_sorted([o for o in out if o is not None]) or [])

    def tls(a: Obj | None, b: Obj | None) -> Obj | None:  # :1363
        return _block("TLS", "ConsulGatewayTLSConfig", a, b, contextual, children=lambda x, y: [
            _strings(x["CipherSuites"], y["CipherSuites"], "CipherSuites", contextual),
            _primitive(x["SDS"], y["SDS"], "ConsulGatewayTLSSDSConfig", "SDS", contextual)])

    def headers(name: str, a: Obj | None, b: Obj | None) -> Obj | None:  # :1586
        return _block(name, "ConsulHTTPHeaderModifiers", a, b, contextual, children=lambda x, y: [
            _strings(x["Remove"], y["Remove"], "Remove", contextual)])

    def ingress_service(a: Obj | None, b: Obj | None) -> Obj | None:  # :1505
        out = _block("ConsulIngressService", "ConsulIngressService", a, b, contextual,
                     children=lambda x, y: [
                         _strings(x["Hosts"], y["Hosts"], "Hosts", contextual),
                         tls(x["TLS"], y["TLS"]),
                         headers("RequestHeaders", x["RequestHeaders"], y["RequestHeaders"]),
                         headers("ResponseHeaders", x["ResponseHeaders"], y["ResponseHeaders"])])
        if out is not None:  # the *uint32 limits are flattened by hand in Nomad
            flats = [flat(a, "ConsulIngressService"), flat(b, "ConsulIngressService")]
            for f, svc in zip(flats, (a, b), strict=True):
                for key in ("MaxConnections", "MaxPendingRequests", "MaxConcurrentRequests"):
                    if f is not None and svc is not None and svc[key] is not None:
                        f[key] = str(svc[key])
            out["Fields"] = _fields(flats[0], flats[1], contextual)
        return out

    def listener(a: Obj | None, b: Obj | None) -> Obj | None:  # :1439
        return _block("Listener", "ConsulIngressListener", a, b, contextual,
                      children=lambda x, y: by_key(x["Services"], y["Services"],
                                                   lambda svc: str(svc["Name"]), ingress_service))

    def proxy(a: Obj | None, b: Obj | None) -> Obj | None:  # :1617
        def binds(x: Obj, y: Obj) -> Obj | None:  # :1670
            bx, by = x["EnvoyGatewayBindAddresses"], y["EnvoyGatewayBindAddresses"]
            if bx == by:
                return None

            def hostport(m: dict[str, Obj] | None) -> dict[str, str]:
                return {k: (f"[{v['Address']}]" if ":" in v["Address"] else v["Address"])
                        + f":{v['Port']}" for k, v in (m or {}).items()}

            kind = ADDED if not bx else DELETED if not by else EDITED
            return _object("EnvoyGatewayBindAddresses", kind,
                           _fields(hostport(bx), hostport(by), contextual))

        out = _block("Proxy", "ConsulGatewayProxy", a, b, contextual, children=lambda x, y: [
            binds(x, y), _map_object("Config", x["Config"], y["Config"], contextual)])
        if out is not None and a is not None and b is not None:
            flats = [flat(a, "ConsulGatewayProxy"), flat(b, "ConsulGatewayProxy")]
            for f, p in zip(flats, (a, b), strict=True):
                if f is not None:
                    timeout = p["ConnectTimeout"]
                    f["ConnectTimeout"] = "" if timeout is None else go_duration(timeout)
            out["Fields"] = _fields(flats[0], flats[1], contextual)
        return out

    def mesh(a: Obj | None, b: Obj | None) -> Obj | None:  # :1212
        if a == b:
            return None
        return _object("Mesh", ADDED if a is None else DELETED if b is None else EDITED, None)

    return _block("Gateway", "ConsulGateway", old, new, contextual, children=lambda o, n: [
        proxy(o["Proxy"], n["Proxy"]),
        _block("Ingress", "ConsulIngressConfigEntry", o["Ingress"], n["Ingress"], contextual,
               children=lambda x, y: [tls(x["TLS"], y["TLS"]), *by_key(
                   x["Listeners"], y["Listeners"], lambda li: f"{li['Protocol']}/{li['Port']}",
                   listener)]),
        _block("Terminating", "ConsulTerminatingConfigEntry", o["Terminating"], n["Terminating"],
               contextual, children=lambda x, y: by_key(
                   x["Services"], y["Services"], lambda svc: str(svc["Name"]),
                   lambda a, b: _block("Service", "ConsulLinkedService", a, b, contextual))),
        mesh(o["Mesh"], n["Mesh"])])


def _proxy(old: Obj | None, new: Obj | None, contextual: bool) -> Obj | None:
    """diff.go:1789 consulProxyDiff."""
    def upstreams(a: list[Obj] | None, b: list[Obj] | None) -> list[Obj | None]:
        def index(u: Obj) -> str:
            return f"{u['Datacenter']}/{u['DestinationName']}"
        a_by = {index(u): u for u in a or ()}
        b_by = {index(u): u for u in b or ()}
        out = [_block("ConsulUpstreams", "ConsulUpstream", a_by.get(k), b_by.get(k), contextual,
                      children=lambda x, y: [_primitive(x["MeshGateway"], y["MeshGateway"],
                                                        "ConsulMeshGateway", "MeshGateway",
                                                        contextual)])
               for k in set(a_by) | set(b_by)]
        return list(_sorted([o for o in out if o is not None]) or [])

    def expose(a: Obj | None, b: Obj | None) -> Obj | None:
        if a == b:
            return None
        kind = ADDED if not a or not a["Paths"] else DELETED if not b or not b[
            "Paths"] else EDITED
        paths = _set((a or {}).get("Paths"), (b or {}).get("Paths"), "ConsulExposePath",
                     "Paths", contextual, lambda p: "")
        return _object("Expose", kind, None, paths)

    def tproxy(a: Obj | None, b: Obj | None) -> Obj | None:
        if a == b:
            return None
        sets = [_strings((a or {}).get(k), (b or {}).get(k), k, contextual)
                for k in ("ExcludeInboundPorts", "ExcludeOutboundPorts", "ExcludeOutboundCIDRs",
                          "ExcludeUIDs")]
        out = _block("TransparentProxy", "ConsulTransparentProxy", a, b, contextual)
        if out is not None:
            out["Objects"] = [s for s in sets if s is not None and s["Type"] != NONE] or None
        return out

    return _block("ConsulProxy", "ConsulProxy", old, new, contextual, children=lambda o, n: [
        *upstreams(o["Upstreams"], n["Upstreams"]), expose(o["Expose"], n["Expose"]),
        tproxy(o["TransparentProxy"], n["TransparentProxy"]),
        _map_object("Config", o["Config"], n["Config"], contextual)])


# --- scheduler/annotate.go ----------------------------------------------------------------------

_UPDATE_NAMES = (("Ignore", "ignore"), ("Place", "create"), ("Migrate", "migrate"),
                 ("Stop", "destroy"), ("Canary", "canary"), ("InPlaceUpdate", "in-place update"),
                 ("DestructiveUpdate", "create/destroy update"))


def annotate(diff: Obj, desired_updates: dict[str, dict[str, int]]) -> Obj:
    """scheduler/annotate.go Annotate: group Updates, count and task annotations (in place)."""
    for tg in diff["TaskGroups"] or ():
        counts = desired_updates.get(tg["Name"])
        if counts is not None:
            tg["Updates"] = {name: counts[key] for key, name in _UPDATE_NAMES
                             if counts.get(key)} or None
        for f in tg["Fields"] or ():
            if f["Name"] == "Count":
                old, new = int(f["Old"] or 0), int(f["New"] or 0)
                if old != new:
                    f["Annotations"] = ["forces create" if old < new else "forces destroy"]
        for task in tg["Tasks"] or ():
            _annotate_task(task, tg)
    return diff


def _annotate_task(task: Obj, group: Obj) -> None:
    """scheduler/annotate.go annotateTask."""
    if task["Type"] == NONE:
        return
    if group["Type"] in (ADDED, DELETED) and task["Type"] in (ADDED, DELETED):
        task["Annotations"] = ["forces create" if task["Type"] == ADDED else "forces destroy"]
        return
    destructive = any(f["Name"] != "KillTimeout" for f in task["Fields"] or ())
    if not destructive:
        for o in task["Objects"] or ():
            if o["Name"] in ("Service", "Constraint", "Affinity", "Spread"):
                continue
            if o["Name"] == "LogConfig":
                if any(f["Name"] == "Disabled" for f in o["Fields"] or ()):
                    destructive = True
                    break
                continue
            destructive = True
            break
    task["Annotations"] = ["forces create/destroy update" if destructive
                           else "forces in-place update"]


def plan_diff(old: Obj | None, new: Obj, desired_updates: dict[str, dict[str, int]], *,
              contextual: bool = True) -> Obj:
    """What `POST /v1/job/<id>/plan` with Diff answers: Job.Diff + Annotate (job_endpoint.go)."""
    return annotate(job_diff(old, new, contextual), desired_updates)
