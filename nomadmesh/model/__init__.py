"""Typed, immutable Nomad jobs: one module per area of the jobspec, names as in HCL."""

from nomadmesh.model._base import FrozenDict, format_duration, parse_duration
from nomadmesh.model._html import compact_repr
from nomadmesh.model.group import Group, Scaling, VolumeRequest
from nomadmesh.model.job import Job, Parameterized, Periodic
from nomadmesh.model.network import DNSConfig, Network, Port
from nomadmesh.model.placement import Affinity, Constraint, Spread, SpreadTarget
from nomadmesh.model.policies import (
    MigrateStrategy,
    ReschedulePolicy,
    RestartPolicy,
    UpdateStrategy,
)
from nomadmesh.model.resources import EphemeralDisk, LogConfig, Resources
from nomadmesh.model.service import Check, CheckRestart, Service
from nomadmesh.model.task import (
    Artifact,
    ChangeScript,
    Lifecycle,
    Task,
    Template,
    TemplateWait,
    Vault,
    VolumeMount,
)

# Notebook-friendly reprs: only the fields that differ from their defaults.
for _cls in (Affinity, Artifact, ChangeScript, Check, CheckRestart, Constraint, DNSConfig,
             EphemeralDisk, Group, Job, Lifecycle, LogConfig, MigrateStrategy, Network,
             Parameterized, Periodic, Port, ReschedulePolicy, Resources, RestartPolicy, Scaling,
             Service, Spread, SpreadTarget, Task, Template, TemplateWait, UpdateStrategy, Vault,
             VolumeMount, VolumeRequest):
    _cls.__repr__ = compact_repr  # type: ignore[method-assign]

__all__ = [
    "Affinity",
    "Artifact",
    "ChangeScript",
    "Check",
    "CheckRestart",
    "Constraint",
    "DNSConfig",
    "EphemeralDisk",
    "FrozenDict",
    "Group",
    "Job",
    "Lifecycle",
    "LogConfig",
    "MigrateStrategy",
    "Network",
    "Parameterized",
    "Periodic",
    "Port",
    "ReschedulePolicy",
    "Resources",
    "RestartPolicy",
    "Scaling",
    "Service",
    "Spread",
    "SpreadTarget",
    "Task",
    "Template",
    "TemplateWait",
    "UpdateStrategy",
    "Vault",
    "VolumeMount",
    "VolumeRequest",
    "format_duration",
    "parse_duration",
]
