"""nomadmesh's xDS control plane: sources → versioned snapshot cache → state-of-the-world ADS."""

from nomadmesh.xds.cache import SnapshotCache
from nomadmesh.xds.control_plane import ControlPlane, ServerTls
from nomadmesh.xds.resources import Endpoint, Upstream, parse_upstreams
from nomadmesh.xds.snapshot import MeshState, Resource, Snapshot, build_snapshots

__all__ = [
    "ControlPlane",
    "Endpoint",
    "MeshState",
    "Resource",
    "ServerTls",
    "Snapshot",
    "SnapshotCache",
    "Upstream",
    "build_snapshots",
    "parse_upstreams",
]
