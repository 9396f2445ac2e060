"""Jobspec handling for the Nomad emulator: validate, canonicalize and parse through the job model.

The emulator validates with `nomadmesh.model.Job` (Nomad drops unknown JSON keys silently, so the
emulator does too rather than reporting them), canonicalizes with `nomadmesh.codec.canonicalize`,
then fills the few server defaults its scheduler relies on when they are still missing, so a job
read back always has Count, Resources, Update and RestartPolicy.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from nomadmesh.errors import InputError, ValidationError
from nomadmesh.model import Job
from nomadmesh.model import canonicalize as model_canonicalize

SECOND = 1_000_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE

SERVER_FIELDS = (
    "Status", "StatusDescription", "Stable", "Version", "SubmitTime", "CreateIndex",
    "ModifyIndex", "JobModifyIndex",
)

_UPDATE_DEFAULTS = {
    "Stagger": 30 * SECOND, "MaxParallel": 1, "HealthCheck": "checks",
    "MinHealthyTime": 10 * SECOND, "HealthyDeadline": 5 * MINUTE,
    "ProgressDeadline": 10 * MINUTE, "AutoRevert": False, "AutoPromote": False, "Canary": 0,
}
_RESTART_DEFAULTS = {
    "service": {"Attempts": 2, "Interval": 30 * MINUTE, "Delay": 15 * SECOND, "Mode": "fail"},
    "system": {"Attempts": 2, "Interval": 30 * MINUTE, "Delay": 15 * SECOND, "Mode": "fail"},
    "batch": {"Attempts": 3, "Interval": 24 * HOUR, "Delay": 15 * SECOND, "Mode": "fail"},
}


class JobInvalid(Exception):
    """A submitted job breaks the rules; `errors` are the lines of Nomad's multi-error text."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__(multierror(errors))
        self.errors = errors


def multierror(errors: list[str]) -> str:
    """Format errors the way Nomad's go-multierror does (`1 error occurred:\\n\\t* ...`)."""
    plural = "s" if len(errors) != 1 else ""
    points = "\n\t".join(f"* {e}" for e in errors)
    return f"{len(errors)} error{plural} occurred:\n\t{points}\n\n"


def problems(job: Mapping[str, Any]) -> list[str]:
    """What is wrong with a job, as Nomad-style error lines (empty when it can be registered)."""
    essential = _essential_problems(job)
    if essential:
        return essential
    try:
        Job.from_api(job)
    except ValidationError as exc:
        return [str(p) for p in exc.problems if not p.message.startswith("unknown field")]
    return []


def canonical(job: Mapping[str, Any]) -> dict[str, Any]:
    """The job with server defaults applied, as `GET /v1/job/<id>` returns it (no server fields)."""
    spec = {k: v for k, v in job.items() if k not in SERVER_FIELDS}
    try:
        model = Job.from_api(spec, validate=False)
    except InputError:
        model = None
    out = copy.deepcopy(spec) if model is None else _merge(model_canonicalize(model).to_api(), spec)
    return _fill_defaults(out)


def parse_hcl(text: str, variables: Mapping[str, Any] | None, canonicalize: bool) -> dict[str, Any]:
    """Parse an HCL2 jobspec into Nomad API JSON (optionally canonicalized)."""
    job = Job.from_hcl(text, variables=variables, validate=False)
    data = job.to_api()
    return canonical(data) if canonicalize else data


def spec_of(job: Mapping[str, Any]) -> dict[str, Any]:
    """A stored job without its server-managed fields, for change detection and diffs."""
    return {k: v for k, v in job.items() if k not in SERVER_FIELDS and k != "Stop"}


def _merge(model_json: dict[str, Any], original: Mapping[str, Any]) -> dict[str, Any]:
    """Model output, plus the keys the model does not carry over (Nomad keeps what it knows)."""
    out = dict(model_json)
    for key, value in original.items():
        if key not in out and key != "TaskGroups":
            out[key] = copy.deepcopy(value)
    return out


def _essential_problems(job: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    if not job.get("ID"):
        out.append("Missing job ID")
    groups = job.get("TaskGroups")
    if not isinstance(groups, list) or not groups:
        out.append("Missing job task groups")
        return out
    for n, group in enumerate(groups, start=1):
        if not isinstance(group, dict):
            out.append(f"Task group {n} is not an object")
            continue
        name = group.get("Name") or f"{n}"
        if not group.get("Name"):
            out.append(f"Job task group {n} missing name")
        count = group.get("Count")
        if count is not None and (not isinstance(count, int) or count < 0):
            out.append(f"Task group {name} validation failed: Task group count can't be negative")
        tasks = group.get("Tasks")
        if not isinstance(tasks, list) or not tasks:
            out.append(f"Task group {name} validation failed: Missing tasks for task group")
    return out


def _fill_defaults(job: dict[str, Any]) -> dict[str, Any]:
    job_type = job.get("Type") or "service"
    for key, value in (("Region", "global"), ("Namespace", "default"), ("Type", "service"),
                       ("Priority", 50), ("Datacenters", ["*"]), ("Name", job.get("ID")),
                       ("NodePool", "default")):
        if not job.get(key):
            job[key] = value
    for key, value in (("ParentID", ""), ("AllAtOnce", False), ("Dispatched", False),
                       ("Stop", False)):
        if job.get(key) is None:
            job[key] = value
    job_update = job.get("Update") or {}
    if job_type in ("service", "system"):
        job["Update"] = {**_UPDATE_DEFAULTS, **{k: v for k, v in job_update.items()
                                                  if v is not None}}
    for group in job["TaskGroups"]:
        if group.get("Count") is None:
            group["Count"] = 1
        group["RestartPolicy"] = {**_RESTART_DEFAULTS.get(job_type, _RESTART_DEFAULTS["service"]),
                                  **{k: v for k, v in (group.get("RestartPolicy") or {}).items()
                                     if v is not None}}
        group.setdefault("EphemeralDisk", {"Sticky": False, "Migrate": False, "SizeMB": 300})
        if job_type == "service":
            merged = {**job["Update"], **{k: v for k, v in (group.get("Update") or {}).items()
                                          if v is not None}}
            group["Update"] = merged
        for task in group["Tasks"]:
            resources = dict(task.get("Resources") or {})
            if not resources.get("CPU") and not resources.get("Cores"):
                resources["CPU"] = 100
            resources.setdefault("Cores", 0)
            if not resources.get("MemoryMB"):
                resources["MemoryMB"] = 300
            task["Resources"] = resources
            if task.get("KillTimeout") is None:
                task["KillTimeout"] = 5 * SECOND
            log = dict(task.get("LogConfig") or {})
            log.setdefault("MaxFiles", 10)
            log.setdefault("MaxFileSizeMB", 10)
            task["LogConfig"] = log
    return job
