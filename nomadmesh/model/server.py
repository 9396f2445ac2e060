"""What a Nomad server makes of a job after the agent's `api.Job.Canonicalize()`: the conversion to
its own structs, `structs.Job.Canonicalize` and the admission hooks that set defaults.

So `canonicalize(job)` is the job as `GET /v1/job/<id>` returns it, for the parts that depend on the
job alone. Not modelled, because they depend on the cluster's configuration or add whole blocks:
the Connect sidecar and gateway tasks and ports (nomad/job_endpoint_hook_connect.go; validation
counts the tasks it would add), implied constraints
(nomad/job_endpoint_hooks.go:260), implicit Consul/Vault identities
(nomad/job_endpoint_hook_implicit_identities.go) and the NUMA hook.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any, TypeVar

from nomadmesh.model._base import Kind, evolve, go_quote, specs
from nomadmesh.model.identity import Consul, WorkloadIdentity
from nomadmesh.model.network import Network
from nomadmesh.model.placement import Constraint
from nomadmesh.model.policies import UpdateStrategy
from nomadmesh.model.service import Check, Service

if TYPE_CHECKING:
    from nomadmesh.model.group import Group
    from nomadmesh.model.job import Job
    from nomadmesh.model.task import Task

T = TypeVar("T")

DEFAULT_IDENTITY = "default"  # nomad/structs/workload_id.go:23
DEFAULT_AUDIENCE = "nomadproject.io"  # nomad/structs/identity.go:16


def stored(job: Job, *, zero_fill: bool = True) -> Job:
    """`job` (already api-canonical) as the server stores it; `zero_fill=False` leaves out the Go
    zeros of fields the server keeps as values (what validation reads as zero anyway)."""
    update = job.update
    # command/agent/job_endpoint.go:1151: the update strategy was pushed into the groups; the job
    # keeps only stagger and max_parallel, and a zero strategy (a Go value) when max_parallel <= 0.
    if update is not None and update.max_parallel is not None and update.max_parallel > 0:
        update = _zero_update(stagger=update.stagger or 0, max_parallel=update.max_parallel)
    else:
        update = _zero_update()
    groups = tuple(_group(g, job) for g in job.groups)
    out = evolve(
        job,
        update=update,
        # Merged into every group by api/tasks.go:575 and :589; the server does not keep them.
        reschedule=None,
        migrate=None,
        # ApiJobToStructJob (command/agent/job_endpoint.go:1128) does not carry it over.
        consul_namespace=None,
        # nomad/structs/structs.go:4684: no datacenters means every datacenter.
        datacenters=job.datacenters or ("*",),
        # nomad/job_endpoint_hooks.go:245: the server's default priority (50 unless configured).
        priority=job.priority or 50,
        # nomad/job_endpoint_hook_node_pool_ce.go:27.
        node_pool=job.node_pool or "default",
        # nomad/structs/structs.go:6101 ParameterizedJobConfig.Canonicalize.
        parameterized=(evolve(job.parameterized, payload=job.parameterized.payload or "optional")
                       if job.parameterized is not None else None),
        groups=groups,
    )
    return _as_stored(out) if zero_fill else out


_ZEROS: dict[Kind, Any] = {Kind.STR: "", Kind.INT: 0, Kind.BOOL: False, Kind.DURATION: 0}


@cache
def _structs_values() -> tuple[dict[str, frozenset[str]], dict[str, frozenset[str]]]:
    """nomadmesh/data/nomad_structs_values.json (scripts/regen-structs-values): per api struct, the
    pointer fields the server keeps as Go values, and the fields it does not keep."""
    text = resources.files("nomadmesh.data").joinpath("nomad_structs_values.json").read_text("utf-8")
    data = json.loads(text)
    return ({k: frozenset(v) for k, v in data["values"].items()},
            {k: frozenset(v) for k, v in data["dropped"].items()})


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
    values, dropped = _structs_values()
    go = cls._go  # type: ignore[attr-defined]
    zero_keys, drop_keys = values.get(go, frozenset()), dropped.get(go, frozenset())
    namespace: dict[str, Any] = {"evolve": evolve, "same": _same}
    lines = ["def stored(obj):", "    ch = {}"]
    for i, s in enumerate(specs(cls)):
        read = f"    v = obj.{s.name}"
        if s.api in drop_keys:
            lines += [read, f"    if v is not None: ch[{s.name!r}] = None"]
        elif s.api in zero_keys:
            lines += [read, f"    if v is None: ch[{s.name!r}] = {_ZEROS[s.kind]!r}"]
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
    exec(compile("\n".join(lines), f"<nomadmesh stored {cls.__name__}>", "exec"), namespace)
    result: Callable[[Any], Any] = namespace["stored"]
    _storers[cls] = result
    return result


def _unchanged(obj: Any) -> Any:
    return obj


def _same(new: tuple[Any, ...], old: tuple[Any, ...]) -> bool:
    return all(map(operator.is_, new, old))


def _zero_update(stagger: int = 0, max_parallel: int = 0) -> UpdateStrategy:
    return UpdateStrategy(stagger=stagger, max_parallel=max_parallel, health_check="",
                          min_healthy_time=0, healthy_deadline=0, progress_deadline=0, canary=0,
                          auto_revert=False, auto_promote=False)


def _group(group: Group, job: Job) -> Group:
    """nomad/structs/structs.go:7020 TaskGroup.Canonicalize, and the Consul hook's partition
    constraint (nomad/job_endpoint_hook_consul.go:45)."""
    job_name, namespace = job.name or "", job.namespace or ""
    return evolve(
        group,
        constraints=_with_partition(group.constraints, group.consul),
        services=tuple(_native_task(_service(s, job_name, group.name, "group", namespace), group)
                       for s in group.services),
        networks=tuple(_network(n) for n in group.networks),
        tasks=tuple(_task(t, job_name, group.name, namespace) for t in group.tasks),
    )


def _native_task(service: Service, group: Group) -> Service:
    """nomad/job_endpoint_hook_connect.go:327: a Connect native service in a group of one task
    is that task's (getNamedTaskForNativeService infers it)."""
    if (service.connect is None or not service.connect.native or service.task
            or len(group.tasks) != 1):
        return service
    return evolve(service, task=group.tasks[0].name)


