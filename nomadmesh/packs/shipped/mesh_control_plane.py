"""mesh-control-plane: the nomadmesh xDS control plane (`nomadmesh xds serve`) as a Nomad service.

Composes `nomadmesh.xds.control_plane_job` (ports, arguments, services and checks stay defined in
one place) and adds what a production deployment wants: a container image, spreading over nodes,
a safe rolling update and no sidecar of its own.
"""

from __future__ import annotations

from typing import Literal

import attrs

from nomadmesh import Job, Spread, UpdateStrategy
from nomadmesh.mesh import Mesh
from nomadmesh.packs import pack, variable
from nomadmesh.xds.job import control_plane_job


@attrs.frozen(kw_only=True)
class Variables:
    """What a deployment of the control plane can change."""

    image: str | None = variable("ghcr.io/nomadmesh/nomadmesh:0.1.0",
                                 description="image with nomadmesh[xds] installed (docker); "
                                             "empty runs the nodes' own nomadmesh (raw_exec)")
    count: int = variable(2, description="instances (sidecars use every healthy one)",
                          validator=attrs.validators.ge(1))
    service_name: str = variable(Mesh().control_plane,
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
      description="The nomadmesh xDS control plane that feeds the Envoy sidecars")
def jobs(v: Variables, deployment: str) -> Job:
    """The control plane job, spread over nodes, never meshed itself."""
    base = control_plane_job(job_id=deployment, service=v.service_name, consul=v.consul_address,
                             count=v.count, datacenters=v.datacenters, cpu=v.cpu,
                             memory=v.memory_mb)
    [group] = base.groups
    [task] = group.tasks
    args = [*task.config["args"], "--log-level", v.log_level]
    if v.image:
        # Host networking: the dynamic ports Nomad picks are the ones the process binds.
        task = attrs.evolve(task, driver="docker", config={
            "image": v.image, "command": "nomadmesh", "args": args, "network_mode": "host"})
    else:
        task = attrs.evolve(task, config={**task.config, "args": args})
    group = attrs.evolve(
        group, tasks=[task],
        # The control plane feeds the sidecars; it must not wait for a sidecar of its own.
        meta={**group.meta, "nomadmesh.mesh": "false"},
        spreads=[Spread(attribute="${node.unique.id}")],
        update=UpdateStrategy(max_parallel=1, auto_revert=True))
    return attrs.evolve(base, priority=80, groups=[group])
