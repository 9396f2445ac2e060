"""`api.Job.Canonicalize()` on a decoded api job (Nomad's api package at aa026cc).

The job is the dict `gojson.decode` produced: every field present, `None` for a nil pointer. Each
function mirrors the Go method named in its docstring and changes the dict in place, as Go does.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from typing import Any

from nomadmesh.testing.nomad_api._json import clone
from nomadmesh.testing.nomad_api.errors import AgentPanic

SECOND = 1_000_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE

Obj = dict[str, Any]


def _each(items: list[Any] | None) -> Iterator[Obj]:
    """The elements of a slice of pointers that Canonicalize dereferences (nil ones panic)."""
    for item in items or ():
        if item is None:
            raise AgentPanic("panic in Canonicalize: runtime error: invalid memory address or "
                             "nil pointer dereference")
        yield item


def _default(obj: Obj, key: str, value: Any) -> None:
    if obj[key] is None:
        obj[key] = value


def _nil_if_empty(obj: Obj, *keys: str) -> None:
    for key in keys:
        if not obj[key]:
            obj[key] = None


def canonicalize_job(j: Obj) -> None:
    """api/jobs.go:1164 Job.Canonicalize."""
    _default(j, "ID", "")
    _default(j, "Name", j["ID"])
    for key, value in (("ParentID", ""), ("Namespace", "default"), ("Priority", 50),
                       ("Stop", False), ("Region", "global"), ("NodePool", ""),
                       ("Type", "service"), ("AllAtOnce", False), ("ConsulNamespace", ""),
                       ("VaultNamespace", ""), ("NomadTokenID", ""), ("Status", ""),
                       ("StatusDescription", ""), ("Stable", False), ("Version", 0),
                       ("CreateIndex", 0), ("ModifyIndex", 0), ("JobModifyIndex", 0)):
        _default(j, key, value)
    if j["Periodic"] is not None:
        _periodic(j["Periodic"])
    if j["Update"] is not None:
        _update(j["Update"])
    elif j["Type"] in ("service", "system"):
        j["Update"] = default_update()
    if j["Multiregion"] is not None:
        _multiregion(j["Multiregion"])
    for tg in _each(j["TaskGroups"]):
        _task_group(tg, j)
    for spread in _each(j["Spreads"]):
        _default(spread, "Weight", 50)  # tasks.go:353 Spread.Canonicalize
    for a in _each(j["Affinities"]):
        _default(a, "Weight", 50)  # tasks.go:246 Affinity.Canonicalize
    if j["UI"] is not None and not j["UI"]["Links"]:
        j["UI"]["Links"] = None  # jobs.go:1018 JobUIConfig.Canonicalize


def default_update() -> Obj:
    """api/jobs.go:637 DefaultUpdateStrategy."""
    return {"Stagger": 30 * SECOND, "MaxParallel": 1, "HealthCheck": "checks",
            "MinHealthyTime": 10 * SECOND, "HealthyDeadline": 5 * MINUTE,
            "ProgressDeadline": 10 * MINUTE, "Canary": 0, "AutoRevert": False,
            "AutoPromote": False}


def _update(u: Obj) -> None:
    """api/jobs.go:739 UpdateStrategy.Canonicalize."""
    for key, value in default_update().items():
        _default(u, key, value)


def _update_empty(u: Obj) -> bool:
    """api/jobs.go UpdateStrategy.Empty (after Canonicalize's :779)."""
    return not any(u[k] for k in ("Stagger", "MaxParallel", "HealthCheck", "MinHealthyTime",
                                  "HealthyDeadline", "ProgressDeadline", "AutoRevert",
                                  "AutoPromote", "Canary"))


def _merge(base: Obj, over: Obj) -> Obj:
    """The Merge methods of UpdateStrategy, ReschedulePolicy, MigrateStrategy, RestartPolicy."""
    out = clone(base)
    for key, value in over.items():
        if value is not None:
            out[key] = value
    return out


def _multiregion(m: Obj) -> None:
    """api/jobs.go:829 Multiregion.Canonicalize."""
    if m["Strategy"] is None:
        m["Strategy"] = {"MaxParallel": 0, "OnFailure": ""}
    else:
        _default(m["Strategy"], "MaxParallel", 0)
        _default(m["Strategy"], "OnFailure", "")
    _default(m, "Regions", [])
    for region in _each(m["Regions"]):
        _default(region, "Count", 1)
        _default(region, "Datacenters", [])
        _default(region, "Meta", {})


def _periodic(p: Obj) -> None:
    """api/jobs.go:905 PeriodicConfig.Canonicalize."""
    _default(p, "Enabled", True)
    _default(p, "Spec", "")
    _default(p, "Specs", [])
    _default(p, "SpecType", "cron")
    _default(p, "ProhibitOverlap", False)
    if not p["TimeZone"]:
        p["TimeZone"] = "UTC"


def default_reschedule(job_type: str) -> Obj:
    """api/tasks.go:260 NewDefaultReschedulePolicy."""
    if job_type == "service":
        return {"Attempts": 0, "Interval": 0, "Delay": 30 * SECOND,
                "DelayFunction": "exponential", "MaxDelay": HOUR, "Unlimited": True}
    if job_type == "batch":
        return {"Attempts": 1, "Interval": 24 * HOUR, "Delay": 5 * SECOND,
                "DelayFunction": "constant", "MaxDelay": 0, "Unlimited": False}
    return {"Attempts": 0, "Interval": 0, "Delay": 0, "DelayFunction": "", "MaxDelay": 0,
            "Unlimited": False}


def default_restart(job_type: str) -> Obj:
    """api/tasks.go defaultServiceJobRestartPolicy / defaultBatchJobRestartPolicy."""
    if job_type in ("service", "system"):
        return {"Interval": 30 * MINUTE, "Attempts": 2, "Delay": 15 * SECOND, "Mode": "fail",
                "RenderTemplates": False}
    return {"Interval": 24 * HOUR, "Attempts": 3, "Delay": 15 * SECOND, "Mode": "fail",
            "RenderTemplates": False}


def _migrate_defaults() -> Obj:
    """api/tasks.go:395 DefaultMigrateStrategy."""
    return {"MaxParallel": 1, "HealthCheck": "checks", "MinHealthyTime": 10 * SECOND,
            "HealthyDeadline": 5 * MINUTE}


def _task_group(g: Obj, job: Obj) -> None:
    """api/tasks.go:530 TaskGroup.Canonicalize."""
    job_type = job["Type"]
    _default(g, "Name", "")
    if g["Count"] is None:
        scaling = g["Scaling"]
        g["Count"] = scaling["Min"] if scaling is not None and scaling["Min"] is not None else 1
    if g["Scaling"] is not None:
        _scaling(g["Scaling"], g["Count"])
    if g["EphemeralDisk"] is None:
        g["EphemeralDisk"] = {"Sticky": False, "Migrate": False, "SizeMB": 300}
    else:
        for key, value in (("Sticky", False), ("Migrate", False), ("SizeMB", 300)):
            _default(g["EphemeralDisk"], key, value)
    if g["Consul"] is not None:
        if g["Consul"]["Namespace"] == "" and job["ConsulNamespace"] is not None:
            g["Consul"]["Namespace"] = job["ConsulNamespace"]  # consul.go:53 MergeNamespace
        _consul(g["Consul"])
    if job["Update"] is not None and g["Update"] is not None:
        g["Update"] = _merge(job["Update"], g["Update"])
    elif job["Update"] is not None and not _update_empty(job["Update"]):
        g["Update"] = clone(job["Update"])
    if g["Update"] is not None:
        _update(g["Update"])
    if job["Reschedule"] is not None and g["ReschedulePolicy"] is not None:
        g["ReschedulePolicy"] = _merge(job["Reschedule"], g["ReschedulePolicy"])
    elif job["Reschedule"] is not None:
        g["ReschedulePolicy"] = clone(job["Reschedule"])
    if g["ReschedulePolicy"] is None and job_type not in ("sysbatch", "system"):
        g["ReschedulePolicy"] = default_reschedule(job_type)
    if g["ReschedulePolicy"] is not None:
        for key, value in default_reschedule(job_type).items():
            _default(g["ReschedulePolicy"], key, value)
    if job["Migrate"] is not None and g["Migrate"] is not None:
        g["Migrate"] = _merge(job["Migrate"], g["Migrate"])
    elif job["Migrate"] is not None:
        g["Migrate"] = clone(job["Migrate"])
    if g["Migrate"] is None and job_type == "service":
        g["Migrate"] = {"MaxParallel": None, "HealthCheck": None, "MinHealthyTime": None,
                        "HealthyDeadline": None}
    if g["Migrate"] is not None:
        for key, value in _migrate_defaults().items():
            _default(g["Migrate"], key, value)
    restart = default_restart(job_type)
    if g["RestartPolicy"] is not None:
        restart = _merge(restart, g["RestartPolicy"])
    g["RestartPolicy"] = restart
    for t in _each(g["Tasks"]):
        _task(t, g, job)
    for spread in _each(g["Spreads"]):
        _default(spread, "Weight", 50)
    for a in _each(g["Affinities"]):
        _default(a, "Weight", 50)
    for s in _each(g["Services"]):
        _service(s, None, g, job)
    if g["Disconnect"] is not None:
        _default(g["Disconnect"], "Replace", True)  # tasks.go:147 DisconnectStrategy
        _default(g["Disconnect"], "Reconcile", "best_score")


def _scaling(p: Obj, count: int) -> None:
    """api/scaling.go:39 ScalingPolicy.Canonicalize."""
    _default(p, "Enabled", True)
    _default(p, "Min", count)
    if p["Type"] == "":
        p["Type"] = "horizontal"


def _consul(c: Obj) -> None:
    """api/consul.go:27 Consul.Canonicalize."""
    if c["Cluster"] == "":
        c["Cluster"] = "default"


def _resources(r: Obj) -> None:
    """api/resources.go:33 Resources.Canonicalize."""
    if r["Cores"] is None:
        r["Cores"] = 0
        _default(r, "CPU", 100)
    _default(r, "CPU", 0)
    _default(r, "MemoryMB", 300)
    for d in _each(r["Devices"]):
        _default(d, "Count", 1)  # resources.go:324 RequestedDevice.Canonicalize
        for a in _each(d["Affinities"]):
            _default(a, "Weight", 50)
    numa = r["NUMA"]
    if numa is not None:  # resources.go:135 NUMAResource.Canonicalize
        if numa["Affinity"] == "":
            numa["Affinity"] = "none"
        _nil_if_empty(numa, "Devices")


def _default_resources() -> Obj:
    """api/resources.go DefaultResources, as a full Resources value."""
    return {"CPU": 100, "Cores": 0, "MemoryMB": 300, "MemoryMaxMB": None, "DiskMB": None,
            "Networks": None, "Devices": None, "NUMA": None, "SecretsMB": None, "IOPS": None}


def _log_config(log: Obj | None) -> Obj:
    """api/tasks.go DefaultLogConfig / LogConfig.Canonicalize."""
    if log is None:
        return {"MaxFiles": 10, "MaxFileSizeMB": 10, "Enabled": None, "Disabled": False}
    _default(log, "MaxFiles", 10)
    _default(log, "MaxFileSizeMB", 10)
    _default(log, "Disabled", False)
    return log


def _task(t: Obj, tg: Obj, job: Obj) -> None:
    """api/tasks.go:804 Task.Canonicalize."""
    if t["Resources"] is None:
        t["Resources"] = {k: None for k in _default_resources()}
    _resources(t["Resources"])
    _default(t, "KillTimeout", 5 * SECOND)
    t["LogConfig"] = _log_config(t["LogConfig"])
    for a in _each(t["Artifacts"]):
        _artifact(a)
    if t["Vault"] is not None:
        _vault(t["Vault"])
    if t["Consul"] is not None:
        _consul(t["Consul"])
    for tmpl in _each(t["Templates"]):
        _template(tmpl)
    for s in _each(t["Secrets"]):
        _nil_if_empty(s, "Config", "Env")  # tasks.go:1062 Secret.Canonicalize
    for s in _each(t["Services"]):
        _service(s, t, tg, job)
    for a in _each(t["Affinities"]):
        _default(a, "Weight", 50)
    for vm in _each(t["VolumeMounts"]):
        _volume_mount(vm)
    csi = t["CSIPluginConfig"]
    if csi is not None:  # tasks.go:1241 TaskCSIPluginConfig.Canonicalize
        if csi["MountDir"] == "":
            csi["MountDir"] = "/csi"
        if csi["StagePublishBaseDir"] == "":
            csi["StagePublishBaseDir"] = "/local/csi"
        if csi["HealthTimeout"] == 0:
            csi["HealthTimeout"] = 30 * SECOND
    if t["RestartPolicy"] is None:
        t["RestartPolicy"] = clone(tg["RestartPolicy"])
    else:
        t["RestartPolicy"] = _merge(tg["RestartPolicy"], t["RestartPolicy"])


def _volume_mount(vm: Obj) -> None:
    """api/tasks.go:477 VolumeMount.Canonicalize."""
    _default(vm, "PropagationMode", "private")
    _default(vm, "ReadOnly", False)
    _default(vm, "SELinuxLabel", "")


def _artifact(a: Obj) -> None:
    """api/tasks.go:869 TaskArtifact.Canonicalize."""
    _default(a, "GetterMode", "any")
    _default(a, "GetterInsecure", False)
    _default(a, "GetterSource", "")
    _nil_if_empty(a, "GetterOptions", "GetterHeaders")
    if a["RelativeDest"] is None:
        if a["GetterMode"] == "file":
            a["RelativeDest"] = posixpath.normpath(
                posixpath.join("local", posixpath.basename(a["GetterSource"].rstrip("/"))
                               or "."))
        else:
            a["RelativeDest"] = "local/"


def _template(tmpl: Obj) -> None:
    """api/tasks.go:965 Template.Canonicalize."""
    _default(tmpl, "SourcePath", "")
    _default(tmpl, "DestPath", "")
    _default(tmpl, "EmbeddedTmpl", "")
    _default(tmpl, "ChangeMode", "restart")
    if tmpl["ChangeSignal"] is None:
        tmpl["ChangeSignal"] = "SIGHUP" if tmpl["ChangeMode"] == "signal" else ""
    else:
        tmpl["ChangeSignal"] = tmpl["ChangeSignal"].upper()
    script = tmpl["ChangeScript"]
    if script is not None:  # tasks.go:927 ChangeScript.Canonicalize
        _default(script, "Command", "")
        _default(script, "Args", [])
        _default(script, "Timeout", 5 * SECOND)
        _default(script, "FailOnError", False)
        _default(script, "RunOnFirstRender", False)
    for key, value in (("Once", False), ("Splay", 5 * SECOND), ("Perms", "0644"),
                       ("LeftDelim", "{{"), ("RightDelim", "}}"), ("Envvars", False),
                       ("ErrMissingKey", False), ("VaultGrace", 0)):
        _default(tmpl, key, value)


def _vault(v: Obj) -> None:
    """api/tasks.go:1030 Vault.Canonicalize."""
    _default(v, "Env", True)
    _default(v, "DisableFile", False)
    _default(v, "Namespace", "")
    if v["Cluster"] == "":
        v["Cluster"] = "default"
    _default(v, "ChangeMode", "restart")
    _default(v, "ChangeSignal", "SIGHUP")
    _default(v, "AllowTokenExpiration", False)


def _service(s: Obj, t: Obj | None, tg: Obj, job: Obj) -> None:
    """api/services.go:274 Service.Canonicalize."""
    if s["Name"] == "":
        s["Name"] = (f"{job['Name']}-{tg['Name']}-{t['Name']}" if t is not None
                     else f"{job['Name']}-{tg['Name']}")
    if s["AddressMode"] == "":
        s["AddressMode"] = "auto"
    if s["OnUpdate"] == "":
        s["OnUpdate"] = "require_healthy"
    if s["Provider"] == "":
        s["Provider"] = "consul"
    if s["Cluster"] == "":
        s["Cluster"] = "default"
    _nil_if_empty(s, "Meta", "CanaryMeta", "TaggedAddresses")
    if s["Connect"] is not None:
        _connect(s["Connect"])
    weights = s["Weights"]
    if weights is not None:  # services.go:348 ServiceWeights.Canonicalize
        if weights["Passing"] <= 0:
            weights["Passing"] = 1
        if weights["Warning"] <= 0:
            weights["Warning"] = 1
    for check in s["Checks"] or ():
        restart = _merge_check_restart(s["CheckRestart"], check["CheckRestart"])
        if restart is not None:
            _default(restart, "Grace", SECOND)  # services.go:144 CheckRestart.Canonicalize
        check["CheckRestart"] = restart
        for key in ("SuccessBeforePassing", "FailuresBeforeCritical", "FailuresBeforeWarning"):
            if check[key] < 0:
                check[key] = 0
        if check["OnUpdate"] == "":
            check["OnUpdate"] = s["OnUpdate"]


def _merge_check_restart(c: Obj | None, o: Obj | None) -> Obj | None:
    """api/services.go CheckRestart.Merge (the service's, overridden by the check's)."""
    if c is None:
        return o
    out = clone(c)
    if o is None:
        return out
    if o["Limit"] > 0:
        out["Limit"] = o["Limit"]
    if o["Grace"] is not None:
        out["Grace"] = o["Grace"]
    if o["IgnoreWarnings"]:
        out["IgnoreWarnings"] = o["IgnoreWarnings"]
    return out


def _connect(cc: Obj) -> None:
    """api/consul.go:68 ConsulConnect.Canonicalize and the blocks below it."""
    css = cc["SidecarService"]
    if css is not None:  # consul.go:88
        _nil_if_empty(css, "Tags", "Meta")
        if css["Proxy"] is not None:
            _proxy(css["Proxy"])
    st = cc["SidecarTask"]
    if st is not None:  # consul.go:122 SidecarTask.Canonicalize
        _nil_if_empty(st, "Config", "Env")
        if st["Resources"] is None:
            st["Resources"] = _default_resources()
        else:
            _resources(st["Resources"])
        st["LogConfig"] = _log_config(st["LogConfig"])
        _nil_if_empty(st, "Meta")
        _default(st, "KillTimeout", 5 * SECOND)
        _default(st, "ShutdownDelay", 0)
        for vm in _each(st["VolumeMounts"]):
            _volume_mount(vm)
    gateway = cc["Gateway"]
    if gateway is not None:  # consul.go:368
        if gateway["Proxy"] is not None:  # consul.go:414
            p = gateway["Proxy"]
            _default(p, "ConnectTimeout", 5 * SECOND)
            _nil_if_empty(p, "EnvoyGatewayBindAddresses", "Config")
        ingress = gateway["Ingress"]
        if ingress is not None:  # consul.go:713
            _nil_if_empty(ingress, "Listeners")
            for listener in filter(None, ingress["Listeners"] or ()):  # consul.go:662
                if listener["Protocol"] == "":
                    listener["Protocol"] = "tcp"
                _nil_if_empty(listener, "Services")
                for svc in filter(None, listener["Services"] or ()):  # consul.go:617
                    _nil_if_empty(svc, "Hosts")
                    for key in ("RequestHeaders", "ResponseHeaders"):
                        if svc[key] is not None:  # consul.go:562
                            _nil_if_empty(svc[key], "Add", "Set", "Remove")
        terminating = gateway["Terminating"]
        if terminating is not None:  # consul.go:785
            _nil_if_empty(terminating, "Services")


def _proxy(cp: Obj) -> None:
    """api/consul.go:179 ConsulProxy.Canonicalize."""
    expose = cp["Expose"]
    if expose is not None:  # consul.go:332
        _nil_if_empty(expose, "Paths", "Path")
    _nil_if_empty(cp, "Upstreams")
    tp = cp["TransparentProxy"]
    if tp is not None:  # consul.go:309
        _nil_if_empty(tp, "ExcludeInboundPorts", "ExcludeOutboundCIDRs", "ExcludeOutboundPorts",
                      "ExcludeUIDs")
    for upstream in filter(None, cp["Upstreams"] or ()):  # consul.go:262 (nil: no-op)
        _nil_if_empty(upstream, "Config")
    _nil_if_empty(cp, "Config")
