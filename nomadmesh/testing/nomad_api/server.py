"""The server's side of a register: structs Canonicalize and the admission mutators (aa026cc).

`mutate(job)` runs nomad/job_endpoint.go:66's mutators in order on a structs job dict:
canonicalize, vault, consul, connect, expose-check (not emulated), implied constraints, node pool,
implicit identities (the emulated server has no default Consul/Vault identities configured), numa.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import Any

from nomadmesh.testing.nomad_api._json import clone
from nomadmesh.testing.nomad_api.convert import canonicalize_scaling, new
from nomadmesh.testing.nomad_api.errors import NomadApiError
from nomadmesh.testing.nomad_api.validate import go_duration

Obj = dict[str, Any]
SECOND = 1_000_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE

_ENV = re.compile(r"\$\{[a-zA-Z0-9_\-\.]+\}")  # helper/args/args.go:9 envRe


def mutate(job: Obj, *, default_priority: int = 50) -> Obj:
    """nomad/job_endpoint_hooks.go admissionMutators: the job as the server stores it."""
    canonicalize_job(job)
    if job["Priority"] == 0:
        job["Priority"] = default_priority  # job_endpoint_hooks.go jobCanonicalizer
    for tg in job["TaskGroups"] or ():
        for t in tg["Tasks"] or ():
            if t["Vault"] is not None and t["Vault"]["Cluster"] == "":
                t["Vault"]["Cluster"] = "default"  # job_endpoint_hook_vault_ce.go:38
    _consul_hook(job)
    for tg in job["TaskGroups"] or ():
        if tg["Networks"]:
            _connect_hook(job, tg)  # job_endpoint_hook_connect.go:148
    for tg in job["TaskGroups"] or ():
        _expose_hook(tg)
    _implied_constraints(job)
    if job["NodePool"] == "":
        job["NodePool"] = "default"  # job_endpoint_hook_node_pool_ce.go:25
    _implicit_identities(job)
    return job


def _implicit_identities(job: Obj) -> None:
    """nomad/job_endpoint_hook_implicit_identities.go Mutate, with no default identities set."""
    for tg in job["TaskGroups"] or ():
        has_identity = False
        tasks = tg["Tasks"] or []
        for s in (tg["Services"] or []) + [s for t in tasks for s in t["Services"] or ()]:
            if s["Provider"] in ("", "consul") and s["Identity"] is not None:
                prefix = "consul-service"  # services.go:813 MakeUniqueIdentityName
                name = (f"{prefix}_{s['TaskName']}-{s['Name']}-{s['PortLabel']}"
                        if s["TaskName"] else f"{prefix}_{s['Name']}-{s['PortLabel']}")
                s["Identity"]["Name"] = name
                s["Identity"]["ServiceName"] = s["Name"]
            has_identity = has_identity or s["Identity"] is not None
        has_identity = has_identity or any(t["Identities"] for t in tasks)
        if has_identity:
            tg["Constraints"] = (tg["Constraints"] or []) + [
                _constraint("${attr.nomad.version}", ">= 1.7.0-a", "semver")]


# --- nomad/structs Canonicalize -------------------------------------------------------------------

def _nil_if_empty(obj: Obj, *keys: str) -> None:
    for key in keys:
        if not obj[key]:
            obj[key] = None


def canonicalize_job(j: Obj) -> None:
    """nomad/structs/structs.go:4658 Job.Canonicalize."""
    _nil_if_empty(j, "Meta", "Constraints", "Affinities", "Spreads")
    if j["Namespace"] == "":
        j["Namespace"] = "default"
    if not j["Datacenters"]:
        j["Datacenters"] = ["*"]
    for tg in j["TaskGroups"] or ():
        _canonicalize_group(tg, j)
    pj = j["ParameterizedJob"]
    if pj is not None and pj["Payload"] == "":
        pj["Payload"] = "optional"  # structs.go:6101
    mr = j["Multiregion"]
    if mr is not None:  # structs.go:5532
        if mr["Strategy"] is None:
            mr["Strategy"] = new("MultiregionStrategy")
        if mr["Regions"] is None:
            mr["Regions"] = []


def _restart(job_type: str) -> Obj | None:
    """nomad/structs/structs.go:6588 NewRestartPolicy."""
    if job_type in ("service", "system"):
        return new("RestartPolicy", Delay=15 * SECOND, Attempts=2, Interval=30 * MINUTE,
                   Mode="fail")
    if job_type == "batch":
        return new("RestartPolicy", Delay=15 * SECOND, Attempts=3, Interval=24 * HOUR,
                   Mode="fail")
    return None


def _reschedule(job_type: str) -> Obj | None:
    """nomad/structs/structs.go:6799 NewReschedulePolicy."""
    if job_type == "service":
        return new("ReschedulePolicy", Delay=30 * SECOND, DelayFunction="exponential",
                   MaxDelay=HOUR, Unlimited=True)
    if job_type == "batch":
        return new("ReschedulePolicy", Attempts=1, Interval=24 * HOUR, Delay=5 * SECOND,
                   DelayFunction="constant")
    return None


def _canonicalize_group(tg: Obj, job: Obj) -> None:
    """nomad/structs/structs.go:7020 TaskGroup.Canonicalize."""
    _nil_if_empty(tg, "Meta", "Constraints", "Affinities", "Spreads")
    if tg["RestartPolicy"] is None:
        tg["RestartPolicy"] = _restart(job["Type"])
    if tg["ReschedulePolicy"] is None:
        tg["ReschedulePolicy"] = _reschedule(job["Type"])
    d = tg["Disconnect"]
    if d is not None:  # group.go:120
        if d["Replace"] is None:
            d["Replace"] = True
        if d["Reconcile"] == "":
            d["Reconcile"] = "best_score"
    if job["Type"] == "service" and tg["Migrate"] is None:
        tg["Migrate"] = new("MigrateStrategy", MaxParallel=1, HealthCheck="checks",
                            MinHealthyTime=10 * SECOND, HealthyDeadline=5 * MINUTE)
    if tg["EphemeralDisk"] is None:
        tg["EphemeralDisk"] = new("EphemeralDisk", SizeMB=300)
    if tg["Scaling"] is not None:
        canonicalize_scaling(tg["Scaling"], job, tg, None)
    for s in tg["Services"] or ():
        _canonicalize_service(s, job["Name"], tg["Name"], "group", job["Namespace"])
    for n in tg["Networks"] or ():
        _canonicalize_network(n)
    for t in tg["Tasks"] or ():
        canonicalize_task(t, job, tg)


def canonicalize_task(t: Obj, job: Obj, tg: Obj) -> None:
    """nomad/structs/structs.go:8115 Task.Canonicalize."""
    _nil_if_empty(t, "Meta", "Config", "Env", "Constraints", "Affinities", "VolumeMounts")
    for s in t["Services"] or ():
        _canonicalize_service(s, job["Name"], tg["Name"], t["Name"], job["Namespace"])
    if t["Resources"] is None:
        t["Resources"] = new("Resources", CPU=100, MemoryMB=300)
    else:
        _canonicalize_resources(t["Resources"])
    if t["RestartPolicy"] is None:
        t["RestartPolicy"] = clone(tg["RestartPolicy"])
    if t["KillTimeout"] == 0:
        t["KillTimeout"] = 5 * SECOND
    for p in t["ScalingPolicies"] or ():
        canonicalize_scaling(p, job, tg, t)
    v = t["Vault"]
    if v is not None:  # structs.go:10506
        if v["ChangeSignal"] != "":
            v["ChangeSignal"] = v["ChangeSignal"].upper()
        if v["ChangeMode"] == "":
            v["ChangeMode"] = "restart"
    for tmpl in t["Templates"] or ():
        if tmpl["ChangeSignal"] != "":
            tmpl["ChangeSignal"] = tmpl["ChangeSignal"].upper()  # structs.go:8927
    default_index = -1
    for i, wid in enumerate(t["Identities"] or ()):
        _canonicalize_identity(wid)
        if wid["Name"] == "default":
            t["Identity"] = wid
            default_index = i
    if default_index >= 0:
        del t["Identities"][default_index]
    if t["Identity"] is None:
        t["Identity"] = new("WorkloadIdentity", Name="default", Audience=["nomadproject.io"])
    else:
        _canonicalize_identity(t["Identity"])


def _canonicalize_identity(wi: Obj) -> None:
    """nomad/structs/workload_id.go:432 WorkloadIdentity.Canonicalize."""
    if wi["Name"] == "":
        wi["Name"] = "default"
    if wi["Name"] == "default":
        wi["Audience"] = ["nomadproject.io"]
    if wi["ChangeSignal"] != "":
        wi["ChangeSignal"] = wi["ChangeSignal"].upper()


def _canonicalize_resources(r: Obj) -> None:
    """nomad/structs/structs.go:2577 Resources.Canonicalize."""
    _nil_if_empty(r, "Networks", "Devices")
    for n in r["Networks"] or ():
        _canonicalize_network(n)
    numa = r["NUMA"]
    if numa is not None:  # numa.go:42
        if numa["Affinity"] == "":
            numa["Affinity"] = "none"
        _nil_if_empty(numa, "Devices")


def _canonicalize_network(n: Obj) -> None:
    """nomad/structs/structs.go:2914 NetworkResource.Canonicalize."""
    _nil_if_empty(n, "ReservedPorts", "DynamicPorts")
    for p in (n["DynamicPorts"] or []) + (n["ReservedPorts"] or []):
        if p["HostNetwork"] == "":
            p["HostNetwork"] = "default"


def replace_env(text: str, env: dict[str, str]) -> str:
    """helper/args/args.go:15 ReplaceEnv: `${NAME}` from env, unknown names left as they are."""
    return _ENV.sub(lambda m: env.get(m.group(0)[2:-1], m.group(0)), text)


def _canonicalize_service(s: Obj, job: str, group: str, task: str, namespace: str) -> None:
    """nomad/structs/services.go:694 Service.Canonicalize."""
    _nil_if_empty(s, "Tags", "CanaryTags", "Checks", "TaggedAddresses")
    if s["TaskName"] == "" and task != "group":
        s["TaskName"] = task
    s["Name"] = replace_env(s["Name"], {"JOB": job, "TASKGROUP": group, "TASK": task,
                                        "BASE": f"{job}-{group}-{task}"})
    for check in s["Checks"] or ():  # services.go:222 ServiceCheck.Canonicalize
        _nil_if_empty(check, "Args")
        if not check["Header"]:
            check["Header"] = None
        else:
            for key, value in check["Header"].items():
                if not value:
                    check["Header"][key] = None
        if check["Name"] == "":
            check["Name"] = f"service: {_go_quote(s['Name'])} check"
        if check["TaskName"] == "" and s["TaskName"] != "group":
            check["TaskName"] = s["TaskName"]
        if check["OnUpdate"] == "":
            check["OnUpdate"] = "require_healthy"
    if s["Provider"] == "":
        s["Provider"] = "consul"
    if s["Namespace"] == "" and s["Provider"] == "consul":
        s["Namespace"] = "default"
    elif s["Provider"] == "nomad":
        s["Namespace"] = namespace


def _go_quote(text: str) -> str:
    """Go's %q for the printable text a service name is."""
    out = text.replace("\\", "\\\\").replace('"', '\\"')
    out = out.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")
    return f'"{out}"'


