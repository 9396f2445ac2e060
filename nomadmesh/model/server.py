"""What a Nomad server makes of a job after the agent's `api.Job.Canonicalize()`: the conversion to
its own structs, `structs.Job.Canonicalize`, the mutating admission hooks and the Canonicalize the
FSM runs again when it applies the registration (nomad/fsm.go:681).

So `canonicalize(job)` is the job as `GET /v1/job/<id>` returns it. The hooks run in the order of
nomad/job_endpoint.go:66: canonicalize (with the default priority), vault, consul, connect (the
sidecar and gateway tasks and their ports), expose-check, implied constraints, node pool, implicit
identities, numa (a no-op in Nomad CE). The parts that read the server's agent configuration (the
default priority, Consul and Vault default identities) come from a `ServerConfig`, Nomad's defaults
unless given. Each step cites the Nomad source (aa026cc99cfb) it mirrors.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable, Iterable
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from nomadmesh.errors import Problem
from nomadmesh.model._base import (
    SECOND,
    Kind,
    compile_generated,
    evolve,
    go_quote,
    label_spec,
    specs,
)
from nomadmesh.model._copy import copier
from nomadmesh.model.connect import (
    ConsulConnect,
    ConsulExposeConfig,
    ConsulExposePath,
    ConsulGateway,
    ConsulGatewayBindAddress,
    ConsulGatewayProxy,
    ConsulProxy,
    SidecarTask,
)
from nomadmesh.model.group import Group
from nomadmesh.model.identity import Consul, WorkloadIdentity
from nomadmesh.model.network import Network, Port
from nomadmesh.model.placement import Constraint
from nomadmesh.model.policies import UpdateStrategy
from nomadmesh.model.resources import LogConfig, Resources
from nomadmesh.model.scaling import Scaling
from nomadmesh.model.service import Check, Service
from nomadmesh.model.task import Lifecycle, Task

if TYPE_CHECKING:
    from nomadmesh.model.job import Job

T = TypeVar("T")

DEFAULT_IDENTITY = "default"  # nomad/structs/workload_id.go:23
DEFAULT_AUDIENCE = "nomadproject.io"  # nomad/structs/identity.go:16


@attrs.frozen(kw_only=True)
class ServerConfig:
    """The parts of a Nomad server's agent configuration that change the job it stores; each
    default is a Nomad agent's own (nomad/config.go:626 DefaultConfig)."""

    # server { job_default_priority }: the priority of a job that sets 0 (nomad/config.go:717).
    job_default_priority: int = 50
    # consul { service_identity {} }: given to every Consul service without an identity
    # (nomad/job_endpoint_hook_implicit_identities.go:69).
    consul_service_identity: WorkloadIdentity | None = None
    # consul { task_identity {} }: given to tasks of a group or task with a `consul` block (:101).
    consul_task_identity: WorkloadIdentity | None = None
    # vault { default_identity {} }: given to tasks with a `vault` block (:146).
    vault_default_identity: WorkloadIdentity | None = None


DEFAULT_SERVER = ServerConfig()


def stored(job: Job, *, zero_fill: bool = True, config: ServerConfig = DEFAULT_SERVER) -> Job:
    """`job` (already api-canonical) as the server stores it; `zero_fill=False` leaves out the Go
    zeros of fields the server keeps as values (what validation reads as zero anyway)."""
    out = _server_pass(job, config, full=True)
    return _as_stored(out) if zero_fill else out


def for_rules(job: Job) -> Job:
    """`stored(job, zero_fill=False)` without the two defaults validation never reads: a port's
    host network stays unset (the rules read it as "default", as Nomad's own default is) and a
    task without a workload identity keeps none (the default identity, `name = "default"` and
    Nomad's audience, passes every identity rule). Every other field is the stored one.
    tests/test_validation_form.py checks that the rules find the same in both forms."""
    return _server_pass(job, DEFAULT_SERVER, full=False)


def _server_pass(job: Job, config: ServerConfig, *, full: bool) -> Job:
    """The conversion to structs, structs Canonicalize and the admission hooks."""
    out = _canonical_job(_structs_job(job), full=full)
    # nomad/job_endpoint_hooks.go:245: a priority of 0 takes the server's default.
    if not out.priority:
        out = evolve(out, priority=config.job_default_priority)
    return _admission(out, config, full=full)


def admission_problems(job: Job, path: str) -> list[Problem]:
    """The errors Nomad's Connect and expose-check admission hooks refuse `job` with (a stored
    job, as validation sees it): their mutators' (Nomad stops at the first, and runs no
    validator then), else their validators' (nomad/job_endpoint.go:77; each returns its first)."""
    out: list[Problem] = []
    for g in job.groups:
        where = f"{path}.group[{g.name}]"
        if g.networks:
            out.extend(_connect_problems(g, where))
        out.extend(_expose_problems(g, where))
    if out:
        return out
    for validate in (_connect_validate, _expose_validate):
        found = next((p for g in job.groups if (p := validate(g, f"{path}.group[{g.name}]"))), None)
        if found is not None:
            out.append(found)
    return out


# --- ApiJobToStructJob (command/agent/job_endpoint.go:1128) --------------------------------------


def _structs_job(job: Job) -> Job:
    """command/agent/job_endpoint.go:1128 ApiJobToStructJob: what the server's structs keep."""
    update = job.update
    # :1151: the update strategy was pushed into the groups; the job keeps only stagger and
    # max_parallel, and a zero strategy (a Go value) when max_parallel <= 0.
    if update is not None and update.max_parallel is not None and update.max_parallel > 0:
        update = _zero_update(stagger=update.stagger or 0, max_parallel=update.max_parallel)
    else:
        update = _zero_update()
    vault_namespace = job.vault_namespace or ""
    return evolve(
        job,
        update=update,
        # Merged into every group by api/tasks.go:575 and :589; the server does not keep them,
        # nor the deprecated consul_namespace.
        reschedule=None,
        migrate=None,
        consul_namespace=None,
        groups=tuple(_structs_group(g, vault_namespace) for g in job.groups),
    )


def _zero_update(stagger: int = 0, max_parallel: int = 0) -> UpdateStrategy:
    return UpdateStrategy(stagger=stagger, max_parallel=max_parallel, health_check="",
                          min_healthy_time=0, healthy_deadline=0, progress_deadline=0, canary=0,
                          auto_revert=False, auto_promote=False)


def _structs_group(group: Group, vault_namespace: str) -> Group:
    """command/agent/job_endpoint.go:1227 ApiTgToStructsTG."""
    changes: dict[str, Any] = {}
    if group.volumes and any(v.type not in ("host", "csi") for v in group.volumes.values()):
        # :1309: only host and CSI volumes are kept.
        changes["volumes"] = {k: v for k, v in group.volumes.items() if v.type in ("host", "csi")}
    if group.networks and any(n.device is not None for n in group.networks):
        changes["networks"] = tuple(_structs_network(n) for n in group.networks)
    if group.services:
        services = tuple(_structs_service(s, group=True) for s in group.services)
        if not _same(services, group.services):
            changes["services"] = services
    if group.scaling is not None:
        changes["scaling"] = _structs_scaling(group.scaling, group.count or 0)
    tasks = tuple(_structs_task(t, vault_namespace) for t in group.tasks)
    if not _same(tasks, group.tasks):
        changes["tasks"] = tasks
    return evolve(group, **changes) if changes else group


def _structs_scaling(policy: Scaling, count: int) -> Scaling:
    """command/agent/scaling_endpoint.go:84 ApiScalingPolicyToStructs: enabled unless disabled,
    max -1 when unset (validation refuses it), min the count."""
    return evolve(policy, enabled=True if policy.enabled is None else policy.enabled,
                  max=-1 if policy.max is None else policy.max,
                  min=count if policy.min is None else policy.min,
                  type=policy.type or "horizontal")


def _structs_network(network: Network) -> Network:
    """command/agent/job_endpoint.go:1651 ApiNetworkResourceToStructs does not carry Device."""
    return network if network.device is None else evolve(network, device=None)


