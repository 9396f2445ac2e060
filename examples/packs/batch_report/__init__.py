"""batch_report: a periodic batch job that builds a report on a cron schedule."""

from __future__ import annotations

import attrs

from nomadmesh import Group, Job, Periodic, Resources, RestartPolicy, Task
from nomadmesh.packs import pack, variable


def _crons(_instance: object, _attribute: object, value: list[str]) -> None:
    """At least one schedule, each with the five cron fields."""
    if not value:
        raise ValueError("at least one cron schedule is needed")
    for cron in value:
        if len(cron.split()) != 5:
            raise ValueError(f"{cron!r} is not a five-field cron expression")


@attrs.frozen(kw_only=True)
class Variables:
    """What a deployment of batch_report can change."""

    image: str = variable("python:3.12-slim", description="container image")
    command: list[str] = variable(factory=lambda: ["python", "-m", "report"],
                                  description="command and arguments")
    crons: list[str] = variable(factory=lambda: ["0 3 * * *"], validator=_crons,
                                description="cron schedules")
    time_zone: str = variable("UTC", description="time zone of the schedules")
    allow_overlap: bool = variable(False, description="start a run while the last one runs")
    retries: int = variable(2, description="restarts of a failed run on the same node",
                            validator=attrs.validators.ge(0))
    env: dict[str, str] = variable(factory=dict, description="environment of the task")
    cpu: int = variable(500, description="CPU, MHz")
    memory_mb: int = variable(512, description="memory, MB")
    datacenters: list[str] = variable(factory=lambda: ["dc1"], description="where to run")


@pack(name="batch-report", version="1.0.0", variables=Variables,
      description="A report built by a periodic batch job")
def jobs(v: Variables, deployment: str) -> Job:
    """One periodic batch job named after the deployment."""
    return Job(deployment, type="batch", datacenters=v.datacenters,
               periodic=Periodic(crons=v.crons, time_zone=v.time_zone,
                                 prohibit_overlap=not v.allow_overlap),
               groups=[Group(
                   "report",
                   restart=RestartPolicy(attempts=v.retries, interval="1h", delay="30s",
                                         mode="fail"),
                   tasks=[Task("report", driver="docker",
                               config={"image": v.image, "command": v.command[0],
                                       "args": v.command[1:]},
                               env=v.env, resources=Resources(cpu=v.cpu, memory=v.memory_mb))])])