def _with_partition(constraints: tuple[Constraint, ...], consul: Consul | None
                    ) -> tuple[Constraint, ...]:
    """nomad/job_endpoint_hook_consul.go:79 newConsulPartitionConstraint (the default cluster),
    added once (the hook runs on a job the user wrote, which never holds it yet)."""
    if consul is None or not consul.partition:
        return constraints
    implied = Constraint(attribute="${attr.consul.partition}", value=consul.partition, operator="=")
    return constraints if implied in constraints else (*constraints, implied)


def _network(network: Network) -> Network:
    """nomad/structs/structs.go:2914 NetworkResource.Canonicalize: host network "default"."""
    if all(p.host_network for p in network.ports):
        return network
    return evolve(network, ports=[p if p.host_network else evolve(p, host_network="default")
                                  for p in network.ports])


def _task(task: Task, job_name: str, group_name: str, namespace: str) -> Task:
    """nomad/structs/structs.go:8115 Task.Canonicalize: services, networks, the default identity."""
    identity = task.identity
    identities = []
    for wid in task.identities:
        wid = _identity(wid)
        if wid.name == DEFAULT_IDENTITY:
            identity = wid  # for backward compatibility the default one lives in Task.Identity
        else:
            identities.append(wid)
    identity = (_identity(identity) if identity is not None
                else WorkloadIdentity(name=DEFAULT_IDENTITY, aud=[DEFAULT_AUDIENCE]))
    resources = task.resources
    if resources is not None:
        # command/agent/job_endpoint.go:1598 ApiResourcesToStructs does not carry DiskMB over.
        resources = evolve(resources, disk=None,
                           networks=[_network(n) for n in resources.networks])
    return evolve(
        task,
        constraints=_with_partition(task.constraints, task.consul),
        resources=resources,
        services=tuple(_service(s, job_name, group_name, task.name, namespace)
                       for s in task.services),
        identity=identity,
        identities=identities,
    )


def _identity(wid: WorkloadIdentity) -> WorkloadIdentity:
    """nomad/structs/workload_id.go:432 WorkloadIdentity.Canonicalize."""
    name = wid.name or DEFAULT_IDENTITY
    aud = (DEFAULT_AUDIENCE,) if name == DEFAULT_IDENTITY else wid.aud
    signal = wid.change_signal.upper() if wid.change_signal else wid.change_signal
    return evolve(wid, name=name, aud=aud, change_signal=signal)


def _service(service: Service, job: str, group: str, task: str, namespace: str) -> Service:
    """nomad/structs/services.go:694 Service.Canonicalize(job, taskGroup, task, jobNamespace)."""
    task_name = service.task or (task if task != "group" else None)
    name = _replace_env(service.name or "", {"JOB": job, "TASKGROUP": group, "TASK": task,
                                             "BASE": f"{job}-{group}-{task}"})
    checks = tuple(_check(c, name, task_name) for c in service.checks)
    return evolve(service, task=task_name, name=name, checks=checks,
                  provider=service.provider or "consul")


def _check(check: Check, service_name: str, task_name: str | None) -> Check:
    """nomad/structs/services.go:222 ServiceCheck.Canonicalize(serviceName, taskName)."""
    return evolve(check, name=check.name or f"service: {go_quote(service_name)} check",
                  task=check.task or task_name, on_update=check.on_update or "require_healthy")


def _replace_env(text: str, env: dict[str, str]) -> str:
    """helper/args ReplaceEnv: `${KEY}` for the keys given, the rest left as written."""
    for key, value in env.items():
        text = text.replace("${" + key + "}", value)
    return text