def _structs_task(task: Task, vault_namespace: str) -> Task:
    """command/agent/job_endpoint.go:1376 ApiTaskToStructsTask."""
    changes: dict[str, Any] = {}
    if task.resources is not None and _structs_resources(task.resources) is not task.resources:
        changes["resources"] = _structs_resources(task.resources)
    if task.services:
        changes["services"] = tuple(_structs_service(s, group=False) for s in task.services)
    if task.vault is not None:
        # Policies are not kept (deprecated, :1454); job_endpoint.go:1366 gives the job's vault
        # namespace to a task vault block without one.
        namespace = task.vault.namespace or vault_namespace
        changes["vault"] = evolve(task.vault, policies=(), namespace=namespace)
    if task.volume_mounts and any(m.volume is None for m in task.volume_mounts):
        # :2166 apiVolumeMountsToStructs skips mounts without a volume.
        changes["volume_mounts"] = tuple(m for m in task.volume_mounts if m.volume is not None)
    if task.schedule is not None and task.schedule.cron is None:
        changes["schedule"] = None  # :1583 apiScheduleToStructsSchedule
    if task.scaling_policies:
        changes["scaling_policies"] = tuple(_structs_scaling(p, 0) for p in task.scaling_policies)
    return evolve(task, **changes) if changes else task


def _structs_resources(resources: Resources) -> Resources:
    """command/agent/job_endpoint.go:1598 ApiResourcesToStructs does not carry DiskMB over."""
    if resources.disk is None and (not resources.networks
                                   or all(n.device is None for n in resources.networks)):
        return resources
    return evolve(resources, disk=None, networks=tuple(_structs_network(n) for n in resources.networks))


def _structs_service(service: Service, *, group: bool) -> Service:
    """command/agent/job_endpoint.go:1707 ApiServicesToStructs: no service-level check_restart
    (the api merged it into the checks), no check `advertise`, and a task service's checks lose
    their task (the server sets the service's)."""
    changes: dict[str, Any] = {}
    if service.check_restart is not None:
        changes["check_restart"] = None
    if service.checks and any(c.advertise is not None or (c.task is not None and not group)
                              for c in service.checks):
        changes["checks"] = tuple(evolve(c, advertise=None, task=c.task if group else None)
                                  for c in service.checks)
    if service.connect is not None:
        connect = _structs_connect(service.connect)
        if connect is not service.connect:
            changes["connect"] = connect
    return evolve(service, **changes) if changes else service


def _structs_connect(connect: ConsulConnect) -> ConsulConnect:
    """command/agent/job_endpoint.go:1824 ApiConsulConnectToStructs: the proxy's deprecated
    `ExposeConfig` replaces `Expose` (:2031), an expose block's deprecated `Path` its `Paths`
    (:2084); a sidecar task's resources lose DiskMB."""
    sidecar_service = connect.sidecar_service
    sidecar_task = connect.sidecar_task
    if ((sidecar_service is None or sidecar_service.proxy is None
         or (sidecar_service.proxy.expose_config is None and (
             sidecar_service.proxy.expose is None or not sidecar_service.proxy.expose.deprecated_paths)))
            and (sidecar_task is None or sidecar_task.resources is None
                 or _structs_resources(sidecar_task.resources) is sidecar_task.resources)):
        return connect
    if sidecar_service is not None and sidecar_service.proxy is not None:
        proxy = sidecar_service.proxy
        expose = proxy.expose_config if proxy.expose_config is not None else proxy.expose
        if expose is not None and expose.deprecated_paths:
            expose = ConsulExposeConfig(paths=expose.deprecated_paths)
        elif expose is not None:
            expose = ConsulExposeConfig(paths=expose.paths)
        proxy = evolve(proxy, expose=expose, expose_config=None)
        sidecar_service = evolve(sidecar_service, proxy=proxy)
    if sidecar_task is not None and sidecar_task.resources is not None:
        sidecar_task = evolve(sidecar_task, resources=_structs_resources(sidecar_task.resources))
    return evolve(connect, sidecar_service=sidecar_service, sidecar_task=sidecar_task)


# --- structs Canonicalize ------------------------------------------------------------------------


def _canonical_job(job: Job, *, full: bool = True) -> Job:
    """nomad/structs/structs.go:4658 Job.Canonicalize (`full=False`: see `for_rules`)."""
    job_name, namespace = job.name or "", job.namespace or "default"
    return evolve(
        job,
        namespace=namespace,
        # structs.go:4686: no datacenters means every datacenter.
        datacenters=job.datacenters or ("*",),
        # structs.go:6101 ParameterizedJobConfig.Canonicalize.
        parameterized=(evolve(job.parameterized, payload=job.parameterized.payload or "optional")
                       if job.parameterized is not None else None),
        groups=tuple(_canonical_group(g, job_name, namespace, full) for g in job.groups),
    )


def _canonical_group(group: Group, job_name: str, namespace: str, full: bool = True) -> Group:
    """nomad/structs/structs.go:7020 TaskGroup.Canonicalize (the api set the policies already)."""
    services = tuple(_canonical_service(s, job_name, group.name, "group", namespace)
                     for s in group.services) if group.services else ()
    networks = tuple(_canonical_network(n, full) for n in group.networks) if full else group.networks
    tasks = tuple(_canonical_task(t, group, job_name, namespace, full) for t in group.tasks)
    if _same(services, group.services) and _same(networks, group.networks) and _same(
            tasks, group.tasks):
        return group
    return _server_group(group, services, networks, tasks)


def _canonical_network(network: Network, full: bool = True) -> Network:
    """nomad/structs/structs.go:2914 NetworkResource.Canonicalize: host network "default" (not
    with `full=False`: see `for_rules`)."""
    if not full or all(p.host_network for p in network.ports):
        return network
    return evolve(network, ports=[p if p.host_network else evolve(p, host_network="default")
                                  for p in network.ports])


def _canonical_task(task: Task, group: Group, job_name: str, namespace: str,
                    full: bool = True) -> Task:
    """nomad/structs/structs.go:8115 Task.Canonicalize(job, tg) (`full=False`: no default
    identity, see `for_rules`)."""
    identity = task.identity
    identities: list[WorkloadIdentity] = []
    for wid in task.identities:
        wid = _canonical_identity(wid)
        if wid.name == DEFAULT_IDENTITY:
            identity = wid  # for backward compatibility the default one lives in Task.Identity
        else:
            identities.append(wid)
    if identity is not None:
        identity = _canonical_identity(identity)
    elif full:
        identity = _DEFAULT_IDENTITY
    resources = task.resources
    if resources is None:
        resources = _DEFAULT_RESOURCES
    else:
        # structs.go:2577 Resources.Canonicalize: the networks' and NUMA's.
        numa = resources.numa
        if numa is not None and not numa.affinity:
            numa = evolve(numa, affinity="none")  # structs/numa.go:42
        if resources.networks or numa is not resources.numa:
            resources = _evolved(resources, networks=tuple(_canonical_network(n, full)
                                                           for n in resources.networks), numa=numa)
    vault = task.vault
    if vault is not None:  # structs.go:10506 Vault.Canonicalize
        vault = evolve(vault, change_mode=vault.change_mode or "restart",
                       change_signal=(vault.change_signal.upper() if vault.change_signal
                                      else vault.change_signal))
    # What `_evolved` would keep of every field this pass owns, computed only for the fields
    # that can differ (one copy of the task, none when nothing changes).
    changes: dict[str, Any] = {}
    if task.services:
        services = tuple(_canonical_service(s, job_name, group.name, task.name, namespace)
                         for s in task.services)
        if not _same(services, task.services):
            changes["services"] = services
    if resources is not task.resources:
        changes["resources"] = resources
    if task.restart is None and group.restart is not None:
        changes["restart"] = group.restart
    if not task.kill_timeout:
        changes["kill_timeout"] = 5 * SECOND  # structs.go:7813 DefaultKillTimeout
    if task.scaling_policies and any(not p.type for p in task.scaling_policies):
        changes["scaling_policies"] = tuple(p if p.type else evolve(p, type="horizontal")
                                            for p in task.scaling_policies)
    if vault is not None:
        changes["vault"] = vault
    if task.templates and any(t.change_signal for t in task.templates):
        # structs.go:8927 Template.Canonicalize.
        changes["templates"] = tuple(
            t if not t.change_signal else evolve(t, change_signal=t.change_signal.upper())
            for t in task.templates)
    if identity is not task.identity:
        changes["identity"] = identity
    if task.identities and not (len(identities) == len(task.identities)
                                and _same(tuple(identities), task.identities)):
        changes["identities"] = tuple(identities)
    return evolve(task, **changes) if changes else task


