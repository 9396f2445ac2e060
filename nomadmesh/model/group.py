"""A task group: the unit Nomad places, with its network, services, volumes and policies."""

from __future__ import annotations

from collections.abc import Iterator

import attrs

from nomadmesh.errors import Problem
from nomadmesh.model._base import Kind, extra_fields, field, label
from nomadmesh.model.network import Network, Port
from nomadmesh.model.placement import Affinity, Constraint, Spread
from nomadmesh.model.policies import (
    MigrateStrategy,
    ReschedulePolicy,
    RestartPolicy,
    UpdateStrategy,
)
from nomadmesh.model.resources import EphemeralDisk
from nomadmesh.model.service import Service
from nomadmesh.model.task import Task


@attrs.frozen(slots=False)
class VolumeRequest:
    """A host or CSI volume the group claims (`volume "name"` block)."""

    name: str = label("Name")
    type: str | None = field("Type", Kind.STR)
    source: str | None = field("Source", Kind.STR)
    read_only: bool | None = field("ReadOnly", Kind.BOOL)
    access_mode: str | None = field("AccessMode", Kind.STR)
    attachment_mode: str | None = field("AttachmentMode", Kind.STR)
    per_alloc: bool | None = field("PerAlloc", Kind.BOOL)
    sticky: bool | None = field("Sticky", Kind.BOOL)
    mount_options: dict[str, object] | None = field("MountOptions", Kind.ANY)

    def problems(self, path: str) -> Iterator[Problem]:
        if self.type not in ("host", "csi"):
            yield Problem(f"{path}.type", f"volume type {self.type!r} must be host or csi")
        if not self.source:
            yield Problem(f"{path}.source", "a volume needs a source")
        if self.type == "host" and (self.access_mode or self.attachment_mode):
            yield Problem(path, "access_mode and attachment_mode apply to csi volumes only")


@attrs.frozen(slots=False)
class Scaling:
    """Horizontal scaling bounds and autoscaler policy for the group (`scaling` block)."""

    min: int | None = field("Min", Kind.INT)
    max: int | None = field("Max", Kind.INT)
    enabled: bool | None = field("Enabled", Kind.BOOL)
    policy: dict[str, object] | None = field("Policy", Kind.ANY, hcl_block=True)
    extra: dict[str, object] = extra_fields()

    def problems(self, path: str) -> Iterator[Problem]:
        if self.max is None:
            yield Problem(f"{path}.max", "scaling needs max")
        if isinstance(self.min, int) and self.min < 0:
            yield Problem(f"{path}.min", "min cannot be negative")
        if isinstance(self.min, int) and isinstance(self.max, int) and self.max < self.min:
            yield Problem(f"{path}.max", f"max {self.max} is below min {self.min}")