# --- admission hooks --------------------------------------------------------------------------

def _constraint(ltarget: str, rtarget: str, operand: str) -> Obj:
    return new("Constraint", LTarget=ltarget, RTarget=rtarget, Operand=operand)


def _consul_hook(job: Obj) -> None:
    """nomad/job_endpoint_hook_consul.go:37 mutateImpl with the default cluster."""
    for tg in job["TaskGroups"] or ():
        parents = [(tg, tg)] + [(t, t) for t in tg["Tasks"] or ()]
        for holder, _ in parents:
            consul = holder["Consul"]
            if consul is not None:
                if consul["Cluster"] == "":
                    consul["Cluster"] = "default"
                if consul["Partition"] != "":
                    holder["Constraints"] = (holder["Constraints"] or []) + [
                        _partition_constraint(consul["Cluster"], consul["Partition"])]
            for s in holder["Services"] or ():
                if s["Provider"] in ("consul", "") and s["Cluster"] == "":
                    s["Cluster"] = "default"


def _partition_constraint(cluster: str, partition: str) -> Obj:
    """nomad/job_endpoint_hook_consul.go:79 newConsulPartitionConstraint."""
    if cluster in ("default", ""):
        return _constraint("${attr.consul.partition}", partition, "=")
    return _constraint("${attr.consul." + cluster + ".partition}", partition, "=")