# Shared by every task that has none (frozen values): structs.go:2388 DefaultResources, and the
# default workload identity (structs.go:8115).
_DEFAULT_RESOURCES = Resources(cpu=100, memory=300)
_DEFAULT_IDENTITY = WorkloadIdentity(name=DEFAULT_IDENTITY, aud=[DEFAULT_AUDIENCE])


def _evolved(obj: T, **changes: Any) -> T:
    """`obj` with those `changes` that differ from what it holds; `obj` itself when none do.

    A change differs unless it is the very value held, or a tuple of the very values held: the
    canonical passes recompute every field they own, and most are already canonical.
    """
    state = obj.__dict__
    different = {}
    for name, value in changes.items():
        old = state[name]
        # The same value, or a tuple of the same values (inline: this runs for every field of
        # every block the pass owns).
        if value is not old and not (type(value) is tuple and type(old) is tuple
                                     and len(value) == len(old) and all(map(_is, value, old))):
            different[name] = value
    return evolve(obj, **different) if different else obj


_is = operator.is_


def _canonical_identity(wid: WorkloadIdentity) -> WorkloadIdentity:
    """nomad/structs/workload_id.go:432 WorkloadIdentity.Canonicalize."""
    name = wid.name or DEFAULT_IDENTITY
    aud = (DEFAULT_AUDIENCE,) if name == DEFAULT_IDENTITY else wid.aud
    signal = wid.change_signal.upper() if wid.change_signal else wid.change_signal
    return _evolved(wid, name=name, aud=aud, change_signal=signal)


def _canonical_service(service: Service, job: str, group: str, task: str, namespace: str) -> Service:
    """nomad/structs/services.go:694 Service.Canonicalize(job, taskGroup, task, jobNamespace)."""
    task_name = service.task or (task if task != "group" else None)
    name = service.name or ""
    if "${" in name:
        name = _replace_env(name, {"JOB": job, "TASKGROUP": group, "TASK": task,
                                   "BASE": f"{job}-{group}-{task}"})
    checks = tuple(_canonical_check(c, name, task_name)
                   for c in service.checks) if service.checks else ()
    provider = service.provider or "consul"
    if (task_name is service.task and name is service.name and provider is service.provider
            and _same(checks, service.checks)):
        return service
    return _server_service(service, task_name, name, checks, provider)


def _canonical_check(check: Check, service_name: str, task_name: str | None) -> Check:
    """nomad/structs/services.go:222 ServiceCheck.Canonicalize(serviceName, taskName)."""
    name = check.name or f"service: {_quote(service_name)} check"
    task = check.task or task_name
    on_update = check.on_update or "require_healthy"
    if name is check.name and task is check.task and on_update is check.on_update:
        return check
    return _server_check(check, name, task, on_update)


# The server pass's copies (see nomadmesh.model._copy), in the order of their arguments: each
# stores what `_evolved` stores (a field given its own value keeps it).
_server_group = copier(Group, ("services", "networks", "tasks"), globals(), "_server_group")
_server_service = copier(Service, ("task", "name", "checks", "provider"), globals(),
                         "_server_service")
_server_check = copier(Check, ("name", "task", "on_update"), globals(), "_server_check")


def _quote(text: str) -> str:
    """`go_quote`, with its common case first: printable ASCII without quotes or backslashes is
    quoted as it is (Go's strconv.Quote escapes only those of it)."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    return go_quote(text)


_ENV_REF = re.compile(r"\$\{[a-zA-Z0-9_\-.]+\}")


def _replace_env(text: str, *envs: dict[str, str]) -> str:
    """helper/args/args.go:18 ReplaceEnv: `${KEY}` from the first map that has KEY, the rest
    left as written."""
    if "${" not in text:
        return text

    def value(match: re.Match[str]) -> str:
        key = match.group()[2:-1]
        for env in envs:
            if key in env:
                return env[key]
        return match.group()

    return _ENV_REF.sub(value, text)


# --- the mutating admission hooks (nomad/job_endpoint.go:66) --------------------------------------


def _admission(job: Job, config: ServerConfig, *, full: bool = True) -> Job:
    """The mutators after the canonicalizer, in Nomad's order (each reads and changes one group
    at a time, so they run group by group), then the FSM's Canonicalize (nomad/fsm.go:681),
    which can only change what the hooks added: that is canonicalized where it is added (renamed
    Connect services, implicit identities), so the second pass is not run."""
    # structs.go:5162 Job.Secrets: every group gets the constraint of every group's providers.
    seen: dict[str, None] = {}
    for g in job.groups:
        for t in g.tasks:
            if t.secrets:
                seen.update(dict.fromkeys(s.provider or "" for s in t.secrets))
    providers = tuple(seen)
    groups = []
    for g in job.groups:
        g = _consul_hook(_vault_hook(g))
        if g.networks:
            g = _connect_hook(g, job, full)
        g = _implied_constraints(_expose_check_hook(g), providers)
        groups.append(_implicit_identities(g, config))
    # nomad/job_endpoint_hook_node_pool_ce.go:27.
    return evolve(job, node_pool=job.node_pool or "default", groups=groups)


def _vault_hook(group: Group) -> Group:
    """nomad/job_endpoint_hook_vault_ce.go:36 jobVaultHook.Mutate: vault cluster "default"."""
    if not any(t.vault is not None and not t.vault.cluster for t in group.tasks):
        return group
    return evolve(group, tasks=tuple(
        evolve(t, vault=evolve(t.vault, cluster="default"))
        if t.vault is not None and not t.vault.cluster else t for t in group.tasks))


def _consul_hook(group: Group) -> Group:
    """nomad/job_endpoint_hook_consul.go:45 mutateImpl: Consul cluster "default" on consul blocks
    and Consul services, and a partition constraint for a consul block with a partition."""
    changes: dict[str, Any] = {}
    if group.consul is not None:
        consul = group.consul if group.consul.cluster else evolve(group.consul, cluster="default")
        changes["consul"] = consul
        changes["constraints"] = _with_partition(group.constraints, consul)
    services = tuple(_default_cluster(s) for s in group.services)
    if not _same(services, group.services):
        changes["services"] = services
    tasks = tuple(_consul_task(t) if t.services or t.consul is not None else t
                  for t in group.tasks)
    if not _same(tasks, group.tasks):
        changes["tasks"] = tasks
    return evolve(group, **changes) if changes else group


def _consul_task(task: Task) -> Task:
    changes: dict[str, Any] = {}
    if task.services:
        services = tuple(_default_cluster(s) for s in task.services)
        if not _same(services, task.services):
            changes["services"] = services
    if task.consul is not None:
        consul = task.consul if task.consul.cluster else evolve(task.consul, cluster="default")
        changes["consul"] = consul
        changes["constraints"] = _with_partition(task.constraints, consul)
    return evolve(task, **changes) if changes else task


def _default_cluster(service: Service) -> Service:
    if service.cluster or service.provider not in (None, "", "consul"):
        return service
    return evolve(service, cluster="default")


def _with_partition(constraints: tuple[Constraint, ...], consul: Consul) -> tuple[Constraint, ...]:
    """nomad/job_endpoint_hook_consul.go:79 newConsulPartitionConstraint. Nomad appends it on
    every registration; it is added once here so that canonicalize stays idempotent (a job
    written by hand never holds it)."""
    if not consul.partition:
        return constraints
    cluster = consul.cluster or "default"
    attribute = ("${attr.consul.partition}" if cluster == "default"
                 else "${attr.consul." + cluster + ".partition}")
    implied = Constraint(attribute=attribute, value=consul.partition, operator="=")
    return constraints if implied in constraints else (*constraints, implied)


# nomad/job_endpoint_hooks.go:50 and job_endpoint_hook_connect.go:128, for the default (and in
# Nomad CE the only) Consul cluster: nomad/structs/consul_ce.go:20 GetConsulClusterName.
_CONSUL_VERSION = Constraint(attribute="${attr.consul.version}", value=">= 1.8.0", operator="semver")
_CONSUL_GRPC = Constraint(attribute="${attr.consul.grpc}", value="0", operator=">")
_CONSUL_TLS = Constraint(attribute="${attr.consul.version}", value=">= 1.11.2", operator="semver")
# nomad/structs/services.go:35 EnvoyBootstrapPath and job_endpoint_hook_connect.go:47.
_ENVOY_ARGS = ("-c", "${NOMAD_SECRETS_DIR}/envoy_bootstrap.json", "-l", "${meta.connect.log_level}",
               "--concurrency", "${meta.connect.proxy_concurrency}", "--disable-hot-restart")


def _connect_hook(group: Group, job: Job, full: bool = True) -> Group:
    """nomad/job_endpoint_hook_connect.go:274 groupConnectHook, for a group with a network."""
    if not any(s.connect is not None for s in group.services):
        return group
    env: tuple[dict[str, str], ...] | None = None
    services = list(group.services)
    tasks = list(group.tasks)
    ports = list(group.networks[0].ports)
    for i, service in enumerate(services):
        connect = service.connect
        if connect is None:
            continue
        if connect.sidecar_service is not None:
            env = env or _submission_env(job, group)
            name = _replace_env(service.name or "", *env)
            kind = f"connect-proxy:{name}"
            index = next((j for j, t in enumerate(tasks) if t.kind == kind), None)
            if index is None:
                task = _sidecar_task(name, _guess_driver(tasks))
                if any(t.name == task.name for t in tasks):
                    task = evolve(task, name=f"{task.name}-{_suffix(job, group, name)}")
                tasks.append(task)
                index = len(tasks) - 1
            task = tasks[index]
            if connect.sidecar_task is not None:
                task = _merge_sidecar_task(connect.sidecar_task, task)
            # :318: canonicalized since this mutator runs after job canonicalization.
            tasks[index] = _canonical_task(task, group, job.name or "", job.namespace or "", full)
            ports = _inject_port(ports, connect.sidecar_service.port or f"connect-proxy-{name}")
            services[i] = _renamed(service, name, group, job)
        elif connect.native:
            # :327: the task backing a native service is named, or the group's only task.
            index = _native_task(tasks, service)
            if index is not None:
                tasks[index] = evolve(tasks[index], kind=f"connect-native:{service.name or ''}")
                services[i] = evolve(service, task=tasks[index].name)
        elif connect.gateway is not None:
            env = env or _submission_env(job, group)
            name = _replace_env(service.name or "", *env)
            gateway = connect.gateway
            mode = group.networks[0].mode or ""
            gateway = evolve(gateway, proxy=_gateway_proxy(gateway, mode))
            service = _renamed(evolve(service, connect=evolve(connect, gateway=gateway)), name,
                               group, job)
            if gateway.terminating is not None and not service.port:
                label = f"connect-terminating-{name}"
                service = evolve(service, port=label)
                ports = _inject_port(ports, label)
            if gateway.mesh is not None:
                if not service.port:
                    services[i] = service  # refused: see _connect_problems
                    continue
                ports = _inject_port(ports, f"connect-mesh-{name}-lan")
            prefix = _gateway_prefix(gateway)
            if not any(t.kind in (f"connect-ingress:{name}", f"connect-terminating:{name}",
                                  f"connect-mesh:{name}") for t in tasks):
                task = _gateway_task(prefix, name, _guess_driver(tasks), mode == "host",
                                     _customized_tls(gateway))
                if connect.sidecar_task is not None:
                    task = _merge_sidecar_task(connect.sidecar_task, task)
                tasks.append(_canonical_task(task, group, job.name or "", job.namespace or "", full))
            services[i] = service
    # :396: the group network is canonicalized again for the ports added.
    network = _canonical_network(evolve(group.networks[0], ports=ports), full)
    return evolve(group, services=services, tasks=tasks, networks=(network, *group.networks[1:]))


def _renamed(service: Service, name: str, group: Group, job: Job) -> Service:
    """The service with its interpolated name, as the FSM's Canonicalize leaves it."""
    if name == service.name:
        return service
    return _canonical_service(evolve(service, name=name), job.name or "", group.name, "group",
                              job.namespace or "")


