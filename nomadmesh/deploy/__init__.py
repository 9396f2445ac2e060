"""Deploying jobs: plan, register, follow the rollout, explain failures (`NomadClient`)."""

from nomadmesh.deploy._http import Retry
from nomadmesh.deploy.api import NomadApi
from nomadmesh.deploy.client import NomadClient
from nomadmesh.deploy.config import NomadConfig
from nomadmesh.deploy.consul import ServiceHealth
from nomadmesh.deploy.diagnose import Diagnosis, Finding
from nomadmesh.deploy.plan import GroupUpdate, Plan
from nomadmesh.deploy.results import (
    Allocation,
    DeployEvent,
    DeployResult,
    DispatchResult,
    GroupProgress,
    JobStatus,
    JobVersion,
    Owner,
    RegisterResult,
    ServiceInstance,
)

__all__ = [
    "Allocation",
    "DeployEvent",
    "DeployResult",
    "Diagnosis",
    "DispatchResult",
    "Finding",
    "GroupProgress",
    "GroupUpdate",
    "JobStatus",
    "JobVersion",
    "NomadApi",
    "NomadClient",
    "NomadConfig",
    "Owner",
    "Plan",
    "RegisterResult",
    "Retry",
    "ServiceHealth",
    "ServiceInstance",
]
