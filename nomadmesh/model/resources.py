"""What a task asks of a node, and how its logs and scratch disk are kept (api/resources.go,
api/tasks.go)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

import attrs

from nomadmesh.model import _base
from nomadmesh.model._base import BLOCK, BLOCKS, BOOL, INT, STRS, evolve, field, go, label, strings, to_tuple
from nomadmesh.model._copy import copier
from nomadmesh.model.network import Network, networks
from nomadmesh.model.placement import Affinity, Constraint, affinities, constraints


@_base.frozen(slots=False, repr=False)
class Device:
    """A device the task needs, such as `device "nvidia/gpu" { count = 2 }`."""

    _go: ClassVar[str] = "RequestedDevice"

    name: str = label("Name")
    count: int | None = field("Count", INT, ptr=True, go_int="uint64")
    constraints: tuple[Constraint, ...] = attrs.field(
        default=(), kw_only=True, converter=constraints,
        metadata=go("Constraints", BLOCKS, hcl="constraint", block=Constraint))
    affinities: tuple[Affinity, ...] = attrs.field(
        default=(), kw_only=True, converter=affinities,
        metadata=go("Affinities", BLOCKS, hcl="affinity", block=Affinity))

    def canonicalize(self) -> Device:
        """api/resources.go:324 RequestedDevice.Canonicalize: count 1, affinity weights."""
        return evolve(self, count=1 if self.count is None else self.count,
                      affinities=tuple(a.canonicalize() for a in self.affinities))


def _devices(value: Iterable[Device] | None) -> tuple[Device, ...]:
    return to_tuple(value)


@_base.frozen(slots=False, repr=False)
class NUMA:
    """NUMA-aware placement of the task's cores (`numa` block)."""

    _go: ClassVar[str] = "NUMAResource"

    affinity: str | None = field("Affinity")
    devices: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=strings,
                                           metadata=go("Devices", STRS))

    def canonicalize(self) -> NUMA:
        """api/resources.go:135 NUMAResource.Canonicalize: affinity "none"."""
        return self if self.affinity else evolve(self, affinity="none")


@_base.frozen(slots=False, repr=False)
class Resources:
    """CPU (MHz), memory (MB) and friends (`resources` block)."""

    _go: ClassVar[str] = "Resources"

    cpu: int | None = field("CPU", INT, ptr=True)
    cores: int | None = field("Cores", INT, ptr=True)
    memory: int | None = field("MemoryMB", INT, ptr=True)
    memory_max: int | None = field("MemoryMaxMB", INT, ptr=True)
    disk: int | None = field("DiskMB", INT, ptr=True)
    networks: tuple[Network, ...] = attrs.field(
        default=(), kw_only=True, converter=networks,
        metadata=go("Networks", BLOCKS, hcl="network", block=Network))
    devices: tuple[Device, ...] = attrs.field(
        default=(), kw_only=True, converter=_devices,
        metadata=go("Devices", BLOCKS, hcl="device", block=Device))
    numa: NUMA | None = field("NUMA", BLOCK, block=NUMA)
    secrets: int | None = field("SecretsMB", INT, ptr=True)
    iops: int | None = field("IOPS", INT, ptr=True)

    def canonicalize(self) -> Resources:
        """api/resources.go:33 Resources.Canonicalize: CPU 100 unless cores are asked, 300 MB."""
        cores, cpu = self.cores, self.cpu
        if cores is None:
            cores = 0
            if cpu is None:
                cpu = 100
        return _canonical_resources(
            self,
            cores,
            0 if cpu is None else cpu,
            300 if self.memory is None else self.memory,
            tuple(d.canonicalize() for d in self.devices) if self.devices else (),
            self.numa.canonicalize() if self.numa is not None else None,
        )


@_base.frozen(slots=False, repr=False)
class LogConfig:
    """Log rotation for a task (`logs` block)."""

    _go: ClassVar[str] = "LogConfig"

    max_files: int | None = field("MaxFiles", INT, ptr=True)
    max_file_size: int | None = field("MaxFileSizeMB", INT, ptr=True)
    enabled: bool | None = field("Enabled", BOOL, ptr=True)
    disabled: bool | None = field("Disabled", BOOL, ptr=True)

    def canonicalize(self) -> LogConfig:
        """api/tasks.go:729 LogConfig.Canonicalize: 10 files of 10 MB, not disabled."""
        return _canonical_logs(
            self,
            10 if self.max_files is None else self.max_files,
            10 if self.max_file_size is None else self.max_file_size,
            False if self.disabled is None else self.disabled,
        )


@_base.frozen(slots=False, repr=False)
class EphemeralDisk:
    """The allocation's scratch disk (`ephemeral_disk` block)."""

    _go: ClassVar[str] = "EphemeralDisk"

    sticky: bool | None = field("Sticky", BOOL, ptr=True)
    migrate: bool | None = field("Migrate", BOOL, ptr=True)
    size: int | None = field("SizeMB", INT, ptr=True)

    def canonicalize(self) -> EphemeralDisk:
        """api/tasks.go:374 EphemeralDisk.Canonicalize: 300 MB, not sticky, not migrated."""
        return _canonical_disk(self, False if self.sticky is None else self.sticky,
                               False if self.migrate is None else self.migrate,
                               300 if self.size is None else self.size)


# The canonicalize methods' copies (see nomadmesh.model._copy), in the order of their arguments.
_canonical_resources = copier(Resources, ("cores", "cpu", "memory", "devices", "numa"), globals(),
                              "_canonical_resources")
_canonical_logs = copier(LogConfig, ("max_files", "max_file_size", "disabled"), globals(),
                         "_canonical_logs")
_canonical_disk = copier(EphemeralDisk, ("sticky", "migrate", "size"), globals(), "_canonical_disk")
