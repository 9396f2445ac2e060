"""How an allocation moves to a new job version, as Nomad's scheduler decides (aa026cc).

`update_kind` is scheduler/util.go:805 genericAllocUpdateFn's first steps: the same job modify
index is "ignore", a change `tasksUpdated` (scheduler/util.go:167) reports is "destructive", anything
else "inplace". Node checks (a node gone, out of the job's datacenters or pool) belong to the
cluster, which knows the allocation's node.
"""

from __future__ import annotations

from typing import Any, Literal

from nomadmesh.testing.nomad_api.admission import spec_changed

Obj = dict[str, Any]
UpdateKind = Literal["ignore", "inplace", "destructive"]


def update_kind(old: Obj, new: Obj, group: str) -> UpdateKind:
    """"ignore", "inplace" or "destructive" for an allocation of `group` from `old` to `new`."""
    if old["JobModifyIndex"] and old["JobModifyIndex"] == new["JobModifyIndex"]:
        return "ignore"
    if not old["JobModifyIndex"] and not new["JobModifyIndex"] and not spec_changed(old, new):
        return "ignore"
    if tasks_updated(new, old, group) is not None:
        return "destructive"
    return "inplace"


def _group(job: Obj, name: str) -> Obj | None:
    return next((g for g in job["TaskGroups"] or () if g["Name"] == name), None)


def _map(value: Any) -> Any:
    """Go's maps.Equal and slices.EqualFunc treat nil and empty alike."""
    return value or {}


def _list(value: Any) -> Any:
    return value or []


def tasks_updated(a_job: Obj, b_job: Obj, group: str) -> str | None:
    """scheduler/util.go:167 tasksUpdated: None when the same, else what changed (Nomad's label)."""
    a, b = _group(a_job, group), _group(b_job, group)
    if a is None or b is None:
        return "task group"
    a_tasks, b_tasks = _list(a["Tasks"]), _list(b["Tasks"])
    if len(a_tasks) != len(b_tasks):
        return "number of tasks"
    if a["EphemeralDisk"] != b["EphemeralDisk"]:
        return "ephemeral disk"
    for check in (_networks(a["Networks"], b["Networks"]), _consul(a["Consul"], b["Consul"]),
                  _connect_services(a["Services"], b["Services"])):
        if check is not None:
            return check
    if _map(a["Volumes"]) != _map(b["Volumes"]):
        return "volume request"
    if _render(a["RestartPolicy"]) != _render(b["RestartPolicy"]):
        return "group restart render_templates"
    for at in a_tasks:
        bt = next((t for t in b_tasks if t["Name"] == at["Name"]), None)
        if bt is None:
            return "task deleted"
        for key, label in (("Driver", "task driver"), ("User", "task user")):
            if at[key] != bt[key]:
                return label
        if _map(at["Config"]) != _map(bt["Config"]):
            return "task config"
        if _map(at["Env"]) != _map(bt["Env"]):
            return "task env"
        if _list(at["Artifacts"]) != _list(bt["Artifacts"]):
            return "task artifacts"
        if at["Vault"] != bt["Vault"]:
            return "task vault"
        if _list(at["Secrets"]) != _list(bt["Secrets"]):
            return "task secrets"
        consul = _consul(at["Consul"], bt["Consul"])
        if consul is not None:
            return consul
        if _list(at["Templates"]) != _list(bt["Templates"]):
            return "task templates"
        if at["CSIPluginConfig"] != bt["CSIPluginConfig"]:
            return "task csi config"
        if _list(at["VolumeMounts"]) != _list(bt["VolumeMounts"]):
            return "task volume mount"
        if combined_meta(a_job, group, at["Name"]) != combined_meta(b_job, group, bt["Name"]):
            return "task meta"
        ra, rb = at["Resources"] or {}, bt["Resources"] or {}
        network = _networks(ra.get("Networks"), rb.get("Networks"))
        if network is not None:
            return network
        for key, label in (("CPU", "task cpu"), ("Cores", "task cores"),
                           ("MemoryMB", "task memory"), ("MemoryMaxMB", "task memory max")):
            if ra.get(key) != rb.get(key):
                return label
        if _list(ra.get("Devices")) != _list(rb.get("Devices")):
            return "task devices"
        if ra.get("NUMA") != rb.get("NUMA"):
            return "numa"
        if ra.get("SecretsMB") != rb.get("SecretsMB"):
            return "task secrets"
        if at["Identity"] != bt["Identity"] or _list(at["Identities"]) != _list(bt["Identities"]):
            return "task identity"
        if (at["LogConfig"] or {}).get("Disabled") != (bt["LogConfig"] or {}).get("Disabled"):
            return "task log disabled"
        if _render(at["RestartPolicy"]) != _render(bt["RestartPolicy"]):
            return "task restart render_templates"
    return None