def _consul_attr(cluster: str, attr: str) -> str:
    return f"${{attr.consul.{cluster}.{attr}}}" if cluster not in ("default", "") else \
        f"${{attr.consul.{attr}}}"


def _connect_hook(job: Obj, g: Obj) -> None:
    """nomad/job_endpoint_hook_connect.go:274 groupConnectHook (sidecars, native, gateways)."""
    env = {"NOMAD_JOB_NAME": job["Name"], "NOMAD_JOB_ID": job["ID"], "NOMAD_GROUP_NAME": g["Name"],
           "NOMAD_REGION": job["Region"], "NOMAD_NAMESPACE": job["Namespace"]}
    for service in g["Services"] or ():
        connect = service["Connect"]
        if connect is None:
            continue
        if connect["SidecarService"] is not None:
            service["Name"] = replace_env(service["Name"], env)
            kind = f"connect-proxy:{service['Name']}"
            task = next((t for t in g["Tasks"] or () if t["Kind"] == kind), None)
            if task is None:
                cluster = _service_cluster(service, g)
                task = _sidecar_task(service["Name"], _guess_driver(g), cluster)
                if any(t["Name"] == task["Name"] for t in g["Tasks"] or ()):
                    task["Name"] += "-" + str(uuid.uuid4())[:6]
                g["Tasks"] = (g["Tasks"] or []) + [task]
            if connect["SidecarTask"] is not None:
                _merge_sidecar_task(connect["SidecarTask"], task)
            canonicalize_task(task, job, g)
            label = connect["SidecarService"]["Port"] or f"connect-proxy-{service['Name']}"
            _inject_port(g, label)
        elif connect["Native"]:
            tasks = g["Tasks"] or []
            name = service["TaskName"]
            if name == "":
                if len(tasks) != 1:
                    raise NomadApiError(500, "error in job mutator connect: task for Consul "
                                        f"Connect Native service {g['Name']}->{service['Name']} "
                                        "is ambiguous and must be set")
                target = tasks[0]
            else:
                found = [t for t in tasks if t["Name"] == name]
                if not found:
                    raise NomadApiError(500, f"error in job mutator connect: task {name} named "
                                        "by Consul Connect Native service "
                                        f"{g['Name']}->{service['Name']} does not exist")
                target = found[0]
            target["Kind"] = f"connect-native:{service['Name']}"
            service["TaskName"] = target["Name"]
        elif connect["Gateway"] is not None:
            _gateway_hook(job, g, service, env)
    _canonicalize_network(g["Networks"][0])


