"""The original design's mesh in Python: service-b calls service-a at /hi_a through its sidecar.

Run it to print the injected jobs' registration payloads:
    python examples/mesh/original_design.py
Or load it like any job file (the module's `jobs()` returns the jobs before injection; service-b's
route is in its group meta, so every way of injecting keeps it):
    nomadmesh inject examples/mesh/original_design.py
    nomadmesh run --inject examples/mesh/original_design.py
"""

from __future__ import annotations

import json

from nomadmesh import Check, Group, Job, Network, Port, Resources, Service, Task
from nomadmesh.contract import GROUP_META_KEY
from nomadmesh.mesh import Mesh

# A Consul service; "10.0.0.5:18000" would pin an address.
MESH = Mesh(control_plane="nomadmesh-xds")
# service-b calls service-a under /hi_a. Group meta (rather than Python-only settings) keeps the
# route whichever way the job is injected; `Mesh(groups={"service-b": GroupMesh(upstreams=...)})`
# says the same for Python callers, with policies.
ROUTES = {"service-b": "service-a=/hi_a"}


def _service(name: str, count: int) -> Job:
    check = Check(type="http", path="/health", interval="10s", timeout="2s")
    return Job(
        name,
        datacenters=["dc1"],
        groups=[
            Group(
                name,
                count=count,
                meta={GROUP_META_KEY: ROUTES[name]} if name in ROUTES else {},
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
