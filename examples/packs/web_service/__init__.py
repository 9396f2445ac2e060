"""web_service: a meshed HTTP service calling its upstreams through its Envoy sidecar, with a
Redis cache from the redis_cache pack (its variables nest as `redis.*`)."""

from __future__ import annotations

import attrs
import redis_cache

from nomadmesh import (
    Check,
    Group,
    Job,
    Network,
    Port,
    Resources,
    Service,
    Task,
    Template,
    UpdateStrategy,
)
from nomadmesh.packs import dependency, dependency_deployment, pack, variable

_PREFIX = attrs.validators.matches_re(r"^/[A-Za-z0-9_\-./]*$")


def _upstreams(_instance: object, attribute: attrs.Attribute[object], value: object) -> None:
    """Each upstream maps a Consul service name to a path prefix starting with '/'."""
    for service, prefix in dict(value).items():  # type: ignore[call-overload]
        if not str(prefix).startswith("/"):
            raise ValueError(f"upstream {service!r}: prefix {prefix!r} must start with '/'")


@attrs.frozen(kw_only=True)
class Variables:
    """What a deployment of web_service can change."""

    image: str = variable(description="application container image")
    count: int = variable(2, description="instances", validator=attrs.validators.ge(1))
    port: int = variable(8080, description="port the application listens on in its container")
    health_path: str = variable("/health", description="HTTP health check path",
                                validator=_PREFIX)
    upstreams: dict[str, str] = variable(
        factory=dict, validator=_upstreams,
        description="services called through the sidecar, service -> path prefix "
                    "(e.g. {\"service-a\": \"/hi_a\"})")
    canaries: int = variable(0, description="canaries per update (0: rolling update)",
                             validator=attrs.validators.ge(0))
    cpu: int = variable(200, description="CPU for the application, MHz")
    memory_mb: int = variable(128, description="memory for the application, MB")
    datacenters: list[str] = variable(factory=lambda: ["dc1"], description="where to run")
    redis: redis_cache.Variables = dependency(redis_cache.jobs,
                                              description="the service's Redis cache")


@pack(name="web-service", version="1.0.0", variables=Variables,
      description="A meshed HTTP service with upstreams and a Redis cache")
def jobs(v: Variables, deployment: str) -> Job:
    """A meshed web service named after the deployment, with its Redis cache."""
    redis_service = dependency_deployment(deployment, "redis")
    # Group meta is the mesh's plain-Nomad interface: the injector routes these prefixes.
    routes = ",".join(f"{service}={prefix}" for service, prefix in sorted(v.upstreams.items()))
    return Job(deployment, datacenters=v.datacenters, groups=[Group(
        "web",
        count=v.count,
        meta={"nomadmesh.upstreams": routes} if routes else {},
        update=UpdateStrategy(canary=v.canaries, auto_promote=False, auto_revert=True,
                              max_parallel=max(v.canaries, 1)) if v.canaries else None,
        networks=[Network(mode="bridge", ports=[Port("http", to=v.port)])],
        services=[Service(name=deployment, port="http", checks=[
            Check(type="http", path=v.health_path, interval="10s", timeout="2s")])],
        tasks=[Task(
            "app", driver="docker",
            config={"image": v.image, "ports": ["http"]},
            env={"PORT": str(v.port)},
            templates=[Template(
                data=f'{{{{ range service "{redis_service}" }}}}'
                     'REDIS_ADDR={{ .Address }}:{{ .Port }}{{ end }}\n',
                destination="local/redis.env", env=True)],
            resources=Resources(cpu=v.cpu, memory=v.memory_mb))])])
