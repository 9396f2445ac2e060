"""service-a for local runs, in Python: the same job as service-a.nomad.hcl (raw_exec, host network)."""

from nomadmesh import Check, Group, Job, Network, Port, Resources, RestartPolicy, Service, Task


def job(python: str = "python3", apps: str = "/opt/nomadmesh/examples/apps",
        count: int | str = 2) -> Job:
    """service-a running examples/apps/service_a.py with `python`; the sidecar is injected later."""
    return Job(
        "service-a",
        type="service",
        datacenters=["dc1"],
        groups=[
            Group(
                "service-a",
                count=int(count),
                networks=[Network(ports=[Port("http")])],
                services=[Service(name="service-a", port="http", tags=["demo"], checks=[
                    Check(type="http", path="/health", interval="10s", timeout="2s")])],
                restart=RestartPolicy(attempts=3, delay="1s", interval="1m", mode="fail"),
                tasks=[
                    Task(
                        "service-a-app",
                        driver="raw_exec",
                        config={"command": python, "args": [f"{apps}/service_a.py"]},
                        env={"PYTHONUNBUFFERED": "1"},
                        resources=Resources(cpu=100, memory=64),
                    )
                ],
            )
        ],
    )
