"""redis_cache: one Redis server as a Consul service; other packs depend on it (`redis.port`)."""

from __future__ import annotations

import attrs

from nomadmesh import Check, Group, Job, Network, Port, Resources, Service, Task, VolumeMount
from nomadmesh.model import VolumeRequest
from nomadmesh.packs import pack, variable


@attrs.frozen(kw_only=True)
class Variables:
    """What a deployment of redis_cache can change."""

    image: str = variable("redis:7.2-alpine", description="Redis container image")
    port: int = variable(6379, description="port Redis listens on in its container",
                         validator=[attrs.validators.ge(1), attrs.validators.le(65535)])
    memory_mb: int = variable(256, description="memory for Redis, MB",
                              validator=attrs.validators.ge(32))
    volume: str | None = variable(None, description="host volume to keep data in (none: no "
                                  "persistence)")
    datacenters: list[str] = variable(factory=lambda: ["dc1"], description="where to run")


@pack(name="redis-cache", version="1.0.0", variables=Variables,
      description="One Redis server registered in Consul", url="https://redis.io")
def jobs(v: Variables, deployment: str) -> Job:
    """A single Redis server registered in Consul under the deployment's name."""
    args = ["--port", str(v.port)] + (["--appendonly", "yes"] if v.volume else [])
    return Job(deployment, datacenters=v.datacenters, groups=[Group(
        "redis",
        # Redis speaks TCP; it is reached by Consul lookup, not through the HTTP mesh.
        meta={"nomadmesh.mesh": "false"},
        networks=[Network(mode="bridge", ports=[Port("redis", to=v.port)])],
        volumes=[VolumeRequest("data", type="host", source=v.volume)] if v.volume else [],
        services=[Service(name=deployment, port="redis", checks=[
            Check(type="tcp", interval="10s", timeout="2s")])],
        tasks=[Task(
            "redis", driver="docker",
            config={"image": v.image, "ports": ["redis"], "args": args},
            volume_mounts=[VolumeMount(volume="data", destination="/data")] if v.volume else [],
            resources=Resources(cpu=200, memory=v.memory_mb))])])
