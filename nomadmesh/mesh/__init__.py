"""The mesh: Envoy sidecars injected into Nomad groups, wired to the nomadmesh control plane."""

from nomadmesh.contract import (
    DEFAULT_POLICY,
    CircuitBreakers,
    HeaderMatch,
    OutlierDetection,
    Policy,
    RateLimit,
    Retries,
    Split,
)
from nomadmesh.mesh.inject import has_sidecar, inject, is_meshed, sidecar_task
from nomadmesh.mesh.settings import DEFAULT_SIDECAR, GroupMesh, Mesh, Sidecar
from nomadmesh.mesh.upstreams import Upstream

__all__ = [
    "DEFAULT_POLICY",
    "DEFAULT_SIDECAR",
    "CircuitBreakers",
    "GroupMesh",
    "HeaderMatch",
    "Mesh",
    "OutlierDetection",
    "Policy",
    "RateLimit",
    "Retries",
    "Sidecar",
    "Split",
    "Upstream",
    "has_sidecar",
    "inject",
    "is_meshed",
    "sidecar_task",
]
