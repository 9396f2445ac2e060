"""Job diffs in Nomad's plan format, and the update kind (none, in-place, destructive) of a group.

The shape follows Nomad's `structs.JobDiff`: `Type` (Added, Deleted, Edited, None), `Fields`
(`Name`, `Old`, `New` as strings), `Objects` (nested blocks), `TaskGroups` with `Tasks`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nomadmesh.testing._jobspec import SERVER_FIELDS

ADDED, DELETED, EDITED, NONE = "Added", "Deleted", "Edited", "None"

# Block names as Nomad's diff names them (struct names, singular).
_OBJECT_NAMES = {
    "Constraints": "Constraint", "Affinities": "Affinity", "Spreads": "Spread",
    "Services": "Service", "Checks": "Check", "Networks": "Network", "Templates": "Template",
    "Artifacts": "Artifact", "ReservedPorts": "Static Port", "DynamicPorts": "Dynamic Port",
    "Volumes": "Volume", "VolumeMounts": "VolumeMount", "Update": "Update",
}
# Group fields whose change is applied in place (no new allocation), as Nomad's tasksUpdated.
_INPLACE_GROUP_KEYS = {"Count", "Update", "Services", "Scaling", "Constraints", "Affinities",
                       "Spreads", "Migrate", "Reschedule", "RestartPolicy", "Meta",
                       "StopAfterClientDisconnect", "MaxClientDisconnect", "ShutdownDelay"}
_INPLACE_TASK_KEYS = {"Services", "Constraints", "Affinities", "KillTimeout", "ShutdownDelay",
                      "KillSignal", "Leader", "RestartPolicy"}


def update_kind(old_group: Mapping[str, Any] | None, new_group: Mapping[str, Any] | None) -> str:
    """"none", "inplace" or "destructive": what moving an allocation between two specs takes."""
    if old_group is None or new_group is None:
        return "destructive"
    if old_group == new_group:
        return "none"
    if _without(old_group, _INPLACE_GROUP_KEYS | {"Tasks"}) != _without(
            new_group, _INPLACE_GROUP_KEYS | {"Tasks"}):
        return "destructive"
    old_tasks = {t["Name"]: t for t in old_group.get("Tasks") or []}
    new_tasks = {t["Name"]: t for t in new_group.get("Tasks") or []}
    if old_tasks.keys() != new_tasks.keys():
        return "destructive"
    for name, task in new_tasks.items():
        if _without(task, _INPLACE_TASK_KEYS) != _without(old_tasks[name], _INPLACE_TASK_KEYS):
            return "destructive"
    return "inplace"


def diff_job(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None,
             updates: Mapping[str, Mapping[str, int]]) -> dict[str, Any]:
    """Nomad's JobDiff between a stored and a submitted job; `updates` are the plan's counts."""
    old_spec = _spec(old)
    new_spec = _spec(new)
    fields, objects = _body(old_spec, new_spec, skip={"TaskGroups"})
    groups = _named(old_spec.get("TaskGroups"), new_spec.get("TaskGroups"))
    group_diffs = [_group_diff(name, o, n, updates.get(name, {})) for name, o, n in groups]
    kind = _kind(old, new, bool(fields or objects
                                or any(g["Type"] != NONE for g in group_diffs)))
    return {"Type": kind, "ID": (new or old or {}).get("ID", ""), "Fields": fields or None,
            "Objects": objects or None, "TaskGroups": group_diffs or None}


def _spec(job: Mapping[str, Any] | None) -> dict[str, Any]:
    return {} if job is None else {k: v for k, v in job.items() if k not in SERVER_FIELDS}


def _without(data: Mapping[str, Any], keys: set[str]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in keys}


def _kind(old: Any, new: Any, changed: bool) -> str:
    if old is None and new is not None:
        return ADDED
    if new is None and old is not None:
        return DELETED
    return EDITED if changed else NONE


def _named(old: Any, new: Any) -> list[tuple[str, Any, Any]]:
    old_by = {x["Name"]: x for x in old or []}
    new_by = {x["Name"]: x for x in new or []}
    names = sorted(old_by.keys() | new_by.keys())
    return [(n, old_by.get(n), new_by.get(n)) for n in names]


def _group_diff(name: str, old: Any, new: Any, updates: Mapping[str, int]) -> dict[str, Any]:
    fields, objects = _body(old or {}, new or {}, skip={"Tasks", "Name"})
    tasks = []
    kind_of_group = update_kind(old, new)
    for task_name, o, n in _named((old or {}).get("Tasks"), (new or {}).get("Tasks")):
        t_fields, t_objects = _body(o or {}, n or {}, skip={"Name"})
        t_kind = _kind(o, n, bool(t_fields or t_objects))
        annotations = None
        if t_kind == ADDED:
            annotations = ["forces create"]
        elif t_kind == DELETED:
            annotations = ["forces destroy"]
        elif t_kind == EDITED:
            annotations = ["forces create/destroy update" if kind_of_group == "destructive"
                           else "forces in-place update"]
        tasks.append({"Type": t_kind, "Name": task_name, "Fields": t_fields or None,
                      "Objects": t_objects or None, "Annotations": annotations})
    kind = _kind(old, new, bool(fields or objects or any(t["Type"] != NONE for t in tasks)))
    return {"Type": kind, "Name": name, "Fields": fields or None, "Objects": objects or None,
            "Tasks": tasks or None, "Updates": {k: v for k, v in updates.items() if v} or None}


def _body(old: Mapping[str, Any], new: Mapping[str, Any],
          skip: set[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    fields: list[dict[str, Any]] = []
    objects: list[dict[str, Any]] = []
    for key in sorted((old.keys() | new.keys()) - skip):
        o, n = old.get(key), new.get(key)
        if _is_scalar(o) and _is_scalar(n):
            field = _field(key, o, n)
            if field is not None:
                fields.append(field)
        elif key in ("Meta", "Env") and _is_map(o) and _is_map(n):
            for sub in sorted(set(o or {}) | set(n or {})):
                field = _field(f"{key}[{sub}]", (o or {}).get(sub), (n or {}).get(sub))
                if field is not None:
                    fields.append(field)
        elif _is_map(o) and _is_map(n):
            obj = _object(_OBJECT_NAMES.get(key, key), o, n)
            if obj is not None:
                objects.append(obj)
        elif _is_list(o) and _is_list(n):
            objects.extend(_list_objects(key, o or [], n or []))
    return fields, objects


def _object(name: str, old: Any, new: Any) -> dict[str, Any] | None:
    if old == new:
        return None
    objects: list[dict[str, Any]] = []
    if name == "Config":
        fields = _flat_fields(_flatten(old or {}), _flatten(new or {}))
    else:
        fields, objects = _body(old or {}, new or {}, skip=set())
    if not fields and not objects and old is not None and new is not None:
        return None
    return {"Type": _kind(old, new, True), "Name": name, "Fields": fields or None,
            "Objects": objects or None}


def _list_objects(key: str, old: list[Any], new: list[Any]) -> list[dict[str, Any]]:
    name = _OBJECT_NAMES.get(key, key)
    if all(_is_scalar(x) for x in [*old, *new]):
        if set(map(_text, old)) == set(map(_text, new)):
            return []
        fields = [{"Type": DELETED, "Name": key, "Old": _text(x), "New": "", "Annotations": None}
                  for x in old if _text(x) not in set(map(_text, new))]
        fields += [{"Type": ADDED, "Name": key, "Old": "", "New": _text(x), "Annotations": None}
                   for x in new if _text(x) not in set(map(_text, old))]
        return [{"Type": EDITED, "Name": key, "Fields": fields, "Objects": None}]
    out: list[dict[str, Any]] = []
    ident = _identity(key)
    old_by = {_ident(x, ident, i): x for i, x in enumerate(old)}
    new_by = {_ident(x, ident, i): x for i, x in enumerate(new)}
    for k in list(old_by) + [k for k in new_by if k not in old_by]:
        o, n = old_by.get(k), new_by.get(k)
        if ident is None and o is not None and n is not None and o != n:
            for pair in ((o, None), (None, n)):
                obj = _object(name, *pair)
                if obj is not None:
                    out.append(obj)
            continue
        obj = _object(name, o, n)
        if obj is not None:
            out.append(obj)
    return out


def _identity(key: str) -> str | None:
    return {"Services": "Name", "Checks": "Name", "ReservedPorts": "Label",
            "DynamicPorts": "Label", "Templates": "DestPath", "Volumes": "Name"}.get(key)


def _ident(item: Any, ident: str | None, position: int) -> Any:
    if ident is not None and isinstance(item, dict) and item.get(ident):
        return item[ident]
    return repr(sorted(item.items())) if isinstance(item, dict) else repr(item)


def _flatten(data: Any, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    if isinstance(data, dict):
        for k, v in data.items():
            out.update(_flatten(v, f"{prefix}[{k}]" if prefix else str(k)))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out.update(_flatten(v, f"{prefix}[{i}]"))
    else:
        out[prefix] = _text(data)
    return out


def _flat_fields(old: Mapping[str, str], new: Mapping[str, str]) -> list[dict[str, Any]]:
    out = []
    for key in sorted(old.keys() | new.keys()):
        field = _field(key, old.get(key), new.get(key))
        if field is not None:
            out.append(field)
    return out


def _field(name: str, old: Any, new: Any) -> dict[str, Any] | None:
    if old == new:
        return None
    kind = ADDED if old is None else DELETED if new is None else EDITED
    return {"Type": kind, "Name": name, "Old": _text(old), "New": _text(new),
            "Annotations": None}


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _is_map(value: Any) -> bool:
    return value is None or isinstance(value, dict)


def _is_list(value: Any) -> bool:
    return value is None or isinstance(value, list)
