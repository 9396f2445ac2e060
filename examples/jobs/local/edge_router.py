"""edge-router for local runs, in Python: the same job as edge-router.nomad.hcl (raw_exec, host network)."""

from nomadmesh import Check, Group, Job, Network, Port, Resources, RestartPolicy, Service, Task


def job(python: str = "python3", apps: str = "/opt/nomadmesh/examples/apps",
        count: int | str = 1) -> Job:
    """edge-router running examples/apps/edge_router.py with `python`; the sidecar is injected later."""
    return Job(
        "edge-router",
        type="service",
        datacenters=["dc1"],
        groups=[
            Group(
                "edge-router",
                count=int(count),
                meta={"nomadmesh.upstreams": "service-a=/hi_a,service-b=/hi_b"},
                networks=[Network(ports=[Port("http")])],
                services=[Service(name="edge-router", port="http", tags=["demo"], checks=[
                    Check(type="http", path="/health", interval="10s", timeout="2s")])],
                restart=RestartPolicy(attempts=3, delay="1s", interval="1m", mode="fail"),
                tasks=[
                    Task(
                        "edge-router-app",
                        driver="raw_exec",
                        config={"command": python, "args": [f"{apps}/edge_router.py"]},
                        env={"PYTHONUNBUFFERED": "1"},
                        resources=Resources(cpu=100, memory=64),
                    )
                ],
            )
        ],
    )