def _submission_env(job: Job, group: Group) -> tuple[dict[str, str], dict[str, str]]:
    """The environment nomad/job_endpoint_hook_connect.go:279 interpolates Connect service names
    with: client/taskenv/env.go:514 NewBuilder(nil, alloc{Job, TaskGroup}, nil, region).Build()
    has no node, task or allocated ports; its maps are the env and the node attributes."""
    env: dict[str, str] = {"NOMAD_ALLOC_INDEX": "0"}  # env.go:575, the index of an unnamed alloc
    for key, value in (("NOMAD_GROUP_NAME", group.name), ("NOMAD_JOB_ID", job.id),
                       ("NOMAD_JOB_NAME", job.name or ""),
                       ("NOMAD_JOB_PARENT_ID", str(job.server.get("ParentID") or "")),
                       ("NOMAD_REGION", job.region or "")):
        if value:
            env[key] = value
    for s in group.services:  # env.go:1030 buildUpstreamsEnv
        sidecar = s.connect.sidecar_service if s.connect is not None else None
        if sidecar is None or sidecar.proxy is None:
            continue
        for u in sidecar.proxy.upstreams:
            port = str(u.local_bind_port or 0)
            for dest in dict.fromkeys((u.destination_name or "", _clean_env(u.destination_name or ""))):
                env["NOMAD_UPSTREAM_IP_" + dest] = "127.0.0.1"
                env["NOMAD_UPSTREAM_PORT_" + dest] = port
                env["NOMAD_UPSTREAM_ADDR_" + dest] = "127.0.0.1:" + port
    nodes = {"node.region": job.region} if job.region else {}
    # env.go:788 CombinedTaskMeta(group, ""): the group's meta over the job's, as NOMAD_META_<key>
    # and NOMAD_META_<KEY>, keys cleaned (env.go:684).
    meta = {**job.meta, **group.meta}
    base = dict(env)
    for key, value in meta.items():
        value = _replace_env(value, nodes, base)
        for name in (key.upper(), key):
            env[_clean_env("NOMAD_META_" + _replace_env(name, nodes, base))] = value
    return env, nodes


def _clean_env(text: str) -> str:
    """helper/funcs.go:206 CleanEnvVar(s, '_'): letters, '_', '.' and (not first) digits kept."""
    return "".join(c if c in "_." or ("a" <= c <= "z") or ("A" <= c <= "Z")
                   or (i > 0 and "0" <= c <= "9") else "_"
                   for i, c in enumerate(text.encode("utf-8").decode("latin-1")))


def _guess_driver(tasks: Iterable[Task]) -> str:
    """nomad/job_endpoint_hook_connect.go:264 groupConnectGuessTaskDriver."""
    drivers = {t.driver for t in tasks}
    return "podman" if "podman" in drivers and "docker" not in drivers else "docker"


def _suffix(job: Job, group: Group, service: str) -> str:
    """Nomad appends 6 random hex digits (uuid.Generate()[:6], job_endpoint_hook_connect.go:306) to
    a sidecar task whose name is taken; nomadmesh derives them from the names, so canonicalize is a
    function. Only a job with a task named `connect-proxy-<service>` of its own sees the difference."""
    import hashlib  # here, not at import: only Connect admission hashes (OpenSSL loads slowly)

    return hashlib.sha256(f"{job.id}\x00{group.name}\x00{service}".encode()).hexdigest()[:6]


def _sidecar_task(service: str, driver: str) -> Task:
    """nomad/job_endpoint_hook_connect.go:524 newConnectSidecarTask."""
    return Task(f"connect-proxy-{service}", kind=f"connect-proxy:{service}", driver=driver,
                config={"image": "${meta.connect.sidecar_image}", "args": list(_ENVOY_ARGS)},
                shutdown_delay=5 * SECOND, logs=LogConfig(max_files=2, max_file_size=2),
                resources=Resources(cpu=250, memory=128),
                lifecycle=Lifecycle(hook="prestart", sidecar=True),
                constraints=(_CONSUL_VERSION, _CONSUL_GRPC))