def _gateway_hook(job: Obj, g: Obj, service: Obj, env: dict[str, str]) -> None:
    """The gateway branch of groupConnectHook (job_endpoint_hook_connect.go:332)."""
    gateway = service["Connect"]["Gateway"]
    service["Name"] = replace_env(service["Name"], env)
    mode = g["Networks"][0]["Mode"]
    gateway["Proxy"] = _gateway_proxy(gateway, mode)
    name = service["Name"]
    if gateway["Terminating"] is not None and service["PortLabel"] == "":
        service["PortLabel"] = f"connect-terminating-{name}"
        _inject_port(g, service["PortLabel"])
    if gateway["Mesh"] is not None:
        if service["PortLabel"] == "":
            raise NomadApiError(500, "error in job mutator connect: service.port must be set "
                                "for mesh gateway service")
        _inject_port(g, f"connect-mesh-{name}-lan")
    prefix = ("connect-mesh" if gateway["Mesh"] is not None else "connect-ingress"
              if gateway["Ingress"] is not None else "connect-terminating")
    if any(t["Kind"] == f"{prefix}:{name}" for t in g["Tasks"] or ()):
        return
    tls = (gateway["Ingress"] or {}).get("TLS")
    customized = tls is not None and bool(tls["TLSMinVersion"] or tls["TLSMaxVersion"]
                                          or tls["CipherSuites"])
    constraints = [_constraint("${attr.consul.version}", ">= 1.8.0", "semver"),
                   _constraint("${attr.consul.grpc}", "0", ">")]
    if customized:
        constraints.append(_constraint("${attr.consul.version}", ">= 1.11.2", "semver"))
    config: Obj = {"image": "${meta.connect.gateway_image}",
                   "args": ["-c", "${NOMAD_SECRETS_DIR}/envoy_bootstrap.json",
                            "-l", "${meta.connect.log_level}",
                            "--concurrency", "${meta.connect.proxy_concurrency}",
                            "--disable-hot-restart"]}
    if mode == "host":
        config["network_mode"] = "host"
    task = new("Task", Name=f"{prefix}-{name}", Kind=f"{prefix}:{name}", Driver=_guess_driver(g),
               Config=config, ShutdownDelay=5 * SECOND,
               LogConfig=new("LogConfig", MaxFiles=2, MaxFileSizeMB=2),
               Resources=new("Resources", CPU=250, MemoryMB=128), Constraints=constraints)
    g["Tasks"] = (g["Tasks"] or []) + [task]
    if service["Connect"]["SidecarTask"] is not None:
        _merge_sidecar_task(service["Connect"]["SidecarTask"], task)
    canonicalize_task(task, job, g)


