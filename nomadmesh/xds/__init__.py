"""nomadmesh's xDS control plane: sources → snapshots per node hash → cache with watches → ADS.

Its gRPC and Envoy protobuf dependencies come with the `xds` extra (`pip install
'nomadmesh[xds]'`). They load on first use, so `nomadmesh.xds.job` (the control plane's own
Nomad job) and the rest of nomadmesh work without them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from nomadmesh.errors import XdsError

if TYPE_CHECKING:
    from nomadmesh.xds.build import MeshState, build_snapshots
    from nomadmesh.xds.cache import SnapshotCache
    from nomadmesh.xds.control_plane import ControlPlane, ServerTls
    from nomadmesh.xds.resources import Endpoint, Upstream, parse_upstreams
    from nomadmesh.xds.snapshot import Resource, Snapshot
    from nomadmesh.xds.source import Source, SourceHealth

_HOMES = {
    "SnapshotCache": "cache", "ControlPlane": "control_plane", "ServerTls": "control_plane",
    "Endpoint": "resources", "Upstream": "resources", "parse_upstreams": "resources",
    "MeshState": "build", "Resource": "snapshot", "Snapshot": "snapshot",
    "build_snapshots": "build", "Source": "source", "SourceHealth": "source",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'nomadmesh.xds' has no attribute {name!r}")
    try:
        module = importlib.import_module(f"nomadmesh.xds.{home}")
    except ImportError as exc:
        raise XdsError(f"the xDS control plane needs the xds extra ({exc.name} is missing): "
                       "pip install 'nomadmesh[xds]'") from None
    return getattr(module, name)

__all__ = [
    "ControlPlane",
    "Endpoint",
    "MeshState",
    "Resource",
    "ServerTls",
    "Snapshot",
    "SnapshotCache",
    "Source",
    "SourceHealth",
    "Upstream",
    "build_snapshots",
    "parse_upstreams",
]