def _gateway_task(prefix: str, service: str, driver: str, host_network: bool,
                  customized_tls: bool) -> Task:
    """nomad/job_endpoint_hook_connect.go:500 newConnectGatewayTask."""
    config: dict[str, Any] = {"image": "${meta.connect.gateway_image}", "args": list(_ENVOY_ARGS)}
    if host_network:
        config["network_mode"] = "host"
    constraints = (_CONSUL_VERSION, _CONSUL_GRPC, _CONSUL_TLS) if customized_tls else (
        _CONSUL_VERSION, _CONSUL_GRPC)
    return Task(f"{prefix}-{service}", kind=f"{prefix}:{service}", driver=driver, config=config,
                shutdown_delay=5 * SECOND, logs=LogConfig(max_files=2, max_file_size=2),
                resources=Resources(cpu=250, memory=128), constraints=constraints)


def _gateway_prefix(gateway: ConsulGateway) -> str:
    """nomad/structs/services.go:1926 ConsulGateway.Prefix."""
    if gateway.mesh is not None:
        return "connect-mesh"
    return "connect-ingress" if gateway.ingress is not None else "connect-terminating"


def _customized_tls(gateway: ConsulGateway) -> bool:
    """nomad/structs/services.go:1311 ConsulConnect.IsCustomizedTLS."""
    tls = gateway.ingress.tls if gateway.ingress is not None else None
    return tls is not None and bool(tls.tls_min_version or tls.tls_max_version or tls.cipher_suites)


def _merge_sidecar_task(sidecar: SidecarTask, task: Task) -> Task:
    """nomad/structs/services.go:1588 SidecarTask.MergeIntoTask: what the `sidecar_task` block
    sets replaces the injected task's (the api's sidecar-task defaults included, as Nomad does)."""
    changes: dict[str, Any] = {}
    if sidecar.name:
        changes["name"] = sidecar.name
    if sidecar.driver and sidecar.driver != task.driver:
        changes["driver"] = sidecar.driver
        changes["config"] = sidecar.config
    else:
        changes["config"] = {**task.config, **sidecar.config}
    if sidecar.user:
        changes["user"] = sidecar.user
    if sidecar.env:
        changes["env"] = {**task.env, **sidecar.env}
    if sidecar.resources is not None:  # structs.go:2481 Resources.Merge
        mine, theirs = task.resources or Resources(), sidecar.resources
        merged = {name: value for name in ("cpu", "cores", "memory", "memory_max", "disk", "secrets")
                  if (value := getattr(theirs, name))}
        if theirs.networks:
            merged["networks"] = theirs.networks
        if theirs.devices:
            merged["devices"] = theirs.devices
        changes["resources"] = evolve(mine, **merged)
    if sidecar.meta:
        changes["meta"] = {**task.meta, **sidecar.meta}
    if sidecar.kill_timeout is not None:
        changes["kill_timeout"] = sidecar.kill_timeout
    if sidecar.logs is not None:
        if task.logs is None:
            changes["logs"] = sidecar.logs
        else:
            logs = task.logs
            if (sidecar.logs.max_files or 0) > 0:
                logs = evolve(logs, max_files=sidecar.logs.max_files)
            if (sidecar.logs.max_file_size or 0) > 0:
                logs = evolve(logs, max_file_size=sidecar.logs.max_file_size)
            changes["logs"] = logs
    if sidecar.shutdown_delay is not None:
        changes["shutdown_delay"] = sidecar.shutdown_delay
    if sidecar.kill_signal:
        changes["kill_signal"] = sidecar.kill_signal
    # ApiConnectSidecarTaskToStructs makes the mounts an empty list, never nil (job_endpoint.go:2166).
    changes["volume_mounts"] = sidecar.volume_mounts
    if sidecar.identities:
        changes["identities"] = sidecar.identities
    return evolve(task, **changes)


def _inject_port(ports: list[Port], label: str) -> list[Port]:
    """nomad/job_endpoint_hook_connect.go:239 injectPort: a dynamic port mapped to the same port
    in the network namespace (To -1), unless a dynamic port has the label."""
    if any(p.label == label and not p.static for p in ports):
        return ports
    return [*ports, Port(label, to=-1)]


def _native_task(tasks: list[Task], service: Service) -> int | None:
    """nomad/job_endpoint_hook_connect.go:223 getNamedTaskForNativeService (None: refused)."""
    if not service.task:
        return 0 if len(tasks) == 1 else None
    return next((i for i, t in enumerate(tasks) if t.name == service.task), None)


def _gateway_proxy(gateway: ConsulGateway, mode: str) -> ConsulGatewayProxy | None:
    """nomad/job_endpoint_hook_connect.go:423 gatewayProxy: a proxy the operator configured is kept;
    otherwise a 5 s connect timeout and, in bridge or CNI mode, bind addresses per gateway type."""
    proxy = gateway.proxy
    if proxy is not None and (proxy.envoy_gateway_no_default_bind
                              or proxy.envoy_gateway_bind_tagged_addresses
                              or proxy.envoy_gateway_bind_addresses):
        return proxy
    out = ConsulGatewayProxy(
        connect_timeout=proxy.connect_timeout if proxy is not None else None,
        envoy_dns_discovery_type=proxy.envoy_dns_discovery_type if proxy is not None else None,
        config=proxy.config if proxy is not None else {},
    )
    if out.connect_timeout is None:
        out = evolve(out, connect_timeout=5 * SECOND)  # :24 defaultConnectTimeout
    if mode != "bridge" and not mode.startswith("cni/"):
        return out
    if gateway.ingress is not None:  # :482 gatewayBindAddressesIngressForBridge
        addresses = {s.name or "": ConsulGatewayBindAddress(s.name or "", address="0.0.0.0",
                                                            port=listener.port)
                     for listener in gateway.ingress.listeners for s in listener.services}
    elif gateway.terminating is not None:
        addresses = {"default": ConsulGatewayBindAddress("default", address="0.0.0.0", port=-1)}
    elif gateway.mesh is not None:
        addresses = {n: ConsulGatewayBindAddress(n, address="0.0.0.0", port=-1)
                     for n in ("wan", "lan")}
    else:
        return out
    return evolve(out, envoy_gateway_no_default_bind=True, envoy_gateway_bind_tagged_addresses=False,
                  envoy_gateway_bind_addresses=addresses)


def _connect_problems(group: Group, path: str) -> list[Problem]:
    """The errors nomad/job_endpoint_hook_connect.go:274 groupConnectHook returns: a native
    service whose task is ambiguous or missing, a mesh gateway without a port."""
    out = []
    for i, s in enumerate(group.services):
        if s.connect is None or s.connect.sidecar_service is not None:
            continue
        where = f"{path}.service[{i}]"
        if s.connect.native and _native_task(list(group.tasks), s) is None:
            if not s.task:
                message = (f"task for Consul Connect Native service {group.name}->{s.name} is "
                           "ambiguous and must be set")
            else:
                message = (f"task {s.task} named by Consul Connect Native service "
                           f"{group.name}->{s.name} does not exist")
            out.append(Problem(f"{where}.task", f"error in job mutator connect: {message}"))
        elif (not s.connect.native and s.connect.gateway is not None
              and s.connect.gateway.mesh is not None and not s.port):
            out.append(Problem(f"{where}.port", "error in job mutator connect: service.port must "
                                                "be set for mesh gateway service"))
    return out


def _expose_check_hook(group: Group) -> Group:
    """nomad/job_endpoint_hook_expose_check.go:24 jobExposeCheckHook.Mutate: an expose path on the
    sidecar for every exposed HTTP/gRPC check of a Connect group service."""
    if not any(c.expose for s in group.services for c in s.checks):
        return group
    services = list(group.services)
    networks = list(group.networks)
    for i, s in enumerate(services):
        if s.connect is None or s.connect.sidecar_service is None:
            continue
        checks = list(s.checks)
        paths = _expose_paths(s)
        for j, check in enumerate(checks):
            if not check.expose or not _exposable(check) or _network_mode_problem(group):
                continue
            if not check.port:
                # :188: a dynamic port whose label hashes the check and its index.
                suffix = _check_hash(check, f"{s.name}_{j}")[:6]
                port = Port(f"svc_{s.name}_ck_{suffix}", to=-1, host_network="default")
                networks[0] = evolve(networks[0], ports=(*networks[0].ports, port))
                check = checks[j] = evolve(check, port=port.label)
            local = _local_service_port(networks, s.port or "")
            if local is None:
                continue  # refused: see _expose_problems
            path = ConsulExposePath(path=check.path, protocol=check.protocol,
                                    local_path_port=local, listener_port=check.port)
            if path not in paths:
                paths.append(path)
        services[i] = _with_expose_paths(evolve(s, checks=checks), paths)
    return evolve(group, services=services, networks=networks)


