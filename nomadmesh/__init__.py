"""nomadmesh: typed Nomad jobs in Python, Envoy sidecars injected, deployed and watched."""

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
from nomadmesh.mesh import Mesh, Upstream, inject
from nomadmesh.model import *  # noqa: F403
from nomadmesh.model import __all__ as _model_names
from nomadmesh.model import canonicalize

__version__ = "0.1.0"

__all__ = [
    "ApiError",
    "ConflictError",
    "DeployResult",
    "DeployTimeout",
    "DeploymentFailed",
    "Diagnosis",
    "InputError",
    "JobStatus",
    "LoadError",
    "Mesh",
    "MeshError",
    "NomadClient",
    "NomadUnavailable",
    "NomadmeshError",
    "NotFound",
    "OwnershipError",
    "ParseError",
    "PermissionDenied",
    "Plan",
    "Problem",
    "Upstream",
    "ValidationError",
    "canonicalize",
    "inject",
    "load",
    "load_all",
    *_model_names,
]
