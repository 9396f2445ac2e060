"""A Nomad job that runs the control plane itself, registered under the name sidecars look up."""

from __future__ import annotations

from collections.abc import Sequence

from nomadmesh.contract import DEFAULT_CONTROL_PLANE, MESH_META_KEY
from nomadmesh.model import Check, Group, Job, Network, Port, Resources, Service, Task

GRPC_PORT = "grpc"
METRICS_PORT = "metrics"
_5S, _2S = 5_000_000_000, 2_000_000_000  # check interval and timeout, in nanoseconds


def control_plane_job(
    *,
    job_id: str = "nomadmesh-xds",
    service: str = DEFAULT_CONTROL_PLANE,
    consul: str = "${attr.unique.network.ip-address}:8500",
    count: int = 1,
    datacenters: Sequence[str] = ("*",),
    command: str = "nomadmesh",
    driver: str = "raw_exec",
    cpu: int = 200,
    memory: int = 256,
    mtls: bool = False,
) -> Job:
    """The control plane as a service job: ADS on a dynamic port, `/metrics` and `/healthz`.

    It registers in Consul as `service`, the name injected sidecars resolve by default. With
    `mtls`, sidecars talk mTLS with certificates from a CA each instance makes at start (give
    every replica the same CA with `--ca-cert/--ca-key` in production, and TLS on the ADS port:
    the sidecars' keys travel in its answers).
    """
    args = [
        "xds", "serve",
        "--listen", "0.0.0.0:${NOMAD_PORT_grpc}",
        "--consul", consul,
        "--metrics", "0.0.0.0:${NOMAD_PORT_metrics}",
        *(["--mtls"] if mtls else []),
    ]
    task = Task(
        "xds",
        driver=driver,
        config={"command": command, "args": args},
        resources=Resources(cpu=cpu, memory=memory),
    )
    services = [
        Service(
            name=service,
            port=GRPC_PORT,
            tags=("nomadmesh", "xds"),
            checks=(Check(type="tcp", port=GRPC_PORT, interval=_5S, timeout=_2S),),
        ),
        Service(
            name=f"{service}-metrics",
            port=METRICS_PORT,
            tags=("prometheus", "nomadmesh"),
            checks=(Check(type="http", path="/healthz", interval=_5S, timeout=_2S),),
        ),
    ]
    group = Group(
        "xds",
        count=count,
        # The control plane is what sidecars connect to; it must not get a sidecar itself.
        meta={MESH_META_KEY: "false"},
        networks=(Network(ports=(Port(GRPC_PORT), Port(METRICS_PORT))),),
        services=tuple(services),
        tasks=(task,),
    )
    return Job(job_id, datacenters=tuple(datacenters), groups=(group,))