def combined_meta(job: Obj, group: str, task: str) -> dict[str, str]:
    """nomad/structs/structs.go:5010 Job.CombinedTaskMeta: task over group over job meta."""
    g = _group(job, group)
    if g is None:
        return dict(job["Meta"] or {})
    t = next((t for t in g["Tasks"] or () if t["Name"] == task), None)
    meta = dict((t or {}).get("Meta") or {})
    for source in (g["Meta"] or {}, job["Meta"] or {}):
        for key, value in source.items():
            meta.setdefault(key, value)
    return meta


def _render(policy: Obj | None) -> bool:
    """scheduler/util.go:528 renderTemplatesUpdated's view of a restart policy."""
    return policy is not None and bool(policy["RenderTemplates"])


def _consul(a: Obj | None, b: Obj | None) -> str | None:
    """scheduler/util.go:327 consulUpdated."""
    if (a or {}).get("Namespace", "") != (b or {}).get("Namespace", ""):
        return "consul namespace"
    if a is not None and b is not None:
        if a["Cluster"] != b["Cluster"]:
            return "consul cluster"
        if a["Partition"] != b["Partition"]:
            return "consul partition"
    return None


def _connect_services(a_services: list[Obj] | None, b_services: list[Obj] | None) -> str | None:
    """scheduler/util.go:352 connectServiceUpdated."""
    for sa in a_services or ():
        if sa["Connect"] is None:
            continue
        sb = next((s for s in b_services or () if s["Name"] == sa["Name"]), None)
        if sb is None:
            continue
        changed = _connect(sa["Connect"], sb["Connect"])
        if changed is not None:
            return changed
        if sa["PortLabel"] != sb["PortLabel"]:
            return "connect service port label"
        if sa["Cluster"] != sb["Cluster"]:
            return "connect service cluster"
    return None


def _connect(a: Obj | None, b: Obj | None) -> str | None:
    """scheduler/util.go:409 connectUpdated and :442 connectSidecarServiceUpdated."""
    if a is None and b is None:
        return None
    if a is None:
        return "connect added"
    if b is None:
        return "connect removed"
    if a["Native"] != b["Native"]:
        return "connect native"
    if a["Gateway"] != b["Gateway"]:
        return "connect gateway"
    if a["SidecarTask"] != b["SidecarTask"]:
        return "connect sidecar task"
    ssa, ssb = a["SidecarService"], b["SidecarService"]
    if ssa is None and ssb is None:
        return None
    if ssa is None:
        return "connect service add"
    if ssb is None:
        return "connect service delete"
    if ssa["Port"] != ssb["Port"]:
        return "connect port"
    return None


def _networks(a: list[Obj] | None, b: list[Obj] | None) -> str | None:
    """scheduler/util.go:466 networkUpdated (dynamic port values do not count)."""
    a, b = a or [], b or []
    if len(a) != len(b):
        return "network lengths"
    for an, bn in zip(a, b, strict=True):
        for key, label in (("Mode", "network mode"), ("MBits", "network mbits"),
                           ("Hostname", "network hostname"), ("DNS", "network dns"),
                           ("CNI", "network cni")):
            if an[key] != bn[key]:
                return label
        if _port_map(an) != _port_map(bn):
            return "network port map"
    return None


def _port_map(n: Obj) -> list[tuple[str, int, int, str]]:
    """scheduler/util.go:505 networkPortMap."""
    ports = [(p["Label"], p["Value"], p["To"], p["HostNetwork"]) for p in n["ReservedPorts"] or ()]
    ports += [(p["Label"], -1, p["To"], p["HostNetwork"]) for p in n["DynamicPorts"] or ()]
    return ports