def _gateway_proxy(gateway: Obj, mode: str) -> Obj:
    """nomad/job_endpoint_hook_connect.go:423 gatewayProxy."""
    proxy = gateway["Proxy"]
    if proxy is not None and (proxy["EnvoyGatewayNoDefaultBind"]
                              or proxy["EnvoyGatewayBindTaggedAddresses"]
                              or proxy["EnvoyGatewayBindAddresses"]):
        return dict(proxy)  # :408 not the default: the user's own
    out = new("ConsulGatewayProxy")
    if proxy is not None:
        out["ConnectTimeout"] = proxy["ConnectTimeout"]
        out["EnvoyDNSDiscoveryType"] = proxy["EnvoyDNSDiscoveryType"]
        out["Config"] = proxy["Config"]
    if out["ConnectTimeout"] is None:
        out["ConnectTimeout"] = 5 * SECOND
    if mode == "bridge" or mode.startswith("cni/"):
        binds: dict[str, Obj] | None = None
        if gateway["Ingress"] is not None:
            binds = {}
            for listener in gateway["Ingress"]["Listeners"] or ():
                for svc in listener["Services"] or ():
                    binds[svc["Name"]] = new("ConsulGatewayBindAddress", Address="0.0.0.0",
                                             Port=listener["Port"])
        elif gateway["Terminating"] is not None:
            binds = {"default": new("ConsulGatewayBindAddress", Address="0.0.0.0", Port=-1)}
        elif gateway["Mesh"] is not None:
            binds = {k: new("ConsulGatewayBindAddress", Address="0.0.0.0", Port=-1)
                     for k in ("wan", "lan")}
        if binds is not None:
            out["EnvoyGatewayNoDefaultBind"] = True
            out["EnvoyGatewayBindAddresses"] = binds
    return out


def _service_cluster(service: Obj, g: Obj) -> str:
    """nomad/structs/consul_ce.go:20 Service.GetConsulClusterName (always default in CE)."""
    del service, g
    return "default"


def _guess_driver(g: Obj) -> str:
    """nomad/job_endpoint_hook_connect.go:264 groupConnectGuessTaskDriver."""
    drivers = {t["Driver"] for t in g["Tasks"] or ()}
    return "podman" if "podman" in drivers and "docker" not in drivers else "docker"


def _sidecar_task(service: str, driver: str, cluster: str) -> Obj:
    """nomad/job_endpoint_hook_connect.go:524 newConnectSidecarTask."""
    version = _constraint(_consul_attr(cluster, "version"), ">= 1.8.0", "semver")
    listener = _constraint("${attr.consul.grpc}" if cluster == "default" else
                           f"${{attr.consul.{cluster}.grpc}}", "0", ">")
    return new(
        "Task", Name=f"connect-proxy-{service}", Kind=f"connect-proxy:{service}", Driver=driver,
        Config={"image": "${meta.connect.sidecar_image}",
                "args": ["-c", "${NOMAD_SECRETS_DIR}/envoy_bootstrap.json",
                         "-l", "${meta.connect.log_level}",
                         "--concurrency", "${meta.connect.proxy_concurrency}",
                         "--disable-hot-restart"]},
        ShutdownDelay=5 * SECOND, LogConfig=new("LogConfig", MaxFiles=2, MaxFileSizeMB=2),
        Resources=new("Resources", CPU=250, MemoryMB=128),
        Lifecycle=new("TaskLifecycleConfig", Hook="prestart", Sidecar=True),
        Constraints=[version, listener])


def _merge_sidecar_task(st: Obj, task: Obj) -> None:
    """nomad/structs/services.go:1588 SidecarTask.MergeIntoTask."""
    if st["Name"] != "":
        task["Name"] = st["Name"]
    if st["Driver"] != "" and st["Driver"] != task["Driver"]:
        task["Driver"] = st["Driver"]
        task["Config"] = clone(st["Config"])
    elif st["Config"]:
        task["Config"] = {**(task["Config"] or {}), **clone(st["Config"])}
    if st["User"] != "":
        task["User"] = st["User"]
    for key in ("Env", "Meta"):
        if st[key] is not None:
            task[key] = {**(task[key] or {}), **st[key]}
    if st["Resources"] is not None:  # structs.go:2481 Resources.Merge
        for key in ("CPU", "Cores", "MemoryMB", "MemoryMaxMB", "DiskMB", "SecretsMB"):
            if st["Resources"][key]:
                task["Resources"][key] = st["Resources"][key]
        for key in ("Networks", "Devices"):
            if st["Resources"][key]:
                task["Resources"][key] = clone(st["Resources"][key])
    if st["KillTimeout"] is not None:
        task["KillTimeout"] = st["KillTimeout"]
    if st["LogConfig"] is not None:
        if task["LogConfig"] is None:
            task["LogConfig"] = clone(st["LogConfig"])
        else:
            for key in ("MaxFiles", "MaxFileSizeMB"):
                if st["LogConfig"][key] > 0:
                    task["LogConfig"][key] = st["LogConfig"][key]
    if st["ShutdownDelay"] is not None:
        task["ShutdownDelay"] = st["ShutdownDelay"]
    if st["KillSignal"] != "":
        task["KillSignal"] = st["KillSignal"]
    if st["VolumeMounts"] is not None:
        task["VolumeMounts"] = clone(st["VolumeMounts"])
    if st["Identities"] is not None:
        task["Identities"] = clone(st["Identities"])


