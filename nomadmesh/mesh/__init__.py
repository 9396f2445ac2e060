"""The mesh: Envoy sidecars injected into Nomad groups, wired to the nomadmesh control plane."""

from nomadmesh.mesh.inject import has_sidecar, inject, is_meshed, sidecar_task
from nomadmesh.mesh.settings import DEFAULT_SIDECAR, GroupMesh, Mesh, Sidecar
from nomadmesh.mesh.upstreams import Upstream

__all__ = [
    "DEFAULT_SIDECAR",
    "GroupMesh",
    "Mesh",
    "Sidecar",
    "Upstream",
    "has_sidecar",
    "inject",
    "is_meshed",
    "sidecar_task",
]
