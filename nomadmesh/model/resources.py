"""What a task asks of a node, and how its logs and scratch disk are kept."""

from __future__ import annotations

from collections.abc import Iterator

import attrs

from nomadmesh.errors import Problem
from nomadmesh.model._base import Kind, extra_fields, field

MIN_CPU = 1  # structs.MinCPU
MIN_MEMORY_MB = 10  # structs.MinMemoryMB


@attrs.frozen(slots=False)
class Resources:
    """CPU (MHz), memory (MB) and friends (`resources` block)."""

    cpu: int | None = field("CPU", Kind.INT)
    cores: int | None = field("Cores", Kind.INT)
    memory: int | None = field("MemoryMB", Kind.INT)
    memory_max: int | None = field("MemoryMaxMB", Kind.INT)
    disk: int | None = field("DiskMB", Kind.INT)
    secrets: int | None = field("SecretsMB", Kind.INT)
    extra: dict[str, object] = extra_fields()

    def problems(self, path: str) -> Iterator[Problem]:
        if isinstance(self.cpu, int) and self.cpu < MIN_CPU:
            yield Problem(f"{path}.cpu", f"cpu {self.cpu} is below the minimum of {MIN_CPU} MHz")
        if isinstance(self.cores, int) and self.cores < 0:
            yield Problem(f"{path}.cores", "cores cannot be negative")
        if self.cores and self.cpu:
            yield Problem(f"{path}.cores", "cpu and cores cannot both be set")
        if isinstance(self.memory, int) and self.memory < MIN_MEMORY_MB:
            yield Problem(f"{path}.memory",
                          f"memory {self.memory} MB is below the minimum of {MIN_MEMORY_MB} MB")
        if (isinstance(self.memory_max, int) and isinstance(self.memory, int) and self.memory_max
                and self.memory_max < self.memory):
            yield Problem(f"{path}.memory_max",
                          f"memory_max {self.memory_max} MB is below memory {self.memory} MB")

    def canonicalize(self) -> Resources:
        """Nomad's defaults: CPU 100 MHz (unless cores are asked), 300 MB memory."""
        return attrs.evolve(
            self,
            cpu=self.cpu if self.cpu is not None or self.cores else 100,
            memory=self.memory if self.memory is not None else 300,
        )


@attrs.frozen(slots=False)
class LogConfig:
    """Log rotation for a task (`logs` block)."""

    max_files: int | None = field("MaxFiles", Kind.INT)
    max_file_size: int | None = field("MaxFileSizeMB", Kind.INT)
    disabled: bool | None = field("Disabled", Kind.BOOL)

    def problems(self, path: str) -> Iterator[Problem]:
        if isinstance(self.max_files, int) and self.max_files < 1:
            yield Problem(f"{path}.max_files", "max_files must be at least 1")
        if isinstance(self.max_file_size, int) and self.max_file_size < 1:
            yield Problem(f"{path}.max_file_size", "max_file_size must be at least 1 MB")

    def canonicalize(self) -> LogConfig:
        """Nomad's default: 10 files of 10 MB."""
        return attrs.evolve(
            self,
            max_files=10 if self.max_files is None else self.max_files,
            max_file_size=10 if self.max_file_size is None else self.max_file_size,
            disabled=bool(self.disabled),
        )


@attrs.frozen(slots=False)
class EphemeralDisk:
    """The allocation's scratch disk (`ephemeral_disk` block)."""

    size: int | None = field("SizeMB", Kind.INT)
    sticky: bool | None = field("Sticky", Kind.BOOL)
    migrate: bool | None = field("Migrate", Kind.BOOL)

    def problems(self, path: str) -> Iterator[Problem]:
        if isinstance(self.size, int) and self.size < 0:
            yield Problem(f"{path}.size", "size cannot be negative")

    def canonicalize(self) -> EphemeralDisk:
        return attrs.evolve(self, size=300 if self.size is None else self.size,
                            sticky=bool(self.sticky), migrate=bool(self.migrate))