def _inject_port(g: Obj, label: str) -> None:
    """nomad/job_endpoint_hook_connect.go:239 injectPort."""
    network = g["Networks"][0]
    if any(p["Label"] == label for p in network["DynamicPorts"] or ()):
        return
    network["DynamicPorts"] = (network["DynamicPorts"] or []) + [
        new("Port", Label=label, To=-1)]


def _implied_constraints(j: Obj) -> None:
    """nomad/job_endpoint_hooks.go jobImpliedConstraints.Mutate."""
    for tg in j["TaskGroups"] or ():
        tasks = tg["Tasks"] or []
        for t in sorted((t for t in tasks if t["Vault"] is not None), key=lambda t: t["Name"]):
            cluster = t["Vault"]["Cluster"]
            _add(tg, _constraint(f"${{attr.vault.{cluster}.version}}", ">= 1.11.0", "semver")
                 if cluster not in ("default", "") else
                 _constraint("${attr.vault.version}", ">= 0.6.1", "semver"), left=True)
        providers: list[str] = []
        for group in j["TaskGroups"] or ():  # Job.Secrets(): every group's providers, each group
            for t in group["Tasks"] or ():
                for s in t["Secrets"] or ():
                    if s["Provider"] not in providers:
                        providers.append(s["Provider"])
        for provider in providers:
            _add(tg, _constraint(f"${{attr.plugins.secrets.{provider}.version}}", "", "is_set"),
                 left=True)
        if any(t["Resources"] is not None and t["Resources"]["NUMA"] is not None
               and t["Resources"]["NUMA"]["Affinity"] != "none" for t in tasks):
            _add(tg, _constraint("${attr.nomad.version}", ">= 1.6.3-dev", "semver"), left=False)
            _add(tg, _constraint("${attr.kernel.name}", "linux", "="), left=False)
        signals = sorted({sig for t in tasks for sig in _signals(t)})
        if signals:
            _add(tg, _constraint("${attr.os.signals}", ",".join(signals), "set_contains"),
                 left=False)
        services = (tg["Services"] or []) + [s for t in tasks for s in t["Services"] or ()]
        if any(s["Provider"] == "nomad" for s in services):
            _add(tg, _constraint("${attr.nomad.service_discovery}", "true", "="), left=False)
        if any(s["Provider"] == "nomad" and s["Checks"] for s in services):
            _add(tg, _constraint("${attr.nomad.version}", ">= 1.4.0", "semver"), left=False)
        if any(s["Provider"] in ("consul", "") for s in services):
            for s in tg["Services"] or ():
                if s["Provider"] in ("consul", ""):
                    _add(tg, _consul_version(s), left=True)
            for t in tasks:
                for s in t["Services"] or ():
                    if s["Provider"] in ("consul", ""):
                        _add(t, _consul_version(s), left=True)
        if any(n["Mode"] == "bridge" for n in tg["Networks"] or ()):
            for plugin in ("bridge", "firewall", "host-local", "loopback", "portmap"):
                _add(tg, _constraint(f"${{attr.plugins.cni.version.{plugin}}}", ">= 0.4.0",
                                     "semver"), left=True)
        if any(s["Connect"] is not None and s["Connect"]["SidecarService"] is not None
               and s["Connect"]["SidecarService"]["Proxy"] is not None
               and s["Connect"]["SidecarService"]["Proxy"]["TransparentProxy"] is not None
               for s in tg["Services"] or ()):
            _add(tg, _constraint("${attr.plugins.cni.version.consul-cni}", ">= 1.4.2", "semver"),
                 left=True)
            _add(tg, _constraint("${attr.nomad.version}", ">= 1.8.0-dev", "semver"), left=True)
        if any(t["Schedule"] is not None for t in tasks):
            _add(tg, _constraint("${attr.nomad.version}", ">= 1.8.0-dev", "semver"), left=True)


def _consul_version(service: Obj) -> Obj:
    """nomad/job_endpoint_hooks.go consulConstraintFn."""
    cluster = service["Cluster"]
    return _constraint(_consul_attr(cluster, "version"), ">= 1.8.0", "semver")


def _signals(t: Obj) -> set[str]:
    """The signals one task needs (nomad/structs/structs.go:5210 RequiredSignals)."""
    out = set()
    if t["Vault"] is not None and t["Vault"]["ChangeMode"] == "signal":
        out.add(t["Vault"]["ChangeSignal"])
    if t["KillSignal"] != "":
        out.add(t["KillSignal"])
    for tmpl in t["Templates"] or ():
        if tmpl["ChangeMode"] == "signal":
            out.add(tmpl["ChangeSignal"])
    return out


