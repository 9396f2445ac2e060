"""Typed, immutable Nomad jobs: one module per area of the jobspec, names as in HCL, shapes as in
Nomad's api package (nomadmesh/data/nomad_api_schema.json)."""

from nomadmesh.model._base import (
    Duration,
    FrozenDict,
    compile_constructor,
    evolve,
    format_duration,
    model_classes,
    parse_duration,
)
from nomadmesh.model._html import compact_repr
from nomadmesh.model.connect import (
    ConsulConnect,
    ConsulExposeConfig,
    ConsulExposePath,
    ConsulGateway,
    ConsulGatewayBindAddress,
    ConsulGatewayProxy,
    ConsulGatewayTLSConfig,
    ConsulGatewayTLSSDSConfig,
    ConsulHTTPHeaderModifiers,
    ConsulIngressConfigEntry,
    ConsulIngressListener,
    ConsulIngressService,
    ConsulLinkedService,
    ConsulMeshConfigEntry,
    ConsulMeshGateway,
    ConsulProxy,
    ConsulSidecarService,
    ConsulTerminatingConfigEntry,
    ConsulTransparentProxy,
    ConsulUpstream,
    SidecarTask,
)
from nomadmesh.model.group import Group
from nomadmesh.model.identity import Consul, Secret, Vault, WorkloadIdentity
from nomadmesh.model.job import (
    Job,
    JobUI,
    JobUILink,
    Multiregion,
    MultiregionRegion,
    MultiregionStrategy,
    Parameterized,
    Periodic,
    Submission,
)
from nomadmesh.model.network import CNIConfig, DNSConfig, Network, Port
from nomadmesh.model.placement import Affinity, Constraint, Spread, SpreadTarget
from nomadmesh.model.policies import (
    Disconnect,
    MigrateStrategy,
    ReschedulePolicy,
    RestartPolicy,
    UpdateStrategy,
)
from nomadmesh.model.resources import NUMA, Device, EphemeralDisk, LogConfig, Resources
from nomadmesh.model.scaling import Scaling
from nomadmesh.model.server import DEFAULT_SERVER, ServerConfig
from nomadmesh.model.service import Check, CheckRestart, Service, ServiceWeights
from nomadmesh.model.task import (
    Action,
    Artifact,
    ChangeScript,
    CSIPlugin,
    DispatchPayload,
    Lifecycle,
    Schedule,
    ScheduleCron,
    Task,
    Template,
    TemplateWait,
)
from nomadmesh.model.volumes import CSIMountOptions, VolumeMount, VolumeRequest


def canonicalize(job: Job, *, server: bool = True, config: ServerConfig = DEFAULT_SERVER) -> Job:
    """The job with Nomad's defaults applied: as `GET /v1/job/<id>` returns it from a server
    configured as `config` (Nomad's defaults unless given), or with `server=False` exactly as the
    agent's `api.Job.Canonicalize()` makes it; idempotent."""
    return job.canonicalize(server=server, config=config)


# Notebook-friendly reprs: only the fields that differ from their defaults (the classes declare
# `repr=False`, so attrs compiles no repr of its own for them); constructors with the converters'
# fast paths inline (see _base.compile_constructor).
for _cls in (*model_classes(Job), Submission):
    _cls.__repr__ = compact_repr  # type: ignore[method-assign, assignment]
    compile_constructor(_cls)

__all__ = [
    "NUMA",
    "Action",
    "Affinity",
    "Artifact",
    "CNIConfig",
    "CSIMountOptions",
    "CSIPlugin",
    "ChangeScript",
    "Check",
    "CheckRestart",
    "Constraint",
    "Consul",
    "ConsulConnect",
    "ConsulExposeConfig",
    "ConsulExposePath",
    "ConsulGateway",
    "ConsulGatewayBindAddress",
    "ConsulGatewayProxy",
    "ConsulGatewayTLSConfig",
    "ConsulGatewayTLSSDSConfig",
    "ConsulHTTPHeaderModifiers",
    "ConsulIngressConfigEntry",
    "ConsulIngressListener",
    "ConsulIngressService",
    "ConsulLinkedService",
    "ConsulMeshConfigEntry",
    "ConsulMeshGateway",
    "ConsulProxy",
    "ConsulSidecarService",
    "ConsulTerminatingConfigEntry",
    "ConsulTransparentProxy",
    "ConsulUpstream",
    "DNSConfig",
    "Device",
    "Disconnect",
    "DispatchPayload",
    "Duration",
    "EphemeralDisk",
    "FrozenDict",
    "Group",
    "Job",
    "JobUI",
    "JobUILink",
    "Lifecycle",
    "LogConfig",
    "MigrateStrategy",
    "Multiregion",
    "MultiregionRegion",
    "MultiregionStrategy",
    "Network",
    "Parameterized",
    "Periodic",
    "Port",
    "ReschedulePolicy",
    "Resources",
    "RestartPolicy",
    "Scaling",
    "Schedule",
    "ScheduleCron",
    "Secret",
    "ServerConfig",
    "Service",
    "ServiceWeights",
    "SidecarTask",
    "Spread",
    "SpreadTarget",
    "Submission",
    "Task",
    "Template",
    "TemplateWait",
    "UpdateStrategy",
    "Vault",
    "VolumeMount",
    "VolumeRequest",
    "WorkloadIdentity",
    "canonicalize",
    "evolve",
    "format_duration",
    "parse_duration",
]
