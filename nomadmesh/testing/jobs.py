"""Small Nomad API job payloads for tests and demos against the emulators (or a real cluster)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SECOND = 1_000_000_000


def service_job(job_id: str, *, count: int = 1, image: str = "nginx:1.27",
                service: str | None = None, update: Mapping[str, Any] | None = None,
                memory_mb: int = 64, job_type: str = "service",
                meta: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A one-group, one-task docker job; with `service`, a group service on dynamic port "http"."""
    group: dict[str, Any] = {
        "Name": "app",
        "Count": count,
        "Networks": [{"DynamicPorts": [{"Label": "http", "To": 8080}]}],
        "Tasks": [{
            "Name": "server",
            "Driver": "docker",
            "Config": {"image": image, "ports": ["http"]},
            "Resources": {"CPU": 100, "MemoryMB": memory_mb},
        }],
    }
    if service:
        group["Services"] = [{
            "Name": service, "PortLabel": "http", "Tags": ["v1"],
            "Checks": [{"Name": "alive", "Type": "http", "Path": "/health",
                        "Interval": 10 * SECOND, "Timeout": 2 * SECOND}],
        }]
    if update is not None:
        group["Update"] = dict(update)
    job: dict[str, Any] = {"ID": job_id, "Name": job_id, "Type": job_type,
                           "Datacenters": ["dc1"], "TaskGroups": [group]}
    if meta:
        job["Meta"] = dict(meta)
    return job


def batch_job(job_id: str, *, count: int = 1) -> dict[str, Any]:
    """A one-group batch job that runs to completion."""
    job = service_job(job_id, count=count, job_type="batch")
    del job["TaskGroups"][0]["Networks"]
    return job