def _add(holder: Obj, constraint: Obj, *, left: bool) -> None:
    """nomad/job_endpoint_hooks.go mutateConstraint (constraintMatcherLeft or Full)."""
    for c in holder["Constraints"] or ():
        if c is None:
            continue
        if (c["LTarget"] == constraint["LTarget"]) if left else (c == constraint):
            return
    holder["Constraints"] = (holder["Constraints"] or []) + [constraint]


def check_hash(check: Obj, service_id: str) -> str:
    """nomad/structs/services.go:487 ServiceCheck.Hash (hex sha256)."""
    h = hashlib.sha256()
    for part in (service_id, check["Name"], check["Type"], check["Command"],
                 "".join(check["Args"] or ()), check["Path"], check["Protocol"],
                 check["PortLabel"], go_duration(check["Interval"]),
                 go_duration(check["Timeout"]), check["Method"], check["Body"],
                 check["OnUpdate"], check["Notes"]):
        h.update(part.encode())
    if check["TLSSkipVerify"]:
        h.update(b"true")
    for optional in (check["TLSServerName"],):
        h.update(optional.encode())
    if check["Header"]:
        h.update("".join(sorted(k + "".join(v or ()) for k, v in check["Header"].items()))
                 .encode())
    for optional in (check["AddressMode"], check["GRPCService"]):
        h.update(optional.encode())
    if check["GRPCUseTLS"]:
        h.update(b"true")
    for name, key in (("success", "SuccessBeforePassing"), ("failures", "FailuresBeforeCritical"),
                      ("failures-before-warning", "FailuresBeforeWarning")):
        if check[key]:
            h.update(f"{name}:{check[key]}".encode())
    return h.hexdigest()


def _expose_hook(g: Obj) -> None:
    """nomad/job_endpoint_hook_expose_check.go:24 Mutate: expose paths for exposed checks."""
    for s in g["Services"] or ():
        connect = s["Connect"]
        for i, check in enumerate(s["Checks"] or ()):
            if not check["Expose"] or connect is None or connect["SidecarService"] is None:
                continue
            if check["Type"].lower() not in ("grpc", "http") or not check["Path"].startswith("/"):
                continue  # :160 checkIsExposable
            error = _network_mode(g, "connect expose check", False)
            if error is not None:
                raise NomadApiError(500, f"error in job mutator expose-check: {error}")
            if check["PortLabel"] == "":
                suffix = check_hash(check, f"{s['Name']}_{i}")[:6]
                label = f"svc_{s['Name']}_ck_{suffix}"
                g["Networks"][0]["DynamicPorts"] = (g["Networks"][0]["DynamicPorts"] or []) + [
                    new("Port", HostNetwork="default", Label=label, To=-1)]
                check["PortLabel"] = label
            value = next((p["Value"] for n in g["Networks"] or ()
                          for p in (n["ReservedPorts"] or []) + (n["DynamicPorts"] or [])
                          if p["Label"] == s["PortLabel"]), 0)
            if value <= 0:
                value = int(s["PortLabel"]) if s["PortLabel"].isdigit() else 0
            if value <= 0:
                raise NomadApiError(500, "error in job mutator expose-check: unable to determine "
                                    "local service port for service check "
                                    f"{g['Name']}->{s['Name']}->{check['Name']}")
            path = new("ConsulExposePath", Path=check["Path"], Protocol=check["Protocol"],
                       LocalPathPort=value, ListenerPort=check["PortLabel"])
            sidecar = connect["SidecarService"]
            if sidecar["Proxy"] is None:
                sidecar["Proxy"] = new("ConsulProxy")
            if sidecar["Proxy"]["Expose"] is None:
                sidecar["Proxy"]["Expose"] = new("ConsulExposeConfig")
            expose = sidecar["Proxy"]["Expose"]
            if path not in (expose["Paths"] or ()):
                expose["Paths"] = (expose["Paths"] or []) + [path]


# --- validating hooks ---------------------------------------------------------------------------

def _network_mode(g: Obj, prefix: str, allow_host: bool) -> str | None:
    """nomad/job_endpoint_hook_connect.go:634 groupConnectNetworkModeValidate."""
    networks = g["Networks"] or []
    if len(networks) != 1:
        return (f"{prefix}: must have exactly one network for Consul Connect: group "
                f"{_go_quote(g['Name'])} has {len(networks)} networks")
    mode = networks[0]["Mode"]
    if mode == "bridge" or (allow_host and mode == "host") or mode.startswith("cni/"):
        return None
    allowed = '"bridge", "host", or "cni/*"' if allow_host else '"bridge" or "cni/*"'
    return (f"{prefix}: invalid network mode for Consul Connect: group {_go_quote(g['Name'])} "
            f"uses network mode {_go_quote(mode)}; must be {allowed}")


