"""Nomad's server defaults, applied locally (the job `GET /v1/job/<id>` would return).

Each block's own defaults live in its `canonicalize()` method beside its fields; this module walks
the job in Nomad's order, passing down what a block inherits (job type, group restart policy, job
update strategy), then fills every scalar nobody set with its Go zero value, because that is what
the server reports for it. `canonicalize(local) == canonicalize(Job.from_api(server_json))` is the
comparison a deploy needs.
"""

from __future__ import annotations

from typing import Any, TypeVar

import attrs

from nomadmesh.model import (
    CheckRestart,
    EphemeralDisk,
    Group,
    Job,
    LogConfig,
    MigrateStrategy,
    Network,
    Port,
    ReschedulePolicy,
    Resources,
    RestartPolicy,
    Service,
    Task,
    Template,
    UpdateStrategy,
)
from nomadmesh.model._base import SECOND, Kind, overlay, specs

T = TypeVar("T")

# Scalars Nomad keeps as pointers (null when unset), so they are not zero-filled.
_NULLABLE = {(Template, "uid"), (Template, "gid")}
_ZERO: dict[Kind, Any] = {Kind.STR: "", Kind.INT: 0, Kind.FLOAT: 0.0, Kind.BOOL: False,
                          Kind.DURATION: 0}


def canonicalize(job: Job) -> Job:
    """The job with Nomad's server defaults applied; idempotent."""
    job_type = job.type or "service"
    update: UpdateStrategy | None = None
    if job_type in ("service", "system"):
        update = (job.update or UpdateStrategy()).merged_onto(UpdateStrategy.default())
    job_name = job.name or job.id
    groups = tuple(_group(g, job, job_type, job_name, update) for g in job.groups)
    out = attrs.evolve(
        job,
        name=job_name,
        type=job_type,
        region=job.region or "global",
        namespace=job.namespace or "default",
        priority=job.priority if job.priority is not None else 50,
        datacenters=job.datacenters or ("*",),
        node_pool=job.node_pool or "default",
        update=update,
        # Job-level reschedule and migrate are folded into each group, as the server does.
        reschedule=None,
        migrate=None,
        constraints=tuple(c.canonicalize() for c in job.constraints),
        affinities=tuple(a.canonicalize() for a in job.affinities),
        spreads=tuple(s.canonicalize() for s in job.spreads),
        periodic=job.periodic.canonicalize() if job.periodic else None,
        parameterized=job.parameterized.canonicalize() if job.parameterized else None,
        groups=groups,
    )
    return _zero_fill(out)


def _group(group: Group, job: Job, job_type: str, job_name: str,
           job_update: UpdateStrategy | None) -> Group:
    restart = (group.restart or RestartPolicy()).merged_onto(RestartPolicy.default_for(job_type))
    default_reschedule = ReschedulePolicy.default_for(job_type)
    reschedule: ReschedulePolicy | None = None
    if default_reschedule is not None:
        reschedule = overlay(overlay(default_reschedule, job.reschedule), group.reschedule)
    update = None
    if job_update is not None:
        update = (group.update or UpdateStrategy()).merged_onto(job_update)
    migrate = None
    if job_type == "service":
        migrate = overlay(overlay(MigrateStrategy.default(), job.migrate), group.migrate)
    tasks = tuple(_task(t, group, job_name, restart) for t in group.tasks)
    return attrs.evolve(
        group,
        count=1 if group.count is None else group.count,
        restart=restart,
        reschedule=reschedule,
        update=update,
        migrate=migrate,
        ephemeral_disk=(group.ephemeral_disk or EphemeralDisk()).canonicalize(),
        networks=tuple(_network(n) for n in group.networks),
        services=tuple(_service(s, None, group, job_name) for s in group.services),
        constraints=tuple(c.canonicalize() for c in group.constraints),
        affinities=tuple(a.canonicalize() for a in group.affinities),
        spreads=tuple(s.canonicalize() for s in group.spreads),
        tasks=tasks,
    )


def _task(task: Task, group: Group, job_name: str, group_restart: RestartPolicy) -> Task:
    lifecycle = task.lifecycle if task.lifecycle is not None and task.lifecycle.hook else None
    return attrs.evolve(
        task,
        resources=(task.resources or Resources()).canonicalize(),
        logs=(task.logs or LogConfig()).canonicalize(),
        restart=(task.restart or RestartPolicy()).merged_onto(group_restart),
        kill_timeout=5 * SECOND if task.kill_timeout is None else task.kill_timeout,
        lifecycle=lifecycle,
        templates=tuple(t.canonicalize() for t in task.templates),
        artifacts=tuple(a.canonicalize() for a in task.artifacts),
        services=tuple(_service(s, task, group, job_name) for s in task.services),
        constraints=tuple(c.canonicalize() for c in task.constraints),
        affinities=tuple(a.canonicalize() for a in task.affinities),
    )


def _network(network: Network) -> Network:
    ports = tuple(
        attrs.evolve(p, host_network=p.host_network or "default") for p in network.ports
    )
    return attrs.evolve(network.canonicalize(), ports=ports)


def _service(service: Service, task: Task | None, group: Group, job_name: str) -> Service:
    name = service.name
    if not name:
        name = f"{job_name}-{group.name}-{task.name}" if task else f"{job_name}-{group.name}"
    checks = []
    for check in service.checks:
        restart = _merge_check_restart(service.check_restart, check.check_restart)
        checks.append(attrs.evolve(check, check_restart=restart,
                                   on_update=check.on_update or "require_healthy"))
    return attrs.evolve(
        service,
        name=name,
        address_mode=service.address_mode or "auto",
        provider=service.provider or "consul",
        on_update=service.on_update or "require_healthy",
        checks=tuple(checks),
    )


def _merge_check_restart(base: CheckRestart | None,
                         override: CheckRestart | None) -> CheckRestart | None:
    merged = overlay(base, override)
    if merged is None:
        return None
    return merged if merged.grace is not None else attrs.evolve(merged, grace=SECOND)


def _zero_fill(obj: T) -> T:
    """Set every unset scalar to its Go zero value, recursively (what Nomad reports)."""
    cls = type(obj)
    changes: dict[str, Any] = {}
    for s in specs(cls):
        value = getattr(obj, s.name)
        if s.kind is Kind.BLOCK:
            if value is not None:
                filled = _zero_fill(value)
                if filled is not value:
                    changes[s.name] = filled
        elif s.kind is Kind.BLOCKS:
            if value:
                filled_items = tuple(_zero_fill(v) for v in value)
                if any(a is not b for a, b in zip(filled_items, value, strict=True)):
                    changes[s.name] = filled_items
        elif value is None and s.kind in _ZERO and not s.label and (cls, s.name) not in _NULLABLE:
            if cls is Port and s.name == "static":
                continue  # a dynamic port has no value until Nomad picks one
            changes[s.name] = _ZERO[s.kind]
    return attrs.evolve(obj, **changes) if changes else obj  # type: ignore[misc]
