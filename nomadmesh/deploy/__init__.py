"""Deploying jobs: plan, register, follow the rollout, explain failures (`NomadClient`).

The names below are imported on first use (PEP 562): `nomadmesh status` imports the client and
what reading a status needs, not the plan, diagnosis or watch modules (issue 15, start-up).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "Retry": "nomadmesh.deploy._http",
    "NomadApi": "nomadmesh.deploy.api",
    "NomadClient": "nomadmesh.deploy.client",
    "NomadConfig": "nomadmesh.deploy.config",
    "ServiceHealth": "nomadmesh.deploy.consul",
    **dict.fromkeys(("Diagnosis", "Finding"), "nomadmesh.deploy.diagnose"),
    **dict.fromkeys(("GroupUpdate", "Plan"), "nomadmesh.deploy.plan"),
    **dict.fromkeys(("Allocation", "DeployEvent", "DeployResult", "DispatchResult",
                     "GroupProgress", "JobStatus", "JobVersion", "Owner", "RegisterResult",
                     "ServiceInstance"), "nomadmesh.deploy.results"),
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'nomadmesh.deploy' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


if TYPE_CHECKING:  # what type checkers and IDEs see: the same names, eagerly
    from nomadmesh.deploy._http import Retry as Retry
    from nomadmesh.deploy.api import NomadApi as NomadApi
    from nomadmesh.deploy.client import NomadClient as NomadClient
    from nomadmesh.deploy.config import NomadConfig as NomadConfig
    from nomadmesh.deploy.consul import ServiceHealth as ServiceHealth
    from nomadmesh.deploy.diagnose import Diagnosis as Diagnosis
    from nomadmesh.deploy.diagnose import Finding as Finding
    from nomadmesh.deploy.plan import GroupUpdate as GroupUpdate
    from nomadmesh.deploy.plan import Plan as Plan
    from nomadmesh.deploy.results import Allocation as Allocation
    from nomadmesh.deploy.results import DeployEvent as DeployEvent
    from nomadmesh.deploy.results import DeployResult as DeployResult
    from nomadmesh.deploy.results import DispatchResult as DispatchResult
    from nomadmesh.deploy.results import GroupProgress as GroupProgress
    from nomadmesh.deploy.results import JobStatus as JobStatus
    from nomadmesh.deploy.results import JobVersion as JobVersion
    from nomadmesh.deploy.results import Owner as Owner
    from nomadmesh.deploy.results import RegisterResult as RegisterResult
    from nomadmesh.deploy.results import ServiceInstance as ServiceInstance
