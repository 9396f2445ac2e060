"""The nomadmesh control plane for local runs, in Python: `control_plane_job()` bound to loopback.

The same job as nomadmesh-xds.nomad.hcl: listeners on the node's address (`NOMAD_ADDR_*`) instead
of 0.0.0.0, the Consul address and the `nomadmesh` command given as variables.
"""

import attrs

from nomadmesh import Job
from nomadmesh.xds.job import control_plane_job


def job(nomadmesh: str = "nomadmesh", consul: str = "127.0.0.1:8500") -> Job:
    """The control-plane job with its gRPC and metrics listeners on the allocation's address."""
    base = control_plane_job(consul=consul, command=nomadmesh, datacenters=["dc1"], mtls=True)
    group = base.groups[0]
    task = group.tasks[0]
    args = [a.replace("0.0.0.0:${NOMAD_PORT_", "${NOMAD_ADDR_") for a in task.config["args"]]
    task = attrs.evolve(task, config={**task.config, "args": args})
    return attrs.evolve(base, type="service", groups=[attrs.evolve(group, tasks=[task])])