def _expose_paths(service: Service) -> list[ConsulExposePath]:
    sidecar = service.connect.sidecar_service if service.connect is not None else None
    proxy = sidecar.proxy if sidecar is not None else None
    return list(proxy.expose.paths) if proxy is not None and proxy.expose is not None else []


def _with_expose_paths(service: Service, paths: list[ConsulExposePath]) -> Service:
    """:86 serviceExposeConfig: the proxy and expose blocks are created when a path is added."""
    assert service.connect is not None and service.connect.sidecar_service is not None
    sidecar = service.connect.sidecar_service
    if not paths and (sidecar.proxy is None or sidecar.proxy.expose is None):
        return service
    proxy = sidecar.proxy or ConsulProxy()
    expose = evolve(proxy.expose or ConsulExposeConfig(), paths=paths)
    sidecar = evolve(sidecar, proxy=evolve(proxy, expose=expose))
    return evolve(service, connect=evolve(service.connect, sidecar_service=sidecar))


def _exposable(check: Check) -> bool:
    """nomad/job_endpoint_hook_expose_check.go:160 checkIsExposable."""
    return (check.type or "").lower() in ("grpc", "http") and (check.path or "").startswith("/")


_GO_INT = re.compile(r"[+-]?[0-9]+")


def _local_service_port(networks: list[Network], label: str) -> int | None:
    """nomad/job_endpoint_hook_expose_check.go:213: the port's static value, else the label as a
    number (strconv.Atoi), else refused."""
    for n in networks:
        for p in n.ports:
            if p.label == label:
                if (p.static or 0) > 0:
                    return p.static
                break
        else:
            continue
        break
    if _GO_INT.fullmatch(label) and int(label) > 0:
        return min(int(label), 2**63 - 1)
    return None


def _network_mode_problem(group: Group, prefix: str = "connect expose check",
                          allow_host: bool = False) -> str | None:
    """nomad/job_endpoint_hook_connect.go:634 groupConnectNetworkModeValidate (the expose-check
    hook borrows it before changing the network, expose_check.go:179)."""
    if len(group.networks) != 1:
        return (f"{prefix}: must have exactly one network for Consul Connect: group "
                f"{go_quote(group.name)} has {len(group.networks)} networks")
    mode = group.networks[0].mode or ""
    if mode == "bridge" or (allow_host and mode == "host") or mode.startswith("cni/"):
        return None
    allowed = '"bridge", "host", or "cni/*"' if allow_host else '"bridge" or "cni/*"'
    return (f"{prefix}: invalid network mode for Consul Connect: group {go_quote(group.name)} "
            f"uses network mode {go_quote(mode)}; must be {allowed}")


def _connect_validate(group: Group, path: str) -> Problem | None:
    """nomad/job_endpoint_hook_connect.go:549 groupConnectValidate: the first problem of the
    group's Connect services, then of their upstreams (:568)."""
    for i, s in enumerate(group.services):
        connect = s.connect
        if connect is None:
            continue
        if connect.sidecar_service is not None:  # :654 groupConnectSidecarValidate
            mode = _network_mode_problem(group, "connect sidecar")
            if mode is not None:
                return Problem(f"{path}.network", mode)
            name = s.name or ""
            if name != name.lower():
                return Problem(f"{path}.service[{i}].name",
                               f"Consul Connect service name {go_quote(name)} in group "
                               f"{go_quote(group.name)} must not contain uppercase characters")
            if group.name != group.name.lower():
                return Problem(path, f"Consul Connect group {go_quote(group.name)} with service "
                                     f"{go_quote(name)} must not contain uppercase characters")
        elif connect.gateway is not None and not connect.native:  # :683
            mode = _network_mode_problem(group, "connect gateway", allow_host=True)
            if mode is not None:
                return Problem(f"{path}.network", mode)
    return _upstreams_validate(group, path)


def _upstreams_validate(group: Group, path: str) -> Problem | None:
    """nomad/job_endpoint_hook_connect.go:568 groupConnectUpstreamsValidate."""
    listeners: dict[str, str] = {}
    connect_blocks = 0
    tproxy = False
    for i, s in enumerate(group.services):
        if s.connect is None:
            continue
        connect_blocks += 1
        sidecar = s.connect.sidecar_service
        if sidecar is None or sidecar.proxy is None:
            continue
        where = f"{path}.service[{i}].connect.sidecar_service.proxy"
        for j, up in enumerate(sidecar.proxy.upstreams):
            listener = up.local_bind_socket_path or _join_host_port(up.local_bind_address or "",
                                                                     up.local_bind_port or 0)
            if listener in listeners:
                return Problem(f"{where}.upstreams[{j}]",
                               f"Consul Connect services {go_quote(s.name or '')} and "
                               f"{go_quote(listeners[listener])} in group {go_quote(group.name)} "
                               f"using same address for upstreams ({listener})")
            listeners[listener] = s.name or ""
        tp = sidecar.proxy.transparent_proxy
        if tp is None:
            continue
        tproxy = True
        if not tp.no_dns and any(n.dns is not None and (n.dns.servers or n.dns.searches
                                                        or n.dns.options) for n in group.networks):
            return Problem(f"{where}.transparent_proxy", "Consul Connect transparent proxy cannot "
                                                         "be used with network.dns unless no_dns=true")
        reserved = {p.label for n in group.networks for p in n.ports if p.static}
        for label in tp.exclude_inbound_ports:
            if not (re.fullmatch("[0-9]+", label) and int(label) <= 65535) and label not in reserved:
                return Problem(f"{where}.transparent_proxy.exclude_inbound_ports",
                               f"Consul Connect transparent proxy port {go_quote(label)} must be "
                               "numeric or one of network.port labels")
    if tproxy and connect_blocks > 1:
        return Problem(path, "Consul Connect transparent proxy requires there is only one "
                             "connect block")
    return None


def _join_host_port(host: str, port: int) -> str:
    """Go's net.JoinHostPort."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _expose_validate(group: Group, path: str) -> Problem | None:
    """nomad/job_endpoint_hook_expose_check.go:61 jobExposeCheckHook.Validate: a group exposing a
    check has one bridge or CNI network; only a Connect sidecar's group service may expose one."""
    if any(c.expose for s in group.services for c in s.checks):
        mode = _network_mode_problem(group)
        if mode is not None:
            return Problem(f"{path}.network", mode)
    for i, s in enumerate(group.services):
        for j, c in enumerate(s.checks):
            if c.expose and (s.connect is None or s.connect.sidecar_service is None):
                return Problem(f"{path}.service[{i}].check[{j}].expose",
                               f"exposed service check {group.name}->{s.name}->{c.name} requires "
                               "use of sidecar_proxy")
    for t in group.tasks:
        for i, s in enumerate(t.services):
            for j, c in enumerate(s.checks):
                if c.expose:
                    return Problem(f"{path}.task[{t.name}].service[{i}].check[{j}].expose",
                                   f"exposed service check {group.name}[{t.name}]->{s.name}->"
                                   f"{c.name} is not a task-group service")
    return None


def _expose_problems(group: Group, path: str) -> list[Problem]:
    """The errors nomad/job_endpoint_hook_expose_check.go:24 Mutate returns for a group service
    with an exposed HTTP/gRPC check: a network that is not one bridge or CNI network, a service
    port that is neither a static port nor a number."""
    out = []
    for i, s in enumerate(group.services):
        if s.connect is None or s.connect.sidecar_service is None:
            continue
        for j, check in enumerate(s.checks):
            if not check.expose or not _exposable(check):
                continue
            where = f"{path}.service[{i}].check[{j}]"
            mode = _network_mode_problem(group)
            if mode is not None:
                return [Problem(f"{path}.network", f"error in job mutator expose-check: {mode}")]
            if _local_service_port(list(group.networks), s.port or "") is None:
                out.append(Problem(where, "error in job mutator expose-check: unable to determine "
                                          f"local service port for service check {group.name}->"
                                          f"{s.name}->{check.name}"))
    return out


