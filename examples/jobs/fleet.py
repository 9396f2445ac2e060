"""Several jobs from one module: a worker per queue, sharing one definition."""

from datetime import timedelta

from nomadmesh import Group, Job, RestartPolicy, Task


def worker(queue: str) -> Job:
    """A batch-less queue worker for one queue."""
    return Job(
        f"worker-{queue}",
        meta={"queue": queue},
        groups=[
            Group(
                "worker",
                count=2,
                restart=RestartPolicy(attempts=5, interval="5m", delay=timedelta(seconds=10),
                                      mode="delay"),
                tasks=[Task("worker", driver="docker",
                            config={"image": "worker:3", "args": ["--queue", queue]})],
            )
        ],
    )


jobs = [worker(q) for q in ("emails", "thumbnails", "billing")]
