"""`ApiJobToStructJob` (command/agent/job_endpoint.go:1128 at aa026cc): api job -> structs job.

The input is a canonicalized api job (`api_canonical.canonicalize_job` ran on it); the output is
the `structs.Job` as a dict with every field of nomad/structs (see `structs_schema.json`), which is
what `GET /v1/job/<id>` serializes. Only what the Go conversion copies is copied: fields it leaves
out (job ParentID, group StopAfterClientDisconnect, resources DiskMB, ...) keep their zero value.
"""

from __future__ import annotations

import base64
import json
from functools import cache
from importlib import resources
from typing import Any

from nomadmesh.testing.nomad_api._json import clone
from nomadmesh.testing.nomad_api.errors import AgentPanic

Obj = dict[str, Any]

_PANIC = "runtime error: invalid memory address or nil pointer dereference"


@cache
def structs_schema() -> dict[str, Any]:
    """nomad/structs field tables (scripts/regen-emulator-structs)."""
    text = resources.files("nomadmesh.testing.nomad_api").joinpath(
        "structs_schema.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def zero(go_type: str) -> Any:
    """The Go zero value of a nomad/structs type, as the agent's JSON encoder writes it."""
    kind, value = _zero_kind(go_type)
    return new(value) if kind == "struct" else value


@cache
def _zero_kind(go_type: str) -> tuple[str, Any]:
    """("struct", name) for a struct value, else ("scalar", its immutable zero value)."""
    named = structs_schema()["named"]
    if go_type in named:
        return _zero_kind(named[go_type])
    if go_type.startswith(("*", "[]", "map[")) or go_type in ("any", "interface{}"):
        return "scalar", None
    if go_type == "string":
        return "scalar", ""
    if go_type == "bool":
        return "scalar", False
    if go_type in structs_schema()["structs"]:
        return "struct", go_type
    return "scalar", 0


@cache
def _layout(name: str) -> tuple[tuple[str, str, Any], ...]:
    """A struct's fields as (JSON key, zero kind, zero value or nested struct name)."""
    return tuple((f["json"], *_zero_kind(f["type"])) for f in structs_schema()["structs"][name])


@cache
def field_types(name: str) -> dict[str, str]:
    """A struct's Go field types by JSON key."""
    return {f["json"]: f["type"] for f in structs_schema()["structs"][name]}


def new(name: str, **values: Any) -> Obj:
    """A structs value with every field zero except `values`."""
    out = {key: new(value) if kind == "struct" else value for key, kind, value in _layout(name)}
    for key, value in values.items():
        if key not in out:
            raise KeyError(f"structs.{name} has no field {key}")
        out[key] = value
    return out


def _take(src: Obj, name: str, keys: str, **values: Any) -> Obj:
    """structs.`name` with the space-separated `keys` copied from api `src` (nil -> Go zero)."""
    out = new(name)
    fields = field_types(name)
    for key in keys.split():
        value = src[key]
        if value is None:
            out[key] = zero(fields[key])
        else:
            out[key] = clone(value) if isinstance(value, (dict, list)) else value
    out.update(values)
    return out


def _need(value: Any, where: str) -> Any:
    """A pointer Go dereferences; nil is a panic in the agent."""
    if value is None:
        raise AgentPanic(f"panic in {where}: {_PANIC}")
    return value


def _clone(value: Any) -> Any:
    """maps.Clone / slices.Clone (nil stays nil)."""
    return clone(value)


def job(j: Obj) -> Obj:
    """command/agent/job_endpoint.go:1128 ApiJobToStructJob (after api Canonicalize)."""
    out = _take(j, "Job", "Stop Region Namespace ID Name Type Priority AllAtOnce Datacenters "
                "NodePool Meta VaultNamespace Version")
    if j["Payload"] is not None:  # []byte: JSON-ready as the encoder writes it, base64
        out["Payload"] = base64.b64encode(j["Payload"]).decode("ascii")
    out["Constraints"] = constraints(j["Constraints"])
    out["Affinities"] = affinities(j["Affinities"])
    out["UI"] = _ui(j["UI"])
    if j["VersionTag"] is not None:
        out["VersionTag"] = _take(j["VersionTag"], "JobVersionTag",
                                  "Name Description TaggedTime")
    update = j["Update"]
    if update is not None and update["MaxParallel"] is not None and update["MaxParallel"] > 0:
        # :1152 only stagger and max_parallel stay at the job level
        out["Update"] = new("UpdateStrategy", Stagger=update["Stagger"] or 0,
                            MaxParallel=update["MaxParallel"])
    if j["Spreads"]:
        out["Spreads"] = [_spread(s) for s in j["Spreads"]]
    p = j["Periodic"]
    if p is not None:
        out["Periodic"] = new("PeriodicConfig", Enabled=p["Enabled"], SpecType=p["SpecType"],
                              ProhibitOverlap=p["ProhibitOverlap"], TimeZone=p["TimeZone"],
                              Spec=p["Spec"] or "", Specs=_clone(p["Specs"]))
    pj = j["ParameterizedJob"]
    if pj is not None:
        out["ParameterizedJob"] = _take(pj, "ParameterizedJobConfig",
                                        "Payload MetaRequired MetaOptional")
    mr = j["Multiregion"]
    if mr is not None:
        strategy = _need(mr["Strategy"], "ApiJobToStructJob")
        out["Multiregion"] = new(
            "Multiregion",
            Strategy=new("MultiregionStrategy", MaxParallel=strategy["MaxParallel"],
                         OnFailure=strategy["OnFailure"]),
            Regions=[new("MultiregionRegion", Name=r["Name"], Count=r["Count"],
                         Datacenters=_clone(r["Datacenters"]), NodePool=r["NodePool"],
                         Meta=_clone(r["Meta"])) for r in mr["Regions"]])
    if j["TaskGroups"]:
        out["TaskGroups"] = [group(out, tg) for tg in j["TaskGroups"]]
    return out


def group(job_out: Obj, g: Obj) -> Obj:
    """command/agent/job_endpoint.go:1227 ApiTgToStructsTG."""
    tg = _take(g, "TaskGroup", "Name Count Meta ShutdownDelay MaxRunDuration")
    tg["Constraints"] = constraints(g["Constraints"])
    tg["Affinities"] = affinities(g["Affinities"])
    tg["Networks"] = networks(g["Networks"])
    tg["Services"] = services(g["Services"], group=True)
    tg["Consul"] = _consul(g["Consul"])
    tg["RestartPolicy"] = _take(g["RestartPolicy"], "RestartPolicy",
                                "Attempts Interval Delay Mode RenderTemplates")
    if g["ReschedulePolicy"] is not None:
        tg["ReschedulePolicy"] = _take(g["ReschedulePolicy"], "ReschedulePolicy",
                                       "Attempts Interval Delay DelayFunction MaxDelay Unlimited")
    d = g["Disconnect"]
    if d is not None:
        tg["Disconnect"] = new("DisconnectStrategy", StopOnClientAfter=d["StopOnClientAfter"],
                               Replace=d["Replace"], Reconcile=d["Reconcile"] or "",
                               LostAfter=d["LostAfter"] or 0)
    if g["Migrate"] is not None:
        tg["Migrate"] = _take(g["Migrate"], "MigrateStrategy",
                              "MaxParallel HealthCheck MinHealthyTime HealthyDeadline")
    if g["Scaling"] is not None:
        tg["Scaling"] = scaling_policy(job_out, tg, None, tg["Count"], g["Scaling"])
    tg["EphemeralDisk"] = _take(g["EphemeralDisk"], "EphemeralDisk", "Sticky SizeMB Migrate")
    if g["Spreads"]:
        tg["Spreads"] = [_spread(s) for s in g["Spreads"]]
    if g["Volumes"]:
        volumes = {}
        for key, v in g["Volumes"].items():
            if v is None or v["Type"] not in ("host", "csi"):
                continue  # :1300 other volume types are dropped
            vol = _take(v, "VolumeRequest",
                        "Name Type ReadOnly Sticky Source AttachmentMode AccessMode PerAlloc")
            if v["MountOptions"] is not None:
                vol["MountOptions"] = _take(v["MountOptions"], "CSIMountOptions",
                                            "FSType MountFlags")
            volumes[key] = vol
        tg["Volumes"] = volumes
    if g["Update"] is not None:
        tg["Update"] = _take(g["Update"], "UpdateStrategy", "Stagger MaxParallel HealthCheck "
                             "MinHealthyTime HealthyDeadline ProgressDeadline Canary AutoRevert "
                             "AutoPromote")
    if g["Tasks"]:
        tg["Tasks"] = []
        for t in g["Tasks"]:
            task_out = task(job_out, tg, t)
            if (task_out["Vault"] is not None and task_out["Vault"]["Namespace"] == ""
                    and job_out["VaultNamespace"] != ""):
                task_out["Vault"]["Namespace"] = job_out["VaultNamespace"]
            tg["Tasks"].append(task_out)
    return tg


def task(job_out: Obj, tg: Obj, t: Obj) -> Obj:
    """command/agent/job_endpoint.go:1376 ApiTaskToStructsTask."""
    out = _take(t, "Task", "Name Driver User Leader Config Env Meta KillTimeout ShutdownDelay "
                "KillSignal Kind")
    out["Constraints"] = constraints(t["Constraints"])
    out["Affinities"] = affinities(t["Affinities"])
    csi = t["CSIPluginConfig"]
    if csi is not None:
        out["CSIPluginConfig"] = _take(csi, "TaskCSIPluginConfig",
                                       "ID Type MountDir StagePublishBaseDir HealthTimeout")
    if t["Identity"] is not None:
        out["Identity"] = _identity(t["Identity"])
    if t["Identities"]:
        out["Identities"] = [_identity(i) for i in t["Identities"] if i is not None]
    if t["RestartPolicy"] is not None:
        out["RestartPolicy"] = _take(t["RestartPolicy"], "RestartPolicy",
                                     "Attempts Interval Delay Mode RenderTemplates")
    out["VolumeMounts"] = volume_mounts(t["VolumeMounts"])
    if t["ScalingPolicies"]:
        out["ScalingPolicies"] = [scaling_policy(job_out, tg, out, 0, _need(p, "scaling"))
                                  for p in t["ScalingPolicies"]]
    out["Services"] = services(t["Services"], group=False)
    out["Resources"] = resources_(t["Resources"])
    out["LogConfig"] = _log_config(t["LogConfig"])
    if t["Artifacts"]:
        out["Artifacts"] = [_take(a, "TaskArtifact", "GetterSource GetterOptions GetterHeaders "
                                  "GetterMode GetterInsecure RelativeDest Chown")
                            for a in t["Artifacts"]]
    if t["Vault"] is not None:
        out["Vault"] = _take(t["Vault"], "Vault", "Role Namespace Cluster Env DisableFile "
                             "ChangeMode ChangeSignal AllowTokenExpiration")
    if t["Secrets"]:
        out["Secrets"] = [_take(s, "Secret", "Name Provider Path Config Env")
                          for s in t["Secrets"]]
    if t["Consul"] is not None:
        out["Consul"] = _consul(t["Consul"])
    if t["Templates"]:
        out["Templates"] = [_template(tmpl) for tmpl in t["Templates"]]
    if t["DispatchPayload"] is not None:
        out["DispatchPayload"] = _take(t["DispatchPayload"], "DispatchPayloadConfig", "File")
    if t["Lifecycle"] is not None:
        out["Lifecycle"] = _take(t["Lifecycle"], "TaskLifecycleConfig", "Hook Sidecar")
    for action in t["Actions"] or ():
        action = _need(action, "ApiActionToStructsAction")
        out["Actions"] = (out["Actions"] or []) + [
            _take(action, "Action", "Name Args Command")]
    schedule = t["Schedule"]
    if schedule is not None and schedule["Cron"] is not None:
        out["Schedule"] = new("TaskSchedule", Cron=_take(schedule["Cron"], "TaskScheduleCron",
                                                         "Start End Timezone"))
    return out


def _template(tmpl: Obj) -> Obj:
    out = _take(tmpl, "Template", "SourcePath DestPath EmbeddedTmpl ChangeMode ChangeSignal "
                "Once Splay Perms Uid Gid LeftDelim RightDelim Envvars VaultGrace ErrMissingKey")
    script = tmpl["ChangeScript"]
    if script is not None:  # :1547 apiChangeScriptToStructsChangeScript
        out["ChangeScript"] = _take(script, "ChangeScript",
                                    "Command Args Timeout FailOnError RunOnFirstRender")
    if tmpl["Wait"] is not None:  # :1536
        out["Wait"] = _take(tmpl["Wait"], "WaitConfig", "Min Max")
    return out


def scaling_policy(job_out: Obj, tg: Obj, t: Obj | None, count: int, ap: Obj) -> Obj:
    """command/agent/scaling_endpoint.go:84 ApiScalingPolicyToStructs (+ structs Canonicalize)."""
    p = new("ScalingPolicy", Type=ap["Type"], Policy=_clone(ap["Policy"]), Target={},
            Enabled=ap["Enabled"] if ap["Enabled"] is not None else True,
            Max=ap["Max"] if ap["Max"] is not None else -1,
            Min=ap["Min"] if ap["Min"] is not None else count)
    canonicalize_scaling(p, job_out, tg, t)
    return p


def canonicalize_scaling(p: Obj, job_out: Obj | None, tg: Obj | None, t: Obj | None) -> None:
    """nomad/structs/structs.go:6381 ScalingPolicy.Canonicalize."""
    if p["Type"] == "":
        p["Type"] = "horizontal"
    if job_out is not None and tg is not None:
        p["Target"] = {"Namespace": job_out["Namespace"], "Job": job_out["ID"],
                       "Group": tg["Name"]}
        if t is not None:
            p["Target"]["Task"] = t["Name"]


def resources_(r: Obj | None) -> Obj | None:
    """command/agent/job_endpoint.go:1598 ApiResourcesToStructs."""
    if r is None:
        return None
    out = new("Resources", CPU=_need(r["CPU"], "ApiResourcesToStructs"),
              MemoryMB=_need(r["MemoryMB"], "ApiResourcesToStructs"))
    for key in ("Cores", "MemoryMaxMB", "IOPS", "SecretsMB"):
        if r[key] is not None:
            out[key] = r[key]
    if r["Networks"]:
        out["Networks"] = networks(r["Networks"])
    if r["Devices"]:
        out["Devices"] = [new("RequestedDevice", Name=d["Name"], Count=d["Count"],
                              Constraints=constraints(d["Constraints"]),
                              Affinities=affinities(d["Affinities"])) for d in r["Devices"]]
    if r["NUMA"] is not None:
        out["NUMA"] = new("NUMA", Affinity=r["NUMA"]["Affinity"],
                          Devices=_clone(r["NUMA"]["Devices"]))
    return out


def networks(nets: list[Obj | None] | None) -> list[Obj] | None:
    """command/agent/job_endpoint.go:1651 ApiNetworkResourceToStructs."""
    if not nets:
        return None
    out = []
    for nw in nets:
        nw = _need(nw, "ApiNetworkResourceToStructs")
        n = new("NetworkResource", Mode=nw["Mode"], CIDR=nw["CIDR"], IP=nw["IP"],
                Hostname=nw["Hostname"], MBits=nw["MBits"] or 0)
        if nw["DNS"] is not None:
            n["DNS"] = _take(nw["DNS"], "DNSConfig", "Servers Searches Options")
        if nw["CNI"] is not None:
            n["CNI"] = _take(nw["CNI"], "CNIConfig", "Args")
        if nw["DynamicPorts"]:
            n["DynamicPorts"] = [_port(p) for p in nw["DynamicPorts"]]
        if nw["ReservedPorts"]:
            n["ReservedPorts"] = [_port(p) for p in nw["ReservedPorts"]]
        out.append(n)
    return out


def _port(p: Obj) -> Obj:
    return _take(p, "Port", "Label Value To HostNetwork IgnoreCollision")


def services(svcs: list[Obj] | None, *, group: bool) -> list[Obj] | None:
    """command/agent/job_endpoint.go:1707 ApiServicesToStructs."""
    if not svcs:
        return None
    out = []
    for s in svcs:
        svc = _take(s, "Service", "Name PortLabel TaskName Tags CanaryTags EnableTagOverride "
                    "AddressMode Address Meta CanaryMeta TaggedAddresses OnUpdate Provider "
                    "Cluster Kind")
        if s["Checks"]:
            svc["Checks"] = []
            for check in s["Checks"]:
                c = _take(check, "ServiceCheck", "Name Type Command Args Path Protocol "
                          "PortLabel Expose AddressMode Interval Timeout InitialStatus Notes "
                          "TLSServerName TLSSkipVerify Header Method Body GRPCService GRPCUseTLS "
                          "SuccessBeforePassing FailuresBeforeCritical FailuresBeforeWarning",
                          OnUpdate=check["OnUpdate"] or s["OnUpdate"])
                if group:
                    c["TaskName"] = check["TaskName"]
                if check["CheckRestart"] is not None:
                    cr = check["CheckRestart"]
                    c["CheckRestart"] = new("CheckRestart", Limit=cr["Limit"],
                                            Grace=_need(cr["Grace"], "ApiServicesToStructs"),
                                            IgnoreWarnings=cr["IgnoreWarnings"])
                svc["Checks"].append(c)
        if s["Connect"] is not None:
            svc["Connect"] = _connect(s["Connect"])
        if s["Identity"] is not None:
            svc["Identity"] = _identity(s["Identity"])
        if s["Weights"] is not None:
            svc["Weights"] = _take(s["Weights"], "ServiceWeights", "Passing Warning")
        out.append(svc)
    return out


def _identity(i: Obj) -> Obj:
    """command/agent/job_endpoint.go:1796 apiWorkloadIdentityToStructs."""
    return _take(i, "WorkloadIdentity", "Name Audience ChangeMode ChangeSignal Env File "
                 "Filepath ServiceName TTL ExtraClaims")


def _connect(c: Obj) -> Obj:
    """command/agent/job_endpoint.go:1824 ApiConsulConnectToStructs and its helpers."""
    out = new("ConsulConnect", Native=c["Native"])
    css = c["SidecarService"]
    if css is not None:
        out["SidecarService"] = _take(css, "ConsulSidecarService",
                                      "Port Tags DisableDefaultTCPCheck Meta")
        out["SidecarService"]["Proxy"] = _proxy(css["Proxy"])
    st = c["SidecarTask"]
    if st is not None:  # :2131
        out["SidecarTask"] = _take(st, "SidecarTask", "Name Driver User Config Env Meta "
                                   "ShutdownDelay KillSignal KillTimeout")
        out["SidecarTask"]["Resources"] = resources_(st["Resources"])
        out["SidecarTask"]["LogConfig"] = _log_config(st["LogConfig"])
        out["SidecarTask"]["VolumeMounts"] = volume_mounts(st["VolumeMounts"])
        if st["Identities"]:
            out["SidecarTask"]["Identities"] = [_identity(i) for i in st["Identities"]
                                                if i is not None]
    gw = c["Gateway"]
    if gw is not None:
        out["Gateway"] = new("ConsulGateway", Proxy=_gateway_proxy(gw["Proxy"]),
                             Ingress=_ingress(gw["Ingress"]),
                             Terminating=_terminating(gw["Terminating"]),
                             Mesh=None if gw["Mesh"] is None else new("ConsulMeshConfigEntry"))
    return out


def _proxy(p: Obj | None) -> Obj | None:
    """command/agent/job_endpoint.go:2031 apiConnectSidecarServiceProxyToStructs."""
    if p is None:
        return None
    out = _take(p, "ConsulProxy", "LocalServiceAddress LocalServicePort Config")
    if p["Upstreams"]:
        out["Upstreams"] = [_upstream(_need(u, "apiUpstreamsToStructs")) for u in p["Upstreams"]]
    expose = p["ExposeConfig"] if p["ExposeConfig"] is not None else p["Expose"]
    if expose is not None:
        paths = expose["Path"] if expose["Path"] is not None else expose["Paths"]
        out["Expose"] = new("ConsulExposeConfig", Paths=[
            _take(_need(x, "apiConsulExposePathsToStructs"), "ConsulExposePath",
                  "Path Protocol LocalPathPort ListenerPort") for x in paths] if paths else None)
    tp = p["TransparentProxy"]
    if tp is not None:
        out["TransparentProxy"] = _take(tp, "ConsulTransparentProxy", "UID OutboundPort "
                                        "ExcludeInboundPorts ExcludeOutboundPorts "
                                        "ExcludeOutboundCIDRs ExcludeUIDs NoDNS")
    return out


def _upstream(u: Obj) -> Obj:
    out = _take(u, "ConsulUpstream", "DestinationName DestinationNamespace DestinationPeer "
                "DestinationPartition DestinationType LocalBindPort LocalBindSocketPath "
                "LocalBindSocketMode Datacenter LocalBindAddress Config")
    out["MeshGateway"] = new("ConsulMeshGateway",
                             Mode=u["MeshGateway"]["Mode"] if u["MeshGateway"] else "")
    return out


def _gateway_proxy(p: Obj | None) -> Obj | None:
    if p is None:
        return None
    binds = {k: _take(_need(v, "apiConnectGatewayProxyToStructs"), "ConsulGatewayBindAddress",
                      "Address Port") for k, v in (p["EnvoyGatewayBindAddresses"] or {}).items()}
    return _take(p, "ConsulGatewayProxy", "ConnectTimeout EnvoyGatewayBindTaggedAddresses "
                 "EnvoyGatewayNoDefaultBind EnvoyDNSDiscoveryType Config",
                 EnvoyGatewayBindAddresses=binds)


def _tls(tls: Obj | None) -> Obj | None:
    if tls is None:
        return None
    out = _take(tls, "ConsulGatewayTLSConfig", "Enabled TLSMinVersion TLSMaxVersion CipherSuites")
    if tls["SDS"] is not None:
        out["SDS"] = _take(tls["SDS"], "ConsulGatewayTLSSDSConfig", "ClusterName CertResource")
    return out


def _ingress(i: Obj | None) -> Obj | None:
    if i is None:
        return None
    listeners = None
    if i["Listeners"]:
        listeners = [None if x is None else new(
            "ConsulIngressListener", Port=x["Port"], Protocol=x["Protocol"],
            Services=[None if s is None else _ingress_service(s) for s in x["Services"]]
            if x["Services"] else None) for x in i["Listeners"]]
    return new("ConsulIngressConfigEntry", TLS=_tls(i["TLS"]), Listeners=listeners)


def _ingress_service(s: Obj) -> Obj:
    out = _take(s, "ConsulIngressService", "Name Hosts MaxConnections MaxPendingRequests "
                "MaxConcurrentRequests")
    out["TLS"] = _tls(s["TLS"])
    for key in ("RequestHeaders", "ResponseHeaders"):
        if s[key] is not None:
            out[key] = _take(s[key], "ConsulHTTPHeaderModifiers", "Add Set Remove")
    return out


def _terminating(t: Obj | None) -> Obj | None:
    if t is None:
        return None
    return new("ConsulTerminatingConfigEntry", Services=[
        None if s is None else _take(s, "ConsulLinkedService", "Name CAFile CertFile KeyFile SNI")
        for s in t["Services"]] if t["Services"] else None)


def volume_mounts(mounts: list[Obj | None] | None) -> list[Obj] | None:
    """command/agent/job_endpoint.go:2166 apiVolumeMountsToStructs (mounts without a volume go)."""
    if mounts is None:
        return None
    return [_take(m, "VolumeMount", "Volume Destination ReadOnly PropagationMode SELinuxLabel")
            for m in mounts if m is not None and m["Volume"] is not None]


def _consul(c: Obj | None) -> Obj | None:
    return None if c is None else _take(c, "Consul", "Namespace Cluster Partition")


def _log_config(log: Obj | None) -> Obj | None:
    """command/agent/job_endpoint.go:2201 apiLogConfigToStructs."""
    if log is None:
        return None
    return new("LogConfig", Disabled=bool(log["Disabled"]), MaxFiles=log["MaxFiles"] or 0,
               MaxFileSizeMB=log["MaxFileSizeMB"] or 0)


def constraints(cs: list[Obj | None] | None) -> list[Obj | None] | None:
    """command/agent/job_endpoint.go:2227 ApiConstraintsToStructs (nil elements stay nil)."""
    if cs is None:
        return None
    return [None if c is None else _take(c, "Constraint", "LTarget RTarget Operand") for c in cs]


def affinities(affs: list[Obj] | None) -> list[Obj] | None:
    """command/agent/job_endpoint.go:2252 ApiAffinitiesToStructs."""
    if affs is None:
        return None
    return [_take(a, "Affinity", "LTarget Operand RTarget Weight") for a in affs]


def _spread(s: Obj) -> Obj:
    """command/agent/job_endpoint.go:2310 ApiSpreadToStructs."""
    out = new("Spread", Attribute=s["Attribute"], Weight=s["Weight"])
    if s["SpreadTarget"] is not None:
        out["SpreadTarget"] = [_take(_need(t, "ApiSpreadToStructs"), "SpreadTarget",
                                     "Value Percent") for t in s["SpreadTarget"]]
    return out


def _ui(ui: Obj | None) -> Obj | None:
    """command/agent/job_endpoint.go:2265 ApiJobUIConfigToStructs."""
    if ui is None:
        return None
    links = [new("JobUILink", Label=_need(x, "ApiJobUIConfigToStructs")["Label"], Url=x["URL"])
             for x in ui["Links"]] if ui["Links"] else None
    return new("JobUIConfig", Description=ui["Description"], Links=links)
