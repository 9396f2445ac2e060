"""The original design's mesh in Python: service-b calls service-a at /hi_a through its sidecar.

Run it to print the injected jobs' registration payloads:
    python examples/mesh/original_design.py
Or load it like any job file: `nomadmesh inject examples/mesh/original_design.py`
(the module's `jobs()` returns the jobs before injection).
"""

from __future__ import annotations

import json

from nomadmesh import Check, Group, Job, Network, Port, Resources, Service, Task
from nomadmesh.mesh import GroupMesh, Mesh, Upstream

MESH = Mesh(
    control_plane="nomadmesh-xds",  # a Consul service; "10.0.0.5:18000" would pin an address
    groups={"service-b": GroupMesh(upstreams=[Upstream("service-a", prefix="/hi_a")])},
)


def _service(name: str, count: int) -> Job:
    check = Check(type="http", path="/health", interval="10s", timeout="2s")
    return Job(
        name,
        datacenters=["dc1"],
        groups=[
            Group(
                name,
                count=count,
                networks=[Network(mode="bridge", ports=[Port("http", to=8080)])],
                services=[Service(name=name, port="http", checks=[check])],
                tasks=[
                    Task(
                        f"{name}-app",
                        driver="docker",
                        config={"image": f"{name}:1.0", "ports": ["http"]},
                        resources=Resources(cpu=200, memory=128),
                    )
                ],
            )
        ],
    )


def jobs() -> list[Job]:
    """service-a (two instances) and service-b, as written by their teams: no mesh plumbing."""
    return [_service("service-a", 2), _service("service-b", 1)]


def injected() -> list[Job]:
    """The same jobs with their Envoy sidecars."""
    return [MESH.inject(job) for job in jobs()]


if __name__ == "__main__":
    for job in injected():
        print(json.dumps(job.to_register_body(), indent=2))
