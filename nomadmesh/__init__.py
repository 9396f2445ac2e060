"""nomadmesh: typed Nomad jobs in Python, Envoy sidecars injected, deployed and watched.

The names below are imported on first use (PEP 562), so `import nomadmesh` and the command line
start without loading the model, the deploy client or the mesh until they are needed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Public name -> the module that defines it.
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(("DeployResult", "Diagnosis", "JobStatus", "NomadClient", "Plan"),
                    "nomadmesh.deploy"),
    **dict.fromkeys(("ApiError", "ConflictError", "DeploymentFailed", "DeployTimeout",
                     "InputError", "LoadError", "MeshError", "NomadmeshError", "NomadUnavailable",
                     "NotFound", "OwnershipError", "ParseError", "PermissionDenied", "Problem",
                     "ValidationError"), "nomadmesh.errors"),
    **dict.fromkeys(("load", "load_all"), "nomadmesh.loader"),
    **dict.fromkeys(("Mesh", "Upstream", "inject"), "nomadmesh.mesh"),
    "canonicalize": "nomadmesh.codec.canonical",
    **dict.fromkeys((
        "Affinity", "Artifact", "ChangeScript", "Check", "CheckRestart", "Constraint", "DNSConfig",
        "EphemeralDisk", "FrozenDict", "Group", "Job", "Lifecycle", "LogConfig",
        "MigrateStrategy", "Network", "Parameterized", "Periodic", "Port", "ReschedulePolicy",
        "Resources", "RestartPolicy", "Scaling", "Service", "Spread", "SpreadTarget", "Task",
        "Template", "TemplateWait", "UpdateStrategy", "Vault", "VolumeMount", "VolumeRequest",
        "format_duration", "parse_duration"), "nomadmesh.model"),
}

__all__ = [
    "Affinity",
    "ApiError",
    "Artifact",
    "ChangeScript",
    "Check",
    "CheckRestart",
    "ConflictError",
    "Constraint",
    "DNSConfig",
    "DeployResult",
    "DeployTimeout",
    "DeploymentFailed",
    "Diagnosis",
    "EphemeralDisk",
    "FrozenDict",
    "Group",
    "InputError",
    "Job",
    "JobStatus",
    "Lifecycle",
    "LoadError",
    "LogConfig",
    "Mesh",
    "MeshError",
    "MigrateStrategy",
    "Network",
    "NomadClient",
    "NomadUnavailable",
    "NomadmeshError",
    "NotFound",
    "OwnershipError",
    "Parameterized",
    "ParseError",
    "Periodic",
    "PermissionDenied",
    "Plan",
    "Port",
    "Problem",
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
    "Upstream",
    "ValidationError",
    "Vault",
    "VolumeMount",
    "VolumeRequest",
    "canonicalize",
    "format_duration",
    "inject",
    "load",
    "load_all",
    "parse_duration",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'nomadmesh' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


if TYPE_CHECKING:  # what type checkers and IDEs see: the same names, eagerly
    from nomadmesh.codec.canonical import canonicalize
    from nomadmesh.deploy import (
        DeployResult,
        Diagnosis,
        JobStatus,
        NomadClient,
        Plan,
    )
    from nomadmesh.errors import (
        ApiError,
        ConflictError,
        DeploymentFailed,
        DeployTimeout,
        InputError,
        LoadError,
        MeshError,
        NomadmeshError,
        NomadUnavailable,
        NotFound,
        OwnershipError,
        ParseError,
        PermissionDenied,
        Problem,
        ValidationError,
    )
    from nomadmesh.loader import load, load_all
    from nomadmesh.mesh import Mesh, Upstream
    from nomadmesh.mesh.inject import inject
    from nomadmesh.model import (
        Affinity,
        Artifact,
        ChangeScript,
        Check,
        CheckRestart,
        Constraint,
        DNSConfig,
        EphemeralDisk,
        FrozenDict,
        Group,
        Job,
        Lifecycle,
        LogConfig,
        MigrateStrategy,
        Network,
        Parameterized,
        Periodic,
        Port,
        ReschedulePolicy,
        Resources,
        RestartPolicy,
        Scaling,
        Service,
        Spread,
        SpreadTarget,
        Task,
        Template,
        TemplateWait,
        UpdateStrategy,
        Vault,
        VolumeMount,
        VolumeRequest,
        format_duration,
        parse_duration,
    )
