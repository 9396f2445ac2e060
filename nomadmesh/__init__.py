"""nomadmesh: typed Nomad jobs in Python, Envoy sidecars injected, deployed and watched."""

from nomadmesh.codec.canonical import canonicalize
from nomadmesh.errors import (
    ConflictError,
    DeploymentFailed,
    LoadError,
    NomadmeshError,
    ParseError,
    Problem,
    ValidationError,
)
from nomadmesh.loader import load, load_all
from nomadmesh.model import *  # noqa: F403
from nomadmesh.model import __all__ as _model_names

__version__ = "0.1.0"

__all__ = [
    "ConflictError",
    "DeploymentFailed",
    "LoadError",
    "NomadmeshError",
    "ParseError",
    "Problem",
    "ValidationError",
    "canonicalize",
    "load",
    "load_all",
    *_model_names,
]