@attrs.frozen(slots=False)
class Group:
    """A task group: `Group("api", count=2, tasks=[Task(...)])`."""

    name: str = label("Name")
    count: int | None = field("Count", Kind.INT)
    tasks: tuple[Task, ...] = field("Tasks", Kind.BLOCKS, hcl="task", block=Task)
    networks: tuple[Network, ...] = field("Networks", Kind.BLOCKS, hcl="network", block=Network)
    services: tuple[Service, ...] = field("Services", Kind.BLOCKS, hcl="service", block=Service)
    volumes: tuple[VolumeRequest, ...] = field("Volumes", Kind.BLOCKS, hcl="volume",
                                               block=VolumeRequest)
    restart: RestartPolicy | None = field("RestartPolicy", Kind.BLOCK, block=RestartPolicy)
    reschedule: ReschedulePolicy | None = field("ReschedulePolicy", Kind.BLOCK,
                                                block=ReschedulePolicy)
    update: UpdateStrategy | None = field("Update", Kind.BLOCK, block=UpdateStrategy)
    migrate: MigrateStrategy | None = field("Migrate", Kind.BLOCK, block=MigrateStrategy)
    ephemeral_disk: EphemeralDisk | None = field("EphemeralDisk", Kind.BLOCK, block=EphemeralDisk)
    scaling: Scaling | None = field("Scaling", Kind.BLOCK, block=Scaling)
    shutdown_delay: int | None = field("ShutdownDelay", Kind.DURATION)
    stop_after_client_disconnect: int | None = field("StopAfterClientDisconnect", Kind.DURATION)
    max_client_disconnect: int | None = field("MaxClientDisconnect", Kind.DURATION)
    prevent_reschedule_on_lost: bool | None = field("PreventRescheduleOnLost", Kind.BOOL)
    constraints: tuple[Constraint, ...] = field("Constraints", Kind.BLOCKS, hcl="constraint",
                                                block=Constraint)
    affinities: tuple[Affinity, ...] = field("Affinities", Kind.BLOCKS, hcl="affinity",
                                             block=Affinity)
    spreads: tuple[Spread, ...] = field("Spreads", Kind.BLOCKS, hcl="spread", block=Spread)
    meta: dict[str, str] = field("Meta", Kind.MAP, hcl_block=True)
    extra: dict[str, object] = extra_fields()

    def task(self, name: str) -> Task | None:
        """The task with this name, if the group has it."""
        for t in self.tasks:
            if t.name == name:
                return t
        return None

    @property
    def ports(self) -> tuple[Port, ...]:
        """Every port declared by the group's networks."""
        networks = self.networks
        if len(networks) == 1:
            return networks[0].ports
        return tuple(p for n in networks for p in n.ports)

    def problems(self, path: str) -> Iterator[Problem]:
        if not self.name:
            yield Problem(path, "a group needs a name")
        if isinstance(self.count, int) and self.count < 0:
            yield Problem(f"{path}.count", f"count {self.count} cannot be negative")
        if not self.tasks:
            yield Problem(path, "a group needs at least one task")
        # Rules run after the type checks, so every item here is of its declared class.
        tasks = self.tasks
        task_names = {t.name for t in tasks}
        if len(task_names) != len(tasks):
            yield from _duplicates(path, "task", [t.name for t in tasks])
        volumes = {v.name for v in self.volumes}
        if len(volumes) != len(self.volumes):
            yield from _duplicates(path, "volume", [v.name for v in self.volumes])
        if sum(1 for t in tasks if t.leader) > 1:
            yield Problem(path, "only one task may be the leader")
        if len(self.networks) > 1:
            yield Problem(f"{path}.network", "a group may have only one network block")
        labels: set[str] = set()
        for p in self.ports:
            if p.label in labels:
                yield Problem(f"{path}.network.port[{p.label}]", "port label declared twice")
            labels.add(p.label)
        for i, s in enumerate(self.services):
            if s.port is not None and s.port not in labels:
                yield from _port_reference(f"{path}.service[{i}]", s.port, labels)
            if s.task and s.task not in task_names:
                yield Problem(f"{path}.service[{i}].task", f"task {s.task!r} is not in the group")
            for j, c in enumerate(s.checks):
                if c.port is not None and c.port not in labels:
                    yield from _port_reference(f"{path}.service[{i}].check[{j}]", c.port, labels)
                if c.task and c.task not in task_names:
                    yield Problem(f"{path}.service[{i}].check[{j}].task",
                                  f"task {c.task!r} is not in the group")
        for t in tasks:
            for i, s in enumerate(t.services):
                if s.port is not None and s.port not in labels:
                    yield from _port_reference(f"{path}.task[{t.name}].service[{i}]", s.port,
                                               labels)
            for i, m in enumerate(t.volume_mounts):
                if m.volume and m.volume not in volumes:
                    yield Problem(f"{path}.task[{t.name}].volume_mount[{i}].volume",
                                  f"volume {m.volume!r} is not declared in the group")


def _duplicates(path: str, kind: str, names: list[str]) -> Iterator[Problem]:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            yield Problem(f"{path}.{kind}[{name}]", f"{kind} {name!r} is declared twice")
        seen.add(name)


def _port_reference(path: str, port: str | None, labels: set[str]) -> Iterator[Problem]:
    """A service or check port must be a label of the group network, or a number."""
    if not port or port.isdigit() or "${" in port or port in labels:
        return
    known = ", ".join(sorted(labels)) or "none declared"
    yield Problem(f"{path}.port", f"port {port!r} is not a port label of the group (ports: {known})")
