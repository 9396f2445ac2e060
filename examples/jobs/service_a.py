"""service-a from the original design, built in Python; `count` is a variable (--var count=3)."""

from nomadmesh import Check, Group, Job, Network, Port, Resources, Service, Task


def job(count: int | str = 2) -> Job:
    """service-a with `count` instances behind the mesh."""
    return Job(
        "service-a",
        datacenters=["dc1"],
        groups=[
            Group(
                "service-a",
                count=int(count),
                networks=[Network(mode="bridge", ports=[Port("http", to=8080)])],
                services=[
                    Service(
                        name="service-a",
                        port="http",
                        tags=["api"],
                        checks=[Check(type="http", path="/health", interval="10s",
                                      timeout="2s")],
                    )
                ],
                tasks=[
                    Task(
                        "service-a-app",
                        driver="docker",
                        config={"image": "service-a:1.0", "ports": ["http"]},
                        resources=Resources(cpu=200, memory=128),
                    )
                ],
            )
        ],
    )
