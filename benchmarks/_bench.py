"""Shared benchmark pieces: large realistic jobs, and paired timing against a baseline."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from nomadmesh import (
    Check,
    Constraint,
    Group,
    Job,
    LogConfig,
    Network,
    Port,
    Resources,
    RestartPolicy,
    Service,
    Task,
    Template,
)


def big_job(groups: int = 500, tasks_per_group: int = 3) -> Job:
    """A service job with `groups` groups of `tasks_per_group` tasks, each fully dressed."""
    return Job(
        "big",
        datacenters=["dc1", "dc2"],
        meta={"team": "platform", "owner.email": "ops@example.com"},
        constraints=[Constraint(attribute="${attr.kernel.name}", value="linux", operator="=")],
        groups=[_group(i, tasks_per_group) for i in range(groups)],
    )


def _group(i: int, tasks: int) -> Group:
    return Group(
        f"g{i}",
        count=2,
        meta={"shard": str(i)},
        restart=RestartPolicy(attempts=3, interval="5m", delay="10s", mode="delay"),
        networks=[Network(mode="bridge", ports=[Port("http", to=8080), Port("metrics")])],
        services=[Service(name=f"svc-{i}", port="http", tags=["api", f"shard-{i}"],
                          checks=[Check(type="http", path="/health", interval="10s",
                                        timeout="2s")])],
        tasks=[_task(i, j) for j in range(tasks)],
    )


def _task(i: int, j: int) -> Task:
    return Task(
        f"t{j}",
        driver="docker",
        config={"image": f"registry.example.com/app-{i}:1.{j}", "ports": ["http"],
                "args": ["--port", "${NOMAD_PORT_http}", "--shard", str(i)]},
        env={"SHARD": str(i), "ROLE": f"role-{j}", "LOG_LEVEL": "info"},
        resources=Resources(cpu=200, memory=256),
        logs=LogConfig(max_files=3, max_file_size=5),
        kill_timeout="20s",
        templates=[Template(data="KEY={{ key \"app/config\" }}\n", destination="local/app.env",
                            env=True)],
    )


def paired(baseline: Callable[[], object], subject: Callable[[], object],
           repeat: int) -> tuple[float, float]:
    """Median wall times of baseline and subject, run alternately so load affects both alike."""
    base, subj = rotated([baseline, subject], repeat)
    return base, subj


def rotated(functions: list[Callable[[], object]], repeat: int) -> list[float]:
    """Median wall time of each function, run in rotation so load affects all alike."""
    for function in functions:
        function()
    times: list[list[float]] = [[] for _ in functions]
    for _ in range(repeat):
        for function, samples in zip(functions, times, strict=True):
            start = time.perf_counter()
            function()
            samples.append(time.perf_counter() - start)
    return [statistics.median(samples) for samples in times]