def connect_validate(g: Obj) -> str | None:
    """nomad/job_endpoint_hook_connect.go:549 groupConnectValidate (the first error)."""
    for s in g["Services"] or ():
        connect = s["Connect"]
        if connect is None:
            continue
        error = None
        if connect["SidecarService"] is not None:
            error = _network_mode(g, "connect sidecar", False)
            if error is None and s["Name"] != s["Name"].lower():
                error = (f"Consul Connect service name {_go_quote(s['Name'])} in group "
                         f"{_go_quote(g['Name'])} must not contain uppercase characters")
            if error is None and g["Name"] != g["Name"].lower():
                error = (f"Consul Connect group {_go_quote(g['Name'])} with service "
                         f"{_go_quote(s['Name'])} must not contain uppercase characters")
        elif connect["Native"]:
            tasks = g["Tasks"] or []
            if s["TaskName"] == "" and len(tasks) != 1:
                error = (f"task for Consul Connect Native service {g['Name']}->{s['Name']} is "
                         "ambiguous and must be set")
            elif s["TaskName"] and not any(t["Name"] == s["TaskName"] for t in tasks):
                error = (f"task {s['TaskName']} named by Consul Connect Native service "
                         f"{g['Name']}->{s['Name']} does not exist")
        elif connect["Gateway"] is not None:
            error = _network_mode(g, "connect gateway", True)
        if error is not None:
            return error
    return _upstreams_validate(g)


def _upstreams_validate(g: Obj) -> str | None:
    """nomad/job_endpoint_hook_connect.go:568 groupConnectUpstreamsValidate."""
    listeners: dict[str, str] = {}
    blocks = 0
    tproxy = False
    for s in g["Services"] or ():
        connect = s["Connect"]
        blocks += connect is not None
        proxy = (connect or {}).get("SidecarService") and connect["SidecarService"]["Proxy"]
        if not proxy:
            continue
        for up in proxy["Upstreams"] or ():
            address = up["LocalBindAddress"]
            listener = up["LocalBindSocketPath"] or (
                f"[{address}]:{up['LocalBindPort']}" if ":" in address
                else f"{address}:{up['LocalBindPort']}")
            if listener in listeners:
                return (f"Consul Connect services {_go_quote(s['Name'])} and "
                        f"{_go_quote(listeners[listener])} in group {_go_quote(g['Name'])} "
                        f"using same address for upstreams ({listener})")
            listeners[listener] = s["Name"]
        tp = proxy["TransparentProxy"]
        if tp is not None:
            tproxy = True
            for n in g["Networks"] or ():
                dns = n["DNS"]
                if dns is not None and (dns["Options"] or dns["Searches"] or dns["Servers"]) \
                        and not tp["NoDNS"]:
                    return ("Consul Connect transparent proxy cannot be used with network.dns "
                            "unless no_dns=true")
            for label in tp["ExcludeInboundPorts"] or ():
                numeric = label.isdigit() and int(label) <= 65535
                if not numeric and not any(p["Label"] == label for n in g["Networks"] or ()
                                           for p in n["ReservedPorts"] or ()):
                    return (f"Consul Connect transparent proxy port {_go_quote(label)} must be "
                            "numeric or one of network.port labels")
    if tproxy and blocks > 1:
        return "Consul Connect transparent proxy requires there is only one connect block"
    return None


def expose_validate(g: Obj) -> str | None:
    """nomad/job_endpoint_hook_expose_check.go:61 Validate (network mode, check placement)."""
    services = g["Services"] or []
    if any(c["Expose"] for s in services for c in s["Checks"] or ()):
        error = _network_mode(g, "connect expose check", False)
        if error is not None:
            return error
    for s in services:
        sidecar = s["Connect"] is not None and s["Connect"]["SidecarService"] is not None
        for c in s["Checks"] or ():
            if c["Expose"] and not sidecar:
                return (f"exposed service check {g['Name']}->{s['Name']}->{c['Name']} requires "
                        "use of sidecar_proxy")
    for t in g["Tasks"] or ():
        for s in t["Services"] or ():
            for c in s["Checks"] or ():
                if c["Expose"]:
                    return (f"exposed service check {g['Name']}[{t['Name']}]->{s['Name']}->"
                            f"{c['Name']} is not a task-group service")
    return None
