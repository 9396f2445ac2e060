"""nomadmesh: typed Nomad jobs in Python, Envoy sidecars injected, deployed and watched.

The names below are imported on first use (PEP 562), so `import nomadmesh` and the command line
start without loading the model, the deploy client or the mesh until they are needed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Public names of nomadmesh's own modules -> the module that defines each; every name of the
# job model (`nomadmesh.model.__all__`) is exported too.
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(("DeployResult", "Diagnosis", "JobStatus", "NomadClient", "Plan"),
                    "nomadmesh.deploy"),
    **dict.fromkeys(("ApiError", "ConflictError", "DeploymentFailed", "DeployTimeout",
                     "InputError", "LoadError", "MeshError", "NomadmeshError", "NomadUnavailable",
                     "NotFound", "OwnershipError", "ParseError", "PermissionDenied", "Problem",
                     "ValidationError"), "nomadmesh.errors"),
    **dict.fromkeys(("load", "load_all"), "nomadmesh.loader"),
    **dict.fromkeys(("Mesh", "Upstream", "inject"), "nomadmesh.mesh"),
}
_MODEL = "nomadmesh.model"


def __getattr__(name: str) -> Any:
    if name == "__all__":  # `from nomadmesh import *`: this module's names and the model's
        value: Any = sorted({*_EXPORTS, *importlib.import_module(_MODEL).__all__})
    elif name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    else:
        model = importlib.import_module(_MODEL)
        if name not in model.__all__:
            raise AttributeError(f"module 'nomadmesh' has no attribute {name!r}")
        value = getattr(model, name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS, *importlib.import_module(_MODEL).__all__})


if TYPE_CHECKING:  # what type checkers and IDEs see: the same names, eagerly
    from nomadmesh.deploy import (
        DeployResult as DeployResult,
    )
    from nomadmesh.deploy import (
        Diagnosis as Diagnosis,
    )
    from nomadmesh.deploy import (
        JobStatus as JobStatus,
    )
    from nomadmesh.deploy import (
        NomadClient as NomadClient,
    )
    from nomadmesh.deploy import (
        Plan as Plan,
    )
    from nomadmesh.errors import (
        ApiError as ApiError,
    )
    from nomadmesh.errors import (
        ConflictError as ConflictError,
    )
    from nomadmesh.errors import (
        DeploymentFailed as DeploymentFailed,
    )
    from nomadmesh.errors import (
        DeployTimeout as DeployTimeout,
    )
    from nomadmesh.errors import (
        InputError as InputError,
    )
    from nomadmesh.errors import (
        LoadError as LoadError,
    )
    from nomadmesh.errors import (
        MeshError as MeshError,
    )
    from nomadmesh.errors import (
        NomadmeshError as NomadmeshError,
    )
    from nomadmesh.errors import (
        NomadUnavailable as NomadUnavailable,
    )
    from nomadmesh.errors import (
        NotFound as NotFound,
    )
    from nomadmesh.errors import (
        OwnershipError as OwnershipError,
    )
    from nomadmesh.errors import (
        ParseError as ParseError,
    )
    from nomadmesh.errors import (
        PermissionDenied as PermissionDenied,
    )
    from nomadmesh.errors import (
        Problem as Problem,
    )
    from nomadmesh.errors import (
        ValidationError as ValidationError,
    )
    from nomadmesh.loader import load as load
    from nomadmesh.loader import load_all as load_all
    from nomadmesh.mesh import Mesh as Mesh
    from nomadmesh.mesh import Upstream as Upstream
    from nomadmesh.mesh.inject import inject as inject
    from nomadmesh.model import *  # noqa: F403
