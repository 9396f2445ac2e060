"""A task group: the unit Nomad places, with its tasks, network, services, volumes and policies
(api/tasks.go)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache
from typing import TYPE_CHECKING, ClassVar

import attrs

from nomadmesh.model import _base
from nomadmesh.model._base import (
    BLOCK,
    BLOCK_MAP,
    BLOCKS,
    BOOL,
    DURATION,
    EMPTY,
    INT,
    MAP,
    block_map,
    field,
    go,
    label,
    to_duration,
    to_tuple,
)
from nomadmesh.model._copy import Memo, copier
from nomadmesh.model.identity import Consul
from nomadmesh.model.network import Network, Port, networks
from nomadmesh.model.placement import Affinity, Constraint, Spread, affinities, constraints, spreads
from nomadmesh.model.policies import (
    Disconnect,
    MigrateStrategy,
    ReschedulePolicy,
    RestartPolicy,
    UpdateStrategy,
    empty_migrate,
)
from nomadmesh.model.resources import EphemeralDisk
from nomadmesh.model.scaling import Scaling
from nomadmesh.model.service import Service, services
from nomadmesh.model.task import Task, canonical_task, tasks
from nomadmesh.model.volumes import VolumeRequest

if TYPE_CHECKING:
    from nomadmesh.model.job import Job


def _volumes(value: Mapping[str, VolumeRequest] | Iterable[VolumeRequest] | None
             ) -> Mapping[str, VolumeRequest]:
    return block_map(value)


def _pointer_duration(api: str) -> dict[str, object]:
    return go(api, DURATION, ptr=True)


@_base.frozen(slots=False, repr=False)
class Group:
    """A task group: `Group("api", count=2, tasks=[Task(...)])`."""

    _go: ClassVar[str] = "TaskGroup"

    name: str = label("Name", ptr=True)
    count: int | None = field("Count", INT, ptr=True)
    constraints: tuple[Constraint, ...] = attrs.field(
        default=(), kw_only=True, converter=constraints,
        metadata=go("Constraints", BLOCKS, hcl="constraint", block=Constraint))
    affinities: tuple[Affinity, ...] = attrs.field(
        default=(), kw_only=True, converter=affinities,
        metadata=go("Affinities", BLOCKS, hcl="affinity", block=Affinity))
    tasks: tuple[Task, ...] = attrs.field(
        default=(), kw_only=True, converter=tasks,
        metadata=go("Tasks", BLOCKS, hcl="task", block=Task))
    spreads: tuple[Spread, ...] = attrs.field(
        default=(), kw_only=True, converter=spreads,
        metadata=go("Spreads", BLOCKS, hcl="spread", block=Spread))
    # A JSON object keyed by volume name, as Nomad's map[string]*VolumeRequest; a list of
    # VolumeRequests is accepted too and keyed by their names.
    volumes: Mapping[str, VolumeRequest] = attrs.field(
        default=EMPTY, kw_only=True, converter=_volumes,
        metadata=go("Volumes", BLOCK_MAP, hcl="volume", block=VolumeRequest))
    restart: RestartPolicy | None = field("RestartPolicy", BLOCK, hcl="restart", block=RestartPolicy)
    disconnect: Disconnect | None = field("Disconnect", BLOCK, block=Disconnect)
    reschedule: ReschedulePolicy | None = field("ReschedulePolicy", BLOCK, hcl="reschedule",
                                                block=ReschedulePolicy)
    ephemeral_disk: EphemeralDisk | None = field("EphemeralDisk", BLOCK, block=EphemeralDisk)
    update: UpdateStrategy | None = field("Update", BLOCK, block=UpdateStrategy)
    migrate: MigrateStrategy | None = field("Migrate", BLOCK, block=MigrateStrategy)
    networks: tuple[Network, ...] = attrs.field(
        default=(), kw_only=True, converter=networks,
        metadata=go("Networks", BLOCKS, hcl="network", block=Network))
    meta: Mapping[str, str] = field("Meta", MAP)
    services: tuple[Service, ...] = attrs.field(
        default=(), kw_only=True, converter=services,
        metadata=go("Services", BLOCKS, hcl="service", block=Service))
    shutdown_delay: int | None = attrs.field(default=None, kw_only=True, converter=to_duration,
                                             metadata=_pointer_duration("ShutdownDelay"))
    max_run_duration: int | None = attrs.field(default=None, kw_only=True, converter=to_duration,
                                               metadata=_pointer_duration("MaxRunDuration"))
    stop_after_client_disconnect: int | None = attrs.field(
        default=None, kw_only=True, converter=to_duration,
        metadata=_pointer_duration("StopAfterClientDisconnect"))
    max_client_disconnect: int | None = attrs.field(
        default=None, kw_only=True, converter=to_duration,
        metadata=_pointer_duration("MaxClientDisconnect"))
    scaling: Scaling | None = field("Scaling", BLOCK, block=Scaling)
    consul: Consul | None = field("Consul", BLOCK, block=Consul)
    prevent_reschedule_on_lost: bool | None = field("PreventRescheduleOnLost", BOOL, ptr=True)

    def task(self, name: str) -> Task | None:
        """The task with this name, if the group has it."""
        for t in self.tasks:
            if t.name == name:
                return t
        return None

    @property
    def ports(self) -> tuple[Port, ...]:
        """Every port declared by the group's networks."""
        nets = self.networks
        if len(nets) == 1:
            return nets[0].ports
        return tuple(p for n in nets for p in n.ports)

    def canonicalize(self, job: Job, *, memo: Memo | None = None) -> Group:
        """api/tasks.go:530 TaskGroup.Canonicalize(job), with `job`'s own fields canonical.
        `memo`: the job's pass (nomadmesh.model._copy.Memo)."""
        if memo is None:
            memo = Memo()
        job_type = "service" if job.type is None else job.type
        count = self.count
        if count is None:
            count = self.scaling.min if self.scaling is not None and self.scaling.min is not None else 1
        update = self.update
        if job.update is not None and update is not None:
            update = memo.overlay(job.update, update)
        elif job.update is not None and not job.update.is_empty():
            update = job.update
        reschedule = (memo.overlay(job.reschedule, self.reschedule) if job.reschedule
                      else self.reschedule)
        if reschedule is None and job_type not in ("sysbatch", "system"):
            reschedule = ReschedulePolicy.default_for(job_type)
        migrate = memo.overlay(job.migrate, self.migrate) if job.migrate else self.migrate
        if migrate is None and job_type == "service":
            migrate = empty_migrate()
        restart = memo.overlay(RestartPolicy.default_for(job_type), self.restart)
        job_name = job.name or ""
        # One copy: the tasks read only the group's name and its canonical restart policy.
        return _canonical_group(
            self,
            count,
            self.scaling.canonicalize(count) if self.scaling is not None else None,
            (memo.canonical(self.ephemeral_disk) if self.ephemeral_disk is not None
             else _default_disk()),
            self.consul.canonicalize(job.consul_namespace) if self.consul is not None else None,
            memo.canonical(update) if update is not None else None,
            memo.canonical_for(reschedule, job_type) if reschedule is not None else None,
            memo.canonical(migrate) if migrate is not None else None,
            restart,
            tuple(canonical_task(t, self.name, restart, job_name, memo) for t in self.tasks),
            tuple(s.canonicalize() for s in self.spreads) if self.spreads else (),
            tuple(a.canonicalize() for a in self.affinities) if self.affinities else (),
            tuple(s.canonicalize(job_name, self.name) for s in self.services) if self.services else (),
            self.disconnect.canonicalize() if self.disconnect is not None else None,
        )


@cache
def _default_disk() -> EphemeralDisk:
    """`EphemeralDisk().canonicalize()`, made once (a frozen value, shared)."""
    return EphemeralDisk().canonicalize()


# Group.canonicalize's copy (see nomadmesh.model._copy), in the order of its arguments.
_canonical_group = copier(Group, (
    "count", "scaling", "ephemeral_disk", "consul", "update", "reschedule", "migrate", "restart",
    "tasks", "spreads", "affinities", "services", "disconnect"), globals(), "_canonical_group")


def groups(value: Iterable[Group] | None) -> tuple[Group, ...]:
    """Converter: any iterable of groups becomes a tuple."""
    return to_tuple(value)