def _check_hash(check: Check, service_id: str) -> str:
    """nomad/structs/services.go:487 ServiceCheck.Hash(serviceID), hex sha256."""
    import hashlib  # here, not at import (see _suffix)

    h = hashlib.sha256()
    for part in (service_id, check.name, check.type, check.command, "".join(check.args),
                 check.path, check.protocol, check.port, _go_duration(check.interval or 0),
                 _go_duration(check.timeout or 0), check.method, check.body, check.on_update,
                 check.notes, "true" if check.tls_skip_verify else "", check.tls_server_name):
        h.update((part or "").encode())
    if check.header:
        h.update("".join(sorted(k + "".join(v) for k, v in check.header.items())).encode())
    for part in (check.address_mode, check.grpc_service, "true" if check.grpc_use_tls else ""):
        h.update((part or "").encode())
    for name, value in (("success", check.success_before_passing),
                        ("failures", check.failures_before_critical),
                        ("failures-before-warning", check.failures_before_warning)):
        if value:
            h.update(f"{name}:{value}".encode())
    return h.hexdigest()


def _go_duration(ns: int) -> str:
    """Go's time.Duration.String: "0s", "1.5µs", "250ms", "1m30s", "1h0m0s"."""
    if ns == 0:
        return "0s"
    sign, u = ("-", -ns) if ns < 0 else ("", ns)
    if u < SECOND:
        for unit, scale in (("ns", 1), ("µs", 1_000), ("ms", 1_000_000)):
            if u < scale * 1000:
                return sign + _fraction(u, scale) + unit
    text = _fraction(u % (60 * SECOND), SECOND) + "s"
    minutes = u // (60 * SECOND)
    if minutes:
        text = f"{minutes % 60}m{text}"
        if minutes >= 60:
            text = f"{minutes // 60}h{text}"
    return sign + text


def _fraction(value: int, scale: int) -> str:
    whole, rest = divmod(value, scale)
    if not rest:
        return str(whole)
    digits = len(str(scale)) - 1
    return f"{whole}.{rest:0{digits}d}".rstrip("0")


# nomad/job_endpoint_hooks.go:37: the implied constraints.
_VAULT = Constraint(attribute="${attr.vault.version}", value=">= 0.6.1", operator="semver")
_NSD = Constraint(attribute="${attr.nomad.service_discovery}", value="true", operator="=")
_NSD_CHECKS = Constraint(attribute="${attr.nomad.version}", value=">= 1.4.0", operator="semver")
_NUMA = (Constraint(attribute="${attr.nomad.version}", value=">= 1.6.3-dev", operator="semver"),
         Constraint(attribute="${attr.kernel.name}", value="linux", operator="="))
_CNI = tuple(Constraint(attribute="${attr.plugins.cni.version." + p + "}", value=">= 0.4.0",
                        operator="semver")
             for p in ("bridge", "firewall", "host-local", "loopback", "portmap"))
_TPROXY = (Constraint(attribute="${attr.plugins.cni.version.consul-cni}", value=">= 1.4.2",
                      operator="semver"),
           Constraint(attribute="${attr.nomad.version}", value=">= 1.8.0-dev", operator="semver"))
_TASK_SCHEDULE = Constraint(attribute="${attr.nomad.version}", value=">= 1.8.0-dev",
                            operator="semver")


def _implied_constraints(g: Group, providers: tuple[str, ...]) -> Group:
    """nomad/job_endpoint_hooks.go:260 jobImpliedConstraints.Mutate, for one group."""
    constraints = list(g.constraints)
    # What the tasks ask for, in one pass over them: vault, NUMA, schedules, signals
    # (nomad/structs/structs.go:5210 Job.RequiredSignals) and their services.
    has_vault = has_numa = has_schedule = False
    signals: set[str] = set()
    task_services: list[Service] = []
    for t in g.tasks:
        vault = t.vault
        if vault is not None:
            has_vault = True
            if vault.change_mode == "signal":
                signals.add(vault.change_signal or "")
        if (t.resources is not None and t.resources.numa is not None
                and (t.resources.numa.affinity or "none") != "none"):
            has_numa = True
        if t.schedule is not None:
            has_schedule = True
        if t.kill_signal:
            signals.add(t.kill_signal)
        for tpl in t.templates:
            if tpl.change_mode == "signal":
                signals.add(tpl.change_signal or "")
        if t.services:
            task_services += t.services
    # The tasks' vault blocks in the order of their names (job_endpoint_hooks.go:301).
    for vault in (t.vault for t in (sorted(g.tasks, key=lambda t: t.name) if has_vault else ())
                  if t.vault is not None):
        cluster = vault.cluster or "default"
        _add_left(constraints, _VAULT if cluster == "default" else Constraint(
            attribute=f"${{attr.vault.{cluster}.version}}", value=">= 1.11.0",
            operator="semver"))
    for provider in providers:
        _add_left(constraints, Constraint(
            attribute=f"${{attr.plugins.secrets.{provider}.version}}", operator="is_set"))
    if has_numa:
        for c in _NUMA:
            _add_full(constraints, c)
    if signals:  # nomad/job_endpoint.go:423 getSignalConstraint
        _add_full(constraints, Constraint(attribute="${attr.os.signals}",
                                          value=",".join(sorted(signals)), operator="set_contains"))
    every = [*g.services, *task_services] if task_services else g.services
    nomad_services = [s for s in every if s.provider == "nomad"]
    if nomad_services:
        _add_full(constraints, _NSD)
        if any(s.checks for s in nomad_services):
            _add_full(constraints, _NSD_CHECKS)
    tasks = g.tasks
    consul_group = any(s.provider in (None, "", "consul") for s in g.services)
    if consul_group:
        _add_left(constraints, _CONSUL_VERSION)
    if task_services and any(s.provider in (None, "", "consul") for s in task_services):
        tasks = tuple(_task_consul_constraint(t) for t in g.tasks)
        if _same(tasks, g.tasks):
            tasks = g.tasks
    for n in g.networks:
        if n.mode == "bridge":
            attributes = {c.attribute for c in constraints}
            for c in _CNI:  # _add_left of each (their attributes differ)
                if c.attribute not in attributes:
                    constraints.append(c)
            break
    for s in g.services:
        if (s.connect is not None and s.connect.sidecar_service is not None
                and s.connect.sidecar_service.proxy is not None
                and s.connect.sidecar_service.proxy.transparent_proxy is not None):
            for c in _TPROXY:
                _add_left(constraints, c)
            break
    if has_schedule:
        _add_left(constraints, _TASK_SCHEDULE)
    if tasks is g.tasks and len(constraints) == len(g.constraints):
        return g
    return _implied_group(g, tasks, constraints)


_implied_group = copier(Group, ("tasks", "constraints"), globals(), "_implied_group")


def _task_consul_constraint(task: Task) -> Task:
    """nomad/job_endpoint_hooks.go:347: a task with a Consul service gets the Consul version
    constraint itself."""
    if not task.services or not any(s.provider in (None, "", "consul") for s in task.services):
        return task
    constraints = list(task.constraints)
    _add_left(constraints, _CONSUL_VERSION)
    return task if len(constraints) == len(task.constraints) else evolve(task, constraints=constraints)


def _add_left(constraints: list[Constraint], implied: Constraint) -> None:
    """nomad/job_endpoint_hooks.go:462 constraintMatcherLeft: unless one has the same attribute."""
    attribute = implied.attribute
    for c in constraints:
        if c.attribute == attribute:
            return
    constraints.append(implied)


def _add_full(constraints: list[Constraint], implied: Constraint) -> None:
    """nomad/job_endpoint_hooks.go:455 constraintMatcherFull: unless an equal one is there."""
    if implied not in constraints:
        constraints.append(implied)


# nomad/job_endpoint_hook_implicit_identities.go:53.
_IDENTITY_VERSION = Constraint(attribute="${attr.nomad.version}", value=">= 1.7.0-a",
                               operator="semver")


