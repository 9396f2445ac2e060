"""mesh_control_plane: the nomadmesh xDS control plane (`nomadmesh xds serve`) as a Nomad service.

Sidecars find it through Consul under `service_name` (the mesh settings' `control_plane`); it
reads the catalog from the node's Consul agent and serves ADS over gRPC, metrics on /metrics.
"""

from __future__ import annotations

from typing import Literal

import attrs

from nomadmesh import (
    Check,
    Group,
    Job,
    Network,
    Port,
    Resources,
    Service,
    Spread,
    Task,
    UpdateStrategy,
)
from nomadmesh.packs import pack, variable


@attrs.frozen(kw_only=True)
class Variables:
    """What a deployment of the control plane can change."""

    image: str = variable("ghcr.io/nomadmesh/nomadmesh:0.1.0",
                          description="image with nomadmesh[xds] installed")
    count: int = variable(2, description="instances (sidecars use every healthy one)",
                          validator=attrs.validators.ge(1))
    service_name: str = variable("nomadmesh-xds",
                                 description="Consul service the sidecars look up; must match "
                                             "the mesh settings' control_plane")
    consul_address: str = variable("${attr.unique.network.ip-address}:8500",
                                   description="Consul HTTP API the control plane watches")
    log_level: Literal["debug", "info", "warning", "error"] = variable(
        "info", description="log level")
    cpu: int = variable(300, description="CPU per instance, MHz")
    memory_mb: int = variable(256, description="memory per instance, MB")
    datacenters: list[str] = variable(factory=lambda: ["dc1"], description="where to run")


@pack(name="mesh-control-plane", version="1.0.0", variables=Variables,
      description="The nomadmesh xDS control plane that feeds the Envoy sidecars",
      url="https://github.com/nomadmesh/nomadmesh/tree/main/examples/packs/mesh_control_plane")
def jobs(v: Variables, deployment: str) -> Job:
    """The control plane job, spread over nodes, never meshed itself."""
    return Job(deployment, datacenters=v.datacenters, priority=80, groups=[Group(
        "xds",
        count=v.count,
        # The control plane feeds the sidecars; it must not wait for a sidecar of its own.
        meta={"nomadmesh.mesh": "false"},
        spreads=[Spread(attribute="${node.unique.id}")],
        update=UpdateStrategy(max_parallel=1, auto_revert=True),
        networks=[Network(mode="host", ports=[Port("grpc"), Port("metrics")])],
        services=[
            Service(name=v.service_name, port="grpc", tags=["xds", "grpc"], checks=[
                Check(type="http", port="metrics", path="/healthz", interval="10s",
                      timeout="2s")]),
            Service(name=f"{v.service_name}-metrics", port="metrics", tags=["prometheus"]),
        ],
        tasks=[Task(
            "xds", driver="docker",
            config={"image": v.image, "network_mode": "host", "args": [
                "nomadmesh", "xds", "serve",
                "--listen", "0.0.0.0:${NOMAD_PORT_grpc}",
                "--consul", v.consul_address,
                "--metrics", "0.0.0.0:${NOMAD_PORT_metrics}",
                "--log-level", v.log_level]},
            resources=Resources(cpu=v.cpu, memory=v.memory_mb))])])