def _implicit_identities(group: Group, config: ServerConfig) -> Group:
    """nomad/job_endpoint_hook_implicit_identities.go:20 jobImplicitIdentitiesHook.Mutate."""
    services = tuple(_service_identity(s, config) for s in group.services)
    has_identity = any(s.identity is not None for s in services)
    # Without the server's task identities (Nomad's default) a task gains none.
    task_identities = (config.consul_task_identity is not None
                       or config.vault_default_identity is not None)
    tasks = []
    for t in group.tasks:
        if t.services:
            task_services = tuple(_service_identity(s, config) for s in t.services)
            if not _same(task_services, t.services):
                t = evolve(t, services=task_services)
            has_identity = has_identity or any(s.identity is not None for s in t.services)
        if task_identities:
            t = _vault_identity(_consul_task_identity(t, group, config), config)
        has_identity = has_identity or bool(t.identities)
        tasks.append(t)
    changes: dict[str, Any] = {}
    if not _same(services, group.services):
        changes["services"] = services
    if not _same(tuple(tasks), group.tasks):
        changes["tasks"] = tasks
    # Nomad appends it on every registration; added once here, as the partition constraint.
    if has_identity and _IDENTITY_VERSION not in group.constraints:
        changes["constraints"] = (*group.constraints, _IDENTITY_VERSION)
    return evolve(group, **changes) if changes else group


def _from_config(wid: WorkloadIdentity) -> WorkloadIdentity:
    """nomad/config.go:598 workloadIdentityFromConfig: audience, env, file, filepath and TTL."""
    return WorkloadIdentity(aud=wid.aud, env=wid.env, file=wid.file, filepath=wid.filepath,
                            ttl=wid.ttl)


def _service_identity(service: Service, config: ServerConfig) -> Service:
    """:69 handleConsulService: a Consul service's identity (its own or the server's) is named
    for the service (nomad/structs/services.go:813 MakeUniqueIdentityName)."""
    if service.provider not in (None, "", "consul"):
        return service
    wid = service.identity
    if wid is None:
        if config.consul_service_identity is None:
            return service
        wid = _from_config(config.consul_service_identity)
    owner = f"{service.task}-" if service.task else ""
    name = f"consul-service_{owner}{service.name or ''}-{service.port or ''}"
    if (wid.name, wid.service_name) == (name, service.name) and wid is service.identity:
        return service
    return evolve(service, identity=evolve(wid, name=name, service_name=service.name))


def _consul_task_identity(task: Task, group: Group, config: ServerConfig) -> Task:
    """:101 handleConsulTask: the server's Consul task identity for a task of a group or task
    with a `consul` block, unless the task has one of that name."""
    consul = task.consul if task.consul is not None else group.consul
    if consul is None or config.consul_task_identity is None:
        return task
    name = f"consul_{consul.cluster or 'default'}"  # nomad/structs/consul.go:81 IdentityName
    if any(w.name == name for w in task.identities):
        return task
    wid = _canonical_identity(evolve(_from_config(config.consul_task_identity), name=name))
    return evolve(task, identities=(*task.identities, wid))


def _vault_identity(task: Task, config: ServerConfig) -> Task:
    """:146 handleVault: the server's Vault default identity for a task with a `vault` block,
    unless the task has one of that name."""
    if task.vault is None or config.vault_default_identity is None:
        return task
    name = f"vault_{task.vault.cluster or 'default'}"  # nomad/structs/structs.go:10466
    if any(w.name == name for w in task.identities):
        return task
    wid = _canonical_identity(evolve(_from_config(config.vault_default_identity), name=name))
    return evolve(task, identities=(*task.identities, wid))


# --- the Go zeros of what the server keeps as values ---------------------------------------------


_ZEROS: dict[Kind, Any] = {Kind.STR: "", Kind.INT: 0, Kind.BOOL: False, Kind.DURATION: 0}
_EMPTY_REPR: dict[Kind, str] = {Kind.BLOCKS: "()", Kind.STRS: "()", Kind.INTS: "()",
                                Kind.MAP: "{}", Kind.MAP_STRS: "{}", Kind.ANY: "{}",
                                Kind.BLOCK_MAP: "{}"}


@cache
def _structs_values() -> tuple[dict[str, frozenset[str]], dict[str, frozenset[str]],
                               dict[str, frozenset[str]], frozenset[str]]:
    """nomadmesh/data/nomad_structs_values.json (scripts/regen-structs-values): per api struct, the
    pointer fields the server keeps as Go values, the pointer-to-struct fields it keeps as struct
    values, the fields it does not keep; and the structs whose zeros a GET leaves out."""
    from importlib import resources  # here: it imports tempfile, random and hashlib

    text = resources.files("nomadmesh.data").joinpath("nomad_structs_values.json").read_text("utf-8")
    data = json.loads(text)
    values, blocks, dropped = ({k: frozenset(v) for k, v in data[part].items()}
                               for part in ("values", "blocks", "dropped"))
    return values, blocks, dropped, frozenset(data["omit_empty"])


def _as_stored(obj: T) -> T:
    """`obj` with the Go zero of every field the server keeps as a value, which a GET returns."""
    return _storer(type(obj))(obj)  # type: ignore[no-any-return]


_storers: dict[type, Callable[[Any], Any]] = {}


def _storer(cls: type) -> Callable[[Any], Any]:
    """Compile `_as_stored` for one class from its field table and the structs facts."""
    try:
        return _storers[cls]
    except KeyError:
        pass
    _storers[cls] = lambda obj: _storers[cls](obj)  # a placeholder while compiling
    values, blocks, dropped, omit_empty = _structs_values()
    go = cls._go  # type: ignore[attr-defined]
    zero_keys, block_keys = values.get(go, frozenset()), blocks.get(go, frozenset())
    drop_keys = dropped.get(go, frozenset())
    label = label_spec(cls)
    namespace: dict[str, Any] = {"evolve": evolve, "same": _same}
    lines = ["def stored(obj):", "    ch = {}"]
    for i, s in enumerate(specs(cls)):
        read = f"    v = obj.{s.name}"
        if s.api in drop_keys and s is not label:
            empty = _EMPTY_REPR.get(s.kind, "None")
            lines += [read, f"    if v: ch[{s.name!r}] = {empty}" if empty != "None"
                      else f"    if v is not None: ch[{s.name!r}] = None"]
        elif s.api in zero_keys:
            lines += [read, f"    if v is None: ch[{s.name!r}] = {_ZEROS[s.kind]!r}"]
        elif go in omit_empty and s.kind in _ZEROS and s is not label:
            # A GET leaves this struct's zero fields out: a zero set by hand reads back unset.
            lines += [read, f"    if v is not None and not v: ch[{s.name!r}] = None"]
        elif s.api in block_keys:
            assert s.block is not None
            namespace[f"new{i}"] = s.block
            namespace[f"sub{i}"] = _storer(s.block)
            lines += [read, f"    n = sub{i}(new{i}() if v is None else v)",
                      f"    if n is not v: ch[{s.name!r}] = n"]
        elif s.block is not None and _storer(s.block) is not _unchanged:
            namespace[f"sub{i}"] = _storers[s.block] if s.block in _storers else _storer(s.block)
            lines.append(read)
            if s.kind is Kind.BLOCK:
                lines += ["    if v is not None:", f"        n = sub{i}(v)",
                          f"        if n is not v: ch[{s.name!r}] = n"]
            elif s.kind is Kind.BLOCKS:
                lines += ["    if v:", f"        n = tuple(map(sub{i}, v))",
                          f"        if not same(n, v): ch[{s.name!r}] = n"]
            else:
                lines += ["    if v:", f"        n = {{k: sub{i}(x) for k, x in v.items()}}",
                          f"        if not same(tuple(n.values()), tuple(v.values())): ch[{s.name!r}] = n"]
    if len(lines) == 2:
        _storers[cls] = _unchanged
        return _unchanged
    lines.append("    return evolve(obj, **ch) if ch else obj")
    # Generated from the model's field table and nomad_structs_values.json only.
    exec(compile_generated("\n".join(lines), f"<nomadmesh stored {cls.__name__}>"), namespace)
    result: Callable[[Any], Any] = namespace["stored"]
    _storers[cls] = result
    return result


def _unchanged(obj: Any) -> Any:
    return obj


def _same(new: tuple[Any, ...], old: tuple[Any, ...]) -> bool:
    """The same values, by identity (`new` was made from `old`, element by element)."""
    return new is old or (len(new) == len(old) and all(map(operator.is_, new, old)))
